#!/usr/bin/env python3
"""Checks the layout rules a reader relies on, per workspace crate:

1. No import circles between files. A file depends on another when it names an item
   defined there (`use crate::…`, `use super::…`, `use self::…` and the same paths written
   inline in code); a `pub use` re-export is followed to where the item is defined, so a
   crate root or a `mod.rs` that only declares modules and re-exports their items sits in
   no circle. Two files that import each other, or a longer loop, are reported.
2. No production file over MAX_LINES lines unless its `//!` header says why it is long:
   a header line that starts with "Long because" (say why, not how long).

Reads text only (no build). Exits 1 and prints what it found when a rule is broken, so
`scripts/test.sh` keeps both true. Usage: scripts/check-modules.py [--verbose]
"""

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MAX_LINES = 600
LONG_REASON = re.compile(r"^//!\s*Long because\b")

MOD_DECL = re.compile(r"^\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+([a-z_][a-z0-9_]*)\s*;")
INLINE_MOD = re.compile(r"^\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+([a-z_][a-z0-9_]*)\s*\{")
PATH_ATTR = re.compile(r'^\s*#\[path\s*=\s*"([^"]+)"\]')
USE = re.compile(r"^\s*(pub(?:\([^)]*\))?\s+)?use\s+([^;]+);", re.S)
ITEM = re.compile(
    r"^\s*(?:pub(?:\([^)]*\))?\s+)?(?:async\s+|const\s+|unsafe\s+)*"
    r"(?:fn|struct|enum|trait|type|const|static|union|macro_rules!)\s+([A-Za-z_][A-Za-z0-9_]*)"
)
BARE_PATH = re.compile(r"(?<![\w:])([a-z_][a-z0-9_]*)((?:::[A-Za-z_][A-Za-z0-9_]*)+)")
INLINE_PATH = re.compile(r"\b(crate|super|self)((?:::[A-Za-z_][A-Za-z0-9_]*)+)")


def strip_comments_and_strings(text):
    """The code of a file with comments, strings and char literals blanked (lines kept)."""
    out, i, n = [], 0, len(text)
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
        elif c == "r" and re.match(r'r#*"', text[i:i + 10]) and (i == 0 or not text[i - 1].isalnum()):
            m = re.match(r'r(#*)"', text[i:])
            end = '"' + m.group(1)
            j = text.find(end, i + len(m.group(0)))
            j = n if j < 0 else j + len(end)
            out.append('""' + "\n" * text.count("\n", i, j))
            i = j
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append('""' + "\n" * text.count("\n", i, j))
            i = j + 1
        elif c == "'" and re.match(r"'(\\.|[^\\'])'", text[i:i + 4]):
            m = re.match(r"'(\\.|[^\\'])'", text[i:])
            out.append("' '")
            i += len(m.group(0))
        else:
            out.append(c)
            i += 1
    return "".join(out)


def expand_use(tree):
    """`a::{b, c::{d, e as f}, self}` -> (path, name bound) for a::b, a::c::d, a::c::e (as f), a."""
    tree = re.sub(r"\s*(::|\{|\}|,)\s*", r"\1", tree.strip())
    tree = re.sub(r"\s+", " ", tree)

    def split_top(s):
        parts, depth, cur = [], 0, ""
        for ch in s:
            depth += (ch == "{") - (ch == "}")
            if ch == "," and depth == 0:
                parts.append(cur)
                cur = ""
            else:
                cur += ch
        return parts + ([cur] if cur else [])

    def go(prefix, s):
        if "{" in s:
            head, _, rest = s.partition("{")
            rest = rest[: rest.rfind("}")]
            head = [p for p in head.split("::") if p]
            result = []
            for part in split_top(rest):
                result += go(prefix + head, part)
            return result
        s, _, alias = s.partition(" as ")
        segs = [p for p in s.strip().split("::") if p]
        if segs == ["self"]:
            segs = []
        full = prefix + segs
        return [(full, alias.strip() or (full[-1] if full else ""))]

    return go([], tree)


class Crate:
    def __init__(self, name, src):
        self.name = name
        self.src = src
        # module path (tuple) -> file; file -> module path
        self.file_of = {}
        self.mod_of = {}
        # module path -> {name: ('item',) | ('alias', abs path list)}
        self.names = {}
        self.deps = {}  # file -> {file: first line}
        self.code = {}

    def load(self):
        roots = [p for p in (self.src / "lib.rs", self.src / "main.rs") if p.exists()]
        for root in roots:
            self.walk(root, ())
        # Binaries beside a lib (src/bin/*.rs) are crates of their own; not walked.

    def walk(self, path, modpath):
        if path in self.mod_of:
            return
        self.file_of[modpath] = path
        self.mod_of[path] = modpath
        text = path.read_text()
        code = strip_comments_and_strings(text)
        self.code[path] = code
        lines = code.split("\n")
        # Inline modules: track nesting so names and paths resolve inside them.
        stack = []  # (depth at open, name)
        depth = 0
        pending_path = None
        for line in lines:
            cur = modpath + tuple(n for _, n in stack)
            pa = PATH_ATTR.match(line)
            if pa:
                pending_path = pa.group(1)
            md = MOD_DECL.match(line)
            if md:
                child = md.group(1)
                if pending_path:
                    cpath = (path.parent / pending_path).resolve()
                else:
                    base = path.parent if path.name in ("lib.rs", "main.rs", "mod.rs") else path.parent / path.stem
                    for n in [n for _, n in stack]:
                        base = base / n
                    cpath = base / f"{child}.rs"
                    if not cpath.exists():
                        cpath = base / child / "mod.rs"
                pending_path = None
                self.names.setdefault(cur, {})[child] = ("module", cur + (child,))
                if cpath.exists():
                    self.walk(cpath, cur + (child,))
                continue
            im = INLINE_MOD.match(line)
            if im:
                self.names.setdefault(cur, {})[im.group(1)] = ("module", cur + (im.group(1),))
                self.file_of.setdefault(cur + (im.group(1),), path)
                stack.append((depth, im.group(1)))
            it = ITEM.match(line)
            # Only items at the module's own level: a method of an `impl` or `trait` block
            # (`fn stats(&self)`) is not a name of the module, and must not hide a module of
            # the same name (`crate::stats::…`).
            level = stack[-1][0] + 1 if stack else 0
            if it and depth == level:
                names = self.names.setdefault(cur, {})
                if names.get(it.group(1), ("",))[0] != "module":
                    names[it.group(1)] = ("item", path)
            depth += line.count("{") - line.count("}")
            while stack and depth <= stack[-1][0]:
                stack.pop()
            if not line.strip().startswith("#"):
                pending_path = None if not pa else pending_path

    def absolute(self, segs, modpath):
        """A path as written in module `modpath`, made absolute (None: outside the crate)."""
        if not segs:
            return None
        head = segs[0]
        if head == "crate":
            return list(segs[1:])
        if head == "self":
            return list(modpath) + list(segs[1:])
        if head == "super":
            base = list(modpath)
            rest = list(segs)
            while rest and rest[0] == "super":
                if base:
                    base.pop()
                rest.pop(0)
            if rest and rest[0] == "self":
                rest.pop(0)
            return base + rest
        return None

    def collect_uses(self):
        """Every `use` in every file: re-exports become aliases, the others dependencies."""
        self.uses = []  # (file, modpath-in-file, abs path, line, is_pub)
        for path, code in self.code.items():
            modpath = self.mod_of[path]
            if any(n == "tests" or n.endswith("_tests") for n in modpath):
                continue  # a test module may use anything it tests
            stack, depth = [], 0
            test_depth = None  # depth at which a `#[cfg(test)]` module opened
            cfg_test = False
            lines = code.split("\n")
            joined_line_starts = []
            offset = 0
            for line in lines:
                joined_line_starts.append(offset)
                offset += len(line) + 1
            for lineno, line in enumerate(lines, 1):
                cur = modpath + tuple(n for _, n in stack)
                im = INLINE_MOD.match(line)
                if im:
                    stack.append((depth, im.group(1)))
                    cur_inner = cur + (im.group(1),)
                    if cfg_test and test_depth is None:
                        test_depth = depth
                else:
                    cur_inner = cur
                if re.match(r"^\s*#\[cfg\(test\)\]", line):
                    cfg_test = True
                elif line.strip() and not line.strip().startswith("#"):
                    cfg_test = False
                if test_depth is not None:
                    depth += line.count("{") - line.count("}")
                    while stack and depth <= stack[-1][0]:
                        stack.pop()
                    if depth <= test_depth:
                        test_depth = None
                    continue
                if re.match(r"^\s*(pub(\([^)]*\))?\s+)?use\s", line):
                    start = joined_line_starts[lineno - 1]
                    end = code.find(";", start)
                    stmt = code[start:end + 1]
                    um = USE.match(stmt)
                    if um:
                        is_pub = bool(um.group(1))
                        for segs, bound in expand_use(um.group(2)):
                            if segs and segs[0] in ("crate", "super", "self"):
                                absp = self.absolute(segs, cur_inner)
                                if absp is not None:
                                    self.uses.append((path, cur_inner, absp, lineno, is_pub))
                                    if is_pub and segs[-1] != "*":
                                        self.names.setdefault(cur_inner, {}).setdefault(
                                            bound, ("alias", absp))
                            elif segs:
                                # `use gate::X` inside a module that declares `mod gate`.
                                first = segs[0]
                                if self.names.get(cur_inner, {}).get(first, ("",))[0] == "module":
                                    absp = list(cur_inner) + segs
                                    self.uses.append((path, cur_inner, absp, lineno, is_pub))
                                    if is_pub and segs[-1] != "*":
                                        self.names.setdefault(cur_inner, {}).setdefault(
                                            bound, ("alias", absp))
                    continue
                for m in INLINE_PATH.finditer(line):
                    segs = [m.group(1)] + [s for s in m.group(2).split("::") if s]
                    absp = self.absolute(segs, cur_inner)
                    if absp is not None:
                        self.uses.append((path, cur_inner, absp, lineno, False))
                # A child module named without a prefix (`gate::Gate::new()`).
                for m in BARE_PATH.finditer(line):
                    first = m.group(1)
                    if self.names.get(cur_inner, {}).get(first, ("",))[0] == "module":
                        segs = [first] + [s for s in m.group(2).split("::") if s]
                        self.uses.append((path, cur_inner, list(cur_inner) + segs, lineno, False))
                depth += line.count("{") - line.count("}")
                while stack and depth <= stack[-1][0]:
                    stack.pop()

    def resolve(self, absp, seen=None):
        """The file that defines what `absp` names (following re-exports), or None."""
        seen = seen or set()
        key = tuple(absp)
        if key in seen:
            return None
        seen.add(key)
        mod = ()
        segs = list(absp)
        while segs:
            name = segs[0]
            entry = self.names.get(mod, {}).get(name)
            if entry is None:
                # Unknown name (a glob import, an enum variant, a method): its module's file.
                return self.file_of.get(mod)
            kind = entry[0]
            if kind == "module":
                mod = entry[1]
                segs.pop(0)
                continue
            if kind == "item":
                return entry[1]
            if kind == "alias":
                return self.resolve(list(entry[1]) + segs[1:], seen)
        return self.file_of.get(mod)

    def build(self):
        for path, cur, absp, lineno, is_pub in self.uses:
            if is_pub:
                continue  # a re-export passes a name on; whoever uses it depends on its origin
            if absp and absp[-1] == "*":
                absp = absp[:-1]
            target = self.resolve(absp)
            if target is None or target == path:
                continue
            self.deps.setdefault(path, {}).setdefault(target, lineno)

    def cycles(self):
        """Strongly connected components of more than one file (Tarjan)."""
        index, low, on, stack, out = {}, {}, set(), [], []
        counter = [0]
        nodes = set(self.deps) | {t for ts in self.deps.values() for t in ts}

        def strong(v):
            index[v] = low[v] = counter[0]
            counter[0] += 1
            stack.append(v)
            on.add(v)
            for w in self.deps.get(v, {}):
                if w not in index:
                    strong(w)
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
        for v in sorted(nodes):
            if v not in index:
                strong(v)
        return out


def crates():
    manifest = (ROOT / "Cargo.toml").read_text()
    members = re.search(r"members\s*=\s*\[(.*?)\]", manifest, re.S).group(1)
    for m in re.findall(r'"([^"]+)"', members):
        src = ROOT / m / "src"
        if src.is_dir():
            yield m, src


def long_files(crate):
    """Production files of the crate's module tree over MAX_LINES without a `Long because`
    line in their header (test modules apart)."""
    found = []
    for path, modpath in sorted(crate.mod_of.items()):
        if modpath and (modpath[-1] == "tests" or modpath[-1].endswith("_tests")):
            continue
        lines = path.read_text().split("\n")
        count = len(lines) - (1 if lines and lines[-1] == "" else 0)
        # Unit tests at the bottom of a file do not count against it.
        for i, line in enumerate(lines):
            if re.match(r"^#\[cfg\(test\)\]\s*$", line) and i + 1 < len(lines) and re.match(
                    r"^(pub(\([^)]*\))?\s+)?mod\s+tests\s*\{", lines[i + 1]):
                count = i
                break
        if count <= MAX_LINES:
            continue
        header = [l for l in lines if l.startswith("//!")]
        if not any(LONG_REASON.match(l) for l in header):
            found.append((path, count))
    return found


def main():
    verbose = "--verbose" in sys.argv
    problems = 0
    for name, src in crates():
        crate = Crate(name, src)
        crate.load()
        crate.collect_uses()
        crate.build()
        if verbose:
            for f, ts in sorted(crate.deps.items()):
                for t, line in sorted(ts.items()):
                    print(f"{f.relative_to(ROOT)}:{line} -> {t.relative_to(ROOT)}")
        for comp in crate.cycles():
            problems += 1
            print(f"{name}: import circle between files:")
            for f in comp:
                for t, line in sorted(crate.deps.get(f, {}).items()):
                    if t in comp:
                        print(f"  {f.relative_to(ROOT)}:{line} uses {t.relative_to(ROOT)}")
        for path, count in long_files(crate):
            problems += 1
            print(f"{path.relative_to(ROOT)}: {count} lines of production code and no "
                  f"'//! Long because …' line in its header (over {MAX_LINES})")
    if problems:
        print(f"check-modules: {problems} problem(s)")
        return 1
    print("check-modules: no import circles between files; no unexplained long file")
    return 0


if __name__ == "__main__":
    sys.exit(main())
