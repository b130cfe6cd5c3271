//! The MoQ relay tier behind the load balancers' QUIC door (issue 48), in the containers:
//! `/moq/v1/endpoint` names lb1's published UDP port; moq-tokio's client (the relay's own
//! project's), trusting the cluster CA as a browser told to would, reads a public stream
//! through the door, across the relays' cluster; a private stream is announced to nobody
//! but a viewer with the grant a node minted for its token; Chromium's player page, served
//! by lb1 and trusting the cluster's server key, plays the stream over MoQ through the
//! door (WebTransport to lb1's UDP port), verifying every object; each `relay` replica
//! killed under both (`docker kill`) costs them a redial and a resubscribe, not the
//! stream, and so does each edge crashed under the page (SIGKILL, which Docker's restart
//! policy answers): the reader's longest wait between two objects and the page's longest
//! stalls are measured.

use std::time::Duration;

use anyhow::Context;
use moq_tokio::moq_net;
use serde_json::{json, Value};
use testkit::browser::{Browser, BrowserOptions};
use tokio::time::Instant;

use super::{secs, Compose};
use testkit::docker;

/// How long a broadcast may take to be announced through the door.
const ANNOUNCED: Duration = Duration::from_secs(60);
/// How long a killed relay may keep the reader without an object: the door's checks,
/// then moq-tokio's QUIC idle timeout (10 s: the relay the flow moved to cannot reset
/// a connection it never had), its redial and resubscribe. 14 s measured; the bound says
/// "it comes back", the figure goes to the report.
const REDIAL_LIMIT: Duration = Duration::from_secs(30);

/// A moq-tokio client that trusts the cluster CA.
fn client(c: &Compose) -> anyhow::Result<moq_tokio::Client> {
    let mut config = moq_tokio::connect::Config::default();
    config.tls.root = vec![c.ca.clone()];
    Ok(config.init(moq_tokio::quic::Config::default())?)
}

/// The URL `/moq/v1/endpoint` gives viewers, through the load balancer.
async fn endpoint(c: &Compose) -> anyhow::Result<url::Url> {
    let endpoint: serde_json::Value = c
        .client
        .get(format!("{}/moq/v1/endpoint", c.https))
        .send()
        .await?
        .error_for_status()
        .context("GET /moq/v1/endpoint")?
        .json()
        .await?;
    let url = endpoint["url"].as_str().context("no url in the endpoint")?;
    anyhow::ensure!(
        endpoint["privatePrefix"] == "_private/",
        "the endpoint carries no private streams: {endpoint}"
    );
    Ok(url.parse()?)
}

/// A session through the door dialed with `query`, reading into its origin.
fn dial(
    c: &Compose,
    url: &url::Url,
    query: Option<&str>,
) -> anyhow::Result<(moq_net::origin::Producer, moq_tokio::Connection)> {
    let origin = moq_tokio::origin::spawn();
    let mut url = url.clone();
    url.set_query(query);
    let connection = client(c)?.with_subscriber(origin.clone()).connect(url);
    Ok((origin, connection))
}

async fn announced(
    origin: &moq_net::origin::Producer,
    path: &str,
    within: Duration,
) -> anyhow::Result<moq_net::broadcast::Consumer> {
    tokio::time::timeout(within, origin.consume().routed_broadcast(path))
        .await
        .with_context(|| format!("{path} was not announced through the door within {within:?}"))?
        .with_context(|| path.to_owned())
}

/// The name of the first rendition the catalog lists.
async fn first_rendition(broadcast: &moq_net::broadcast::Consumer) -> anyhow::Result<String> {
    let mut catalog = broadcast.track("catalog.json")?.subscribe(None).await?;
    let mut group = tokio::time::timeout(Duration::from_secs(15), catalog.recv_group())
        .await
        .context("no catalog within 15 s")??
        .context("the catalog track ended")?;
    let frame = tokio::time::timeout(Duration::from_secs(15), group.read_frame())
        .await
        .context("no catalog object within 15 s")??
        .context("an empty catalog group")?;
    let catalog: serde_json::Value = serde_json::from_slice(&frame.payload)?;
    catalog["video"]["renditions"]
        .as_object()
        .and_then(|r| r.keys().next().cloned())
        .with_context(|| format!("a catalog without renditions: {catalog}"))
}

/// A public stream through the door, then each `relay` replica killed under the reader.
pub(super) async fn through_the_door(c: &Compose, stream: &str) -> anyhow::Result<()> {
    let url = endpoint(c).await?;
    anyhow::ensure!(
        url.port() == Some(c.door),
        "viewers are told to dial {url}, not lb1's QUIC door (port {})",
        c.door
    );
    let started = Instant::now();
    let (origin, _connection) = dial(c, &url, None)?;
    let broadcast = announced(&origin, stream, ANNOUNCED).await?;
    let rendition = first_rendition(&broadcast).await?;
    drop(broadcast);
    // Objects arrive as the node publishes parts: a task notes when each comes, and when
    // the session is lost (moq-tokio dials again) finds the broadcast again and
    // resubscribes, as the player does.
    let (seen, mut arrivals) = tokio::sync::mpsc::unbounded_channel::<Instant>();
    let reader = {
        let (origin, stream) = (origin.clone(), stream.to_owned());
        tokio::spawn(async move {
            loop {
                let Ok(broadcast) = origin.consume().routed_broadcast(stream.as_str()).await else {
                    return;
                };
                let Ok(track) = broadcast.track(&rendition) else {
                    return;
                };
                let Ok(mut media) = track.subscribe(None).await else {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                };
                while let Ok(Some(mut group)) = media.recv_group().await {
                    while let Ok(Some(_)) = group.read_frame().await {
                        if seen.send(Instant::now()).is_err() {
                            return;
                        }
                    }
                }
                // The track ended with the session: the broadcast again, once announced.
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };
    let first = tokio::time::timeout(Duration::from_secs(30), arrivals.recv())
        .await
        .context("no object through the door within 30 s")?
        .context("the reader stopped")?;
    c.note("moq_door_first_object_s", json!(secs(first - started)));

    // Chromium's player over MoQ through the door, beside the reader.
    let mut browser = Browser::start_with(
        960,
        540,
        BrowserOptions {
            trusted_spki: vec![server_spki(c)?],
            ..BrowserOptions::default()
        },
    )
    .await?;
    let page = format!("{}/?transport=moq#live/{stream}", c.https);
    let watched = async {
        browser.goto(&page).await?;
        let playing = browser
            .wait_for(
                "the player plays over MoQ through the door",
                &format!(
                    "{} if (r && r.errors && r.errors.length) return {{ failed: JSON.stringify(r) }};                      return r && r.transport === 'moq' && r.moq && r.moq.objects > 5 && r.t > 1 ? r : false;",
                    crate::moq::MOQ_STATE_FN
                ),
                Value::Null,
                Duration::from_secs(60),
                |_| Ok(()),
            )
            .await?;
        c.note("moq_chromium_through_the_door", playing.clone());
        crate::pages::start_timeline(&browser, 100).await?;
        anyhow::Ok(())
    }
    .await;
    if let Err(e) = watched {
        browser.quit().await?;
        return Err(e);
    }

    // Each replica killed in turn: the reader's flow moves to another relay (or stays,
    // when it was not on the one killed); either way objects come again.
    let replicas = c.project.containers("relay").await?;
    anyhow::ensure!(replicas.len() >= 2, "relay replicas: {replicas:?}");
    let mut longest = Duration::ZERO;
    for id in &replicas {
        let mut last = Instant::now();
        while let Ok(Some(at)) = arrivals.try_recv().map(Some) {
            last = at;
        }
        docker::docker(&["kill", id]).await?;
        let killed = Instant::now();
        // Ten seconds of objects after the kill, or the limit passes without one.
        let mut gap = Duration::ZERO;
        while killed.elapsed() < Duration::from_secs(10) {
            let at = tokio::time::timeout(REDIAL_LIMIT, arrivals.recv())
                .await
                .with_context(|| {
                    format!("no object within {REDIAL_LIMIT:?} after relay {id} was killed")
                })?
                .context("the reader stopped")?;
            gap = gap.max(at - last);
            last = at;
        }
        longest = longest.max(gap);
        docker::docker(&["start", id]).await?;
        // The next kill only once the door sends viewers to this one again: killing the
        // other replica while this one still starts would leave the tier no relay.
        door_counts(c, replicas.len())
            .await
            .with_context(|| format!("relay {id} started again"))?;
    }
    c.note("moq_relay_killed_longest_gap_s", json!(secs(longest)));
    reader.abort();
    let played_on = async {
        let after = plays_on(&mut browser, "the relays were killed").await?;
        // Every replica was killed, so the player's own relay was: it dialled again and
        // read on into the same buffer (a resume), not a new playback from the start.
        anyhow::ensure!(
            after["moq"]["resumes"].as_u64().is_some_and(|n| n >= 1),
            "the player did not read on through a resume when its relay died: {after}"
        );
        let samples = crate::pages::stop_timeline(&browser).await?;
        c.note(
            "moq_chromium_relay_killed_longest_stall_s",
            json!(crate::pages::longest_stall(&samples)),
        );
        c.note("moq_chromium_after_the_kills", moq_summary(&after));

        // Each edge crashed in turn (SIGKILL; Docker restarts it): every edge publishes the
        // stream to both roots, so the relays route the player's subscription through
        // another, once the dead one's session timed out (0.5 s).
        crate::pages::start_timeline(&browser, 100).await?;
        for edge in c.edges().await? {
            let restarts = docker::restart_count(&edge.id).await?;
            docker::crash(&edge.id).await?;
            docker::wait_restarted(&edge.id, restarts, Duration::from_secs(120))
                .await
                .with_context(|| format!("{} back after its crash", edge.node))?;
        }
        let after = plays_on(&mut browser, "the edges crashed").await?;
        let samples = crate::pages::stop_timeline(&browser).await?;
        c.note(
            "moq_chromium_edge_crashed_longest_stall_s",
            json!(crate::pages::longest_stall(&samples)),
        );
        c.note("moq_chromium_after_the_edge_crashes", moq_summary(&after));
        anyhow::Ok(())
    }
    .await;
    browser.quit().await?;
    played_on
}

/// Waits (up to 60 s) until lb1's QUIC door counts `relays` relays eligible
/// (`sealcast_lb_quic_relays_eligible` on its metrics port, on the frontend network).
async fn door_counts(c: &Compose, relays: usize) -> anyhow::Result<()> {
    let lb1 = c.project.container("lb1").await?;
    let url = format!(
        "http://{}:9102/metrics",
        docker::address(&lb1, "_frontend").await?
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut last = None;
    while Instant::now() < deadline {
        if let Ok(answer) = c
            .client
            .get(&url)
            .timeout(Duration::from_secs(2))
            .send()
            .await
        {
            let text = answer.text().await.unwrap_or_default();
            last = text
                .lines()
                .find_map(|l| l.strip_prefix("sealcast_lb_quic_relays_eligible "))
                .and_then(|n| n.trim().parse::<f64>().ok());
            if last.is_some_and(|n| n >= relays as f64) {
                return Ok(());
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    anyhow::bail!("lb1's door counted {last:?} eligible relays after 60 s, not {relays}")
}

/// The page's state once it played 6 s more, over MoQ, every object verified and no error.
async fn plays_on(browser: &mut Browser, after_what: &str) -> anyhow::Result<Value> {
    let now = browser
        .execute(
            "return document.getElementById('video').currentTime",
            Value::Null,
        )
        .await?
        .as_f64()
        .context("no currentTime")?;
    let after = browser
        .wait_for(
            &format!("the player plays on after {after_what}"),
            &format!(
                "{} return r && r.t >= arguments[0] + 6 ? r : false;",
                crate::moq::MOQ_STATE_FN
            ),
            json!(now),
            Duration::from_secs(90),
            |_| Ok(()),
        )
        .await;
    let after = match after {
        Ok(after) => after,
        Err(e) => {
            let state = crate::moq::moq_state(browser).await.unwrap_or_default();
            return Err(e.context(format!("page state {state}")));
        }
    };
    anyhow::ensure!(
        after["refused"].as_u64() == Some(0),
        "the player refused objects through the door after {after_what}: {after}"
    );
    anyhow::ensure!(
        after["transport"] == "moq" && after["errors"].as_array().is_some_and(Vec::is_empty),
        "the player left MoQ or met an error after {after_what}: {after}"
    );
    Ok(after)
}

/// What the report keeps of the page's state.
fn moq_summary(after: &Value) -> Value {
    json!({ "transport": after["transport"], "objects": after["moq"]["objects"],
            "resumes": after["moq"]["resumes"], "resume_log": after["moq"]["resumeLog"],
            "skipped_groups": after["moq"]["skipped"], "fetched_objects": after["moq"]["fetched"],
            "bridges": after["moq"]["bridges"], "bridged_objects": after["moq"]["bridged"],
            "bridge_log": after["moq"]["bridgeLog"],
            "verified": after["verified"], "errors": after["errors"] })
}

/// The base64 SHA-256 of the cluster server certificate's key (its SubjectPublicKeyInfo),
/// as Chromium's `--ignore-certificate-errors-spki-list` takes it.
fn server_spki(c: &Compose) -> anyhow::Result<String> {
    let pem = c.project.dir.join("certs/generated/server.pem");
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(
            "openssl x509 -in \"$1\" -pubkey -noout | openssl pkey -pubin -outform der \
             | openssl dgst -sha256 -binary | base64",
        )
        .arg("sh")
        .arg(&pem)
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "openssl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8(out.stdout)?.trim().to_owned())
}

/// A private stream through the door: announced to nobody without a grant; with the grant
/// a node minted for its token (`/live/{stream}/moq-grant` through the load balancer),
/// its media.
pub(super) async fn private_through_the_door(
    c: &Compose,
    stream: &str,
    token: &str,
) -> anyhow::Result<()> {
    let url = endpoint(c).await?;
    let grant: serde_json::Value = c
        .client
        .get(format!("{}/live/{stream}/moq-grant?token={token}", c.https))
        .send()
        .await?
        .error_for_status()
        .context("the grant for a token")?
        .json()
        .await?;
    let grant = grant["grant"].as_str().context("no grant")?.to_owned();
    let status = c
        .client
        .get(format!("{}/live/{stream}/moq-grant", c.https))
        .send()
        .await?
        .status();
    anyhow::ensure!(status == 404, "a grant without a token: {status}");
    let path = format!("_private/{stream}");
    // With the grant, an object of the private stream; dialled again, as the player dials
    // again, when a route went away under the viewer (on a loaded machine a node's session
    // with a relay can time out and come back: the relay then answers `unroutable` until
    // it has the route again).
    let deadline = Instant::now() + Duration::from_secs(45);
    let mut tries = Vec::new();
    loop {
        let tried = async {
            let (granted, _kept) = dial(c, &url, Some(&format!("grant={grant}")))?;
            let broadcast = announced(&granted, &path, ANNOUNCED).await?;
            let rendition = first_rendition(&broadcast).await?;
            let mut media = broadcast.track(&rendition)?.subscribe(None).await?;
            let mut group = tokio::time::timeout(Duration::from_secs(15), media.recv_group())
                .await
                .context("no private group within 15 s")??
                .context("the private track ended")?;
            tokio::time::timeout(Duration::from_secs(15), group.read_frame())
                .await
                .context("no private object within 15 s")??
                .context("an empty private group")?;
            anyhow::Ok(())
        };
        match tried.await {
            Ok(()) => break,
            Err(e) if Instant::now() < deadline && tries.len() < 4 => tries.push(format!("{e:#}")),
            Err(e) => return Err(e.context(format!("after {} tries: {tries:?}", tries.len() + 1))),
        }
    }
    if !tries.is_empty() {
        eprintln!("compose: the private stream over MoQ dialled again after {tries:?}");
    }
    // Anonymous: public streams, never this one.
    let (anonymous, _kept) = dial(c, &url, None)?;
    anyhow::ensure!(
        announced(&anonymous, &path, Duration::from_secs(5))
            .await
            .is_err(),
        "an anonymous viewer was announced {path}"
    );
    c.note(
        "moq_private_through_the_door",
        json!({ "dialled_again": tries.len() }),
    );
    Ok(())
}
