//! Request collapsing: identical requests for one node, in flight at the same time, reach
//! it once.
//!
//! LL-HLS viewers of a rendition all send the same request for the preload-hinted part
//! within a few milliseconds of each other, and the node holds each of them until the part
//! exists; plain-HLS viewers ask for a new segment together as soon as a playlist lists it.
//! The first such request for a node (the *leader*) goes to it; the others (*followers*)
//! wait for the leader's answer and are answered with a copy of it, each with its own
//! `Set-Cookie`, if the node said a shared cache may keep it: `Cache-Control` with `public`
//! and none of `private`, `no-store` or `no-cache`, no `Set-Cookie`, no `Vary` (the node's
//! rules: docs/architecture.md, Caching). Otherwise, or when the leader fails, each
//! follower goes to the node itself, as it would have without this.
//!
//! What may collapse is decided from the request alone ([`FlightKey::of`]): a `GET` under
//! a stream's tree (`/live/{stream}/`, `/vod/{stream}/`) without a playback token, a byte
//! range, a condition or credentials, keyed by the node and the exact path and query. A
//! private stream's answers are never `public`, and a request that carries a token is
//! never collapsed: the node checks each token against its viewer's own address. Live
//! playlists (master and media, blocking reloads included) are not collapsed either: a
//! node counts its viewers by who fetches them (`sealcast_viewers`, the dashboard, the
//! Kubernetes autoscaler), and a collapsed reload would hide its viewer from the node.
//!
//! A follower waits as long as the node may take to answer, but once the answer's header
//! is in, its body must follow within [`BODY_PATIENCE`]: the leader's own client reads the
//! body at its pace (Pingora hands a body on as its client takes it), and a client that
//! reads slowly, or not at all, must not hold the others back by more than that.
//!
//! Only requests in flight together are collapsed: nothing is kept once the leader's
//! answer is out (a cache in front, `deploy/varnish/`, keeps answers for their max-age).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use certs::tokens::{query_token, QueryToken};
use domain::paths::{PathClass, StreamTree};
use domain::NodeId;
use http::{header, HeaderName, Method};
use parking_lot::Mutex;
use pingora::http::{RequestHeader, ResponseHeader};
use tokio::sync::watch;

/// The largest answer shared with followers; a larger one is not kept (each follower then
/// asks the node itself). Above a top rung's segment (6 Mbit/s for 2 s is 1.5 MB).
pub const MAX_SHARED_BODY: usize = 8 << 20;

/// Longest a follower waits for the body once the answer's header is in (a node sends a
/// whole document from memory: 8 MiB take under 0.1 s at 1 Gbit/s).
pub const BODY_PATIENCE: Duration = Duration::from_millis(250);

/// Request headers that make an answer the requester's own (ranges, conditions,
/// credentials): such a request is never collapsed.
const PERSONAL: [HeaderName; 7] = [
    header::RANGE,
    header::IF_RANGE,
    header::IF_NONE_MATCH,
    header::IF_MODIFIED_SINCE,
    header::IF_MATCH,
    header::IF_UNMODIFIED_SINCE,
    header::AUTHORIZATION,
];

/// What identifies identical requests: the node and the exact path and query.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FlightKey {
    node: NodeId,
    target: String,
}

impl FlightKey {
    /// The key of `request` for `node`, if it may collapse with identical ones.
    pub fn of(node: &NodeId, request: &RequestHeader) -> Option<Self> {
        if request.method != Method::GET {
            return None;
        }
        let uri = &request.uri;
        StreamTree::of(uri.path())?;
        if PathClass::of(uri.path()) == PathClass::LivePlaylist {
            return None;
        }
        if !matches!(query_token(uri.query()), QueryToken::Absent) {
            return None;
        }
        if PERSONAL.iter().any(|h| request.headers.contains_key(h)) {
            return None;
        }
        Some(FlightKey {
            node: node.clone(),
            target: uri
                .path_and_query()
                .map_or("/", |pq| pq.as_str())
                .to_owned(),
        })
    }
}

/// Whether the node's answer may be handed to other requesters: what a shared cache would
/// keep (`Cache-Control: public`, nothing that forbids it), nothing personal in it.
pub fn shareable(response: &ResponseHeader) -> bool {
    let headers = &response.headers;
    if headers.contains_key(header::SET_COOKIE) || headers.contains_key(header::VARY) {
        return false;
    }
    let mut public = false;
    for value in headers.get_all(header::CACHE_CONTROL) {
        let Ok(value) = value.to_str() else {
            return false;
        };
        for directive in value.split(',') {
            let name = directive.split('=').next().unwrap_or("").trim();
            if name.eq_ignore_ascii_case("public") {
                public = true;
            } else if ["private", "no-store", "no-cache"]
                .iter()
                .any(|d| name.eq_ignore_ascii_case(d))
            {
                return false;
            }
        }
    }
    public
}

/// A node's answer as the followers get it.
#[derive(Debug)]
pub struct Answer {
    header: ResponseHeader,
    body: Vec<Bytes>,
}

impl Answer {
    /// The header to send (framed by its length, whatever the node's framing was).
    pub fn header(&self) -> ResponseHeader {
        self.header.clone()
    }

    /// The body, in the chunks it came in (shared, not copied).
    pub fn body(&self) -> &[Bytes] {
        &self.body
    }
}

/// Where a flight is.
#[derive(Debug, Clone)]
enum State {
    Pending,
    /// The header is in and the answer may be shared: its body is on its way.
    Body,
    Shared(Arc<Answer>),
    /// Not shareable, failed, or too large: followers go to the node themselves.
    Own,
}

type Flight = Arc<watch::Sender<State>>;

/// The requests in flight that others may join.
#[derive(Debug, Default)]
pub struct Flights {
    inner: Arc<Mutex<HashMap<FlightKey, Flight>>>,
}

/// A request's part in a flight.
#[derive(Debug)]
pub enum Join {
    /// The first: goes to the node and reports what it got.
    Leader(Leader),
    /// Another one: waits for the leader.
    Follower(Follower),
}

impl Flights {
    /// Joins the flight of `key`, or starts it.
    pub fn join(&self, key: FlightKey) -> Join {
        let mut flights = self.inner.lock();
        if let Some(flight) = flights.get(&key) {
            return Join::Follower(Follower {
                watch: flight.subscribe(),
            });
        }
        let (sender, _) = watch::channel(State::Pending);
        let flight = Arc::new(sender);
        flights.insert(key.clone(), Arc::clone(&flight));
        Join::Leader(Leader {
            flights: Arc::clone(&self.inner),
            key,
            flight,
            header: None,
            body: Vec::new(),
            size: 0,
            done: false,
        })
    }

    /// Flights in the air.
    pub fn len(&self) -> usize {
        self.inner.lock().len()
    }

    /// Whether no flight is in the air.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The request that goes to the node for everyone in its flight. Dropping it before the
/// answer is complete sends the followers to the node themselves.
#[derive(Debug)]
pub struct Leader {
    flights: Arc<Mutex<HashMap<FlightKey, Flight>>>,
    key: FlightKey,
    flight: Flight,
    /// The answer's header, while it may still be shared.
    header: Option<Box<ResponseHeader>>,
    body: Vec<Bytes>,
    size: usize,
    done: bool,
}

impl Leader {
    /// The node's answer header, before anything of this requester's own is added.
    pub fn header(&mut self, response: &ResponseHeader) {
        if shareable(response) {
            self.header = Some(Box::new(response.clone()));
            self.flight.send_replace(State::Body);
        } else {
            self.finish(State::Own);
        }
    }

    /// A piece of the answer's body; `end`: it is the last.
    pub fn body(&mut self, chunk: Option<&Bytes>, end: bool) {
        if self.done {
            return;
        }
        if let Some(chunk) = chunk.filter(|c| !c.is_empty()) {
            self.size += chunk.len();
            if self.size > MAX_SHARED_BODY {
                self.finish(State::Own);
                return;
            }
            self.body.push(chunk.clone());
        }
        if end {
            match self.header.take() {
                Some(mut header) => {
                    // Framed by its length for every follower, whatever its HTTP version.
                    for framing in [header::TRANSFER_ENCODING, header::CONNECTION] {
                        let _ = header.remove_header(&framing);
                    }
                    let _ = header.remove_header("keep-alive");
                    let length = self.size.to_string();
                    if header
                        .insert_header(header::CONTENT_LENGTH, length)
                        .is_err()
                    {
                        self.finish(State::Own);
                        return;
                    }
                    let body = std::mem::take(&mut self.body);
                    self.finish(State::Shared(Arc::new(Answer {
                        header: *header,
                        body,
                    })));
                }
                None => self.finish(State::Own),
            }
        }
    }

    /// Takes the flight off the board (later requests start their own), then tells the
    /// followers.
    fn finish(&mut self, state: State) {
        if self.done {
            return;
        }
        self.done = true;
        self.header = None;
        self.body.clear();
        {
            let mut flights = self.flights.lock();
            if flights
                .get(&self.key)
                .is_some_and(|f| Arc::ptr_eq(f, &self.flight))
            {
                flights.remove(&self.key);
            }
        }
        self.flight.send_replace(state);
    }
}

impl Drop for Leader {
    fn drop(&mut self) {
        self.finish(State::Own);
    }
}

/// A request waiting for its flight's leader.
#[derive(Debug)]
pub struct Follower {
    watch: watch::Receiver<State>,
}

impl Follower {
    /// The leader's answer, or `None` when the follower should ask the node itself (the
    /// answer is not shareable, the leader failed, or `patience` ran out).
    pub async fn answer(mut self, patience: Duration) -> Option<Arc<Answer>> {
        let mut state = self
            .wait(patience, |s| !matches!(s, State::Pending))
            .await?;
        if matches!(state, State::Body) {
            state = self
                .wait(BODY_PATIENCE, |s| {
                    !matches!(s, State::Pending | State::Body)
                })
                .await?;
        }
        match state {
            State::Shared(answer) => Some(answer),
            State::Pending | State::Body | State::Own => None,
        }
    }

    /// The flight's state once `done` holds, or `None` after `patience`.
    async fn wait(
        &mut self,
        patience: Duration,
        done: impl FnMut(&State) -> bool,
    ) -> Option<State> {
        let state = tokio::time::timeout(patience, self.watch.wait_for(done))
            .await
            .ok()?
            .ok()?
            .clone();
        Some(state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn node(name: &str) -> NodeId {
        NodeId::new(name).expect("id")
    }

    fn get(target: &str) -> RequestHeader {
        RequestHeader::build("GET", target.as_bytes(), None).expect("request")
    }

    fn response(status: u16, headers: &[(&'static str, &str)]) -> ResponseHeader {
        let mut r = ResponseHeader::build(status, None).expect("response");
        for (name, value) in headers {
            r.append_header(*name, *value).expect("header");
        }
        r
    }

    #[test]
    fn media_of_a_public_stream_collapses() {
        let n = node("edge1");
        for target in [
            "/live/cam/720p/12.3.m4s",
            "/live/cam/720p/12.m4s",
            "/live/cam/720p/12.3.m4s.sig",
            "/live/cam/720p/init.mp4",
            "/vod/cam/5/720p/index.m3u8",
        ] {
            let key = FlightKey::of(&n, &get(target)).expect(target);
            assert_eq!(key.target, target);
        }
        let a = FlightKey::of(&n, &get("/live/cam/720p/12.3.m4s"));
        let b = FlightKey::of(&n, &get("/live/cam/720p/12.4.m4s"));
        let c = FlightKey::of(&node("edge2"), &get("/live/cam/720p/12.3.m4s"));
        assert_ne!(a, b, "another part");
        assert_ne!(a, c, "another node");
    }

    #[test]
    fn personal_or_non_stream_requests_do_not_collapse() {
        let n = node("edge1");
        for target in [
            // Live playlists: the node counts its viewers by them.
            "/live/cam/720p/index.m3u8?_HLS_msn=12&_HLS_part=2",
            "/live/cam/720p/index.m3u8",
            "/live/cam/master.m3u8",
            "/live/cam/720p/1.m4s?token=abc",
            "/live/cam/720p/1.m4s?x=1&token=abc",
            "/live/cam/720p/1.m4s?token=a&token=b",
            "/api/v1/streams",
            "/trust/v1/root.pub",
            "/",
        ] {
            assert!(FlightKey::of(&n, &get(target)).is_none(), "{target}");
        }
        let mut post = get("/live/cam/720p/1.m4s");
        post.set_method(Method::POST);
        assert!(FlightKey::of(&n, &post).is_none());
        for name in PERSONAL {
            let mut r = get("/live/cam/720p/1.m4s");
            r.insert_header(name.clone(), "x").expect("header");
            assert!(FlightKey::of(&n, &r).is_none(), "{name}");
        }
    }

    #[test]
    fn only_what_a_shared_cache_may_keep_is_shared() {
        let yes = [
            vec![("cache-control", "public, max-age=2")],
            vec![("cache-control", "max-age=31536000, PUBLIC, immutable")],
            vec![("cache-control", "public"), ("etag", "\"x\"")],
        ];
        for headers in yes {
            assert!(shareable(&response(200, &headers)), "{headers:?}");
        }
        let no = [
            vec![],
            vec![("cache-control", "max-age=2")],
            vec![("cache-control", "private, max-age=2")],
            vec![("cache-control", "public, no-store")],
            vec![("cache-control", "public"), ("cache-control", "no-cache")],
            vec![("cache-control", "public"), ("set-cookie", "a=b")],
            vec![("cache-control", "public"), ("vary", "accept-encoding")],
        ];
        for headers in no {
            assert!(!shareable(&response(200, &headers)), "{headers:?}");
        }
        assert!(shareable(&response(
            404,
            &[("cache-control", "public, max-age=2")]
        )));
    }

    #[tokio::test]
    async fn followers_get_the_leaders_answer_framed_by_its_length() {
        let flights = Flights::default();
        let key = FlightKey::of(&node("e"), &get("/live/cam/a/3.1.m4s")).expect("k");
        let Join::Leader(mut leader) = flights.join(key.clone()) else {
            panic!("first is the leader");
        };
        let followers: Vec<_> = (0..3)
            .map(|_| match flights.join(key.clone()) {
                Join::Follower(f) => tokio::spawn(f.answer(Duration::from_secs(10))),
                Join::Leader(_) => panic!("a second leader"),
            })
            .collect();
        leader.header(&response(
            200,
            &[
                ("cache-control", "public, max-age=2"),
                ("transfer-encoding", "chunked"),
                ("connection", "keep-alive"),
            ],
        ));
        leader.body(Some(&Bytes::from_static(b"#EXTM3U\n")), false);
        leader.body(Some(&Bytes::from_static(b"#EXT-X-PART\n")), false);
        leader.body(None, true);
        assert!(flights.is_empty(), "the flight left the board");
        for f in followers {
            let answer = f.await.expect("join").expect("shared");
            let header = answer.header();
            assert_eq!(header.headers["content-length"], "20");
            assert!(!header.headers.contains_key("transfer-encoding"));
            assert!(!header.headers.contains_key("connection"));
            assert_eq!(answer.body().concat(), b"#EXTM3U\n#EXT-X-PART\n");
        }
        // Once answered, the next identical request starts a new flight.
        assert!(matches!(flights.join(key), Join::Leader(_)));
    }

    #[tokio::test]
    async fn followers_go_themselves_when_the_answer_is_not_theirs_to_share() {
        let flights = Flights::default();
        let key = FlightKey::of(&node("e"), &get("/live/cam/a/1.m4s")).expect("k");
        let follower = |flights: &Flights| match flights.join(key.clone()) {
            Join::Follower(f) => tokio::spawn(f.answer(Duration::from_secs(10))),
            Join::Leader(_) => panic!("a second leader"),
        };

        // Not public.
        let Join::Leader(mut leader) = flights.join(key.clone()) else {
            panic!("leader");
        };
        let f = follower(&flights);
        leader.header(&response(404, &[("cache-control", "no-store")]));
        assert!(f.await.expect("join").is_none());
        drop(leader);

        // The leader fails (dropped mid-body).
        let Join::Leader(mut leader) = flights.join(key.clone()) else {
            panic!("leader");
        };
        let f = follower(&flights);
        leader.header(&response(200, &[("cache-control", "public")]));
        leader.body(Some(&Bytes::from_static(b"abc")), false);
        drop(leader);
        assert!(f.await.expect("join").is_none());

        // Too large to keep.
        let Join::Leader(mut leader) = flights.join(key.clone()) else {
            panic!("leader");
        };
        let f = follower(&flights);
        leader.header(&response(200, &[("cache-control", "public")]));
        leader.body(Some(&Bytes::from(vec![0; MAX_SHARED_BODY + 1])), true);
        assert!(f.await.expect("join").is_none());
        assert!(flights.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn a_follower_stops_waiting_after_its_patience() {
        let flights = Flights::default();
        let key = FlightKey::of(&node("e"), &get("/live/cam/a/1.m4s")).expect("k");
        let _leader = flights.join(key.clone());
        let Join::Follower(f) = flights.join(key) else {
            panic!("follower");
        };
        assert!(f.answer(Duration::from_secs(5)).await.is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn a_leader_whose_client_stalls_holds_followers_back_only_briefly() {
        let flights = Flights::default();
        let key = FlightKey::of(&node("e"), &get("/live/cam/a/1.m4s")).expect("k");
        let Join::Leader(mut leader) = flights.join(key.clone()) else {
            panic!("leader");
        };
        let Join::Follower(f) = flights.join(key) else {
            panic!("follower");
        };
        let started = tokio::time::Instant::now();
        let waiting = tokio::spawn(f.answer(Duration::from_secs(20)));
        // The node answered; the leader's client takes the first chunk and no more.
        leader.header(&response(200, &[("cache-control", "public")]));
        leader.body(Some(&Bytes::from_static(b"abc")), false);
        assert!(waiting.await.expect("join").is_none());
        assert!(started.elapsed() <= BODY_PATIENCE + Duration::from_millis(10));
        drop(leader);
    }

    proptest! {
        /// Whatever order joins and answers come in, each flight has one leader at a time,
        /// and every follower hears how its flight ended.
        #[test]
        fn every_follower_hears_its_flights_end(ops in proptest::collection::vec((0u8..3, any::<bool>()), 1..40)) {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().expect("rt");
            runtime.block_on(async {
                let flights = Flights::default();
                let keys: Vec<_> = (0..3)
                    .map(|i| FlightKey::of(&node("e"), &get(&format!("/live/cam/a/{i}.m4s"))).expect("k"))
                    .collect();
                let mut leaders: Vec<Option<Leader>> = vec![None, None, None];
                let mut waiting = Vec::new();
                for (k, answer) in ops {
                    let k = usize::from(k);
                    if answer {
                        if let Some(mut leader) = leaders[k].take() {
                            leader.header(&response(200, &[("cache-control", "public")]));
                            leader.body(Some(&Bytes::from_static(b"x")), true);
                        }
                        continue;
                    }
                    match flights.join(keys[k].clone()) {
                        Join::Leader(l) => {
                            prop_assert!(leaders[k].is_none(), "two leaders for one key");
                            leaders[k] = Some(l);
                        }
                        Join::Follower(f) => {
                            prop_assert!(leaders[k].is_some(), "a follower without a leader");
                            waiting.push(tokio::spawn(f.answer(Duration::from_secs(3600))));
                        }
                    }
                }
                drop(leaders);
                prop_assert!(flights.is_empty());
                for w in waiting {
                    // Every follower hears the end (shared or not) without waiting out its patience.
                    let heard = tokio::time::timeout(Duration::from_secs(5), w).await;
                    prop_assert!(heard.is_ok(), "a follower was left waiting");
                }
                Ok(())
            })?;
        }
    }
}
