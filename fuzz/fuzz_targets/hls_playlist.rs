#![no_main]
//! `fuzzing::hls_playlist` under libFuzzer.
libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzzing::hls_playlist(data));
