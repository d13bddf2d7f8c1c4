//! How integers stand for real numbers: the quantisation of a tensor.
//!
//! Two families, both from the sources (docs/numerics.md):
//! - **affine** (TFLite / ONNX): `real = scale * (q - zero_point)`, 8-bit
//!   activations (uint8 or int8), int8 weights with per-tensor or per-channel
//!   scales, int32 bias and accumulators;
//! - **dynamic fixed point** (PELUSO): `real = q * 2^-frac_len`, signed 8- or
//!   16-bit words, a fractional length per tensor, no zero point.

use serde::{Deserialize, Serialize};

/// The storage type of quantised values. All are held in memory as `i16`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IntType {
    Uint8,
    Int8,
    Int16,
}

impl IntType {
    /// Smallest and largest representable value.
    pub fn range(self) -> (i32, i32) {
        match self {
            IntType::Uint8 => (0, 255),
            IntType::Int8 => (-128, 127),
            IntType::Int16 => (-32768, 32767),
        }
    }

    /// Storage width in bits.
    pub fn bits(self) -> u32 {
        match self {
            IntType::Uint8 | IntType::Int8 => 8,
            IntType::Int16 => 16,
        }
    }

    /// Storage width in bytes.
    pub fn bytes(self) -> u64 {
        u64::from(self.bits() / 8)
    }

    /// NumPy's name for the type.
    pub fn numpy_name(self) -> &'static str {
        match self {
            IntType::Uint8 => "uint8",
            IntType::Int8 => "int8",
            IntType::Int16 => "int16",
        }
    }

    /// The signed type of `bits` bits (8 or 16).
    pub fn signed(bits: u32) -> Option<IntType> {
        match bits {
            8 => Some(IntType::Int8),
            16 => Some(IntType::Int16),
            _ => None,
        }
    }
}

/// Quantisation of an activation tensor (network input or layer output).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum TensorQuant {
    /// `real = scale * (q - zero_point)`.
    Affine {
        dtype: IntType,
        scale: f32,
        zero_point: i32,
    },
    /// `real = q * 2^-frac_len`, a signed `bits`-bit word.
    Fixed { bits: u32, frac_len: i32 },
}

impl TensorQuant {
    /// The storage type.
    pub fn dtype(&self) -> IntType {
        match *self {
            TensorQuant::Affine { dtype, .. } => dtype,
            TensorQuant::Fixed { bits, .. } => IntType::signed(bits).unwrap_or(IntType::Int16),
        }
    }

    /// The integer that stands for real zero (what padding holds, what
    /// zero-skipping tests against).
    pub fn zero(&self) -> i32 {
        match *self {
            TensorQuant::Affine { zero_point, .. } => zero_point,
            TensorQuant::Fixed { .. } => 0,
        }
    }

    /// Representable integer range.
    pub fn range(&self) -> (i32, i32) {
        self.dtype().range()
    }

    /// The real value of integer `q`.
    pub fn to_real(&self, q: i32) -> f64 {
        match *self {
            TensorQuant::Affine {
                scale, zero_point, ..
            } => f64::from(scale) * f64::from(q - zero_point),
            TensorQuant::Fixed { frac_len, .. } => f64::from(q) * 2f64.powi(-frac_len),
        }
    }

    /// ONNX `QuantizeLinear` (affine: round half to even, saturate) or the
    /// fixed-point equivalent: the integer closest to `real`.
    pub fn quantize(&self, real: f64) -> i32 {
        let (lo, hi) = self.range();
        let q = match *self {
            TensorQuant::Affine {
                scale, zero_point, ..
            } => {
                // QuantizeLinear divides in float32.
                let x = (real as f32) / scale;
                f64::from(x).round_ties_even() + f64::from(zero_point)
            }
            TensorQuant::Fixed { frac_len, .. } => (real * 2f64.powi(frac_len)).round_ties_even(),
        };
        if q.is_nan() {
            return self.zero();
        }
        q.clamp(f64::from(lo), f64::from(hi)) as i32
    }
}

/// Quantisation of a weight tensor.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum WeightQuant {
    /// `real = scales[c] * (q - zero_point)`; one scale (per tensor) or one
    /// per output channel.
    Affine {
        dtype: IntType,
        scales: Vec<f32>,
        zero_point: i32,
    },
    /// `real = q * 2^-frac_len`.
    Fixed { bits: u32, frac_len: i32 },
}

impl WeightQuant {
    /// The storage type.
    pub fn dtype(&self) -> IntType {
        match self {
            WeightQuant::Affine { dtype, .. } => *dtype,
            WeightQuant::Fixed { bits, .. } => IntType::signed(*bits).unwrap_or(IntType::Int16),
        }
    }

    /// The integer that stands for a zero weight.
    pub fn zero(&self) -> i32 {
        match self {
            WeightQuant::Affine { zero_point, .. } => *zero_point,
            WeightQuant::Fixed { .. } => 0,
        }
    }

    /// Scale of output channel `c` (affine only).
    pub fn scale(&self, c: usize) -> Option<f32> {
        match self {
            WeightQuant::Affine { scales, .. } => scales.get(c).or_else(|| scales.first()).copied(),
            WeightQuant::Fixed { .. } => None,
        }
    }
}

/// Activation function fused into the requantisation as a clamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    #[default]
    None,
    Relu,
    Relu6,
}

impl Activation {
    pub fn name(self) -> &'static str {
        match self {
            Activation::None => "none",
            Activation::Relu => "relu",
            Activation::Relu6 => "relu6",
        }
    }

    /// The integer clamp range this activation imposes on an output of
    /// quantisation `quant` (TFLite `CalculateActivationRangeQuantized`:
    /// real 0 and 6 are quantised with the output's own parameters).
    pub fn clamp_range(self, quant: &TensorQuant) -> (i32, i32) {
        let (lo, hi) = quant.range();
        match self {
            Activation::None => (lo, hi),
            Activation::Relu => (quant.zero().max(lo), hi),
            Activation::Relu6 => {
                let six = match *quant {
                    TensorQuant::Affine {
                        scale, zero_point, ..
                    } => {
                        // TFLite: zero_point + TfLiteRound(6.0f / scale), in float.
                        let steps = (6.0f32 / scale).round();
                        if steps.is_finite() {
                            i64::from(zero_point) + steps as i64
                        } else {
                            i64::from(hi)
                        }
                    }
                    TensorQuant::Fixed { frac_len, .. } => {
                        (6.0 * 2f64.powi(frac_len)).round() as i64
                    }
                };
                let six = six.clamp(i64::from(lo), i64::from(hi)) as i32;
                (quant.zero().max(lo), six)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn activation_ranges() {
        let q = TensorQuant::Affine {
            dtype: IntType::Uint8,
            scale: 0.05,
            zero_point: 10,
        };
        assert_eq!(Activation::None.clamp_range(&q), (0, 255));
        assert_eq!(Activation::Relu.clamp_range(&q), (10, 255));
        assert_eq!(Activation::Relu6.clamp_range(&q), (10, 130)); // 10 + 6/0.05
        let f = TensorQuant::Fixed {
            bits: 8,
            frac_len: 4,
        };
        assert_eq!(Activation::Relu.clamp_range(&f), (0, 127));
        assert_eq!(Activation::Relu6.clamp_range(&f), (0, 96));
        let f = TensorQuant::Fixed {
            bits: 8,
            frac_len: 6,
        };
        assert_eq!(Activation::Relu6.clamp_range(&f), (0, 127)); // 384 saturates
    }

    #[test]
    fn quantize_is_half_even_and_saturating() {
        let q = TensorQuant::Affine {
            dtype: IntType::Int8,
            scale: 0.5,
            zero_point: -3,
        };
        assert_eq!(q.quantize(0.25), -3); // 0.5 -> 0 (even)
        assert_eq!(q.quantize(0.75), -1); // 1.5 -> 2
        assert_eq!(q.quantize(1000.0), 127);
        assert_eq!(q.quantize(-1000.0), -128);
        let f = TensorQuant::Fixed {
            bits: 16,
            frac_len: 8,
        };
        assert_eq!(f.quantize(1.5), 384);
        assert_eq!(f.to_real(384), 1.5);
    }
}
