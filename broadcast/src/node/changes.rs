//! Who waits for what a stream's next snapshot brings: a `watch` channel per rendition.
//!
//! Held requests (a blocking playlist reload, a preload-hinted part, its statement) each
//! wait for one rendition, and what they look for depends on that rendition's view alone.
//! A snapshot swap replaces the views of the renditions its event changed and shares the
//! others' (`Arc`), so only the waiters of a replaced view are woken: with a ladder of four
//! rungs, a viewer's held request wakes for its own rung's parts, not for every rung's.
//!
//! A channel exists for every rendition of the current snapshot, and only for those (a
//! request cannot make one for a name it invented); it is made before the snapshot that
//! first lists its rendition is swapped in, so a reader that sees a rendition can always
//! subscribe to it, and dropped once a snapshot no longer has it, which wakes its waiters
//! with the news.

use std::collections::HashMap;
use std::sync::Arc;

use domain::RenditionName;
use parking_lot::RwLock;
use tokio::sync::watch;

use crate::view::StreamView;

/// The per-rendition change signals of one stream.
#[derive(Debug, Default)]
pub(super) struct Changes {
    renditions: RwLock<HashMap<RenditionName, watch::Sender<()>>>,
}

impl Changes {
    /// A receiver told when the view of `rendition` is replaced (or dropped); `None` when
    /// the current snapshot has no such rendition. Subscribe before looking at the
    /// snapshot, so that a swap in between is not missed.
    pub(super) fn subscribe(&self, rendition: &RenditionName) -> Option<watch::Receiver<()>> {
        self.renditions
            .read()
            .get(rendition)
            .map(watch::Sender::subscribe)
    }

    /// Before `next` is swapped in: a channel for each rendition it lists first.
    pub(super) fn prepare(&self, next: &StreamView) {
        let missing = {
            let senders = self.renditions.read();
            next.renditions
                .keys()
                .any(|name| !senders.contains_key(name))
        };
        if missing {
            let mut senders = self.renditions.write();
            for name in next.renditions.keys() {
                senders
                    .entry(name.clone())
                    .or_insert_with(|| watch::Sender::new(()));
            }
        }
    }

    /// After `next` replaced `previous`: wakes the waiters of every rendition whose view
    /// changed, and drops the channels of renditions `next` no longer has.
    pub(super) fn swapped(&self, previous: &StreamView, next: &StreamView) {
        let mut gone = false;
        for (name, sender) in self.renditions.read().iter() {
            match (previous.renditions.get(name), next.renditions.get(name)) {
                (Some(was), Some(is)) if Arc::ptr_eq(was, is) => {}
                (_, Some(_)) => {
                    sender.send_replace(());
                }
                (_, None) => gone = true,
            }
        }
        if gone {
            self.renditions
                .write()
                .retain(|name, _| next.renditions.contains_key(name));
        }
    }
}
