#!/usr/bin/env python3
"""Checks that the web console's REASON table mirrors enum air.v1.ErrorReason.

    python3 proto/check_console_reasons.py [--app console/app.js]

Fails (exit 1) when console/app.js's `const REASON = Object.freeze({...})`
lacks a value of proto/air/v1/error_reason.proto, has one the enum does not,
maps a name to another string, or when an enum name appears as a string
literal elsewhere in app.js (the console must compare with REASON.X).
Standard library only.
"""
import argparse
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gen_error_table  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--app", default=os.path.join(gen_error_table.REPO, "console", "app.js"))
    args = p.parse_args()
    source = open(args.app, encoding="utf-8").read()
    enum = {r.name for r in gen_error_table.parse_reasons()}

    block = re.search(r"const REASON = Object\.freeze\(\{\n(.*?)\n\s*\}\);", source, re.S)
    if not block:
        print(f"{args.app}: no 'const REASON = Object.freeze({{...}});' table")
        return 1
    problems = []
    table = {}
    for line in block.group(1).splitlines():
        m = re.fullmatch(r"\s*([A-Z][A-Z0-9_]*): '([A-Z][A-Z0-9_]*)',", line)
        if not m:
            problems.append(f"cannot read table line {line.strip()!r}")
            continue
        key, value = m.groups()
        if key != value:
            problems.append(f"REASON.{key} is '{value}', not '{key}'")
        table[key] = value
    for name in sorted(enum - table.keys()):
        problems.append(f"REASON lacks {name}, which error_reason.proto defines")
    for name in sorted(table.keys() - enum):
        problems.append(f"REASON has {name}, which error_reason.proto does not define")

    outside = source[:block.start()] + source[block.end():]
    for literal in sorted(set(re.findall(r"['\"`]([A-Z][A-Z0-9_]*)['\"`]", outside)) & enum):
        problems.append(f"'{literal}' is written as a literal outside REASON; use "
                        f"REASON.{literal}")

    if problems:
        print(f"{args.app} disagrees with proto/air/v1/error_reason.proto:")
        for problem in problems:
            print(f"  {problem}")
        return 1
    print(f"{args.app}: REASON mirrors error_reason.proto ({len(enum)} reasons)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
