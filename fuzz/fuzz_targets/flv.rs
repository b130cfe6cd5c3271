#![no_main]
//! `fuzzing::flv` under libFuzzer.
libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzzing::flv(data));
