//! What the harness reads of running processes and of the machine from `/proc`: CPU
//! time (bench/lib.sh's `cpu_ticks`), resident memory, the cores.

use std::time::Duration;

use anyhow::Context;

/// utime + stime of the processes summed, in seconds (bench/lib.sh's `cpu_ticks` over
/// `getconf CLK_TCK`); fails when one has gone.
pub fn cpu_seconds(pids: &[u32]) -> anyhow::Result<f64> {
    let ticks = cpu_ticks(pids)?;
    Ok(ticks as f64 / crate::procstat::clock_ticks() as f64)
}

/// utime + stime of the processes summed, in clock ticks (bench/lib.sh's `cpu_ticks`);
/// fails when one has gone.
pub fn cpu_ticks(pids: &[u32]) -> anyhow::Result<u64> {
    crate::procstat::sample(pids)
        .watched
        .with_context(|| format!("no CPU time of {pids:?} in /proc"))
}

/// The CPU seconds between two readings of [`cpu_ticks`], as the scripts wrote them into
/// their results (`sealcast-bench calc cpu-seconds BEFORE AFTER --hz HZ`: the ticks'
/// difference over `getconf CLK_TCK`, printed as Python printed a float).
pub fn cpu_seconds_between(before: u64, after: u64) -> anyhow::Result<String> {
    let ticks = |t: u64| i64::try_from(t).context("clock ticks out of range");
    crate::reports::calc::Calc::CpuSeconds {
        before: ticks(before)?,
        after: ticks(after)?,
        hz: ticks(crate::procstat::clock_ticks())?,
    }
    .run()
}

/// Every core of the machine (`taskset -c 0-N`): what a script left unpinned.
pub fn all_cores() -> String {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    format!("0-{}", cores - 1)
}

/// The processes' resident memory summed (`VmRSS`), in KiB.
pub fn rss_kib(pids: &[u32]) -> anyhow::Result<u64> {
    let mut total = 0;
    for pid in pids {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .with_context(|| format!("process {pid} has gone"))?;
        total += vm_rss_kib(&status).with_context(|| format!("no VmRSS for {pid}"))?;
    }
    Ok(total)
}

/// The processes' resident memory summed ([`rss_kib`]) once it has settled: sampled every
/// second until the last `settle` samples stay within 1 % of each other, at most 90
/// samples (bench/memory.sh's `settled_rss`). Allocators give freed memory back to the
/// system some time after it was freed, and only when something wakes them (mimalloc
/// purges a second or more later, on its next collection): a reading at a fixed moment
/// caught it before or after by chance. Returns the last sample, and whether it settled.
pub fn settled_rss_kib(pids: &[u32], settle: usize) -> anyhow::Result<(u64, bool)> {
    let mut samples = Vec::new();
    for _ in 0..90 {
        samples.push(rss_kib(pids)?);
        if settled(&samples, settle) {
            return Ok((samples[samples.len() - 1], true));
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    Ok((samples.last().copied().unwrap_or_default(), false))
}

/// Whether the last `n` of `samples` (at least `n` of them, and one) lie within 1 % of
/// their highest (`hi - lo <= hi / 100`, in whole KiB).
pub fn settled(samples: &[u64], n: usize) -> bool {
    // None asked for: the script's `${samples[@]: -0}` took them all, settled at once.
    let n = n.max(1);
    if samples.len() < n {
        return false;
    }
    let last = &samples[samples.len() - n..];
    let (Some(lo), Some(hi)) = (last.iter().min(), last.iter().max()) else {
        return false;
    };
    hi - lo <= hi / 100
}

/// `VmRSS` of a `/proc/PID/status` text, in KiB.
pub fn vm_rss_kib(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
