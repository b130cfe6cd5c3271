//! The public URL layout of the brief, built and parsed in one place:
//!
//! | path | what |
//! |---|---|
//! | `/live/{stream}/master.m3u8` | master playlist |
//! | `/live/{stream}/{rendition}/index.m3u8` | live media playlist |
//! | `/live/{stream}/{rendition}/{seq}.ts` | a segment |
//! | `/api/v1/streams` | live streams as JSON |
//! | `/healthz`, `/readyz`, `/metrics` | liveness, readiness, Prometheus text |

use std::fmt;

use crate::{RenditionName, StreamName};

/// A path of the public URL layout.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PublicPath {
    /// `/live/{stream}/master.m3u8`
    Master(StreamName),
    /// `/live/{stream}/{rendition}/index.m3u8`
    Media(StreamName, RenditionName),
    /// `/live/{stream}/{rendition}/{seq}.ts`
    Segment(StreamName, RenditionName, u64),
    /// `/api/v1/streams`
    Streams,
    /// `/healthz`
    Health,
    /// `/readyz`: 200 once a broadcast node holds the live window, 503 before.
    Readiness,
    /// `/metrics`
    Metrics,
}

impl PublicPath {
    /// Parses an absolute request path (no query string). Anything that is not exactly one
    /// of the layout's paths, with valid names, is `None` — so `..`, doubled slashes and
    /// percent-encoded tricks never reach a handler.
    pub fn parse(path: &str) -> Option<Self> {
        let rest = path.strip_prefix('/')?;
        let parts: Vec<&str> = rest.split('/').collect();
        match parts.as_slice() {
            ["healthz"] => Some(Self::Health),
            ["readyz"] => Some(Self::Readiness),
            ["metrics"] => Some(Self::Metrics),
            ["api", "v1", "streams"] => Some(Self::Streams),
            ["live", stream, "master.m3u8"] => Some(Self::Master(StreamName::new(*stream).ok()?)),
            ["live", stream, rendition, "index.m3u8"] => Some(Self::Media(
                StreamName::new(*stream).ok()?,
                RenditionName::new(*rendition).ok()?,
            )),
            ["live", stream, rendition, file] => {
                let seq = file.strip_suffix(".ts")?;
                if seq.is_empty() || !seq.bytes().all(|b| b.is_ascii_digit()) || seq.len() > 20 {
                    return None;
                }
                Some(Self::Segment(
                    StreamName::new(*stream).ok()?,
                    RenditionName::new(*rendition).ok()?,
                    seq.parse().ok()?,
                ))
            }
            _ => None,
        }
    }
}

impl fmt::Display for PublicPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Master(s) => write!(f, "/live/{s}/master.m3u8"),
            Self::Media(s, r) => write!(f, "/live/{s}/{r}/index.m3u8"),
            Self::Segment(s, r, n) => write!(f, "/live/{s}/{r}/{n}.ts"),
            Self::Streams => f.write_str("/api/v1/streams"),
            Self::Health => f.write_str("/healthz"),
            Self::Readiness => f.write_str("/readyz"),
            Self::Metrics => f.write_str("/metrics"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rejects_traversal_and_junk() {
        for bad in [
            "/live/../master.m3u8",
            "/live/a/../index.m3u8",
            "/live/a//index.m3u8",
            "/live/a/b/-1.ts",
            "/live/a/b/1.ts.ts",
            "/live/a/b/99999999999999999999.ts", // > u64::MAX
            "live/a/master.m3u8",
            "/live/a%2f/master.m3u8",
        ] {
            assert_eq!(PublicPath::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn fixed_paths_are_spelled_as_documented() {
        for (path, spelled) in [
            (PublicPath::Streams, "/api/v1/streams"),
            (PublicPath::Health, "/healthz"),
            (PublicPath::Readiness, "/readyz"),
            (PublicPath::Metrics, "/metrics"),
        ] {
            assert_eq!(path.to_string(), spelled);
            assert_eq!(PublicPath::parse(spelled), Some(path));
        }
        assert_eq!(PublicPath::parse("/readyz/"), None);
    }

    proptest! {
        #[test]
        fn paths_round_trip(
            s in "[a-z0-9][a-z0-9_-]{0,20}",
            r in "[a-z0-9][a-z0-9_-]{0,8}",
            n in any::<u64>(),
            which in 0u8..7,
        ) {
            let s = StreamName::new(s).expect("valid");
            let r = RenditionName::new(r).expect("valid");
            let p = match which {
                0 => PublicPath::Master(s),
                1 => PublicPath::Media(s, r),
                2 => PublicPath::Segment(s, r, n),
                3 => PublicPath::Streams,
                4 => PublicPath::Health,
                5 => PublicPath::Readiness,
                _ => PublicPath::Metrics,
            };
            prop_assert_eq!(PublicPath::parse(&p.to_string()), Some(p));
        }

        #[test]
        fn parse_never_panics(s in ".{0,100}") {
            let _ = PublicPath::parse(&s);
        }
    }
}
