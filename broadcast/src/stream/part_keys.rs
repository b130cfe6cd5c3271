//! The part-key delegations a stream keeps for viewers (`{seq}.partkey`): a rendition's
//! newest [`PART_KEYS`] runs, and those that came before their session announced the
//! rendition ([`Waiting`]), kept once it does.

use std::collections::VecDeque;

use bytes::Bytes;
use domain::{RenditionName, SessionId};

use crate::view::{Document, SEGMENT_CACHE_CONTROL};

/// Part-key delegations kept per rendition: the run being played and the ones before it
/// whose parts may still be served.
pub(crate) const PART_KEYS: usize = 4;

/// Delegations kept per stream for a rendition its live session has not announced yet (or
/// a session that has not started yet): the delegation and the announcement come on
/// different topics, in either order.
const WAITING: usize = 8;

/// Keeps a delegation for segments `first..=last` among a rendition's `kept`, ascending by
/// their first segment: the newest [`PART_KEYS`], the same one once. Whether it was new
/// (the caller re-renders then).
pub(super) fn keep(
    kept: &mut VecDeque<((u64, u64), Document)>,
    (first, last): (u64, u64),
    envelope: Bytes,
) -> bool {
    if kept.iter().any(|(_, doc)| doc.body == envelope) {
        return false;
    }
    let doc = Document::statement(envelope, SEGMENT_CACHE_CONTROL);
    let at = kept.partition_point(|((f, _), _)| *f <= first);
    kept.insert(at, ((first, last), doc));
    while kept.len() > PART_KEYS {
        kept.pop_front();
    }
    true
}

/// Verified delegations whose session has not announced their rendition yet, oldest
/// first, at most [`WAITING`].
#[derive(Debug, Default)]
pub(super) struct Waiting(VecDeque<Pending>);

#[derive(Debug)]
struct Pending {
    rendition: RenditionName,
    session: SessionId,
    run: (u64, u64),
    envelope: Bytes,
}

impl Waiting {
    /// Keeps one until its rendition is announced by its session (the same one once; the
    /// oldest goes when full).
    pub(super) fn hold(
        &mut self,
        rendition: &RenditionName,
        session: SessionId,
        run: (u64, u64),
        envelope: Bytes,
    ) {
        if self.0.iter().any(|p| p.envelope == envelope) {
            return;
        }
        if self.0.len() == WAITING {
            self.0.pop_front();
        }
        self.0.push_back(Pending {
            rendition: rendition.clone(),
            session,
            run,
            envelope,
        });
    }

    /// Those of `rendition` by `session` (run and envelope), now announced; those of it by
    /// another session are dropped.
    pub(super) fn announced(
        &mut self,
        rendition: &RenditionName,
        session: SessionId,
    ) -> Vec<((u64, u64), Bytes)> {
        let mut ready = Vec::new();
        self.0.retain(|p| {
            if &p.rendition != rendition {
                return true;
            }
            if p.session == session {
                ready.push((p.run, p.envelope.clone()));
            }
            false
        });
        ready
    }
}
