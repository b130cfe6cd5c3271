//! sealcast certs: a local CA and server certificates covering `streaming-cluster.test`,
//! `*.streaming-cluster.test`, `broadcast1..N.streaming-cluster.test`, `localhost` and
//! `127.0.0.1`.
//!
//! Not built yet (it arrives with the load-balancer issue, which terminates TLS). This crate
//! exists so the workspace already has the shape of the design card.
