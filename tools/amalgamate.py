#!/usr/bin/env python3
"""Generates single_include/azops/azops.hpp from include/azops/azops.hpp.

Every `#include <azops/...>` is replaced by that file's text, once, depth first; `#pragma once` of
inlined files is dropped; other includes stay as they are. The embedded page header is copied as
opaque text (its raw strings are never scanned for includes).

    tools/amalgamate.py            write the single header
    tools/amalgamate.py --check    exit 1 when the committed single header is not current
    tools/amalgamate.py --output F write it to F instead
"""
import argparse
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
INCLUDE = ROOT / "include"
ENTRY = "azops/azops.hpp"
TARGET = ROOT / "single_include" / "azops" / "azops.hpp"
OPAQUE = {"azops/detail/dashboard_html.hpp"}
INCLUDE_RE = re.compile(r'^\s*#\s*include\s*[<"](azops/[^>"]+)[>"]\s*$')
PRAGMA_ONCE_RE = re.compile(r"^\s*#\s*pragma\s+once\s*$")


def version() -> str:
    text = (INCLUDE / "azops" / "version.hpp").read_text(encoding="utf-8")
    return re.search(r'AZOPS_VERSION_STRING "([^"]+)"', text).group(1)


def inline(name: str, seen: set, out: list) -> None:
    if name in seen:
        return
    seen.add(name)
    path = INCLUDE / name
    if not path.is_file():
        sys.exit(f"amalgamate: {name} is included but {path} does not exist")
    out.append(f"// #include <{name}> — begin\n")
    for line in path.read_text(encoding="utf-8").splitlines(keepends=True):
        if PRAGMA_ONCE_RE.match(line):
            continue
        match = None if name in OPAQUE else INCLUDE_RE.match(line)
        if match:
            inline(match.group(1), seen, out)
        else:
            out.append(line)
    if not out[-1].endswith("\n"):
        out.append("\n")
    out.append(f"// #include <{name}> — end\n")


def generate() -> str:
    out = [
        "// azops " + version() + " — single-header edition.\n",
        "// Generated from include/ by tools/amalgamate.py; do not edit: edit include/azops/ and regenerate.\n",
        "// SPDX-License-Identifier: MIT\n",
        "#pragma once\n",
    ]
    inline(ENTRY, set(), out)
    return "".join(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="fail when the committed single header is stale")
    parser.add_argument("--output", type=pathlib.Path, default=TARGET)
    args = parser.parse_args()
    text = generate()
    if args.check:
        current = TARGET.read_text(encoding="utf-8") if TARGET.is_file() else ""
        if current != text:
            print(f"{TARGET.relative_to(ROOT)} is out of date: run tools/amalgamate.py and commit the result",
                  file=sys.stderr)
            return 1
        print(f"{TARGET.relative_to(ROOT)} is current")
        return 0
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
