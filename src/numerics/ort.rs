//! ONNX Runtime's float32 kernels for quantised operators that have no
//! integer accumulator: QLinearAdd, the average pools and QLinearSoftmax.
//!
//! Each function reproduces, operation by operation, what ONNX Runtime's CPU
//! kernels compute (docs/onnx.md says which kernel and why; docs/numerics.md
//! states the formulas), so accsim's results are bit-identical to ONNX
//! Runtime's. Every intermediate is float32; `mul_add` is a true fused
//! multiply-add (one rounding), as the AVX2 kernel's `vfmadd` instructions.

use super::quant::{IntType, TensorQuant};
use crate::numerics::eigen_pow::lrn_power;

/// Scale and zero point of an affine tensor (`(1.0, 0)` for fixed point,
/// which the ONNX importer never produces).
pub(super) fn affine(q: &TensorQuant) -> (f32, i32) {
    match *q {
        TensorQuant::Affine {
            scale, zero_point, ..
        } => (scale, zero_point),
        TensorQuant::Fixed { .. } => (1.0, 0),
    }
}

/// Rounds half to even and saturates to `dtype`, as `_mm256_cvtps_epi32`
/// followed by the saturating packs.
pub(super) fn saturate(v: f32, dtype: IntType) -> i16 {
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
    /// The unfused float32 path: QuantizeLinear of the average (rounded,
    /// then the zero point added) instead of the kernel's `avg / ys + zy`.
    unfused: bool,
    /// The kernel runs on the int8 tensors rewritten to uint8: `zy + 128`
    /// is added before rounding, 128 taken off after.
    uint8_kernel: bool,
}

impl QLinearAverage {
    pub fn new(input: &TensorQuant, output: &TensorQuant, unfused: bool) -> Self {
        QLinearAverage {
            x: affine(input),
            y: affine(output),
            dtype: output.dtype(),
            unfused,
            uint8_kernel: false,
        }
    }

    /// The kernel after ONNX Runtime's int8-to-uint8 rewrite (an int8
    /// output only).
    pub fn with_uint8_kernel(mut self, on: bool) -> Self {
        self.uint8_kernel = on && self.dtype == IntType::Int8;
        self
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
        if self.unfused {
            return quantize(avg, self.y, self.dtype);
        }
        if self.uint8_kernel {
            let u = saturate(avg / self.y.0 + (self.y.1 + 128) as f32, IntType::Uint8);
            return u - 128;
        }
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

/// Entries of QLinearSoftmax's exp table: one per distance `max - x` of
/// an 8-bit input from its row's largest element (0 to 255).
pub const SOFTMAX_TABLE_ENTRIES: usize = 256;

/// ONNX Runtime's QLinearSoftmax (`contrib_ops/cpu/quantization/
/// qlinear_softmax.cc`, ONNX Runtime 1.32), which its QDQ transformer makes
/// of `DequantizeLinear -> Softmax -> QuantizeLinear` (docs/onnx.md):
///
/// - a table of 256 float32 values built once from the input scale `xs` and
///   the reduced length `D`: with `shift = max(0, logf(FLT_MAX / D) - 5) / xs`
///   (the quotient and the logarithm in float32, the rest in float64),
///   entry `i` is `f32(exp((i - 255 + shift) * xs))`; entry 255 (an element
///   equal to its row's largest) is about `FLT_MAX / (D e^5)`, so the sum
///   of `D` entries cannot overflow;
/// - an element `x` of a row whose largest element is `m` reads entry
///   `255 - (m - x)` (the stored integers: the zero point cancels);
/// - the row's sum: the entries added one by one in element order, float32;
/// - output: `sat(nearbyint((entry * floor(1 / ys)) / sum) + zy)`, float32,
///   half to even: the output scale enters as the integer `floor(1 / ys)`
///   (254 for the quantiser's `ys = f32(1/255)`), not as `1 / ys`.
#[derive(Debug, Clone, PartialEq)]
pub struct QLinearSoftmax {
    table: [f32; SOFTMAX_TABLE_ENTRIES],
    /// `floor(1 / ys)`, in float32.
    inverse_scale: f32,
    zy: i32,
    dtype: IntType,
}

impl QLinearSoftmax {
    /// The kernel for rows of `reduce_len` elements quantised as `input`,
    /// with output quantisation `output`.
    pub fn new(input: &TensorQuant, output: &TensorQuant, reduce_len: usize) -> Self {
        let ((xs, _), (ys, zy)) = (affine(input), affine(output));
        // `log(FLT_MAX / D)`: the quotient is float32 and C++ picks the
        // float overload of `log`. Both logarithm and exponential are the
        // platform's C library's (`f32::ln`, `f64::exp`), as ONNX Runtime's
        // are: the software libm's `logf` differs from glibc's by one unit
        // in the last place for some lengths (D = 166, 2777, ...), and
        // glibc's is the one ONNX Runtime's outputs follow (docs/onnx.md).
        let headroom = f64::from((f32::MAX / reduce_len.max(1) as f32).ln());
        let shift = (headroom - 5.0).max(0.0) / f64::from(xs);
        let mut table = [0.0f32; SOFTMAX_TABLE_ENTRIES];
        for (i, entry) in table.iter_mut().enumerate() {
            *entry = ((i as f64 - 255.0 + shift) * f64::from(xs)).exp() as f32;
        }
        QLinearSoftmax {
            table,
            inverse_scale: (1.0f32 / ys).floor(),
            zy,
            dtype: output.dtype(),
        }
    }

    /// The table index of element `x` in a row whose largest element is `max`.
    #[inline]
    pub fn index(max: i16, x: i16) -> usize {
        let distance = (i32::from(max) - i32::from(x)).clamp(0, 255);
        (255 - distance) as usize
    }

    /// Table entry `index` (an index past the table reads the last entry).
    #[inline]
    pub fn entry(&self, index: usize) -> f32 {
        self.table[index.min(SOFTMAX_TABLE_ENTRIES - 1)]
    }

    /// The output of an element whose entry is `entry`, in a row whose
    /// entries sum to `sum`.
    #[inline]
    pub fn finish(&self, entry: f32, sum: f32) -> i16 {
        let ratio = (entry * self.inverse_scale) / sum;
        let (lo, hi) = self.dtype.range();
        let r = ratio.round_ties_even();
        if r.is_nan() {
            return self.zy.clamp(lo, hi) as i16;
        }
        (r as i64)
            .saturating_add(i64::from(self.zy))
            .clamp(i64::from(lo), i64::from(hi)) as i16
    }
}

/// QuantizeLinear of a float32 value (MLAS `MlasQuantizeLinear`): divide
/// by the scale, round half to even, add the zero point, saturate.
#[inline]
fn quantize(v: f32, (scale, zero_point): (f32, i32), dtype: IntType) -> i16 {
    saturate((v / scale).round_ties_even() + zero_point as f32, dtype)
}

/// DequantizeLinear of a stored integer: `f32(x - z) * s`.
#[inline]
fn dequantize(x: i16, (scale, zero_point): (f32, i32)) -> f32 {
    (i32::from(x) - zero_point) as f32 * scale
}

/// How QLinearConcat (`qlinear_concat.cc`) moves one input to the output:
/// a copy when the input's scale and zero point equal the output's (the
/// scales compared as float32 values), otherwise through a 256-entry table
/// built once (`QlinearBuildLookupTable`): entry `x` is
/// `QuantizeLinear(f32(x - zx) * xs)` to the output's quantisation.
#[derive(Debug, Clone, PartialEq)]
pub enum ConcatInput {
    Copy,
    Table(Box<[i16; 256]>),
}

impl ConcatInput {
    pub fn new(input: &TensorQuant, output: &TensorQuant) -> Self {
        let (x, y) = (affine(input), affine(output));
        if x == y {
            return ConcatInput::Copy;
        }
        let dtype = output.dtype();
        let mut table = Box::new([0i16; 256]);
        for (byte, entry) in table.iter_mut().enumerate() {
            *entry = quantize(dequantize(stored(byte, input.dtype()), x), y, dtype);
        }
        ConcatInput::Table(table)
    }

    /// The output integer of input integer `x`.
    #[inline]
    pub fn apply(&self, x: i16) -> i16 {
        match self {
            ConcatInput::Copy => x,
            ConcatInput::Table(t) => t[usize::from(x as u8)],
        }
    }
}

/// The value of stored byte `byte` in `dtype` (int8: two's complement).
fn stored(byte: usize, dtype: IntType) -> i16 {
    match dtype {
        IntType::Int8 => i16::from(byte as u8 as i8),
        _ => byte as i16,
    }
}

/// MLAS's logistic (`MlasLogisticKernelFma3`, the kernel x86-64 with
/// AVX2 and FMA runs; `logistic.cpp` has the portable form): the input
/// clamped to [-18, 18], odd and even polynomials in `x^2` by Horner's rule
/// with fused multiply-adds, `p / q + 0.5` clamped to [0, 1].
// The coefficients as MLAS writes them; the compiler rounds each to the
// nearest float32, as the C++ compiler does.
#[allow(clippy::excessive_precision)]
pub fn logistic(x: f32) -> f32 {
    const ALPHA: [f32; 5] = [
        4.37031012579801e-11,
        1.15627324459942e-07,
        6.08574864600143e-05,
        8.51377133304701e-03,
        2.48287947061529e-01,
    ];
    const BETA: [f32; 6] = [
        6.10247389755681e-13,
        5.76102136993427e-09,
        6.29106785017040e-06,
        1.70198817374094e-03,
        1.16817656904453e-01,
        9.93151921023180e-01,
    ];
    let v = x.clamp(-18.0, 18.0);
    let v2 = v * v;
    let p = ALPHA[1..].iter().fold(ALPHA[0], |p, &a| p.mul_add(v2, a)) * v;
    let q = BETA[1..].iter().fold(BETA[0], |q, &b| q.mul_add(v2, b));
    (p / q + 0.5).clamp(0.0, 1.0)
}

/// ONNX Runtime's table-driven activations (`qlinear_activations.cc`,
/// `QlinearBuildLookupTable`): entry `x` (a stored byte) is
/// `QuantizeLinear(f(f32(x - zx) * xs))` to the output's quantisation.
pub fn activation_table(
    f: impl Fn(f32) -> f32,
    input: &TensorQuant,
    output: &TensorQuant,
) -> Box<[i16; 256]> {
    let (x, y) = (affine(input), affine(output));
    let mut table = Box::new([0i16; 256]);
    for (byte, entry) in table.iter_mut().enumerate() {
        let v = dequantize(stored(byte, input.dtype()), x);
        *entry = quantize(f(v), y, output.dtype());
    }
    table
}

/// The unfused `DQ.. -> Sum -> Q` ONNX Runtime runs (its `Sum` kernel):
/// each input dequantised (`f32(q - z) * s`), added in input order in
/// float32 (`((a + b) + c) + ...`), quantised once.
#[derive(Debug, Clone, PartialEq)]
pub struct FloatSum {
    inputs: Vec<(f32, i32)>,
    output: (f32, i32),
    dtype: IntType,
}

impl FloatSum {
    pub fn new(inputs: &[TensorQuant], output: &TensorQuant) -> Self {
        FloatSum {
            inputs: inputs.iter().map(affine).collect(),
            output: affine(output),
            dtype: output.dtype(),
        }
    }

    /// Operands summed.
    pub fn operands(&self) -> usize {
        self.inputs.len()
    }

    /// The output of one position whose inputs are `values`, in input order.
    #[inline]
    pub fn apply(&self, values: impl Iterator<Item = i16>) -> i16 {
        let mut terms = values.zip(&self.inputs).map(|(v, &q)| dequantize(v, q));
        let first = terms.next().unwrap_or(0.0);
        quantize(terms.fold(first, |s, t| s + t), self.output, self.dtype)
    }
}

/// ONNX Runtime's LRN (`core/providers/cpu/nn/lrn.cc`) between
/// DequantizeLinear and QuantizeLinear, which it does not fuse: every step
/// float32, in the kernel's order, at each position over its `C` channels:
///
/// - `sq[c] = x[c] * x[c]` of the dequantised inputs, with `(size - 1) / 2`
///   zero squares before channel 0 and the rest after the last;
/// - channel 0's scale: `bias`, then `+ a * sq[j]` for the first `size`
///   padded squares in order, with `a = alpha / size` (each product
///   rounded, then the addition: no fused multiply-add);
/// - channel `c > 0`'s scale: the previous channel's, `+ a * sq` of the
///   square entering the window, then `+ (-a) * sq` of the one leaving it
///   (a running sum, not a fresh window sum);
/// - `y = x * scale^-beta`, with the power Eigen's vectorised `pow` on
///   whole packets of four of the flattened `[C, H, W]` tensor and the C
///   library's `powf` on its last `C H W mod 4` elements
///   ([`crate::numerics::eigen_pow::lrn_power`]; hence [`LrnPlace`]);
///   quantised (divide, round half to even, add the zero point, saturate)
///   unless the LRN is a dynamic model's float one.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Lrn {
    size: usize,
    alpha_over_size: f32,
    neg_beta: f32,
    bias: f32,
    input: (f32, i32),
    output: (f32, i32),
    dtype: IntType,
}

impl Lrn {
    pub fn new(
        (size, alpha, beta, bias): (usize, f32, f32, f32),
        input: &TensorQuant,
        output: &TensorQuant,
    ) -> Self {
        Lrn {
            size: size.max(1),
            alpha_over_size: alpha / size.max(1) as f32,
            neg_beta: -beta,
            bias,
            input: affine(input),
            output: affine(output),
            dtype: output.dtype(),
        }
    }

    /// The outputs of one position's channels `column` into `out`.
    pub fn column(&self, column: &[i16], out: &mut [i16], place: LrnPlace) {
        let x: Vec<f32> = column.iter().map(|&v| dequantize(v, self.input)).collect();
        let mut y = vec![0.0f32; x.len()];
        self.float_column(&x, &mut y, place);
        for (o, &v) in out.iter_mut().zip(&y) {
            *o = quantize(v, self.output, self.dtype);
        }
    }

    /// The float32 outputs of one position's float32 channels `x` into
    /// `out` (a dynamic model's float LRN; the quantisation is unused).
    pub fn float_column(&self, x: &[f32], out: &mut [f32], place: LrnPlace) {
        let before = (self.size - 1) / 2;
        // Square `j` of the padded sequence (zero outside the channels).
        let square = |j: usize| {
            j.checked_sub(before)
                .and_then(|c| x.get(c))
                .map_or(0.0, |v| v * v)
        };
        let a = self.alpha_over_size;
        let mut scale = (0..self.size).fold(self.bias, |s, j| s + a * square(j));
        for (c, (&xc, o)) in x.iter().zip(out.iter_mut()).enumerate() {
            if c > 0 {
                scale += a * square(c + self.size - 1);
                scale += -a * square(c - 1);
            }
            let flat = c * place.plane + place.position;
            *o = xc * lrn_power(scale, self.neg_beta, flat, x.len() * place.plane);
        }
    }
}

/// Where a position's channel column sits in its `[C, H, W]` tensor, which
/// decides whether ONNX Runtime's power of an element is Eigen's packet
/// `pow` or the tail's `powf` ([`Lrn`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LrnPlace {
    /// The position in its plane, `y * W + x`.
    pub position: usize,
    /// Positions per plane, `H * W`.
    pub plane: usize,
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
    fn float32_words_hold_every_bit_of_the_element() {
        for v in [
            1.5f32,
            -2.75e-12,
            -0.0,
            f32::MAX,
            f32::from_bits(0x7fc0_1234),
        ] {
            let [hi, lo] = f32_words(v);
            assert_eq!(words_f32(hi, lo).to_bits(), v.to_bits());
        }
        // 1.5 is 0x3fc00000: high word 0x3fc0, low word 0.
        assert_eq!(f32_words(1.5), [0x3fc0, 0]);
        assert_eq!(f32_words(-0.0), [i16::MIN, 0]);
    }

    #[test]
    fn the_two_plane_means_sum_in_onnx_runtimes_orders() {
        // In order: 1e8 + 1 rounds back to 1e8, so the sum is 0 + 1 + 1 = 2.
        // MLAS's lanes: (1e8 + -1e8) + (1 + 1) = 2, then the tail's 1: 3.
        let values = [1e8f32, 1.0, -1e8, 1.0, 1.0];
        assert_eq!(sequential_mean(&values), 2.0 / 5.0);
        assert_eq!(mlas_global_mean(&values), 3.0 / 5.0);
        // Fewer than four elements: the lanes are zero, the rest in order.
        assert_eq!(mlas_global_mean(&[1.0, 2.0]), 1.5);
    }

    #[test]
    fn a_float_chain_dequantises_adds_in_order_relus_and_quantises_or_keeps_float32() {
        let a = q(IntType::Uint8, 0.5, 10);
        let b = q(IntType::Int8, 0.25, 0);
        let float32 = q(IntType::Int16, 1.0, 0);
        let out = q(IntType::Uint8, 0.5, 3);
        // (4 - 10) * 0.5 + (-4) * 0.25 = -4, Relu 0, quantised: zero point 3.
        let relu = FloatChain::new(&[a, b], true, &out, &float32);
        let rows = [
            ndarray::arr2(&[[4i16], [20]]),
            ndarray::arr2(&[[-4i16], [6]]),
        ];
        let views: Vec<_> = rows.iter().map(|r| r.view()).collect();
        let mut got = ndarray::Array2::<i16>::zeros((2, 1));
        relu.row(&views, &mut got.view_mut());
        // Channel 1: (20 - 10) * 0.5 + 6 * 0.25 = 6.5 -> 13 + 3 = 16.
        assert_eq!(got, ndarray::arr2(&[[3], [16]]));
        // Kept as float32: two words per element, then read back.
        let keep = FloatChain::new(&[a, b], false, &float32, &float32);
        let mut words = ndarray::Array2::<i16>::zeros((4, 1));
        keep.row(&views, &mut words.view_mut());
        let as_float = [words[[0, 0]], words[[1, 0]], words[[2, 0]], words[[3, 0]]];
        assert_eq!(words_f32(as_float[0], as_float[1]), -4.0);
        assert_eq!(words_f32(as_float[2], as_float[3]), 6.5);
        let requantise = FloatChain::new(&[float32], true, &out, &float32);
        let mut back = ndarray::Array2::<i16>::zeros((2, 1));
        requantise.row(&[words.view()], &mut back.view_mut());
        assert_eq!(back, ndarray::arr2(&[[3], [16]]));
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
        let avg = QLinearAverage::new(&x, &y, false);
        // 0.5 + 1 = 1.5 rounds to 2 (even); rounding first would give 0 + 1 = 1.
        assert_eq!(avg.finish(1.0, 2), 2);
        // The unfused float path (QuantizeLinear) rounds first: 0 + 1 = 1.
        assert_eq!(QLinearAverage::new(&x, &y, true).finish(1.0, 2), 1);
        let g = QLinearGlobalAverage::new(&x, &y, 2);
        assert_eq!(g.finish(1), 1); // round(0.5) = 0, then + 1
    }

    #[test]
    fn softmax_table_is_built_from_the_input_scale_and_the_row_length() {
        let x = q(IntType::Uint8, 0.1, 0);
        let y = q(IntType::Uint8, 1.0 / 255.0, 0);
        let k = QLinearSoftmax::new(&x, &y, 10);
        // shift = (logf(FLT_MAX / 10) - 5) / 0.1: entry 255 = e^(logf(FLT_MAX / 10) - 5).
        let top = f64::from((f32::MAX / 10.0).ln()) - 5.0;
        assert_eq!(k.entry(255), top.exp() as f32);
        // Each step down the table divides by about e^0.1.
        let ratio = f64::from(k.entry(254)) / f64::from(k.entry(255));
        assert!((ratio - (-0.1f64).exp()).abs() < 1e-6, "{ratio}");
        // The output scale enters as floor(1 / f32(1/255)) = 254.
        assert_eq!(k.inverse_scale, 254.0);
        assert_eq!(QLinearSoftmax::index(200, 200), 255);
        assert_eq!(QLinearSoftmax::index(200, 0), 55);
        assert_eq!(QLinearSoftmax::index(127, -128), 0);
    }

    #[test]
    fn softmax_rounds_half_to_even_and_saturates() {
        let x = q(IntType::Int8, 0.5, 0);
        let k = QLinearSoftmax::new(&x, &q(IntType::Int8, 1.0 / 256.0, -128), 2);
        // Two equal entries: 256 * e / 2e = 128, + (-128) = 0.
        let e = k.entry(255);
        assert_eq!(k.finish(e, e + e), 0);
        // One entry alone: 256 - 128 = 128 saturates to 127.
        assert_eq!(k.finish(e, e), 127);
        let u = QLinearSoftmax::new(&x, &q(IntType::Uint8, 0.4, 0), 2);
        // floor(1 / 0.4) = 2: 2 * 1/4 = 0.5 rounds to 0 (even).
        assert_eq!(u.finish(1.0, 4.0), 0);
        assert_eq!(u.finish(3.0, 4.0), 2); // 1.5 -> 2
    }
}

/// A float32 tensor element as the two 16-bit words it is stored in
/// (`ir::FLOAT32_WORDS`): the high half, then the low half.
#[inline]
pub fn f32_words(v: f32) -> [i16; 2] {
    let bits = v.to_bits();
    [(bits >> 16) as u16 as i16, bits as u16 as i16]
}

/// The float32 element stored as the words `hi`, `lo` ([`f32_words`]).
#[inline]
pub fn words_f32(hi: i16, lo: i16) -> f32 {
    f32::from_bits((u32::from(hi as u16) << 16) | u32::from(lo as u16))
}

/// The float32 chain ONNX Runtime runs unfused between quantised tensors
/// (`ir::Sum` beyond the plain sum; docs/onnx.md, item 18): each operand
/// dequantised (`f32(q - z) * s`) or read as float32, added in operand
/// order, `max(v, 0)` when `relu`, then quantised (divide, round half to
/// even, add the zero point, saturate) or stored as float32 words.
#[derive(Debug, Clone, PartialEq)]
pub struct FloatChain {
    /// Per operand, its scale and zero point; `None`: float32 words.
    inputs: Vec<Option<(f32, i32)>>,
    relu: bool,
    /// The output's scale, zero point and type; `None`: float32 words.
    output: Option<((f32, i32), IntType)>,
}

impl FloatChain {
    /// `float32` is the quantisation that marks float32 words.
    pub fn new(
        inputs: &[TensorQuant],
        relu: bool,
        output: &TensorQuant,
        float32: &TensorQuant,
    ) -> Self {
        let q = |t: &TensorQuant| (t != float32).then(|| affine(t));
        FloatChain {
            inputs: inputs.iter().map(q).collect(),
            relu,
            output: q(output).map(|a| (a, output.dtype())),
        }
    }

    /// Operands summed.
    pub fn operands(&self) -> usize {
        self.inputs.len()
    }

    /// Stored words per output element (2 for float32).
    pub fn output_words(&self) -> usize {
        if self.output.is_some() { 1 } else { 2 }
    }

    /// The float32 value at channel `c`, column `x` of the operands' rows
    /// (`[stored channels, width]` each), after the sum and the Relu.
    #[inline]
    pub fn value(&self, rows: &[ndarray::ArrayView2<'_, i16>], c: usize, x: usize) -> f32 {
        let mut sum: Option<f32> = None;
        for (row, q) in rows.iter().zip(&self.inputs) {
            let v = match q {
                Some(q) => dequantize(row[[c, x]], *q),
                None => words_f32(row[[2 * c, x]], row[[2 * c + 1, x]]),
            };
            sum = Some(sum.map_or(v, |s| s + v));
        }
        let v = sum.unwrap_or(0.0);
        if self.relu { v.max(0.0) } else { v }
    }

    /// Stores `v` at channel `c`, column `x` of an output row.
    #[inline]
    pub fn store(&self, v: f32, out: &mut ndarray::ArrayViewMut2<'_, i16>, c: usize, x: usize) {
        match self.output {
            Some((q, dtype)) => out[[c, x]] = quantize(v, q, dtype),
            None => {
                let [hi, lo] = f32_words(v);
                out[[2 * c, x]] = hi;
                out[[2 * c + 1, x]] = lo;
            }
        }
    }

    /// An output row, element by element, from the operands' rows.
    pub fn row(
        &self,
        rows: &[ndarray::ArrayView2<'_, i16>],
        out: &mut ndarray::ArrayViewMut2<'_, i16>,
    ) {
        let channels = out.nrows() / self.output_words();
        for c in 0..channels {
            for x in 0..out.ncols() {
                let v = self.value(rows, c, x);
                self.store(v, out, c, x);
            }
        }
    }

    /// The one output row (`[stored channels, 1]`) of the mean of each
    /// channel's plane: `planes[k][y]` is operand `k`'s row `y`.
    pub fn plane_average(
        &self,
        planes: &[Vec<ndarray::ArrayView2<'_, i16>>],
        order: PlaneOrder,
        out: &mut ndarray::ArrayViewMut2<'_, i16>,
    ) {
        let channels = out.nrows() / self.output_words();
        let height = planes.first().map_or(0, Vec::len);
        let width = planes
            .first()
            .and_then(|p| p.first())
            .map_or(0, |r| r.ncols());
        let mut values = vec![Vec::with_capacity(height * width); channels];
        for y in 0..height {
            let rows: Vec<_> = planes.iter().map(|p| p[y].view()).collect();
            for (c, plane) in values.iter_mut().enumerate() {
                plane.extend((0..width).map(|x| self.value(&rows, c, x)));
            }
        }
        for (c, plane) in values.iter().enumerate() {
            let mean = match order {
                PlaneOrder::Sequential => sequential_mean(plane),
                PlaneOrder::MlasGlobal => mlas_global_mean(plane),
            };
            self.store(mean, out, c, 0);
        }
    }
}

/// The summation order of a plane's mean (`ir::PlaneAverage`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlaneOrder {
    /// One float32 sum in order (ONNX Runtime's AveragePool).
    Sequential,
    /// MLAS's global pooling kernel (GlobalAveragePool).
    MlasGlobal,
}

/// `((v0 + v1) + v2) + ...`, divided by the count, in float32.
pub fn sequential_mean(values: &[f32]) -> f32 {
    let sum = values.iter().fold(0.0f32, |s, &v| s + v);
    sum / values.len().max(1) as f32
}

/// MLAS's `MlasPoolGlobalKernel` for the average: four float32 lanes,
/// element `i` added to lane `i % 4` over the first `4 floor(n / 4)`
/// elements, the lanes reduced as `(l0 + l2) + (l1 + l3)`
/// (`MlasReduceAddFloat32x4` on x86-64), the remaining elements added in
/// order, divided by `n`.
pub fn mlas_global_mean(values: &[f32]) -> f32 {
    let full = values.len() / 4 * 4;
    let mut lanes = [0.0f32; 4];
    for chunk in values[..full].chunks_exact(4) {
        for (lane, &v) in lanes.iter_mut().zip(chunk) {
            *lane += v;
        }
    }
    let mut sum = (lanes[0] + lanes[2]) + (lanes[1] + lanes[3]);
    for &v in &values[full..] {
        sum += v;
    }
    sum / values.len().max(1) as f32
}
