"""One benchmark's section of docs/benchmarks.md, written by the reports of bench/*.sh.

Each report builds its section (a `## ` heading and what follows it) and calls `put` with
the raw results it wrote; `sealcast-bench doc` (bench/viewers) puts the section in place of
the one with the same heading, or adds it, as a generated block that names the script
(BENCH_SCRIPT, which bench/lib.sh exports), the raw results and the commit measured
(bench/README.md).
"""
import os
import subprocess
import tempfile

DOCS = "docs/benchmarks.md"
DRIVER = "target/release/sealcast-bench"
HEAD = "# Benchmarks\n\nMeasured with the scripts in `bench/`; ratios > 1 mean sealcast is ahead.\n"


def driver():
    """The sealcast-bench binary: SEALCAST_BENCH when given, else the release build (made
    as bench_build makes it when it is not there)."""
    given = os.environ.get("SEALCAST_BENCH")
    if given:
        return given
    if not os.path.exists(DRIVER):
        subprocess.run(["cargo", "build", "--release", "--locked", "-p", "sealcast", "-p", "viewers"], check=True)
    return DRIVER


def put(section, heading, path=DOCS, after=None, *, results):
    """Puts `section` in place of the section whose heading starts with `heading`; when
    there is none, after the section whose heading starts with `after` (if given and
    there), else at the end; stamped with `results`, the raw JSON it summarises."""
    script = os.environ.get("BENCH_SCRIPT")
    if not script:
        raise SystemExit("docsection.put: BENCH_SCRIPT is not set (bench/lib.sh exports it)")
    if not os.path.exists(path):
        with open(path, "w") as f:
            f.write(HEAD)
    with tempfile.NamedTemporaryFile("w", suffix=".md", delete=False) as f:
        f.write(section.strip("\n") + "\n")
    try:
        args = [driver(), "--docs", path, "doc", "--script", script, "--heading", heading,
                "--results", results, "--section", f.name]
        if after:
            args += ["--after", after]
        subprocess.run(args, check=True)
    finally:
        os.unlink(f.name)


def notes(path):
    """The lines a report adds for its notes file (a blank line, then the notes), or none
    when the file is not there."""
    return ["", open(path).read().strip()] if os.path.exists(path) else []
