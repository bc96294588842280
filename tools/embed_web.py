#!/usr/bin/env python3
"""Generates include/azops/detail/dashboard_html.hpp from web/azure_ops.html.

The page becomes `azops::detail::dashboard_html`, an `inline constexpr std::string_view` made of
adjacent raw-string pieces of at most 16,000 bytes, each ending after a newline: MSVC refuses a single
literal over 16,380 bytes, and clang -Wpedantic warns on a concatenated literal over 65,536 bytes, so
the page itself is held under 60,000 bytes.

    tools/embed_web.py             write the header
    tools/embed_web.py --check     exit 1 when the committed header differs from a fresh generation
    tools/embed_web.py --output F  write it to F instead (the build systems do, and compare)
"""
import argparse
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
PAGE = ROOT / "web" / "azure_ops.html"
TARGET = ROOT / "include" / "azops" / "detail" / "dashboard_html.hpp"
DELIMITER = "azops_web"
MAX_PIECE = 16000
MAX_PAGE = 60000


class EmbedError(Exception):
    pass


def split_pieces(text: str) -> list:
    """Pieces of at most MAX_PIECE UTF-8 bytes, each cut just after a newline."""
    pieces = []
    current, size = [], 0
    parts = text.split("\n")
    lines = [part + "\n" for part in parts[:-1]] + ([parts[-1]] if parts[-1] else [])
    for line in lines:
        length = len(line.encode("utf-8"))
        if length > MAX_PIECE:
            raise EmbedError(f"a line of {length} bytes is longer than a piece may be ({MAX_PIECE} bytes)")
        if size + length > MAX_PIECE:
            pieces.append("".join(current))
            current, size = [], 0
        current.append(line)
        size += length
    if current:
        pieces.append("".join(current))
    return pieces


def generate(page: str) -> str:
    size = len(page.encode("utf-8"))
    if size > MAX_PAGE:
        raise EmbedError(f"{PAGE.relative_to(ROOT)} is {size} bytes, over the {MAX_PAGE}-byte limit "
                         "(clang warns on string literals over 65,536 bytes)")
    if ")" + DELIMITER + '"' in page:
        raise EmbedError(f'{PAGE.relative_to(ROOT)} contains ){DELIMITER}", which would end the raw string')
    if "\r" in page:
        raise EmbedError(f"{PAGE.relative_to(ROOT)} has CR characters: raw strings turn line ends into LF, "
                         "so the embedded copy would differ from the file")
    pieces = split_pieces(page)
    out = [
        "// azops/detail/dashboard_html.hpp — the dashboard page, embedded.\n",
        "// generated from web/azure_ops.html by tools/embed_web.py — do not edit.\n",
        "//\n",
        f"// {size} bytes in {len(pieces)} raw-string pieces of at most {MAX_PIECE} bytes (MSVC's per-literal limit).\n",
        "// Thread-safety: a constant. Errors: none.\n",
        "// clang-format off\n",
        "#pragma once\n",
        "\n",
        "#include <string_view>\n",
        "\n",
        "namespace azops::detail {\n",
        "\n",
        "inline constexpr std::string_view dashboard_html =\n",
    ]
    for index, piece in enumerate(pieces):
        end = ";" if index == len(pieces) - 1 else ""
        out.append(f'R"{DELIMITER}({piece}){DELIMITER}"{end}\n')
    if not pieces:
        out.append('"";\n')
    out += ["\n", "}  // namespace azops::detail\n", "// clang-format on\n"]
    return "".join(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="fail when the committed header is stale")
    parser.add_argument("--output", type=pathlib.Path, default=TARGET, help="where to write the header")
    args = parser.parse_args()
    try:
        page = PAGE.read_bytes().decode("utf-8")
        text = generate(page)
    except (OSError, UnicodeDecodeError, EmbedError) as error:
        print(f"embed_web: {error}", file=sys.stderr)
        return 2
    if args.check:
        current = TARGET.read_bytes().decode("utf-8", errors="replace") if TARGET.is_file() else None
        if current != text:
            why = "is missing" if current is None else "differs from web/azure_ops.html"
            print(f"{TARGET.relative_to(ROOT)} {why}: run tools/embed_web.py and commit the result",
                  file=sys.stderr)
            return 1
        print(f"{TARGET.relative_to(ROOT)} is current")
        return 0
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_bytes(text.encode("utf-8"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
