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
//!
//! Parts are signed with a delegated key ([`PartKeys`]): for every stream, rendition and
//! run of [`PART_KEY_SEGMENTS`] segments of one session, a fresh Ed25519 key vouched for by
//! this ingest's certified key (`certs::signing::PartKey`), its delegation published on the
//! same topic before the first part it signs, and again before the first part of every
//! segment of the run (a node that joined or reconnected meanwhile learns it within a
//! segment; edges keep one copy). Viewers check every part they play: a 64-byte Ed25519
//! signature per part instead of ML-DSA-65's 3,309 bytes keeps that under 3 % of a 360p
//! rendition's bytes. Segments keep the certified key's signature (docs/security.md).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use certs::signing::{PartKey, SigningKey};
use domain::topics::Topic;
use domain::wire::{
    PartStatement, SegmentStatement, SignedMedia, SignedThumbnail, ThumbnailStatement,
};
use domain::{Part, RenditionName, Segment, StreamName, Thumbnail};
use plumbing::Qos;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::outbox::Outgoing;
use super::snapshot::{HeldSegment, SignedThumbnailPush};
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

/// Signs `thumbnail` with `key`: the envelope that travels in its push and is served as
/// `thumbnail.jpg.sig`.
pub(crate) fn sign_thumbnail(key: &SigningKey, thumbnail: &Thumbnail) -> SignedThumbnail {
    let statement = ThumbnailStatement::from_meta(
        &thumbnail.meta,
        key.algorithm(),
        key.key_id(),
        thumbnail.bytes.len() as u64,
        Sha256::digest(&thumbnail.bytes).into(),
    );
    SignedThumbnail::sign(&statement, |bytes| key.sign(bytes))
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

/// Signs `part` with the delegated `key`: the envelope that travels over MQTT.
pub(crate) fn sign_delegated_part(key: &PartKey, part: &Part) -> SignedMedia {
    let statement = PartStatement::from_meta(
        &part.meta,
        key.algorithm(),
        key.key_id(),
        part.bytes.len() as u64,
        Sha256::digest(&part.bytes).into(),
    )
    .encode();
    let signature = key.sign(&statement);
    SignedMedia::new(statement, signature)
}

/// Segments one delegated part key covers: about ten seconds at the default 2 s target, so
/// a viewer fetches one delegation per ten seconds of parts.
pub(crate) const PART_KEY_SEGMENTS: u64 = 5;

/// Most lanes (stream, rendition) whose part key is kept; past that all are forgotten and
/// made again as parts come (a new delegation each, nothing lost).
const MAX_PART_KEY_LANES: usize = 4096;

/// The signing thread's part keys, one per stream and rendition: the run being signed.
#[derive(Debug, Default)]
pub(crate) struct PartKeys {
    keys: HashMap<(StreamName, RenditionName), PartKey>,
}

impl PartKeys {
    /// The key that signs `part`, and the delegation to publish before the part's
    /// statement: a new key's when the part is outside the current run (or of another
    /// session), the current one's again at the first part of each segment.
    pub(crate) fn for_part(
        &mut self,
        signer: &SigningKey,
        part: &Part,
    ) -> Result<(&PartKey, Option<Vec<u8>>), certs::CertsError> {
        let m = &part.meta;
        let lane = (m.stream.clone(), m.rendition.clone());
        let current = self
            .keys
            .get(&lane)
            .is_some_and(|k| k.covers(&m.stream, m.session, &m.rendition, m.sequence));
        let announce = if current {
            (m.index == 0).then(|| self.keys.get(&lane).map(|k| k.envelope().to_vec()))
        } else {
            let last = m.sequence.saturating_add(PART_KEY_SEGMENTS - 1);
            let key =
                signer.delegate_parts(&m.stream, m.session, &m.rendition, m.sequence, last)?;
            let envelope = key.envelope().to_vec();
            if self.keys.len() >= MAX_PART_KEY_LANES {
                self.keys.clear();
            }
            self.keys.insert(lane.clone(), key);
            Some(Some(envelope))
        };
        let key = self.keys.get(&lane).ok_or(certs::CertsError::Randomness)?;
        Ok((key, announce.flatten()))
    }
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
    /// A thumbnail: signed, then handed back to the distributor to push.
    Thumbnail(Thumbnail),
}

/// Starts the signing thread: it takes segments and parts from `jobs` until the channel
/// closes, and hands each envelope to `outbox` (dropping it, with a warning, if the outbox
/// is full: the edges then hold that segment for a while and skip it, they never serve it
/// unsigned). Thumbnails go back to the distributor, signed, through `thumbnails`.
pub(crate) fn spawn(
    key: Arc<SigningKey>,
    mut jobs: mpsc::UnboundedReceiver<SignJob>,
    outbox: mpsc::Sender<Outgoing>,
    thumbnails: mpsc::UnboundedSender<Arc<SignedThumbnailPush>>,
    metrics: IngestMetrics,
) -> JoinHandle<()> {
    tokio::task::spawn_blocking(move || {
        let mut part_keys = PartKeys::default();
        while let Some(job) = jobs.blocking_recv() {
            let started = Instant::now();
            let job = match job {
                SignJob::Thumbnail(thumbnail) => {
                    let envelope = Bytes::from(sign_thumbnail(&key, &thumbnail).encode());
                    // The distributor is gone only at shutdown: nothing left to push to.
                    let _ = thumbnails.send(Arc::new(SignedThumbnailPush {
                        thumbnail,
                        envelope,
                    }));
                    continue;
                }
                job => job,
            };
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
                    let m = &part.meta;
                    let envelope = match part_keys.for_part(&key, part) {
                        Ok((part_key, announce)) => {
                            if let Some(delegation) = announce {
                                publish(
                                    &outbox,
                                    delegation.into(),
                                    &m.stream,
                                    &m.rendition,
                                    "part key",
                                );
                            }
                            sign_delegated_part(part_key, part).encode()
                        }
                        // No fresh key (the OS generator failed): the certified key signs
                        // it, which edges and viewers take as well.
                        Err(e) => {
                            tracing::warn!(error = %e, "no part key; the part is signed with the ingest key");
                            sign_part(&key, part).encode()
                        }
                    };
                    metrics.part_signed(started.elapsed());
                    (
                        envelope.into(),
                        &m.stream,
                        &m.rendition,
                        format!("{}.{}", m.sequence, m.index),
                    )
                }
                SignJob::Thumbnail(_) => continue,
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
            // A thumbnail: its own statement, over its bytes, by the same key; never
            // readable as a segment's or a part's.
            let thumbnail = Thumbnail {
                meta: domain::ThumbnailMeta {
                    stream: segment.meta.stream.clone(),
                    session: SessionId(5),
                    sequence: 42,
                    captured_ms: 1_800_000_000_000,
                    width: 320,
                    height: 180,
                },
                bytes: Bytes::from_static(b"\xff\xd8\xff a jpeg"),
            };
            let signed = SignedThumbnail::decode(&sign_thumbnail(&key, &thumbnail).encode())
                .expect("envelope");
            let t = signed.statement().expect("a thumbnail statement");
            trust
                .verify(t.key_id, &signed.statement_bytes, &signed.signature, 1010)
                .expect("verifies");
            assert_eq!(t.meta(), thumbnail.meta);
            assert_eq!(t.digest, <[u8; 32]>::from(Sha256::digest(&thumbnail.bytes)));
            assert!(SegmentStatement::decode(&signed.statement_bytes).is_err());
            assert!(PartStatement::decode(&signed.statement_bytes).is_err());
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

    fn part(sequence: u64, index: u32, session: u64) -> Part {
        Part {
            meta: domain::PartMeta {
                stream: StreamName::new("cam1").expect("valid"),
                rendition: RenditionName::new("360p").expect("valid"),
                session: SessionId(session),
                sequence,
                index,
                discontinuity_sequence: 0,
                independent: index == 0,
                duration: Duration::from_millis(333),
                program_date_time_ms: 1_800_000_000_000,
            },
            bytes: Bytes::from(format!("part {sequence}.{index}")),
        }
    }

    #[test]
    fn parts_are_signed_by_a_key_delegated_per_run_and_announced_per_segment() {
        let algorithm = SignatureAlgorithm::MlDsa65;
        let root = RootKey::generate(algorithm).expect("root");
        let key = SigningKey::generate(algorithm).expect("key");
        let cert = root
            .certify(
                key.public_key(),
                NodeId::new("ingest1").expect("valid"),
                Validity::starting_at(1000, Duration::from_secs(60)),
            )
            .expect("certified");
        let mut trust = TrustStore::new(root.public_key());
        trust
            .add_certificate(&cert.encode(), 1010)
            .expect("admitted");
        let mut keys = PartKeys::default();
        let mut announced = Vec::new();
        let mut delegated = Vec::new();
        for (sequence, index, session) in [
            (10, 0, 5),
            (10, 1, 5),
            (11, 0, 5),
            (14, 2, 5),
            (15, 0, 5),
            (15, 1, 5),
            (16, 0, 6),
        ] {
            let p = part(sequence, index, session);
            let (part_key, announce) = keys.for_part(&key, &p).expect("a part key");
            delegated.push(part_key.key_id());
            if let Some(bytes) = &announce {
                trust
                    .admit_delegation(bytes, 1010)
                    .expect("a delegation edges admit");
                announced.push((sequence, index));
            }
            let signed = sign_delegated_part(part_key, &p);
            let statement = signed.statement().expect("statement");
            let MediaStatement::Part(m) = statement else {
                panic!("a part statement");
            };
            let scope = certs::signing::PartScope {
                stream: &m.stream,
                session: m.session,
                rendition: &m.rendition,
                sequence: m.sequence,
            };
            trust
                .verify_part(
                    m.key_id,
                    scope,
                    &signed.statement_bytes,
                    &signed.signature,
                    1010,
                )
                .expect("verifies");
        }
        // A new key for 10..=14, again for 15..=19, and for the next session.
        assert_eq!(delegated[0], delegated[3]);
        assert_ne!(delegated[3], delegated[4]);
        assert_eq!(delegated[4], delegated[5]);
        assert_ne!(delegated[5], delegated[6]);
        // Announced before the first part of a run and at every segment's first part.
        assert_eq!(announced, [(10, 0), (11, 0), (15, 0), (16, 0)]);
    }
}
