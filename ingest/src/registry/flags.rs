//! Changing a live stream's privacy or recording ([`Registry::set_private`],
//! [`Registry::set_record`]), as an operator does in the catalog: the session's flags,
//! shared with its pipeline, change, and a session the edges were told of is announced
//! again, signed like every control event, with the flags as they now stand.

use domain::{LiveEvent, SessionId, StreamName};

use super::Registry;
use crate::pipeline::{SessionFlags, StartFlags};

impl Registry {
    /// Makes `stream`, if it is live here, private or public (an operator changed it in the
    /// catalog). A session already announced to the edges is announced again, signed like
    /// every control event, with the new value; true if that was sent.
    pub async fn set_private(&self, stream: &StreamName, private: bool) -> bool {
        let Some((session, flags)) = self.change_flags(stream, |f| f.set_private(private)) else {
            return false;
        };
        tracing::info!(%stream, private, "the stream's privacy changed while live; telling the edges");
        self.announce_again(stream, session, flags).await
    }

    /// Switches the recording of `stream`, if it is live here, on or off (an operator
    /// changed it in the catalog): announced again like [`Registry::set_private`]; the nodes
    /// that record stop at the next segment (finishing what they have) or start again.
    /// True if that was sent.
    pub async fn set_record(&self, stream: &StreamName, record: bool) -> bool {
        let Some((session, flags)) = self.change_flags(stream, |f| f.set_record(record)) else {
            return false;
        };
        tracing::info!(%stream, record, "the stream's recording was switched while live; telling the edges");
        self.announce_again(stream, session, flags).await
    }

    /// Changes the flags of `stream`'s live session here: its session and new flags when
    /// the session was announced already and must be announced again.
    fn change_flags(
        &self,
        stream: &StreamName,
        change: impl FnOnce(&SessionFlags) -> Option<StartFlags>,
    ) -> Option<(SessionId, StartFlags)> {
        let slots = self.slots.lock();
        let live = slots.get(stream).and_then(|s| s.live.as_ref())?;
        change(&live.flags).map(|flags| (live.session, flags))
    }

    /// Sends the session start of `session` again, with `flags` (signed like every control
    /// event on its way to the edges).
    async fn announce_again(
        &self,
        stream: &StreamName,
        session: SessionId,
        flags: StartFlags,
    ) -> bool {
        let event = LiveEvent::SessionStarted {
            stream: stream.clone(),
            session,
            private: flags.private,
            record: flags.record,
        };
        self.events.send(event).await.is_ok()
    }
}
