//! Low-latency HLS through the load balancer, as a player meets it over HTTPS and HTTP/2:
//! the LL tags of RFC 8216bis in the media playlist, a blocking reload answered when the
//! part it asks for is published, a preload-hinted part held until it exists, delta
//! updates that skip what they say, parts identical on every node, and segments that the
//! nodes made of the parts they hold (issue 46: the ingest pushes no segment bytes to a
//! node that took every part).

use std::time::{Duration, Instant};

use anyhow::Context;

use crate::cluster::{get_opt, Cluster};
use crate::lb;

/// One `#EXT-X-PART` line: its URI, duration and whether it is independent.
#[derive(Debug, Clone, PartialEq)]
struct PartLine {
    uri: String,
    duration: f64,
    independent: bool,
}

/// The value of attribute `name` in an attribute list (`A=1,B="x"`), unquoted.
fn attribute<'a>(list: &'a str, name: &str) -> Option<&'a str> {
    let mut rest = list;
    while !rest.is_empty() {
        let (key, after) = rest.split_once('=')?;
        let (value, next) = if let Some(quoted) = after.strip_prefix('"') {
            let (value, tail) = quoted.split_once('"')?;
            (value, tail.strip_prefix(',').unwrap_or(tail))
        } else {
            match after.split_once(',') {
                Some((value, tail)) => (value, tail),
                None => (after, ""),
            }
        };
        if key == name {
            return Some(value);
        }
        rest = next;
    }
    None
}

/// The parts a playlist lists, in order.
fn parts(text: &str) -> Vec<PartLine> {
    text.lines()
        .filter_map(|l| l.strip_prefix("#EXT-X-PART:"))
        .filter_map(|attrs| {
            Some(PartLine {
                uri: attribute(attrs, "URI")?.to_owned(),
                duration: attribute(attrs, "DURATION")?.parse().ok()?,
                independent: attribute(attrs, "INDEPENDENT") == Some("YES"),
            })
        })
        .collect()
}

/// The tag's attribute list, if the playlist has the tag.
fn tag<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
}

/// `{seq}.{part}.m4s` → (seq, part).
fn part_numbers(uri: &str) -> Option<(u64, u32)> {
    let (seq, rest) = uri.strip_suffix(".m4s")?.split_once('.')?;
    Some((seq.parse().ok()?, rest.parse().ok()?))
}

/// The LL-HLS checks on the shared live stream (source rung only), through the load
/// balancer.
pub(crate) async fn check_llhls(cluster: &Cluster, stream: &str) -> anyhow::Result<()> {
    let client = lb::https_client(&cluster.ca())?;
    let mut viewer = lb::Viewer::new(client.clone(), &cluster.https);
    viewer.get(&format!("/live/{stream}/master.m3u8")).await?;
    let cookie = viewer.cookie.clone().context("no sticky cookie")?;
    let media = format!("/live/{stream}/src/index.m3u8");
    let get = |path: String| {
        let request = client
            .get(format!("{}{path}", cluster.https))
            .header("cookie", cookie.clone());
        async move {
            let response = request
                .send()
                .await
                .with_context(|| format!("GET {path}"))?;
            let version = response.version();
            let status = response.status();
            let body = response.bytes().await?;
            anyhow::Ok((status, version, body))
        }
    };

    // The tags, on a playlist that lists parts of three segments.
    let deadline = Instant::now() + Duration::from_secs(30);
    let text = loop {
        let (status, version, body) = get(media.clone()).await?;
        anyhow::ensure!(status.is_success(), "{media}: {status}");
        anyhow::ensure!(
            version == reqwest::Version::HTTP_2,
            "{media} over {version:?}"
        );
        let text = String::from_utf8(body.to_vec())?;
        if parts(&text).len() >= 12 {
            break text;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "{media} never listed 12 parts:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    let playlist = m3u8_rs::parse_media_playlist_res(text.as_bytes())
        .map_err(|e| anyhow::anyhow!("{media} does not parse as HLS: {e:?}\n{text}"))?;
    anyhow::ensure!(
        playlist.segments.iter().all(|s| s.uri.ends_with(".m4s")),
        "segments that are not CMAF:\n{text}"
    );
    let control = tag(&text, "#EXT-X-SERVER-CONTROL").context("no EXT-X-SERVER-CONTROL")?;
    anyhow::ensure!(
        attribute(control, "CAN-BLOCK-RELOAD") == Some("YES"),
        "no CAN-BLOCK-RELOAD=YES: {control}"
    );
    let part_target: f64 = tag(&text, "#EXT-X-PART-INF")
        .and_then(|a| attribute(a, "PART-TARGET"))
        .context("no EXT-X-PART-INF PART-TARGET")?
        .parse()?;
    let hold_back: f64 = attribute(control, "PART-HOLD-BACK")
        .context("no PART-HOLD-BACK")?
        .parse()?;
    let skip_until: f64 = attribute(control, "CAN-SKIP-UNTIL")
        .context("no CAN-SKIP-UNTIL")?
        .parse()?;
    anyhow::ensure!(
        (0.2..=0.5).contains(&part_target) && hold_back >= 2.0 * part_target,
        "PART-TARGET {part_target}, PART-HOLD-BACK {hold_back}"
    );
    anyhow::ensure!(
        skip_until >= 6.0 * playlist.target_duration as f64,
        "CAN-SKIP-UNTIL {skip_until} under six target durations"
    );
    anyhow::ensure!(
        tag(&text, "#EXT-X-MAP").and_then(|a| attribute(a, "URI")) == Some("init.mp4"),
        "no EXT-X-MAP init.mp4"
    );
    anyhow::ensure!(
        text.contains("#EXT-X-PROGRAM-DATE-TIME:"),
        "no EXT-X-PROGRAM-DATE-TIME"
    );
    let listed = parts(&text);
    for p in &listed {
        anyhow::ensure!(
            p.duration > 0.0 && p.duration <= part_target + 0.05,
            "part {} lasts {} s (PART-TARGET {part_target})",
            p.uri,
            p.duration
        );
        let (_, index) = part_numbers(&p.uri).context("part URI")?;
        anyhow::ensure!(
            index != 0 || p.independent,
            "part {} starts a segment but is not INDEPENDENT=YES",
            p.uri
        );
    }
    let hint = tag(&text, "#EXT-X-PRELOAD-HINT").context("no EXT-X-PRELOAD-HINT")?;
    anyhow::ensure!(attribute(hint, "TYPE") == Some("PART"), "hint {hint}");
    let init = get(format!("/live/{stream}/src/init.mp4")).await?;
    anyhow::ensure!(
        init.0.is_success() && init.2.get(4..8) == Some(b"ftyp".as_slice()),
        "init.mp4: {} {:?}",
        init.0,
        init.2.get(..8)
    );

    // A blocking reload for the hinted part and the hinted part itself, at once: both are
    // held until the part exists, and answered together.
    let (msn, part) = part_numbers(attribute(hint, "URI").context("hint URI")?)
        .context("hint URI is not {seq}.{part}.m4s")?;
    let asked = Instant::now();
    let blocking = async {
        let r = get(format!("{media}?_HLS_msn={msn}&_HLS_part={part}")).await;
        (r, Instant::now())
    };
    let hinted = async {
        let r = get(format!("/live/{stream}/src/{msn}.{part}.m4s")).await;
        (r, Instant::now())
    };
    let ((reload, reload_at), (fetched, fetched_at)) = tokio::join!(blocking, hinted);
    let (status, _, body) = reload?;
    anyhow::ensure!(status.is_success(), "blocking reload: {status}");
    let reloaded = String::from_utf8(body.to_vec())?;
    let uri = format!("{msn}.{part}.m4s");
    anyhow::ensure!(
        parts(&reloaded).iter().any(|p| p.uri == uri) || {
            // Past the segment's last part: the next segment's first part, or the
            // segment itself, is listed.
            reloaded.contains(&format!("\n{msn}.m4s\n"))
        },
        "the blocking reload for {uri} does not list it:\n{reloaded}"
    );
    let (status, _, part_bytes) = fetched?;
    anyhow::ensure!(
        status.is_success() && !part_bytes.is_empty(),
        "the hinted part {uri}: {status}"
    );
    let spread = if reload_at > fetched_at {
        reload_at - fetched_at
    } else {
        fetched_at - reload_at
    };
    let waited = reload_at.max(fetched_at) - asked;
    tracing_line(&format!(
        "blocking reload and hinted part answered {:.0} ms apart, {:.0} ms after asking",
        spread.as_secs_f64() * 1000.0,
        waited.as_secs_f64() * 1000.0
    ));
    anyhow::ensure!(
        spread <= Duration::from_secs_f64(part_target) + Duration::from_millis(150),
        "the blocking reload and the part it waited for were answered {spread:?} apart"
    );
    anyhow::ensure!(
        waited < Duration::from_secs(3),
        "the hinted part took {waited:?} to be answered"
    );
    // A request far past live is refused, not held.
    let (status, ..) = get(format!("{media}?_HLS_msn={}", msn + 10)).await?;
    anyhow::ensure!(status == 400, "_HLS_msn ten segments ahead: {status}");
    let (status, ..) = get(format!("{media}?_HLS_part=1")).await?;
    anyhow::ensure!(status == 400, "_HLS_part without _HLS_msn: {status}");

    // A delta update lists what it does not say it skipped.
    let (_, _, full) = get(media.clone()).await?;
    let (_, _, delta) = get(format!("{media}?_HLS_skip=YES")).await?;
    let (full, delta) = (
        String::from_utf8(full.to_vec())?,
        String::from_utf8(delta.to_vec())?,
    );
    let uris = |t: &str| -> Vec<String> {
        t.lines()
            .filter(|l| l.ends_with(".m4s") && !l.starts_with('#'))
            .map(str::to_owned)
            .collect()
    };
    let skipped: usize = tag(&delta, "#EXT-X-SKIP")
        .and_then(|a| attribute(a, "SKIPPED-SEGMENTS"))
        .map_or(Ok(0), str::parse)?;
    let (full_uris, delta_uris) = (uris(&full), uris(&delta));
    let media_sequence = |t: &str| tag(t, "#EXT-X-MEDIA-SEQUENCE").map(str::to_owned);
    // Compared only when no segment came between the two requests.
    if media_sequence(&full) == media_sequence(&delta) && full_uris.last() == delta_uris.last() {
        anyhow::ensure!(
            delta_uris.len() + skipped == full_uris.len()
                && full_uris.get(skipped..) == Some(&delta_uris[..]),
            "the delta update says it skipped {skipped} of {full_uris:?} but lists {delta_uris:?}"
        );
    }

    // The same part bytes on every node.
    check_parts_identical(cluster, stream).await?;
    check_segments_assembled(cluster, stream).await
}

/// Every node made segments of the parts it held (the ingest pushed them without their
/// bytes but the segment's own C2PA VSI), and a segment it serves is that VSI and its
/// listed parts joined, byte for byte.
async fn check_segments_assembled(cluster: &Cluster, stream: &str) -> anyhow::Result<()> {
    let client = cluster.client();
    for node in &cluster.nodes {
        let metrics = get_opt(client, node, "/metrics")
            .await?
            .context("no /metrics")?;
        let metrics = String::from_utf8(metrics.to_vec())?;
        let assembled: f64 = metrics
            .lines()
            .find_map(|l| {
                l.strip_prefix("sealcast_segments_assembled_total{outcome=\"assembled\"} ")
            })
            .context("no sealcast_segments_assembled_total")?
            .parse()?;
        anyhow::ensure!(assembled > 0.0, "{node} assembled no segment of its parts");
        let body = get_opt(client, node, &format!("/live/{stream}/src/index.m3u8"))
            .await?
            .context("no media playlist")?;
        let text = String::from_utf8(body.to_vec())?;
        let listed = parts(&text);
        let segments: Vec<u64> = text
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.strip_suffix(".m4s")?.parse().ok())
            .collect();
        let mut compared = 0;
        for seq in segments {
            let uris: Vec<&str> = listed
                .iter()
                .filter(|p| part_numbers(&p.uri).is_some_and(|(s, _)| s == seq))
                .map(|p| p.uri.as_str())
                .collect();
            if uris.first().and_then(|u| part_numbers(u)) != Some((seq, 0)) {
                continue;
            }
            let path = format!("/live/{stream}/src/{seq}.m4s");
            let Some(segment) = get_opt(client, node, &path).await? else {
                continue;
            };
            let mut joined = Vec::new();
            for uri in uris {
                let path = format!("/live/{stream}/src/{uri}");
                if let Some(part) = get_opt(client, node, &path).await? {
                    joined.extend_from_slice(&part);
                }
            }
            // A part lost on the way is simply not listed: compare whole runs only.
            let prefix = domain::c2pa::vsi::segment_prefix(&segment);
            anyhow::ensure!(
                !prefix.is_empty(),
                "{node}{path} does not open with its own C2PA VSI"
            );
            if prefix.len() + joined.len() == segment.len() {
                anyhow::ensure!(
                    joined == segment[prefix.len()..],
                    "{node}{path} is not its VSI and its parts joined"
                );
                compared += 1;
            }
        }
        anyhow::ensure!(
            compared > 0,
            "{node}: no segment was compared with its parts"
        );
        tracing_line(&format!(
            "{node}: {assembled} segments assembled of their parts, {compared} compared"
        ));
    }
    Ok(())
}

/// Every node serves byte-identical parts for the parts they all list.
async fn check_parts_identical(cluster: &Cluster, stream: &str) -> anyhow::Result<()> {
    let client = cluster.client();
    let mut lists = Vec::new();
    for node in &cluster.nodes {
        let body = get_opt(client, node, &format!("/live/{stream}/src/index.m3u8"))
            .await?
            .context("no media playlist")?;
        lists.push(parts(&String::from_utf8(body.to_vec())?));
    }
    let common: Vec<&PartLine> = lists[0]
        .iter()
        .filter(|p| lists.iter().all(|l| l.iter().any(|q| q.uri == p.uri)))
        .collect();
    anyhow::ensure!(
        common.len() >= 3,
        "the nodes list fewer than 3 common parts"
    );
    let mut compared = 0;
    for p in common {
        let mut first: Option<bytes::Bytes> = None;
        for node in &cluster.nodes {
            let path = format!("/live/{stream}/src/{}", p.uri);
            let Some(bytes) = get_opt(client, node, &path).await? else {
                continue; // no longer listed since the playlist was read
            };
            match &first {
                None => first = Some(bytes),
                Some(f) => {
                    anyhow::ensure!(
                        *f == bytes,
                        "{node}{path}: bytes differ from another node's"
                    );
                    compared += 1;
                }
            }
        }
    }
    anyhow::ensure!(compared > 0, "no part was compared across nodes");
    Ok(())
}

/// A line on the test's output, for the log of the run.
fn tracing_line(line: &str) {
    eprintln!("llhls: {line}");
}

/// How long the browser watches.
const WATCH: Duration = Duration::from_secs(30);

/// hls.js in Chromium, in low-latency mode, plays the shared live stream through the load
/// balancer for [`WATCH`] without a stall, reading the LL playlist (parts, blocking
/// reloads).
pub(crate) async fn check_browser(cluster: &Cluster, stream: &str) -> anyhow::Result<()> {
    let watch = async {
        tokio::time::sleep(WATCH).await;
        anyhow::Ok(())
    };
    let ((), stall, state) = crate::pages::plays_through(&cluster.https, stream, watch).await?;
    tracing_line(&format!(
        "Chromium over {WATCH:?}: longest stall {stall:.2} s, hls.js {state}"
    ));
    anyhow::ensure!(stall < 1.0, "the video stood still {stall:.1} s");
    anyhow::ensure!(
        state["lowLatencyMode"] == true
            && state["canBlockReload"] == true
            && state["partTarget"].as_f64().is_some_and(|t| t > 0.0)
            && state["parts"].as_u64().is_some_and(|n| n > 0),
        "hls.js did not play the stream as LL-HLS: {state}"
    );
    Ok(())
}
