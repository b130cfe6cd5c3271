//! The SRT `streamid` of a caller, read as a publish request, sans-IO.
//!
//! Two forms are taken (docs/architecture.md and the README show them to streamers):
//!
//! - the access-control syntax of the SRT specification (`#!::` then `key=value` pairs
//!   separated by commas): `r` names the resource, `m` the mode, every other key (`u`,
//!   `h`, `s`, `t`, …) is ignored. The resource is the stream key, with the RTMP
//!   application in front or not: `#!::r=live/KEY,m=publish` and `#!::r=KEY,m=publish`
//!   publish with `KEY`. A mode other than `publish` (`request`, `bidirectional`) is
//!   refused: this port only ingests. A missing mode is taken as `publish`, since that is
//!   all the port does, and OBS users type the resource alone;
//! - anything else is the bare stream key (`srt://HOST:9000?streamid=KEY`).
//!
//! The key is a secret: it is never logged, and [`PublishRequest`]'s `Debug` hides it.

use std::fmt;

/// Longest `streamid` the SRT specification allows.
pub(crate) const MAX_STREAM_ID: usize = 512;
/// Longest stream key taken: the catalog's keys are far shorter.
pub(crate) const MAX_KEY: usize = 256;

/// What a caller asks for.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct PublishRequest {
    /// The stream key to publish with.
    pub(crate) key: String,
}

impl fmt::Debug for PublishRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublishRequest")
            .field("key", &"<redacted>")
            .finish()
    }
}

/// Why a `streamid` is refused; each maps to an SRT rejection reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StreamIdRefusal {
    /// No `streamid`, an empty key, one too long, or an access-control string that does
    /// not parse (`SRT_REJX_BAD_REQUEST`, 1400).
    BadRequest(&'static str),
    /// A mode other than `publish` (`SRT_REJX_BAD_MODE`, 1405).
    BadMode,
}

impl fmt::Display for StreamIdRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StreamIdRefusal::BadRequest(why) => write!(f, "bad streamid: {why}"),
            StreamIdRefusal::BadMode => f.write_str("this port only takes publishers (m=publish)"),
        }
    }
}

/// Reads a caller's `streamid` (`None` when it sent none) for the application `app`
/// (`live`).
pub(crate) fn parse(stream_id: Option<&str>, app: &str) -> Result<PublishRequest, StreamIdRefusal> {
    let bad = StreamIdRefusal::BadRequest;
    let stream_id = stream_id.ok_or(bad("no streamid: give the stream key as streamid"))?;
    if stream_id.len() > MAX_STREAM_ID {
        return Err(bad("longer than 512 bytes"));
    }
    let key = match stream_id.strip_prefix("#!::") {
        None if stream_id.starts_with("#!") => {
            return Err(bad(
                "only the #!:: form of the access-control syntax is taken",
            ))
        }
        None => stream_id,
        Some(pairs) => {
            let mut resource = None;
            let mut mode = None;
            for pair in pairs.split(',') {
                let (name, value) = pair.split_once('=').ok_or(bad("a pair without '='"))?;
                let slot = match name {
                    "r" => &mut resource,
                    "m" => &mut mode,
                    _ => continue,
                };
                if slot.replace(value).is_some() {
                    return Err(bad("a key given twice"));
                }
            }
            match mode {
                None | Some("publish") => {}
                Some(_) => return Err(StreamIdRefusal::BadMode),
            }
            let resource = resource.ok_or(bad("no resource (r=): give r=live/KEY"))?;
            resource
                .strip_prefix(app)
                .and_then(|rest| rest.strip_prefix('/'))
                .unwrap_or(resource)
        }
    };
    if key.is_empty() || key.len() > MAX_KEY {
        return Err(bad("the stream key must be 1 to 256 bytes"));
    }
    if key.chars().any(char::is_control) {
        return Err(bad("control characters in the stream key"));
    }
    Ok(PublishRequest {
        key: key.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn key(stream_id: &str) -> Result<String, StreamIdRefusal> {
        parse(Some(stream_id), "live").map(|r| r.key)
    }

    #[test]
    fn the_documented_forms() {
        assert_eq!(key("#!::r=live/sk_abc,m=publish"), Ok("sk_abc".into()));
        assert_eq!(key("#!::r=sk_abc,m=publish"), Ok("sk_abc".into()));
        assert_eq!(
            key("#!::u=alice,r=live/sk_abc,m=publish"),
            Ok("sk_abc".into())
        );
        assert_eq!(
            key("#!::m=publish,r=sk_abc,s=session,t=stream"),
            Ok("sk_abc".into())
        );
        assert_eq!(key("#!::r=sk_abc"), Ok("sk_abc".into()));
        assert_eq!(key("sk_abc"), Ok("sk_abc".into()));
        // Another application's prefix is part of the key, not stripped.
        assert_eq!(
            key("#!::r=other/sk_abc,m=publish"),
            Ok("other/sk_abc".into())
        );
    }

    #[test]
    fn what_is_refused() {
        assert_eq!(key("#!::r=sk_abc,m=request"), Err(StreamIdRefusal::BadMode));
        assert_eq!(
            key("#!::r=sk_abc,m=bidirectional"),
            Err(StreamIdRefusal::BadMode)
        );
        for bad in [
            "",
            "#!::m=publish",
            "#!::r=live/,m=publish",
            "#!::r=a,r=b",
            "#!::r",
            "#!{\"r\":\"x\"}",
            "sk\n",
        ] {
            assert!(
                matches!(key(bad), Err(StreamIdRefusal::BadRequest(_))),
                "{bad:?}"
            );
        }
        assert!(parse(None, "live").is_err());
        assert!(key(&"k".repeat(MAX_STREAM_ID + 1)).is_err());
        assert!(key(&"k".repeat(MAX_KEY + 1)).is_err());
    }

    #[test]
    fn the_key_never_shows_in_debug_output() {
        let request = parse(Some("#!::r=live/secret-key"), "live").expect("valid");
        assert!(!format!("{request:?}").contains("secret-key"));
    }

    proptest! {
        #[test]
        fn any_string_is_taken_or_refused(s in ".{0,600}") {
            if let Ok(request) = parse(Some(&s), "live") {
                prop_assert!(!request.key.is_empty() && request.key.len() <= MAX_KEY);
            }
        }

        /// Whatever key a streamer has, both documented forms carry it.
        #[test]
        fn keys_round_trip(k in "[A-Za-z0-9_-]{1,64}") {
            prop_assert_eq!(key(&format!("#!::r=live/{k},m=publish")), Ok(k.clone()));
            prop_assert_eq!(key(&k), Ok(k.clone()));
        }
    }
}
