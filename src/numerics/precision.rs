//! Per-layer precision assignment (SPEC section 2, PELUSO): each weighted
//! layer's input map and weights are used at 8 or 16 bits, and so is the
//! output of the last weighted layer: a vector X of 2L + 1 booleans.
//!
//! What a width means numerically is fixed by `mac`: an 8-bit operand is the
//! high byte of the same 16-bit word (`mac::reduce`), so an assignment is a
//! pure transformation of a 16-bit dynamic fixed-point network
//! (docs/precision.md). This module is only the assignment, its bit vector
//! and its text form; `reference::precision` runs a network at an assignment.

use serde::{Serialize, Serializer};

use super::mac::{MacMode, Width};

/// The precision of every weighted layer plus the last output.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PrecisionAssignment {
    /// One MAC mode per weighted layer (conv or fc), in network order.
    layers: Vec<MacMode>,
    /// The word length of the last weighted layer's output.
    output: Width,
}

impl PrecisionAssignment {
    /// `layers` weighted layers all in `mode`, the output at `output`.
    pub fn uniform(layers: usize, mode: MacMode, output: Width) -> Self {
        PrecisionAssignment {
            layers: vec![mode; layers],
            output,
        }
    }

    /// Everything at 16 bits (the search's starting point and the reference).
    pub fn full(layers: usize) -> Self {
        Self::uniform(layers, MacMode::FULL, Width::W16)
    }

    /// Everything at 8 bits.
    pub fn half(layers: usize) -> Self {
        Self::uniform(layers, MacMode::HALF, Width::W8)
    }

    /// PELUSO's per-network alternatives: all layers in `mode`; the output is
    /// 8-bit exactly when the mode's input is (the output of one layer is the
    /// input of the next, so "8x16 everywhere" stores every map in 8 bits).
    pub fn per_network(layers: usize, mode: MacMode) -> Self {
        Self::uniform(layers, mode, mode.input)
    }

    pub fn new(layers: Vec<MacMode>, output: Width) -> Self {
        PrecisionAssignment { layers, output }
    }

    /// Number of weighted layers L.
    pub fn layer_count(&self) -> usize {
        self.layers.len()
    }

    pub fn layers(&self) -> &[MacMode] {
        &self.layers
    }

    /// The mode of weighted layer `k` (0-based among weighted layers).
    pub fn layer(&self, k: usize) -> Option<MacMode> {
        self.layers.get(k).copied()
    }

    pub fn output(&self) -> Width {
        self.output
    }

    /// The vector X of 2L + 1 booleans, `true` meaning 8 bits (reduced):
    /// `X[2k]` is layer k's input, `X[2k + 1]` its weights, `X[2L]` the output.
    pub fn to_bits(&self) -> Vec<bool> {
        let mut bits = Vec::with_capacity(2 * self.layers.len() + 1);
        for m in &self.layers {
            bits.push(m.input == Width::W8);
            bits.push(m.weight == Width::W8);
        }
        bits.push(self.output == Width::W8);
        bits
    }

    /// The inverse of [`Self::to_bits`]; `bits` must have odd length.
    pub fn from_bits(bits: &[bool]) -> Result<Self, String> {
        if bits.len() % 2 != 1 {
            return Err(format!(
                "a precision vector has 2L + 1 entries; got {}",
                bits.len()
            ));
        }
        let width = |b: bool| if b { Width::W8 } else { Width::W16 };
        let layers = bits[..bits.len() - 1]
            .chunks_exact(2)
            .map(|p| MacMode::new(width(p[0]), width(p[1])))
            .collect();
        Ok(PrecisionAssignment {
            layers,
            output: width(bits[bits.len() - 1]),
        })
    }

    /// Parses the text form `16x16,8x16,8x8/8`: one `IxW` per weighted layer,
    /// then `/` and the output width. `layers` is the expected L.
    pub fn parse(text: &str, layers: usize) -> Result<Self, String> {
        let (modes, output) = text.trim().rsplit_once('/').ok_or_else(|| {
            format!(
                "`{text}` is not a precision assignment; valid: {layers} comma-separated \
                 IxW modes (16x16, 16x8, 8x16, 8x8), `/`, and the output width 8 or 16, \
                 e.g. `{}`",
                Self::full(layers)
            )
        })?;
        let modes: Vec<MacMode> = modes
            .split(',')
            .map(|m| m.trim().parse::<MacMode>())
            .collect::<Result<_, _>>()?;
        if modes.len() != layers {
            return Err(format!(
                "`{text}` gives {} layer precisions; the network has {layers} weighted layers",
                modes.len()
            ));
        }
        let output = match output.trim() {
            "8" => Width::W8,
            "16" => Width::W16,
            o => return Err(format!("output width `{o}`; valid: 8 or 16")),
        };
        Ok(PrecisionAssignment::new(modes, output))
    }

    /// What a user types: the full text form ([`Self::parse`]), or one mode
    /// (`8x16`) for PELUSO's per-network alternative ([`Self::per_network`]).
    pub fn from_spec(text: &str, layers: usize) -> Result<Self, String> {
        let t = text.trim();
        if !t.contains('/')
            && !t.contains(',')
            && let Ok(mode) = t.parse::<MacMode>()
        {
            return Ok(Self::per_network(layers, mode));
        }
        Self::parse(t, layers)
    }
}

impl std::fmt::Display for PrecisionAssignment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (k, m) in self.layers.iter().enumerate() {
            if k > 0 {
                f.write_str(",")?;
            }
            write!(f, "{m}")?;
        }
        write!(f, "/{}", self.output)
    }
}

/// Reports carry the text form.
impl Serialize for PrecisionAssignment {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_round_trip_and_order() {
        let a = PrecisionAssignment::new(vec![MacMode::I8_W16, MacMode::I16_W8], Width::W8);
        assert_eq!(a.to_bits(), vec![true, false, false, true, true]);
        assert_eq!(PrecisionAssignment::from_bits(&a.to_bits()), Ok(a.clone()));
        assert!(PrecisionAssignment::from_bits(&[true, false]).is_err());
        assert_eq!(PrecisionAssignment::full(3).to_bits(), vec![false; 7]);
        assert_eq!(PrecisionAssignment::half(3).to_bits(), vec![true; 7]);
    }

    #[test]
    fn text_round_trip() {
        let a = PrecisionAssignment::new(vec![MacMode::FULL, MacMode::HALF], Width::W16);
        assert_eq!(a.to_string(), "16x16,8x8/16");
        assert_eq!(PrecisionAssignment::parse("16x16, 8x8 /16", 2), Ok(a));
        assert!(PrecisionAssignment::parse("16x16/16", 2).is_err_and(|e| e.contains("2 weighted")));
        assert!(PrecisionAssignment::parse("16x16", 1).is_err_and(|e| e.contains("e.g.")));
        assert!(PrecisionAssignment::parse("16x16/12", 1).is_err());
        let per = PrecisionAssignment::per_network(2, MacMode::I8_W16);
        assert_eq!(per.to_string(), "8x16,8x16/8");
        assert_eq!(PrecisionAssignment::from_spec(" 8x16 ", 2), Ok(per.clone()));
        assert_eq!(PrecisionAssignment::from_spec("8x16,8x16/8", 2), Ok(per));
        assert!(PrecisionAssignment::from_spec("8x9", 2).is_err_and(|e| e.contains("e.g.")));
    }
}
