#!/usr/bin/env python3
"""The layout rules CI holds the code to, read from the sources alone (standard library).

- no import circle between the files of one crate (file A names something of file B,
  directly or through others, and B of A); `pub use` / `mod` lines of a lib.rs or mod.rs
  declare a module's surface and are not counted, nor are `#[cfg(test)] mod tests` blocks;
- no function longer than MAX_FUNCTION_LINES outside tests and benches;
- no source file longer than MAX_FILE_LINES (tests and benches included);
- the binary (`src/`) under MAX_BINARY_LINES in all.

Prints every breach and exits 1 when there is one. `--report` prints the longest functions
and files too.
"""

import re
import sys
from pathlib import Path

MAX_FUNCTION_LINES = 120
MAX_FILE_LINES = 800
MAX_BINARY_LINES = 400

ROOT = Path(__file__).resolve().parent.parent


def crates():
    """(name, src folder) of every package: the root binary and crates/*."""
    yield "thaw (binary)", ROOT / "src"
    for toml in sorted(ROOT.glob("crates/*/Cargo.toml")):
        yield toml.parent.name, toml.parent / "src"


def strip_comments_and_strings(text):
    """The code with comments and string literals blanked (line breaks kept)."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            i = j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append("\n" * text.count("\n", i, j))
            i = j
        elif c == "r" and re.match(r'r#*"', text[i:i + 10]) and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
            hashes = re.match(r'r(#*)"', text[i:]).group(1)
            end = '"' + hashes
            j = text.find(end, i + 2 + len(hashes))
            j = n if j < 0 else j + len(end)
            out.append('""' + "\n" * text.count("\n", i, j))
            i = j
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append('""' + "\n" * text.count("\n", i, j))
            i = j + 1
        elif c == "'" and re.match(r"'(\\.|[^\\'])'", text[i:i + 4]) or re.match(r"'\\u\{[0-9a-fA-F]+\}'", text[i:i + 12]):
            m = re.match(r"'(\\u\{[0-9a-fA-F]+\}|\\.|[^\\'])'", text[i:])
            out.append("' '")
            i += len(m.group(0))
        else:
            out.append(c)
            i += 1
    return "".join(out)


def without_tests(code):
    """Code before a `#[cfg(test)] mod tests` block (thaw keeps them last in a file)."""
    m = re.search(r"#\[cfg\(test\)\]\s*(pub\s+)?mod\s+\w+\s*\{", code)
    return code[: m.start()] if m else code


def module_files(src):
    """{module path (tuple): file} for the crate rooted at src/lib.rs or src/main.rs."""
    files = {}
    for path in sorted(src.rglob("*.rs")):
        rel = path.relative_to(src).with_suffix("")
        parts = list(rel.parts)
        if parts in (["lib"], ["main"]):
            parts = []
        elif parts[-1] == "mod":
            parts = parts[:-1]
        files[tuple(parts)] = path
    return files


def expand_use(tree):
    """`a::{b, c::{d, e}}` -> ['a::b', 'a::c::d', 'a::c::e']."""
    tree = tree.strip()
    m = re.match(r"^(.*?)::\{(.*)\}$", tree, re.S)
    if not m:
        return [tree]
    head, body = m.group(1), m.group(2)
    parts, depth, cur = [], 0, ""
    for ch in body:
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
            continue
        depth += ch == "{"
        depth -= ch == "}"
        cur += ch
    parts.append(cur)
    out = []
    for p in parts:
        p = p.strip()
        if not p:
            continue
        out += [head + "::" + x if x != "self" else head for x in expand_use(p)]
    return out


def references(code, here, is_surface):
    """Module paths (tuples) the code names through `crate::` or `super::`."""
    paths = []
    for m in re.finditer(r"(^|\n)\s*(pub(\([^)]*\))?\s+)?use\s+([^;]+);", code):
        if is_surface and m.group(2):
            continue
        paths += expand_use(re.sub(r"\s+", "", m.group(4)))
    body = re.sub(r"(^|\n)\s*(pub(\([^)]*\))?\s+)?use\s+[^;]+;", "\n", code)
    paths += re.findall(r"\b((?:crate|super)(?:::\w+)+)", body)
    out = []
    for p in paths:
        segs = p.split("::")
        if segs[0] == "crate":
            out.append(tuple(segs[1:]))
        elif segs[0] == "super":
            base = list(here)
            while segs and segs[0] == "super":
                base = base[:-1]
                segs = segs[1:]
            out.append(tuple(base + segs))
    return out


def resolve(path, files):
    """The longest module prefix of `path` that is a file of the crate."""
    for k in range(len(path), -1, -1):
        if tuple(path[:k]) in files:
            return tuple(path[:k])
    return ()


def cycles(files):
    graph = {}
    for mod, path in files.items():
        code = without_tests(strip_comments_and_strings(path.read_text()))
        is_surface = path.name in ("lib.rs", "main.rs", "mod.rs")
        targets = {resolve(r, files) for r in references(code, mod, is_surface)}
        graph[mod] = {t for t in targets if t != mod}
    # Tarjan's strongly connected components.
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
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
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in graph:
        if v not in index:
            visit(v)
    return out, graph


FN = re.compile(r"^[ \t]*(pub(\([^)]*\))?\s+)?(const\s+)?(async\s+)?(unsafe\s+)?(extern\s+\"[^\"]*\"\s+)?fn\s+(\w+)", re.M)


def functions(path):
    """(name, first line, lines) of every fn with a body, outside test blocks."""
    code = without_tests(strip_comments_and_strings(path.read_text()))
    out = []
    for m in FN.finditer(code):
        i = m.end()
        # The body's brace: the first '{' before a ';' at depth 0 of parentheses/brackets.
        depth = 0
        while i < len(code):
            ch = code[i]
            if ch in "([<" and ch != "<":
                depth += 1
            elif ch in ")]":
                depth -= 1
            elif ch == ";" and depth == 0:
                i = -1
                break
            elif ch == "{" and depth == 0:
                break
            i += 1
        if i < 0 or i >= len(code):
            continue
        braces, j = 0, i
        while j < len(code):
            braces += code[j] == "{"
            braces -= code[j] == "}"
            if braces == 0:
                break
            j += 1
        first = code.count("\n", 0, m.start()) + 1
        last = code.count("\n", 0, j) + 1
        out.append((m.group(7), first, last - first + 1))
    return out


def main():
    report = "--report" in sys.argv
    problems = []
    longest = []
    for name, src in crates():
        files = module_files(src)
        comps, _ = cycles(files)
        for comp in comps:
            shown = ", ".join(str(files[m].relative_to(ROOT)) for m in comp)
            problems.append(f"{name}: import circle between {shown}")
    sources = [p for p in ROOT.glob("src/**/*.rs")] + [p for p in ROOT.glob("crates/*/src/**/*.rs")]
    everything = sources + list(ROOT.glob("tests/**/*.rs")) + list(ROOT.glob("crates/*/tests/**/*.rs")) + list(ROOT.glob("benches/**/*.rs")) + list(ROOT.glob("crates/*/benches/**/*.rs")) + list(ROOT.glob("crates/*/examples/**/*.rs"))
    for path in sorted(everything):
        lines = path.read_text().count("\n")
        longest.append((lines, str(path.relative_to(ROOT))))
        if lines > MAX_FILE_LINES:
            problems.append(f"{path.relative_to(ROOT)}: {lines} lines (at most {MAX_FILE_LINES})")
    fn_lengths = []
    for path in sorted(sources):
        for fname, first, n in functions(path):
            fn_lengths.append((n, f"{path.relative_to(ROOT)}:{first} {fname}"))
            if n > MAX_FUNCTION_LINES:
                problems.append(f"{path.relative_to(ROOT)}:{first}: fn {fname} is {n} lines (at most {MAX_FUNCTION_LINES})")
    binary = sum(p.read_text().count("\n") for p in ROOT.glob("src/**/*.rs"))
    if binary > MAX_BINARY_LINES:
        problems.append(f"src/: the binary is {binary} lines (at most {MAX_BINARY_LINES})")
    if report:
        print(f"binary: {binary} lines")
        print("longest functions:")
        for n, where in sorted(fn_lengths, reverse=True)[:12]:
            print(f"  {n:4} {where}")
        print("longest files:")
        for n, where in sorted(longest, reverse=True)[:12]:
            print(f"  {n:4} {where}")
    for p in problems:
        print(p)
    if problems:
        print(f"{len(problems)} layout problems", file=sys.stderr)
        return 1
    print("layout: no import circle, no function over "
          f"{MAX_FUNCTION_LINES} lines, no file over {MAX_FILE_LINES} lines, binary {binary} lines")
    return 0


if __name__ == "__main__":
    sys.exit(main())
