#!/usr/bin/env python3
"""Prints the version from include/azops/version.hpp, the single source of the version."""
import pathlib
import re

header = pathlib.Path(__file__).resolve().parent.parent / "include" / "azops" / "version.hpp"
print(re.search(r'AZOPS_VERSION_STRING "([^"]+)"', header.read_text(encoding="utf-8")).group(1))
