//! One run: a workload (with an input) on an architecture, to a [`Report`].
//!
//! The simulated engine computes every layer on the modelled machine; unless
//! checking is turned off, each layer's output is compared with the
//! reference executor's as soon as it is computed, and the report says
//! `bit_exact: true` only when all matched. Every cycle, access and energy
//! figure in the report comes from the engine's counters (or, for layers on
//! the NVDLA back-end, from its published table; see [`system`]).

mod system;

use std::path::{Path, PathBuf};

use ndarray::Array3;

use crate::arch::Arch;
use crate::cost::energy;
use crate::engine::{self, EngineRun, LayerStats};
use crate::error::{InputError, Result};
use crate::numerics::precision::PrecisionAssignment;
use crate::reference::precision::PrecisionNetwork;
use crate::reference::{self, Execution};
use crate::report::{
    ArchInfo, CycleSplit, LayerReport, LevelTotals, Measured, Report, SCHEMA_VERSION, Throughput,
    TotalReport, WorkloadInfo,
};
use crate::workload::ir::{Layer, Network, Numerics, TensorSource};
use crate::workload::{Activations, Workload, npy};

/// What to run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// An input .npy file instead of the workload's default input.
    pub input: Option<PathBuf>,
    /// Compare every layer with the reference executor (default true).
    pub check: bool,
    /// Record a cycle trace.
    pub trace: Option<crate::trace::TraceOptions>,
    /// With an FFE: tap its activations after fixed layer M (default: all N).
    pub ffe_tap: Option<u32>,
    /// With an FFE or NVDLA back-end: frames in the simulated stream
    /// (default: the arch's `[system] stream_frames`).
    pub stream_frames: Option<u32>,
    /// Run the layers at these MAC precisions (docs/precision.md; 16-bit
    /// dynamic-fixed-point networks on a PE array only). The reference the
    /// engine is checked against then runs at the same precisions.
    pub precision: Option<PrecisionAssignment>,
    /// `Timing::Cycle` (`--engine cycle`): step every component every cycle
    /// beside the event scheduler and check that they agree.
    pub timing: crate::sim::Timing,
    /// How each array layer's schedule is chosen (`--objective`,
    /// `--schedule FILE`; docs/mapping.md, "The search").
    pub search: crate::engine::ScheduleSearchOptions,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            input: None,
            check: true,
            trace: None,
            ffe_tap: None,
            stream_frames: None,
            precision: None,
            timing: crate::sim::Timing::Event,
            search: crate::engine::ScheduleSearchOptions::default(),
        }
    }
}

/// The result of a run: the report, every tensor computed, and the engine's
/// raw per-layer statistics.
#[derive(Debug, Clone)]
pub struct RunResult {
    pub report: Report,
    pub execution: Execution,
    pub engine: EngineRun,
    /// The system view (FFE stages, back-end, stream), for FFE or NVDLA machines.
    pub system: Option<crate::engine::system::SystemRun>,
}

/// Reads an input tensor for `workload`: integers of the input's storage
/// type, or floats quantised with the input's quantisation (ONNX
/// QuantizeLinear: round half to even, saturate).
pub fn read_input(workload: &Workload, path: &Path) -> Result<Activations, InputError> {
    let net = &workload.network;
    let s = net.input_shape;
    let dims = [s.channels, s.height, s.width];
    let array = npy::read_npy_any(path)?;
    if net.input_quant == crate::workload::ir::FLOAT32_WORDS {
        return read_float32_input(path, &array, s);
    }
    let values: Vec<i16> = if array.is_float() {
        npy::check_shape(path, &array, &dims)?;
        let reals = array.to_f64();
        if let Some(flat) = reals.iter().position(|x| !x.is_finite()) {
            return Err(InputError::new(
                path,
                format!(
                    "element {flat} (index {:?} of shape {:?}) is {}; valid: finite values \
                     (float inputs are quantised, and NaN or infinity has no quantised value)",
                    unravel(flat, array.shape()),
                    array.shape(),
                    reals[flat]
                ),
            ));
        }
        reals
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

/// A float32 network input (a dynamically quantised ONNX model's), stored
/// as words (`ir::FLOAT32_WORDS`, `[2C, H, W]` for `shape`): the `.npy`
/// holds `[C, H, W]` floats, converted to float32 (a float64 file rounds
/// once).
fn read_float32_input(
    path: &Path,
    array: &npy::NpyArray,
    shape: crate::workload::Shape,
) -> Result<Activations, InputError> {
    let dims = [shape.channels / 2, shape.height, shape.width];
    if !array.is_float() {
        return Err(InputError::new(
            path,
            "the model's input is float32 (dynamic quantisation); valid: a float32 or float64 .npy",
        ));
    }
    npy::check_shape(path, array, &dims)?;
    let reals = array.to_f64();
    if let Some(flat) = reals.iter().position(|x| !x.is_finite()) {
        return Err(InputError::new(
            path,
            format!("element {flat} is {}; valid: finite values", reals[flat]),
        ));
    }
    let values = ndarray::Array3::from_shape_vec(
        (dims[0], dims[1], dims[2]),
        reals.into_iter().map(|v| v as f32).collect(),
    )
    .map_err(|e| InputError::new(path, format!("cannot shape the input: {e}")))?;
    Ok(crate::reference::dynamic::words(&values))
}

/// `--trace-layers` must name layers of the network: an index past the end
/// would select nothing and write an empty trace.
fn check_trace_layers(net: &Network, layers: &[usize]) -> Result<(), InputError> {
    let n = net.layers.len();
    let Some(&bad) = layers.iter().find(|&&i| i >= n) else {
        return Ok(());
    };
    const SHOWN: usize = 16;
    let names: Vec<String> = net
        .layers
        .iter()
        .take(SHOWN)
        .enumerate()
        .map(|(i, l)| format!("{i} {}", l.name))
        .collect();
    Err(InputError::new(
        "--trace-layers",
        format!(
            "layer {bad} does not exist: `{}` has {n} layers; valid: indices 0 to {} ({}{})",
            net.name,
            n.saturating_sub(1),
            names.join(", "),
            if n > SHOWN { ", ..." } else { "" }
        ),
    ))
}

/// The multi-index of row-major element `flat` in an array of `shape`.
fn unravel(mut flat: usize, shape: &[usize]) -> Vec<usize> {
    let mut index = vec![0; shape.len()];
    for (i, &n) in shape.iter().enumerate().rev() {
        let n = n.max(1);
        index[i] = flat % n;
        flat /= n;
    }
    index
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
    if let Some(layers) = options.trace.as_ref().and_then(|t| t.layers.as_ref()) {
        check_trace_layers(net, layers)?;
    }
    let input = match &options.input {
        None => workload.default_input.clone(),
        Some(path) => read_input(workload, path)?,
    };
    let reference_outputs = reference_outputs(workload, options, &input)?;
    if arch.ffe.is_some() || arch.backend != crate::arch::Backend::PeArray {
        if options.precision.is_some() {
            return Err(InputError::new(
                "--precision",
                format!(
                    "arch `{}` has an FFE or a table-driven back-end; valid: a precision \
                     assignment only with a PE-array architecture",
                    arch.name
                ),
            )
            .into());
        }
        return system::run(workload, arch, options, input, reference_outputs);
    }
    refuse_system_flags(arch, options)?;
    let engine_options = engine::EngineOptions {
        trace: options.trace.clone(),
        precision: options.precision.clone(),
        timing: options.timing,
        search: options.search.clone(),
        ..engine::EngineOptions::default()
    };
    let engine_run = engine::run_with(
        net,
        arch,
        &input,
        reference_outputs.as_deref(),
        &engine_options,
    )?;
    let execution = Execution::from_parts(input, engine_run.outputs.clone());
    let layers = layer_reports(net, &execution, &engine_run, arch);
    let total = pe_array_total(&layers, &engine_run, arch);
    let throughput = pe_array_throughput(&engine_run, arch, &total);
    let report = Report {
        schema_version: SCHEMA_VERSION,
        accsim_version: env!("CARGO_PKG_VERSION").to_string(),
        workload: workload_info(workload, options),
        arch: arch_info(arch),
        engine: format!("pe_array ({} weights)", arch.pe_array.weight_store.name()),
        precision: options.precision.as_ref().map(ToString::to_string),
        layers,
        total,
        bit_exact: engine_run.checked && !net.layers.is_empty(),
        simulated_layers: net.layers.len(),
        reference_layers: 0,
        throughput: Some(throughput),
        area_mm2: Some(crate::cost::area::pe_array_mm2(arch)),
        area: Some(crate::report::AreaReport {
            total_mm2: crate::cost::area::pe_array_mm2(arch),
            ffe_mm2: None,
            ffe: None,
            backend_mm2: crate::cost::area::pe_array_mm2(arch),
            backend_source: "pe_array_model".to_string(),
        }),
        system: None,
    };
    Ok(RunResult {
        report,
        execution,
        engine: engine_run,
        system: None,
    })
}

/// The reference executor's outputs to check against (`None` when
/// checking is off): at the precision assignment when there is one, else
/// computed while loading for the default input, else for `input`.
fn reference_outputs(
    workload: &Workload,
    options: &RunOptions,
    input: &Activations,
) -> Result<Option<Vec<Activations>>> {
    let net = &workload.network;
    let at_precision = options
        .precision
        .as_ref()
        .map(|a| PrecisionNetwork::new(net, a))
        .transpose()
        .map_err(|message| InputError::new("--precision", message))?;
    Ok(match (&options.input, options.check) {
        (_, false) => None,
        (_, true) if at_precision.is_some() => at_precision
            .as_ref()
            .map(|p| p.run(input.clone()).into_parts().1),
        (None, true) => {
            let mut e = Execution::from_parts(input.clone(), workload.default_outputs.clone());
            e.finish(net);
            Some(e.into_parts().1)
        }
        (Some(_), true) => Some(reference::run(net, input.clone()).into_parts().1),
    })
}

/// `--ffe-tap` and `--frames` need an FFE or an NVDLA back-end.
fn refuse_system_flags(arch: &Arch, options: &RunOptions) -> Result<()> {
    for (flag, given, needs) in [
        ("--ffe-tap", options.ffe_tap.is_some(), "an [ffe]"),
        (
            "--frames",
            options.stream_frames.is_some(),
            "an [ffe] or an NVDLA [backend]",
        ),
    ] {
        if given {
            return Err(InputError::new(
                flag,
                format!(
                    "arch `{}` is a PE array alone; valid: only with an architecture that has {needs}",
                    arch.name
                ),
            )
            .into());
        }
    }
    Ok(())
}

/// One report row per layer of a PE-array run.
fn layer_reports(
    net: &Network,
    execution: &Execution,
    engine_run: &EngineRun,
    arch: &Arch,
) -> Vec<LayerReport> {
    let rows = net.layers.iter().enumerate().map(|(index, layer)| {
        let stats = engine_run.layers.get(index);
        LayerReport {
            measured: stats.map(|s| measured(s, arch)),
            engine: Some("pe_array".to_string()),
            values: Some(crate::report::SIMULATED.to_string()),
            clock_mhz: Some(arch.clock_mhz),
            tops: stats.and_then(|s| layer_tops(layer.macs(), s.cycles.total, arch.clock_mhz)),
            tops_per_w: stats.and_then(|s| {
                layer_tops_per_w(layer.macs(), energy::picojoules(s, &arch.energy).total)
            }),
            ..layer_row(index, layer, execution, stats)
        }
    });
    rows.collect()
}

/// A layer's report row as every engine fills it: the layer's shape and
/// counts, its output's checksum, and the zero-operand MACs and precision
/// from `stats` (the engine's record of a layer it ran on the PE array;
/// otherwise the reference executor's count). What only the engine that ran
/// the layer knows (cycles, energy, which engine) is left empty.
fn layer_row(
    index: usize,
    layer: &Layer,
    execution: &Execution,
    stats: Option<&LayerStats>,
) -> LayerReport {
    let layer_input =
        execution.tensor(layer.inputs.first().copied().unwrap_or(TensorSource::Input));
    let output = execution.tensor(TensorSource::Layer(index));
    let dims = |s: crate::workload::Shape| [s.channels, s.height, s.width];
    LayerReport {
        index,
        name: layer.name.clone(),
        op: layer.op.kind().to_string(),
        input_shape: dims(layer.input_shape),
        output_shape: dims(layer.output_shape),
        weights: layer.weight_count(),
        macs: layer.macs(),
        zero_macs: stats.filter(|s| s.mac_mode.is_some()).map_or_else(
            || reference::zero_operand_macs(layer, layer_input),
            |s| s.zero_macs,
        ),
        precision: stats.and_then(|s| {
            s.mac_mode.map(|m| {
                if s.float32_macs {
                    "float32".to_string()
                } else {
                    m.to_string()
                }
            })
        }),
        output_dtype: layer.output_quant.dtype().numpy_name().to_string(),
        output_crc32: format!(
            "{:08x}",
            reference::checksum(output, layer.output_quant.dtype())
        ),
        measured: None,
        engine: None,
        values: None,
        clock_mhz: None,
        tops: None,
        tops_per_w: None,
        ffe: None,
    }
}

/// The total row of a PE-array run: counts and energies summed.
fn pe_array_total(layers: &[LayerReport], engine_run: &EngineRun, arch: &Arch) -> TotalReport {
    let mut sum = LayerStats::default();
    for s in &engine_run.layers {
        accumulate_stats(&mut sum, s);
    }
    sum.pes = u64::from(arch.pe_array.rows * arch.pe_array.cols);
    TotalReport {
        name: "total".to_string(),
        weights: layers.iter().map(|l| l.weights).sum(),
        macs: layers.iter().map(|l| l.macs).sum(),
        zero_macs: layers.iter().map(|l| l.zero_macs).sum(),
        measured: Some(total_measured(&sum, &engine_run.layers, arch)),
    }
}

/// The run's throughput figures, in the array's clock.
fn pe_array_throughput(engine_run: &EngineRun, arch: &Arch, total: &TotalReport) -> Throughput {
    let cycles = engine_run.total_cycles;
    let seconds = cycles as f64 / (arch.clock_mhz * 1e6);
    let ops = 2.0 * total.macs as f64;
    let energy_pj = total.measured.as_ref().map_or(0.0, |m| m.energy_pj.total);
    Throughput {
        clock_mhz: arch.clock_mhz,
        cycles,
        seconds,
        inferences_per_s: if seconds > 0.0 { 1.0 / seconds } else { 0.0 },
        tops: if seconds > 0.0 {
            ops / seconds / 1e12
        } else {
            0.0
        },
        tops_per_w: if energy_pj > 0.0 {
            ops / energy_pj
        } else {
            0.0
        },
        macs_per_cycle: if cycles > 0 {
            total.macs as f64 / cycles as f64
        } else {
            0.0
        },
        events: engine_run.events,
    }
}

/// TOPS of `macs` multiply-accumulates in `cycles` cycles of a `clock_mhz` clock.
/// The report's description of the workload run and its input.
fn workload_info(workload: &Workload, options: &RunOptions) -> WorkloadInfo {
    let net = &workload.network;
    let s = net.input_shape;
    WorkloadInfo {
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
    }
}

/// The report's description of the architecture.
fn arch_info(arch: &Arch) -> ArchInfo {
    ArchInfo {
        name: arch.name.clone(),
        file: arch.path.display().to_string(),
        description: arch.description.clone(),
    }
}

fn layer_tops(macs: u64, cycles: u64, clock_mhz: f64) -> Option<f64> {
    (macs > 0 && cycles > 0).then(|| 2.0 * macs as f64 * clock_mhz * 1e6 / cycles as f64 / 1e12)
}

/// TOPS/W of `macs` multiply-accumulates for `energy_pj` (operations per pJ).
fn layer_tops_per_w(macs: u64, energy_pj: f64) -> Option<f64> {
    (macs > 0 && energy_pj > 0.0).then(|| 2.0 * macs as f64 / energy_pj)
}

/// The report view of an engine's layer statistics, with energies applied.
fn measured(s: &LayerStats, arch: &Arch) -> Measured {
    let norm = energy::normalised(s, &arch.energy);
    let a = &s.accesses;
    Measured {
        cycles: s.cycles.total,
        cycle_split: CycleSplit {
            compute: s.cycles.compute,
            stall: s.cycles.stall,
            fill: s.cycles.fill,
            drain: s.cycles.drain,
        },
        utilisation: s.utilisation(),
        pe_cycles: s.pe_cycles,
        accesses: LevelTotals {
            dram: a.dram.total(),
            glb: a.glb.total(),
            array: a.array.total(),
            rf: a.rf.total(),
        },
        accesses_by_type: *a,
        lut_reads: s.lut_reads,
        energy: norm,
        energy_pj: energy::picojoules(s, &arch.energy),
        memory_energy: norm.memory(),
        dram: s.dram,
        glb_peak_bytes: s.glb_peak_bytes,
        spilled_rows: s.spilled_rows,
        glb_requests: crate::units::ReadWrite {
            read: s.glb_read_requests,
            write: s.glb_write_requests,
        },
        schedule: s.schedule.clone(),
    }
}

/// The report view of a run's summed statistics; energies are the sum of
/// the layers' (each layer's word widths and MAC precision priced apart).
fn total_measured(sum: &LayerStats, layers: &[LayerStats], arch: &Arch) -> Measured {
    let mut m = measured(sum, arch);
    let norm = energy::normalised_sum(layers, &arch.energy);
    m.energy = norm;
    m.energy_pj = norm.scaled(arch.energy.pj_per_unit);
    m.memory_energy = norm.memory();
    m
}

/// Adds one layer's statistics into a running total.
fn accumulate_stats(sum: &mut LayerStats, s: &LayerStats) {
    sum.cycles.total += s.cycles.total;
    sum.cycles.compute += s.cycles.compute;
    sum.cycles.stall += s.cycles.stall;
    sum.cycles.fill += s.cycles.fill;
    sum.cycles.drain += s.cycles.drain;
    sum.accesses.add(&s.accesses);
    sum.macs += s.macs;
    sum.zero_macs += s.zero_macs;
    sum.mac_energy_pj += s.mac_energy_pj;
    sum.lut_reads += s.lut_reads;
    sum.pe_busy_cycles += s.pe_busy_cycles;
    if let Some(p) = &s.pe_cycles {
        sum.pe_cycles.get_or_insert_with(Default::default).add(p);
    }
    sum.dram.read_bytes += s.dram.read_bytes;
    sum.dram.write_bytes += s.dram.write_bytes;
    sum.dram.read_requests += s.dram.read_requests;
    sum.dram.write_requests += s.dram.write_requests;
    sum.dram.row_hits += s.dram.row_hits;
    sum.dram.row_misses += s.dram.row_misses;
    sum.dram.activates += s.dram.activates;
    sum.dram.busy_cycles += s.dram.busy_cycles;
    sum.spilled_rows += s.spilled_rows;
    sum.glb_peak_bytes = sum.glb_peak_bytes.max(s.glb_peak_bytes);
    sum.glb_read_requests += s.glb_read_requests;
    sum.glb_write_requests += s.glb_write_requests;
    sum.events += s.events;
}
