#![no_main]
//! `fuzzing::presence_load` under libFuzzer.
libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzzing::presence_load(data));
