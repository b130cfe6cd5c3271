//! Load reports on the wire: [`ProcessSampler`] measures this process, [`run_reporter`]
//! publishes a node's report every [`REPORT_EVERY`], and [`follow_cluster`] feeds every
//! node's presence and reports into a [`ClusterView`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use domain::broker::BrokerAddress;
use domain::load::LoadReport;
use domain::presence::{Announcement, Presence};
use domain::topics::Topic;
use domain::NodeId;
use parking_lot::Mutex;
use plumbing::{BusEvent, BusOptions, Qos};
use tokio_util::sync::CancellationToken;

use crate::ClusterView;

pub use domain::load::REPORT_EVERY;

/// CPU and memory of this process, from `/proc/self` (Linux). Every part of a process
/// shares these numbers: under `sealcast up` all nodes report the same CPU and memory.
#[derive(Debug)]
pub struct ProcessSampler {
    last: Option<(Instant, u64)>,
}

/// Linux reports CPU time in `/proc` in units of `USER_HZ`, which the kernel ABI fixes at
/// 100 per second on every architecture we build for.
const USER_HZ: f64 = 100.0;

impl Default for ProcessSampler {
    fn default() -> Self {
        Self::new()
    }
}

impl ProcessSampler {
    /// A sampler; its first reading reports 0 % CPU (there is no interval yet).
    pub fn new() -> Self {
        ProcessSampler { last: None }
    }

    /// CPU used since the previous call, in percent of one core, and resident memory in
    /// bytes. Zero for what cannot be read (not Linux, or a restricted `/proc`).
    pub fn sample(&mut self) -> (f64, u64) {
        let now = Instant::now();
        let ticks = std::fs::read_to_string("/proc/self/stat")
            .ok()
            .and_then(|s| cpu_ticks(&s));
        let memory = std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| resident_bytes(&s))
            .unwrap_or(0);
        let cpu = match (ticks, self.last) {
            (Some(t), Some((then, before))) => {
                let secs = now.saturating_duration_since(then).as_secs_f64();
                if secs > 0.0 {
                    (t.saturating_sub(before) as f64 / USER_HZ) / secs * 100.0
                } else {
                    0.0
                }
            }
            _ => 0.0,
        };
        if let Some(t) = ticks {
            self.last = Some((now, t));
        }
        (cpu, memory)
    }
}

/// utime + stime of `/proc/self/stat` (fields 14 and 15; the command name, field 2, may
/// hold spaces and parentheses, so fields are counted after its closing parenthesis).
fn cpu_ticks(stat: &str) -> Option<u64> {
    let after = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    // After the name: state is field 3, so utime (14) and stime (15) are at 11 and 12.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// `VmRSS` of `/proc/self/status`, which the kernel gives in kB.
fn resident_bytes(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Publishes `sample()` on `topic` every [`REPORT_EVERY`] until `stop`, on its own MQTT
/// connection (clean session: a report that could not be sent is worthless later).
pub async fn run_reporter(
    broker: BrokerAddress,
    client_id: String,
    topic: Topic,
    mut sample: impl FnMut() -> LoadReport + Send,
    stop: CancellationToken,
) {
    let mut options = BusOptions::new(broker, client_id);
    options.persistent = false;
    let (bus, mut events, task) = plumbing::connect(options, stop.clone());
    let mut tick = tokio::time::interval(REPORT_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            // Nothing is subscribed; drain connects so the channel never fills.
            event = events.recv() => if event.is_none() { break },
            _ = tick.tick() => {
                let report = sample();
                // Dropped while the broker is away: the next one comes in two seconds.
                if let Err(e) = bus.publish_advisory(&topic, report.encode()) {
                    tracing::debug!(error = %e, "could not publish the load report");
                }
            }
        }
    }
    let _ = bus.disconnect();
    let _ = task.await;
}

/// Keeps `view` up to date with every node's presence and load reports until `stop`.
/// `seen` is told of every presence (to record the node in the catalog).
pub async fn follow_cluster(
    broker: BrokerAddress,
    client_id: String,
    view: Arc<Mutex<ClusterView>>,
    mut seen: impl FnMut(&NodeId, &Presence) + Send,
    stop: CancellationToken,
) {
    let mut options = BusOptions::new(broker, client_id);
    options.persistent = false;
    options.subscriptions = vec![
        (Topic::filter_all_presence(), Qos::AtLeastOnce),
        (Topic::filter_all_node_loads(), Qos::AtMostOnce),
        (Topic::filter_all_ingest_loads(), Qos::AtMostOnce),
    ];
    let (_bus, mut events, task) = plumbing::connect(options, stop.clone());
    let mut sweep = tokio::time::interval(Duration::from_secs(60));
    loop {
        let event = tokio::select! {
            () = stop.cancelled() => break,
            _ = sweep.tick() => {
                view.lock().forget_stale(Instant::now());
                continue;
            }
            event = events.recv() => match event {
                Some(e) => e,
                None => break,
            },
        };
        let BusEvent::Message(message) = event else {
            continue;
        };
        let now = Instant::now();
        match &message.topic {
            Topic::Presence(node) if message.payload.is_empty() => {
                view.lock().presence(node.clone(), None, now);
            }
            // As claimed: the dashboard shows presences without checking broadcast nodes'
            // signatures (the load balancer and the ingests do, before they route or push).
            Topic::Presence(node) => {
                match Announcement::decode(&message.payload).and_then(|a| a.claimed()) {
                    Ok(p) => {
                        seen(node, &p);
                        view.lock().presence(node.clone(), Some(p), now);
                    }
                    Err(e) => tracing::debug!(%node, error = %e, "ignored a presence"),
                }
            }
            Topic::NodeLoad(node) | Topic::IngestLoad(node) => {
                match LoadReport::decode(&message.payload) {
                    Ok(r) => view.lock().report(node.clone(), r, now),
                    Err(e) => tracing::debug!(%node, error = %e, "ignored a load report"),
                }
            }
            _ => {}
        }
    }
    let _ = task.await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_proc_formats() {
        let stat = "1234 (a (weird) name) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 1 0";
        assert_eq!(cpu_ticks(stat), Some(300));
        assert_eq!(cpu_ticks("garbage"), None);
        assert_eq!(
            resident_bytes("Name:\tx\nVmRSS:\t   2048 kB\n"),
            Some(2048 * 1024)
        );
        assert_eq!(resident_bytes("Name:\tx\n"), None);
    }

    #[test]
    fn samples_this_process() {
        let mut s = ProcessSampler::new();
        let (cpu, mem) = s.sample();
        assert_eq!(cpu, 0.0);
        if cfg!(target_os = "linux") {
            assert!(mem > 0);
        }
    }
}
