#![no_main]
//! `fuzzing::part_key` under libFuzzer.
libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzzing::part_key(data));
