//! The ONNX importer (`accsim::workload::onnx::load_bytes_with`) on
//! arbitrary bytes, with the fuzzing limits (`accsim_fuzz::LIMITS`).
//!
//! Invariant: no panic, no hang, no absurd allocation whatever dims the
//! graph or its initializers claim, in loading or in running the loaded
//! model on its default input; bad input is an `Error::Input` naming the
//! model file.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = accsim_fuzz::workload_path("fuzz.onnx");
    let result = accsim::workload::onnx::load_bytes_with(data, &path, &accsim_fuzz::options());
    // Loading does not run the model; run it here, as loading did before,
    // so the reference executor stays under the fuzzer (an integer Clip
    // with min > max was found there).
    if let Ok(w) = &result {
        std::hint::black_box(w.reference_outputs());
    }
    accsim_fuzz::expect_input_error(result, &path);
});
