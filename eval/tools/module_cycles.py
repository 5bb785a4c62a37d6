#!/usr/bin/env python3
"""Import circles between a crate's modules.

For every crate under services/, proto/ and eval/, maps each source file to
its module path and adds an edge A -> B when A names an item of a module B
that is neither A itself, an ancestor nor a descendant of A (`crate::x::…`,
`super::…` resolved), lifted to the siblings under their common ancestor. A parent declaring its children, and children using
their parent's items, are how Rust modules nest, not circles. Prints every
strongly connected component of two or more modules; exits 1 if any.

    python3 eval/tools/module_cycles.py
"""
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]


def crates():
    for toml in sorted(ROOT.glob("**/Cargo.toml")):
        if "target" in toml.parts or toml.parent == ROOT:
            continue
        src = toml.parent / "src"
        if src.is_dir():
            yield toml.parent.relative_to(ROOT), src


def module_of(src, path):
    rel = path.relative_to(src).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] in ("lib", "main", "mod"):
        parts = parts[:-1]
    if parts and parts[0] == "bin":
        return None
    return tuple(parts)


PATH = re.compile(r"\b(crate|super|self)((?:::\w+)+)")


def refs(mod, text, modules):
    for m in PATH.finditer(text):
        head, tail = m.group(1), m.group(2).split("::")[1:]
        if head == "crate":
            base = []
        elif head == "self":
            base = list(mod)
        else:
            base = list(mod[:-1])
            while tail and tail[0] == "super":
                base, tail = base[:-1], tail[1:]
        path = tuple(base + tail)
        # The longest prefix that is a module.
        while path and path not in modules:
            path = path[:-1]
        yield path


def related(a, b):
    return a[: len(b)] == b or b[: len(a)] == a


def sccs(graph):
    index, low, stack, on, out, n = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = n[0]
        n[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            out.append(comp)

    for v in list(graph):
        if v not in index:
            visit(v)
    return out


found = 0
for crate, src in crates():
    files = {}
    for p in src.rglob("*.rs"):
        mod = module_of(src, p)
        if mod is not None:
            files.setdefault(mod, []).append(p)
    modules = set(files) | {()}
    graph = {m: set() for m in modules}
    for mod, paths in files.items():
        for p in paths:
            text = re.sub(r"//[^\n]*", "", p.read_text())
            for target in refs(mod, text, modules):
                if not related(mod, target):
                    # Lift the edge to the two siblings under the modules' common
                    # ancestor: `a::x` using `b::y` makes `a` depend on `b`.
                    k = 0
                    while mod[k] == target[k]:
                        k += 1
                    graph[mod[: k + 1]].add(target[: k + 1])
    for comp in sccs(graph):
        if len(comp) > 1:
            found += 1
            print(f"{crate}: " + " -> ".join("::".join(m) or "crate" for m in sorted(comp)))
print(f"{found} import circle(s) in {sum(1 for _ in crates())} crates")
sys.exit(1 if found else 0)
