//! The PEs' multi-precision MAC as hardware: cycles and energy per precision
//! and what a zero operand costs (SPEC section 2). What each precision
//! computes is `numerics::mac`; this is only its price, read from an arch
//! file's `[mac]` section (docs/arch-format.md).

use serde::{Deserialize, Serialize};

use crate::units::{MacCounts, MacMode};

/// Values per MAC precision, in [`MacMode::ALL`] order; keys `16x16`,
/// `16x8`, `8x16`, `8x8` (input x weight) in config files.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PerMode<T> {
    #[serde(rename = "16x16")]
    pub full: T,
    #[serde(rename = "16x8")]
    pub i16_w8: T,
    #[serde(rename = "8x16")]
    pub i8_w16: T,
    #[serde(rename = "8x8")]
    pub half: T,
}

impl<T: Copy> PerMode<T> {
    pub fn get(&self, mode: MacMode) -> T {
        match mode.index() {
            0 => self.full,
            1 => self.i16_w8,
            2 => self.i8_w16,
            _ => self.half,
        }
    }
}

/// What the MAC does when an operand (in the bytes it uses) is zero.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
#[serde(tag = "mode", rename_all = "snake_case", deny_unknown_fields)]
pub enum ZeroSkipping {
    /// No gating: a zero MAC costs what any MAC of its mode costs.
    Off,
    /// PELUSO: operand isolation and clock gating stop the datapath, so the
    /// MAC costs `E_zero`, but it still occupies its mode's cycles.
    #[default]
    EnergyOnly,
    /// A cycle-saving variant (an option; not PELUSO's design): the MAC costs
    /// `E_zero` and only `cycles` cycles, the issue slot in which the zero is
    /// detected (default 1).
    EnergyAndCycles {
        #[serde(default = "one")]
        cycles: u32,
    },
}

fn one() -> u32 {
    1
}

/// Latency and energy of the MAC per precision (SPEC section 2: PELUSO's
/// 28 nm UTBB FD-SOI figures at 1 GHz, 0.90 V).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MacConfig {
    /// Cycles per MAC. Default 4 / 2 / 2 / 1 (the multiply steps of Algorithm 1).
    pub cycles: PerMode<u32>,
    /// Energy per (non-zero) MAC, pJ. Default 3.80 / 1.90 / 1.90 / 0.95.
    pub energy_pj: PerMode<f64>,
    /// `E_zero / E_MAC(8x8)`: energy of a gated zero-operand MAC relative
    /// to an 8x8 MAC, whatever the mode. Default 0.103.
    pub zero_energy_ratio: f64,
    pub zero_skipping: ZeroSkipping,
    /// Area of one MAC, um^2 (1443: 3.7 % over a plain 8x8 MAC).
    pub area_um2: f64,
    /// Cycles of one float32 multiply-add (the PEs' float32 mode, docs/onnx.md
    /// item 6); absent: [`FLOAT32_MULTIPLY_STEPS`] x the 8x8 cycles.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub float32_cycles: Option<u32>,
    /// Energy of one float32 multiply-add, pJ; absent:
    /// [`FLOAT32_MULTIPLY_STEPS`] x the 8x8 energy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub float32_energy_pj: Option<f64>,
}

/// Multiply steps of a float32 multiply-add on the 9x9 multiplier: each
/// 24-bit significand (the hidden bit included) is three unsigned bytes,
/// and every byte pair is one step, as an 8x8 step of SPEC section 2's
/// schedule (`3 x 3 = 9`). The exponent addition, the alignment shift and
/// the normalisation are not priced (docs/arch-format.md).
pub const FLOAT32_MULTIPLY_STEPS: u32 = {
    let bytes = 24u32.div_ceil(8);
    bytes * bytes
};

/// What a PE's MAC runs for a layer: SPEC section 2's integer datapath at a
/// precision, or the float32 mode ONNX Runtime's unfused int8 convolutions
/// need (`engine::float_mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MacDatapath {
    Integer(MacMode),
    Float32,
}

impl Default for MacConfig {
    fn default() -> Self {
        MacConfig {
            cycles: PerMode {
                full: 4,
                i16_w8: 2,
                i8_w16: 2,
                half: 1,
            },
            energy_pj: PerMode {
                full: 3.80,
                i16_w8: 1.90,
                i8_w16: 1.90,
                half: 0.95,
            },
            zero_energy_ratio: 0.103,
            zero_skipping: ZeroSkipping::EnergyOnly,
            area_um2: 1443.0,
            float32_cycles: None,
            float32_energy_pj: None,
        }
    }
}

/// Cycles and energy of a group of MACs.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct MacCost {
    /// Multiplier cycles, summed over MACs (divide by parallel PEs for time).
    pub cycles: u64,
    pub energy_pj: f64,
}

impl MacConfig {
    /// Checks every value; the error names the field and the valid range.
    pub fn validate(&self) -> Result<(), String> {
        for mode in MacMode::ALL {
            let c = self.cycles.get(mode);
            if !(1..=64).contains(&c) {
                return Err(format!("cycles.\"{mode}\" is {c}; valid: 1 to 64"));
            }
            let e = self.energy_pj.get(mode);
            if !(e.is_finite() && e >= 0.0) {
                return Err(format!(
                    "energy_pj.\"{mode}\" is {e}; valid: a finite number >= 0"
                ));
            }
        }
        let r = self.zero_energy_ratio;
        if !(r.is_finite() && (0.0..=1.0).contains(&r)) {
            return Err(format!("zero_energy_ratio is {r}; valid: 0 to 1"));
        }
        if let ZeroSkipping::EnergyAndCycles { cycles } = self.zero_skipping
            && !(1..=64).contains(&cycles)
        {
            return Err(format!("zero_skipping.cycles is {cycles}; valid: 1 to 64"));
        }
        if let Some(c) = self.float32_cycles
            && !(1..=576).contains(&c)
        {
            return Err(format!("float32_cycles is {c}; valid: 1 to 576"));
        }
        if let Some(e) = self.float32_energy_pj
            && !(e.is_finite() && e >= 0.0)
        {
            return Err(format!(
                "float32_energy_pj is {}; valid: a finite number >= 0",
                crate::error::number(e)
            ));
        }
        if !(self.area_um2.is_finite() && self.area_um2 >= 0.0) {
            return Err(format!(
                "area_um2 is {}; valid: a finite number >= 0",
                crate::error::number(self.area_um2)
            ));
        }
        Ok(())
    }

    /// Cycles of one non-zero MAC.
    pub fn mac_cycles(&self, mode: MacMode) -> u32 {
        self.cycles.get(mode)
    }

    /// Energy of one non-zero MAC, pJ.
    pub fn mac_energy_pj(&self, mode: MacMode) -> f64 {
        self.energy_pj.get(mode)
    }

    /// Cycles of one non-zero multiply-add on `datapath`.
    pub fn datapath_cycles(&self, datapath: MacDatapath) -> u32 {
        match datapath {
            MacDatapath::Integer(mode) => self.mac_cycles(mode),
            MacDatapath::Float32 => self
                .float32_cycles
                .unwrap_or(FLOAT32_MULTIPLY_STEPS * self.cycles.half),
        }
    }

    /// Energy of one non-zero multiply-add on `datapath`, pJ.
    pub fn datapath_energy_pj(&self, datapath: MacDatapath) -> f64 {
        match datapath {
            MacDatapath::Integer(mode) => self.mac_energy_pj(mode),
            MacDatapath::Float32 => self
                .float32_energy_pj
                .unwrap_or(f64::from(FLOAT32_MULTIPLY_STEPS) * self.energy_pj.half),
        }
    }

    /// Cycles of one zero-operand MAC.
    pub fn zero_mac_cycles(&self, mode: MacMode) -> u32 {
        self.zero_datapath_cycles(MacDatapath::Integer(mode))
    }

    /// Cycles of one zero-operand multiply-add on `datapath`.
    pub fn zero_datapath_cycles(&self, datapath: MacDatapath) -> u32 {
        let cycles = self.datapath_cycles(datapath);
        match self.zero_skipping {
            ZeroSkipping::Off | ZeroSkipping::EnergyOnly => cycles,
            ZeroSkipping::EnergyAndCycles { cycles: zero } => zero.min(cycles),
        }
    }

    /// Energy of one zero-operand MAC, pJ: `E_zero = ratio x E_MAC(8x8)` when
    /// gated, the mode's full energy when not.
    pub fn zero_mac_energy_pj(&self, mode: MacMode) -> f64 {
        self.zero_datapath_energy_pj(MacDatapath::Integer(mode))
    }

    /// [`Self::zero_mac_energy_pj`] on `datapath`: a gated float32 zero costs
    /// what a gated integer zero does (the operand isolation is the same).
    pub fn zero_datapath_energy_pj(&self, datapath: MacDatapath) -> f64 {
        match self.zero_skipping {
            ZeroSkipping::Off => self.datapath_energy_pj(datapath),
            _ => self.zero_energy_ratio * self.energy_pj.half,
        }
    }

    /// Cycles and energy of `counts` MACs in `mode` (SPEC's `E_comp` term).
    pub fn cost(&self, mode: MacMode, counts: MacCounts) -> MacCost {
        self.datapath_cost(MacDatapath::Integer(mode), counts)
    }

    /// Cycles and energy of `counts` multiply-adds on `datapath`.
    pub fn datapath_cost(&self, datapath: MacDatapath, counts: MacCounts) -> MacCost {
        MacCost {
            cycles: counts.nonzero * u64::from(self.datapath_cycles(datapath))
                + counts.zero * u64::from(self.zero_datapath_cycles(datapath)),
            energy_pj: counts.nonzero as f64 * self.datapath_energy_pj(datapath)
                + counts.zero as f64 * self.zero_datapath_energy_pj(datapath),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_defaults_follow_the_schedule() {
        let c = MacConfig::default();
        for mode in MacMode::ALL {
            assert_eq!(c.mac_cycles(mode), mode.multiply_steps(), "{mode}");
        }
        assert_eq!(
            MacMode::ALL.map(|m| m.multiply_steps()),
            [4, 2, 2, 1],
            "16x16, 16x8, 8x16, 8x8"
        );
        assert_eq!(MacMode::ALL.map(|m| m.alignment_bits()), [0, 8, 8, 16]);
        assert_eq!(c.validate(), Ok(()));
    }

    #[test]
    fn zero_skipping_costs() {
        let c = MacConfig::default();
        let counts = MacCounts {
            nonzero: 10,
            zero: 5,
        };
        let full = c.cost(MacMode::FULL, counts);
        assert_eq!(full.cycles, 60); // PELUSO: zeros save energy, not cycles
        assert!((full.energy_pj - (38.0 + 5.0 * 0.103 * 0.95)).abs() < 1e-12);
        let skip = MacConfig {
            zero_skipping: ZeroSkipping::EnergyAndCycles { cycles: 1 },
            ..c
        };
        assert_eq!(skip.cost(MacMode::FULL, counts).cycles, 45);
        assert_eq!(skip.cost(MacMode::HALF, counts).cycles, 15);
        let off = MacConfig {
            zero_skipping: ZeroSkipping::Off,
            ..c
        };
        assert!((off.cost(MacMode::I8_W16, counts).energy_pj - 15.0 * 1.90).abs() < 1e-12);
        let bad = MacConfig {
            zero_energy_ratio: 1.5,
            ..c
        };
        assert!(
            bad.validate()
                .is_err_and(|e| e.contains("zero_energy_ratio"))
        );
    }

    #[test]
    fn float32_multiply_adds_cost_nine_8x8_steps_unless_configured() {
        let c = MacConfig::default();
        let f = MacDatapath::Float32;
        assert_eq!(FLOAT32_MULTIPLY_STEPS, 9);
        assert_eq!(c.datapath_cycles(f), 9);
        assert!((c.datapath_energy_pj(f) - 9.0 * 0.95).abs() < 1e-12);
        let counts = MacCounts {
            nonzero: 10,
            zero: 5,
        };
        let cost = c.datapath_cost(f, counts);
        assert_eq!(cost.cycles, 135); // zeros keep their cycles (energy_only)
        assert!((cost.energy_pj - (85.5 + 5.0 * 0.103 * 0.95)).abs() < 1e-12);
        let slow = MacConfig {
            cycles: PerMode {
                half: 2,
                ..c.cycles
            },
            ..c
        };
        assert_eq!(slow.datapath_cycles(f), 18, "follows the 8x8 step");
        let given = MacConfig {
            float32_cycles: Some(5),
            float32_energy_pj: Some(2.5),
            zero_skipping: ZeroSkipping::Off,
            ..c
        };
        assert_eq!(given.datapath_cost(f, counts).cycles, 75);
        assert!((given.datapath_cost(f, counts).energy_pj - 37.5).abs() < 1e-12);
        let bad = MacConfig {
            float32_cycles: Some(0),
            ..c
        };
        assert!(bad.validate().is_err_and(|e| e.contains("float32_cycles")));
    }

    #[test]
    fn config_reads_from_toml_as_documented() {
        // The example of docs/precision.md.
        let text = r#"
cycles = { "16x16" = 4, "16x8" = 2, "8x16" = 2, "8x8" = 1 }
energy_pj = { "16x16" = 3.80, "16x8" = 1.90, "8x16" = 1.90, "8x8" = 0.95 }
zero_energy_ratio = 0.103
zero_skipping = { mode = "energy_only" }
area_um2 = 1443.0
"#;
        let c: MacConfig = toml::from_str(text).expect("documented example parses");
        assert_eq!(c, MacConfig::default());
        let c: MacConfig =
            toml::from_str("zero_skipping = { mode = \"energy_and_cycles\" }").expect("parses");
        assert_eq!(c.zero_skipping, ZeroSkipping::EnergyAndCycles { cycles: 1 });
        let e = toml::from_str::<MacConfig>("cycles = { \"16x16\" = 4 }").expect_err("partial");
        assert!(e.to_string().contains("missing field"), "{e}");
        let e = toml::from_str::<MacConfig>("cycle = 3").expect_err("unknown key");
        assert!(e.to_string().contains("unknown field"), "{e}");
    }
}
