#![no_main]
//! `fuzzing::whip_demux` under libFuzzer.
libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzzing::whip_demux(data));
