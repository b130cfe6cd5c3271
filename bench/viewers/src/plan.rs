//! One emulated viewer, sans-IO: responses in, the requests it makes next out, each with
//! the time it is due.
//!
//! Like hls.js on a live stream: the master playlist, then one rendition's media playlist
//! once per target duration, the init segment (`EXT-X-MAP`, CMAF) once, and every segment
//! as soon as a playlist lists it (starting from the live edge: the last listed segment). The playlist schedule is open loop: once
//! the first reload answered (and told the target duration), each reload is scheduled when
//! the previous one is *issued*, one target duration after it was due, whether or not it
//! has answered; so a slow server shows up as latency (the driver measures from the due
//! time), never as fewer requests.

use std::time::Duration;

use url::Url;

/// What a request fetches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// The master playlist.
    Master,
    /// A media playlist.
    Playlist,
    /// A media segment.
    Segment,
    /// The init segment of a CMAF rendition (`EXT-X-MAP`).
    Init,
    /// An LL-HLS part, requested once a playlist lists it.
    Part,
    /// An LL-HLS part requested as soon as an `EXT-X-PRELOAD-HINT` names it, before it
    /// exists: the server holds the request until it does.
    HintedPart,
    /// A blocking playlist reload (`_HLS_msn`/`_HLS_part`): the server holds it until the
    /// playlist lists what it asks for.
    Reload,
}

impl Kind {
    /// Whether the server holds such a request by design (its wait is not slowness).
    pub fn held(self) -> bool {
        matches!(self, Kind::HintedPart | Kind::Reload)
    }

    /// Whether its body is media, read and counted but not kept.
    pub fn media(self) -> bool {
        matches!(
            self,
            Kind::Segment | Kind::Init | Kind::Part | Kind::HintedPart
        )
    }
}

/// A request a viewer makes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// What it fetches.
    pub kind: Kind,
    /// Where.
    pub url: Url,
    /// When it is due, from the start of the run.
    pub due: Duration,
}

/// Which rendition a viewer watches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pick {
    /// The variant whose URI starts with this name (`360p` for `360p/index.m3u8`).
    Named(String),
    /// The first variant of the master playlist.
    First,
}

/// Why a response could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlanError {
    /// Not the playlist that was asked for.
    NotAPlaylist(Kind),
    /// The master playlist has no such variant.
    NoVariant,
    /// A URI that does not resolve against the playlist's.
    BadUri(String),
    /// A media playlist the low-latency viewer cannot read ([`crate::llplaylist`]): why.
    BadPlaylist(&'static str),
    /// A media playlist without parts, given to the low-latency viewer.
    NotLowLatency,
}

impl std::fmt::Display for PlanError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PlanError::NotAPlaylist(kind) => write!(f, "the {kind:?} response is not one"),
            PlanError::NoVariant => f.write_str("the master playlist has no such variant"),
            PlanError::BadUri(uri) => write!(f, "cannot resolve {uri:?}"),
            PlanError::BadPlaylist(why) => write!(f, "unreadable media playlist: {why}"),
            PlanError::NotLowLatency => f.write_str("the media playlist lists no parts"),
        }
    }
}

impl std::error::Error for PlanError {}

/// One viewer's state.
#[derive(Debug, Clone)]
pub struct Viewer {
    pick: Pick,
    playlist: Option<Url>,
    /// The last media sequence number fetched (or skipped at the start).
    seen: Option<u64>,
    /// The media playlist's target duration, once a reload told it.
    target: Option<Duration>,
    /// The init segment asked for, if the playlist has one.
    init: Option<Url>,
    ended: bool,
}

impl Viewer {
    /// A viewer that watches `pick`; its first request is [`Viewer::start`].
    pub fn new(pick: Pick) -> Self {
        Viewer {
            pick,
            playlist: None,
            seen: None,
            target: None,
            init: None,
            ended: false,
        }
    }

    /// The first request: the master playlist at `master`, due at `at`.
    pub fn start(&self, master: Url, at: Duration) -> Request {
        self::master(master, at)
    }

    /// Whether the stream has ended (the viewer makes no more requests).
    pub fn ended(&self) -> bool {
        self.ended
    }

    /// The master playlist from `url` arrived at `now`: its media playlist is due at once.
    pub fn on_master(
        &mut self,
        url: &Url,
        body: &[u8],
        now: Duration,
    ) -> Result<Vec<Request>, PlanError> {
        let request = media_playlist(&self.pick, url, body, now)?;
        self.playlist = Some(request.url.clone());
        Ok(vec![request])
    }

    /// The media playlist that was due at `due` arrived at `now`: its init segment
    /// (`EXT-X-MAP`) when it is not the one already asked for, and every segment listed
    /// after the last one fetched are due at once (at the first load, only the last one:
    /// the viewer joins at the live edge). The first answer also schedules the first
    /// reload, one target duration after `due` (or at once, if that has passed); later
    /// reloads come from [`Viewer::after_issuing`]. An ended playlist stops the reloads.
    pub fn on_playlist(
        &mut self,
        body: &[u8],
        due: Duration,
        now: Duration,
    ) -> Result<Vec<Request>, PlanError> {
        let Ok((_, m3u8_rs::Playlist::MediaPlaylist(media))) = m3u8_rs::parse_playlist(body) else {
            return Err(PlanError::NotAPlaylist(Kind::Playlist));
        };
        let Some(base) = self.playlist.clone() else {
            return Err(PlanError::NotAPlaylist(Kind::Playlist));
        };
        let mut out = Vec::new();
        if let Some(map) = media.segments.iter().find_map(|s| s.map.as_ref()) {
            let init = base
                .join(&map.uri)
                .map_err(|_| PlanError::BadUri(map.uri.clone()))?;
            if self.init.as_ref() != Some(&init) {
                self.init = Some(init.clone());
                out.push(Request {
                    kind: Kind::Init,
                    url: init,
                    due: now,
                });
            }
        }
        let first = media.media_sequence;
        let count = media.segments.len() as u64;
        let from = match self.seen {
            Some(seen) => seen.saturating_add(1).max(first),
            None => (first + count).saturating_sub(1).max(first),
        };
        for (i, segment) in media.segments.iter().enumerate() {
            let sequence = first + i as u64;
            if sequence < from {
                continue;
            }
            let is_gap = segment.unknown_tags.iter().any(|t| t.tag == "X-GAP");
            if !is_gap {
                out.push(Request {
                    kind: Kind::Segment,
                    url: base
                        .join(&segment.uri)
                        .map_err(|_| PlanError::BadUri(segment.uri.clone()))?,
                    due: now,
                });
            }
            self.seen = Some(sequence);
        }
        if media.end_list {
            self.ended = true;
            return Ok(out);
        }
        let target = Duration::from_secs(media.target_duration.max(1));
        if self.target.replace(target).is_none() {
            out.push(Request {
                kind: Kind::Playlist,
                url: base,
                due: (due + target).max(now),
            });
        }
        Ok(out)
    }

    /// The request that follows from issuing `request`, whatever its answer: the next
    /// reload, one target duration after a reload was due (once the target is known and
    /// while the stream lasts).
    pub fn after_issuing(&self, request: &Request) -> Option<Request> {
        next_reload(request, self.target, self.ended)
    }
}

/// The reload `every` after `request` was due, if it is a playlist reload, the interval is
/// known and the stream goes on: the open-loop schedule of a polling viewer.
pub(crate) fn next_reload(
    request: &Request,
    every: Option<Duration>,
    ended: bool,
) -> Option<Request> {
    match (request.kind, every, ended) {
        (Kind::Playlist, Some(every), false) => Some(Request {
            due: request.due + every,
            ..request.clone()
        }),
        _ => None,
    }
}

/// Every viewer's first request: the master playlist at `url`, due at `at`.
pub fn master(url: Url, at: Duration) -> Request {
    Request {
        kind: Kind::Master,
        url,
        due: at,
    }
}

/// The request for the media playlist of `pick`'s variant in the master playlist `body`
/// from `url`, due at `now`.
pub(crate) fn media_playlist(
    pick: &Pick,
    url: &Url,
    body: &[u8],
    now: Duration,
) -> Result<Request, PlanError> {
    let Ok((_, m3u8_rs::Playlist::MasterPlaylist(master))) = m3u8_rs::parse_playlist(body) else {
        return Err(PlanError::NotAPlaylist(Kind::Master));
    };
    let variant = match pick {
        Pick::First => master.variants.first(),
        Pick::Named(name) => master
            .variants
            .iter()
            .find(|v| v.uri.split('/').next() == Some(name.as_str())),
    }
    .ok_or(PlanError::NoVariant)?;
    let playlist = url
        .join(&variant.uri)
        .map_err(|_| PlanError::BadUri(variant.uri.clone()))?;
    Ok(Request {
        kind: Kind::Playlist,
        url: playlist,
        due: now,
    })
}

/// When viewer `index` of `count` starts: spread evenly over `ramp`.
pub fn start_time(index: usize, count: usize, ramp: Duration) -> Duration {
    if count == 0 {
        return Duration::ZERO;
    }
    ramp.mul_f64(index as f64 / count as f64)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const MASTER: &str = "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=3000000\n720p/index.m3u8\n\
                          #EXT-X-STREAM-INF:BANDWIDTH=800000\n360p/index.m3u8\n";

    fn media(first: u64, count: u64, ended: bool) -> String {
        let mut text = format!(
            "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:{first}\n"
        );
        for s in first..first + count {
            text.push_str(&format!("#EXTINF:2.0,\n{s}.ts\n"));
        }
        if ended {
            text.push_str("#EXT-X-ENDLIST\n");
        }
        text
    }

    fn url(s: &str) -> Url {
        Url::parse(s).expect("valid")
    }

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    #[test]
    fn a_viewer_joins_at_the_live_edge_and_reloads_once_per_target_duration() {
        let master = url("https://lb.test/live/a/master.m3u8");
        let mut v = Viewer::new(Pick::Named("360p".into()));
        let first = v.start(master.clone(), secs(0.5));
        assert_eq!((first.kind, first.due), (Kind::Master, secs(0.5)));
        let next = v
            .on_master(&master, MASTER.as_bytes(), secs(0.6))
            .expect("master");
        assert_eq!(
            next[0].url.as_str(),
            "https://lb.test/live/a/360p/index.m3u8"
        );
        assert_eq!(next[0].due, secs(0.6));
        assert_eq!(
            v.after_issuing(&next[0]),
            None,
            "the target is not known yet"
        );

        // First answer: only the live edge (segment 14), the first reload due 2 s after
        // this one was due.
        let out = v
            .on_playlist(media(10, 5, false).as_bytes(), secs(0.6), secs(0.7))
            .expect("media");
        let kinds: Vec<(Kind, &str, Duration)> =
            out.iter().map(|r| (r.kind, r.url.path(), r.due)).collect();
        assert_eq!(
            kinds,
            [
                (Kind::Segment, "/live/a/360p/14.ts", secs(0.7)),
                (Kind::Playlist, "/live/a/360p/index.m3u8", secs(2.6)),
            ]
        );
        // Issuing that reload schedules the next, answered or not.
        let reload = out[1].clone();
        assert_eq!(v.after_issuing(&reload).map(|r| r.due), Some(secs(4.6)));
        assert_eq!(v.after_issuing(&out[0]), None, "segments schedule nothing");
        // Its answer lists one new segment and schedules nothing more.
        let out = v
            .on_playlist(media(11, 5, false).as_bytes(), secs(2.6), secs(4.0))
            .expect("media");
        let paths: Vec<&str> = out.iter().map(|r| r.url.path()).collect();
        assert_eq!(paths, ["/live/a/360p/15.ts"]);
        // Two new ones at once, then the end: no more reloads.
        let out = v
            .on_playlist(media(13, 5, true).as_bytes(), secs(4.6), secs(4.7))
            .expect("media");
        let paths: Vec<&str> = out.iter().map(|r| r.url.path()).collect();
        assert_eq!(paths, ["/live/a/360p/16.ts", "/live/a/360p/17.ts"]);
        assert!(v.ended());
        assert_eq!(v.after_issuing(&reload), None);
    }

    #[test]
    fn the_init_segment_is_asked_for_once() {
        let master = url("https://lb.test/live/a/master.m3u8");
        let mut v = Viewer::new(Pick::First);
        v.on_master(&master, MASTER.as_bytes(), secs(0.0))
            .expect("master");
        let cmaf = |first: u64| {
            media(first, 3, false).replace(
                "#EXT-X-MEDIA-SEQUENCE",
                "#EXT-X-MAP:URI=\"init.mp4\"\n#EXT-X-MEDIA-SEQUENCE",
            )
        };
        let out = v
            .on_playlist(cmaf(10).as_bytes(), secs(0.0), secs(0.1))
            .expect("media");
        let got: Vec<(Kind, &str)> = out.iter().map(|r| (r.kind, r.url.path())).collect();
        assert_eq!(
            got,
            [
                (Kind::Init, "/live/a/720p/init.mp4"),
                (Kind::Segment, "/live/a/720p/12.ts"),
                (Kind::Playlist, "/live/a/720p/index.m3u8"),
            ]
        );
        let out = v
            .on_playlist(cmaf(11).as_bytes(), secs(2.0), secs(2.1))
            .expect("media");
        let kinds: Vec<Kind> = out.iter().map(|r| r.kind).collect();
        assert_eq!(kinds, [Kind::Segment], "the same init segment: not again");
    }

    #[test]
    fn bad_responses_are_errors() {
        let master = url("https://lb.test/live/a/master.m3u8");
        let mut v = Viewer::new(Pick::Named("1080p".into()));
        assert_eq!(
            v.on_master(&master, b"<html>", secs(0.0)),
            Err(PlanError::NotAPlaylist(Kind::Master))
        );
        assert_eq!(
            v.on_master(&master, MASTER.as_bytes(), secs(0.0)),
            Err(PlanError::NoVariant)
        );
        let mut v = Viewer::new(Pick::First);
        v.on_master(&master, MASTER.as_bytes(), secs(0.0))
            .expect("first variant");
        assert_eq!(
            v.on_playlist(MASTER.as_bytes(), secs(0.0), secs(0.0)),
            Err(PlanError::NotAPlaylist(Kind::Playlist))
        );
    }

    #[test]
    fn starts_spread_over_the_ramp() {
        let starts: Vec<Duration> = (0..4).map(|i| start_time(i, 4, secs(2.0))).collect();
        assert_eq!(starts, [secs(0.0), secs(0.5), secs(1.0), secs(1.5)]);
        assert_eq!(start_time(0, 0, secs(2.0)), Duration::ZERO);
    }

    proptest! {
        /// Whatever the answer times, reloads are due exactly one target duration apart,
        /// every segment is requested once, and none twice.
        #[test]
        fn open_loop_and_every_segment_once(delays in prop::collection::vec(0u64..5000, 1..30)) {
            let master = url("https://lb.test/live/a/master.m3u8");
            let mut v = Viewer::new(Pick::First);
            let mut reload = v.on_master(&master, MASTER.as_bytes(), secs(0.0)).expect("master").remove(0);
            let mut requested = Vec::new();
            let mut dues = Vec::new();
            for (i, delay) in delays.iter().enumerate() {
                dues.push(reload.due);
                let next = v.after_issuing(&reload);
                // The live window slides by one segment per reload.
                let text = media(i as u64, 5, false);
                let now = reload.due + Duration::from_millis(*delay);
                let out = v.on_playlist(text.as_bytes(), reload.due, now).expect("media");
                for r in &out {
                    if r.kind == Kind::Segment {
                        requested.push(r.url.path().to_owned());
                    }
                }
                reload = match next {
                    Some(next) => next,
                    None => out.into_iter().find(|r| r.kind == Kind::Playlist).expect("the first reload"),
                };
            }
            for pair in dues.windows(2).skip(1) {
                prop_assert_eq!(pair[1] - pair[0], secs(2.0));
            }
            let unique: std::collections::HashSet<&String> = requested.iter().collect();
            prop_assert_eq!(unique.len(), requested.len());
            prop_assert_eq!(requested.len(), delays.len());
        }
    }
}
