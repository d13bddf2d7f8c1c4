//! ONNX Runtime's dynamic quantisation (`quantize_dynamic`; docs/onnx.md,
//! item 20): the arithmetic of `DynamicQuantizeLinear` (uint8) and of the
//! float epilogue the quantiser writes after `ConvInteger` /
//! `MatMulInteger`. Measured with `scripts/ort_dynamic_probe.py` (ONNX
//! Runtime 1.32, x86-64) and read in ONNX Runtime's
//! `GetQuantizationParameter` (`core/util/qmath.h`; the same formula in
//! `DynamicQuantizeMatMul`) and MLAS's `MlasQuantizeLinear`.
//!
//! - **Parameters** ([`DynamicQuant::of_range`]): the tensor's minimum and
//!   maximum, widened to include 0; `scale = (max - min) / 255` in float32
//!   (1 when `max == min`, i.e. an all-zero tensor); the zero point
//!   `round_half_even(clamp(0 - min / scale, 0, 255))`.
//! - **Values** ([`DynamicQuant::quantize`]): `x / scale` (a division, not
//!   a product with the reciprocal: that differs in 5,820 of 403,200
//!   probed values), clamped to `[0 - zp, 255 - zp]`, rounded half to even,
//!   plus the zero point.
//! - **Epilogue** ([`float_epilogue`]): the exact int32 sum of
//!   `(x - zx) * (w - zw)` cast to float32, times `x_scale * w_scale` (one
//!   float32 product, computed once per layer), plus the float32 bias: two
//!   roundings, no fused multiply-add (with one, 17,069 of 64,800 probed
//!   ConvInteger outputs and 1,251 of 4,800 MatMulInteger outputs differ).
//!   ONNX Runtime fuses `DynamicQuantizeLinear -> MatMulInteger -> Cast ->
//!   Mul -> Add` into `com.microsoft.DynamicQuantizeMatMul`, which computes
//!   the same values.

/// A tensor's run-time uint8 quantisation: its scale and zero point.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DynamicQuant {
    pub scale: f32,
    pub zero_point: i32,
}

/// The smallest and largest value of `values`, each widened to include 0
/// (ONNX Runtime's `MlasFindMinMaxElement` then `min(min, 0)`,
/// `max(max, 0)`). NaNs are skipped.
pub fn range_with_zero(values: impl IntoIterator<Item = f32>) -> (f32, f32) {
    values
        .into_iter()
        .fold((0.0f32, 0.0f32), |(lo, hi), v| (lo.min(v), hi.max(v)))
}

impl DynamicQuant {
    /// The parameters of a tensor whose values span `[min, max]` (each
    /// already widened to include 0, [`range_with_zero`]).
    pub fn of_range(min: f32, max: f32) -> Self {
        let (min, max) = (min.min(0.0), max.max(0.0));
        let scale = if max == min { 1.0 } else { (max - min) / 255.0 };
        let initial = 0.0 - min / scale;
        DynamicQuant {
            scale,
            zero_point: initial.clamp(0.0, 255.0).round_ties_even() as i32,
        }
    }

    /// The parameters of the tensor holding `values`.
    pub fn of(values: impl IntoIterator<Item = f32>) -> Self {
        let (min, max) = range_with_zero(values);
        DynamicQuant::of_range(min, max)
    }

    /// `x` quantised: `x / scale`, clamped to `[0 - zp, 255 - zp]`,
    /// rounded half to even, plus the zero point (MLAS's order; a NaN
    /// quantises to the zero point).
    pub fn quantize(&self, x: f32) -> i16 {
        let zp = self.zero_point as f32;
        let v = x / self.scale;
        let v = if v.is_nan() {
            0.0
        } else {
            v.clamp(0.0 - zp, 255.0 - zp)
        };
        (v.round_ties_even() as i32 + self.zero_point) as i16
    }
}

/// The float32 result of a `ConvInteger` / `MatMulInteger` sum `acc` (the
/// exact `sum (x - zx) * (w - zw)`) through the quantiser's `Cast`,
/// `Mul(x_scale * w_scale)` and `Add(bias)`: `f32(acc) * multiplier + bias`,
/// each operation rounded to float32. `multiplier` is the float32 product
/// `x_scale * w_scale` ([`multiplier`]).
pub fn float_epilogue(acc: i64, multiplier: f32, bias: f32) -> f32 {
    let scaled = (acc as f32) * multiplier;
    scaled + bias
}

/// The epilogue's multiplier: `x_scale * w_scale` in float32, the order of
/// the quantiser's `Mul(x_scale, w_scale)` node.
pub fn multiplier(x_scale: f32, w_scale: f32) -> f32 {
    x_scale * w_scale
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_of_a_range_across_zero() {
        // [-1, 1.55]: scale 2.55 / 255 = 0.01 (float32), zero point 100.
        let q = DynamicQuant::of_range(-1.0, 1.55);
        assert_eq!(q.scale, (1.55f32 + 1.0) / 255.0);
        assert_eq!(q.zero_point, 100);
        assert_eq!(q.quantize(0.0), 100);
        assert_eq!(q.quantize(-1.0), 0);
        assert_eq!(q.quantize(1.55), 255);
    }

    #[test]
    fn the_range_always_includes_zero() {
        // All positive: min is 0, so the zero point is 0.
        let q = DynamicQuant::of([0.5, 2.0, 1.0]);
        assert_eq!((q.scale, q.zero_point), (2.0 / 255.0, 0));
        assert_eq!(q.quantize(2.0), 255);
        // All negative: max is 0, the zero point 255.
        let q = DynamicQuant::of([-3.0, -0.25]);
        assert_eq!((q.scale, q.zero_point), (3.0 / 255.0, 255));
        assert_eq!(q.quantize(-3.0), 0);
        assert_eq!(q.quantize(0.0), 255);
    }

    #[test]
    fn an_all_zero_tensor_has_scale_one() {
        let q = DynamicQuant::of([0.0, -0.0, 0.0]);
        assert_eq!((q.scale, q.zero_point), (1.0, 0));
        assert_eq!(q.quantize(0.0), 0);
    }

    #[test]
    fn values_round_half_to_even_after_the_division() {
        // Scale 1 (range [-127.5, 127.5] / 255), zero point round(127.5) = 128.
        let q = DynamicQuant::of_range(-127.5, 127.5);
        assert_eq!((q.scale, q.zero_point), (1.0, 128));
        assert_eq!(q.quantize(0.5), 128); // 0.5 -> 0, + 128
        assert_eq!(q.quantize(1.5), 130); // 1.5 -> 2
        assert_eq!(q.quantize(-2.5), 126); // -2.5 -> -2
        // -127.5 rounds to -128 (even): 0; 127.5 clamps to 127 first: 255.
        assert_eq!(q.quantize(-127.5), 0);
        assert_eq!(q.quantize(127.5), 255);
    }

    #[test]
    fn the_epilogue_rounds_the_product_before_the_addition() {
        // 2^24 + 1 is not a float32: the cast rounds it to 2^24.
        assert_eq!(float_epilogue(16_777_217, 1.0, 0.0), 16_777_216.0);
        // 3 x (1 + 2^-23) = 3 + 1.5 ulp of 3 rounds to 3 + 2^-21; minus 3
        // leaves 2^-21. A fused multiply-add would keep 3 x 2^-23.
        let m = 1.0 + f32::EPSILON;
        assert_eq!(float_epilogue(3, m, -3.0), 2f32.powi(-21));
        assert_ne!(float_epilogue(3, m, -3.0), 3.0 * 2f32.powi(-23));
        assert_eq!(multiplier(0.5, 0.25), 0.125);
    }
}
