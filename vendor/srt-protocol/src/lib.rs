// sealcast: a path dependency is built without capped lints, so what newer compilers say
// about upstream's code (unused parsers, elided lifetimes) is allowed here (FORK.md).
#![allow(unknown_lints, dead_code, mismatched_lifetime_syntaxes)]

/// sealcast: present only in sealcast's fork (FORK.md). A crate of the workspace names it,
/// so a build that silently took the crates.io release instead of the fork would not
/// compile.
pub const SEALCAST_FORK: &str = "srt-protocol 0.4.4, sealcast fork (vendor/srt-protocol/FORK.md)";

pub mod access;
pub mod connection;
pub mod listener;
pub mod options;
pub mod packet;
pub mod protocol;
pub mod settings;
pub mod statistics;
