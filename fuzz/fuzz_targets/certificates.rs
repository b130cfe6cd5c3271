#![no_main]
//! `fuzzing::certificates` under libFuzzer.
libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzzing::certificates(data));
