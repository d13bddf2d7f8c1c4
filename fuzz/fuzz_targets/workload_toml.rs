//! The workload TOML loader (`accsim::workload::load_str_with`) on
//! arbitrary text, with the fuzzing limits (`accsim_fuzz::LIMITS`).
//!
//! Invariant: no panic, no hang, no absurd allocation; bad input is an
//! `Error::Input` naming the workload file. Loading also calibrates, so this
//! drives the reference executor on every network the loader accepts.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = accsim_fuzz::workload_path("fuzz.toml");
    let options = accsim_fuzz::options();
    // A variant named `v` is selected when the text defines one.
    let variant = text.contains("[variants.v").then_some("v");
    let result = accsim::workload::load_str_with(text, &path, variant, &options);
    accsim_fuzz::expect_input_error(result, &path);
});
