//! A playlist request's query as far as HLS defines it (`_HLS_msn`, `_HLS_part`,
//! `_HLS_skip`; RFC 8216bis §6.2.5), parsed strictly: what a blocking reload waits for
//! ([`super::LlWindow::answer`]) and whether a delta update is asked for.

use crate::DomainError;

/// The longest query string looked at; longer ones are refused before any parsing.
pub const MAX_QUERY: usize = 1024;

/// A playlist request's query, as far as HLS defines it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PlaylistQuery {
    /// `_HLS_msn`: answer once this segment (or, with `part`, this part of it) is listed.
    pub msn: Option<u64>,
    /// `_HLS_part`: a part index of segment `msn`.
    pub part: Option<u32>,
    /// `_HLS_skip=YES` (or `v2`): a delta update.
    pub skip: bool,
}

impl PlaylistQuery {
    /// Parses a query string (without the `?`). Parameters other than the three HLS ones
    /// are ignored (players add cache busters); each HLS one may appear once. Refused:
    /// a query over [`MAX_QUERY`] bytes, a value that is not a decimal number in range,
    /// `_HLS_part` without `_HLS_msn`, an `_HLS_skip` other than `YES` or `v2`.
    pub fn parse(query: &str) -> Result<Self, DomainError> {
        let bad = |reason: &'static str| DomainError::InvalidQuery { reason };
        if query.len() > MAX_QUERY {
            return Err(bad("longer than 1024 bytes"));
        }
        let mut q = PlaylistQuery::default();
        let mut seen_skip = false;
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            match name {
                "_HLS_msn" => {
                    if q.msn.is_some() {
                        return Err(bad("_HLS_msn given twice"));
                    }
                    q.msn = Some(decimal(value).ok_or(bad("_HLS_msn is not a number"))?);
                }
                "_HLS_part" => {
                    if q.part.is_some() {
                        return Err(bad("_HLS_part given twice"));
                    }
                    let part = decimal(value).ok_or(bad("_HLS_part is not a number"))?;
                    q.part = Some(u32::try_from(part).map_err(|_| bad("_HLS_part is too large"))?);
                }
                "_HLS_skip" => {
                    if seen_skip {
                        return Err(bad("_HLS_skip given twice"));
                    }
                    seen_skip = true;
                    q.skip = match value {
                        "YES" | "v2" => true,
                        _ => return Err(bad("_HLS_skip is neither YES nor v2")),
                    };
                }
                _ => {}
            }
        }
        if q.part.is_some() && q.msn.is_none() {
            return Err(bad("_HLS_part without _HLS_msn"));
        }
        Ok(q)
    }
}

/// A decimal number of at most 20 digits, no sign.
fn decimal(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 20 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn queries_parse_and_refuse_what_the_spec_does_not_allow() {
        assert_eq!(PlaylistQuery::parse(""), Ok(PlaylistQuery::default()));
        assert_eq!(
            PlaylistQuery::parse("_HLS_msn=12&_HLS_part=3&_HLS_skip=YES&t=99"),
            Ok(PlaylistQuery {
                msn: Some(12),
                part: Some(3),
                skip: true
            })
        );
        assert_eq!(
            PlaylistQuery::parse("_HLS_skip=v2").map(|q| q.skip),
            Ok(true)
        );
        for bad in [
            "_HLS_part=1",
            "_HLS_msn=",
            "_HLS_msn=-1",
            "_HLS_msn=+1",
            "_HLS_msn=1&_HLS_msn=2",
            "_HLS_msn=1&_HLS_part=4294967296",
            "_HLS_msn=123456789012345678901",
            "_HLS_skip=NO",
            "_HLS_skip",
        ] {
            assert!(PlaylistQuery::parse(bad).is_err(), "{bad} accepted");
        }
        assert!(PlaylistQuery::parse(&"a".repeat(MAX_QUERY + 1)).is_err());
    }

    proptest! {
        /// No query string makes the parser panic.
        #[test]
        fn queries_never_panic(query in ".{0,200}") {
            let _ = PlaylistQuery::parse(&query);
        }
    }
}
