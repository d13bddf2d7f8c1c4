//! What a layer did: the raw counters and cycle breakdown the engine
//! measured. Costs (energy) are applied to these afterwards (`cost/`).

use serde::Serialize;

use crate::hw::dram::DramStats;
use crate::sim::Cycle;
use crate::units::LevelAccesses;

/// Accesses at every level, in data words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Accesses {
    pub dram: LevelAccesses,
    pub glb: LevelAccesses,
    pub array: LevelAccesses,
    pub rf: LevelAccesses,
}

impl Accesses {
    pub fn add(&mut self, other: &Accesses) {
        self.dram.add(&other.dram);
        self.glb.add(&other.glb);
        self.array.add(&other.array);
        self.rf.add(&other.rf);
    }
}

/// Where a layer's cycles went. `total = fill + compute + stall + drain`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct CycleBreakdown {
    pub total: u64,
    /// Cycles in which the PE array (or the pooling unit) was computing.
    pub compute: u64,
    /// Cycles between the first and last computation in which nothing
    /// computed because data (inputs, weights, psum space) was not there.
    pub stall: u64,
    /// From the layer's start to its first computation.
    pub fill: u64,
    /// From its last computation to its last write.
    pub drain: u64,
}

/// Where every PE-cycle of a layer went: the fields sum to PEs x cycles.
/// A PE the layer's mapping gives work is, each cycle, computing (`busy`),
/// waiting in lock-step for the step's slowest PE (`lockstep`), in the
/// layer's `fill` or `drain`, or held back with the whole array by one of
/// the named waits between steps (docs/report.md, "Cycles by cause"); a PE
/// it gives no work is `unused` for the whole layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct PeCycles {
    pub busy: u64,
    pub lockstep: u64,
    pub fill: u64,
    pub drain: u64,
    pub prefetch: u64,
    pub glb_space: u64,
    pub input_dram: u64,
    pub weight_dram: u64,
    pub glb_port: u64,
    pub input_bus: u64,
    pub weight_bus: u64,
    pub psum_space: u64,
    pub dram_write: u64,
    pub unused: u64,
}

impl PeCycles {
    /// The field names, in report order, with their values.
    pub fn named(&self) -> [(&'static str, u64); 14] {
        [
            ("busy", self.busy),
            ("lockstep", self.lockstep),
            ("fill", self.fill),
            ("drain", self.drain),
            ("prefetch", self.prefetch),
            ("glb_space", self.glb_space),
            ("input_dram", self.input_dram),
            ("weight_dram", self.weight_dram),
            ("glb_port", self.glb_port),
            ("input_bus", self.input_bus),
            ("weight_bus", self.weight_bus),
            ("psum_space", self.psum_space),
            ("dram_write", self.dram_write),
            ("unused", self.unused),
        ]
    }

    pub fn total(&self) -> u64 {
        self.named().iter().map(|&(_, v)| v).sum()
    }

    /// The named waits between steps (every cause but busy, lockstep,
    /// fill, drain and unused).
    pub fn waits(&self) -> [(&'static str, u64); 9] {
        let n = self.named();
        std::array::from_fn(|i| n[4 + i])
    }

    /// The wait that cost the most PE-cycles (the first in report order on
    /// a tie), if any did.
    pub fn main_wait(&self) -> Option<(&'static str, u64)> {
        self.waits()
            .into_iter()
            .filter(|&(_, v)| v > 0)
            .fold(None, |best, w| match best {
                Some((_, b)) if b >= w.1 => best,
                _ => Some(w),
            })
    }

    pub fn add(&mut self, o: &PeCycles) {
        self.busy += o.busy;
        self.lockstep += o.lockstep;
        self.fill += o.fill;
        self.drain += o.drain;
        self.prefetch += o.prefetch;
        self.glb_space += o.glb_space;
        self.input_dram += o.input_dram;
        self.weight_dram += o.weight_dram;
        self.glb_port += o.glb_port;
        self.input_bus += o.input_bus;
        self.weight_bus += o.weight_bus;
        self.psum_space += o.psum_space;
        self.dram_write += o.dram_write;
        self.unused += o.unused;
    }
}

/// Bits per word each data type moved in a layer; memory energies scale
/// with them (docs/arch-format.md, `[energy]`). 0 stands for 16, the width
/// the per-access costs are given at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct WordBits {
    pub input: u32,
    pub weight: u32,
    pub psum: u32,
    pub output: u32,
}

impl WordBits {
    /// The cost factor of one access of type `t`: bits / 16.
    pub fn factor(&self, t: crate::units::DataType) -> f64 {
        use crate::units::DataType;
        let bits = match t {
            DataType::Input => self.input,
            DataType::Weight => self.weight,
            DataType::Psum => self.psum,
            DataType::Output => self.output,
        };
        if bits == 0 {
            1.0
        } else {
            f64::from(bits) / 16.0
        }
    }
}

/// Everything measured for one layer.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct LayerStats {
    pub start: Cycle,
    pub end: Cycle,
    pub cycles: CycleBreakdown,
    pub accesses: Accesses,
    pub macs: u64,
    /// MACs with a zero operand (in the bytes the mode uses), counted as
    /// the PEs computed them.
    pub zero_macs: u64,
    /// The MAC precision the layer ran at (`None`: no MACs on the array).
    #[serde(serialize_with = "mode_name")]
    pub mac_mode: Option<crate::numerics::mac::MacMode>,
    /// The MACs ran on the PEs' float32 mode (`engine::float_mode`), priced
    /// as float32 multiply-adds (`[mac] float32_*`), not at `mac_mode`.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub float32_macs: bool,
    /// Energy of the layer's MACs at its precision, zero-operand MACs at the
    /// gated energy (`[mac]`), pJ.
    pub mac_energy_pj: f64,
    /// Bits per word of each data type.
    pub word_bits: WordBits,
    /// Weight reads served by fixed look-up tables (part of `accesses.rf`).
    pub lut_reads: u64,
    /// Sum over PEs of cycles spent computing.
    pub pe_busy_cycles: u64,
    pub pes: u64,
    /// Every PE-cycle by cause (`None`: the layer did not run on a PE
    /// array, e.g. an FFE stage or an NVDLA table layer).
    pub pe_cycles: Option<PeCycles>,
    pub dram: DramStats,
    /// Output rows that did not fit the GLB and went to DRAM.
    pub spilled_rows: u64,
    /// Most GLB bytes in use during the layer.
    pub glb_peak_bytes: u64,
    /// Events the kernel processed for this layer.
    pub events: u64,
    /// GLB read and write requests (each may move many words).
    pub glb_read_requests: u64,
    pub glb_write_requests: u64,
    /// The schedule the layer ran (PE-array convolution and FC layers).
    pub schedule: Option<LayerSchedule>,
}

/// The schedule an array layer ran (docs/report.md, `schedule`;
/// docs/mapping.md, "The schedule space").
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct LayerSchedule {
    /// `pass_major` or `weight_tile_major`.
    pub loop_order: String,
    /// Output-channel tiles per PE column (1 for pass-major).
    pub tiles: u64,
    /// Where every pass after the first reads the weights from: `lut`
    /// (fixed weights), `scratchpad`, `glb` or `dram`.
    pub weights_from: String,
    /// Where a tile after the first reads input rows from: `glb` (kept
    /// there) or `dram` (fetched again); `glb` for pass-major.
    pub inputs_from: String,
    /// The search that chose it, when it simulated more than one candidate
    /// (docs/mapping.md, "The search").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub search: Option<ScheduleSearch>,
}

/// How the search chose a layer's schedule (docs/report.md,
/// `schedule.search`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScheduleSearch {
    /// What it minimised: `energy`, `cycles`, `edp` or `dram`.
    pub objective: String,
    /// Candidates simulated from the layer's start.
    pub candidates: u64,
    pub chosen: ScheduleFigures,
    /// The best of the others on the objective (ties: the earlier candidate).
    pub runner_up: ScheduleFigures,
    /// `(runner_up - chosen) / chosen` on the objective (0 when both are 0).
    pub gap: f64,
    /// The earlier layer whose search this layer reused (memoised: the same
    /// geometry, precisions and readers); the other fields are that
    /// search's. Absent for a layer searched itself.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memo_of: Option<String>,
}

/// One candidate's figures for the layer, as the engine simulated it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScheduleFigures {
    /// `pass_major` or `weight_tile_major/TILES/glb|dram`.
    pub schedule: String,
    pub energy_pj: f64,
    pub cycles: u64,
    /// DRAM words read and written.
    pub dram_words: u64,
}

fn mode_name<S: serde::Serializer>(
    mode: &Option<crate::numerics::mac::MacMode>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match mode {
        Some(m) => s.serialize_str(&m.to_string()),
        None => s.serialize_none(),
    }
}

impl LayerStats {
    /// Busy PE-cycles over PEs x cycles.
    pub fn utilisation(&self) -> f64 {
        let denominator = self.pes.saturating_mul(self.cycles.total);
        if denominator == 0 {
            0.0
        } else {
            self.pe_busy_cycles as f64 / denominator as f64
        }
    }
}
