#![no_main]
//! `fuzzing::cookie_host` under libFuzzer.
libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzzing::cookie_host(data));
