#![no_main]
//! `fuzzing::ice_tcp_framing` under libFuzzer.
libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzzing::ice_tcp_framing(data));
