#![no_main]
//! `fuzzing::manifest` under libFuzzer.
libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzzing::manifest(data));
