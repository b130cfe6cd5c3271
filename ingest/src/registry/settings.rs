//! What a registry is made with and what it tells: the ingest role's settings
//! ([`IngestSettings`]), the observer of publish sessions ([`PublishObserver`]) and a
//! live session as listed ([`LiveSession`]). Plain types, apart so that `mod.rs` keeps
//! the registry's rules.

use std::sync::Arc;
use std::time::Duration;

use domain::{Ladder, SessionId, StreamName};

/// Settings of the ingest role.
#[derive(Debug, Clone)]
pub struct IngestSettings {
    /// The RTMP application publishers connect to (`live`).
    pub app: String,
    /// The ladder every stream is transcoded to.
    pub ladder: Arc<Ladder>,
    /// x264 threads per rung (0 = x264's choice).
    pub encoder_threads: usize,
    /// How long after a dropped connection the stream is declared ended.
    pub end_grace: Duration,
    /// RTMP connections open at once; more are closed as they arrive
    /// ([`intake::rtmp::DEFAULT_MAX_CONNECTIONS`] by default).
    pub max_connections: usize,
    /// Streams published here at once, whatever the protocol; a publisher of one more is
    /// refused ([`NotAdmitted::Full`](super::NotAdmitted::Full)) before anything starts, so that the streams already
    /// here keep their memory and CPU (an ingest's memory limit divided by what one
    /// stream's transcode takes). A takeover of a stream already live here always passes.
    /// `None`: no cap.
    pub max_streams: Option<usize>,
    /// The claim signer of this ingest's C2PA manifests (docs/provenance.md): each publish
    /// session signs its CMAF init segments and fragments under it with a session key of
    /// its own. `None`: the media carry no C2PA data.
    pub provenance: Option<Arc<certs::c2pa::ClaimSigner>>,
}

/// Told when publish sessions start and end (the binary records them in the catalog and
/// sends webhooks). Called on the async executor: implementations hand slow work to a
/// task of their own.
pub trait PublishObserver: Send + Sync + std::fmt::Debug {
    /// A publish session started; `renditions` are the ladder's rungs.
    fn started(&self, stream: &StreamName, session: SessionId, renditions: &[String]);
    /// A publish session ended (the publisher left, was taken over or was ended).
    fn ended(&self, stream: &StreamName, session: SessionId);
}

/// A stream being published here right now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveSession {
    /// The stream.
    pub stream: StreamName,
    /// Its session.
    pub session: SessionId,
    /// When the session started (unix seconds).
    pub started_at: i64,
}
