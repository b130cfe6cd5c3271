//! [`ClusterView`]: what the cluster looks like from the control plane, sans-IO. Presences
//! and load reports go in (with the time they arrived), the `/api/v1/nodes` and
//! `/api/v1/live` answers come out.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use domain::load::{LoadReport, RungSpeed, SegmentCounts};
use domain::presence::{Presence, PresenceState, Role};
use domain::{NodeId, StreamName};
use serde::Serialize;

/// A node that has not reported for this long is shown unhealthy.
pub const STALE_AFTER: Duration = Duration::from_secs(10);
/// A node silent (and not present) for this long is forgotten.
const FORGET_AFTER: Duration = Duration::from_secs(300);

/// Everything known about one node.
#[derive(Debug, Clone)]
struct Known {
    role: Option<Role>,
    state: Option<PresenceState>,
    url: Option<String>,
    report: Option<LoadReport>,
    /// When its last report arrived (our clock; the report's own `at` is the sender's).
    reported: Option<Instant>,
    /// When we last heard anything from or about it.
    heard: Instant,
}

/// The cluster as the control plane shows it.
#[derive(Debug, Default)]
pub struct ClusterView {
    nodes: HashMap<NodeId, Known>,
}

/// One node in `/api/v1/nodes`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NodeStatus {
    /// The node's id.
    pub node: NodeId,
    /// `broadcast` or `ingest`, once known.
    pub role: Option<Role>,
    /// Its announced membership state (`joining`, `ready`, `behind`, `offline`), if it announced one.
    pub state: Option<PresenceState>,
    /// Its announced base URL.
    pub url: Option<String>,
    /// Present (not offline) and reporting.
    pub healthy: bool,
    /// The sender's clock at its last report (unix seconds).
    pub last_report: Option<i64>,
    /// Its last reported load.
    pub load: Option<NodeLoad>,
    /// Its signature gate's counts (broadcast nodes).
    pub segments: Option<SegmentCounts>,
}

/// The load part of a [`NodeStatus`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NodeLoad {
    /// Percent of one core.
    pub cpu_percent: f64,
    /// Resident memory.
    pub memory_bytes: u64,
    /// Open connections.
    pub connections: u64,
    /// Bytes sent since start.
    pub bytes_out: u64,
    /// Viewers over all its streams.
    pub viewers: u64,
}

/// One stream in `/api/v1/live`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LiveStream {
    /// The stream.
    pub name: StreamName,
    /// Its publish session.
    pub session: String,
    /// The ingest node publishing it.
    pub ingest_node: NodeId,
    /// When the session started (unix seconds).
    pub started_at: i64,
    /// Encode speed per rung.
    pub renditions: Vec<RungSpeed>,
    /// Viewers over all nodes.
    pub viewers: u64,
    /// The broadcast nodes serving it, with their viewers.
    pub nodes: Vec<ServingNode>,
}

/// A broadcast node serving a live stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServingNode {
    /// The node.
    pub node: NodeId,
    /// Its viewers of this stream.
    pub viewers: u64,
}

impl ClusterView {
    /// A node's presence (`None`: its retained presence was cleared).
    pub fn presence(&mut self, node: NodeId, presence: Option<Presence>, now: Instant) {
        let known = self.entry(node, now);
        match presence {
            Some(p) => {
                known.role = Some(p.role);
                known.state = Some(p.state);
                known.url = p.url;
            }
            None => known.state = Some(PresenceState::Offline),
        }
    }

    /// A node's load report.
    pub fn report(&mut self, node: NodeId, report: LoadReport, now: Instant) {
        let known = self.entry(node, now);
        known.role = Some(report.role);
        known.report = Some(report);
        known.reported = Some(now);
    }

    fn entry(&mut self, node: NodeId, now: Instant) -> &mut Known {
        let known = self.nodes.entry(node).or_insert(Known {
            role: None,
            state: None,
            url: None,
            report: None,
            reported: None,
            heard: now,
        });
        known.heard = now;
        known
    }

    /// Drops nodes that are offline or silent and have not been heard of for a while.
    pub fn forget_stale(&mut self, now: Instant) {
        self.nodes.retain(|_, k| {
            let present = k.state.is_some_and(|s| s != PresenceState::Offline);
            present || now.saturating_duration_since(k.heard) < FORGET_AFTER
        });
    }

    fn fresh(k: &Known, now: Instant) -> bool {
        k.reported
            .is_some_and(|t| now.saturating_duration_since(t) < STALE_AFTER)
    }

    /// Every node, sorted by id.
    pub fn nodes(&self, now: Instant) -> Vec<NodeStatus> {
        let mut out: Vec<NodeStatus> = self
            .nodes
            .iter()
            .map(|(id, k)| {
                let fresh = Self::fresh(k, now);
                let offline = k.state == Some(PresenceState::Offline);
                NodeStatus {
                    node: id.clone(),
                    role: k.role,
                    state: k.state,
                    url: k.url.clone(),
                    healthy: fresh && !offline,
                    last_report: k.report.as_ref().map(|r| r.at),
                    load: k.report.as_ref().map(|r| NodeLoad {
                        cpu_percent: r.cpu_percent,
                        memory_bytes: r.memory_bytes,
                        connections: r.connections,
                        bytes_out: r.bytes_out,
                        viewers: r.viewers.values().sum(),
                    }),
                    segments: k
                        .report
                        .as_ref()
                        .filter(|r| r.role == Role::Broadcast)
                        .map(|r| r.segments),
                }
            })
            .collect();
        out.sort_by(|a, b| a.node.cmp(&b.node));
        out
    }

    /// The live streams: those a fresh ingest report lists, with the viewers fresh
    /// broadcast reports count, sorted by name.
    pub fn live(&self, now: Instant) -> Vec<LiveStream> {
        let mut live: BTreeMap<StreamName, LiveStream> = BTreeMap::new();
        for (id, k) in &self.nodes {
            let Some(report) = k.report.as_ref().filter(|_| Self::fresh(k, now)) else {
                continue;
            };
            if report.role != Role::Ingest {
                continue;
            }
            for s in &report.streams {
                // Two ingests cannot both hold a stream for long (a takeover ends one);
                // in the moment they do, the newer session is the live one.
                let newer = live
                    .get(&s.stream)
                    .is_none_or(|l| l.started_at <= s.started_at);
                if newer {
                    live.insert(
                        s.stream.clone(),
                        LiveStream {
                            name: s.stream.clone(),
                            session: s.session.clone(),
                            ingest_node: id.clone(),
                            started_at: s.started_at,
                            renditions: s.renditions.clone(),
                            viewers: 0,
                            nodes: Vec::new(),
                        },
                    );
                }
            }
        }
        for (id, k) in &self.nodes {
            let Some(report) = k.report.as_ref().filter(|_| Self::fresh(k, now)) else {
                continue;
            };
            if report.role != Role::Broadcast || k.state == Some(PresenceState::Offline) {
                continue;
            }
            for (stream, viewers) in &report.viewers {
                if let Some(l) = live.get_mut(stream) {
                    l.viewers += viewers;
                    l.nodes.push(ServingNode {
                        node: id.clone(),
                        viewers: *viewers,
                    });
                }
            }
        }
        let mut out: Vec<LiveStream> = live.into_values().collect();
        for l in &mut out {
            l.nodes.sort_by(|a, b| a.node.cmp(&b.node));
        }
        out
    }

    /// Whether anything is known about `node`.
    pub fn knows(&self, node: &NodeId) -> bool {
        self.nodes.contains_key(node)
    }
}

#[cfg(test)]
mod tests {
    use domain::load::IngestStream;
    use domain::RenditionName;
    use proptest::prelude::*;

    use super::*;

    fn id(s: &str) -> NodeId {
        NodeId::new(s).expect("valid")
    }

    fn stream(s: &str) -> StreamName {
        StreamName::new(s).expect("valid")
    }

    fn report(role: Role) -> LoadReport {
        LoadReport {
            role,
            at: 100,
            cpu_percent: 1.0,
            memory_bytes: 10,
            connections: 1,
            bytes_out: 5,
            viewers: BTreeMap::new(),
            segments: SegmentCounts::default(),
            streams: Vec::new(),
        }
    }

    fn ingest_with(name: &str, started_at: i64) -> LoadReport {
        let mut r = report(Role::Ingest);
        r.streams.push(IngestStream {
            stream: stream(name),
            session: format!("{started_at:016x}"),
            started_at,
            renditions: vec![RungSpeed {
                rendition: RenditionName::new("720p").expect("valid"),
                encode_fps: Some(30.0),
                realtime_factor: Some(1.0),
            }],
        });
        r
    }

    fn edge_with(viewers: &[(&str, u64)]) -> LoadReport {
        let mut r = report(Role::Broadcast);
        r.viewers = viewers.iter().map(|(s, n)| (stream(s), *n)).collect();
        r
    }

    #[test]
    fn live_streams_gather_viewers_from_every_edge() {
        let t0 = Instant::now();
        let mut view = ClusterView::default();
        view.report(id("ingest1"), ingest_with("demo", 10), t0);
        view.report(id("b1"), edge_with(&[("demo", 2), ("gone", 7)]), t0);
        view.report(id("b2"), edge_with(&[("demo", 1)]), t0);
        let live = view.live(t0);
        assert_eq!(live.len(), 1, "a stream no ingest publishes is not live");
        assert_eq!(live[0].viewers, 3);
        assert_eq!(live[0].ingest_node, id("ingest1"));
        assert_eq!(
            live[0].nodes,
            vec![
                ServingNode {
                    node: id("b1"),
                    viewers: 2
                },
                ServingNode {
                    node: id("b2"),
                    viewers: 1
                }
            ]
        );
    }

    #[test]
    fn silent_or_offline_nodes_are_unhealthy_and_drop_out_of_live() {
        let t0 = Instant::now();
        let mut view = ClusterView::default();
        view.report(id("ingest1"), ingest_with("demo", 10), t0);
        view.report(id("b1"), edge_with(&[("demo", 2)]), t0);
        view.presence(
            id("b1"),
            Some(Presence {
                role: Role::Broadcast,
                state: PresenceState::Ready,
                url: Some("http://b1:8080".into()),
                direct_url: None,
            }),
            t0,
        );
        assert!(view.nodes(t0).iter().all(|n| n.healthy));
        view.presence(id("b1"), None, t0);
        assert_eq!(view.live(t0)[0].viewers, 0);
        let later = t0 + STALE_AFTER;
        assert!(view.nodes(later).iter().all(|n| !n.healthy));
        assert!(view.live(later).is_empty());
        view.forget_stale(t0 + FORGET_AFTER);
        assert!(view.nodes(later).is_empty());
    }

    #[test]
    fn the_newer_session_wins_a_takeover_between_ingests() {
        let t0 = Instant::now();
        let mut view = ClusterView::default();
        view.report(id("ingest1"), ingest_with("demo", 10), t0);
        view.report(id("ingest2"), ingest_with("demo", 20), t0);
        assert_eq!(view.live(t0)[0].ingest_node, id("ingest2"));
    }

    proptest! {
        /// Whatever arrives, in whatever order, the answers stay consistent: sorted,
        /// no viewers counted for nodes that are not listed, every live stream from an
        /// ingest.
        #[test]
        fn answers_stay_consistent(
            events in proptest::collection::vec((0u8..4, 0u8..3, 0u8..3, 0u64..5, 0u64..20), 0..40)
        ) {
            let t0 = Instant::now();
            let mut view = ClusterView::default();
            for (kind, node, s, viewers, secs) in events {
                let now = t0 + Duration::from_secs(secs);
                let node = id(&format!("n{node}"));
                let name = format!("s{s}");
                match kind {
                    0 => view.report(node, ingest_with(&name, i64::from(s)), now),
                    1 => view.report(node, edge_with(&[(&name, viewers)]), now),
                    2 => view.presence(node, None, now),
                    _ => view.forget_stale(now),
                }
            }
            let now = t0 + Duration::from_secs(20);
            let nodes = view.nodes(now);
            prop_assert!(nodes.windows(2).all(|w| w[0].node < w[1].node));
            for l in view.live(now) {
                prop_assert_eq!(l.viewers, l.nodes.iter().map(|n| n.viewers).sum::<u64>());
                prop_assert!(view.knows(&l.ingest_node));
            }
        }
    }
}
