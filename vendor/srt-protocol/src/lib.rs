// sealcast: a path dependency is built without capped lints, so what newer compilers say
// about upstream's code (unused parsers, elided lifetimes) is allowed here (FORK.md).
#![allow(unknown_lints, dead_code, mismatched_lifetime_syntaxes)]
pub mod access;
pub mod connection;
pub mod listener;
pub mod options;
pub mod packet;
pub mod protocol;
pub mod settings;
pub mod statistics;
