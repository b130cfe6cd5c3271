#![no_main]
//! `fuzzing::playback_token` under libFuzzer.
libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzzing::playback_token(data));
