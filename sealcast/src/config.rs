//! Configuration: a TOML file, validated into typed values at load time.
//!
//! Every section and key is optional; unknown keys are errors (a typo must not silently
//! fall back to a default).

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use domain::Ladder;
use serde::Deserialize;

/// The whole file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct Config {
    pub(crate) ingest: IngestSection,
    pub(crate) ladder: Ladder,
}

/// `[ingest]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct IngestSection {
    /// RTMP application name.
    pub(crate) app: String,
    /// x264 threads per rung; 0 lets x264 decide.
    pub(crate) encoder_threads: usize,
    /// Seconds after a dropped publisher connection before the stream is declared ended.
    pub(crate) end_grace_seconds: f64,
    /// RTMP connections open at once; more are closed as they arrive.
    pub(crate) max_connections: usize,
}

impl Default for IngestSection {
    fn default() -> Self {
        IngestSection {
            app: "live".to_owned(),
            encoder_threads: 0,
            end_grace_seconds: 10.0,
            max_connections: ingest::DEFAULT_MAX_CONNECTIONS,
        }
    }
}

impl IngestSection {
    pub(crate) fn end_grace(&self) -> anyhow::Result<Duration> {
        Duration::try_from_secs_f64(self.end_grace_seconds)
            .ok()
            .filter(|d| *d <= Duration::from_secs(3600))
            .context("ingest.end_grace_seconds must be between 0 and 3600")
    }
}

impl Config {
    /// Loads `path` (or the defaults when `None`) and validates it.
    pub(crate) fn load(path: Option<&Path>) -> anyhow::Result<Self> {
        let config: Config = match path {
            Some(path) => {
                let text = std::fs::read_to_string(path).with_context(|| {
                    format!("reading the configuration file {}", path.display())
                })?;
                toml::from_str(&text)
                    .with_context(|| format!("in the configuration file {}", path.display()))?
            }
            None => Config::default(),
        };
        config.ladder.validate().context("in [ladder]")?;
        config.ingest.end_grace().context("in [ingest]")?;
        if config.ingest.app.is_empty() || config.ingest.app.contains('/') {
            anyhow::bail!("in [ingest]: app must be a single path segment such as \"live\"");
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_file_parses_and_matches_the_defaults() {
        let text = include_str!("../../sealcast.example.toml");
        let config: Config = toml::from_str(text).expect("example parses");
        config.ladder.validate().expect("example ladder is valid");
        assert_eq!(config.ladder, Ladder::default());
    }

    #[test]
    fn unknown_keys_in_a_rung_are_errors() {
        let text = "[ladder]\nsegment_target = 2.0\nwindow = 6\npreset = \"veryfast\"\n[[ladder.rungs]]\nname = \"720p\"\nkind = \"encode\"\nheight = 720\nbitrate_kbps = 3000\nmaxrate_kbps = 3210\nbufsize_kbits = 4500\nbitrat = 1\n";
        assert!(toml::from_str::<Config>(text).is_err());
    }

    #[test]
    fn unknown_keys_are_errors() {
        let err = toml::from_str::<Config>("[ingest]\napp = \"live\"\nbogus = 1\n")
            .expect_err("rejected");
        assert!(err.to_string().contains("bogus"), "{err}");
    }
}
