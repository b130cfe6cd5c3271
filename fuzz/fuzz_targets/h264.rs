#![no_main]
//! `fuzzing::h264` under libFuzzer.
libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzzing::h264(data));
