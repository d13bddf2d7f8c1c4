//! One run: a workload (with an input) on an architecture, to a [`Report`].
//!
//! Today the only executor is the reference, so the report holds what the
//! reference knows (MACs, zero-operand MACs, output checksums) and says so in
//! its `engine` field; the simulated engines fill cycles, accesses and energy.

use std::path::{Path, PathBuf};

use ndarray::Array3;

use crate::arch::Arch;
use crate::error::{InputError, Result};
use crate::reference::{self, Execution};
use crate::report::{ArchInfo, LayerReport, Report, SCHEMA_VERSION, TotalReport, WorkloadInfo};
use crate::workload::ir::{Numerics, TensorSource};
use crate::workload::{Activations, Workload, npy};

/// What to run.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// An input .npy file instead of the workload's default input.
    pub input: Option<PathBuf>,
}

/// The result of a run: the report and every tensor computed.
#[derive(Debug, Clone)]
pub struct RunResult {
    pub report: Report,
    pub execution: Execution,
}

/// Reads an input tensor for `workload`: integers of the input's storage
/// type, or floats quantised with the input's quantisation (ONNX
/// QuantizeLinear: round half to even, saturate).
pub fn read_input(workload: &Workload, path: &Path) -> Result<Activations, InputError> {
    let net = &workload.network;
    let s = net.input_shape;
    let dims = [s.channels, s.height, s.width];
    let array = npy::read_npy_any(path)?;
    let values: Vec<i16> = if array.is_float() {
        npy::check_shape(path, &array, &dims)?;
        array
            .to_f64()
            .into_iter()
            .map(|x| net.input_quant.quantize(x) as i16)
            .collect()
    } else {
        let dtype = net.input_quant.dtype();
        npy::read_ints(path, &dims, dtype).map_err(|e| {
            InputError::new(
                path,
                format!("{} (or float32/float64 values to quantise)", e.message),
            )
        })?
    };
    Array3::from_shape_vec(s.dims(), values)
        .map_err(|e| InputError::new(path, format!("cannot shape the input: {e}")))
}

/// Name of the numeric mode for reports.
pub fn numerics_name(n: &Numerics) -> String {
    match n {
        Numerics::Affine { requant } => format!(
            "affine/{}",
            match requant {
                crate::workload::ir::RequantRule::Tflite => "tflite",
                crate::workload::ir::RequantRule::Float => "float",
            }
        ),
        Numerics::DynamicFixedPoint { rounding } => {
            format!("dynamic_fixed_point/{}", rounding.name())
        }
    }
}

/// Runs `workload` on `arch`.
pub fn run(workload: &Workload, arch: &Arch, options: &RunOptions) -> Result<RunResult> {
    let net = &workload.network;
    let execution = match &options.input {
        None => {
            let mut e = Execution::from_parts(
                workload.default_input.clone(),
                workload.default_outputs.clone(),
            );
            e.finish(net);
            e
        }
        Some(path) => reference::run(net, read_input(workload, path)?),
    };

    let mut layers = Vec::with_capacity(net.layers.len());
    for (index, layer) in net.layers.iter().enumerate() {
        let input = execution.tensor(layer.inputs.first().copied().unwrap_or(TensorSource::Input));
        let output = execution.tensor(TensorSource::Layer(index));
        let dims = |s: crate::workload::Shape| [s.channels, s.height, s.width];
        layers.push(LayerReport {
            index,
            name: layer.name.clone(),
            op: layer.op.kind().to_string(),
            input_shape: dims(layer.input_shape),
            output_shape: dims(layer.output_shape),
            weights: layer.weight_count(),
            macs: layer.macs(),
            zero_macs: reference::zero_operand_macs(layer, input),
            output_dtype: layer.output_quant.dtype().numpy_name().to_string(),
            output_crc32: format!(
                "{:08x}",
                reference::checksum(output, layer.output_quant.dtype())
            ),
        });
    }
    let total = TotalReport {
        name: "total".to_string(),
        weights: layers.iter().map(|l| l.weights).sum(),
        macs: layers.iter().map(|l| l.macs).sum(),
        zero_macs: layers.iter().map(|l| l.zero_macs).sum(),
    };
    let s = net.input_shape;
    let report = Report {
        schema_version: SCHEMA_VERSION,
        accsim_version: env!("CARGO_PKG_VERSION").to_string(),
        workload: WorkloadInfo {
            name: net.name.clone(),
            file: workload.path.display().to_string(),
            variant: net.variant.clone(),
            description: net.description.clone(),
            numerics: numerics_name(&net.numerics),
            input_shape: [s.channels, s.height, s.width],
            input: options
                .input
                .as_ref()
                .map_or_else(|| "default".to_string(), |p| p.display().to_string()),
        },
        arch: ArchInfo {
            name: arch.name.clone(),
            file: arch.path.display().to_string(),
            description: arch.description.clone(),
        },
        engine: "reference".to_string(),
        layers,
        total,
        bit_exact: false,
    };
    Ok(RunResult { report, execution })
}
