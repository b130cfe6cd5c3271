#![no_main]
//! `fuzzing::mpegts` under libFuzzer.
libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzzing::mpegts(data));
