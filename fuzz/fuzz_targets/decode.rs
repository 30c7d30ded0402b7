//! cargo-fuzz target: `runner::fuzz::decode`.
#![no_main]

libfuzzer_sys::fuzz_target!(init: runner::fuzz::init(), |data: &[u8]| {
    runner::fuzz::decode(data);
});
