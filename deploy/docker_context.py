#!/usr/bin/env python3
"""Copies the build context `docker build -f deploy/Dockerfile .` would send into a
folder, so deploy/check.sh can build the crate from exactly that and prove /.dockerignore
lets in everything the image build reads (no Docker engine exists on CI machines).

    python3 deploy/docker_context.py DEST     (from anywhere; prints the files copied)

Files are those git knows (tracked, or untracked and not git-ignored), filtered by
/.dockerignore with Docker's rules for the patterns that file uses: patterns apply in
order and the last match wins, `!` re-includes, a pattern matching a folder matches
everything under it, `*` and `?` stay within one path segment, `**` spans segments.
"""

from __future__ import annotations

import pathlib
import re
import shutil
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent


def compile_pattern(pattern: str) -> re.Pattern[str]:
    pattern = pattern.strip("/")
    regex = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            regex += "(?:.*/)?"
            i += 3
        elif pattern.startswith("**", i):
            regex += ".*"
            i += 2
        elif pattern[i] == "*":
            regex += "[^/]*"
            i += 1
        elif pattern[i] == "?":
            regex += "[^/]"
            i += 1
        else:
            regex += re.escape(pattern[i])
            i += 1
    return re.compile(regex + r"\Z")


def rules() -> list[tuple[bool, re.Pattern[str]]]:
    out = []
    for line in (ROOT / ".dockerignore").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        out.append((negated, compile_pattern(line[1:] if negated else line)))
    return out


def admitted(path: str, patterns: list[tuple[bool, re.Pattern[str]]]) -> bool:
    parts = path.split("/")
    # The path itself and each folder above it: a pattern naming a folder covers its files.
    candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    excluded = False
    for negated, regex in patterns:
        if any(regex.match(candidate) for candidate in candidates):
            excluded = not negated
    return not excluded


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    dest = pathlib.Path(sys.argv[1])
    listing = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, check=True, capture_output=True,
    ).stdout.decode().split("\0")
    patterns = rules()
    copied = 0
    for path in sorted(p for p in listing if p):
        source = ROOT / path
        if not source.is_file() or not admitted(path, patterns):
            continue
        target = dest / path
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
        copied += 1
    print(f"{copied} files in the Docker build context, copied to {dest}")
    return 0 if copied else 1


if __name__ == "__main__":
    sys.exit(main())
