//! The one-shot commands: `streams`, `api-keys`, `tokens`, `source`, `keys`, `certs` and
//! `ladder`.

use domain::time::WallClock;
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use domain::topics::Topic;
use domain::wire::KeyId;
use domain::{NodeId, StreamName};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::cli::{
    ApiKeysArgs, ApiKeysCommand, CertsArgs, KeysArgs, KeysCommand, SourceArgs, StreamsArgs,
    StreamsCommand, TokensArgs, TokensCommand,
};
use crate::plan::CatalogLocation;
use crate::roles::{open_catalog, print_ready};

/// `sealcast streams …`
pub(crate) async fn streams(args: StreamsArgs) -> anyhow::Result<()> {
    // Checked before the catalog changes: a bad URL changes nothing.
    let mut problems = crate::plan::Problems::default();
    let purge = crate::plan::cache_purge(&args.cache_purge, &mut problems);
    let purge = problems.or(purge)?;
    let catalog = open_catalog(&CatalogLocation::of(&args.catalog)).await?;
    let result = async {
        match args.command {
            StreamsCommand::Add {
                name,
                private,
                no_record,
                json,
            } => {
                let name = StreamName::new(name)?;
                let (record, key) = catalog.add_stream_with(&name, private, !no_record).await?;
                if json {
                    let value = json!({ "name": record.name, "key": key.expose_secret(), "created_at": record.created_at, "private": record.private, "record": record.record });
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
                        let private = if s.private { " private" } else { "" };
                        let record = if s.record { "" } else { " not-recorded" };
                        out.push_str(&format!("{}{private}{record}\n", s.name));
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
                let name = StreamName::new(name)?;
                catalog.remove_stream(&name).await?;
                // As the API does (issue 45): what the caches in front hold of it goes.
                if let Some(purge) = &purge {
                    purge.stream(&name).await;
                }
            }
            StreamsCommand::Set {
                name,
                private,
                public,
                record,
                no_record,
            } => {
                // clap lets at most one of each pair through, and at least one of the four.
                let name = StreamName::new(name)?;
                if private || public {
                    catalog.set_private(&name, private).await?;
                    if let (true, Some(purge)) = (private, &purge) {
                        purge.stream(&name).await;
                    }
                }
                if record || no_record {
                    catalog.set_record(&name, record).await?;
                }
            }
        }
        anyhow::Ok(())
    }
    .await;
    // The second round of BANs, once a live stream's nodes know (api::AGAIN_AFTER).
    if let Some(purge) = &purge {
        purge.close().await;
    }
    catalog.close().await;
    result
}

/// `sealcast api-keys …`
pub(crate) async fn api_keys(args: ApiKeysArgs) -> anyhow::Result<()> {
    let catalog = open_catalog(&CatalogLocation::of(&args.catalog)).await?;
    let result = async {
        match args.command {
            ApiKeysCommand::Add { name, scope, json } => {
                let (record, key) = catalog.add_api_key(&name, scope).await?;
                if json {
                    let value = json!({ "name": record.name, "scope": record.scope, "key": key.expose_secret(), "created_at": record.created_at });
                    print_ready(&format!("{value}\n"));
                } else {
                    print_ready(&format!("{}\n", key.expose_secret()));
                }
            }
            ApiKeysCommand::List { json } => {
                let keys = catalog.list_api_keys().await?;
                if json {
                    print_ready(&format!("{}\n", serde_json::to_string(&keys)?));
                } else {
                    let mut out = String::new();
                    for k in keys {
                        out.push_str(&format!("{} {}\n", k.name, k.scope));
                    }
                    print_ready(&out);
                }
            }
            ApiKeysCommand::Remove { name } => catalog.remove_api_key(&name).await?,
        }
        anyhow::Ok(())
    }
    .await;
    catalog.close().await;
    result
}

/// `sealcast tokens mint …`: the token alone on stdout (that is what the command is for),
/// signed with the key directory's playback key, for a stream of the catalog.
pub(crate) async fn tokens(args: TokensArgs) -> anyhow::Result<()> {
    let TokensCommand::Mint {
        name,
        ttl,
        ip,
        recordings,
        json,
    } = args.command;
    let stream = StreamName::new(name)?;
    let dir = crate::plan::key_dir(args.keys_dir.as_deref(), &args.catalog);
    let key = dir.playback_key().with_context(|| {
        format!(
            "reading the playback key in {} (made by `sealcast keys init` or the first `sealcast up`)",
            dir.path().display()
        )
    })?;
    let catalog = open_catalog(&CatalogLocation::of(&args.catalog)).await?;
    let known = catalog.get_stream(&stream).await;
    catalog.close().await;
    anyhow::ensure!(known?.is_some(), "no stream named {stream} in the catalog");
    let request = api::TokenRequest {
        stream,
        ttl: ttl.0,
        ip,
        recordings,
    };
    let minted = api::mint(&key, &request, WallClock.unix_secs()).context("--ttl out of range")?;
    if json {
        print_ready(&format!("{}\n", serde_json::to_string(&minted)?));
    } else {
        print_ready(&format!("{}\n", minted.token));
    }
    Ok(())
}

/// `sealcast source …`: runs the publisher on its own thread until done or stopped.
pub(crate) async fn source(args: SourceArgs, shutdown: CancellationToken) -> anyhow::Result<()> {
    let config = crate::plan::source(&args)?;
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

/// `sealcast keys …`
pub(crate) async fn keys(args: KeysArgs) -> anyhow::Result<()> {
    let dir = crate::plan::key_dir(args.keys_dir.as_deref(), &args.catalog);
    match args.command {
        KeysCommand::Init { algorithm, ingest } => {
            let ingest = ingest
                .into_iter()
                .map(NodeId::new)
                .collect::<Result<Vec<_>, _>>()
                .context("--ingest")?;
            let report = {
                let dir = dir.clone();
                let ingest = ingest.clone();
                tokio::task::spawn_blocking(move || {
                    dir.init(algorithm.into(), &ingest, WallClock.unix_secs())
                })
                .await??
            };
            let root = dir.root_public()?;
            let mut out = format!(
                "root {} {:?} {}\n",
                root.key_id(),
                root.algorithm(),
                dir.root_public_path().display()
            );
            for node in &ingest {
                let (key, _) = dir.ingest(node)?;
                out.push_str(&format!("{node} {}\n", key.key_id()));
            }
            for path in report.written {
                tracing::info!(path = %path.display(), "written");
            }
            for path in report.removed {
                tracing::info!(path = %path.display(), "removed");
            }
            print_ready(&out);
        }
        KeysCommand::Revoke { key, broker } => {
            let key_id = match key.parse::<KeyId>() {
                Ok(id) => id,
                // C2PA credentials (docs/provenance.md): a claim signer, or the CA.
                Err(_) if key == "provenance-ca" => dir.provenance_ca_credential_id()?,
                Err(_) if key.ends_with(".c2pa") => {
                    let node = NodeId::new(key.trim_end_matches(".c2pa").to_owned())
                        .context("NODE.c2pa names an ingest node's claim signer")?;
                    dir.claim_signer(&node)?
                        .with_context(|| format!("{node} has no claim signer"))?
                        .credential_id()
                }
                Err(_) => {
                    let node = NodeId::new(key.clone()).context(
                        "neither a key id (32 hex digits), an ingest node id, NODE.c2pa nor provenance-ca",
                    )?;
                    dir.ingest(&node)?.0.key_id()
                }
            };
            let root = dir
                .root_key()
                .context("revoking needs the root private key")?;
            let revocation = root.revoke(key_id, WallClock.unix_secs());
            // Kept first: edges load the key directory's revocations when they start, so
            // the key stays revoked after the broker forgets its retained messages.
            let kept = dir
                .save_revocation(&revocation)
                .context("keeping the revocation in the key directory")?;
            tracing::info!(path = %kept.display(), "revocation kept");
            // A URL without a login, next to the keys of `sealcast up`: its embedded
            // broker, whose password is in the key directory (never on a command line).
            let mut address = broker.mqtt_url.clone();
            if address.credentials().is_none() && dir.broker_password_path().exists() {
                let password = dir.broker_password()?;
                address = address.with_credentials(
                    plumbing::EMBEDDED_BROKER_USER.to_owned(),
                    password.to_string(),
                );
            }
            let brokers = address.len();
            let shutdown = CancellationToken::new();
            let (bus, mut events, task) = plumbing::connect(
                plumbing::BusOptions::new(address, format!("sealcast-keys-{}", std::process::id())),
                shutdown.clone(),
            );
            // Every broker the URL names, or those that answer within 10 s: the revocation
            // is published on each connected one (a broker away misses it; the edges keep
            // reading it from the key directory).
            let mut connects = 0;
            let _ = tokio::time::timeout(Duration::from_secs(10), async {
                while let Some(event) = events.recv().await {
                    if event == plumbing::BusEvent::Connected {
                        connects += 1;
                        if connects == brokers {
                            return;
                        }
                    }
                }
            })
            .await;
            anyhow::ensure!(
                connects > 0,
                "could not connect to the MQTT broker {}",
                broker.mqtt_url
            );
            if bus.connected() < brokers {
                tracing::warn!(
                    connected = bus.connected(),
                    brokers,
                    "not every MQTT broker is connected; the revocation misses the others"
                );
            }
            bus.publish(
                &Topic::Revocation(key_id),
                plumbing::Qos::AtLeastOnce,
                true,
                revocation.encode(),
            )
            .await?;
            bus.disconnect()?;
            // The connection ends after the revocation and the disconnect have gone out.
            let drained = async { while events.recv().await.is_some() {} };
            let _ = tokio::time::timeout(Duration::from_secs(10), drained).await;
            shutdown.cancel();
            let _ = task.await;
            print_ready(&format!("revoked {key_id}\n"));
        }
    }
    Ok(())
}

/// `sealcast certs`: the local CA and the server certificate, made or renewed; prints the
/// files written and how to trust the CA.
pub(crate) async fn certs(args: CertsArgs) -> anyhow::Result<()> {
    let mut names = certs::tls::ServerNames::new(args.broadcast);
    let mut extra = Vec::new();
    for name in &args.names {
        extra.push(
            name.parse::<certs::tls::HostName>()
                .map_err(|e| anyhow::anyhow!("--name {name}: {e}"))?,
        );
    }
    names = names.with_extra(extra);
    let dir = certs::TlsDir::new(&args.certs_dir);
    let report = crate::roles::make_certificates(&dir, names).await?;
    let mut out = String::new();
    for path in &report.written {
        out.push_str(&format!("wrote {}\n", path.display()));
    }
    if let Some(reason) = report.server_issued {
        out.push_str(&format!("issued the server certificate: {reason}\n"));
    } else {
        out.push_str("the server certificate is current\n");
    }
    out.push_str(&dir.trust_hint());
    print_ready(&out);
    Ok(())
}

/// `sealcast ladder`: a file through the same pipeline.
pub(crate) fn ladder(input: &Path, output: &Path, config: Option<&Path>) -> anyhow::Result<()> {
    let config = crate::config::load(config)?;
    std::fs::create_dir_all(output).with_context(|| format!("creating {}", output.display()))?;
    let started = std::time::Instant::now();
    let report = ingest::file::transcode_file(
        input,
        output,
        Arc::new(config.ladder),
        config.ingest.encoder_threads,
    )?;
    let mut names: Vec<_> = report.segments.keys().cloned().collect();
    names.sort();
    let mut out = String::new();
    for name in names {
        let segs = report.segments[&name];
        let bytes = report.bytes.get(&name).copied().unwrap_or(0);
        let secs = report.seconds.get(&name).copied().unwrap_or(0.0);
        let kbps = if secs > 0.0 {
            bytes as f64 * 8.0 / secs / 1000.0
        } else {
            0.0
        };
        out.push_str(&format!(
            "{name} segments={segs} seconds={secs:.3} kbps={kbps:.0}\n"
        ));
    }
    out.push_str(&format!(
        "wall_seconds={:.3}\n",
        started.elapsed().as_secs_f64()
    ));
    print_ready(&out);
    Ok(())
}
