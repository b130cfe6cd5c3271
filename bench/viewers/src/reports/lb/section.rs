//! The section of `bench/lb.sh`'s report ([`super`]), written from its raw results alone
//! (every figure and setting it prints is in them), as `lb.py` wrote it.

use serde_json::{json, Value};

use crate::reports::push_notes;
use crate::spread::{grouped, text, Spread};

/// The section's heading in `docs/benchmarks.md`.
pub const HEADING: &str = "## Load-balancer overhead (bench/lb.sh)";

/// The kinds of request, in the tables' order.
const KINDS: [&str; 2] = ["playlist", "segment"];

/// A spread of `lib/stats.py`'s `spread` (as JSON) as [`crate::spread`] prints it.
fn as_spread(s: &Value) -> Option<Spread> {
    Some(Spread {
        median: s.get("median")?.as_f64()?,
        min: s.get("min")?.as_f64()?,
        max: s.get("max")?.as_f64()?,
    })
}

/// A spread's median.
pub(super) fn median(s: &Value) -> Option<f64> {
    s.get("median").and_then(Value::as_f64)
}

/// `x` with `d` decimals and thousands' commas; "-" for none.
fn f(x: Option<f64>, d: usize) -> String {
    x.map_or_else(|| "-".to_owned(), |x| grouped(Some(x), d))
}

/// The section, from the raw results.
pub(super) fn section(out: &Value, notes: Option<&str>) -> String {
    let ms = |s: &Value| median(s);
    // `version (\S+)`: the first "version " with a word after it.
    let haproxy = out["haproxy"].as_str().unwrap_or("");
    let ha_name = haproxy
        .match_indices("version ")
        .map(|(i, m)| haproxy[i + m.len()..].split(char::is_whitespace).next())
        .find_map(|v| v.filter(|v| !v.is_empty()))
        .map_or_else(|| "HAProxy".to_owned(), |v| format!("HAProxy {v}"));
    let protocol = |s: &str| out["protocol"][s].as_str().unwrap_or("").to_owned();
    let mut lines = vec![
        HEADING.to_owned(),
        String::new(),
        format!(
            "`sealcast lb` (Pingora, 1 tokio worker) vs {ha_name} (`nbthread 1`), both pinned to core 1, \
             sticky by cookie (`sealcast_node`; HAProxy `cookie … insert indirect nocache`, `balance leastconn`, `http-reuse always`), \
             same certificate, in front of two nginx backends (core 0, with h2load). Clients: TLS + h2 ({} / {}), \
             half of them holding each backend's cookie. Saturating: h2load `-c{} -m{}`; \
             paced (latency): `-c{} --rps {}` per client, added latency against h2load `--h1` on the backends themselves (plain HTTP/1.1) in the same run. \
             Playlist {} B, segment {} KiB; {} interleaved runs of {} s, {}. \
             Ratios are HAProxy / ours: > 1 means we are ahead.",
            protocol("sealcast"),
            protocol("haproxy"),
            out["clients"],
            out["streams_per_client"],
            out["paced_clients"],
            out["paced_rps_per_client"],
            out["playlist_bytes"],
            out["segment_bytes"].as_u64().unwrap_or(0) / 1024,
            out["runs"],
            out["seconds_per_load"],
            out["date"].as_str().unwrap_or(""),
        ),
        String::new(),
        "| load | ours req/s | ours CPU ms /1k req | ours CPU ms /MB | HAProxy req/s | HAProxy CPU ms /1k req | HAProxy CPU ms /MB | ratio CPU /1k req (median, min–max) | ratio CPU /MB | A/A HAProxy |".to_owned(),
        "|---|---|---|---|---|---|---|---|---|---|".to_owned(),
    ];
    let rng = |s: &Value| text(as_spread(s), 2);
    for kind in KINDS {
        let e = &out["saturating"][kind];
        let (u, h, r) = (&e["sealcast"], &e["haproxy"], &e["ratio_haproxy_over_ours"]);
        lines.push(format!(
            "| {kind} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            f(ms(&u["req_per_s"]), 0),
            f(ms(&u["cpu_ms_per_1k_requests"]), 1),
            f(ms(&u["cpu_ms_per_mb"]), 2),
            f(ms(&h["req_per_s"]), 0),
            f(ms(&h["cpu_ms_per_1k_requests"]), 1),
            f(ms(&h["cpu_ms_per_mb"]), 2),
            rng(&r["cpu_per_1k_requests"]),
            rng(&r["cpu_per_mb"]),
            rng(&e["noise_floor_haproxy_aa"]["cpu_per_1k_requests"]),
        ));
    }
    lines.push(String::new());
    lines.push("| paced load | direct p50 / p99 µs | ours p50 / p99 µs | HAProxy p50 / p99 µs | ours added p50 / p99 µs | HAProxy added p50 / p99 µs |".to_owned());
    lines.push("|---|---|---|---|---|---|".to_owned());
    for kind in KINDS {
        let e = &out["latency"][kind];
        let pair = |s: &Value| format!("{} / {}", f(ms(&s["p50_us"]), 0), f(ms(&s["p99_us"]), 0));
        lines.push(format!(
            "| {kind} | {} | {} | {} | {} | {} |",
            pair(&e["direct"]),
            pair(&e["sealcast"]),
            pair(&e["haproxy"]),
            pair(&e["added_us"]["sealcast"]),
            pair(&e["added_us"]["haproxy"]),
        ));
    }
    let ru = &out["reuse"];
    let met = |ok: bool| if ok { "met" } else { "NOT met" };
    let p99_met = KINDS
        .iter()
        .map(|k| {
            format!(
                "{k} {}",
                met(out["target"]["added_p99_met"][*k] == json!(true))
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    let pc = |x: &Value| {
        x.as_f64()
            .map_or_else(|| "-".to_owned(), |x| format!("{:.2} %", 100.0 * x))
    };
    let shares = KINDS
        .iter()
        .map(|k| {
            let e = &out["saturating"][*k];
            format!(
                "{k} {} / {}",
                f(ms(&e["sealcast"]["cpu_share"]), 2),
                f(ms(&e["haproxy"]["cpu_share"]), 2)
            )
        })
        .collect::<Vec<_>>()
        .join("; ");
    lines.push(String::new());
    lines.push(format!(
        "Load-balancer CPU-s per wall-second under the saturating loads (ours / HAProxy, median): {shares}. \
         Below 1.0 the load balancer was not the bottleneck (h2load and the backends share the other core, and the machine \
         may be shared): requests/s then mean little, CPU per request is the figure to read."
    ));
    let errors = &out["errors"];
    if ["sealcast", "haproxy", "direct"]
        .iter()
        .any(|s| errors[*s].as_i64() != Some(0))
    {
        lines.push(String::new());
        lines.push(format!(
            "Failed requests (h2load): ours {}, HAProxy {}, direct {}.",
            errors["sealcast"], errors["haproxy"], errors["direct"]
        ));
    }
    if let Some(choices) = out["sealcast_choices"]
        .as_object()
        .filter(|c| !c.is_empty())
    {
        let placed = choices
            .iter()
            .filter_map(|(k, v)| {
                let v = v.as_f64().filter(|v| *v != 0.0)?;
                Some(format!("{k} {}", grouped(Some(v.trunc() + 0.0), 0)))
            })
            .collect::<Vec<_>>()
            .join(", ");
        lines.push(String::new());
        lines.push(format!(
            "Our placements: {placed} (sticky_hit should be nearly all)."
        ));
    }
    let count = |v: &Value| grouped(v.as_f64(), 0);
    lines.push(String::new());
    lines.push(format!(
        "Backend connection reuse (1 − connections accepted / requests served, all loads): ours {} \
         ({} connections for {} requests), HAProxy {} ({} for {}).",
        pc(&ru["sealcast"]["reuse"]),
        ru["sealcast"]["backend_accepts"],
        count(&ru["sealcast"]["backend_requests"]),
        pc(&ru["haproxy"]["reuse"]),
        ru["haproxy"]["backend_accepts"],
        count(&ru["haproxy"]["backend_requests"]),
    ));
    lines.push(String::new());
    lines.push(format!(
        "Goal (issue 18): HAProxy CPU / ours ≥ 1.2 per playlist and per segment request — {}; \
         added p99 < 200 µs at the paced load — {p99_met}; reuse ≥ 99 % — {}. \
         Where the CPU goes: bench/lb-profile.sh (instructions per request, below). \
         Server CPU is the load balancer's process only (utime+stime).",
        met(out["target"]["cpu_met"] == json!(true)),
        met(out["target"]["reuse_met"] == json!(true)),
    ));
    push_notes(&mut lines, notes);
    lines.push(String::new());
    lines.push(
        "Run it with `bench/lb.sh [RUNS [SECONDS]]`; raw numbers in `bench/out/lb.json`."
            .to_owned(),
    );
    lines.push(String::new());
    lines.join("\n")
}
