//! The run report: what a run measured, as plain serde data.
//!
//! The schema is documented in docs/report.md and kept stable: fields are
//! added, never renamed. Fields an engine has not measured are absent, never
//! zero or a placeholder.

pub mod csv;
mod schedule_text;
pub mod text;

use serde::Serialize;

use crate::cost::energy::Energy;
use crate::cost::ffe::{FfeArea, FfeEnergy};
use crate::engine::stats::Accesses;
use crate::hw::dram::DramStats;
use crate::units::ReadWrite;

/// Version of the report schema (docs/report.md).
pub const SCHEMA_VERSION: u32 = 11;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Report {
    pub schema_version: u32,
    pub accsim_version: String,
    pub workload: WorkloadInfo,
    pub arch: ArchInfo,
    /// What produced the per-layer figures (`reference`: only what the
    /// reference executor knows; no hardware was simulated).
    pub engine: String,
    /// The precision assignment the run used (`--precision`), in
    /// `16x16,8x16,.../16` form; absent when layers ran at their storage widths.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub precision: Option<String>,
    pub layers: Vec<LayerReport>,
    pub total: TotalReport,
    /// True when at least one layer's values were simulated and every
    /// simulated layer matched the reference executor bit for bit. Layers
    /// whose values were not simulated (`reference_layers`) are not counted.
    pub bit_exact: bool,
    /// Layers whose output values the simulated machine computed (PE array,
    /// GLB unit, FFE); with the check on, each was compared with the reference.
    pub simulated_layers: usize,
    /// Layers whose output values were taken from the reference executor
    /// because their back-end is table-driven (`nvdla_table`), not simulated.
    pub reference_layers: usize,
    /// Whole-run figures at the configured clock (absent without an engine).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub throughput: Option<Throughput>,
    /// Silicon area of the machine: FFE + back-end [mm^2].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub area_mm2: Option<f64>,
    /// Where `area_mm2` comes from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub area: Option<AreaReport>,
    /// FFE -> buffer -> back-end figures (SPEC section 3), for machines
    /// with an FFE or a table-driven back-end.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub system: Option<SystemReport>,
}

/// The area of the machine.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct AreaReport {
    pub total_mm2: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ffe_mm2: Option<f64>,
    /// The FFE's area by kind of hardware.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ffe: Option<FfeArea>,
    pub backend_mm2: f64,
    /// `pe_array_model` (docs/arch-format.md, `[area]`) or `nvdla_table`.
    pub backend_source: String,
}

/// A system of FFE, buffer and back-end.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SystemReport {
    /// `pe_array` or `nvdla_table <config>`.
    pub backend: String,
    pub backend_clock_mhz: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ffe: Option<FfeSystemReport>,
    /// One frame through an empty system.
    pub frame: FrameReport,
    /// A stream of frames (absent with one frame).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream: Option<StreamReport>,
}

/// The FFE as a whole.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct FfeSystemReport {
    /// Fixed layers in hardware (N) and used by this run (M, the tap).
    pub fixed_layers: u32,
    pub tap: u32,
    /// Network layers (stages) in the hardware and running.
    pub hardware_layers: usize,
    pub running_layers: usize,
    pub clock_mhz: f64,
    /// `csd` or `binary`.
    pub digits: String,
    /// `derived` or `fixed`.
    pub accumulator: String,
    /// First pixel in to last tapped pixel in the buffer [FFE cycles].
    pub frame_cycles: u64,
    /// Cycles of the frame in which some stage's clock was enabled.
    pub busy_cycles: u64,
    /// Cycles the simulator stepped one by one.
    pub stepped_cycles: u64,
    pub area_mm2: f64,
    pub area: FfeArea,
    pub nonzero_weights: u64,
    /// DEEPFREEZE's estimate for the same weights (docs/ffe.md).
    pub deepfreeze_area_mm2: f64,
    /// Energy of one frame in the running stages.
    pub energy_pj: FfeEnergy,
}

/// One frame through an empty system.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct FrameReport {
    /// FFE frame time + back-end time [s].
    pub latency_s: f64,
    pub ffe_cycles: u64,
    pub backend_cycles: u64,
    pub energy_pj: f64,
    pub ffe_energy_pj: f64,
    pub backend_energy_pj: f64,
    /// Operations of one inference (2 per MAC).
    pub ops: u64,
    /// `ops / latency_s`.
    pub tops: f64,
    /// `ops / energy`.
    pub tops_per_w: f64,
    /// Tapped words written into the back-end's buffer, and spilled to DRAM.
    pub handoff_buffer_words: u64,
    pub handoff_dram_words: u64,
}

/// A stream of frames.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct StreamReport {
    pub frames: u32,
    /// Tapped frames the buffer holds at once (2: double buffering).
    pub buffer_slots: u32,
    /// Steady state: the interval between the last two frames' completions.
    pub period_s: f64,
    pub frames_per_s: f64,
    pub tops: f64,
    pub tops_per_w: f64,
    /// The last frame's first pixel in to its back-end completion [s].
    pub last_frame_latency_s: f64,
    /// Shares of the stream's time with some FFE stage clocked, and not.
    pub ffe_busy_share: f64,
    pub ffe_idle_share: f64,
    pub backend_busy_share: f64,
    /// Each frame's back-end completion [s from the first pixel].
    pub frame_end_s: Vec<f64>,
    pub ffe_stepped_cycles: u64,
    pub ffe_total_cycles: u64,
}

/// What an FFE stage is and did (one frame).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct FfeLayerReport {
    /// The FIXYNN layer (1-based) the stage belongs to.
    pub fixed_layer: u32,
    /// Non-zero weights (hard-wired scalers) and their non-zero digits.
    pub scalers: u64,
    pub digits: u64,
    /// Widest accumulator / adder tree [bits].
    pub max_accumulator_bits: u32,
    /// Adder-tree additions and full-adder bit operations performed.
    pub adds: u64,
    pub adder_bit_ops: u64,
    pub line_buffer: LineBufferReport,
    /// Columns shifted into the window, and those all padding.
    pub window_shifts: u64,
    pub pad_shifts: u64,
    /// Cycles with the stage's clock enabled (the rest it was clock-gated).
    pub busy_cycles: u64,
    /// Cycles the reader waited on a full output pipeline.
    pub backpressure_cycles: u64,
    /// Cycles the stage refused a pixel its upstream offered.
    pub refused_input_cycles: u64,
    /// Cycle of the first output pixel, counted from the frame's first pixel
    /// entering the FFE.
    pub first_output_cycle: u64,
    pub area: FfeArea,
    pub energy_pj: FfeEnergy,
}

/// A stage's line buffer.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LineBufferReport {
    /// Single-port SRAM banks (kernel height + 1; 0: no line buffer).
    pub banks: u32,
    pub capacity_words: u64,
    /// Data words (channel values) read and written.
    pub read_words: u64,
    pub write_words: u64,
    /// Bank accesses (one pixel of one row, all channels).
    pub read_accesses: u64,
    pub write_accesses: u64,
    pub rotations: u64,
}

/// Whole-run performance.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Throughput {
    pub clock_mhz: f64,
    pub cycles: u64,
    pub seconds: f64,
    pub inferences_per_s: f64,
    /// Tera-operations per second, one MAC = 2 operations.
    pub tops: f64,
    /// Tera-operations per second per watt (operations over energy).
    pub tops_per_w: f64,
    pub macs_per_cycle: f64,
    /// Discrete events the kernel processed.
    pub events: u64,
}

/// What the engine measured for a layer (or the total): filled only by a
/// simulated engine.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Measured {
    pub cycles: u64,
    /// `cycles = compute + stall + fill + drain`.
    pub cycle_split: CycleSplit,
    /// Busy PE-cycles over PEs x cycles.
    pub utilisation: f64,
    /// Every PE-cycle by cause, summing to PEs x cycles (absent for layers
    /// that did not run on a PE array; the total sums the layers that have it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pe_cycles: Option<crate::engine::PeCycles>,
    /// Data words read and written per level.
    pub accesses: LevelTotals,
    /// The same per data type (input, weight, psum, output).
    pub accesses_by_type: Accesses,
    /// Weight reads served by fixed look-up tables (inside `accesses.rf`).
    pub lut_reads: u64,
    /// Normalised energy, one 16-bit MAC = 1.
    pub energy: Energy,
    pub energy_pj: Energy,
    /// Normalised energy of everything but the MACs.
    pub memory_energy: f64,
    pub dram: DramStats,
    pub glb_peak_bytes: u64,
    /// Output rows that did not fit the GLB and went to DRAM.
    pub spilled_rows: u64,
    /// GLB requests (each moves one or more words): the pulses on the
    /// trace's GLB request counters.
    pub glb_requests: ReadWrite,
    /// The schedule an array layer ran (absent for other layers and the total).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schedule: Option<crate::engine::LayerSchedule>,
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Default)]
pub struct CycleSplit {
    pub compute: u64,
    pub stall: u64,
    pub fill: u64,
    pub drain: u64,
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Default)]
pub struct LevelTotals {
    pub dram: ReadWrite,
    pub glb: ReadWrite,
    pub array: ReadWrite,
    pub rf: ReadWrite,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct WorkloadInfo {
    pub name: String,
    pub file: String,
    pub variant: Option<String>,
    pub description: String,
    /// `affine/tflite`, `affine/float` or `dynamic_fixed_point/<rounding>`.
    pub numerics: String,
    pub input_shape: [usize; 3],
    /// `default` (the workload's own input) or the .npy file given.
    pub input: String,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ArchInfo {
    pub name: String,
    pub file: String,
    pub description: String,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LayerReport {
    pub index: usize,
    pub name: String,
    pub op: String,
    pub input_shape: [usize; 3],
    pub output_shape: [usize; 3],
    pub weights: u64,
    pub macs: u64,
    /// MACs with a zero (centred) input or weight operand, in the bytes the
    /// layer's MAC precision uses: as the engine counted them when it ran
    /// the layer, else as the reference executor counts them.
    pub zero_macs: u64,
    /// MAC precision (`16x16`, `16x8`, `8x16`, `8x8`: input x weight bits)
    /// of a weighted layer on the PE array, or `float32`: the PEs' float32
    /// mode (docs/onnx.md item 6), priced by `[mac] float32_*`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub precision: Option<String>,
    /// Storage type of the output (`uint8`, `int8`, `int16`).
    pub output_dtype: String,
    /// CRC-32 of the output tensor's bytes in C order, as 8 hex digits.
    pub output_crc32: String,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub measured: Option<Measured>,
    /// What computed the layer: `pe_array`, `ffe` (both simulated) or
    /// `nvdla_table` (table-driven; values from the reference executor).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub engine: Option<String>,
    /// Where its output values came from: `simulated` (computed by the
    /// simulated machine from the data it held) or `reference` (copied from
    /// the reference executor: a table-driven back-end).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub values: Option<String>,
    /// The clock its cycles count [MHz].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clock_mhz: Option<f64>,
    /// `2 x macs` over the layer's time, and over its energy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tops: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tops_per_w: Option<f64>,
    /// FFE stages only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ffe: Option<FfeLayerReport>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TotalReport {
    pub name: String,
    pub weights: u64,
    pub macs: u64,
    pub zero_macs: u64,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub measured: Option<Measured>,
}

/// The per-layer `values` of a layer computed by the simulated machine.
pub const SIMULATED: &str = "simulated";
/// The per-layer `values` of a layer whose values came from the reference.
pub const FROM_REFERENCE: &str = "reference";

/// `1234567` as `1,234,567`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn thousands_groups_digits() {
        assert_eq!(super::thousands(0), "0");
        assert_eq!(super::thousands(999), "999");
        assert_eq!(super::thousands(1000), "1,000");
        assert_eq!(super::thousands(257_209_728), "257,209,728");
    }
}
