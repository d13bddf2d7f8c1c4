//! Workloads: the quantised network IR and how it is loaded.
//!
//! - [`ir`]: the network as plain data (shapes, operators, tensors, quantisation);
//! - [`format`]: the TOML file as written (docs/workload-format.md);
//! - [`load`]: validation, generation and calibration, file to IR;
//! - [`generate`]: deterministic seeded tensors;
//! - [`npy`]: .npy files in and out;
//! - [`calibrate`]: output quantisation from observed accumulators;
//! - [`onnx`]: quantised ONNX models (`.onnx`) into the IR;
//! - [`scalesim`]: SCALE-Sim topology CSV files (`.csv`), generated weights.
//! - [`dfp`]: dynamic fixed point from a float network (`[float]` workloads).
//! - [`limits`]: the sizes every loader refuses up front (docs/workload-format.md).

pub mod calibrate;
pub mod dfp;
pub mod format;
pub mod generate;
pub mod ir;
pub mod limits;
pub mod load;
pub mod npy;
pub mod onnx;
pub mod scalesim;

pub use ir::{Activations, Layer, Network, Op, Shape, TensorSource};
pub use load::{LoadOptions, Workload, load_file, load_file_with, load_str, load_str_with};

use std::path::{Path, PathBuf};

use crate::error::{InputError, Result};
use crate::home;

/// Splits `NAME_OR_FILE[:VARIANT]`. A string naming an existing file is never
/// split, so paths containing `:` still work.
pub fn split_variant(spec: &str) -> (&str, Option<&str>) {
    if Path::new(spec).exists() {
        return (spec, None);
    }
    match spec.rsplit_once(':') {
        Some((name, variant)) if !name.is_empty() && !variant.is_empty() => (name, Some(variant)),
        _ => (spec, None),
    }
}

/// Resolves a workload name or path to a file: an existing path is used as
/// is; otherwise `NAME` means `workloads/NAME.toml` in the accsim home
/// (see [`crate::home`]).
pub fn resolve(name_or_path: &str) -> Result<PathBuf, InputError> {
    home::resolve(name_or_path, "workloads", "--workload")
}

/// Loads `NAME_OR_FILE[:VARIANT]`.
pub fn load(spec: &str) -> Result<Workload> {
    let (name, variant) = split_variant(spec);
    let path = resolve(name)?;
    let extension = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase());
    match extension.as_deref() {
        Some("onnx") => {
            if let Some(v) = variant {
                return Err(InputError::new(
                    &path,
                    format!("an ONNX model has no variants (`:{v}`); give the path alone"),
                )
                .into());
            }
            onnx::load_file(&path)
        }
        Some("csv") => scalesim::load_file(&path),
        _ => load_file(&path, variant),
    }
}
