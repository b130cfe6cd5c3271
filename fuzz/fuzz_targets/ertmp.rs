#![no_main]
//! `fuzzing::ertmp` under libFuzzer.
libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzzing::ertmp(data));
