#![no_main]
//! `fuzzing::video_config` under libFuzzer.
libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzzing::video_config(data));
