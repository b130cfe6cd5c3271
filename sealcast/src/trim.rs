//! Gives the system back the memory a burst freed, also while the process idles.
//!
//! mimalloc returns freed pages some time after they were freed (its purge delay), but
//! only when something runs its purge: freeing a page or collecting a heap. A node that
//! served a burst of viewers and then idled with their connections parked kept what the
//! burst freed, 1 to 5 KB per viewer, for as long as nothing else happened
//! (`bench/memory.sh`). Memory in use is never touched by a collection.
//!
//! A collection reaches only the calling thread's pages (and the arenas, which are
//! shared): the pages a tokio worker freed are purged by that worker alone. So each
//! worker collects when it parks, at most once a second ([`on_park`]), and a thread of
//! our own wakes the workers once a second ([`start`]), so that a worker idle since the
//! burst gets to collect too. With one worker the thread's own collection had sufficed
//! (1.3 KB per idle viewer); at the default of a worker per core, a node kept about
//! 6.6 KB per idle viewer, the pages the other worker had freed.
//!
//! **The collection is forced** (`collect(true)`). mimalloc v2's ordinary collection frees
//! a thread's empty pages into their segment, where they wait for the purge delay, but it
//! never runs a segment's purge itself: a segment whose pages were freed during the burst
//! was purged only if something later freed or took a page in that same segment. After a
//! burst nothing did, and whether it happened by chance made an idle node keep 0.9 to
//! 2.9 KB per parked viewer from one run to the next (9,000 viewers, a worker per core;
//! with `MIMALLOC_PURGE_DELAY=0`, which purges at every free, 0.85 KB every time). A
//! forced collection purges the segments' waiting pages at once, whatever their delay, and
//! settles the node at 0.85 KB. A page freed a moment before is purged too, and faulted in
//! again when it is reused; at most once a second per thread, that costs less than what
//! mimalloc allows itself (its delay is 10 ms).

use std::cell::Cell;
use std::time::{Duration, Instant};

/// How often the allocator is asked to collect, per thread.
const EVERY: Duration = Duration::from_secs(1);

/// Starts the collecting thread for the rest of the process's life: it collects what it
/// can reach itself and, through `runtime`, wakes the runtime's workers (`workers` empty
/// tasks), which collect as they park again.
pub(crate) fn start(runtime: tokio::runtime::Handle, workers: usize) {
    let spawned = std::thread::Builder::new()
        .name("sealcast-trim".into())
        .spawn(move || loop {
            std::thread::sleep(EVERY);
            collect();
            for _ in 0..workers {
                drop(runtime.spawn(async {}));
            }
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "the allocator's collecting thread did not start");
    }
}

/// For the runtime's `on_thread_park`: collects the parking worker's freed pages (forced,
/// see the module documentation), at most once per [`EVERY`] on each thread.
pub(crate) fn on_park() {
    thread_local! {
        static LAST: Cell<Option<Instant>> = const { Cell::new(None) };
    }
    LAST.with(|last| {
        let now = Instant::now();
        if last.get().is_some_and(|at| now.duration_since(at) < EVERY) {
            return;
        }
        last.set(Some(now));
        collect();
    });
}

/// Asks mimalloc to give back, at once, what the calling thread freed and what waits in
/// the arenas (`mi_collect(true)`: forced, see the module documentation).
///
/// The binary's only unsafe code: the `mimalloc` crate wraps the allocator but not this
/// call, so it goes to mimalloc's C API (`libmimalloc-sys`, the crate `mimalloc` itself is
/// built on, with the same features). `cargo test -p sealcast --test deploy layering`
/// checks that no other `allow(unsafe_code)` exists in the tree.
#[allow(unsafe_code)]
fn collect() {
    // SAFETY: `mi_collect` takes no pointer and no state of ours; mimalloc documents it as
    // callable from any thread at any time, and it only returns free pages to the system
    // (memory in use is never touched). The allocator it acts on is the process's global
    // allocator, initialised before `main` runs; without it (the `system-allocator` build)
    // it collects mimalloc's own empty heap, which is harmless.
    unsafe { libmimalloc_sys::mi_collect(true) }
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
        super::collect();
        let after = rss_anon_kib();
        assert!(
            after < start + 64 * 1024,
            "the freed blocks went back to the system: {start} KiB before, {full} KiB with \
             them, {after} KiB after freeing and collecting"
        );
    }
}
