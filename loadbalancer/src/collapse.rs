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
//! never collapsed: the node checks each token against its viewer's own address. A live
//! playlist request (master or media, blocking reloads included) collapses only while the
//! node has counted its viewer lately ([`crate::counted`]): a node counts its viewers by
//! who fetches them (`sealcast_viewers`, the dashboard, the Kubernetes autoscaler), and a
//! collapsed reload does not reach it.
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
use domain::{NodeId, StreamName};
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
    /// `counted` tells whether the node has counted the requester as a viewer of the stream
    /// lately ([`crate::counted`]); a live playlist request may collapse only then. It is
    /// asked once for every live playlist `GET`, whatever else the request carries.
    pub fn of(
        node: &NodeId,
        request: &RequestHeader,
        counted: impl FnOnce(&StreamName) -> bool,
    ) -> Option<Self> {
        if request.method != Method::GET {
            return None;
        }
        let uri = &request.uri;
        let tree = StreamTree::of(uri.path())?;
        if PathClass::of(uri.path()) == PathClass::LivePlaylist {
            let StreamTree::Live(stream) = tree else {
                return None;
            };
            if !counted(&stream) {
                return None;
            }
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
mod tests;
