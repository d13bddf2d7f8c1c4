#!/usr/bin/env python3
"""Lists Rust functions longer than a limit (the brief: a function over about
80 lines is a smell). A rough count: functions are found by their `fn` line
and measured by brace matching, with string and char literals and `//`
comments blanked; test functions are included.

    python3 scripts/long_functions.py [DIR] [--limit N]    # default src, 80
"""
import argparse
import os
import re

FN = re.compile(r'\s*(pub(\([^)]*\))?\s+)?(const\s+)?(unsafe\s+)?(async\s+)?fn\s+(\w+)')


def code(line):
    line = re.sub(r'"(\\.|[^"\\])*"', '""', line)
    line = re.sub(r"'(\\.|[^'\\])'", "''", line)
    return line.split('//')[0]


def length(lines, i):
    """Lines from the `fn` line at `i` to its closing brace, or None for a
    declaration without a body."""
    depth, started = 0, False
    for j in range(i, len(lines)):
        s = code(lines[j])
        if not started and ';' in s and '{' not in s:
            return None
        for c in s:
            if c == '{':
                depth, started = depth + 1, True
            elif c == '}':
                depth -= 1
        if started and depth == 0:
            return j - i + 1
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('dir', nargs='?', default='src')
    ap.add_argument('--limit', type=int, default=80)
    args = ap.parse_args()
    found = []
    for root, _, files in os.walk(args.dir):
        for f in files:
            if not f.endswith('.rs'):
                continue
            path = os.path.join(root, f)
            with open(path) as fh:
                lines = fh.read().split('\n')
            for i, line in enumerate(lines):
                m = FN.match(line)
                if m:
                    n = length(lines, i)
                    if n is not None and n > args.limit:
                        found.append((n, path, i + 1, m.group(6)))
    for n, path, line, name in sorted(found, reverse=True):
        print(f"{n:5} {path}:{line} {name}")
    print(f"{len(found)} functions over {args.limit} lines")


if __name__ == '__main__':
    main()
