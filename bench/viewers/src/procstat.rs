//! CPU time from `/proc`, for telling who ran out of CPU during a ramp step: this process
//! (the load generator), the processes under test, and each core as a whole.
//!
//! Linux only; elsewhere (or for a process that has gone) the readings are `None` or empty.

use std::time::Instant;

/// What was read at one moment.
#[derive(Debug, Clone)]
pub struct CpuSample {
    /// When.
    pub at: Instant,
    /// utime + stime of this process, in clock ticks.
    pub own: Option<u64>,
    /// utime + stime of the watched processes summed (`None` if one could not be read).
    pub watched: Option<u64>,
    /// Per core (`cpu0`, `cpu1`, …): ticks busy and ticks in all.
    pub cores: Vec<CoreTicks>,
}

/// One core's counters from `/proc/stat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CoreTicks {
    /// Everything but idle and iowait.
    pub busy: u64,
    /// Every state.
    pub total: u64,
}

/// Reads the counters now; `watched` are process ids.
pub fn sample(watched: &[u32]) -> CpuSample {
    let read = |pid: &str| {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|t| process_ticks(&t))
    };
    let watched = if watched.is_empty() {
        None
    } else {
        watched
            .iter()
            .map(|p| read(&p.to_string()))
            .sum::<Option<u64>>()
    };
    CpuSample {
        at: Instant::now(),
        own: read("self"),
        watched,
        cores: std::fs::read_to_string("/proc/stat")
            .map(|t| core_ticks(&t))
            .unwrap_or_default(),
    }
}

/// utime + stime (fields 14 and 15) of a `/proc/PID/stat` line. The command name (field
/// 2) is in parentheses and may hold spaces, so fields are counted after its last `)`.
pub fn process_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state is field 3, so utime (14) and stime (15) are at 11 and 12.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// The per-core lines (`cpuN ...`, not the `cpu` total) of `/proc/stat`, in order.
pub fn core_ticks(stat: &str) -> Vec<CoreTicks> {
    stat.lines()
        .filter(|l| l.starts_with("cpu") && l.as_bytes().get(3).is_some_and(u8::is_ascii_digit))
        .map(|l| {
            let v: Vec<u64> = l
                .split_whitespace()
                .skip(1)
                .filter_map(|x| x.parse().ok())
                .collect();
            let total: u64 = v.iter().sum();
            // user nice system idle iowait irq softirq steal guest guest_nice; guest time is
            // already counted in user.
            let guest: u64 = v.iter().skip(8).sum();
            let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
            CoreTicks {
                busy: total.saturating_sub(idle + guest),
                total: total.saturating_sub(guest),
            }
        })
        .collect()
}

/// Clock ticks per second (`getconf CLK_TCK`; 100, Linux's, if that cannot be run).
pub fn clock_ticks() -> u64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .filter(|v| *v > 0)
        .unwrap_or(100)
}

/// Between two samples: CPU-seconds per wall-second of this process and of the watched
/// ones, and the busy fraction of each core.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct CpuShares {
    /// This process (the load generator).
    pub own: Option<f64>,
    /// The watched processes together.
    pub watched: Option<f64>,
    /// Each core, 0 to 1.
    pub cores: Vec<f64>,
}

/// The shares between `a` and `b` (`b` later), with `hz` clock ticks per second.
pub fn shares(a: &CpuSample, b: &CpuSample, hz: u64) -> CpuShares {
    let secs = b.at.saturating_duration_since(a.at).as_secs_f64();
    let per_sec = |x: Option<u64>, y: Option<u64>| match (x, y) {
        (Some(x), Some(y)) if secs > 0.0 && hz > 0 => {
            Some(y.saturating_sub(x) as f64 / hz as f64 / secs)
        }
        _ => None,
    };
    CpuShares {
        own: per_sec(a.own, b.own),
        watched: per_sec(a.watched, b.watched),
        cores: a
            .cores
            .iter()
            .zip(&b.cores)
            .map(|(x, y)| {
                let total = y.total.saturating_sub(x.total);
                if total == 0 {
                    0.0
                } else {
                    y.busy.saturating_sub(x.busy) as f64 / total as f64
                }
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn reads_a_process_line_with_spaces_in_its_name() {
        let line = "4242 (tokio (rt) 1) S 1 4242 4242 0 -1 4194560 2500 0 0 0 731 269 0 0 20 0 3 0 12345 1000 10 18446744073709551615";
        assert_eq!(process_ticks(line), Some(1000));
        assert_eq!(process_ticks("garbage"), None);
        assert_eq!(process_ticks("1 (x) S 1"), None);
    }

    #[test]
    fn reads_cores_not_the_total() {
        let stat = "cpu  300 0 100 500 100 0 0 0 0 0\n\
                    cpu0 200 0 50 200 50 0 0 0 0 0\n\
                    cpu1 100 0 50 300 50 0 0 0 20 0\n\
                    intr 123\n";
        assert_eq!(
            core_ticks(stat),
            [
                CoreTicks {
                    busy: 250,
                    total: 500
                },
                CoreTicks {
                    busy: 150,
                    total: 500
                }
            ]
        );
    }

    #[test]
    fn shares_between_two_samples() {
        let at = Instant::now();
        let a = CpuSample {
            at,
            own: Some(100),
            watched: Some(1000),
            cores: vec![
                CoreTicks { busy: 0, total: 0 },
                CoreTicks {
                    busy: 10,
                    total: 100,
                },
            ],
        };
        let b = CpuSample {
            at: at + Duration::from_secs(2),
            own: Some(150),
            watched: Some(1190),
            cores: vec![
                CoreTicks { busy: 0, total: 0 },
                CoreTicks {
                    busy: 160,
                    total: 300,
                },
            ],
        };
        let s = shares(&a, &b, 100);
        assert_eq!(s.own, Some(0.25));
        assert_eq!(s.watched, Some(0.95));
        assert_eq!(s.cores, [0.0, 0.75]);
        let none = CpuSample { watched: None, ..b };
        assert_eq!(shares(&a, &none, 100).watched, None);
    }
}
