//! ONNX Runtime's float32 kernels for quantised operators that have no
//! integer accumulator: QLinearAdd and the average pools.
//!
//! Each function reproduces, operation by operation, what ONNX Runtime's CPU
//! kernels compute (docs/onnx.md says which kernel and why; docs/numerics.md
//! states the formulas), so accsim's results are bit-identical to ONNX
//! Runtime's. Every intermediate is float32; `mul_add` is a true fused
//! multiply-add (one rounding), as the AVX2 kernel's `vfmadd` instructions.

use super::quant::{IntType, TensorQuant};

/// Scale and zero point of an affine tensor (`(1.0, 0)` for fixed point,
/// which the ONNX importer never produces).
fn affine(q: &TensorQuant) -> (f32, i32) {
    match *q {
        TensorQuant::Affine {
            scale, zero_point, ..
        } => (scale, zero_point),
        TensorQuant::Fixed { .. } => (1.0, 0),
    }
}

/// Rounds half to even and saturates to `dtype`, as `_mm256_cvtps_epi32`
/// followed by the saturating packs.
fn saturate(v: f32, dtype: IntType) -> i16 {
    let (lo, hi) = dtype.range();
    let r = v.round_ties_even();
    if r.is_nan() {
        return 0;
    }
    (r as i64).clamp(i64::from(lo), i64::from(hi)) as i16
}

/// ONNX Runtime's QLinearAdd (`MlasQLinearAddKernelAvx2Helper`): with
/// `ra = sa / sc` and `rb = sb / sc`,
/// `fixed = zc - fma(ra, za, rb * zb)` and `c = fma(a, ra, fma(b, rb, fixed))`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QLinearAdd {
    ratio_a: f32,
    ratio_b: f32,
    fixed: f32,
    dtype: IntType,
}

impl QLinearAdd {
    pub fn new(a: &TensorQuant, b: &TensorQuant, c: &TensorQuant) -> Self {
        let ((sa, za), (sb, zb), (sc, zc)) = (affine(a), affine(b), affine(c));
        let ratio_a = sa / sc;
        let ratio_b = sb / sc;
        // The compiler contracts `ra * za + rb * zb` into one fused multiply-add.
        let fixed = zc as f32 - ratio_a.mul_add(za as f32, ratio_b * zb as f32);
        QLinearAdd {
            ratio_a,
            ratio_b,
            fixed,
            dtype: c.dtype(),
        }
    }

    #[inline]
    pub fn apply(&self, a: i16, b: i16) -> i16 {
        let t = f32::from(b).mul_add(self.ratio_b, self.fixed);
        saturate(f32::from(a).mul_add(self.ratio_a, t), self.dtype)
    }
}

/// The QDQ Add that ONNX Runtime leaves unfused: `DequantizeLinear` both
/// (`f32(q - z) * s`), add, `QuantizeLinear` (divide, round half to even,
/// add the zero point, saturate).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FloatAdd {
    a: (f32, i32),
    b: (f32, i32),
    c: (f32, i32),
    dtype: IntType,
}

impl FloatAdd {
    pub fn new(a: &TensorQuant, b: &TensorQuant, c: &TensorQuant) -> Self {
        FloatAdd {
            a: affine(a),
            b: affine(b),
            c: affine(c),
            dtype: c.dtype(),
        }
    }

    #[inline]
    pub fn apply(&self, a: i16, b: i16) -> i16 {
        let fa = (i32::from(a) - self.a.1) as f32 * self.a.0;
        let fb = (i32::from(b) - self.b.1) as f32 * self.b.0;
        let q = ((fa + fb) / self.c.0).round_ties_even() + self.c.1 as f32;
        saturate(q, self.dtype)
    }
}

/// QLinearAveragePool's per-window arithmetic (`qlinear_pool.cc`): each
/// element is dequantised to `xs * (x - zx)` in float32 and summed in window
/// order (rows, then columns); the sum is divided by the count, and
/// quantised as `nearbyint(avg / ys + zy)`: the zero point is added in
/// float32 **before** rounding.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QLinearAverage {
    x: (f32, i32),
    y: (f32, i32),
    dtype: IntType,
}

impl QLinearAverage {
    pub fn new(input: &TensorQuant, output: &TensorQuant) -> Self {
        QLinearAverage {
            x: affine(input),
            y: affine(output),
            dtype: output.dtype(),
        }
    }

    /// The dequantised value of one input element.
    #[inline]
    pub fn dequantize(&self, x: i16) -> f32 {
        self.x.0 * (i32::from(x) - self.x.1) as f32
    }

    /// The output for a window whose dequantised sum is `sum` over `count` elements.
    #[inline]
    pub fn finish(&self, sum: f32, count: usize) -> i16 {
        let avg = sum / count as f32;
        saturate(avg / self.y.0 + self.y.1 as f32, self.dtype)
    }
}

/// QLinearGlobalAveragePool (`MlasQLinearGlobalAveragePoolNchw`), also used
/// by QLinearAveragePool when the window is the whole unpadded plane: an
/// exact integer sum, `f32(sum - zx * n) * ((xs / n) / ys)`, rounded half to
/// even, plus `zy`, saturated.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QLinearGlobalAverage {
    zx: i32,
    scale: f32,
    zy: i32,
    count: usize,
    dtype: IntType,
}

impl QLinearGlobalAverage {
    pub fn new(input: &TensorQuant, output: &TensorQuant, count: usize) -> Self {
        let ((sx, zx), (sy, zy)) = (affine(input), affine(output));
        QLinearGlobalAverage {
            zx,
            scale: sx / count as f32 / sy,
            zy,
            count,
            dtype: output.dtype(),
        }
    }

    /// The output for a plane whose stored integers sum to `sum`.
    #[inline]
    pub fn finish(&self, sum: i64) -> i16 {
        let centred = sum - i64::from(self.zx) * self.count as i64;
        let v = (centred as i32 as f32) * self.scale;
        saturate(v.round_ties_even() + self.zy as f32, self.dtype)
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

    #[test]
    fn both_adds_agree_on_exact_cases() {
        let a = q(IntType::Uint8, 0.5, 10);
        let b = q(IntType::Uint8, 0.25, 20);
        let c = q(IntType::Uint8, 0.5, 5);
        let fused = QLinearAdd::new(&a, &b, &c);
        let float = FloatAdd::new(&a, &b, &c);
        // a: (14 - 10) * 0.5 = 2; b: (28 - 20) * 0.25 = 2; c = 4 / 0.5 + 5 = 13
        assert_eq!(fused.apply(14, 28), 13);
        assert_eq!(float.apply(14, 28), 13);
        assert_eq!(fused.apply(255, 255), 255); // saturates
        assert_eq!(float.apply(0, 0), 0);
    }

    #[test]
    fn average_adds_zero_point_before_rounding() {
        let x = q(IntType::Int8, 1.0, 0);
        let y = q(IntType::Int8, 1.0, 1);
        let avg = QLinearAverage::new(&x, &y);
        // 0.5 + 1 = 1.5 rounds to 2 (even); rounding first would give 0 + 1 = 1.
        assert_eq!(avg.finish(1.0, 2), 2);
        let g = QLinearGlobalAverage::new(&x, &y, 2);
        assert_eq!(g.finish(1), 1); // round(0.5) = 0, then + 1
    }
}
