#!/usr/bin/env python3
"""Re-creates web/vendor/noble/ from the npm tarballs of @noble/post-quantum 0.7.1 and
@noble/hashes and @noble/curves 2.4.0 (the registry's own tarballs, checked against the
SHA-256 sums in SHA256SUMS beside them; by default ../shared/npm from the repository).

Only the ES modules the verification worker needs are kept (ML-DSA-65 and Ed25519
verification and what they import), each under one flat name `noble-{package}-{path}.js`
so that all of them can be served from /assets/ beside the page's own scripts. The one
change made to a file is that its import specifiers become relative to that flat layout
(`'@noble/hashes/sha3.js'` -> `'./noble-hashes-sha3.js'`, `"./utils.js"` ->
`"./noble-post-quantum-utils.js"`, `"../utils.js"` in curves/abstract ->
`"./noble-curves-utils.js"`): the page's CSP (`script-src 'self'`) rules out the inline
import map that bare specifiers would need. Nothing else is touched (comments, including
the usage examples in them, stay as published).

Usage: web/vendor/noble/vendor.py [DIR_WITH_TARBALLS]. Then update the SHA-256 list in
broadcast/build.rs (the script prints it) and, for a new file, domain/src/paths.rs
(`NOBLE_MODULES`) and broadcast/src/assets.rs.
"""

import hashlib
import io
import pathlib
import re
import sys
import tarfile

HERE = pathlib.Path(__file__).resolve().parent
PACKAGES = {
    "post-quantum": "noble-post-quantum-0.7.1.tgz",
    "hashes": "noble-hashes-2.4.0.tgz",
    "curves": "noble-curves-2.4.0.tgz",
}
# (package, path inside the package): ml-dsa.js and ed25519.js and their imports, closed.
FILES = [
    ("post-quantum", "ml-dsa.js"),
    ("post-quantum", "_crystals.js"),
    ("post-quantum", "utils.js"),
    ("hashes", "sha3.js"),
    ("hashes", "sha2.js"),
    ("hashes", "_md.js"),
    ("hashes", "_u64.js"),
    ("hashes", "utils.js"),
    ("curves", "ed25519.js"),
    ("curves", "utils.js"),
    ("curves", "abstract/curve.js"),
    ("curves", "abstract/edwards.js"),
    ("curves", "abstract/fft.js"),
    ("curves", "abstract/frost.js"),
    ("curves", "abstract/hash-to-curve.js"),
    ("curves", "abstract/modular.js"),
    ("curves", "abstract/montgomery.js"),
    ("curves", "abstract/oprf.js"),
]
LICENSES = {"post-quantum": "LICENSE-post-quantum", "hashes": "LICENSE-hashes-curves"}


def flat(package, path):
    return "noble-" + package + "-" + path.replace("/", "-")


def rewrite(package, path, text):
    """Rewrites the specifiers of import/export statements (lines that start one, or the
    closing line of a multi-line one); returns the text and the flat names imported."""
    here = pathlib.PurePosixPath(path).parent
    imported = []

    def target(spec):
        m = re.fullmatch(r"@noble/([a-z-]+)/(.+\.js)", spec)
        if m:
            return flat(m.group(1), m.group(2))
        if spec.startswith("."):
            joined = pathlib.PurePosixPath(here, spec).as_posix()
            parts = []
            for part in joined.split("/"):
                if part == "..":
                    parts.pop()
                elif part not in (".", ""):
                    parts.append(part)
            return flat(package, "/".join(parts))
        raise SystemExit(f"{package}/{path}: unexpected import {spec!r}")

    def fix(m):
        name = target(m.group(3))
        imported.append(name)
        return f"{m.group(1)}{m.group(2)}./{name}{m.group(2)}"

    statement = re.compile(r"^((?:import|export|\})\b[^\n]*?\bfrom\s+|import\s+)(['\"])([^'\"]+)\2", re.M)
    return statement.sub(fix, text), imported


def main():
    source = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else HERE / "../../../../shared/npm")
    sums = {}
    for line in (source / "SHA256SUMS").read_text().splitlines():
        digest, name = line.split()
        sums[name] = digest
    tars = {}
    for package, tarball in PACKAGES.items():
        data = (source / tarball).read_bytes()
        if hashlib.sha256(data).hexdigest() != sums[tarball]:
            raise SystemExit(f"{tarball}: SHA-256 does not match SHA256SUMS")
        tars[package] = tarfile.open(fileobj=io.BytesIO(data))

    def member(package, path):
        return tars[package].extractfile("package/" + path).read().decode()

    written = set()
    needed = set()
    for package, path in FILES:
        text, imported = rewrite(package, path, member(package, path))
        name = flat(package, path)
        (HERE / name).write_text(text)
        written.add(name)
        needed.update(imported)
    if needed - written:
        raise SystemExit(f"imported but not vendored: {sorted(needed - written)}")
    for package, name in LICENSES.items():
        (HERE / name).write_text(member(package, "LICENSE"))
    if member("curves", "LICENSE") != member("hashes", "LICENSE"):
        raise SystemExit("the curves and hashes licences differ: ship both")
    for name in sorted(written):
        digest = hashlib.sha256((HERE / name).read_bytes()).hexdigest()
        print(f'    ("{name}", "{digest}"),')


if __name__ == "__main__":
    main()
