//! What the tests of this binary share: one tokio runtime, one `sealcast up` cluster
//! (started by the first test that needs it, stopped once every test has run), one light
//! live stream for the tests that need something playing, and the lock that keeps heavy
//! publishes apart.
//!
//! Every test runs on the shared runtime ([`Fixture::run`]), so the cluster's HTTP client
//! and background tasks outlive any one test.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use testkit::ffmpeg::{Publisher, TestPattern};
use tokio::sync::{Mutex, OnceCell};

use crate::cluster::Cluster;

/// How much of the machine a test takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Load {
    /// 720p30 through the whole ladder, a browser decoding video, or a second cluster:
    /// two of them at once do not fit in the two cores CI machines have, so they take
    /// [`Fixture::heavy`] in turn.
    Heavy,
    /// 240p, source rung only, or no publish at all: runs beside anything, so "other
    /// streams keep going" is checked under real load.
    Light,
}

/// The stream [`Fixture::live_stream`] keeps playing.
pub(crate) const LIVE: &str = "live";

/// Shared by every test of the binary.
pub(crate) struct Fixture {
    runtime: tokio::runtime::Runtime,
    cluster: OnceCell<Result<Arc<Cluster>, String>>,
    /// The light publisher behind [`LIVE`], once a test asked for it.
    live: OnceCell<Result<Publisher, String>>,
    /// Held by a [`Load::Heavy`] test for its whole run.
    heavy: Mutex<()>,
}

impl Fixture {
    pub(crate) fn new() -> anyhow::Result<Self> {
        Ok(Fixture {
            runtime: tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()?,
            cluster: OnceCell::new(),
            live: OnceCell::new(),
            heavy: Mutex::new(()),
        })
    }

    /// Runs `test` on the shared runtime, after taking the heavy lock if `load` says so.
    ///
    /// Says on stderr how long the test waited for its turn and how long it ran, so a
    /// run's log shows where the suite's time goes (docs/deployment.md, CI times).
    pub(crate) fn run<F>(&self, name: &str, load: Load, test: F) -> anyhow::Result<()>
    where
        F: std::future::Future<Output = anyhow::Result<()>>,
    {
        self.runtime.block_on(async {
            let asked = Instant::now();
            let _turn = match load {
                Load::Heavy => Some(self.heavy.lock().await),
                Load::Light => None,
            };
            let started = Instant::now();
            let outcome = test.await;
            eprintln!(
                "e2e time: {name} ({load:?}): {:.0} s, after {:.0} s waiting for its turn",
                started.elapsed().as_secs_f64(),
                (started - asked).as_secs_f64(),
            );
            outcome
        })
    }

    /// The cluster, started on first use. A cluster that failed to start fails every test
    /// that needs it, with the same reason.
    pub(crate) async fn cluster(&self) -> anyhow::Result<Arc<Cluster>> {
        let started = self
            .cluster
            .get_or_init(|| async {
                Cluster::start()
                    .await
                    .map(Arc::new)
                    .map_err(|e| format!("{e:#}"))
            })
            .await;
        match started {
            Ok(cluster) => Ok(Arc::clone(cluster)),
            Err(e) => anyhow::bail!("the cluster did not start: {e}"),
        }
    }

    /// [`LIVE`], a 240p30 stream (source rung only) that plays until the cluster stops;
    /// started on first use, once it lists three segments.
    pub(crate) async fn live_stream(&self, cluster: &Cluster) -> anyhow::Result<&'static str> {
        let started = self
            .live
            .get_or_init(|| async {
                let start = async {
                    let key = cluster.add_stream(LIVE).await?;
                    let publisher =
                        TestPattern::new(426, 240, 30, 3600).publish(&cluster.rtmp_url(&key))?;
                    cluster
                        .wait_media(LIVE, "src", 3, Duration::from_secs(60))
                        .await
                        .context("the shared live stream")?;
                    anyhow::Ok(publisher)
                };
                start.await.map_err(|e| format!("{e:#}"))
            })
            .await;
        match started {
            Ok(_) => Ok(LIVE),
            Err(e) => anyhow::bail!("the shared live stream did not start: {e}"),
        }
    }

    /// Whether a test started the cluster.
    pub(crate) fn cluster_started(&self) -> bool {
        self.cluster.initialized()
    }

    /// After the last test: the shared stream ends, the cluster stops on SIGTERM, cleanly,
    /// and its log holds no secret.
    pub(crate) fn stop(&mut self) -> anyhow::Result<()> {
        if let Some(Ok(publisher)) = self.live.take() {
            let _runtime = self.runtime.enter();
            publisher.kill_hard();
        }
        let Some(cluster) = self.cluster.take() else {
            return Ok(());
        };
        let cluster = cluster.map_err(|e| anyhow::anyhow!("the cluster did not start: {e}"))?;
        self.runtime.block_on(cluster.stop_and_check_logs())
    }
}
