//! A node that goes away under the load balancer's feet: it accepts a new connection and
//! closes it without answering, as a stopping or killed node does to the connections it
//! accepted last, or resets every connection as a crashed one does. Viewers never see it:
//! their requests go to another node.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use domain::presence::PresenceState;
use loadbalancer::Mode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::proxy::{backend, eligible, setup, DEADLINE};

/// A request's head from `socket` (at most 16 KiB); `None` once the connection ends.
async fn read_head(socket: &mut tokio::net::TcpStream) -> Option<Vec<u8>> {
    let mut head = Vec::new();
    let mut chunk = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16_384 {
        match socket.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => head.extend_from_slice(&chunk[..n]),
        }
    }
    Some(head)
}

/// A node that answers its health checks and closes every other request's connection
/// unanswered once it has read the request, counting them.
struct ClosingNode {
    url: String,
    unanswered: Arc<AtomicUsize>,
}

impl ClosingNode {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let unanswered = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&unanswered);
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let counted = Arc::clone(&counted);
                tokio::spawn(async move {
                    let Some(head) = read_head(&mut socket).await else {
                        return;
                    };
                    if head.starts_with(b"GET /healthz ") {
                        let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\nconnection: close\r\n\r\nok\n";
                        let _ = socket.write_all(answer).await;
                    } else {
                        counted.fetch_add(1, Ordering::SeqCst);
                    }
                });
            }
        });
        ClosingNode { url, unanswered }
    }

    fn unanswered(&self) -> usize {
        self.unanswered.load(Ordering::SeqCst)
    }
}

/// Every new viewer's request is answered by the node that works, also each time the
/// closing node was chosen (it is then out of rotation until its health check passes
/// again, and is chosen again after that).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_closing_new_connections_unanswered_is_passed_over() {
    let s = setup().await;
    let closing = ClosingNode::start().await;
    let good = backend("good").await;
    s.announce("closing", PresenceState::Ready, &closing.url, None)
        .await;
    s.announce("good", PresenceState::Ready, &good, None).await;
    let (lb, base) = s.start(Mode::Cookie, false, "lb-closing");
    let mut requests = 0;
    for round in 1..=3 {
        // Back in rotation (its health checks pass): new viewers are placed on it by turns.
        eligible(&lb, 2).await;
        let deadline = tokio::time::Instant::now() + DEADLINE;
        while closing.unanswered() < round {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the closing node was not chosen in round {round}"
            );
            requests += 1;
            // A new client each time: a new viewer without a cookie.
            let r = s
                .client()
                .get(format!("{base}/live/cam/src/{requests}.m4s"))
                .send()
                .await
                .expect("answered");
            assert_eq!(r.status(), 200, "request {requests}");
            assert_eq!(r.headers()["x-sealcast-node"], "good", "request {requests}");
        }
    }
    lb.stop().await;
    s.stop.cancel();
}

/// A node that says it is draining (shutting down) gets no new viewers and its viewers
/// move to another node on their next request; as the last node up it still serves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_draining_node_hands_its_viewers_over() {
    let s = setup().await;
    let (going, staying) = (backend("going").await, backend("staying").await);
    s.announce("going", PresenceState::Ready, &going, None)
        .await;
    let (lb, base) = s.start(Mode::Cookie, false, "lb-draining");
    eligible(&lb, 1).await;
    let served_by = |r: reqwest::Response| -> String {
        assert_eq!(r.status(), 200);
        r.headers()["x-sealcast-node"]
            .to_str()
            .expect("ascii")
            .to_owned()
    };
    // A viewer pinned to the only node: it sends back the cookie it was given (the last).
    let client = s.client();
    let mut cookie = String::new();
    let mut get = async |path: &str| {
        let mut request = client.get(format!("{base}{path}"));
        if !cookie.is_empty() {
            request = request.header("cookie", cookie.clone());
        }
        let r = request.send().await.expect("get");
        if let Some(set) = r.headers().get("set-cookie") {
            let set = set.to_str().expect("ascii");
            cookie = set.split(';').next().unwrap_or_default().to_owned();
        }
        served_by(r)
    };
    assert_eq!(get("/live/cam/src/1.m4s").await, "going");
    s.announce("staying", PresenceState::Ready, &staying, None)
        .await;
    eligible(&lb, 2).await;
    assert_eq!(
        get("/live/cam/src/2.m4s").await,
        "going",
        "sticky while its node stays"
    );

    s.announce("going", PresenceState::Draining, &going, None)
        .await;
    tokio::time::timeout(DEADLINE, lb.pool().wait_eligible_count(|n| n == 1))
        .await
        .expect("the draining node is no longer counted");
    for path in ["/live/cam/src/3.m4s", "/live/cam/src/4.m4s"] {
        assert_eq!(get(path).await, "staying", "{path}");
    }
    for _ in 0..4 {
        let r = s
            .client()
            .get(format!("{base}/"))
            .send()
            .await
            .expect("get");
        assert_eq!(served_by(r), "staying", "a new viewer");
    }

    // The other node gone too: the draining one still serves rather than a 503.
    s.publish_presence(
        "staying",
        &domain::presence::Presence::offline(domain::presence::Role::Broadcast),
    )
    .await;
    tokio::time::timeout(DEADLINE, lb.pool().wait_eligible_count(|n| n == 0))
        .await
        .expect("no node staying");
    let r = s
        .client()
        .get(format!("{base}/"))
        .send()
        .await
        .expect("get");
    assert_eq!(served_by(r), "going");
    lb.stop().await;
    s.stop.cancel();
}

/// A node that serves like [`backend`] until told to crash; from then on it resets every
/// connection it accepts (RST, as a killed container's kernel does) except its health
/// checks, so the balancer still counts it present and healthy until a request fails.
struct CrashingNode {
    url: String,
    crashed: Arc<std::sync::atomic::AtomicBool>,
    resets: Arc<AtomicUsize>,
}

impl CrashingNode {
    async fn start(id: &'static str) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let crashed = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let resets = Arc::new(AtomicUsize::new(0));
        let (is_crashed, counted) = (Arc::clone(&crashed), Arc::clone(&resets));
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let (is_crashed, counted) = (Arc::clone(&is_crashed), Arc::clone(&counted));
                tokio::spawn(async move {
                    // Requests on one connection, one after another (the balancer pools it).
                    loop {
                        let Some(head) = read_head(&mut socket).await else {
                            return;
                        };
                        let health = head.starts_with(b"GET /healthz ");
                        if is_crashed.load(Ordering::SeqCst) && !health {
                            counted.fetch_add(1, Ordering::SeqCst);
                            let _ = socket.set_zero_linger();
                            return;
                        }
                        let body = format!("served by {id}\n");
                        let answer = format!(
                            "HTTP/1.1 200 OK\r\nx-sealcast-node: {id}\r\ncontent-length: {}\r\n\r\n{body}",
                            body.len()
                        );
                        if socket.write_all(answer.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        CrashingNode {
            url,
            crashed,
            resets,
        }
    }
}

/// A viewer pinned to a node that crashes (every connection reset, pooled ones included,
/// while its presence and health checks still stand) gets its next request answered by
/// another node: the node is left after its retry failed too, never tried a third time
/// (issue 50's compose trial saw 502 after three tries on the dead node).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_nodes_sticky_viewer_is_answered_by_another_node() {
    let s = setup().await;
    let crashing = CrashingNode::start("crashing").await;
    s.announce("crashing", PresenceState::Ready, &crashing.url, None)
        .await;
    let (lb, base) = s.start(Mode::Cookie, false, "lb-crashing");
    eligible(&lb, 1).await;
    let client = s.client();
    let first = client
        .get(format!("{base}/live/cam/src/1.m4s"))
        .send()
        .await
        .expect("get");
    assert_eq!(first.status(), 200);
    let cookie = first.headers()["set-cookie"]
        .to_str()
        .expect("ascii")
        .split(';')
        .next()
        .unwrap_or_default()
        .to_owned();
    let good = backend("good").await;
    s.announce("good", PresenceState::Ready, &good, None).await;
    eligible(&lb, 2).await;
    let sticky = client
        .get(format!("{base}/live/cam/src/2.m4s"))
        .header("cookie", cookie.clone())
        .send()
        .await
        .expect("get");
    assert_eq!(sticky.headers()["x-sealcast-node"], "crashing", "sticky");
    // Several requests at once: the balancer holds several pooled connections to the
    // node when it crashes, each of which a retry may pick.
    let mut concurrent = tokio::task::JoinSet::new();
    for n in 10..16 {
        let request = client
            .get(format!("{base}/live/cam/src/{n}.m4s"))
            .header("cookie", cookie.clone());
        concurrent.spawn(async move { request.send().await.expect("get") });
    }
    for r in concurrent.join_all().await {
        assert_eq!(r.headers()["x-sealcast-node"], "crashing");
    }

    crashing.crashed.store(true, Ordering::SeqCst);
    for n in 3..=6 {
        let r = client
            .get(format!("{base}/live/cam/src/{n}.m4s"))
            .header("cookie", cookie.clone())
            .send()
            .await
            .expect("answered");
        assert_eq!(r.status(), 200, "request {n}");
        assert_eq!(r.headers()["x-sealcast-node"], "good", "request {n}");
    }
    let resets = crashing.resets.load(Ordering::SeqCst);
    assert!(
        (1..=2).contains(&resets),
        "the crashed node was tried {resets} times"
    );
    lb.stop().await;
    s.stop.cancel();
}
