//! Convolution and fully connected sums, and zero-operand counts.
//!
//! Operands are centred first (`x - zero_point`, `w - weight_zero_point`),
//! which fits `i16` for every supported type, and padding becomes a centred
//! zero. Sums accumulate in `i32` when a bound computed from the actual
//! operands proves no partial sum can overflow it; otherwise in `f64` when the
//! bound is below 2^53 (every product and partial sum is then an integer that
//! `f64` represents exactly, so each addition is exact, and `f64` vectorises
//! where `i64` multiplication does not: 16-bit networks run several times
//! faster); and in `i64` beyond that. The result is the exact sum either way.

use std::ops::{AddAssign, Mul};

use ndarray::{Array2, Array3};

use crate::numerics::kernels::{PairPanel, axpy, dot, dot_pairs, gemm_pairs, pair_block_len};

use crate::workload::ir::{Activations, Conv2d, FullyConnected, Layer, Op, Padding};

/// An accumulator type: `i32` (fast), `f64` (exact below 2^53) or `i64`.
trait Acc: Copy + Default + Send + Sync + AddAssign + Mul<Output = Self> + From<i16> {
    /// The (integer) value held; exact whenever the type was chosen by bound.
    fn to_i64(self) -> i64;
}

/// MACs below which a layer runs on one thread: splitting smaller layers
/// over the cores costs more than it saves.
const PARALLEL_MIN_MACS: usize = 1 << 18;
impl Acc for i32 {
    fn to_i64(self) -> i64 {
        i64::from(self)
    }
}
impl Acc for i64 {
    fn to_i64(self) -> i64 {
        self
    }
}
impl Acc for f64 {
    fn to_i64(self) -> i64 {
        self as i64
    }
}

/// Which accumulator a bound allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AccKind {
    I32,
    F64,
    I64,
}

/// The input with `zero` subtracted and `padding` added around each plane.
pub(crate) fn centred_padded(input: &Activations, zero: i32, padding: Padding) -> Array3<i16> {
    let (c, h, w) = input.dim();
    let (ph, pw) = (
        h + padding.top + padding.bottom,
        w + padding.left + padding.right,
    );
    let mut out = Array3::<i16>::zeros((c, ph, pw));
    for ((ci, y, x), &v) in input.indexed_iter() {
        out[[ci, y + padding.top, x + padding.left]] = (i32::from(v) - zero) as i16;
    }
    out
}

fn max_abs(values: impl Iterator<Item = i16>) -> i64 {
    values.map(|v| i64::from(v).abs()).max().unwrap_or(0)
}

/// The narrowest exact accumulator for `max|x| * sum|w|` (bounding every
/// partial sum) over all output channels; the bias is added in `i64`.
fn accumulator_kind(max_x: i64, weight_rows: impl Iterator<Item = (i64, i64)>) -> AccKind {
    let bound = weight_rows
        .into_iter()
        .map(|(sum_abs_w, bias)| max_x.saturating_mul(sum_abs_w).saturating_add(bias.abs()))
        .max()
        .unwrap_or(0);
    if bound <= i64::from(i32::MAX) {
        AccKind::I32
    } else if bound < 1i64 << 53 {
        AccKind::F64
    } else {
        AccKind::I64
    }
}

/// Exact sums of a convolution, bias included: `[out_channels, out_h, out_w]`.
pub fn conv_accumulate(conv: &Conv2d, input_zero: i32, input: &Activations) -> Array3<i64> {
    let x = centred_padded(input, input_zero, conv.padding);
    let wz = conv.weight_quant.zero();
    // Centred weights: the stored ones when the zero point is 0 (no copy).
    let centred;
    let w = if wz == 0 {
        &conv.weights
    } else {
        centred = conv.weights.mapv(|v| (i32::from(v) - wz) as i16);
        &centred
    };
    let max_x = max_abs(x.iter().copied());
    let (out_c, icg, kh, kw) = w.dim();
    if out_c / conv.groups >= GEMM_MIN_CHANNELS {
        let w = w.as_standard_layout();
        let ws = w.as_slice().unwrap_or(&[]);
        if let Some(block) = pair_block_len(ws, icg * kh * kw, max_x) {
            return conv_gemm(conv, &x, ws, block);
        }
    }
    let kind = accumulator_kind(
        max_x,
        w.outer_iter()
            .zip(&conv.epilogue.bias)
            .map(|(row, &b)| (row.iter().map(|&v| i64::from(v).abs()).sum(), b)),
    );
    match kind {
        AccKind::I32 => conv_sums::<i32>(conv, &x, w),
        AccKind::F64 => conv_sums::<f64>(conv, &x, w),
        AccKind::I64 => conv_sums::<i64>(conv, &x, w),
    }
}

/// Output channels per group from which a convolution runs as a matrix
/// product (`gemm_pairs`): below it (depthwise), building the operand panel
/// costs as much as the MACs and the per-tap loop is faster.
const GEMM_MIN_CHANNELS: usize = 4;

/// The convolution as one matrix product per group: weights `[ocg, k]`
/// times the im2col panel `[k, positions]`, summed exactly in `i32` blocks of
/// `block` pairs (from [`pair_block_len`]) and `i64` across blocks.
fn conv_gemm(conv: &Conv2d, x: &Array3<i16>, ws: &[i16], block: usize) -> Array3<i64> {
    let (_, ph, pw) = x.dim();
    let (out_c, icg, kh, kw) = conv.weights.dim();
    let [sy, sx] = conv.stride;
    let oh = (ph - kh) / sy + 1;
    let ow = (pw - kw) / sx + 1;
    let ocg = out_c / conv.groups;
    let k = icg * kh * kw;
    let positions = oh * ow;
    let x = x.as_standard_layout();
    let xs = x.as_slice().unwrap_or(&[]);
    let mut out = vec![0i64; out_c * positions];
    for g in 0..conv.groups {
        let mut panel = PairPanel::zeros(k, positions);
        for icl in 0..icg {
            let plane = &xs[(g * icg + icl) * ph * pw..(g * icg + icl + 1) * ph * pw];
            for ky in 0..kh {
                for kx in 0..kw {
                    let t = (icl * kh + ky) * kw + kx;
                    panel.set_row(
                        t,
                        (0..oh).flat_map(|oy| {
                            let row = (oy * sy + ky) * pw + kx;
                            (0..ow).map(move |ox| plane[row + ox * sx])
                        }),
                    );
                }
            }
        }
        let stride = panel.stride();
        let wg = &ws[g * ocg * k..(g + 1) * ocg * k];
        let mut sums = vec![0i64; ocg * stride];
        if ocg * k * positions >= PARALLEL_MIN_MACS {
            use rayon::prelude::*;
            sums.par_chunks_mut(GEMM_MIN_CHANNELS * stride)
                .zip(wg.par_chunks(GEMM_MIN_CHANNELS * k))
                .for_each(|(o, wr)| gemm_pairs(wr, k, &panel, block, o));
        } else {
            gemm_pairs(wg, k, &panel, block, &mut sums);
        }
        for (ocl, row) in sums.chunks_exact(stride).enumerate() {
            let oc = g * ocg + ocl;
            let bias = conv.epilogue.bias[oc];
            for (o, &s) in out[oc * positions..(oc + 1) * positions]
                .iter_mut()
                .zip(row)
            {
                *o = s + bias;
            }
        }
    }
    Array3::from_shape_vec((out_c, oh, ow), out).unwrap_or_else(|_| Array3::zeros((out_c, oh, ow)))
}

fn conv_sums<A: Acc>(conv: &Conv2d, x: &Array3<i16>, w: &ndarray::Array4<i16>) -> Array3<i64> {
    let (_, ph, pw) = x.dim();
    let (out_c, icg, kh, kw) = w.dim();
    let [sy, sx] = conv.stride;
    let oh = (ph - kh) / sy + 1;
    let ow = (pw - kw) / sx + 1;
    let ocg = out_c / conv.groups;
    let x = x.as_standard_layout();
    let xs = x.as_slice().unwrap_or(&[]);
    let plane = ph * pw;
    // With stride 1, one kernel tap reads the padded plane as one long run:
    // accumulate over rows of the padded width `pw` (columns `ow..pw` of
    // each row are discarded; they are sums of the same weights over other
    // inputs, so the same bound keeps them from overflowing). One long
    // multiply-add per tap instead of `oh` short ones.
    let wide = sx == 1 && sy == 1;
    let row_len = if wide { pw } else { ow };
    let run = (oh - 1) * row_len + ow;
    // One output channel's plane: every tap of its kernel over the input.
    let channel = |acc: &mut Vec<A>, oc: usize, plane_out: &mut [i64]| {
        let group = oc / ocg;
        let bias = conv.epilogue.bias[oc];
        acc.clear();
        acc.resize(oh * row_len, A::default());
        for icl in 0..icg {
            let base = (group * icg + icl) * plane;
            for ky in 0..kh {
                for kx in 0..kw {
                    let wv = w[[oc, icl, ky, kx]];
                    if wv == 0 {
                        continue;
                    }
                    let wv = A::from(wv);
                    if wide {
                        let start = base + ky * pw + kx;
                        axpy(&mut acc[..run], wv, &xs[start..start + run]);
                        continue;
                    }
                    for oy in 0..oh {
                        let row = base + (oy * sy + ky) * pw + kx;
                        let dst = &mut acc[oy * ow..(oy + 1) * ow];
                        if sx == 1 {
                            axpy(dst, wv, &xs[row..row + ow]);
                        } else {
                            for (ox, a) in dst.iter_mut().enumerate() {
                                *a += wv * A::from(xs[row + ox * sx]);
                            }
                        }
                    }
                }
            }
        }
        for (oy, row) in plane_out.chunks_exact_mut(ow).enumerate() {
            for (o, &a) in row.iter_mut().zip(&acc[oy * row_len..oy * row_len + ow]) {
                *o = a.to_i64() + bias;
            }
        }
    };
    // Channels are independent: large layers split them over the cores
    // (each channel's sums are the same whichever thread computes them).
    let mut out = vec![0i64; out_c * oh * ow];
    let macs = out_c * icg * kh * kw * oh * ow;
    if macs >= PARALLEL_MIN_MACS && out_c > 1 {
        use rayon::prelude::*;
        out.par_chunks_mut(oh * ow)
            .enumerate()
            .for_each_init(Vec::new, |acc, (oc, plane_out)| channel(acc, oc, plane_out));
    } else {
        let mut acc = Vec::new();
        for (oc, plane_out) in out.chunks_mut(oh * ow).enumerate() {
            channel(&mut acc, oc, plane_out);
        }
    }
    Array3::from_shape_vec((out_c, oh, ow), out).unwrap_or_else(|_| Array3::zeros((out_c, oh, ow)))
}

/// Exact sums of a fully connected layer over the flattened input: `[out, 1, 1]`.
pub fn fc_accumulate(fc: &FullyConnected, input_zero: i32, input: &Activations) -> Array3<i64> {
    let x: Vec<i16> = input
        .iter()
        .map(|&v| (i32::from(v) - input_zero) as i16)
        .collect();
    let wz = fc.weight_quant.zero();
    let centred: Array2<i16>;
    let w = if wz == 0 {
        &fc.weights
    } else {
        centred = fc.weights.mapv(|v| (i32::from(v) - wz) as i16);
        &centred
    };
    let max_x = max_abs(x.iter().copied());
    let kind = accumulator_kind(
        max_x,
        w.outer_iter()
            .zip(&fc.epilogue.bias)
            .map(|(row, &b)| (row.iter().map(|&v| i64::from(v).abs()).sum(), b)),
    );
    let n = fc.out_features();
    let w = w.as_standard_layout();
    let ws = w.as_slice().unwrap_or(&[]);
    // The bound from the input (one pass over it, shared by every row) and
    // the weights' 16-bit width: a block's sum is at most 2^15 sum|x|.
    // Scanning the weights instead would cost as much as the MACs.
    let block = pair_block_len(&x, x.len(), 1 << 15);
    let feature = |o: usize| -> i64 {
        let row = &ws[o * x.len()..(o + 1) * x.len()];
        let sum = match (block, kind) {
            // Blocks shorter than one 8-pair vector gain nothing over the
            // exact accumulators below (16-bit inputs near full scale).
            (Some(b), _) if b >= 8 => dot_pairs(row, &x, b),
            (_, AccKind::I32) => dot(0i32, row, &x).to_i64(),
            (_, AccKind::F64) => dot(0.0f64, row, &x).to_i64(),
            (_, AccKind::I64) => dot(0i64, row, &x).to_i64(),
        };
        sum + fc.epilogue.bias[o]
    };
    let out: Vec<i64> = if n * x.len() >= PARALLEL_MIN_MACS {
        use rayon::prelude::*;
        (0..n).into_par_iter().map(feature).collect()
    } else {
        (0..n).map(feature).collect()
    };
    Array3::from_shape_vec((n, 1, 1), out).unwrap_or_else(|_| Array3::zeros((n, 1, 1)))
}

/// MACs of `layer` on `input` in which at least one (centred) operand is
/// zero: the work zero-skipping hardware can gate. Window positions over
/// padding count, with a zero input operand.
pub fn zero_operand_macs(layer: &Layer, input: &Activations) -> u64 {
    let zero = layer.input_quant.zero();
    match &layer.op {
        Op::Conv2d(c) => {
            let x = centred_padded(input, zero, c.padding);
            let (in_c, ph, pw) = x.dim();
            let (out_c, icg, kh, kw) = c.weights.dim();
            let [sy, sx] = c.stride;
            let oh = (ph - kh) / sy + 1;
            let ow = (pw - kw) / sx + 1;
            // nonzero_inputs[ic][ky][kx]: output positions whose tap (ky, kx)
            // reads a non-zero input of channel ic.
            let mut nonzero_inputs = vec![0u64; in_c * kh * kw];
            for ic in 0..in_c {
                for ky in 0..kh {
                    for kx in 0..kw {
                        let mut n = 0u64;
                        for oy in 0..oh {
                            for ox in 0..ow {
                                n += u64::from(x[[ic, oy * sy + ky, ox * sx + kx]] != 0);
                            }
                        }
                        nonzero_inputs[(ic * kh + ky) * kw + kx] = n;
                    }
                }
            }
            let wz = c.weight_quant.zero();
            let ocg = out_c / c.groups;
            let mut nonzero = 0u64;
            for ((oc, icl, ky, kx), &wv) in c.weights.indexed_iter() {
                if i32::from(wv) != wz {
                    let ic = (oc / ocg) * icg + icl;
                    nonzero += nonzero_inputs[(ic * kh + ky) * kw + kx];
                }
            }
            layer.macs() - nonzero
        }
        Op::FullyConnected(f) => {
            let wz = f.weight_quant.zero();
            let nonzero: u64 = input
                .iter()
                .zip(f.weights.columns())
                .filter(|(v, _)| i32::from(**v) != zero)
                .map(|(_, col)| col.iter().filter(|&&w| i32::from(w) != wz).count() as u64)
                .sum();
            layer.macs() - nonzero
        }
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::numerics::{OutputStage, Requant, Rounding, WeightQuant};
    use crate::workload::ir::Epilogue;
    use ndarray::Array4;

    fn fc(weights: Vec<i16>, n_in: usize, bias: i64) -> FullyConnected {
        let n_out = weights.len() / n_in;
        FullyConnected {
            weights: Array2::from_shape_vec((n_out, n_in), weights).expect("shape"),
            weight_quant: WeightQuant::Fixed {
                bits: 16,
                frac_len: 15,
            },
            epilogue: Epilogue {
                bias: vec![bias; n_out],
                activation: crate::numerics::Activation::None,
                output_stage: OutputStage {
                    accumulator_bits: 48,
                    requant: Requant::Shift {
                        shift: 0,
                        rounding: Rounding::HalfUp,
                    },
                    zero_point: 0,
                    clamp_min: -32768,
                    clamp_max: 32767,
                },
            },
        }
    }

    /// 16-bit operands: each accumulator kind gives the exact i64 sum.
    #[test]
    fn every_accumulator_kind_is_exact() {
        // Pseudo-random 16-bit operands with extremes mixed in.
        let mut state = 12345u64;
        let mut next = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 48) as i16
        };
        let n = 3000;
        let x: Vec<i16> = (0..n)
            .map(|i| if i % 97 == 0 { i16::MIN } else { next() })
            .collect();
        let w: Vec<i16> = (0..2 * n)
            .map(|i| if i % 89 == 0 { i16::MIN } else { next() })
            .collect();
        let exact = |row: &[i16]| -> i64 {
            row.iter()
                .zip(&x)
                .map(|(&a, &b)| i64::from(a) * i64::from(b))
                .sum()
        };
        let input = Array3::from_shape_vec((n, 1, 1), x.clone()).expect("shape");
        // F64: bound 2^15 * sum|w| ~ 2^15 * 3000 * 2^14 < 2^53.
        let layer = fc(w.clone(), n, 7);
        let max_x = max_abs(x.iter().copied());
        let kind = accumulator_kind(
            max_x,
            layer
                .weights
                .outer_iter()
                .map(|r| (r.iter().map(|&v| i64::from(v).abs()).sum(), 7)),
        );
        assert_eq!(kind, AccKind::F64);
        let out = fc_accumulate(&layer, 0, &input);
        assert_eq!(out[[0, 0, 0]], exact(&w[..n]) + 7);
        assert_eq!(out[[1, 0, 0]], exact(&w[n..]) + 7);
        // I64: a bias beyond 2^53 forces the widest path; still exact.
        let big = fc(w.clone(), n, 1 << 54);
        assert_eq!(
            fc_accumulate(&big, 0, &input)[[0, 0, 0]],
            exact(&w[..n]) + (1 << 54)
        );
        // I32: small operands.
        let small: Vec<i16> = w.iter().map(|v| v >> 12).collect();
        let xs = input.mapv(|v| v >> 12);
        let l = fc(small.clone(), n, 0);
        let want: i64 = small[..n]
            .iter()
            .zip(xs.iter())
            .map(|(&a, &b)| i64::from(a) * i64::from(b))
            .sum();
        assert_eq!(fc_accumulate(&l, 0, &xs)[[0, 0, 0]], want);
        // The same three paths through a convolution.
        let conv = Conv2d {
            kernel: [1, 1],
            stride: [1, 1],
            padding: Padding::default(),
            groups: 1,
            weights: Array4::from_shape_vec((2, n, 1, 1), w.clone()).expect("shape"),
            weight_quant: layer.weight_quant.clone(),
            epilogue: layer.epilogue.clone(),
        };
        let out = conv_accumulate(&conv, 0, &input);
        assert_eq!(out[[1, 0, 0]], exact(&w[n..]) + 7);
    }
}
