//! sealcast ingest (being built).
pub mod container;
pub mod segmenter;
