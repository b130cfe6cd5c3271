//! The sealcast admin API and what stands behind it.
//!
//! Broadcast nodes serve [`router`] beside the public routes, so the API is reachable
//! through the load balancer like everything else; docs/api.md is its reference.
//!
//! Modules:
//!
//! - `router`: [`router`] and [`Api`], the `/api/v1` routes that need an API key: the
//!   catalog (streams, keys, sessions, webhooks), the cluster (`live`, `nodes`), ending a
//!   live session, deleting a recording.
//! - `cluster`: [`ClusterView`], sans-IO: presences and load reports in, the node and live
//!   stream lists out.
//! - `report`: [`ProcessSampler`] (this process's CPU and memory), [`run_reporter`] (a
//!   node's periodic load report over MQTT) and [`follow_cluster`] (every report and
//!   presence into a [`ClusterView`]).
//! - `webhooks`: [`Webhooks`], deliveries with retries.
//! - `tokens`: [`mint`], playback tokens of private streams, for the CLI and the API alike.
//! - `hooks`: [`Hook`], the operator's `on_publish` and `on_play` endpoints, asked before
//!   a publish starts and at a playback token's first use, with the webhooks' SSRF rules.
//! - `purge`: [`CachePurge`], `BAN`s to the shared caches in front when a stream turns
//!   private or a recording is deleted (issue 45).
//! - `strikes`: [`KeyStrikes`], backoff per client address on wrong API keys.
//! - `error`: [`ApiError`], the crate's one error type, and its JSON answers.
#![forbid(unsafe_code)]

mod cluster;
mod error;
mod hooks;
mod purge;
mod report;
mod router;
mod strikes;
mod tokens;
mod webhooks;

pub use cluster::{ClusterView, LiveStream, NodeLoad, NodeStatus, ServingNode, STALE_AFTER};
pub use error::ApiError;
pub use hooks::{Hook, HookFailure, Verdict, DEFAULT_HOOK_TIMEOUT};
pub use purge::{CachePurge, AGAIN_AFTER};
pub use report::{follow_cluster, run_reporter, ProcessSampler, REPORT_EVERY};
pub use router::{router, Api, ForgetRecording, API_KEY_HEADER};
pub use strikes::KeyStrikes;
pub use tokens::{mint, MintedToken, TokenRequest, MAX_TOKEN_TTL};
pub use webhooks::{is_public, Destinations, WebhookPayload, Webhooks};
