//! ONNX Runtime's kernels for a per-channel operation on one quantised
//! tensor: DenseNet-121's batch norms after a Concat (no convolution to fold
//! them into) and its scale layer, a Mul and an Add by `[C, 1, 1]`
//! constants (docs/onnx.md, item 19). Each output element depends on its
//! input element and its channel only: [`ChannelKernel::apply`].
//!
//! - **BatchNormalization** runs in float32 between DequantizeLinear and
//!   QuantizeLinear (`batch_norm.h`, inference): per channel
//!   `s = (1 / sqrt(var + eps)) * scale` and `b = bias - mean * s`, then
//!   `y = x * s + b` with each product rounded before its addition (no
//!   fused multiply-add), then QuantizeLinear.
//! - **QLinearMul** (MLAS `qlmul.cpp`, SSE2 path on x86-64) takes the exact
//!   integer product `(a - za) * (b - zb)`, converts it to float32,
//!   multiplies by `sa * sb / sc` (float32, that order), adds `zc` in
//!   float32 and rounds half to even, saturating.
//! - **QLinearAdd** with a broadcast operand (MLAS AVX2, `IsScalarB`): the
//!   constant part `fixed = zc - fma(ra, za, rb * zb)` takes the channel's
//!   operand in a further fused multiply-add, `fma(b, rb, fixed)`, then
//!   `c = fma(a, ra, that)`; the unfused `Q(DQ(a) + DQ(b))` of an int8 QDQ
//!   Add is the other rule.
//! - The unfused int8 QDQ Mul is `Q(DQ(a) * DQ(b))` in float32.

use super::ort::{affine, saturate};
use super::quant::{IntType, TensorQuant};

/// How one channel's element is computed (module docs).
#[derive(Debug, Clone, PartialEq)]
enum Rule {
    /// `Q(DQ(x) * scale[c] + bias[c])`.
    BatchNorm { scale: Vec<f32>, bias: Vec<f32> },
    /// `round(f32((x - zx) * b[c]) * ratio + zy)`, `b[c]` already less its
    /// zero point.
    QLinearMul { operand: Vec<i32>, ratio: f32 },
    /// `round(fma(x, ra, fixed[c]))`.
    QLinearAdd { ratio_a: f32, fixed: Vec<f32> },
    /// `Q(DQ(x) * value[c])`, `value[c]` the dequantised operand.
    FloatMul { value: Vec<f32> },
    /// `Q(DQ(x) + value[c])`.
    FloatAdd { value: Vec<f32> },
}

/// A per-channel operation programmed for one layer.
#[derive(Debug, Clone, PartialEq)]
pub struct ChannelKernel {
    rule: Rule,
    x: (f32, i32),
    y: (f32, i32),
    dtype: IntType,
}

/// The dequantised value `f32(q - z) * s` of each stored operand element.
fn dequantised(operand: &[i32], quant: &TensorQuant) -> Vec<f32> {
    let (s, z) = affine(quant);
    operand.iter().map(|&q| (q - z) as f32 * s).collect()
}

impl ChannelKernel {
    fn new(rule: Rule, input: &TensorQuant, output: &TensorQuant) -> Self {
        ChannelKernel {
            rule,
            x: affine(input),
            y: affine(output),
            dtype: output.dtype(),
        }
    }

    /// BatchNormalization's inference kernel from its float32 parameters
    /// (one per channel each).
    pub fn batch_norm(
        [scale, bias, mean, var]: [&[f32]; 4],
        epsilon: f32,
        input: &TensorQuant,
        output: &TensorQuant,
    ) -> Self {
        let (s, b) = super::ort_float::batch_norm_constants([scale, bias, mean, var], epsilon);
        Self::new(Rule::BatchNorm { scale: s, bias: b }, input, output)
    }

    /// ONNX Runtime's QLinearMul by a per-channel operand (stored integers
    /// `operand`, quantisation `operand_quant`).
    pub fn qlinear_mul(
        operand: &[i32],
        operand_quant: &TensorQuant,
        input: &TensorQuant,
        output: &TensorQuant,
    ) -> Self {
        let (sa, _) = affine(input);
        let (sb, zb) = affine(operand_quant);
        let (sc, _) = affine(output);
        let operand = operand.iter().map(|&b| b - zb).collect();
        let ratio = sa * sb / sc;
        Self::new(Rule::QLinearMul { operand, ratio }, input, output)
    }

    /// ONNX Runtime's QLinearAdd of a per-channel operand (the broadcast
    /// kernel, `IsScalarB`).
    pub fn qlinear_add(
        operand: &[i32],
        operand_quant: &TensorQuant,
        input: &TensorQuant,
        output: &TensorQuant,
    ) -> Self {
        let ((sa, za), (sb, zb), (sc, zc)) = (affine(input), affine(operand_quant), affine(output));
        let ratio_a = sa / sc;
        let ratio_b = sb / sc;
        // The compiler contracts `ra * za + rb * zb` into one fused
        // multiply-add, and `fixed + b * rb` into another (measured).
        let fixed = zc as f32 - ratio_a.mul_add(za as f32, ratio_b * zb as f32);
        let fixed = operand
            .iter()
            .map(|&b| (b as f32).mul_add(ratio_b, fixed))
            .collect();
        Self::new(Rule::QLinearAdd { ratio_a, fixed }, input, output)
    }

    /// The unfused int8 QDQ Mul or Add by a
    /// per-channel operand, in float32 (`add`: false for the Mul).
    pub fn float(
        add: bool,
        operand: &[i32],
        operand_quant: &TensorQuant,
        input: &TensorQuant,
        output: &TensorQuant,
    ) -> Self {
        let value = dequantised(operand, operand_quant);
        let rule = if add {
            Rule::FloatAdd { value }
        } else {
            Rule::FloatMul { value }
        };
        Self::new(rule, input, output)
    }

    /// Channels the kernel holds constants for.
    pub fn channels(&self) -> usize {
        match &self.rule {
            Rule::BatchNorm { scale, .. } => scale.len(),
            Rule::QLinearMul { operand, .. } => operand.len(),
            Rule::QLinearAdd { fixed, .. } => fixed.len(),
            Rule::FloatMul { value } | Rule::FloatAdd { value } => value.len(),
        }
    }

    /// QuantizeLinear of a float32 value: divide, round half to even, add
    /// the zero point, saturate.
    fn quantize(&self, v: f32) -> i16 {
        saturate(
            (v / self.y.0).round_ties_even() + self.y.1 as f32,
            self.dtype,
        )
    }

    /// Output element of stored input element `x` in channel `c` (a
    /// channel beyond the constants takes the last one's: one value
    /// broadcast to every channel).
    #[inline]
    pub fn apply(&self, c: usize, x: i16) -> i16 {
        let dq = |x: i16| (i32::from(x) - self.x.1) as f32 * self.x.0;
        let at = |v: &[f32]| v[c.min(v.len().saturating_sub(1))];
        match &self.rule {
            Rule::BatchNorm { scale, bias } => self.quantize(dq(x) * at(scale) + at(bias)),
            Rule::QLinearMul { operand, ratio } => {
                let b = operand[c.min(operand.len().saturating_sub(1))];
                let product = (i32::from(x) - self.x.1) * b;
                saturate(product as f32 * ratio + self.y.1 as f32, self.dtype)
            }
            Rule::QLinearAdd { ratio_a, fixed } => {
                saturate(f32::from(x).mul_add(*ratio_a, at(fixed)), self.dtype)
            }
            Rule::FloatMul { value } => self.quantize(dq(x) * at(value)),
            Rule::FloatAdd { value } => self.quantize(dq(x) + at(value)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(dtype: IntType, scale: f32, zero_point: i32) -> TensorQuant {
        TensorQuant::Affine {
            dtype,
            scale,
            zero_point,
        }
    }

    /// Hand-derived values: exact binary fractions, so every float step is
    /// exact and the rounding is the only choice.
    #[test]
    fn each_rule_on_exact_values() {
        let x = q(IntType::Uint8, 0.5, 10);
        let y = q(IntType::Uint8, 0.25, 3);
        let b = q(IntType::Uint8, 0.25, 2);
        // BN: 1 / sqrt(3 + 1) = 0.5, s = 0.5 * 2 = 1, b = 1 - 0.5 * 1 = 0.5;
        // x = 14: DQ 2, 2 * 1 + 0.5 = 2.5, / 0.25 = 10, + 3 = 13.
        let bn = ChannelKernel::batch_norm([&[2.0], &[1.0], &[0.5], &[3.0]], 1.0, &x, &y);
        assert_eq!(bn.apply(0, 14), 13);
        assert_eq!(bn.apply(0, 255), 255); // 122.5 * 1 + 0.5 = 123 -> 492 + 3: saturated
        // Mul: (14 - 10) * (6 - 2) = 16, * (0.5 * 0.25 / 0.25) = 8, + 3 = 11.
        let mul = ChannelKernel::qlinear_mul(&[6, 2, 7], &b, &x, &y);
        assert_eq!(mul.apply(0, 14), 11);
        assert_eq!(mul.apply(1, 14), 3); // b - zb = 0: the zero point
        // (11 - 10) * (7 - 2) * 0.5 = 2.5, + 3 = 5.5 -> 6: the zero point is
        // added before rounding (rounding first would give 2 + 3 = 5).
        assert_eq!(mul.apply(2, 11), 6);
        // Add: ra = 2, rb = 1, fixed = 3 - (2 * 10 + 1 * 2) = -19; channel 0:
        // 6 - 19 = -13; x = 14: 28 - 13 = 15 = (2 + 1) / 0.25 + 3.
        let add = ChannelKernel::qlinear_add(&[6, 2], &b, &x, &y);
        assert_eq!(add.apply(0, 14), 15);
        assert_eq!(add.apply(1, 14), 11); // DQ(b) = 0: 2 / 0.25 + 3
        assert_eq!(add.apply(1, 0), 0); // -5 / 0.25 + 3 = -17: saturated
        let float_add = ChannelKernel::float(true, &[6, 2], &b, &x, &y);
        assert_eq!(float_add.apply(0, 14), 15);
        let float_mul = ChannelKernel::float(false, &[6, 2], &b, &x, &y);
        assert_eq!(float_mul.apply(0, 14), 11); // 2 * 1 / 0.25 + 3
        assert_eq!(float_mul.channels(), 2);
    }

    /// One value broadcast to every channel (a scalar operand).
    #[test]
    fn a_single_value_serves_every_channel() {
        let x = q(IntType::Int8, 0.5, 0);
        let y = q(IntType::Int8, 0.5, -1);
        let mul = ChannelKernel::qlinear_mul(&[3], &q(IntType::Int8, 1.0, 1), &x, &y);
        // (4 - 0) * (3 - 1) * (0.5 * 1 / 0.5) = 8, - 1 = 7, in every channel.
        assert_eq!([mul.apply(0, 4), mul.apply(5, 4)], [7, 7]);
        assert_eq!(mul.apply(0, 100), 127); // 199: saturated to int8
    }
}
