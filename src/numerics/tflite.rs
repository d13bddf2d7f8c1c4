//! Integer requantisation exactly as TensorFlow Lite's reference kernels do it.
//!
//! These are line-for-line ports of gemmlowp's `SaturatingRoundingDoublingHighMul`
//! and `RoundingDivideByPOT` and of TFLite's `MultiplyByQuantizedMultiplier`
//! (the default, double-rounding variant in `tensorflow/lite/kernels/internal/common.h`)
//! and `QuantizeMultiplier` (`quantization_util.cc`). Where C++ would overflow a
//! signed integer (undefined behaviour), we wrap, which is what the compiled
//! reference kernels do on every mainstream target.

/// gemmlowp `SaturatingRoundingDoublingHighMul`: the high 32 bits of `2*a*b`,
/// rounded to nearest. The nudge (`2^30`, or `1 - 2^30` for negative products)
/// followed by truncating division makes ties go towards +infinity: 1.5 -> 2
/// but -1.5 -> -1. Saturates the single overflow case `a == b == i32::MIN`.
pub fn saturating_rounding_doubling_high_mul(a: i32, b: i32) -> i32 {
    if a == i32::MIN && b == i32::MIN {
        return i32::MAX;
    }
    let ab = i64::from(a) * i64::from(b);
    let nudge: i64 = if ab >= 0 { 1 << 30 } else { 1 - (1 << 30) };
    // C++ integer division truncates towards zero, as Rust's does.
    ((ab + nudge) / (1i64 << 31)) as i32
}

/// gemmlowp `RoundingDivideByPOT`: `x / 2^exponent`, rounded to nearest with
/// ties away from zero. `exponent` is clamped to [0, 31] as the reference asserts.
pub fn rounding_divide_by_pot(x: i32, exponent: i32) -> i32 {
    let exponent = exponent.clamp(0, 31);
    let mask: i32 = ((1i64 << exponent) - 1) as i32;
    let remainder = x & mask;
    let threshold = (mask >> 1) + i32::from(x < 0);
    (x >> exponent) + i32::from(remainder > threshold)
}

/// TFLite `MultiplyByQuantizedMultiplier(x, quantized_multiplier, shift)`:
/// `x * multiplier * 2^shift / 2^31` with gemmlowp's rounding; `shift > 0`
/// is a left shift applied before the multiply.
pub fn multiply_by_quantized_multiplier(x: i32, quantized_multiplier: i32, shift: i32) -> i32 {
    let left_shift = shift.max(0);
    let right_shift = (-shift).max(0);
    let shifted = x.wrapping_mul(1i32.wrapping_shl(left_shift.min(31) as u32));
    rounding_divide_by_pot(
        saturating_rounding_doubling_high_mul(shifted, quantized_multiplier),
        right_shift,
    )
}

/// Whether TFLite forms a layer's effective scale on its per-tensor
/// ("legacy") path, `GetQuantizedConvolutionMultipler` in `kernel_util.cc`:
/// every fully connected layer (per-channel weight scales included, one
/// multiplier per channel) and every convolution with uint8 activations and
/// a single weight scale. That path rounds `s_in * s_w` to float32 before
/// widening to double; the per-channel path
/// (`PopulateConvolutionQuantizationParams`) is all double
/// (docs/numerics.md, "The output stage").
pub fn uses_legacy_multiplier(
    is_fc: bool,
    input: &super::TensorQuant,
    weights: &super::WeightQuant,
) -> bool {
    is_fc
        || (input.dtype() == super::IntType::Uint8
            && matches!(weights, super::WeightQuant::Affine { scales, .. } if scales.len() == 1))
}

/// TFLite `QuantizeMultiplier`: splits a positive real multiplier into a Q31
/// mantissa in [2^30, 2^31) and a power-of-two exponent, so that
/// `real ~= mantissa * 2^(shift - 31)`. Returns `(mantissa, shift)`.
///
/// Zero gives (0, 0); multipliers too small to represent (`shift < -31`)
/// become (0, 0) as in TFLite. Negative or non-finite inputs also give (0, 0):
/// callers validate scales before they get here.
pub fn quantize_multiplier(real_multiplier: f64) -> (i32, i32) {
    if real_multiplier == 0.0 || !real_multiplier.is_finite() || real_multiplier < 0.0 {
        return (0, 0);
    }
    let (q, mut shift) = libm::frexp(real_multiplier);
    // TfLiteRound is std::round: half away from zero.
    let mut q_fixed = (q * (1i64 << 31) as f64).round() as i64;
    if q_fixed == 1i64 << 31 {
        q_fixed /= 2;
        shift += 1;
    }
    if shift < -31 {
        return (0, 0);
    }
    if q_fixed > i64::from(i32::MAX) {
        // Unreachable for finite inputs (frexp mantissa < 1); kept total.
        return (i32::MAX, shift);
    }
    (q_fixed as i32, shift)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn srdhm_matches_hand_values() {
        // 2 * (2^30) * (2^30) / 2^32 = 2^29
        assert_eq!(
            saturating_rounding_doubling_high_mul(1 << 30, 1 << 30),
            1 << 29
        );
        assert_eq!(
            saturating_rounding_doubling_high_mul(i32::MIN, i32::MIN),
            i32::MAX
        );
        // 2*a*b/2^32 with a = 3, b = 2^30 is 1.5: ties go towards +infinity.
        assert_eq!(saturating_rounding_doubling_high_mul(3, 1 << 30), 2);
        assert_eq!(saturating_rounding_doubling_high_mul(-3, 1 << 30), -1);
        assert_eq!(saturating_rounding_doubling_high_mul(-5, 1 << 30), -2); // -2.5
        assert_eq!(saturating_rounding_doubling_high_mul(-7, 1 << 30), -3); // -3.5
        assert_eq!(
            saturating_rounding_doubling_high_mul(i32::MIN, i32::MAX),
            -i32::MAX
        );
    }

    #[test]
    fn rounding_divide_by_pot_ties_away_from_zero() {
        assert_eq!(rounding_divide_by_pot(5, 1), 3);
        assert_eq!(rounding_divide_by_pot(-5, 1), -3);
        assert_eq!(rounding_divide_by_pot(6, 2), 2); // 1.5 -> 2
        assert_eq!(rounding_divide_by_pot(-6, 2), -2); // -1.5 -> -2
        assert_eq!(rounding_divide_by_pot(-7, 2), -2); // -1.75
        assert_eq!(rounding_divide_by_pot(i32::MIN, 31), -1);
        assert_eq!(rounding_divide_by_pot(i32::MAX, 31), 1);
        assert_eq!(rounding_divide_by_pot(7, 0), 7);
    }

    #[test]
    fn quantize_multiplier_round_trips() {
        assert_eq!(quantize_multiplier(0.5), (1 << 30, 0));
        assert_eq!(quantize_multiplier(0.25), (1 << 30, -1));
        assert_eq!(quantize_multiplier(1.0), (1 << 30, 1));
        assert_eq!(quantize_multiplier(0.0), (0, 0));
        assert_eq!(quantize_multiplier(1e-12), (0, 0));
        // A mantissa that rounds up to 2^31 moves into the exponent.
        let (m, s) = quantize_multiplier(0.999_999_999_9);
        assert_eq!((m, s), (1 << 30, 1));
        for real in [0.0123, 0.3, 0.75, 1.7, 3.9e-4, 12.5] {
            let (m, s) = quantize_multiplier(real);
            let back = f64::from(m) * 2f64.powi(s - 31);
            assert!((back - real).abs() / real < 1e-9, "{real} -> {back}");
        }
    }

    #[test]
    fn multiply_by_quantized_multiplier_scales() {
        let (m, s) = quantize_multiplier(0.5);
        assert_eq!(multiply_by_quantized_multiplier(100, m, s), 50);
        assert_eq!(multiply_by_quantized_multiplier(101, m, s), 51); // 50.5 -> 51
        assert_eq!(multiply_by_quantized_multiplier(-101, m, s), -50); // -50.5 -> -50
        let (m, s) = quantize_multiplier(3.0);
        assert_eq!(multiply_by_quantized_multiplier(7, m, s), 21);
        let (m, s) = quantize_multiplier(0.1);
        assert_eq!(multiply_by_quantized_multiplier(1000, m, s), 100);
        assert_eq!(multiply_by_quantized_multiplier(15, m, s), 2); // 1.5 -> 2
    }
}
