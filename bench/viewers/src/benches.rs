//! Benchmarks the driver runs whole (`sealcast-bench run NAME`): the cluster and the peers
//! started ([`crate::harness`]), the systems measured in interleaved runs, the report
//! written; their scripts in `bench/` only install what is missing, find the binaries and
//! hand over. The other scripts still orchestrate in bash, calling the driver for each
//! sample, check and report (bench/README.md).

pub mod dvr_seek;
pub mod ingest_latency;
pub mod latency;
pub mod llhls;
pub mod moq_cost;
pub mod publish_latency;
pub mod viewer_verify;
