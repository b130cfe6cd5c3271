#![no_main]
//! `fuzzing::aac` under libFuzzer.
libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzzing::aac(data));
