//! The configuration file: read here, parsed and validated by [`intake::config`] (where
//! the fuzz harnesses reach it without the ingest).

use std::path::Path;

use anyhow::Context;
pub(crate) use intake::config::Config;

/// Loads `path` (or the defaults when `None`) and validates it.
pub(crate) fn load(path: Option<&Path>) -> anyhow::Result<Config> {
    let Some(path) = path else {
        return Ok(Config::default());
    };
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the configuration file {}", path.display()))?;
    Config::parse(&text).with_context(|| format!("in the configuration file {}", path.display()))
}
