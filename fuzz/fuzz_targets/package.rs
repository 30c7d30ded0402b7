//! cargo-fuzz target: `runner::fuzz::package`.
#![no_main]

libfuzzer_sys::fuzz_target!(init: runner::fuzz::init(), |data: &[u8]| {
    runner::fuzz::package(data);
});
