//! Issue 45: the origin listener behind a cache tier, what reaches the load balancer's log,
//! and direct mode with a playback token.
//!
//! - A trusted cache's viewers are clients of their own (budgets, client-bound tokens,
//!   the address the nodes are told), taken from the `X-Forwarded-For` hop the cache
//!   appended; anyone else's `X-Forwarded-For` is ignored.
//! - Pingora's own "Fail to proxy" lines name the request without its token.
//! - Direct mode never redirects a tokened request to a node's plain-http:// URL.

use domain::time::WallClock;
use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use certs::tokens::{Claims, PlaybackKey, TokenVerifier};
use domain::presence::PresenceState;
use domain::StreamName;
use loadbalancer::caches::TrustedCaches;
use loadbalancer::limits::{ClientLimits, Rate};
use loadbalancer::{LbListeners, LbMetrics, Mode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::proxy::{eligible, setup, DEADLINE};

/// A node that answers every request with the `x-forwarded-for` it was sent.
async fn echo_node() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let app = axum::Router::new().fallback(|headers: http::HeaderMap| async move {
        let forwarded = headers
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("(none)")
            .to_owned();
        ([("x-sealcast-node", "echo")], forwarded)
    });
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

/// A viewer of a cache at 127.0.0.2 (trusted) gets a request budget of its own, a token
/// bound to its network opens the stream, and the node is told its address; the same
/// claims from 127.0.0.3 (not a trusted cache) are ignored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trusted_caches_viewers_are_clients_of_their_own() {
    let s = setup().await;
    let node = echo_node().await;
    s.announce("echo", PresenceState::Ready, &node, None).await;
    let key = PlaybackKey::new(&[9; 32]).expect("key");
    let mut config = s.config(Mode::Cookie, false, "lb-caches");
    config.limits = Some(ClientLimits {
        requests: Rate::new(1, 4).expect("rate"),
        ..ClientLimits::default()
    });
    config.tokens = Some(Arc::new(TokenVerifier::new(key.clone())));
    config.trusted_caches = TrustedCaches::new(vec!["127.0.0.2/32".parse().expect("net")]);
    let bind = || std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let origin = bind();
    let base = format!(
        "http://127.0.0.1:{}",
        origin.local_addr().expect("addr").port()
    );
    let lb = loadbalancer::start(
        config,
        LbListeners {
            https: bind(),
            http: None,
            origin: Some(origin),
            quic: None,
        },
        LbMetrics::default(),
    )
    .expect("starts");
    eligible(&lb, 1).await;
    let cache = s.client_at([127, 0, 0, 2].into());
    let stranger = s.client_at([127, 0, 0, 3].into());
    let get = |client: &reqwest::Client, path: &str, forwarded: &str| {
        client
            .get(format!("{base}{path}"))
            .header("x-forwarded-for", forwarded)
            .send()
    };

    // The node is told the hop the cache appended, never what the viewer wrote before it.
    let r = get(&cache, "/live/cam/master.m3u8", "6.6.6.6, 203.0.113.5")
        .await
        .expect("through the cache");
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.expect("body"), "203.0.113.5");
    // Its budget is its own: used up by it, not by the cache's other viewers.
    let mut statuses = Vec::new();
    for _ in 0..4 {
        let r = get(&cache, "/", "203.0.113.5").await.expect("get");
        statuses.push(r.status().as_u16());
    }
    assert_eq!(statuses.last(), Some(&429), "{statuses:?}");
    let r = get(&cache, "/", "203.0.113.6")
        .await
        .expect("another viewer");
    assert_eq!(
        r.status(),
        200,
        "another viewer behind the cache was held back"
    );
    assert_eq!(r.text().await.expect("body"), "203.0.113.6");

    // A token bound to the viewer's network opens the stream through the cache, and only
    // for a viewer in that network.
    let now = WallClock.unix_secs();
    let mut claims = Claims::new(StreamName::new("cam").expect("name"), now, now + 600);
    claims.cidr = Some("198.51.100.0/24".parse().expect("net"));
    let tokened = format!("/live/cam/master.m3u8?token={}", key.mint(&claims));
    let r = get(&cache, &tokened, "198.51.100.7").await.expect("get");
    assert_eq!(
        r.status(),
        200,
        "a client-bound token failed behind the cache"
    );
    let r = get(&cache, &tokened, "192.0.2.1").await.expect("get");
    assert_eq!(r.status(), 403);
    // A trusted cache that forwards garbage gets a clear refusal, not a guess.
    let r = get(&cache, "/", "not-an-address").await.expect("get");
    assert_eq!(r.status(), 400);

    // Anyone else's X-Forwarded-For is ignored: it is its own client, whatever it claims.
    let r = get(&stranger, &tokened, "198.51.100.7").await.expect("get");
    assert_eq!(r.status(), 403, "an untrusted peer's header was believed");
    let r = get(&stranger, "/", "203.0.113.9").await.expect("get");
    assert_eq!(r.text().await.expect("body"), "127.0.0.3");
    let mut statuses = Vec::new();
    for i in 0..5 {
        let r = get(&stranger, "/", &format!("203.0.113.{}", 20 + i))
            .await
            .expect("get");
        statuses.push(r.status().as_u16());
    }
    assert_eq!(statuses.last(), Some(&429), "{statuses:?}");
    lb.stop().await;
    s.stop.cancel();
}

/// Everything the process logs, tracing and the `log` records Pingora writes alike.
fn captured_log() -> &'static Arc<Mutex<Vec<u8>>> {
    static LOG: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOG.get_or_init(|| {
        let log = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&log);
        tracing_subscriber::fmt()
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .with_writer(move || Sink(Arc::clone(&sink)))
            .try_init()
            .expect("the only subscriber of this test binary");
        log
    })
}

struct Sink(Arc<Mutex<Vec<u8>>>);

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log").extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A node that answers its health checks and every other request with bytes that are
/// not HTTP: the load balancer fails to proxy, and says so in its log.
async fn broken_node() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut chunk = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16_384 {
                    match socket.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&chunk[..n]),
                    }
                }
                let answer: &[u8] = if head.starts_with(b"GET /healthz ") {
                    b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\nconnection: close\r\n\r\nok\n"
                } else {
                    b"\x00\x01 not http at all\r\n\r\n"
                };
                let _ = socket.write_all(answer).await;
            });
        }
    });
    url
}

/// A tokened request the load balancer fails to proxy: Pingora's error line and the
/// access log name the request, never its token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_never_carries_a_playback_token() {
    let log = captured_log();
    let s = setup().await;
    let node = broken_node().await;
    s.announce("broken", PresenceState::Ready, &node, None)
        .await;
    let mut config = s.config(Mode::Cookie, false, "lb-log");
    config.proxy.access_log = true;
    let https = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let base = format!(
        "https://localhost:{}",
        https.local_addr().expect("addr").port()
    );
    let lb = loadbalancer::start(
        config,
        LbListeners {
            https,
            http: None,
            origin: None,
            quic: None,
        },
        LbMetrics::default(),
    )
    .expect("starts");
    eligible(&lb, 1).await;
    let secret = "tok3n-that-must-not-be-logged-45";
    let path = "/live/log-test/src/index.m3u8";
    let r = s
        .client()
        .get(format!(
            "{base}{path}?_HLS_msn=4&token={secret}&_HLS_part=1"
        ))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 502);
    let deadline = tokio::time::Instant::now() + DEADLINE;
    let text = loop {
        let text = String::from_utf8_lossy(&log.lock().expect("log")).into_owned();
        let failed = text
            .lines()
            .any(|l| l.contains("Fail to proxy") && l.contains(path));
        let accessed = text
            .lines()
            .any(|l| l.contains("sealcast::access") && l.contains(path));
        if failed && accessed {
            break text;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no Fail to proxy and access lines for {path}:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(!text.contains(secret), "the token reached the log:\n{text}");
    assert!(
        text.contains(&format!("{path}?_HLS_msn=4&token=<redacted>&_HLS_part=1")),
        "the request is named, its token redacted:\n{text}"
    );
    lb.stop().await;
    s.stop.cancel();
}

/// Direct mode sends a tokened playlist request to a node's own URL only over TLS: a node
/// with a plain http:// direct URL gets it proxied; a public request is redirected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_mode_never_sends_a_token_over_plain_http() {
    let s = setup().await;
    let node = echo_node().await;
    let plain = "http://broadcast1.streaming-cluster.test:8080";
    s.announce("echo", PresenceState::Ready, &node, Some(plain))
        .await;
    let (lb, base) = s.start(Mode::Cookie, true, "lb-direct-token");
    eligible(&lb, 1).await;
    let client = s.client();
    let r = client
        .get(format!("{base}/live/cam/master.m3u8"))
        .send()
        .await
        .expect("public");
    assert_eq!(r.status(), 302);
    assert_eq!(
        r.headers()["location"],
        format!("{plain}/live/cam/master.m3u8").as_str()
    );
    let r = client
        .get(format!("{base}/live/cam/master.m3u8?token=abc.def"))
        .send()
        .await
        .expect("tokened");
    assert_eq!(
        r.status(),
        200,
        "a tokened request was sent to an http:// URL"
    );
    assert!(!r.headers().contains_key("location"));
    assert_eq!(r.headers()["x-sealcast-node"], "echo");

    // Over TLS the token may go to the node's own address.
    let tls = "https://broadcast1.streaming-cluster.test";
    s.announce("echo", PresenceState::Ready, &node, Some(tls))
        .await;
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let r = client
            .get(format!("{base}/live/cam/master.m3u8?token=abc.def"))
            .send()
            .await
            .expect("tokened");
        if r.status() == 302 {
            assert_eq!(
                r.headers()["location"],
                format!("{tls}/live/cam/master.m3u8?token=abc.def").as_str()
            );
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{}", r.status());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    lb.stop().await;
    s.stop.cancel();
}
