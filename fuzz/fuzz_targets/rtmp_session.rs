#![no_main]
//! `fuzzing::rtmp_session` under libFuzzer.
libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzzing::rtmp_session(data));
