//! Gives the system back the memory a burst freed, also while the process idles.
//!
//! mimalloc returns freed pages some time after they were freed (its purge delay), but
//! only when something runs its purge: freeing a page or collecting a heap. A node that
//! served a burst of viewers and then idled with their connections parked kept what the
//! burst freed, 1 to 5 KB per viewer, for as long as nothing else happened
//! (`bench/memory.sh`). A thread of its own asks for a collection once a second; it
//! purges only what has passed the delay, so memory in use is never touched and memory
//! freed a moment ago stays for reuse.

use std::time::Duration;

/// How often the allocator is asked to collect.
const EVERY: Duration = Duration::from_secs(1);

/// Starts the collecting thread for the rest of the process's life.
pub(crate) fn start() {
    let spawned = std::thread::Builder::new()
        .name("sealcast-trim".into())
        .spawn(|| loop {
            std::thread::sleep(EVERY);
            mimalloc::collect(false);
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "the allocator's collecting thread did not start");
    }
}

#[cfg(test)]
mod tests {
    /// Anonymous resident memory of this process, in KiB.
    fn rss_anon_kib() -> u64 {
        let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("RssAnon:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("RssAnon in /proc/self/status")
    }

    #[test]
    fn collecting_returns_what_was_freed() {
        // 256 MiB in 16 KiB blocks (the size of a parked connection's old buffers), each
        // touched so that it is resident, then freed: mimalloc keeps the pages until its
        // purge runs; a collection runs it (forced here, so without its delay).
        const BLOCK: usize = 16 * 1024;
        const COUNT: usize = 16 * 1024;
        let start = rss_anon_kib();
        let blocks: Vec<Vec<u8>> = (0..COUNT).map(|i| vec![i as u8 | 1; BLOCK]).collect();
        let full = rss_anon_kib();
        assert!(
            full >= start + 200 * 1024,
            "the blocks are resident: {start} KiB before, {full} KiB with them"
        );
        drop(blocks);
        mimalloc::collect(true);
        let after = rss_anon_kib();
        assert!(
            after < start + 64 * 1024,
            "the freed blocks went back to the system: {start} KiB before, {full} KiB with \
             them, {after} KiB after freeing and collecting"
        );
    }
}
