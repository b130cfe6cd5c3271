//! The ingest's configuration file (TOML): its settings and the ladder, parsed and
//! validated into typed values in one place (the binary reads the file, `ingest` takes
//! the values). The file is the operator's, but it is still
//! outside input: its size is capped before it is parsed, every section and key is
//! optional, unknown keys are errors (a typo must not silently fall back to a default),
//! and every value is range-checked.

use std::time::Duration;

use domain::Ladder;
use serde::Deserialize;

use crate::webrtc::WebRtcLimits;
use crate::IntakeError;

/// Largest configuration file read: far more than any real one.
pub const MAX_CONFIG_BYTES: usize = 256 * 1024;

/// The whole file.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// `[ingest]`
    pub ingest: IngestSection,
    /// `[ladder]`
    pub ladder: Ladder,
}

/// `[ingest]`
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngestSection {
    /// RTMP application name.
    pub app: String,
    /// x264 threads per rung; 0 lets x264 decide.
    pub encoder_threads: usize,
    /// Seconds after a dropped publisher connection before the stream is declared ended.
    pub end_grace_seconds: f64,
    /// RTMP connections open at once; more are closed as they arrive.
    pub max_connections: usize,
    /// Streams published at once on this ingest, over every protocol; a publisher of one
    /// more is refused. 0: no cap.
    pub max_streams: usize,
    /// SRT sessions open at once; more callers are rejected (`SRT_REJX_OVERLOAD`).
    pub srt_max_sessions: usize,
    /// SRT sessions from one address; more callers from it are rejected.
    pub srt_max_sessions_per_ip: usize,
    /// SRT latency in milliseconds: how long the receiver waits for retransmissions.
    pub srt_latency_ms: u64,
    /// WHIP (WebRTC) sessions at once, being set up or live; more offers get 503.
    pub webrtc_max_sessions: usize,
    /// WHIP sessions at once from one client address.
    pub webrtc_max_sessions_per_ip: usize,
    /// Seconds from a WHIP answer to ICE and DTLS connected, or the session ends.
    pub webrtc_setup_timeout_seconds: u64,
    /// Seconds a connected WHIP session may send no media before it ends.
    pub webrtc_idle_timeout_seconds: u64,
}

impl Default for IngestSection {
    fn default() -> Self {
        IngestSection {
            app: "live".to_owned(),
            encoder_threads: 0,
            end_grace_seconds: 10.0,
            max_connections: crate::rtmp::DEFAULT_MAX_CONNECTIONS,
            max_streams: 0,
            srt_max_sessions: crate::srt::DEFAULT_MAX_SESSIONS,
            srt_max_sessions_per_ip: crate::srt::DEFAULT_MAX_SESSIONS_PER_IP,
            srt_latency_ms: crate::srt::DEFAULT_LATENCY.as_millis() as u64,
            webrtc_max_sessions: WebRtcLimits::default().max_sessions,
            webrtc_max_sessions_per_ip: WebRtcLimits::default().max_sessions_per_ip,
            webrtc_setup_timeout_seconds: WebRtcLimits::default().setup_timeout.as_secs(),
            webrtc_idle_timeout_seconds: WebRtcLimits::default().idle_timeout.as_secs(),
        }
    }
}

impl IngestSection {
    /// The grace period after a dropped connection: 0 to 3600 s.
    pub fn end_grace(&self) -> Result<Duration, IntakeError> {
        Duration::try_from_secs_f64(self.end_grace_seconds)
            .ok()
            .filter(|d| *d <= Duration::from_secs(3600))
            .ok_or_else(|| {
                IntakeError::Config("[ingest] end_grace_seconds must be between 0 and 3600".into())
            })
    }
}

impl IngestSection {
    /// The SRT listener's settings, with `passphrase` (read by the binary from a file:
    /// never a configuration value, which is copied and shown).
    pub fn srt(&self, passphrase: Option<String>) -> Result<crate::srt::SrtSettings, IntakeError> {
        let settings = crate::srt::SrtSettings {
            max_sessions: self.srt_max_sessions,
            max_sessions_per_ip: self.srt_max_sessions_per_ip,
            latency: Duration::from_millis(self.srt_latency_ms),
            passphrase,
        };
        settings.validate()?;
        Ok(settings)
    }
}

impl IngestSection {
    /// The WHIP side's limits: at least one session, timeouts of 1 to 600 s.
    pub fn webrtc(&self) -> Result<WebRtcLimits, IntakeError> {
        let seconds = |value: u64, key: &str| {
            if (1..=600).contains(&value) {
                Ok(Duration::from_secs(value))
            } else {
                Err(IntakeError::Config(format!(
                    "[ingest] {key} must be between 1 and 600"
                )))
            }
        };
        if self.webrtc_max_sessions == 0 || self.webrtc_max_sessions_per_ip == 0 {
            return Err(IntakeError::Config(
                "[ingest] webrtc_max_sessions and webrtc_max_sessions_per_ip must be at least 1"
                    .into(),
            ));
        }
        Ok(WebRtcLimits {
            max_sessions: self.webrtc_max_sessions,
            max_sessions_per_ip: self.webrtc_max_sessions_per_ip,
            setup_timeout: seconds(
                self.webrtc_setup_timeout_seconds,
                "webrtc_setup_timeout_seconds",
            )?,
            idle_timeout: seconds(
                self.webrtc_idle_timeout_seconds,
                "webrtc_idle_timeout_seconds",
            )?,
        })
    }
}

impl Config {
    /// Parses and validates the text of a configuration file.
    pub fn parse(text: &str) -> Result<Self, IntakeError> {
        if text.len() > MAX_CONFIG_BYTES {
            return Err(IntakeError::Config(format!(
                "the file is larger than {} KiB",
                MAX_CONFIG_BYTES / 1024
            )));
        }
        let config: Config =
            toml::from_str(text).map_err(|e| IntakeError::Config(e.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    /// Checks every value: the ladder, the grace period, the application name.
    pub fn validate(&self) -> Result<(), IntakeError> {
        self.ladder
            .validate()
            .map_err(|e| IntakeError::Config(format!("in [ladder]: {e}")))?;
        self.ingest.end_grace()?;
        self.ingest.srt(None)?;
        self.ingest.webrtc()?;
        if self.ingest.app.is_empty() || self.ingest.app.contains('/') {
            return Err(IntakeError::Config(
                "[ingest] app must be a single path segment such as \"live\"".into(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_file_parses_and_matches_the_defaults() {
        let text = include_str!("../../sealcast.example.toml");
        let config = Config::parse(text).expect("example parses");
        assert_eq!(config.ladder, Ladder::default());
    }

    #[test]
    fn unknown_keys_in_a_rung_are_errors() {
        let text = "[ladder]\nsegment_target = 2.0\nwindow = 6\npreset = \"veryfast\"\n[[ladder.rungs]]\nname = \"720p\"\nkind = \"encode\"\nheight = 720\nbitrate_kbps = 3000\nmaxrate_kbps = 3210\nbufsize_kbits = 4500\nbitrat = 1\n";
        assert!(Config::parse(text).is_err());
    }

    #[test]
    fn unknown_keys_are_errors() {
        let err = Config::parse("[ingest]\napp = \"live\"\nbogus = 1\n").expect_err("rejected");
        assert!(err.to_string().contains("bogus"), "{err}");
    }

    #[test]
    fn out_of_range_values_and_oversized_files_are_errors() {
        for text in [
            "[ingest]\nend_grace_seconds = -1.0\n",
            "[ingest]\nend_grace_seconds = 1e300\n",
            "[ingest]\napp = \"a/b\"\n",
            "[ingest]\napp = \"\"\n",
            "[ingest]\nsrt_max_sessions = 0\n",
            "[ingest]\nsrt_latency_ms = 9000\n",
            "[ingest]\nwebrtc_max_sessions = 0\n",
            "[ingest]\nwebrtc_idle_timeout_seconds = 0\n",
        ] {
            assert!(Config::parse(text).is_err(), "{text}");
        }
        let big = format!("# {}\n", "x".repeat(MAX_CONFIG_BYTES));
        assert!(Config::parse(&big).is_err());
    }
}
