"""One benchmark's section of docs/benchmarks.md, written by the reports of bench/*.sh.

Each report builds its section (a `## ` heading and what follows it) and calls `put`; the
section replaces the one with the same heading, or is added, with one blank line before
the next heading.
"""
import os

DOCS = "docs/benchmarks.md"
HEAD = "# Benchmarks\n\nMeasured with the scripts in `bench/`; ratios > 1 mean sealcast is ahead.\n"


def put(section, heading, path=DOCS, after=None):
    """Puts `section` in place of the section whose heading starts with `heading`; when
    there is none, after the section whose heading starts with `after` (if given and
    there), else at the end."""
    text = open(path).read() if os.path.exists(path) else HEAD
    section = section.strip("\n") + "\n"
    at = text.find(heading)
    if at >= 0:
        end = text.find("\n## ", at + 1)
        text = text[:at] + section + ("\n" + text[end + 1:] if end >= 0 else "")
    else:
        anchor = text.find(after) if after else -1
        end = text.find("\n## ", anchor + 1) if anchor >= 0 else -1
        if end >= 0:
            text = text[:end + 1] + section + "\n" + text[end + 1:]
        else:
            text = text.rstrip("\n") + "\n\n" + section
    with open(path, "w") as f:
        f.write(text)


def notes(path):
    """The lines a report adds for its notes file (a blank line, then the notes), or none
    when the file is not there."""
    return ["", open(path).read().strip()] if os.path.exists(path) else []
