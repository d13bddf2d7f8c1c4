//! A table-driven model of a published NVDLA configuration (SPEC section 3):
//! no cycle simulation, only formulas over the table's numbers. Its results
//! are labelled `nvdla_table` wherever they appear.
//!
//! ```text
//!   layer shape ──► utilisation model ──► cycles = MAC-array steps
//!                                          energy = table power x time
//! ```
//!
//! - **Clock**: the table gives peak TOPS and MACs; one MAC is two
//!   operations, so `f = TOPS / (2 x MACs)` (A 437, B 609, C 699, D 711,
//!   E 569, F 511 MHz).
//! - **Cycles** ([`NvdlaUtilisation::Atomic`], default): NVDLA's MAC array
//!   is `atomic_k` cells of `atomic_c` multipliers; each cycle every cell
//!   multiplies one `atomic_c`-channel slice of one input pixel by its
//!   kernel's weights. A convolution group with `c` input and `k` output
//!   channels therefore takes `ceil(c / atomic_c) x ceil(k / atomic_k)`
//!   cycles per output position and kernel tap. A depthwise layer gives
//!   each cell one channel of the slice (the others multiply zero weights):
//!   `ceil(C / min(atomic_c, atomic_k))` cycles per position and tap.
//!   Fully connected layers are 1x1 convolutions at one position. Pooling
//!   runs in NVDLA's planar data processor at one `atomic_c` slice of input
//!   per cycle. [`NvdlaUtilisation::Peak`] instead keeps every MAC busy
//!   (`ceil(MACs / macs)`), DEEPFREEZE's assumption.
//! - **Energy**: the table's TOPS/W holds at peak throughput, i.e. the
//!   engine draws `P = TOPS / (TOPS/W)` while it runs; a layer costs
//!   `P x cycles / f`. Under-utilised MACs therefore cost energy, as idle
//!   multipliers fed with padding do in the real array.

use crate::arch::{NvdlaConfig, NvdlaUtilisation};

/// The shape of a layer as the model needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NvdlaWork {
    /// A convolution: `positions` output pixels x `taps` kernel taps, in
    /// `groups` groups of `in_per_group` -> `out_per_group` channels.
    Conv {
        positions: u64,
        taps: u64,
        groups: u64,
        in_per_group: u64,
        out_per_group: u64,
    },
    /// Pooling over `input_elements` values.
    Pool { input_elements: u64 },
    /// No data moves (flatten).
    Reshape,
}

/// The model's verdict on one layer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NvdlaLayer {
    pub cycles: u64,
    pub energy_pj: f64,
}

/// Cycles and energy of `work` (`macs` multiply-accumulates) on `cfg`.
pub fn layer(cfg: &NvdlaConfig, work: NvdlaWork, macs: u64) -> NvdlaLayer {
    let ac = u64::from(cfg.atomic_c);
    let ak = u64::from(cfg.atomic_k);
    let cycles = match (work, cfg.utilisation) {
        (NvdlaWork::Reshape, _) => 0,
        (NvdlaWork::Pool { input_elements }, _) => input_elements.div_ceil(ac),
        (NvdlaWork::Conv { .. }, NvdlaUtilisation::Peak) => macs.div_ceil(u64::from(cfg.macs)),
        (
            NvdlaWork::Conv {
                positions,
                taps,
                groups,
                in_per_group,
                out_per_group,
            },
            NvdlaUtilisation::Atomic,
        ) => {
            if in_per_group == 1 && out_per_group == 1 && groups > 1 {
                positions * taps * groups.div_ceil(ac.min(ak))
            } else {
                positions * taps * groups * in_per_group.div_ceil(ac) * out_per_group.div_ceil(ak)
            }
        }
    };
    let seconds = cycles as f64 / (cfg.clock_mhz * 1e6);
    NvdlaLayer {
        cycles,
        energy_pj: cfg.power_w() * seconds * 1e12,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::{NvdlaName, NvdlaUtilisation};

    fn c() -> NvdlaConfig {
        NvdlaConfig {
            name: NvdlaName::C,
            macs: 256,
            buffer_kib: 256,
            area_mm2: 1.0,
            tops: 0.358,
            tops_per_w: 5.6,
            atomic_c: 16,
            atomic_k: 16,
            utilisation: NvdlaUtilisation::Atomic,
            clock_mhz: 0.358e12 / 512.0 / 1e6,
        }
    }

    #[test]
    fn atomic_model_counts_partial_atoms() {
        // 1x1 conv 8 -> 16 channels over 10 positions: one C atom (half
        // full), one K atom: 10 cycles for 1280 MACs (utilisation 1/2).
        let work = NvdlaWork::Conv {
            positions: 10,
            taps: 1,
            groups: 1,
            in_per_group: 8,
            out_per_group: 16,
        };
        let l = layer(&c(), work, 1280);
        assert_eq!(l.cycles, 10);
        // Energy: 0.358 / 5.6 W for 10 cycles at 699.2 MHz.
        let want = 0.358 / 5.6 * 10.0 / (0.358e12 / 512.0) * 1e12;
        assert!((l.energy_pj - want).abs() < 1e-9);
        // Depthwise 3x3 over 32 channels at 4 positions: 32 / 16 = 2 steps per tap.
        let dw = NvdlaWork::Conv {
            positions: 4,
            taps: 9,
            groups: 32,
            in_per_group: 1,
            out_per_group: 1,
        };
        assert_eq!(layer(&c(), dw, 4 * 9 * 32).cycles, 72);
        let mut peak = c();
        peak.utilisation = NvdlaUtilisation::Peak;
        assert_eq!(layer(&peak, dw, 4 * 9 * 32).cycles, 5); // 1152 / 256
        assert_eq!(
            layer(&c(), NvdlaWork::Pool { input_elements: 33 }, 0).cycles,
            3
        );
    }
}
