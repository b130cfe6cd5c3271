//! Gives the system back the memory a burst freed, also while the process idles.
//!
//! mimalloc returns freed pages a second after they were freed (its purge delay), but
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
