//! The one-shot commands: `streams` and `source`.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use domain::StreamName;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::cli::{SourceArgs, StreamsArgs, StreamsCommand};
use crate::roles::{open_catalog, print_ready};

/// `sealcast streams …`
pub(crate) async fn streams(args: StreamsArgs) -> anyhow::Result<()> {
    let catalog = open_catalog(&args.catalog).await?;
    let result = async {
        match args.command {
            StreamsCommand::Add { name, json } => {
                let name = StreamName::new(name)?;
                let (record, key) = catalog.add_stream(&name).await?;
                if json {
                    let value = json!({ "name": record.name, "key": key.expose_secret(), "created_at": record.created_at });
                    print_ready(&format!("{value}\n"));
                } else {
                    print_ready(&format!("{}\n", key.expose_secret()));
                }
            }
            StreamsCommand::List { json } => {
                let streams = catalog.list_streams().await?;
                if json {
                    print_ready(&format!("{}\n", serde_json::to_string(&streams)?));
                } else {
                    let mut out = String::new();
                    for s in streams {
                        out.push_str(&format!("{}\n", s.name));
                    }
                    print_ready(&out);
                }
            }
            StreamsCommand::RotateKey { name, json } => {
                let name = StreamName::new(name)?;
                let key = catalog.rotate_key(&name).await?;
                if json {
                    print_ready(&format!("{}\n", json!({ "name": name, "key": key.expose_secret() })));
                } else {
                    print_ready(&format!("{}\n", key.expose_secret()));
                }
            }
            StreamsCommand::Remove { name } => {
                catalog.remove_stream(&StreamName::new(name)?).await?;
            }
        }
        anyhow::Ok(())
    }
    .await;
    catalog.close().await;
    result
}

/// `sealcast source …`: runs the publisher on its own thread until done or stopped.
pub(crate) async fn source(args: SourceArgs, shutdown: CancellationToken) -> anyhow::Result<()> {
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
    let config = source::SourceConfig {
        output,
        width,
        height,
        fps: args.fps,
        video_bitrate_kbps: args.bitrate,
        gop_seconds: args.gop,
        duration,
        realtime: !args.fast,
        ..source::SourceConfig::default()
    };
    config.validate()?;
    let stop = Arc::new(AtomicBool::new(false));
    let thread = {
        let stop = Arc::clone(&stop);
        tokio::task::spawn_blocking(move || source::run(&config, &stop))
    };
    let stopper = {
        let stop = Arc::clone(&stop);
        tokio::spawn(async move {
            shutdown.cancelled().await;
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
        })
    };
    let stats = thread.await??;
    stopper.abort();
    tracing::info!(
        video_frames = stats.video_frames,
        audio_frames = stats.audio_frames,
        "source finished"
    );
    Ok(())
}
