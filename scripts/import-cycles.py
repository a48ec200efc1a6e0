#!/usr/bin/env python3
"""Prints the module import graph of src/ and fails when it has a cycle.

Every `crate::…`, `super::…` and `self::…` path in a file (in `use` items or
inline) is an edge from the file's module to the module the path names. Edges
are compared at the level where the two modules part: `server::limits::rate`
using `server::stack` is an edge `limits → stack` among the children of
`server`, `rest::binding` using `error` is `rest → error` among the top-level
modules. A module using its own parent or child is not an edge: that is how a
module and its parts work together. Usage: scripts/import-cycles.py [src-dir]
"""
import pathlib
import re
import sys
from collections import defaultdict

ROOT = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "src")
SKIP = {"main.rs"}  # the binary is a client of the library, not part of it


def module_of(path: pathlib.Path) -> tuple:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return () if parts == ["lib"] else tuple(parts)


def expand(tree: str) -> list:
    """`a::{b, c::{d, e}}` → [a::b, a::c::d, a::c::e]."""
    tree = re.sub(r"\s+", "", tree)
    depth, start, items = 0, 0, []
    brace = tree.find("{")
    if brace < 0:
        return [tree]
    prefix, inner = tree[:brace], tree[brace + 1 : tree.rindex("}")]
    for i, ch in enumerate(inner):
        depth += ch == "{"
        depth -= ch == "}"
        if ch == "," and depth == 0:
            items.append(inner[start:i])
            start = i + 1
    items.append(inner[start:])
    return [p for item in items if item for p in expand(prefix + item)]


def paths_in(text: str) -> list:
    text = re.sub(r"//[^\n]*", "", text)  # comments and doc comments name paths without using them
    found = []
    for use in re.finditer(r"\buse\s+((?:crate|super|self)::[^;]*);", text):
        found += expand(use.group(1))
    text = re.sub(r"\buse\s+[^;]*;", "", text)
    found += re.findall(r"\b(?:crate|super|self)(?:::(?:super|\w+))+", text)
    return found


def resolve(here: tuple, path: str, modules: set):
    segments = path.split("::")
    base = list(here)
    if segments[0] == "crate":
        base, segments = [], segments[1:]
    elif segments[0] in ("super", "self"):
        while segments and segments[0] in ("super", "self"):
            if segments.pop(0) == "super":
                base = base[:-1]
    else:
        return None
    target = tuple(base)
    for segment in segments:
        if segment == "super":
            target = target[:-1]
        elif target + (segment,) in modules:
            target = target + (segment,)
        else:
            break
    return target


def main() -> int:
    files = {module_of(p): p for p in ROOT.rglob("*.rs") if p.name not in SKIP}
    modules = set(files)
    edges = defaultdict(set)  # parent module → {(child a, child b)}
    for here, path in files.items():
        for used in paths_in(path.read_text()):
            target = resolve(here, used, modules)
            if target is None or target == here:
                continue
            common = 0
            while common < min(len(here), len(target)) and here[common] == target[common]:
                common += 1
            if common == len(here) or common == len(target):
                continue  # parent and child
            edges[here[:common]].add((here[common], target[common]))
    cycles = []
    for parent, pairs in sorted(edges.items()):
        graph = defaultdict(set)
        for a, b in pairs:
            graph[a].add(b)
        for component in strongly_connected(graph):
            if len(component) > 1:
                cycles.append((parent, sorted(component)))
        name = "::".join(parent) or "crate"
        for a in sorted(graph):
            print(f"{name}: {a} -> {', '.join(sorted(graph[a]))}")
    for parent, component in cycles:
        print(f"CYCLE in {'::'.join(parent) or 'crate'}: {' <-> '.join(component)}", file=sys.stderr)
    if not cycles:
        print(f"no import cycle among {len(modules)} modules", file=sys.stderr)
    return 1 if cycles else 0


def strongly_connected(graph):
    index, low, stack, on_stack, out, counter = {}, {}, [], set(), [], [0]
    nodes = set(graph) | {b for bs in graph.values() for b in bs}

    def visit(node):
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            out.append(component)

    for node in sorted(nodes):
        if node not in index:
            visit(node)
    return out


if __name__ == "__main__":
    sys.exit(main())
