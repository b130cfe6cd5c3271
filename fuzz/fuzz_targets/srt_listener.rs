#![no_main]
//! `fuzzing::srt_listener` under libFuzzer.
libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzzing::srt_listener(data));
