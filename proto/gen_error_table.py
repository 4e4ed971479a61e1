#!/usr/bin/env python3
"""Writes README.md's error table from enum air.v1.ErrorReason.

    python3 proto/gen_error_table.py           # rewrite the table in README.md
    python3 proto/gen_error_table.py --check   # exit 1 if README.md is stale

The table sits between the BEGIN/END marker comments in README.md. Each enum
value's comment must read "<when it is raised>. Code: <code>. Metadata:
<keys or none>." (see proto/air/v1/error_reason.proto); a value whose comment
does not is an error, so the table cannot silently lose a column.
Standard library only.
"""
import argparse
import difflib
import os
import re
import sys

REPO = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
PROTO = os.path.join(REPO, "proto", "air", "v1", "error_reason.proto")
README = os.path.join(REPO, "README.md")
BEGIN = ("<!-- BEGIN error table: generated from proto/air/v1/error_reason.proto "
         "by proto/gen_error_table.py; do not edit by hand -->")
END = "<!-- END error table -->"
UNSPECIFIED = "ERROR_REASON_UNSPECIFIED"


class Reason:
    def __init__(self, name, number, when, code, metadata):
        self.name, self.number = name, number
        self.when, self.code, self.metadata = when, code, metadata


def parse_enum(path=PROTO, enum="ErrorReason"):
    """Returns [(name, number, comment)] of `enum` in `path`, in file order."""
    text = open(path, encoding="utf-8").read()
    body = re.search(r"^enum %s \{\n(.*?)^\}" % enum, text, re.M | re.S)
    if not body:
        sys.exit(f"{path}: no 'enum {enum}'")
    values, comment = [], []
    for line in body.group(1).splitlines():
        line = line.strip()
        if line.startswith("//"):
            comment.append(line[2:].strip())
            continue
        m = re.fullmatch(r"([A-Z][A-Z0-9_]*) = (\d+);", line)
        if m:
            values.append((m.group(1), int(m.group(2)), " ".join(comment)))
        elif line:
            sys.exit(f"{path}: cannot read enum line {line!r}")
        comment = []
    return values


def parse_reasons(path=PROTO):
    """The reasons aird sends, with their comments split into columns."""
    reasons = []
    for name, number, comment in parse_enum(path):
        if name == UNSPECIFIED:
            continue
        m = re.fullmatch(r"(.+?)\s+Code: (.+?)\.\s+Metadata: (.+?)\.?", comment)
        if not m:
            sys.exit(f"{path}: the comment of {name} must end with "
                     f"'Code: <code>. Metadata: <keys or none>.', not {comment!r}")
        reasons.append(Reason(name, number, *m.groups()))
    return reasons


def table(reasons):
    def code(text):  # `UPPER_SNAKE` words in code font
        return re.sub(r"\b([A-Z][A-Z_]{2,})\b", r"`\1`", text)

    rows = ["| Reason | Code | When | Metadata |", "|---|---|---|---|"]
    for r in reasons:
        metadata = "" if r.metadata == "none" else r.metadata
        cells = [f"`{r.name}`", code(r.code), r.when, metadata]
        rows.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(rows)


def render(readme_text, reasons):
    start, end = readme_text.find(BEGIN), readme_text.find(END)
    if start < 0 or end < start:
        sys.exit(f"{README}: the error table markers are missing:\n{BEGIN}\n{END}")
    return (readme_text[:start] + BEGIN + "\n" + table(reasons) + "\n" +
            readme_text[end:])


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--check", action="store_true",
                   help="do not write; fail if README.md differs from the enum")
    args = p.parse_args()
    current = open(README, encoding="utf-8").read()
    wanted = render(current, parse_reasons())
    if args.check:
        if current != wanted:
            sys.stdout.writelines(difflib.unified_diff(
                current.splitlines(True), wanted.splitlines(True), "README.md",
                "README.md (from error_reason.proto)"))
            print("README.md's error table is stale: run python3 proto/gen_error_table.py")
            return 1
        print("README.md's error table matches proto/air/v1/error_reason.proto")
        return 0
    if current != wanted:
        with open(README, "w", encoding="utf-8") as f:
            f.write(wanted)
        print("README.md: error table rewritten")
    return 0


if __name__ == "__main__":
    sys.exit(main())
