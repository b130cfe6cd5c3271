//! Signing segments and LL-HLS parts, off the async executor.
//!
//! For every segment (and every part, with a [`PartStatement`] instead): SHA-256 of the exact bytes edges serve, the canonical
//! [`SegmentStatement`] built from its metadata, a signature over the statement's bytes, and
//! the `statement ‖ signature` envelope. ML-DSA-65 takes about a millisecond per signature,
//! hashing a few megabytes a few more: CPU work, so it runs on one blocking thread while
//! the bytes are already on their way to the nodes. One thread taking jobs in arrival
//! order also keeps the envelopes of each stream and rendition in order on MQTT.
//!
//! A segment's envelope is stored in the segment's shared cell first (catch-up pushes from
//! then on carry it) and then handed to the MQTT outbox; a part's goes to the outbox only.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use certs::signing::SigningKey;
use control::Qos;
use domain::topics::Topic;
use domain::wire::{PartStatement, SegmentStatement, SignedMedia};
use domain::{Part, RenditionName, Segment, StreamName};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::outbox::Outgoing;
use super::snapshot::HeldSegment;
use crate::metrics::IngestMetrics;

/// Signs `segment` with `key`: the envelope that travels over MQTT.
pub(crate) fn sign_segment(key: &SigningKey, segment: &Segment) -> SignedMedia {
    let statement = SegmentStatement::from_meta(
        &segment.meta,
        key.algorithm(),
        key.key_id(),
        segment.bytes.len() as u64,
        Sha256::digest(&segment.bytes).into(),
    );
    envelope(key, statement.encode())
}

/// Signs `part` with `key`: the envelope that travels over MQTT.
pub(crate) fn sign_part(key: &SigningKey, part: &Part) -> SignedMedia {
    let statement = PartStatement::from_meta(
        &part.meta,
        key.algorithm(),
        key.key_id(),
        part.bytes.len() as u64,
        Sha256::digest(&part.bytes).into(),
    );
    envelope(key, statement.encode())
}

/// A statement's canonical bytes and `key`'s signature over exactly them.
fn envelope(key: &SigningKey, statement_bytes: Vec<u8>) -> SignedMedia {
    let signature = key.sign(&statement_bytes);
    SignedMedia::new(statement_bytes, signature)
}

/// What the signing thread signs.
#[derive(Debug)]
pub(crate) enum SignJob {
    /// A segment; its envelope is also kept for catch-up pushes.
    Segment(Arc<HeldSegment>),
    /// An LL-HLS part.
    Part(Arc<Part>),
}

/// Now, in unix milliseconds (0 if the clock is before 1970).
pub(crate) fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Starts the signing thread: it takes segments and parts from `jobs` until the channel
/// closes, and hands each envelope to `outbox` (dropping it, with a warning, if the outbox
/// is full: the edges then hold that segment for a while and skip it, they never serve it
/// unsigned).
pub(crate) fn spawn(
    key: Arc<SigningKey>,
    mut jobs: mpsc::UnboundedReceiver<SignJob>,
    outbox: mpsc::Sender<Outgoing>,
    metrics: IngestMetrics,
) -> JoinHandle<()> {
    tokio::task::spawn_blocking(move || {
        while let Some(job) = jobs.blocking_recv() {
            let started = Instant::now();
            let (envelope, stream, rendition, what) = match &job {
                SignJob::Segment(held) => {
                    let envelope = Bytes::from(sign_segment(&key, &held.segment).encode());
                    metrics.signed(started.elapsed());
                    // Only this thread sets it, once per segment.
                    let _ = held.envelope.set(envelope.clone());
                    let m = &held.segment.meta;
                    (envelope, &m.stream, &m.rendition, format!("{}", m.sequence))
                }
                SignJob::Part(part) => {
                    let envelope = sign_part(&key, part).encode();
                    metrics.part_signed(started.elapsed());
                    let m = &part.meta;
                    (
                        envelope.into(),
                        &m.stream,
                        &m.rendition,
                        format!("{}.{}", m.sequence, m.index),
                    )
                }
            };
            publish(&outbox, envelope, stream, rendition, &what);
        }
    })
}

/// Hands an envelope to the outbox: QoS 1, not retained, on the rendition's statement topic.
fn publish(
    outbox: &mpsc::Sender<Outgoing>,
    envelope: Bytes,
    stream: &StreamName,
    rendition: &RenditionName,
    what: &str,
) {
    let message = Outgoing {
        topic: Topic::MediaStatements(stream.clone(), rendition.clone()),
        qos: Qos::AtLeastOnce,
        retain: false,
        payload: envelope.to_vec(),
    };
    if outbox.try_send(message).is_err() {
        tracing::warn!(
            stream = %stream,
            rendition = %rendition,
            what,
            "the MQTT outbox is full (broker unreachable?); a signed statement was dropped"
        );
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use certs::signing::{RootKey, TrustStore, Validity};
    use domain::wire::{MediaStatement, SignatureAlgorithm};
    use domain::{NodeId, SegmentMeta, SessionId};

    use super::*;

    #[test]
    fn envelopes_verify_and_bind_the_bytes() {
        for algorithm in [SignatureAlgorithm::Ed25519, SignatureAlgorithm::MlDsa65] {
            let root = RootKey::generate(algorithm).expect("root");
            let key = SigningKey::generate(algorithm).expect("key");
            let node = NodeId::new("ingest1").expect("valid");
            let cert = root
                .certify(
                    key.public_key(),
                    node,
                    Validity::starting_at(1000, Duration::from_secs(60)),
                )
                .expect("certified");
            let mut trust = TrustStore::new(root.public_key());
            trust
                .add_certificate(&cert.encode(), 1010)
                .expect("admitted");

            let segment = Segment {
                meta: SegmentMeta {
                    stream: StreamName::new("cam1").expect("valid"),
                    rendition: RenditionName::new("720p").expect("valid"),
                    session: SessionId(5),
                    sequence: 42,
                    discontinuity_sequence: 1,
                    discontinuity: false,
                    duration: Duration::from_millis(2002),
                    start_pts_90k: 9000,
                },
                bytes: Bytes::from_static(b"\x47 some transport stream bytes"),
            };
            let signed = sign_segment(&key, &segment);
            let decoded = SignedMedia::decode(&signed.encode()).expect("envelope");
            let statement = decoded.segment().expect("statement");
            trust
                .verify(
                    statement.key_id,
                    &decoded.statement_bytes,
                    &decoded.signature,
                    1010,
                )
                .expect("verifies");
            let part = Part {
                meta: domain::PartMeta {
                    stream: segment.meta.stream.clone(),
                    rendition: segment.meta.rendition.clone(),
                    session: SessionId(5),
                    sequence: 42,
                    index: 3,
                    discontinuity_sequence: 1,
                    independent: false,
                    duration: Duration::from_millis(334),
                    program_date_time_ms: 1_800_000_000_000,
                },
                bytes: Bytes::from_static(b"moof and mdat"),
            };
            let signed = SignedMedia::decode(&sign_part(&key, &part).encode()).expect("envelope");
            let Ok(MediaStatement::Part(m)) = signed.statement() else {
                panic!("a part statement");
            };
            trust
                .verify(m.key_id, &signed.statement_bytes, &signed.signature, 1010)
                .expect("verifies");
            assert_eq!((m.index, m.independent, m.byte_len), (3, false, 13));
            let digest: [u8; 32] = Sha256::digest(&segment.bytes).into();
            assert_eq!(
                statement,
                SegmentStatement::from_meta(
                    &segment.meta,
                    algorithm,
                    key.key_id(),
                    segment.bytes.len() as u64,
                    digest
                )
            );
        }
    }
}
