#![no_main]
//! `fuzzing::thumbnail` under libFuzzer.
libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzzing::thumbnail(data));
