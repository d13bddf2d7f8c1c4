//! What every accsim fuzz target checks, shared.
//!
//! The loaders' contract (src/error.rs, docs/testing.md): on any input they
//! return, without panicking, hanging or allocating without bound, either a
//! value or an [`accsim::Error::Input`] naming the file. A target calls a
//! loader and hands the result to [`expect_input_error`]; libFuzzer turns a
//! panic, an abort (an allocation past `-malloc_limit_mb`) or a slow input
//! (`-timeout`) into a finding.

use std::path::{Path, PathBuf};

use accsim::workload::LoadOptions;
use accsim::workload::limits::Limits;

/// Limits for fuzzing: the same checks as [`Limits::DEFAULT`] with smaller
/// numbers, so that every input the loader accepts also loads in well under
/// a millisecond and the fuzzer spends its time on the checks, not on
/// calibrating large networks. (The default numbers themselves are covered
/// by tests/limits.rs.) Profiles of `scalesim_csv` and `workload_toml`
/// showed most of their time in the reference convolutions and fixed-point
/// calibration of the largest accepted networks; 2^18 operations (a
/// 64-channel 3x3 convolution on a 16x16 plane) still reach every path of
/// the executor.
pub const LIMITS: Limits = Limits {
    max_tensor_elements: 1 << 14,
    max_network_elements: 1 << 16,
    max_network_ops: 1 << 18,
    max_layers: 256,
};

/// Load options with [`LIMITS`].
pub fn options() -> LoadOptions {
    LoadOptions {
        limits: LIMITS,
        ..LoadOptions::default()
    }
}

/// Where fuzzed text pretends to live: beside the shipped workloads, so that
/// relative `file = "..."` references reach real .npy files.
pub fn workload_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("workloads")
        .join(name)
}

/// Accepts `Ok` or an input error that names `file`; panics on anything else.
pub fn expect_input_error<T>(result: accsim::Result<T>, file: &Path) {
    match result {
        Ok(_) => {}
        Err(accsim::Error::Input(e)) => {
            assert!(
                !e.message.is_empty(),
                "an input error without a message: {e:?}"
            );
            assert!(
                e.file == file,
                "input error names {} rather than the fuzzed file {}: {e}",
                e.file.display(),
                file.display()
            );
        }
        Err(other) => panic!("a loader returned a non-input error: {other}"),
    }
}
