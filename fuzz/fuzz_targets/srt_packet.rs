#![no_main]
//! `fuzzing::srt_packet` under libFuzzer.
libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzzing::srt_packet(data));
