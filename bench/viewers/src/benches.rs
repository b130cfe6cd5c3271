//! Benchmarks the driver runs whole (`sealcast-bench run NAME`): the cluster and the peers
//! started ([`crate::harness`]), the systems measured in interleaved runs, the report
//! written; their scripts in `bench/` only install what is missing, find the binaries and
//! hand over (every script in `bench/` now does).

pub mod archive_disk;
pub mod c2pa_overhead;
pub mod capacity;
pub mod compose;
pub mod dvr_seek;
pub mod edge;
pub mod ingest_latency;
pub mod ladder;
pub mod ladder_codecs;
pub mod latency;
pub mod lb;
pub mod lb_profile;
pub mod ll_quality;
pub mod llhls;
pub mod llhls_cdn;
pub mod memory;
pub mod moq_cost;
pub mod publish_latency;
pub mod push_bytes;
pub mod stream_memory;
pub mod viewer_verify;
