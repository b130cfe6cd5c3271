"""The statistics of the benchmark reports, in one place (issue 46 item 4): the reports'
Python (bench/lib/reports/) imports these instead of each keeping a copy.

Values that are None (a run that measured nothing) are left out everywhere. A median is
`statistics.median` (of an even count, the mean of the middle two) unless it says
otherwise; `median_high` is the larger middle value, which the latency reports have always
used. Spreads are the median, min and max of the runs, the form every summary prints as
"median (min–max)".
"""
import statistics


def _known(xs):
    return [x for x in xs if x is not None]


def median(xs):
    """The median of `xs`; None when there is none."""
    xs = _known(xs)
    return statistics.median(xs) if xs else None


def median_high(xs):
    """The larger of the middle two (the middle one of an odd count); None when there is none."""
    xs = _known(xs)
    return statistics.median_high(xs) if xs else None


def spread(xs, count=False):
    """{"median", "min", "max"} of `xs` (and "n", their number, with `count`); None when there is none."""
    xs = _known(xs)
    if not xs:
        return None
    s = {"median": statistics.median(xs), "min": min(xs), "max": max(xs)}
    if count:
        s["n"] = len(xs)
    return s


def spread_text(s, fmt="{:.2f}"):
    """A spread as the tables print it, "median (min–max)" each in `fmt`; "-" for None."""
    if s is None:
        return "-"
    return f"{fmt.format(s['median'])} ({fmt.format(s['min'])}–{fmt.format(s['max'])})"

