#![no_main]
//! `fuzzing::whip_offer` under libFuzzer.
libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzzing::whip_offer(data));
