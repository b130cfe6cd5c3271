#![no_main]
//! `fuzzing::c2pa_validate` under libFuzzer.
libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzzing::c2pa_validate(data));
