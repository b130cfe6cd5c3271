//! Domain types shared by every sealcast role. Pure: no sockets, no disks, and no clock
//! read by its rules (the roles' one wall clock, [`time::WallClock`], is defined here so
//! that there is exactly one).
//!
//! Words used one way throughout (docs/architecture.md, glossary):
//! - a **rung** is one entry of the ladder, what the ingest is told to make ([`Rung`]: a
//!   name and either the source passed through or an encoding with its height and
//!   bitrates); rungs are encoded, planned for a source, shed when encoding falls behind;
//! - a **rendition** is what is published from a rung: its segments and parts, its
//!   description ([`RenditionInfo`]: size, frame rate, codecs, init segment) and its
//!   playlist, what edges hold and viewers pick. One rung makes one rendition, named alike
//!   ([`RenditionName`]);
//! - a **statement** is what a key signs ([`wire`]): about a segment, a part, a control
//!   event or a presence. Not a playlist: HLS calls its playlists manifests, we do not.
//!
//! - [`ids`]: validated names that cross wires (stream, rendition, node, session).
//! - [`ladder`]: the bitrate ladder and how it is planned for one source.
//! - [`segment`]: what a segment is, what a rendition is, measured bitrates.
//! - [`thumbnail`]: a still picture of a live stream (a small JPEG), signed like the media.
//! - [`live_event`]: the events an ingest sends to edges about a live stream.
//! - [`wire`]: the wire format of everything the cluster signs (segment and part
//!   statements, control events, presences): one strict reader, one signed envelope, one
//!   file per statement.
//! - [`hls`]: every playlist, rendered: master, media (MPEG-TS and CMAF), the low-latency
//!   window with its parts and blocking reload, recordings.
//! - [`paths`]: the public URL layout, built and parsed in one place.
//! - [`topics`]: every MQTT topic of the control plane, typed.
//! - [`presence`]: what a node announces on its presence topic.
//! - [`load`]: the load report every node sends for the dashboard.
//! - [`push_protocol`]: the internal push API between ingest and broadcast nodes.
//! - [`broker`]: the MQTT broker's address.
//! - [`c2pa`]: C2PA 2.3 live video (init manifests, VSI `emsg`s), formats only.
//! - [`client`]: who a client is for per-client caps (an IPv4 address, an IPv6 /64).
//! - [`time`]: unix seconds and milliseconds, and the one wall clock roles read them from.
//! - [`error`]: the crate's one error enum.
pub mod broker;
pub mod c2pa;
pub mod client;
pub mod error;
pub mod hls;
pub mod ids;
pub mod ladder;
pub mod live_event;
pub mod load;
pub mod paths;
pub mod presence;
pub mod push_protocol;
pub mod segment;
pub mod thumbnail;
pub mod time;
pub mod topics;
pub mod wire;

pub use client::ClientGroup;
pub use error::DomainError;
pub use ids::{NodeId, RenditionName, SessionId, StreamName};
pub use ladder::{Ladder, PlannedRung, Rung, RungKind};
pub use live_event::LiveEvent;
pub use segment::{
    BitrateMeter, Codecs, InitSegment, Part, PartMeta, RenditionInfo, Segment, SegmentFormat,
    SegmentMeta,
};
pub use thumbnail::{Thumbnail, ThumbnailMeta, MAX_THUMBNAIL_BYTES};
