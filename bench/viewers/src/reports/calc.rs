//! The little sums the benchmark scripts make between two readings, printed as the
//! `python3 -c` one-liners they replace printed them (Python's `print` of a float, which
//! `reports::python::python_float` reproduces): a process's CPU seconds or CPU share from
//! its clock ticks (`bench/edge.sh`, `bench/lb.sh`, `bench/compose.sh`), the seconds
//! between two `date +%s.%N` (`bench/compose.sh`), a member of a JSON line
//! (`bench/memory.sh`, `bench/lb.sh`). `sealcast-bench calc …`: bash has no floats, and
//! awk's `printf` cannot print a float the way Python does.

use anyhow::{bail, ensure, Context};
use serde_json::Value;

use super::python::{parse_json, python_float, python_number, python_round};

/// One sum, printed on a line of its own.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Calc {
    /// A process's CPU seconds between two readings of its clock ticks (`cpu_ticks`):
    /// `(AFTER - BEFORE) / HZ`.
    CpuSeconds {
        /// The ticks at the start.
        before: i64,
        /// The ticks at the end.
        after: i64,
        /// Clock ticks per second (`getconf CLK_TCK`).
        #[arg(long)]
        hz: i64,
    },
    /// A process's CPU share over SECONDS, in percent, to one decimal: `round((AFTER -
    /// BEFORE) / HZ / SECONDS * 100, 1)`.
    CpuPercent {
        /// The ticks at the start.
        before: i64,
        /// The ticks at the end.
        after: i64,
        /// Clock ticks per second (`getconf CLK_TCK`).
        #[arg(long)]
        hz: i64,
        /// The seconds between the two readings.
        #[arg(long)]
        seconds: f64,
    },
    /// The seconds from START to END (each `date +%s.%N`), to two decimals.
    Elapsed {
        /// The time at the start.
        start: f64,
        /// The time at the end.
        end: f64,
    },
    /// The member KEY of the JSON object LINE, as Python's `print` shows it (a number as
    /// `str` prints it, a string as it is).
    Field {
        /// The member's name.
        key: String,
        /// The JSON object.
        line: String,
    },
}

impl Calc {
    /// The line the sum prints.
    pub fn run(&self) -> anyhow::Result<String> {
        match self {
            Calc::CpuSeconds { before, after, hz } => {
                ensure!(*hz > 0, "clock ticks per second: {hz}");
                // Python's int / int: the nearest float to the quotient, as both convert
                // exactly (below 2^53).
                Ok(python_float((after - before) as f64 / *hz as f64))
            }
            Calc::CpuPercent {
                before,
                after,
                hz,
                seconds,
            } => {
                ensure!(*hz > 0, "clock ticks per second: {hz}");
                let share = (after - before) as f64 / *hz as f64 / seconds * 100.0;
                Ok(python_float(python_round(share, 1)))
            }
            Calc::Elapsed { start, end } => Ok(python_float(python_round(end - start, 2))),
            Calc::Field { key, line } => {
                let object = parse_json(line).with_context(|| format!("not JSON: {line}"))?;
                let value = object
                    .as_object()
                    .with_context(|| format!("not a JSON object: {line}"))?
                    .get(key)
                    .with_context(|| format!("no {key} in {line}"))?;
                Ok(match value {
                    Value::String(s) => s.clone(),
                    Value::Number(_) => python_number(value),
                    Value::Bool(true) => "True".to_owned(),
                    Value::Bool(false) => "False".to_owned(),
                    Value::Null => "None".to_owned(),
                    _ => bail!("{key} is not a number or a string: {value}"),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the one-liners printed on the same numbers (Python 3.11).
    #[test]
    fn prints_what_the_python_one_liners_printed() {
        let run = |calc: Calc| calc.run().expect("a sum");
        let cpu = |before, after| Calc::CpuSeconds {
            before,
            after,
            hz: 100,
        };
        assert_eq!(run(cpu(1234, 1571)), "3.37");
        assert_eq!(run(cpu(5, 1205)), "12.0");
        assert_eq!(run(cpu(7, 7)), "0.0");
        assert_eq!(run(cpu(0, 1)), "0.01");
        let percent = |before, after| Calc::CpuPercent {
            before,
            after,
            hz: 100,
            seconds: 10.0,
        };
        assert_eq!(run(percent(1000, 1037)), "3.7");
        assert_eq!(run(percent(1000, 1001)), "0.1");
        assert_eq!(run(percent(1000, 2999)), "199.9");
        assert_eq!(run(percent(1, 1)), "0.0");
        let elapsed = |start: &str, end: &str| Calc::Elapsed {
            start: start.parse().expect("a time"),
            end: end.parse().expect("a time"),
        };
        assert_eq!(
            run(elapsed("1764509807.123456789", "1764509819.430012345")),
            "12.31"
        );
        assert_eq!(
            run(elapsed("1764509807.123456789", "1764509807.125456789")),
            "0.0"
        );
        assert_eq!(
            run(elapsed("1764509807.000000000", "1764509847.100000000")),
            "40.1"
        );
        let field = |key: &str| Calc::Field {
            key: key.to_owned(),
            line: r#"{"open": 9000, "failed": 0, "bytes": 1.5e3, "note": "ok"}"#.to_owned(),
        };
        assert_eq!(run(field("open")), "9000");
        assert_eq!(run(field("failed")), "0");
        assert_eq!(run(field("bytes")), "1500.0");
        assert_eq!(run(field("note")), "ok");
        assert!(field("missing").run().is_err());
    }
}
