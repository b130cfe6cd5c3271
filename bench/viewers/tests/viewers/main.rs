//! The emulator's integration tests, one binary (linking a test binary is the slow part of
//! a build; one per crate links the crate and its dependencies once):
//!
//! - `emulate`: plain-HLS viewers against a live stream served on a free port;
//! - `harness`: the cluster the benchmarks start, started and stopped for real;
//! - `llhls`: LL-HLS viewers against an LL server on a free port;
//! - `no_python`: `bench/` holds no Python;
//! - `support`: the stream's master playlist and the server they share.

mod emulate;
mod harness;
mod llhls;
mod no_python;
mod support;
