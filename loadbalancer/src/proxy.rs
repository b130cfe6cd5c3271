//! The HTTPS side: Pingora's proxy with the sticky choice of [`crate::selection`].
//!
//! Per request: check the Host; answer `/healthz` here; choose a node from the cookie (or
//! the client address in hash mode); in direct mode answer a playlist request with a
//! redirect to the node's own URL; otherwise forward over a pooled keep-alive connection
//! and add the `Set-Cookie` of the choice to the response. A node that refuses the
//! connection, or closes a new one without answering (it is stopping), is taken out of
//! rotation at once and an idempotent request is sent to another node, which reissues the
//! cookie. Errors the load balancer answers itself are short JSON.
//!
//! Identical requests for one node in flight at the same time (LL-HLS hinted parts and
//! blocking reloads, a new segment) go to it once and share its answer where it is public:
//! [`crate::collapse`]; a live playlist request only while its node has counted its viewer
//! lately ([`crate::counted`]).
//!
//! `/whip/…` (issue 32) goes to an ingest, not a broadcast node: a new session to the
//! ingest [`crate::ingests`] ranks first for the stream (the next one if it refuses the
//! connection), an existing session to the ingest its path names; no cookie either way.
//!
//! Long because Pingora's `ProxyHttp` is one trait whose hooks share one request context
//! ([`Ctx`]): its implementation is one block, and what each hook decides lives in the
//! modules it calls (selection, collapse, counted, caches, access, answers).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use certs::tokens::{query_token, QueryToken};
use domain::paths::{redact_tokens, PathClass, PublicPath};
use domain::time::WallClock;
use domain::{NodeId, StreamName};
use pingora::http::ResponseHeader;
use pingora::prelude::HttpPeer;
use pingora::proxy::{FailToProxy, ProxyHttp, Session};
use pingora::upstreams::peer::Peer;
use pingora::{Error as PError, ErrorSource, ErrorType, Result as PResult, RetryType};

use crate::access::{Gate, Refusal};
use crate::answers::{respond, respond_shared, respond_text};
use crate::caches::TrustedCaches;
use crate::collapse::{FlightKey, Flights, Join, Leader};
use crate::counted::Counted;
use crate::members::Pool;
use crate::metrics::{LbMetrics, Outcome};
use crate::request::{client_ip, cookie_header, host_is_sane};
use crate::selection::{Choice, Reason, RequestInfo, Route};

/// How many nodes one request may be tried on.
const MAX_ATTEMPTS: u8 = 3;
/// Longest wait for a TCP connection to a node.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// Longest silence from a node while it answers.
const READ_TIMEOUT: Duration = Duration::from_secs(20);
/// How long an idle pooled connection to a node is kept.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest wait for an identical request's answer before asking the node oneself: as long
/// as the node may be silent, and the connection it takes.
const FOLLOWER_PATIENCE: Duration = READ_TIMEOUT.saturating_add(CONNECT_TIMEOUT);

/// How the proxy behaves.
#[derive(Debug, Clone, Default)]
pub struct ProxySettings {
    /// Answer playlist requests with a redirect to the chosen node's own public URL.
    pub direct: bool,
    /// Log one line per request (target `sealcast::access`).
    pub access_log: bool,
    /// Send identical requests in flight at the same time to a node once
    /// ([`crate::collapse`]).
    pub collapse: bool,
}

/// The load balancer's request logic.
#[derive(Debug)]
pub struct Proxy {
    pool: Arc<Pool>,
    metrics: LbMetrics,
    settings: ProxySettings,
    /// The client's request budget and the playback-token check, before anything else.
    gate: Gate,
    /// Requests in flight that identical ones may wait for.
    flights: Flights,
    /// Which viewers each node has counted lately: whose playlist requests may collapse.
    counted: Counted,
    /// The caches whose `X-Forwarded-For` names the client (the origin listener's; none on
    /// the HTTPS listener, where every peer is a client).
    caches: TrustedCaches,
}

impl Proxy {
    /// A proxy choosing from `pool`, without budgets or token checks.
    pub fn new(pool: Arc<Pool>, metrics: LbMetrics, settings: ProxySettings) -> Self {
        Proxy {
            pool,
            metrics,
            settings,
            gate: Gate::default(),
            flights: Flights::default(),
            counted: Counted::default(),
            caches: TrustedCaches::default(),
        }
    }

    /// Takes the client of a request from `caches` from the `X-Forwarded-For` they append
    /// ([`crate::caches`]): for the origin listener, with a cache tier in front.
    pub fn with_trusted_caches(mut self, caches: TrustedCaches) -> Self {
        self.caches = caches;
        self
    }

    /// Admits requests through `gate` first.
    pub fn with_gate(mut self, gate: Gate) -> Self {
        self.gate = gate;
        self
    }

    /// Chooses the node for this request (from `client`) and records how.
    fn choose(&self, session: &Session, client: IpAddr) -> Choice {
        let cookie = cookie_header(session);
        let request = RequestInfo {
            cookie: cookie.as_deref(),
            client,
            now: WallClock.now(),
        };
        let choice = self.pool.with_backends(|b| b.choose(&request));
        match &choice {
            Choice::NoBackend => self.metrics.choice(Outcome::NoBackend),
            Choice::Route(route) => match &route.reason {
                Reason::StickyHit => self.metrics.choice(Outcome::StickyHit),
                Reason::NewViewer => self.metrics.choice(Outcome::NewViewer),
                Reason::Hashed => self.metrics.choice(Outcome::Hashed),
                Reason::CookieRejected(rejection) => {
                    self.metrics.choice(Outcome::StickyMiss);
                    self.metrics.cookie_rejected(rejection.as_str());
                }
                Reason::Moved { .. } => {
                    self.metrics.choice(Outcome::StickyMiss);
                    self.metrics.choice_changed();
                }
            },
        }
        choice
    }

    /// Brackets requests for the least-loaded choice.
    fn open(&self, ctx: &mut Ctx, node: &NodeId) {
        self.pool.with_backends(|b| b.connection_opened(node));
        ctx.open = Some(node.clone());
    }

    fn close(&self, ctx: &mut Ctx) {
        if let Some(node) = ctx.open.take() {
            self.pool.with_backends(|b| b.connection_closed(&node));
        }
    }
}

/// The ingest a WHIP request goes to.
#[derive(Debug)]
struct WhipTarget {
    node: NodeId,
    addr: SocketAddr,
    /// The next ingests to try when this one refuses the connection (a new session
    /// only: an existing one lives on its own ingest).
    others: Vec<(NodeId, SocketAddr)>,
}

/// What one request carries between the proxy's phases.
#[derive(Debug)]
pub struct Ctx {
    started: Instant,
    route: Option<Route>,
    /// Set for `/whip/…`, which goes to an ingest instead of `route`.
    whip: Option<WhipTarget>,
    attempts: u8,
    open: Option<NodeId>,
    upstream_started: Option<Instant>,
    /// Set when this request goes to the node for identical ones waiting for it.
    leader: Option<Leader>,
    /// Answered with another request's answer.
    collapsed: bool,
    /// The stream of a live playlist request, by which its node counts the viewer
    /// (tracked while collapsing is on).
    counts: Option<StreamName>,
    /// The client: the peer, or the viewer a trusted cache forwarded for. Set first thing.
    client: Option<IpAddr>,
}

impl Ctx {
    /// The client this request is from (the peer until the request is read).
    fn client(&self, session: &Session) -> IpAddr {
        self.client.unwrap_or_else(|| client_ip(session))
    }
}

#[async_trait]
impl ProxyHttp for Proxy {
    type CTX = Ctx;

    fn new_ctx(&self) -> Ctx {
        Ctx {
            started: Instant::now(),
            route: None,
            whip: None,
            attempts: 0,
            open: None,
            upstream_started: None,
            leader: None,
            collapsed: false,
            counts: None,
            client: None,
        }
    }

    async fn request_filter(&self, session: &mut Session, ctx: &mut Ctx) -> PResult<bool> {
        if !host_is_sane(session) {
            respond(session, 400, "bad Host header", &[]).await?;
            return Ok(true);
        }
        let class = PathClass::of(session.req_header().uri.path());
        if class == PathClass::Health {
            respond_text(session, 200, "ok\n").await?;
            return Ok(true);
        }
        let forwarded = session
            .req_header()
            .headers
            .get_all("x-forwarded-for")
            .iter()
            .map(|v| v.to_str().ok());
        let client = match self.caches.client(client_ip(session), forwarded) {
            Ok(client) => client,
            Err(_) => {
                respond(session, 400, "bad x-forwarded-for from the cache", &[]).await?;
                return Ok(true);
            }
        };
        ctx.client = Some(client);
        let (path, query) = {
            let uri = &session.req_header().uri;
            (uri.path(), uri.query())
        };
        if let Err(refusal) = self.gate.admit(path, query, client, &self.metrics) {
            let (status, message) = refusal.status();
            let retry = match &refusal {
                Refusal::Budget { retry_after } => Some(retry_after.to_string()),
                _ => None,
            };
            if retry.is_some() {
                tokio::time::sleep(crate::limits::REFUSAL_HOLD).await;
            }
            let headers: Vec<(&'static str, &str)> = retry
                .as_deref()
                .map(|r| ("retry-after", r))
                .into_iter()
                .collect();
            respond(session, status, message, &headers).await?;
            return Ok(true);
        }
        if class == PathClass::NodePrivate {
            // A node's metrics and its push API are for the cluster's own network, not for
            // viewers (the push API wants a token anyway; the metrics would just leak).
            respond(session, 404, "not found", &[]).await?;
            return Ok(true);
        }
        if class == PathClass::Whip {
            return self.whip_target(session, ctx).await;
        }
        let route = match self.choose(session, client) {
            Choice::Route(route) => route,
            Choice::NoBackend => {
                respond(
                    session,
                    503,
                    "no broadcast node is available",
                    &[("retry-after", "2")],
                )
                .await?;
                return Ok(true);
            }
        };
        if self.settings.direct && class == PathClass::LivePlaylist {
            // A playback token goes to a node's own address only over TLS: a node whose
            // direct URL is plain http:// gets a tokened request proxied, as without direct
            // mode (issue 45 item 15). Public requests are redirected either way.
            let tokened = !matches!(
                query_token(session.req_header().uri.query()),
                QueryToken::Absent
            );
            let direct = self
                .pool
                .upstream(&route.node)
                .and_then(|u| u.direct_url)
                .filter(|base| !tokened || is_tls_url(base));
            if let Some(base) = direct {
                let target = format!(
                    "{}{}",
                    base.trim_end_matches('/'),
                    session
                        .req_header()
                        .uri
                        .path_and_query()
                        .map_or("/", |pq| pq.as_str())
                );
                let mut headers = vec![("location", target.as_str())];
                if let Some(cookie) = &route.set_cookie {
                    headers.push(("set-cookie", cookie.as_str()));
                }
                respond(session, 302, "see the node's own address", &headers).await?;
                return Ok(true);
            }
        }
        let key = if self.settings.collapse {
            let now = Instant::now();
            // Asked about every live playlist GET, with the stream its path names: the one
            // parse of it, kept for noting the viewer when the request goes to the node.
            FlightKey::of(&route.node, session.req_header(), |stream| {
                ctx.counts = Some(stream.clone());
                self.counted.fresh(client, &route.node, stream, now)
            })
        } else {
            None
        };
        ctx.route = Some(route);
        match key.map(|key| self.flights.join(key)) {
            None => {}
            Some(Join::Leader(leader)) => ctx.leader = Some(leader),
            Some(Join::Follower(follower)) => {
                let waiting = self.metrics.follower_waiting();
                let answer = follower.answer(FOLLOWER_PATIENCE).await;
                drop(waiting);
                self.metrics.collapsed(answer.is_some());
                if let Some(answer) = answer {
                    ctx.collapsed = true;
                    let cookie = ctx.route.as_ref().and_then(|r| r.set_cookie.as_deref());
                    respond_shared(session, &answer, cookie).await?;
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }

    async fn upstream_peer(&self, session: &mut Session, ctx: &mut Ctx) -> PResult<Box<HttpPeer>> {
        if let Some(whip) = ctx.whip.as_mut() {
            if ctx.attempts > 0 {
                self.metrics.retry();
                if whip.others.is_empty() {
                    return Err(PError::explain(
                        ErrorType::HTTPStatus(502),
                        "the ingest did not answer",
                    ));
                }
                let (node, addr) = whip.others.remove(0);
                (whip.node, whip.addr) = (node, addr);
            }
            ctx.attempts += 1;
            ctx.upstream_started = Some(Instant::now());
            return Ok(Box::new(peer(whip.addr)));
        }
        if ctx.attempts > 0 {
            // A retry: the node that failed is out of rotation now, so the choice moves the
            // viewer (and reissues the cookie).
            self.metrics.retry();
            self.close(ctx);
            ctx.route = match self.choose(session, ctx.client(session)) {
                Choice::Route(route) => Some(route),
                Choice::NoBackend => None,
            };
        }
        ctx.attempts += 1;
        let Some(route) = &ctx.route else {
            return Err(PError::explain(
                ErrorType::HTTPStatus(503),
                "no broadcast node is available",
            ));
        };
        let node = route.node.clone();
        let Some(addr) = self.pool.upstream(&node).and_then(|u| u.addr) else {
            // Chosen as it left (its presence went between the choice and its address):
            // out of rotation until its next health check, and the request tries another.
            self.pool.set_health(&node, None, false);
            let mut e = PError::explain(
                ErrorType::ConnectNoRoute,
                "the chosen node has no address yet",
            );
            e.set_retry(ctx.attempts < MAX_ATTEMPTS);
            return Err(e);
        };
        self.open(ctx, &node);
        ctx.upstream_started = Some(Instant::now());
        Ok(Box::new(peer(addr)))
    }

    async fn upstream_request_filter(
        &self,
        session: &mut Session,
        upstream_request: &mut pingora::http::RequestHeader,
        ctx: &mut Ctx,
    ) -> PResult<()> {
        // The client as settled on above, replacing whatever the request said: the nodes,
        // the ingests (WHIP's wrong-key strikes) and the API believe this header from the
        // load balancer alone.
        let ip = ctx.client(session);
        upstream_request.insert_header("x-forwarded-for", ip.to_string())?;
        if let (Some(stream), Some(route)) = (&ctx.counts, &ctx.route) {
            // The node counts this viewer now (whichever node a retry went to).
            self.counted
                .reached(ip, &route.node, stream, Instant::now());
        }
        upstream_request.insert_header("x-forwarded-proto", "https")?;
        Ok(())
    }

    async fn upstream_response_filter(
        &self,
        _session: &mut Session,
        _upstream_response: &mut ResponseHeader,
        ctx: &mut Ctx,
    ) -> PResult<()> {
        if let (Some(route), Some(started)) = (&ctx.route, ctx.upstream_started) {
            self.metrics
                .backend_latency(route.node.as_str(), started.elapsed().as_secs_f64());
        }
        Ok(())
    }

    async fn response_filter(
        &self,
        _session: &mut Session,
        upstream_response: &mut ResponseHeader,
        ctx: &mut Ctx,
    ) -> PResult<()> {
        if let Some(leader) = ctx.leader.as_mut() {
            leader.header(upstream_response);
        }
        if let Some(cookie) = ctx.route.as_ref().and_then(|r| r.set_cookie.as_deref()) {
            upstream_response.append_header("set-cookie", cookie)?;
        }
        Ok(())
    }

    fn response_body_filter(
        &self,
        _session: &mut Session,
        body: &mut Option<Bytes>,
        end_of_stream: bool,
        ctx: &mut Ctx,
    ) -> PResult<Option<Duration>> {
        if let Some(leader) = ctx.leader.as_mut() {
            leader.body(body.as_ref(), end_of_stream);
            if end_of_stream {
                ctx.leader = None;
            }
        }
        Ok(None)
    }

    fn fail_to_connect(
        &self,
        _session: &mut Session,
        peer: &HttpPeer,
        ctx: &mut Ctx,
        mut e: Box<PError>,
    ) -> Box<PError> {
        if let Some(whip) = &ctx.whip {
            tracing::warn!(node = %whip.node, peer = %peer.address(), error = %e, "could not connect to an ingest's WHIP port");
            self.pool.set_ingest_health(&whip.node, None, false);
            // Nothing was sent: another ingest may take a new session.
            if ctx.attempts < MAX_ATTEMPTS && !whip.others.is_empty() {
                e.set_retry(true);
            }
            return e;
        }
        if let Some(route) = &ctx.route {
            self.metrics.upstream_error(route.node.as_str());
            tracing::warn!(node = %route.node, peer = %peer.address(), error = %e, "could not connect to a broadcast node");
            self.pool.set_health(&route.node, None, false);
        }
        if ctx.attempts < MAX_ATTEMPTS {
            e.set_retry(true);
        }
        e
    }

    fn error_while_proxy(
        &self,
        peer: &HttpPeer,
        session: &mut Session,
        e: Box<PError>,
        ctx: &mut Ctx,
        client_reused: bool,
    ) -> Box<PError> {
        if let Some(route) = &ctx.route {
            self.metrics.upstream_error(route.node.as_str());
        }
        let mut e = e.more_context(format!("node: {}", peer.address()));
        if !session.req_header().method.is_idempotent() || ctx.attempts >= MAX_ATTEMPTS {
            e.set_retry(false);
            return e;
        }
        // The node closed the connection before answering (Pingora marks that error
        // `ReusedOnly`). On a pooled connection it may only have timed it out meanwhile:
        // one more try, on whichever node the viewer's choice names. On a fresh one the
        // node is going away (stopping, killed) and accepted the connection as it went:
        // like a refused connection, it leaves rotation until its next health check and
        // the request goes to another node, which nothing has answered yet.
        let unanswered = e.retry == RetryType::ReusedOnly && session.response_written().is_none();
        // A retry that failed again before any answer: whatever the connection, the node
        // is going away (a crash resets every connection); it leaves rotation so that the
        // last try goes elsewhere rather than to it a third time.
        let failed_again = ctx.attempts >= 2 && session.response_written().is_none();
        if (unanswered && !client_reused) || failed_again {
            if let Some(route) = &ctx.route {
                tracing::warn!(node = %route.node, peer = %peer.address(), error = %e, "a broadcast node closed a new connection unanswered");
                self.pool.set_health(&route.node, None, false);
            }
            e.set_retry(true);
        } else {
            e.retry.decide_reuse(client_reused);
        }
        e
    }

    async fn fail_to_proxy(&self, session: &mut Session, e: &PError, ctx: &mut Ctx) -> FailToProxy {
        let code = match e.etype() {
            ErrorType::HTTPStatus(code) => *code,
            _ => match e.esource() {
                ErrorSource::Upstream => 502,
                ErrorSource::Downstream => match e.etype() {
                    ErrorType::WriteError | ErrorType::ReadError | ErrorType::ConnectionClosed => 0,
                    _ => 400,
                },
                ErrorSource::Internal | ErrorSource::Unset => 500,
            },
        };
        if code > 0 {
            let message = match code {
                400 => "bad request",
                502 if ctx.whip.is_some() => "the ingest did not answer",
                502 => "the broadcast node did not answer",
                503 => "no broadcast node is available",
                _ => "the load balancer failed",
            };
            let _ = respond(session, code, message, &[]).await;
        }
        FailToProxy {
            error_code: code,
            can_reuse_downstream: false,
        }
    }

    async fn logging(&self, session: &mut Session, e: Option<&PError>, ctx: &mut Ctx) {
        self.close(ctx);
        let status = session.response_written().map_or(0, |r| r.status.as_u16());
        self.metrics.request(status);
        if self.settings.access_log {
            let request = session.req_header();
            tracing::info!(
                target: "sealcast::access",
                client = %ctx.client(session),
                method = %request.method,
                path = %request.uri.path(),
                status,
                node = ctx
                    .route
                    .as_ref()
                    .map(|r| r.node.as_str())
                    .or(ctx.whip.as_ref().map(|w| w.node.as_str()))
                    .unwrap_or("-"),
                attempts = ctx.attempts,
                collapsed = ctx.collapsed,
                ms = ctx.started.elapsed().as_secs_f64() * 1000.0,
                error = e.map(|e| e.etype().as_str()),
            );
        }
    }

    fn suppress_error_log(&self, _session: &Session, _ctx: &Ctx, error: &PError) -> bool {
        // Clients that go away mid-response are ordinary; they are not errors of ours.
        matches!(error.esource(), ErrorSource::Downstream)
    }

    fn request_summary(&self, session: &Session, _ctx: &Ctx) -> String {
        // What Pingora writes into its own log lines ("Fail to proxy: …"). Its default is the
        // request target with its query, and a private stream's URLs carry their playback
        // token there (issue 45 item 8).
        let request = session.req_header();
        let target = request.uri.path_and_query().map_or("/", |pq| pq.as_str());
        let host = request
            .headers
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .or(request.uri.authority().map(|a| a.as_str()))
            .unwrap_or("");
        format!(
            "{} {}, Host: {}",
            request.method,
            redact_tokens(target),
            redact_tokens(host)
        )
    }
}

impl Proxy {
    /// Picks the ingest of a `/whip/…` request (or answers it here: 503 when no ingest
    /// takes publishes, 404 for a session on an ingest that is gone or a path that is not
    /// WHIP's).
    async fn whip_target(&self, session: &mut Session, ctx: &mut Ctx) -> PResult<bool> {
        let path = PublicPath::parse(session.req_header().uri.path());
        let target = match path {
            Some(PublicPath::WhipEndpoint(stream)) => {
                let mut ranked = self.pool.with_ingests(|i| i.rank(stream.as_str()));
                if ranked.is_empty() {
                    self.metrics.choice(Outcome::NoBackend);
                    let retry = [("retry-after", "2")];
                    respond(session, 503, "no ingest takes WHIP publishes now", &retry).await?;
                    return Ok(true);
                }
                let (node, addr) = ranked.remove(0);
                WhipTarget {
                    node,
                    addr,
                    others: ranked,
                }
            }
            Some(PublicPath::WhipSession(_, node, _)) => {
                match self.pool.with_ingests(|i| i.session(&node)) {
                    Some(addr) => WhipTarget {
                        node,
                        addr,
                        others: Vec::new(),
                    },
                    None => {
                        respond(session, 404, "no such WHIP session", &[]).await?;
                        return Ok(true);
                    }
                }
            }
            _ => {
                respond(session, 404, "not found", &[]).await?;
                return Ok(true);
            }
        };
        ctx.whip = Some(target);
        Ok(false)
    }
}

/// Whether a node's direct URL is reached over TLS (`https://`).
fn is_tls_url(base: &str) -> bool {
    base.get(..8)
        .is_some_and(|scheme| scheme.eq_ignore_ascii_case("https://"))
}

/// A pooled keep-alive HTTP/1.1 peer at `addr` (a broadcast node or an ingest's WHIP port).
fn peer(addr: SocketAddr) -> HttpPeer {
    let mut peer = HttpPeer::new(addr, false, String::new());
    peer.options.connection_timeout = Some(CONNECT_TIMEOUT);
    peer.options.total_connection_timeout = Some(CONNECT_TIMEOUT);
    peer.options.read_timeout = Some(READ_TIMEOUT);
    peer.options.write_timeout = Some(READ_TIMEOUT);
    peer.options.idle_timeout = Some(IDLE_TIMEOUT);
    peer
}
