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
