//! Tests of [`super`]: keys, what may be shared, and flights with their followers.

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
        let key = FlightKey::of(&n, &get(target), |_| false).expect(target);
        assert_eq!(key.target, target);
    }
    let a = FlightKey::of(&n, &get("/live/cam/720p/12.3.m4s"), |_| false);
    let b = FlightKey::of(&n, &get("/live/cam/720p/12.4.m4s"), |_| false);
    let c = FlightKey::of(&node("edge2"), &get("/live/cam/720p/12.3.m4s"), |_| false);
    assert_ne!(a, b, "another part");
    assert_ne!(a, c, "another node");
}

#[test]
fn live_playlists_collapse_only_for_a_viewer_its_node_counted_lately() {
    let n = node("edge1");
    for target in [
        "/live/cam/720p/index.m3u8?_HLS_msn=12&_HLS_part=2",
        "/live/cam/720p/index.m3u8",
        "/live/cam/master.m3u8",
    ] {
        let mut asked = None;
        let key = FlightKey::of(&n, &get(target), |s| {
            asked = Some(s.clone());
            true
        });
        assert_eq!(key.expect(target).target, target);
        assert_eq!(asked.expect("asked").as_str(), "cam", "{target}");
        assert!(FlightKey::of(&n, &get(target), |_| false).is_none());
        let tokened = format!(
            "{target}{}token=abc",
            if target.contains('?') { '&' } else { '?' }
        );
        let mut asked = false;
        assert!(FlightKey::of(&n, &get(&tokened), |_| {
            asked = true;
            true
        })
        .is_none());
        assert!(
            asked,
            "asked even when the request will not collapse: {tokened}"
        );
    }
    let mut asked = false;
    assert!(FlightKey::of(&n, &get("/live/cam/720p/1.m4s"), |_| {
        asked = true;
        false
    })
    .is_some());
    assert!(!asked, "media does not depend on who asks");
}

#[test]
fn personal_or_non_stream_requests_do_not_collapse() {
    let n = node("edge1");
    for target in [
        // Live playlists of a viewer its node has not counted lately.
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
        assert!(
            FlightKey::of(&n, &get(target), |_| false).is_none(),
            "{target}"
        );
    }
    let mut post = get("/live/cam/720p/1.m4s");
    post.set_method(Method::POST);
    assert!(FlightKey::of(&n, &post, |_| true).is_none());
    for name in PERSONAL {
        let mut r = get("/live/cam/720p/1.m4s");
        r.insert_header(name.clone(), "x").expect("header");
        assert!(FlightKey::of(&n, &r, |_| true).is_none(), "{name}");
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
    let key = FlightKey::of(&node("e"), &get("/live/cam/a/3.1.m4s"), |_| false).expect("k");
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
    let key = FlightKey::of(&node("e"), &get("/live/cam/a/1.m4s"), |_| false).expect("k");
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
    let key = FlightKey::of(&node("e"), &get("/live/cam/a/1.m4s"), |_| false).expect("k");
    let _leader = flights.join(key.clone());
    let Join::Follower(f) = flights.join(key) else {
        panic!("follower");
    };
    assert!(f.answer(Duration::from_secs(5)).await.is_none());
}

#[tokio::test(start_paused = true)]
async fn a_leader_whose_client_stalls_holds_followers_back_only_briefly() {
    let flights = Flights::default();
    let key = FlightKey::of(&node("e"), &get("/live/cam/a/1.m4s"), |_| false).expect("k");
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
                .map(|i| FlightKey::of(&node("e"), &get(&format!("/live/cam/a/{i}.m4s")), |_| false).expect("k"))
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
