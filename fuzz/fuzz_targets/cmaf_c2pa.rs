#![no_main]
//! `fuzzing::cmaf_c2pa` under libFuzzer.
libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzzing::cmaf_c2pa(data));
