//! The run report: what a run measured, as plain serde data.
//!
//! The schema is documented in docs/report.md and kept stable: fields are
//! added, never renamed. Fields an engine has not measured are absent, never
//! zero or a placeholder.

pub mod csv;
pub mod text;

use serde::Serialize;

use crate::cost::energy::Energy;
use crate::engine::stats::Accesses;
use crate::hw::dram::DramStats;
use crate::units::ReadWrite;

/// Version of the report schema (docs/report.md).
pub const SCHEMA_VERSION: u32 = 2;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Report {
    pub schema_version: u32,
    pub accsim_version: String,
    pub workload: WorkloadInfo,
    pub arch: ArchInfo,
    /// What produced the per-layer figures (`reference`: only what the
    /// reference executor knows; no hardware was simulated).
    pub engine: String,
    pub layers: Vec<LayerReport>,
    pub total: TotalReport,
    /// True only when a simulated engine computed every layer and each
    /// matched the reference executor bit for bit.
    pub bit_exact: bool,
    /// Whole-run figures at the configured clock (absent without an engine).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub throughput: Option<Throughput>,
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
    /// MACs with a zero (centred) input or weight operand.
    pub zero_macs: u64,
    /// Storage type of the output (`uint8`, `int8`, `int16`).
    pub output_dtype: String,
    /// CRC-32 of the output tensor's bytes in C order, as 8 hex digits.
    pub output_crc32: String,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub measured: Option<Measured>,
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

/// `1234567` as `1,234,567`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
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
