//! [`Webhooks`]: tells the URLs registered in the catalog about publishes, unpublishes and
//! finished recordings, retrying with backoff until they answer 2xx.
//!
//! Where a delivery may go is [`Destinations`]: by default only public addresses, checked
//! on every delivery against the address the connection really goes to (a name is
//! resolved by a resolver that drops loopback, private, link-local and other non-public
//! addresses, so a name that resolves to one, or changes to one later, reaches nothing).
//!
//! Each event is sent by exactly one process in the cluster: the one whose catalog write
//! recorded it (`start_session`, `end_session` and `add_recording` say whether this call
//! was the one that changed the row), so several broadcast nodes finishing the same
//! recording cause one delivery, not one per node.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use catalog::{Catalog, WebhookEvent, WebhookRecord};
use serde::Serialize;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Waits before the retries of a delivery: 1, 2, 4, 8 and 16 seconds (six attempts).
const BACKOFF: [Duration; 5] = [
    Duration::from_secs(1),
    Duration::from_secs(2),
    Duration::from_secs(4),
    Duration::from_secs(8),
    Duration::from_secs(16),
];
/// How long one attempt may take.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);

/// What a webhook receives, as JSON.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WebhookPayload {
    /// `publish`, `unpublish` or `recording_ready`.
    pub event: WebhookEvent,
    /// The stream.
    pub stream: String,
    /// The publish session (the recording's id for `recording_ready`).
    pub session: String,
    /// When it happened (unix seconds).
    pub at: i64,
    /// The node that recorded the event.
    pub node: String,
    /// The VOD master playlist (`recording_ready` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub master_url: Option<String>,
}

/// Which addresses webhooks may be delivered to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Destinations {
    /// Public addresses only (the default): a webhook must not become a way to reach the
    /// cluster's own network (its broker, database, metrics, cloud metadata).
    #[default]
    Public,
    /// Any address, private ones included: for a receiver on the operator's own network.
    Any,
}

/// Whether `ip` is an address on the public internet, by IANA's IPv4 and IPv6
/// special-purpose address registries (RFC 6890 and its updates): no loopback,
/// unspecified, private or unique-local, link-local or site-local, shared (CGNAT),
/// multicast, broadcast, reserved, benchmarking, documentation, discard-only, dummy,
/// IETF protocol assignments (Teredo among them), local-use translation or SRv6 address.
///
/// IPv6 is judged by what is allowed rather than what is not: only the global unicast
/// space `2000::/3` less its special blocks is public, and the well-known NAT64 prefix
/// `64:ff9b::/96`. An IPv4 address inside an IPv6 one is judged as IPv4 too: mapped
/// (`::ffff:a.b.c.d`), NAT64 (`64:ff9b::a.b.c.d`) and 6to4 (`2002:aabb:ccdd::/48`) are
/// public only when the IPv4 address is, so none of them reaches a private IPv4 host
/// through a translator. The deprecated IPv4-compatible form (`::a.b.c.d`) is never
/// public.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v6(v6: Ipv6Addr) -> bool {
    if let Some(v4) = v6.to_ipv4_mapped() {
        return is_public_v4(v4);
    }
    let s = v6.segments();
    let embedded = |hi: u16, lo: u16| {
        let [a, b] = hi.to_be_bytes();
        let [c, d] = lo.to_be_bytes();
        Ipv4Addr::new(a, b, c, d)
    };
    // NAT64's well-known prefix (RFC 6052): the IPv4 address in the last 32 bits.
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return is_public_v4(embedded(s[6], s[7]));
    }
    // 6to4 (RFC 3056): the IPv4 address in bits 16 to 47.
    if s[0] == 0x2002 {
        return is_public_v4(embedded(s[1], s[2]));
    }
    let global_unicast = s[0] & 0xe000 == 0x2000; // 2000::/3
    let special = match s[0] {
        // 2001::/23 IETF protocol assignments (Teredo 2001::/32, benchmarking, ORCHID,
        // AMT, …) and 2001:db8::/32 documentation.
        0x2001 => s[1] < 0x0200 || s[1] == 0x0db8,
        // 3fff::/20 documentation (RFC 9637).
        0x3fff => s[1] < 0x1000,
        _ => false,
    };
    global_unicast && !special
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(a == 0 // "this network"
        || a == 10
        || a == 127
        || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT)
        || (a == 169 && b == 254) // link-local
        || (a == 172 && (16..32).contains(&b))
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 192 && b == 0 && c == 2) // documentation
        || (a == 192 && b == 88 && c == 99) // 6to4 relay anycast (deprecated)
        || (a == 192 && b == 168)
        || (a == 198 && (18..20).contains(&b)) // benchmarking
        || (a == 198 && b == 51 && c == 100) // documentation
        || (a == 203 && b == 0 && c == 113) // documentation
        || a >= 224) // multicast, reserved (240/4) and broadcast
}

/// Resolves names like the system does, then keeps only public addresses; a name with
/// none left fails to resolve.
#[derive(Debug)]
pub(crate) struct PublicOnly;

impl reqwest::dns::Resolve for PublicOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let public: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|a| is_public(a.ip()))
                .collect();
            if public.is_empty() {
                return Err("the name resolves to no public address".into());
            }
            Ok(Box::new(public.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// The IP address a URL names literally, if it does.
pub(crate) fn literal_ip(url: &str) -> Option<IpAddr> {
    let url = reqwest::Url::parse(url).ok()?;
    let host = url.host_str()?;
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .ok()
}

/// Delivers webhooks in the background; cheap to clone.
#[derive(Debug, Clone)]
pub struct Webhooks {
    catalog: Catalog,
    client: reqwest::Client,
    destinations: Destinations,
    tasks: TaskTracker,
    stop: CancellationToken,
}

impl Webhooks {
    /// Deliveries for the webhooks of `catalog`, to `destinations`. Fails only if the HTTP
    /// client cannot be made (its TLS setup, say the system's root certificates, failed).
    pub fn new(catalog: Catalog, destinations: Destinations) -> Result<Self, reqwest::Error> {
        let mut builder = reqwest::Client::builder();
        if destinations == Destinations::Public {
            builder = builder.dns_resolver(Arc::new(PublicOnly));
        }
        let client = builder
            // A proxy would connect on our behalf to wherever the URL says.
            .no_proxy()
            .timeout(ATTEMPT_TIMEOUT)
            // A receiver's redirect is not followed: where a notification goes is the
            // operator's choice, made when the webhook was registered.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("sealcast/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Webhooks {
            catalog,
            client,
            destinations,
            tasks: TaskTracker::new(),
            stop: CancellationToken::new(),
        })
    }

    /// Sends `payload` to every webhook subscribed to its event, in the background.
    pub fn notify(&self, payload: WebhookPayload) {
        let this = self.clone();
        self.tasks.spawn(async move {
            let hooks = match this.catalog.webhooks_for(payload.event).await {
                Ok(hooks) => hooks,
                Err(e) => {
                    tracing::warn!(error = %e, event = %payload.event, "could not read the webhooks; this event is not delivered");
                    return;
                }
            };
            let body = match serde_json::to_vec(&payload) {
                Ok(body) => body,
                Err(_) => return,
            };
            for hook in hooks {
                let this2 = this.clone();
                let body = body.clone();
                this.tasks
                    .spawn(async move { this2.deliver(hook, body, payload.event).await });
            }
        });
    }

    /// One attempt: `None` if `url` names a non-public address literally and only public
    /// ones are allowed (a name is checked by the resolver, as the connection is made).
    fn send_once(
        &self,
        url: &str,
        body: Vec<u8>,
    ) -> Option<impl std::future::Future<Output = reqwest::Result<reqwest::Response>>> {
        if self.destinations == Destinations::Public
            && literal_ip(url).is_some_and(|ip| !is_public(ip))
        {
            return None;
        }
        Some(
            self.client
                .post(url)
                .header(http::header::CONTENT_TYPE, "application/json")
                .body(body)
                .send(),
        )
    }

    async fn deliver(&self, hook: WebhookRecord, body: Vec<u8>, event: WebhookEvent) {
        for attempt in 0..=BACKOFF.len() {
            let Some(sent) = self.send_once(&hook.url, body.clone()) else {
                tracing::warn!(webhook = hook.id, %event, "webhook points to a non-public address; not delivered (allow with --allow-private-webhooks)");
                return;
            };
            let outcome = tokio::select! {
                () = self.stop.cancelled() => return,
                outcome = sent => outcome,
            };
            let why = match outcome {
                Ok(r) if r.status().is_success() => {
                    tracing::debug!(webhook = hook.id, %event, "webhook delivered");
                    return;
                }
                Ok(r) => format!("answered {}", r.status()),
                Err(e) if e.is_timeout() => "timed out".to_owned(),
                Err(e) if e.is_connect() => {
                    "could not connect (refused, or no public address)".to_owned()
                }
                Err(_) => "failed".to_owned(),
            };
            let Some(wait) = BACKOFF.get(attempt) else {
                // The URL is the operator's own and may carry a token in its query: log
                // the webhook's id, not its URL.
                tracing::warn!(webhook = hook.id, %event, attempts = attempt + 1, "webhook {why}; giving up");
                return;
            };
            tracing::debug!(webhook = hook.id, %event, "webhook {why}; retrying");
            tokio::select! {
                () = self.stop.cancelled() => return,
                () = tokio::time::sleep(*wait) => {}
            }
        }
    }

    /// Stops retrying and waits for deliveries under way (on shutdown).
    pub async fn close(&self) {
        self.stop.cancel();
        self.tasks.close();
        self.tasks.wait().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_addresses_are_public() {
        for private in [
            // IPv4 special-purpose registry.
            "0.0.0.0",
            "0.1.2.3",
            "10.1.2.3",
            "100.64.0.1",
            "100.127.255.255",
            "127.0.0.1",
            "127.255.0.1",
            "169.254.169.254",
            "172.16.0.1",
            "172.31.255.255",
            "192.0.0.1",
            "192.0.0.170",
            "192.0.2.1",
            "192.88.99.1",
            "192.168.1.1",
            "198.18.0.1",
            "198.19.255.255",
            "198.51.100.7",
            "203.0.113.9",
            "224.0.0.1",
            "239.255.255.250",
            "240.0.0.1",
            "255.255.255.255",
            // IPv6 special-purpose registry.
            "::",
            "::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::ffff:0:0",
            "::a00:1",   // IPv4-compatible 10.0.0.1
            "::808:808", // IPv4-compatible, deprecated: never public
            "64:ff9b::a9fe:a9fe",
            "64:ff9b::7f00:1",
            "64:ff9b::a00:1",
            "64:ff9b:1::808:808", // local-use translation prefix
            "64:ff9b:1:ffff::1",
            "100::1",       // discard-only
            "100:0:0:1::1", // dummy prefix
            "2001::1",      // Teredo
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
            "2001:2::1",  // benchmarking
            "2001:10::1", // ORCHID
            "2001:1ff:ffff::1",
            "2001:db8::1",
            "2002:7f00:1::1",   // 6to4 of 127.0.0.1
            "2002:a00:1::1",    // 6to4 of 10.0.0.1
            "2002:a9fe:a9fe::", // 6to4 of 169.254.169.254
            "2002::1",          // 6to4 of 0.0.0.0
            "3fff::1",          // documentation (RFC 9637)
            "3fff:fff::1",
            "5f00::1", // SRv6
            "fc00::1",
            "fd00::1",
            "fe80::1",
            "febf::1",
            "fec0::1", // site-local
            "feff::1",
            "ff02::1",
            "ff0e::1",
            "4000::1", // not allocated
            "1fff::1",
        ] {
            assert!(!is_public(private.parse().expect(private)), "{private}");
        }
        for public in [
            "93.184.216.34",
            "8.8.8.8",
            "1.1.1.1",
            "100.63.255.255",
            "100.128.0.1",
            "172.32.0.1",
            "192.0.1.1",
            "192.31.196.1",
            "198.20.0.1",
            "223.255.255.254",
            "2606:4700::1111",
            "2a00:1450:4001::1",
            "2001:200::1",
            "2001:db9::1",
            "3fff:1000::1",
            "::ffff:1.1.1.1",
            "64:ff9b::808:808", // NAT64 of 8.8.8.8
            "2002:808:808::1",  // 6to4 of 8.8.8.8
        ] {
            assert!(is_public(public.parse().expect(public)), "{public}");
        }
    }

    #[test]
    fn literal_addresses_are_read_from_urls() {
        assert_eq!(
            literal_ip("http://127.0.0.1:9/x"),
            Some(IpAddr::V4(Ipv4Addr::LOCALHOST))
        );
        assert_eq!(
            literal_ip("http://[::1]/"),
            Some(IpAddr::V6(Ipv6Addr::LOCALHOST))
        );
        // WHATWG parsing: the forms a browser (and reqwest) read as 127.0.0.1.
        assert_eq!(
            literal_ip("http://2130706433/"),
            Some(IpAddr::V4(Ipv4Addr::LOCALHOST))
        );
        assert_eq!(
            literal_ip("http://0x7f.1/"),
            Some(IpAddr::V4(Ipv4Addr::LOCALHOST))
        );
        assert_eq!(literal_ip("https://hooks.example.com/x"), None);
    }

    /// A receiver on loopback: reached only when private destinations are allowed, whether
    /// the URL names the address or a name (`localhost`) that resolves to it.
    #[tokio::test]
    async fn private_receivers_are_reached_only_when_allowed() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let hits = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&hits);
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move || {
                counted.fetch_add(1, Ordering::SeqCst);
                async { http::StatusCode::NO_CONTENT }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        tokio::spawn(async move { axum::serve(listener, app).await });
        let catalog = Catalog::open("sqlite::memory:").await.expect("catalog");

        let public = Webhooks::new(catalog.clone(), Destinations::Public).expect("client");
        let by_address = format!("http://127.0.0.1:{port}/hook");
        let by_name = format!("http://localhost:{port}/hook");
        assert!(public.send_once(&by_address, Vec::new()).is_none());
        let sent = public
            .send_once(&by_name, Vec::new())
            .expect("a name is left to the resolver")
            .await;
        assert!(sent.is_err(), "localhost was reached: {sent:?}");
        assert_eq!(hits.load(Ordering::SeqCst), 0);

        let any = Webhooks::new(catalog, Destinations::Any).expect("client");
        for url in [&by_address, &by_name] {
            let response = any
                .send_once(url, Vec::new())
                .expect("allowed")
                .await
                .expect("delivered");
            assert_eq!(response.status(), http::StatusCode::NO_CONTENT);
        }
        assert_eq!(hits.load(Ordering::SeqCst), 2);
    }
}
