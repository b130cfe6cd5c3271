#![no_main]
//! `fuzzing::push_request` under libFuzzer.
libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzzing::push_request(data));
