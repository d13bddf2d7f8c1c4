//! Area and energy of FFE stages (SPEC section 3; docs/ffe.md, "Area" and
//! "Energy"), applied to the hardware inventory and the counters after a
//! run, so other constants need no new simulation.
//!
//! - Area: adder-tree and BN-multiplier full-adder bits x `adder_um2_per_bit`,
//!   line-buffer bits x `sram_um2_per_bit`, register bits (window, pipeline,
//!   BN/Q parameters) x `register_um2_per_bit`.
//! - Energy, from simulated activity: every addition the trees performed
//!   (full-adder bit operations) and every BN multiplication at
//!   `adder_pj_per_bit` x `activity_factor`; every line-buffer bit read or
//!   written; every clocked register bit on every cycle the stage's clock
//!   was enabled (idle stages are clock-gated and cost nothing); and, when
//!   configured, leakage over the time the FFE is powered.

use serde::Serialize;

use crate::arch::{FfeAreaConfig, FfeEnergyConfig};
use crate::hw::ffe::{StageInventory, StageStats};

/// Area of one stage [mm^2].
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct FfeArea {
    /// Scalers' adder trees (and max-pool comparators).
    pub adders_mm2: f64,
    /// BN scale multipliers.
    pub bn_mm2: f64,
    pub line_buffer_mm2: f64,
    /// Window, pipeline and BN/Q parameter registers.
    pub registers_mm2: f64,
    pub total_mm2: f64,
}

impl FfeArea {
    pub fn add(&mut self, o: &FfeArea) {
        self.adders_mm2 += o.adders_mm2;
        self.bn_mm2 += o.bn_mm2;
        self.line_buffer_mm2 += o.line_buffer_mm2;
        self.registers_mm2 += o.registers_mm2;
        self.total_mm2 += o.total_mm2;
    }
}

/// Area of a stage's hardware.
pub fn area(inv: &StageInventory, cfg: &FfeAreaConfig) -> FfeArea {
    let um2 = 1e-6;
    let adders_mm2 = (inv.adder_bits + inv.comparator_bits) as f64 * cfg.adder_um2_per_bit * um2;
    let bn_mm2 = inv.bn_multiplier_bits as f64 * cfg.adder_um2_per_bit * um2;
    let line_buffer_mm2 = inv.sram_bits as f64 * cfg.sram_um2_per_bit * um2;
    let registers_mm2 =
        (inv.window_register_bits + inv.pipeline_register_bits + inv.config_register_bits) as f64
            * cfg.register_um2_per_bit
            * um2;
    FfeArea {
        adders_mm2,
        bn_mm2,
        line_buffer_mm2,
        registers_mm2,
        total_mm2: adders_mm2 + bn_mm2 + line_buffer_mm2 + registers_mm2,
    }
}

/// Energy of one stage [pJ].
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct FfeEnergy {
    /// Adder trees (and comparators).
    pub adders_pj: f64,
    /// BN scale multiplications.
    pub bn_pj: f64,
    pub line_buffer_pj: f64,
    /// Clocked registers.
    pub registers_pj: f64,
    pub leakage_pj: f64,
    pub total_pj: f64,
}

impl FfeEnergy {
    pub fn add(&mut self, o: &FfeEnergy) {
        self.adders_pj += o.adders_pj;
        self.bn_pj += o.bn_pj;
        self.line_buffer_pj += o.line_buffer_pj;
        self.registers_pj += o.registers_pj;
        self.leakage_pj += o.leakage_pj;
        self.total_pj += o.total_pj;
    }
}

/// Energy of what a stage did: `stats` from the simulation, `inv` its
/// hardware, `in_bits` its input activation width, `area_mm2` its area and
/// `powered_s` the time it was powered (for leakage).
pub fn energy(
    stats: &StageStats,
    inv: &StageInventory,
    in_bits: u32,
    cfg: &FfeEnergyConfig,
    area_mm2: f64,
    powered_s: f64,
) -> FfeEnergy {
    let switching = cfg.adder_pj_per_bit * cfg.activity_factor;
    let adders_pj = (stats.adder_bits + stats.compare_bits) as f64 * switching;
    let bn_pj = (stats.outputs * inv.bn_multiplier_bits) as f64 * switching;
    let lb = &stats.line_buffer;
    let bits = f64::from(in_bits);
    let line_buffer_pj = lb.read_words as f64 * bits * cfg.sram_read_pj_per_bit
        + lb.write_words as f64 * bits * cfg.sram_write_pj_per_bit;
    let registers_pj =
        (stats.busy_cycles * inv.clocked_register_bits()) as f64 * cfg.register_pj_per_bit;
    // mW x s = mJ = 1e9 pJ.
    let leakage_pj = cfg.leakage_mw_per_mm2 * area_mm2 * powered_s * 1e9;
    FfeEnergy {
        adders_pj,
        bn_pj,
        line_buffer_pj,
        registers_pj,
        leakage_pj,
        total_pj: adders_pj + bn_pj + line_buffer_pj + registers_pj + leakage_pj,
    }
}
