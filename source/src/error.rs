//! The crate's one error type, and the redaction that keeps stream keys out of it.

use ffmpeg_next as ffmpeg;

/// Everything that can stop a test-pattern publish.
///
/// Messages never contain a stream key: an RTMP output is always shown through
/// [`redact_output`], which replaces the key (the last path segment) with `<key>`.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// A [`SourceConfig`](crate::SourceConfig) field is out of range; the caller's fault,
    /// and retrying with the same config fails the same way.
    #[error("invalid source config: `{field}` {reason}")]
    InvalidConfig {
        /// The offending field, spelled as in `SourceConfig`.
        field: &'static str,
        /// What is wrong with it, in words an operator can act on.
        reason: String,
    },

    /// The linked FFmpeg lacks a component this publisher needs (libx264, the native
    /// `aac` encoder, the `testsrc2` filter, the FLV muxer); a build problem, not retryable.
    #[error("FFmpeg has no {0}; install an FFmpeg build that includes it")]
    MissingComponent(&'static str),

    /// FFmpeg's one-time initialisation failed.
    #[error("FFmpeg initialisation failed: {0}")]
    Init(#[source] ffmpeg::Error),

    /// The output could not be opened: an RTMP server that refused the connection or
    /// the publish, or a file path that cannot be created. Often transient for RTMP
    /// (the ingest is not up yet), so a retry may help.
    #[error("cannot open output {output}: {source}")]
    Open {
        /// The output with any stream key redacted.
        output: String,
        /// FFmpeg's reason.
        #[source]
        source: ffmpeg::Error,
    },

    /// The test-pattern filter graph could not be built or stopped producing frames.
    #[error("test pattern ({stage}): {source}")]
    Pattern {
        /// Which step failed, e.g. `parse` or `pull frame`.
        stage: &'static str,
        /// FFmpeg's reason.
        #[source]
        source: ffmpeg::Error,
    },

    /// The filter graph produced frames in an unexpected pixel format; a bug here.
    #[error("test pattern produced {0} frames, expected yuv420p")]
    PatternFormat(String),

    /// An encoder rejected its settings at open time.
    #[error("cannot open {codec} encoder: {source}")]
    EncoderOpen {
        /// `libx264` or `aac`.
        codec: &'static str,
        /// FFmpeg's reason.
        #[source]
        source: ffmpeg::Error,
    },

    /// An encoder failed on a frame while streaming.
    #[error("{codec} encoding failed: {source}")]
    Encode {
        /// `libx264` or `aac`.
        codec: &'static str,
        /// FFmpeg's reason.
        #[source]
        source: ffmpeg::Error,
    },

    /// Writing to the output failed: the RTMP peer closed the connection or rejected
    /// the stream, or the disk is full. Retrying (reconnecting) may help.
    #[error("writing to {output} failed ({stage}): {source}")]
    Write {
        /// The output with any stream key redacted.
        output: String,
        /// `header`, `packet` or `trailer`.
        stage: &'static str,
        /// FFmpeg's reason.
        #[source]
        source: ffmpeg::Error,
    },
}

impl SourceError {
    /// Whether running again with the same config may succeed: true for I/O against
    /// the output (the RTMP server may come back), false for config and build problems.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Open { .. } | Self::Write { .. })
    }
}

/// The output as it may appear in logs and errors: for `rtmp://` and `rtmps://` URLs
/// the last path segment (the stream key), any user info and any query are replaced
/// by `<key>`/dropped; an `srt://` URL keeps its host and port only (the key travels in
/// the `streamid`, a passphrase may too); file paths are returned unchanged.
///
/// `rtmp://host:1935/live/SECRET` becomes `rtmp://host:1935/live/<key>`.
pub fn redact_output(output: &str) -> String {
    let Some((scheme, rest)) = output.split_once("://") else {
        return output.to_owned();
    };
    if scheme.eq_ignore_ascii_case("srt") {
        let authority = rest.split(['?', '#', '/']).next().unwrap_or_default();
        let host = authority.rsplit('@').next().unwrap_or(authority);
        let hidden = if rest.len() > authority.len() {
            "?<redacted>"
        } else {
            ""
        };
        return format!("{scheme}://{host}{hidden}");
    }
    if !scheme.to_ascii_lowercase().starts_with("rtmp") {
        return output.to_owned();
    }
    // Anything after `?` may carry credentials (some servers take `?key=`).
    let (rest, had_query) = match rest.find(['?', '#']) {
        Some(end) => (&rest[..end], true),
        None => (rest, false),
    };
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let host = authority.rsplit('@').next().unwrap_or(authority);
    let userinfo = if authority.contains('@') {
        "<user>@"
    } else {
        ""
    };
    let mut segments: Vec<&str> = path.split('/').collect();
    // `rtmp://host/app` has no key; `rtmp://host/app/key` (and deeper) does.
    if segments.len() >= 2 && segments.last().is_some_and(|s| !s.is_empty()) {
        segments.pop();
        segments.push("<key>");
    }
    let mut out = format!("{scheme}://{userinfo}{host}");
    if !path.is_empty() || segments.len() > 1 {
        out.push('/');
        out.push_str(&segments.join("/"));
    }
    if had_query {
        out.push_str("?<redacted>");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rtmp_key_is_redacted() {
        assert_eq!(
            redact_output("rtmp://127.0.0.1:1935/live/s3cr3t"),
            "rtmp://127.0.0.1:1935/live/<key>"
        );
        assert_eq!(
            redact_output("RTMPS://host/app/inst/s3cr3t"),
            "RTMPS://host/app/inst/<key>"
        );
    }

    #[test]
    fn credentials_and_query_are_dropped() {
        let shown = redact_output("rtmp://bob:pw@host/live/s3cr3t?key=s3cr3t2");
        assert_eq!(shown, "rtmp://<user>@host/live/<key>?<redacted>");
        assert!(!shown.contains("s3cr3t"));
        assert!(!shown.contains("pw"));
    }

    #[test]
    fn app_only_url_and_files_are_unchanged() {
        assert_eq!(redact_output("rtmp://host/live"), "rtmp://host/live");
        assert_eq!(
            redact_output(
                "srt://10.0.0.1:9000?streamid=#!::r=live/s3cr3t,m=publish&passphrase=p4ss"
            ),
            "srt://10.0.0.1:9000?<redacted>"
        );
        assert_eq!(redact_output("srt://host:9000"), "srt://host:9000");
        assert_eq!(redact_output("rtmp://host"), "rtmp://host");
        assert_eq!(redact_output("/tmp/out.flv"), "/tmp/out.flv");
        assert_eq!(redact_output("file:///tmp/a.flv"), "file:///tmp/a.flv");
    }

    #[test]
    fn error_messages_never_carry_the_key() {
        let err = SourceError::Open {
            output: redact_output("rtmp://h/live/topsecret"),
            source: ffmpeg::Error::Other { errno: 111 },
        };
        assert!(!err.to_string().contains("topsecret"), "{err}");
        assert!(err.is_retryable());
    }
}
