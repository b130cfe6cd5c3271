#![no_main]
//! `fuzzing::control_event` under libFuzzer.
libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzzing::control_event(data));
