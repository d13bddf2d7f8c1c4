//! Energy = accesses x cost per access, per level, plus the MACs' energy
//! (SPEC section 1; LU22 and EYERISS's normalised costs: DRAM 200, GLB 6,
//! array 2, RF 1, MAC 1; a fixed-weight LUT read 1).
//!
//! The per-access costs are those of a 16-bit word; an access of a word of
//! `b` bits costs `b / 16` of it (8-bit data moves half the bits), with the
//! widths the engine recorded per data type (psums count as 16 bits). Weight
//! reads from look-up tables cost `lut` instead of `rf`. The MACs cost what
//! the engine computed from `[mac]` at the layer's precision, zero-operand
//! MACs at the gated energy (SPEC section 2); layers without a precision
//! (none on the PE array today) fall back to `macs x mac`. Picojoules are the
//! normalised energy times `pj_per_unit`, the energy of the reference MAC at
//! the configured technology (docs/arch-format.md gives the derivation).

use serde::Serialize;

use crate::arch::EnergyConfig;
use crate::engine::LayerStats;
use crate::units::{DataType, LevelAccesses};

/// Energy per level. `total` is the sum of the parts:
/// `mac + rf + array + glb + dram + nvdla_table`.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct Energy {
    pub mac: f64,
    pub rf: f64,
    pub array: f64,
    pub glb: f64,
    pub dram: f64,
    /// Layers on the table-driven NVDLA model: table power x time, which
    /// the table does not split into MACs and memory (absent when zero).
    #[serde(skip_serializing_if = "is_zero")]
    pub nvdla_table: f64,
    pub total: f64,
}

fn is_zero(x: &f64) -> bool {
    *x == 0.0
}

impl Energy {
    /// Memory energy: the accesses of every level (not the MACs, not the
    /// unsplit NVDLA table energy).
    pub fn memory(&self) -> f64 {
        self.rf + self.array + self.glb + self.dram
    }

    pub fn scaled(&self, factor: f64) -> Energy {
        Energy {
            mac: self.mac * factor,
            rf: self.rf * factor,
            array: self.array * factor,
            glb: self.glb * factor,
            dram: self.dram * factor,
            nvdla_table: self.nvdla_table * factor,
            total: self.total * factor,
        }
    }

    pub fn add(&mut self, other: &Energy) {
        self.mac += other.mac;
        self.rf += other.rf;
        self.array += other.array;
        self.glb += other.glb;
        self.dram += other.dram;
        self.nvdla_table += other.nvdla_table;
        self.total += other.total;
    }
}

/// Normalised energy of one layer (one 16-bit MAC = 1).
pub fn normalised(stats: &LayerStats, cost: &EnergyConfig) -> Energy {
    let a = &stats.accesses;
    // Accesses in 16-bit-word equivalents.
    let words = |level: &LevelAccesses| -> f64 {
        DataType::ALL
            .iter()
            .map(|&t| level.by_type.get(t).total() as f64 * stats.word_bits.factor(t))
            .sum()
    };
    // LUT reads are weight reads of the RF level.
    let lut_reads = stats.lut_reads.min(a.rf.by_type.get(DataType::Weight).read);
    let lut = lut_reads as f64 * stats.word_bits.factor(DataType::Weight);
    let mac = if stats.mac_mode.is_some() && cost.pj_per_unit > 0.0 {
        stats.mac_energy_pj / cost.pj_per_unit
    } else {
        stats.macs as f64 * cost.mac
    };
    let rf = (words(&a.rf) - lut) * cost.rf + lut * cost.lut;
    let array = words(&a.array) * cost.array;
    let glb = words(&a.glb) * cost.glb;
    let dram = words(&a.dram) * cost.dram;
    Energy {
        mac,
        rf,
        array,
        glb,
        dram,
        nvdla_table: 0.0,
        total: mac + rf + array + glb + dram,
    }
}

/// Energy of one layer in picojoules.
pub fn picojoules(stats: &LayerStats, cost: &EnergyConfig) -> Energy {
    normalised(stats, cost).scaled(cost.pj_per_unit)
}

/// Normalised energy of several layers: the sum of each layer's, since
/// word widths and MAC precisions differ from layer to layer.
pub fn normalised_sum(layers: &[LayerStats], cost: &EnergyConfig) -> Energy {
    let mut sum = Energy::default();
    for s in layers {
        sum.add(&normalised(s, cost));
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::units::DataType;

    #[test]
    fn costs_weight_every_level() {
        let mut s = LayerStats {
            macs: 100,
            lut_reads: 40,
            ..Default::default()
        };
        s.accesses.rf.read(DataType::Input, 100);
        s.accesses.rf.read(DataType::Weight, 40);
        s.accesses.glb.read(DataType::Input, 10);
        s.accesses.dram.write(DataType::Output, 2);
        s.accesses.array.read(DataType::Input, 5);
        let cost = EnergyConfig {
            dram: 200.0,
            glb: 6.0,
            array: 2.0,
            rf: 1.0,
            mac: 1.0,
            lut: 0.5,
            pj_per_unit: 2.0,
        };
        let e = normalised(&s, &cost);
        assert_eq!(
            e,
            Energy {
                mac: 100.0,
                rf: 100.0 + 20.0,
                array: 10.0,
                glb: 60.0,
                dram: 400.0,
                nvdla_table: 0.0,
                total: 690.0
            }
        );
        assert_eq!(e.memory(), 590.0);
        assert_eq!(picojoules(&s, &cost).total, 1380.0);
    }
}
