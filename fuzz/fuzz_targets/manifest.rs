#![no_main]
//! `fuzzing::statement` under libFuzzer.
libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzzing::statement(data));
