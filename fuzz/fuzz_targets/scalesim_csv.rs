//! The SCALE-Sim topology reader (`accsim::workload::scalesim::load_str`):
//! CSV to a workload, then the workload loader, with the fuzzing limits.
//!
//! Invariant: no panic, no hang; bad input is an `Error::Input` naming the
//! CSV file.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = accsim_fuzz::workload_path("fuzz.csv");
    let result = accsim::workload::scalesim::load_str(text, &path, &accsim_fuzz::options());
    accsim_fuzz::expect_input_error(result, &path);
});
