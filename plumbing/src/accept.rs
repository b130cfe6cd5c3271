//! One bounded accept loop for every TCP server of the cluster: the RTMP server, a
//! broadcast node's HTTP server and the metrics listeners.
//!
//! Three loops used to bound connections and back off on accept errors each their own way
//! (one paused a fixed 100 ms, one spawned untracked tasks); now [`AcceptLoop::run`] does it
//! once, after mini-redis's `server.rs`:
//!
//! - **a connection cap**: the connections' tasks are counted while they live (the tracker
//!   below), and one over the cap is closed on arrival (and reported to
//!   [`Handler::refused`], which counts it) instead of left waiting in the listen backlog,
//!   unlike mini-redis: a flood then costs a file descriptor for a moment, and the operator
//!   sees it;
//! - **backoff on accept errors**: running out of file descriptors makes `accept` fail at
//!   once, again and again; the loop pauses ([`Backoff`]: 10 ms, doubling to 1 s, back to
//!   10 ms after a success) instead of spinning a core;
//! - **shutdown**: the caller's token stops accepting (a pause is cut short too), the
//!   listener is closed so that new clients are refused by the kernel, and every
//!   connection's task, tracked from its spawn, is awaited. The connections see the same
//!   token and end as their protocol allows (an HTTP request in flight finishes).
//!
//! What a connection does is the caller's: a [`Handler`] turns an accepted socket into the
//! future of its task. An HTTP/1.1 handler's future is usually [`serve_http`]: the
//! connection within a lifetime, drained on shutdown. Sockets come from anything that implements [`Accept`], so a
//! listener that wraps its sockets (the broadcast node counts them open) uses the same loop.
//!
//! **A connection's task is its handler's future and nothing more** (issue 33): the loop
//! spawns that future as it is, tracked ([`TaskTracker::track_future`] adds a word). An
//! idle connection costs its task for as long as it is open, 9,000 of them on a busy node,
//! and a future wrapped in another (`async move { task.await; drop(slot) }`, as this loop
//! once held a semaphore slot) is stored twice over: the wrapper keeps the moved-from
//! future's space beside the one it awaits. That grew a broadcast node's parked connection
//! task from 768 B to 1,280 B (a heap profile, `bench/memory.sh`). The cap therefore counts
//! the tracked tasks instead of handing each a semaphore permit.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use hyper_util::server::graceful::GracefulConnection;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::task_tracker::TrackedFuture;
use tokio_util::task::TaskTracker;

/// How long after shutdown the loop waits for its connections before it says some are
/// still open (then it goes on waiting).
const LINGER_REPORT: Duration = Duration::from_secs(10);

/// A source of connections: a bound TCP listener, or a listener that wraps its sockets.
pub trait Accept: Send {
    /// What one accepted connection is.
    type Io: Send + 'static;

    /// The next connection and its peer; an error is the listener's (out of file
    /// descriptors, typically), and the loop pauses before it asks again.
    fn accept(&mut self) -> impl Future<Output = io::Result<(Self::Io, SocketAddr)>> + Send;
}

impl Accept for TcpListener {
    type Io = TcpStream;

    fn accept(&mut self) -> impl Future<Output = io::Result<(TcpStream, SocketAddr)>> + Send {
        TcpListener::accept(self)
    }
}

/// What a server does with its connections: one required method, and a hook with a
/// default body.
pub trait Handler<Io>: Send {
    /// The task of one admitted connection. It runs tracked (the loop awaits it on
    /// shutdown) and counts against the cap until it ends, so it should end soon after
    /// the shutdown token it was given is cancelled. The future is spawned as it is: what it
    /// holds while its connection idles is what an idle connection costs.
    fn serve(&mut self, io: Io, peer: SocketAddr) -> impl Future<Output = ()> + Send + 'static;

    /// A connection from `peer` was closed on arrival: the cap was reached. By default
    /// nothing more happens; a server that counts refusals does it here.
    fn refused(&mut self, peer: SocketAddr) {
        let _ = peer;
    }
}

/// The pause after a failed accept: `first`, doubled after each failure in a row up to
/// `max`, `first` again after a success. Sans-IO: it says how long, the loop sleeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    first: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    /// A backoff from `first` doubling up to `max` (at least `first`).
    pub fn new(first: Duration, max: Duration) -> Self {
        Backoff {
            first,
            max: max.max(first),
            next: first,
        }
    }

    /// An accept failed: how long to pause before the next one.
    pub fn failed(&mut self) -> Duration {
        let pause = self.next;
        self.next = self.next.saturating_mul(2).min(self.max);
        pause
    }

    /// An accept succeeded: the next failure pauses `first` again.
    pub fn succeeded(&mut self) {
        self.next = self.first;
    }
}

impl Default for Backoff {
    /// 10 ms doubling to 1 s: short enough that a momentary shortage of descriptors costs
    /// clients nothing they notice, long enough that a lasting one does not spin a core.
    fn default() -> Self {
        Backoff::new(Duration::from_millis(10), Duration::from_secs(1))
    }
}

/// How a server accepts: its name in log lines, its connection cap, its backoff.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AcceptLoop {
    /// What the server is called in log lines (`RTMP`, `HTTP`, `metrics`).
    pub server: &'static str,
    /// Connections open at once (at least one); more are closed on arrival.
    pub max_connections: usize,
    /// The pause after failed accepts.
    pub backoff: Backoff,
}

impl AcceptLoop {
    /// The loop of `server`, with at most `max_connections` open at once and the default
    /// [`Backoff`].
    pub fn new(server: &'static str, max_connections: usize) -> Self {
        AcceptLoop {
            server,
            max_connections,
            backoff: Backoff::default(),
        }
    }

    /// Accepts from `listener` until `shutdown`, each admitted connection served by
    /// `handler` in a task of its own; then closes the listener and returns once every
    /// connection's task has ended.
    pub async fn run<L, H>(self, mut listener: L, mut handler: H, shutdown: &CancellationToken)
    where
        L: Accept,
        H: Handler<L::Io>,
    {
        let max = self.max_connections.max(1);
        let connections = TaskTracker::new();
        let mut backoff = self.backoff;
        loop {
            let (io, peer) = tokio::select! {
                () = shutdown.cancelled() => break,
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => {
                        backoff.succeeded();
                        accepted
                    }
                    Err(e) => {
                        let pause = backoff.failed();
                        tracing::warn!(error = %e, ?pause, "{} accept failed", self.server);
                        tokio::select! {
                            () = shutdown.cancelled() => break,
                            () = tokio::time::sleep(pause) => continue,
                        }
                    }
                },
            };
            // Only this loop adds tasks, and they only end meanwhile: the count cannot pass
            // the cap between this check and the spawn.
            if connections.len() >= max {
                drop(io);
                handler.refused(peer);
                continue;
            }
            tokio::spawn(connection_task(&connections, handler.serve(io, peer)));
        }
        drop(listener);
        connections.close();
        // Bounded by what the connections do with the token; said when it takes long, so
        // that a shutdown that hangs names the server that holds it.
        if tokio::time::timeout(LINGER_REPORT, connections.wait())
            .await
            .is_ok()
        {
            return;
        }
        tracing::warn!(
            open = connections.len(),
            after = ?LINGER_REPORT,
            "{} connections still open after shutdown; waiting for them",
            self.server
        );
        connections.wait().await;
    }
}

/// What the loop spawns for a connection: the handler's future, tracked (counted open
/// until it ends, joined on shutdown), with no wrapper around it (the module documentation
/// says why).
fn connection_task<F: Future>(connections: &TaskTracker, task: F) -> TrackedFuture<F> {
    connections.track_future(task)
}

/// Serves one HTTP connection to its end, for at most `lifetime` in all: once `shutdown`
/// fires, the connection is asked to finish (the request in flight is answered, no new one
/// is read) and given `drain` to do so. What the metrics listener and the WHIP listener run
/// per connection.
pub async fn serve_http<C: GracefulConnection>(
    connection: C,
    shutdown: CancellationToken,
    drain: Duration,
    lifetime: Duration,
) {
    tokio::pin!(connection);
    let served = async {
        tokio::select! {
            _ = connection.as_mut() => {}
            () = shutdown.cancelled() => {
                connection.as_mut().graceful_shutdown();
                let _ = tokio::time::timeout(drain, connection.as_mut()).await;
            }
        }
    };
    let _ = tokio::time::timeout(lifetime, served).await;
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    use proptest::prelude::*;
    use tokio::sync::{mpsc, oneshot};
    use tokio::time::Instant;

    use super::*;

    /// A listener fed by the test: each item is what the next `accept` returns.
    struct Scripted(mpsc::UnboundedReceiver<io::Result<((), SocketAddr)>>);

    impl Accept for Scripted {
        type Io = ();

        async fn accept(&mut self) -> io::Result<((), SocketAddr)> {
            match self.0.recv().await {
                Some(next) => next,
                // The script ran out: no more connections, ever.
                None => std::future::pending().await,
            }
        }
    }

    fn peer(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    type Script = mpsc::UnboundedSender<io::Result<((), SocketAddr)>>;

    /// Runs a loop of `max` connections over a scripted listener in a task of its own,
    /// until `stop`.
    fn start<H: Handler<()> + 'static>(
        max: usize,
        handler: H,
        stop: &CancellationToken,
    ) -> (Script, tokio::task::JoinHandle<()>) {
        let (script, rx) = mpsc::unbounded_channel();
        let stop = stop.clone();
        let server = tokio::spawn(async move {
            AcceptLoop::new("test", max)
                .run(Scripted(rx), handler, &stop)
                .await
        });
        (script, server)
    }

    /// Tells the test about every connection served and refused; each served one runs
    /// until its port's release is sent (or dropped).
    struct Recorder {
        served: mpsc::UnboundedSender<(u16, Instant)>,
        refused: mpsc::UnboundedSender<u16>,
        releases: Vec<(u16, oneshot::Receiver<()>)>,
    }

    impl Handler<()> for Recorder {
        fn serve(&mut self, (): (), peer: SocketAddr) -> impl Future<Output = ()> + Send + 'static {
            let _ = self.served.send((peer.port(), Instant::now()));
            let release = self
                .releases
                .iter()
                .position(|(port, _)| *port == peer.port())
                .map(|i| self.releases.swap_remove(i).1);
            async move {
                if let Some(release) = release {
                    let _ = release.await;
                }
            }
        }

        fn refused(&mut self, peer: SocketAddr) {
            let _ = self.refused.send(peer.port());
        }
    }

    #[tokio::test]
    async fn connections_over_the_cap_are_refused_until_a_slot_frees() {
        let (served_tx, mut served) = mpsc::unbounded_channel();
        let (refused_tx, mut refused) = mpsc::unbounded_channel();
        let (release_1, held_1) = oneshot::channel();
        let (release_2, held_2) = oneshot::channel();
        let handler = Recorder {
            served: served_tx,
            refused: refused_tx,
            releases: vec![(1, held_1), (2, held_2)],
        };
        let stop = CancellationToken::new();
        let (script, server) = start(2, handler, &stop);
        for port in [1, 2, 3] {
            script.send(Ok(((), peer(port)))).expect("loop runs");
        }
        assert_eq!(served.recv().await.map(|s| s.0), Some(1));
        assert_eq!(served.recv().await.map(|s| s.0), Some(2));
        assert_eq!(refused.recv().await, Some(3), "the third is over the cap");
        // The first ends: its slot takes the next connection.
        release_1.send(()).expect("held");
        let mut admitted = None;
        for port in 4..100 {
            script.send(Ok(((), peer(port)))).expect("loop runs");
            tokio::select! {
                s = served.recv() => {
                    admitted = s.map(|s| s.0);
                    break;
                }
                r = refused.recv() => assert_eq!(r, Some(port)),
            }
        }
        assert!(admitted.is_some(), "a freed slot serves again");
        stop.cancel();
        drop(release_2);
        server.await.expect("joined");
    }

    /// The loop returns only once every connection's task has ended: a connection that
    /// takes a (paused-clock) second to finish after the shutdown is waited for.
    #[tokio::test(start_paused = true)]
    async fn shutdown_waits_for_every_connection() {
        let stop = CancellationToken::new();
        let finished = Arc::new(AtomicBool::new(false));
        struct Lingering {
            stop: CancellationToken,
            finished: Arc<AtomicBool>,
            started: Option<oneshot::Sender<()>>,
        }
        impl Handler<()> for Lingering {
            fn serve(
                &mut self,
                (): (),
                _: SocketAddr,
            ) -> impl Future<Output = ()> + Send + 'static {
                let (stop, finished) = (self.stop.clone(), Arc::clone(&self.finished));
                if let Some(started) = self.started.take() {
                    let _ = started.send(());
                }
                async move {
                    stop.cancelled().await;
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    finished.store(true, Ordering::SeqCst);
                }
            }
        }
        let (started_tx, started) = oneshot::channel();
        let handler = Lingering {
            stop: stop.clone(),
            finished: Arc::clone(&finished),
            started: Some(started_tx),
        };
        let (script, server) = start(4, handler, &stop);
        script.send(Ok(((), peer(1)))).expect("loop runs");
        started.await.expect("served");
        let cancelled_at = Instant::now();
        stop.cancel();
        server.await.expect("joined");
        assert!(
            finished.load(Ordering::SeqCst),
            "returned before its connection ended"
        );
        assert_eq!(cancelled_at.elapsed(), Duration::from_secs(1));
    }

    /// Failed accepts pause 10, 20 and 40 ms (paused clock) before the next is tried, and
    /// a shutdown cuts a pause short.
    #[tokio::test(start_paused = true)]
    async fn failed_accepts_back_off_doubling() {
        let (served_tx, mut served) = mpsc::unbounded_channel();
        let (refused_tx, _refused) = mpsc::unbounded_channel();
        let handler = Recorder {
            served: served_tx,
            refused: refused_tx,
            releases: Vec::new(),
        };
        let stop = CancellationToken::new();
        let (script, server) = start(4, handler, &stop);
        let began = Instant::now();
        for _ in 0..3 {
            script
                .send(Err(io::Error::other("too many open files")))
                .expect("queued");
        }
        script.send(Ok(((), peer(1)))).expect("queued");
        for _ in 0..8 {
            script
                .send(Err(io::Error::other("too many open files")))
                .expect("queued");
        }
        let (_, at) = served.recv().await.expect("served after the pauses");
        assert_eq!(at - began, Duration::from_millis(10 + 20 + 40));
        // After the success the pauses start from 10 ms again and double up to 640 ms
        // (1,270 ms in all); the pause after the eighth failure is capped at 1 s, and the
        // shutdown comes 100 ms into it.
        tokio::time::sleep(Duration::from_millis(
            10 + 20 + 40 + 80 + 160 + 320 + 640 + 100,
        ))
        .await;
        let cancelled_at = Instant::now();
        stop.cancel();
        server.await.expect("joined");
        assert_eq!(cancelled_at.elapsed(), Duration::ZERO);
    }

    /// What the loop spawns for a connection is the handler's future and the tracker's
    /// token, no more: an idle connection's task stays the size of its future (issue 33;
    /// a wrapper that awaited the future stored it twice).
    #[test]
    fn a_connection_task_is_its_future_and_a_token() {
        let tracker = TaskTracker::new();
        let held = [7u8; 512];
        let future = async move {
            tokio::task::yield_now().await;
            std::hint::black_box(held);
        };
        let alone = std::mem::size_of_val(&future);
        assert!(alone >= 512, "the future holds its array: {alone} B");
        let task = connection_task(&tracker, future);
        assert!(
            std::mem::size_of_val(&task) <= alone + std::mem::size_of::<usize>(),
            "a {alone} B future became a {} B task",
            std::mem::size_of_val(&task)
        );
        assert_eq!(
            tracker.len(),
            1,
            "the task counts against the cap while it lives"
        );
        drop(task);
        assert_eq!(tracker.len(), 0, "and no longer once it is gone");
    }

    proptest! {
        /// Pauses start at `first`, double while failures continue, never exceed `max`,
        /// and start over after a success.
        #[test]
        fn backoff_doubles_to_its_cap_and_resets(
            first_ms in 1u64..1000,
            max_ms in 0u64..10_000,
            outcomes in proptest::collection::vec(any::<bool>(), 0..64),
        ) {
            let first = Duration::from_millis(first_ms);
            let max = Duration::from_millis(max_ms).max(first);
            let mut backoff = Backoff::new(first, Duration::from_millis(max_ms));
            let mut previous: Option<Duration> = None;
            for failed in outcomes {
                if failed {
                    let pause = backoff.failed();
                    prop_assert!(pause >= first && pause <= max, "{pause:?}");
                    match previous {
                        None => prop_assert_eq!(pause, first),
                        Some(p) => prop_assert_eq!(pause, (p * 2).min(max)),
                    }
                    previous = Some(pause);
                } else {
                    backoff.succeeded();
                    previous = None;
                }
            }
        }
    }
}
