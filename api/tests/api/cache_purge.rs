//! Issue 45 item 7 against Debian's real Varnish with deploy/varnish/sealcast.vcl: a
//! recorded segment is stored as a node allows (`s-maxage`), and an [`api::CachePurge`]
//! `BAN` of its stream's trees drops it at once (the next viewer's
//! request reaches the origin, which can then refuse it); a `BAN` from an address outside
//! the acl `purgers` is refused and drops nothing.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use domain::StreamName;

/// An origin answering like a node: a recorded segment, public, immutable for browsers.
async fn origin(fetches: Arc<AtomicUsize>) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let app = axum::Router::new().fallback(move || {
        let fetches = Arc::clone(&fetches);
        async move {
            fetches.fetch_add(1, Ordering::SeqCst);
            (
                [(
                    "cache-control",
                    "public, max-age=31536000, s-maxage=120, immutable",
                )],
                "segment bytes",
            )
        }
    });
    tokio::spawn(async move { axum::serve(listener, app).await });
    port
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from(".."), Path::to_path_buf)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// The status and `x-sealcast-cache` of a GET of `path` through Varnish from `client`.
async fn get(client: &reqwest::Client, base: &str, path: &str) -> (u16, String) {
    let r = client
        .get(format!("{base}{path}"))
        .send()
        .await
        .expect("get");
    let cache = r
        .headers()
        .get("x-sealcast-cache")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let status = r.status().as_u16();
    let _ = r.bytes().await;
    (status, cache)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ban_drops_a_streams_cached_answers_and_only_a_purger_may_send_it() {
    let fetches = Arc::new(AtomicUsize::new(0));
    let origin_port = origin(Arc::clone(&fetches)).await;
    let dir = std::env::temp_dir().join(format!(
        "sealcast-purge-{}-{origin_port}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::write(
        dir.join("origin.vcl"),
        format!(
            "backend lb {{\n    .host = \"127.0.0.1\";\n    .port = \"{origin_port}\";\n}}\n\
             sub vcl_init {{\n    new origin = directors.round_robin();\n    origin.add_backend(lb);\n}}\n\
             acl purgers {{\n    \"127.0.0.1\";\n}}\n"
        ),
    )
    .expect("origin.vcl");
    let deploy = repo_root().join("deploy/varnish");
    let listen = free_port();
    let varnishd = if Path::new("/usr/sbin/varnishd").exists() {
        PathBuf::from("/usr/sbin/varnishd")
    } else {
        PathBuf::from("varnishd")
    };
    let mut varnish = tokio::process::Command::new(varnishd)
        .args(["-F", "-j", "none", "-n"])
        .arg(dir.join("work"))
        .args(["-a", &format!("127.0.0.1:{listen}"), "-f"])
        .arg(deploy.join("sealcast.vcl"))
        .arg("-p")
        .arg(format!("vcl_path={}:{}", dir.display(), deploy.display()))
        .args(["-s", "malloc,16m"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("varnishd starts");
    let base = format!("http://127.0.0.1:{listen}");
    let client = reqwest::Client::new();
    let path = "/vod/town-hall/00000000000000ff/src/1.m4s";
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(r) = client.get(format!("{base}{path}")).send().await {
            if r.status().is_success() {
                break;
            }
        }
        assert!(Instant::now() < deadline, "Varnish did not answer in 60 s");
        assert!(
            varnish.try_wait().expect("wait").is_none(),
            "varnishd exited"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Stored now: a hit, no new fetch.
    let before = fetches.load(Ordering::SeqCst);
    let (status, cache) = get(&client, &base, path).await;
    assert_eq!((status, cache.as_str()), (200, "hit"));
    assert_eq!(fetches.load(Ordering::SeqCst), before);
    // A BAN from an address that is not a purger: refused, nothing dropped.
    let stranger = reqwest::Client::builder()
        .local_address(std::net::IpAddr::from([127, 0, 0, 2]))
        .build()
        .expect("client");
    let ban = reqwest::Method::from_bytes(b"BAN").expect("method");
    let r = stranger
        .request(ban.clone(), format!("{base}/vod/town-hall/"))
        .send()
        .await
        .expect("ban");
    assert_eq!(r.status(), 403);
    let (_, cache) = get(&client, &base, path).await;
    assert_eq!(cache, "hit");
    // Only a stream's tree may be banned, nothing wider.
    let r = client
        .request(ban, format!("{base}/vod/"))
        .send()
        .await
        .expect("ban");
    assert_eq!(r.status(), 400);

    // The API's purge: the next request reaches the origin again.
    let purge = api::CachePurge::new(std::slice::from_ref(&base)).expect("purge");
    let stream = StreamName::new("town-hall").expect("name");
    let failed = purge
        .ban(&domain::paths::stream_tree_prefixes(&stream))
        .await;
    assert_eq!(failed, 0);
    let before = fetches.load(Ordering::SeqCst);
    let (status, cache) = get(&client, &base, path).await;
    assert_eq!((status, cache.as_str()), (200, "miss"));
    assert_eq!(fetches.load(Ordering::SeqCst), before + 1);

    let _ = varnish.kill().await;
    let _ = std::fs::remove_dir_all(&dir);
}
