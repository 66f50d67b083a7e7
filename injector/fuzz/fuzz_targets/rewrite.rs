#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| graceful_inject::fuzzing::rewrite(data));
