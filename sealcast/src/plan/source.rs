//! The plan of `sealcast source`: what the test-pattern publisher would publish, and where.

use std::time::Duration;

use anyhow::Context;
use source::SourceConfig;

use super::problem::Problems;
use crate::cli::SourceArgs;

/// What `sealcast source` publishes, validated, or what is wrong with it.
pub(crate) fn derive(args: &SourceArgs) -> Result<SourceConfig, Problems> {
    let mut problems = Problems::default();
    if let Some(url) = &args.url {
        if !rtmp_url_shape(url) {
            problems.add(
                "SEALCAST_SOURCE_URL",
                "must look like rtmp://HOST[:PORT]/APP/KEY (the value is not shown: it holds a stream key)",
            );
            return Err(problems);
        }
    }
    let config = problems.take("source", source_config(args), |e| format!("{e:#}"));
    problems.or(config)
}

fn source_config(args: &SourceArgs) -> anyhow::Result<SourceConfig> {
    let (width, height) = args
        .size
        .split_once('x')
        .and_then(|(w, h)| Some((w.parse().ok()?, h.parse().ok()?)))
        .context("--size must look like 1280x720")?;
    let output = match (&args.url, &args.output) {
        (Some(url), _) => url.clone(),
        (None, Some(path)) => path.display().to_string(),
        (None, None) => anyhow::bail!("give --url or --output"),
    };
    let duration = match args.duration {
        Some(s) => Some(
            Duration::try_from_secs_f64(s)
                .context("--duration must be a positive number of seconds")?,
        ),
        None => None,
    };
    let config = SourceConfig {
        output,
        width,
        height,
        fps: args.fps,
        video_bitrate_kbps: args.bitrate,
        gop_seconds: args.gop,
        duration,
        realtime: !args.fast,
        low_latency: args.low_latency,
        ..SourceConfig::default()
    };
    config.validate()?;
    Ok(config)
}

/// `rtmp://host[:port]/app/key`, shape only.
fn rtmp_url_shape(url: &str) -> bool {
    let Some(rest) = url
        .strip_prefix("rtmp://")
        .or_else(|| url.strip_prefix("rtmps://"))
    else {
        return false;
    };
    let mut parts = rest.split('/');
    let host = parts.next().unwrap_or("");
    let app = parts.next().unwrap_or("");
    let key = parts.next().unwrap_or("");
    !host.is_empty() && !app.is_empty() && !key.is_empty() && parts.next().is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rtmp_urls_are_checked_for_shape() {
        assert!(rtmp_url_shape("rtmp://ingest1:1935/live/sk_abc"));
        assert!(!rtmp_url_shape("rtmp://ingest1:1935/live"));
        assert!(!rtmp_url_shape("http://ingest1/live/key"));
        assert!(!rtmp_url_shape("rtmp:///live/key"));
    }
}
