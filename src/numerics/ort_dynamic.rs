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
//! - **Softmax** in float32 (the classifiers' last operator in this form):
//!   MLAS's, with its own `exp` and summation order ([`mlas_softmax`]).

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

/// ONNX Runtime's float32 `Softmax` over one row, as MLAS computes it on an
/// x86-64 CPU with AVX-512F (`MlasComputeSoftmax`: the maximum, then
/// `MlasComputeSumExpF32KernelAvx512F`, then `MlasComputeSoftmaxOutputF32KernelAvx`).
/// docs/onnx.md, item 20: `exp(x - max)` by MLAS's own polynomial (fused
/// multiply-adds, [`mlas_exp`]), summed in sixteen lanes (element `i` of
/// each block of 48, then of 16, into lane `i % 16`), the lanes reduced as
/// `a_i = l_i + l_{i+8}`, `((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 +
/// a7))`; each output is `exp * (1 / sum)`. ONNX Runtime on an AVX2-only
/// CPU runs another kernel (eight lanes, another range), not modelled.
pub fn mlas_softmax(row: &[f32]) -> Vec<f32> {
    let max = row.iter().copied().fold(f32::MIN, f32::max);
    let negative_max = -max;
    let mut lanes = [0.0f32; 16];
    let out: Vec<f32> = row.iter().map(|&x| mlas_exp(x + negative_max)).collect();
    // Blocks of 48 add their three vectors in turn; the rest, 16 at a time
    // (the last one masked): either way element i goes to lane i % 16, in order.
    for chunk in out.chunks(16) {
        for (lane, &e) in lanes.iter_mut().zip(chunk) {
            *lane += e;
        }
    }
    let a: Vec<f32> = (0..8).map(|i| lanes[i + 8] + lanes[i]).collect();
    let sum = ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
    let scale = 1.0 / sum;
    out.into_iter().map(|e| scale * e).collect()
}

/// MLAS's `exp` of the AVX-512F sum-of-exponentials kernel: the input
/// clamped below at -103.972084; `m = round(x / ln 2)` by the rounding-bias
/// trick; `x - m ln 2` in two fused multiply-adds (high and low parts of
/// `ln 2`); a degree-6 polynomial by Horner's rule in fused multiply-adds;
/// scaled by `2^m` (`vscalefps`, one rounding).
pub fn mlas_exp(v: f32) -> f32 {
    const LOWER_RANGE: f32 = -103.972_084;
    const ROUNDING_BIAS: f32 = 12_582_912.0; // 1.5 x 2^23
    const LOG2_RECIPROCAL: f32 = std::f32::consts::LOG2_E;
    const LOG2_HIGH: f32 = -6.931_457_5e-1;
    const LOG2_LOW: f32 = -1.428_606_8e-6;
    const POLY: [f32; 5] = [
        f32::from_bits(0x3AB4_A000), // 0x1.694000p-10
        f32::from_bits(0x3C09_2F6E), // 0x1.125edcp-7
        f32::from_bits(0x3D2A_ADAD), // 0x1.555b5ap-5
        f32::from_bits(0x3E2A_AA28), // 0x1.555450p-3
        f32::from_bits(0x3EFF_FFFB), // 0x1.fffff6p-2
    ];
    let x = LOWER_RANGE.max(v);
    let biased = x.mul_add(LOG2_RECIPROCAL, ROUNDING_BIAS);
    let m = biased - ROUNDING_BIAS;
    let x = m.mul_add(LOG2_HIGH, x);
    let x = m.mul_add(LOG2_LOW, x);
    let mut p = POLY[0];
    for c in &POLY[1..] {
        p = p.mul_add(x, *c);
    }
    p = p.mul_add(x, 1.0);
    p = p.mul_add(x, 1.0);
    // p x 2^m, rounded once (exact in f64, then one rounding to f32).
    (f64::from(p) * 2f64.powi(m as i32)) as f32
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

    #[test]
    fn mlas_exp_is_close_to_exp_and_exact_at_zero() {
        assert_eq!(mlas_exp(0.0), 1.0);
        for v in [-0.5f32, -1.0, -10.0, -80.0] {
            let rel = (f64::from(mlas_exp(v)) / f64::from(v).exp() - 1.0).abs();
            assert!(rel < 4e-7, "{v}: {rel}");
        }
        // Below the clamp every input gives exp(-103.972084); exp(-100) is
        // a subnormal, rounded once.
        assert_eq!(mlas_exp(-200.0), mlas_exp(-103.972_084));
        let sub = mlas_exp(-100.0);
        assert!(sub > 0.0 && sub < f32::MIN_POSITIVE);
        assert!((f64::from(sub) / (-100f64).exp() - 1.0).abs() < 0.05);
    }

    #[test]
    fn mlas_softmax_of_equal_values_is_uniform() {
        // exp(0) = 1 each; 20 ones in 16 lanes: lanes 0-3 hold 2, the rest 1;
        // a_i = 3 for i < 4, 2 after: (6 + 6) + (4 + 4) = 20.
        let y = mlas_softmax(&[3.0; 20]);
        assert!(y.iter().all(|&v| v == 1.0 / 20.0f32));
        assert_eq!(mlas_softmax(&[-1.0]), vec![1.0]);
    }
}
