//! sealcast ingest (being built).
pub mod container;
