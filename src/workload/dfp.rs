//! Dynamic fixed point from a float network (SPEC section 2, PELUSO).
//!
//! A workload with a `[float]` section gives real-valued weights, biases and
//! calibration inputs. accsim then picks every fractional length itself, per
//! tensor, by PELUSO's rule: among the N - 1 candidates `FL = 1 ..= N - 1`
//! (a sign bit, then at least one fraction bit), the one whose quantised
//! values are closest in L2 to the real ones; ties keep the larger FL.
//! - network input: over the calibration inputs;
//! - weights of a layer: over the layer's real weights;
//! - output of a weighted layer: over the real (float network) outputs of the
//!   first `fl_samples` calibration inputs, so the quantised network is fitted
//!   to the float one, not to itself.
//!
//! There is one N-bit weight set; the reduced precisions of
//! `numerics::precision` use its high bytes. This module holds the float
//! executor (plain f64 loops, one sample at a time) and the L2 search;
//! `load.rs` applies them while building the network.

use ndarray::{Array3, ArrayView2, ArrayView4};

use crate::numerics::{Activation, TensorQuant};
use crate::workload::ir::{Activations, Padding, Pool, pool_output_len};

/// Calibration inputs (quantised with the network's input quantisation) and
/// optional labels: what the precision search measures accuracy drop on.
#[derive(Debug, Clone, Default)]
pub struct CalibrationSet {
    pub inputs: Vec<Activations>,
    /// Class index per input, when the workload gives labels.
    pub labels: Option<Vec<usize>>,
}

/// PELUSO's L2 fractional-length search over real `values` for an N-bit
/// (`bits`) signed word: candidates `1 ..= bits - 1`, the smallest
/// `sum (v - q(v) * 2^-FL)^2` wins with `q` = round half to even, saturated
/// (`TensorQuant::quantize`); ties keep the larger FL. No values (or all
/// zero) gives `bits - 1`.
pub fn l2_frac_len<'a>(
    values: impl Iterator<Item = &'a f64> + Clone + Send + Sync,
    bits: u32,
) -> i32 {
    use rayon::prelude::*;
    let top = bits as i32 - 1;
    // Each candidate's error summed in value order (on its own thread: the
    // same sum for any thread count), then compared in the order above.
    let errors: Vec<(f64, i32)> = (1..=top)
        .rev()
        .collect::<Vec<i32>>()
        .into_par_iter()
        .map(|frac_len| {
            let quant = FixedQuantizer::new(bits, frac_len);
            let step = 2f64.powi(-frac_len);
            let error: f64 = values
                .clone()
                .map(|&v| {
                    let e = v - quant.quantize(v) * step;
                    e * e
                })
                .sum();
            (error, frac_len)
        })
        .collect();
    let mut best = (f64::INFINITY, top);
    for (error, frac_len) in errors {
        if error < best.0 {
            best = (error, frac_len);
        }
    }
    best.1
}

/// `TensorQuant::Fixed { bits, frac_len }.quantize` as a float, with its
/// constants taken once: the L2 search quantises every value at every
/// candidate, and `powi` and `rint` per value were most of a `[float]`
/// workload's load time.
struct FixedQuantizer {
    /// `2^frac_len`, and the representable range.
    scale: f64,
    lo: f64,
    hi: f64,
}

impl FixedQuantizer {
    fn new(bits: u32, frac_len: i32) -> Self {
        let (lo, hi) = TensorQuant::Fixed { bits, frac_len }.range();
        FixedQuantizer {
            scale: 2f64.powi(frac_len),
            lo: f64::from(lo),
            hi: f64::from(hi),
        }
    }

    /// The same integer as `TensorQuant::quantize`: clamping to the
    /// (integer) range before rounding equals rounding first, and on the
    /// clamped range (|x| < 2^51) adding and subtracting 1.5 * 2^52 rounds
    /// half to even in the default rounding mode. NaN gives 0.
    fn quantize(&self, real: f64) -> f64 {
        const ROUND: f64 = 6_755_399_441_055_744.0;
        let x = real * self.scale;
        if x.is_nan() {
            return 0.0;
        }
        let q = (x.clamp(self.lo, self.hi) + ROUND) - ROUND;
        // The sign of a zero result is lost by `TensorQuant::quantize`'s
        // integer too: make it +0.
        q + 0.0
    }
}

/// Real-valued activation function.
pub fn activate(x: f64, activation: Activation) -> f64 {
    match activation {
        Activation::None => x,
        Activation::Relu => x.max(0.0),
        Activation::Relu6 => x.clamp(0.0, 6.0),
    }
}

/// Float convolution, `[out, in/groups, kh, kw]` weights, bias and activation.
/// Zero padding; each weight tap is one strided multiply-add over the
/// output plane, in a fixed order (deterministic, and fast enough to fit
/// fractional lengths on the largest PELUSO benchmark while loading).
#[allow(clippy::too_many_arguments)]
pub fn conv2d(
    input: &Array3<f64>,
    weights: ArrayView4<f64>,
    bias: &[f64],
    stride: [usize; 2],
    padding: Padding,
    groups: usize,
    activation: Activation,
    out_hw: (usize, usize),
) -> Array3<f64> {
    let (c, h, w) = input.dim();
    let (out_c, icg, kh, kw) = weights.dim();
    let (oh, ow) = out_hw;
    let [sy, sx] = stride;
    // Padded input, large enough for every window of the output.
    let ph = (h + padding.top).max((oh.max(1) - 1) * sy + kh);
    let pw = (w + padding.left).max((ow.max(1) - 1) * sx + kw);
    let mut x = vec![0.0f64; c * ph * pw];
    for ((ci, y, xx), &v) in input.indexed_iter() {
        x[(ci * ph + y + padding.top) * pw + xx + padding.left] = v;
    }
    let ocg = out_c / groups.max(1);
    let mut out = Array3::<f64>::zeros((out_c, oh, ow));
    let mut acc = vec![0.0f64; oh * ow];
    for oc in 0..out_c {
        let g = oc / ocg.max(1);
        acc.fill(bias.get(oc).copied().unwrap_or(0.0));
        for icl in 0..icg {
            let base = (g * icg + icl) * ph * pw;
            for ky in 0..kh {
                for kx in 0..kw {
                    let wv = weights[[oc, icl, ky, kx]];
                    if wv == 0.0 {
                        continue;
                    }
                    for oy in 0..oh {
                        let row = base + (oy * sy + ky) * pw + kx;
                        let dst = &mut acc[oy * ow..(oy + 1) * ow];
                        if sx == 1 {
                            for (a, &v) in dst.iter_mut().zip(&x[row..row + ow]) {
                                *a += wv * v;
                            }
                        } else {
                            for (ox, a) in dst.iter_mut().enumerate() {
                                *a += wv * x[row + ox * sx];
                            }
                        }
                    }
                }
            }
        }
        for (o, &a) in out
            .index_axis_mut(ndarray::Axis(0), oc)
            .iter_mut()
            .zip(&acc)
        {
            *o = activate(a, activation);
        }
    }
    out
}

/// Float fully connected layer over the flattened (channel-major) input.
pub fn fully_connected(
    input: &Array3<f64>,
    weights: ArrayView2<f64>,
    bias: &[f64],
    activation: Activation,
) -> Array3<f64> {
    let x: Vec<f64> = input.iter().copied().collect();
    let n = weights.dim().0;
    let mut out = Array3::<f64>::zeros((n, 1, 1));
    for (o, row) in weights.outer_iter().enumerate() {
        let s: f64 = row.iter().zip(&x).map(|(a, b)| a * b).sum();
        out[[o, 0, 0]] = activate(s + bias.get(o).copied().unwrap_or(0.0), activation);
    }
    out
}

/// Float max (`max = true`) or average pooling over the in-input elements of
/// each window (the integer operator's window rules, docs/numerics.md).
pub fn pool(input: &Array3<f64>, p: &Pool, max: bool) -> Array3<f64> {
    let (c, h, w) = input.dim();
    let pad = p.padding;
    let [kh, kw] = p.kernel;
    let [sy, sx] = p.stride;
    let oh = pool_output_len(h, kh, sy, pad.top, pad.bottom, p.ceil_mode).unwrap_or(0);
    let ow = pool_output_len(w, kw, sx, pad.left, pad.right, p.ceil_mode).unwrap_or(0);
    let mut out = Array3::<f64>::zeros((c, oh, ow));
    for ch in 0..c {
        for oy in 0..oh {
            let y0 = (oy * sy).saturating_sub(pad.top);
            let y1 = (oy * sy + kh).saturating_sub(pad.top).min(h);
            for ox in 0..ow {
                let x0 = (ox * sx).saturating_sub(pad.left);
                let x1 = (ox * sx + kw).saturating_sub(pad.left).min(w);
                let mut acc = if max { f64::NEG_INFINITY } else { 0.0 };
                let mut n = 0usize;
                for y in y0..y1 {
                    for x in x0..x1 {
                        let v = input[[ch, y, x]];
                        acc = if max { acc.max(v) } else { acc + v };
                        n += 1;
                    }
                }
                out[[ch, oy, ox]] = if max { acc } else { acc / n.max(1) as f64 };
            }
        }
    }
    out
}

/// Mean of each channel plane.
pub fn global_avg_pool(input: &Array3<f64>) -> Array3<f64> {
    let (c, h, w) = input.dim();
    let mut out = Array3::<f64>::zeros((c, 1, 1));
    for (ch, plane) in input.outer_iter().enumerate() {
        out[[ch, 0, 0]] = plane.sum() / (h * w).max(1) as f64;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn l2_search_hand_example() {
        // 8-bit words, candidates FL 1..=7.
        // Values up to 3.2 need 2 integer bits: FL 5 holds up to 3.96875.
        // FL 6 saturates 3.2 at 1.984375 (error 1.48); FL 5 quantises
        // 3.2 -> 3.1875, 0.3 -> 0.3125, -1.1 -> -1.09375: error ~3.5e-4;
        // FL 4 is coarser (3.2 -> 3.1875, 0.3 -> 0.3125, -1.1 -> -1.125: 9.4e-4).
        let v = [3.2, 0.3, -1.1];
        assert_eq!(l2_frac_len(v.iter(), 8), 5);
        // Exact at FL 2..=6 (FL 7 saturates 1.25 at 127/128): the tie keeps 6.
        assert_eq!(l2_frac_len([1.25, -0.5].iter(), 8), 6);
        // Large values: the smallest candidate (FL 1) when nothing fits.
        assert_eq!(l2_frac_len([1000.0].iter(), 8), 1);
        assert_eq!(l2_frac_len([].iter(), 16), 15);
        assert_eq!(l2_frac_len([0.0, 0.0].iter(), 16), 15);
        // 16 bits, weights in (-1, 1): all fraction.
        assert_eq!(l2_frac_len([0.9, -0.7, 0.01].iter(), 16), 15);
    }

    #[test]
    fn the_fixed_quantizer_equals_tensor_quant() {
        let check = |bits: u32, frac_len: i32, v: f64| {
            let want = TensorQuant::Fixed { bits, frac_len }.quantize(v);
            let got = FixedQuantizer::new(bits, frac_len).quantize(v);
            assert_eq!(
                got.to_bits(),
                f64::from(want).to_bits(),
                "{bits} bits FL {frac_len} {v}"
            );
        };
        let edges = [
            0.0,
            -0.0,
            0.5,
            -0.5,
            1.5,
            -1.5,
            2.5,
            -2.5,
            0.49999999999999994,
            -0.49999999999999994,
            127.5,
            -128.5,
            32767.5,
            -32768.5,
            1e300,
            -1e300,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NAN,
            f64::MIN_POSITIVE,
            -5e-324,
        ];
        for bits in [8, 16] {
            for frac_len in 1..bits as i32 {
                for &v in &edges {
                    check(bits, frac_len, v);
                    check(bits, frac_len, v / 2f64.powi(frac_len));
                }
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn the_fixed_quantizer_equals_tensor_quant_on_random_values(
            v in proptest::num::f64::ANY,
            frac_len in 1i32..16,
            small in -70000i64..70000,
        ) {
            for bits in [8u32, 16] {
                let frac_len = frac_len.min(bits as i32 - 1);
                let q = FixedQuantizer::new(bits, frac_len);
                let t = TensorQuant::Fixed { bits, frac_len };
                for x in [v, small as f64 / 2f64.powi(frac_len + 1)] {
                    proptest::prop_assert_eq!(q.quantize(x).to_bits(), f64::from(t.quantize(x)).to_bits());
                }
            }
        }
    }

    #[test]
    fn float_operators_on_hand_cases() {
        let x = Array3::from_shape_vec((1, 3, 3), (1..=9).map(f64::from).collect()).expect("shape");
        let w = ndarray::Array4::from_elem((1, 1, 2, 2), 1.0);
        let y = conv2d(
            &x,
            w.view(),
            &[0.5],
            [1, 1],
            Padding::default(),
            1,
            Activation::None,
            (2, 2),
        );
        assert_eq!(
            y.iter().copied().collect::<Vec<_>>(),
            vec![12.5, 16.5, 24.5, 28.5]
        );
        let padded = Padding {
            top: 1,
            left: 1,
            bottom: 0,
            right: 0,
        };
        let y = conv2d(
            &x,
            w.view(),
            &[0.0],
            [2, 2],
            padded,
            1,
            Activation::None,
            (2, 2),
        );
        assert_eq!(
            y.iter().copied().collect::<Vec<_>>(),
            vec![1.0, 5.0, 11.0, 28.0]
        );
        let p = Pool {
            kernel: [2, 2],
            stride: [2, 2],
            padding: Padding::default(),
            ceil_mode: true,
            rounding: crate::numerics::Rounding::HalfUp,
        };
        assert_eq!(
            pool(&x, &p, true).iter().copied().collect::<Vec<_>>(),
            vec![5.0, 6.0, 8.0, 9.0]
        );
        assert_eq!(
            pool(&x, &p, false).iter().copied().collect::<Vec<_>>(),
            vec![3.0, 4.5, 7.5, 9.0]
        );
        let fc = ndarray::Array2::from_shape_vec((1, 9), vec![-1.0; 9]).expect("shape");
        let y = fully_connected(&x, fc.view(), &[1.0], Activation::Relu);
        assert_eq!(y[[0, 0, 0]], 0.0);
        assert_eq!(global_avg_pool(&x)[[0, 0, 0]], 5.0);
    }
}
