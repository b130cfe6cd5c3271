#![no_main]
//! `fuzzing::names` under libFuzzer.
libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzzing::names(data));
