//! The ONNX importer (`accsim::workload::onnx::load_bytes_with`) on
//! arbitrary bytes, with the fuzzing limits (`accsim_fuzz::LIMITS`).
//!
//! Invariant: no panic, no hang, no absurd allocation whatever dims the
//! graph or its initializers claim; bad input is an `Error::Input` naming
//! the model file.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = accsim_fuzz::workload_path("fuzz.onnx");
    let result = accsim::workload::onnx::load_bytes_with(data, &path, &accsim_fuzz::options());
    accsim_fuzz::expect_input_error(result, &path);
});
