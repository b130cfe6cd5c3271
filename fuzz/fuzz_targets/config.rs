#![no_main]
//! `fuzzing::config` under libFuzzer.
libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzzing::config(data));
