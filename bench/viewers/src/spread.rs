//! The statistics of the benchmarks' reports (issue 46 item 4), for the reports that moved
//! into `sealcast-bench`: what `bench/lib/stats.py` (in git history) gave the reports in
//! Python, with the same results. Values that are `None` (a run that measured nothing) are left out
//! everywhere. A median of an even count is the mean of the middle two. A spread is the
//! median, min and max of the runs, which every summary prints as "median (min–max)".

use serde_json::Value;

/// The median, min and max of some runs' values.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Spread {
    /// The middle value (the mean of the middle two of an even count).
    pub median: f64,
    /// The least value.
    pub min: f64,
    /// The greatest value.
    pub max: f64,
}

/// The median of `xs` (the mean of the middle two of an even count); `None` when empty.
pub fn median(xs: &[f64]) -> Option<f64> {
    let mut sorted = xs.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(sorted[n / 2]),
        _ => Some((sorted[n / 2 - 1] + sorted[n / 2]) / 2.0),
    }
}

/// The spread of the known values of `xs`; `None` when none is known.
pub fn spread(xs: impl IntoIterator<Item = Option<f64>>) -> Option<Spread> {
    let known: Vec<f64> = xs.into_iter().flatten().collect();
    Some(Spread {
        median: median(&known)?,
        min: known.iter().copied().fold(f64::INFINITY, f64::min),
        max: known.iter().copied().fold(f64::NEG_INFINITY, f64::max),
    })
}

/// A spread as the tables print it, "median (min–max)", each with `decimals` decimals;
/// "-" for none.
pub fn text(s: Option<Spread>, decimals: usize) -> String {
    match s {
        None => "-".to_owned(),
        Some(s) => format!(
            "{:.d$} ({:.d$}–{:.d$})",
            s.median,
            s.min,
            s.max,
            d = decimals
        ),
    }
}

/// [`text`] with a comma between groups of three digits (Python's `"{:,.1f}"` as the
/// spread's format).
pub fn grouped_text(s: Option<Spread>, decimals: usize) -> String {
    match s {
        None => "-".to_owned(),
        Some(s) => format!(
            "{} ({}–{})",
            grouped(Some(s.median), decimals),
            grouped(Some(s.min), decimals),
            grouped(Some(s.max), decimals)
        ),
    }
}

/// The spread a raw result holds (`reports::python::counted_json`'s), to print; none for null.
pub fn of_json(v: &Value) -> Option<Spread> {
    Some(Spread {
        median: v.get("median")?.as_f64()?,
        min: v.get("min")?.as_f64()?,
        max: v.get("max")?.as_f64()?,
    })
}

/// `x` with `decimals` decimals and a comma between groups of three digits (Python's
/// `f"{x:,.2f}"`); "—" for none.
pub fn grouped(x: Option<f64>, decimals: usize) -> String {
    let Some(x) = x else {
        return "—".to_owned();
    };
    let text = format!("{x:.decimals$}");
    let (sign, digits) = match text.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", text.as_str()),
    };
    let (whole, fraction) = match digits.find('.') {
        Some(dot) => digits.split_at(dot),
        None => (digits, ""),
    };
    if !whole.bytes().all(|b| b.is_ascii_digit()) {
        return text; // inf, NaN
    }
    let mut out = String::with_capacity(text.len() + whole.len() / 3);
    for (i, c) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    format!("{sign}{out}{fraction}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grouped_puts_a_comma_every_three_digits_as_python_does() {
        let cases = [
            (98_901.2, 0, "98,901"),
            (977.0, 0, "977"),
            (1_234_567.891, 2, "1,234,567.89"),
            (1.0839, 2, "1.08"),
            (-1234.5, 1, "-1,234.5"),
            (-0.001, 2, "-0.00"),
            (999_999.6, 0, "1,000,000"),
            (0.0, 0, "0"),
        ];
        for (x, decimals, want) in cases {
            assert_eq!(grouped(Some(x), decimals), want, "{x} with {decimals}");
        }
        assert_eq!(grouped(None, 2), "—");
        assert_eq!(grouped(Some(f64::INFINITY), 2), "inf");
    }
    use proptest::prelude::*;

    #[test]
    fn the_median_of_an_even_count_is_the_mean_of_the_middle_two() {
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[]), None);
        assert_eq!(spread([None, None]), None);
        assert_eq!(
            text(spread([Some(2.0), None, Some(1.0), Some(4.0)]), 1),
            "2.0 (1.0–4.0)"
        );
        assert_eq!(text(None, 2), "-");
    }

    proptest! {
        #[test]
        fn a_spread_orders_its_figures_and_ignores_the_unknown(
            xs in proptest::collection::vec(proptest::option::of(-1e9f64..1e9), 0..40)
        ) {
            let known: Vec<f64> = xs.iter().flatten().copied().collect();
            match spread(xs.clone()) {
                None => prop_assert!(known.is_empty()),
                Some(s) => {
                    prop_assert!(s.min <= s.median && s.median <= s.max);
                    prop_assert!(known.contains(&s.min) && known.contains(&s.max));
                    // As many values at or below the median as at or above it.
                    let below = known.iter().filter(|x| **x <= s.median).count();
                    let above = known.iter().filter(|x| **x >= s.median).count();
                    prop_assert!(2 * below >= known.len() && 2 * above >= known.len());
                }
            }
        }
    }
}
