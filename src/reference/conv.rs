//! Convolution and fully connected sums, and zero-operand counts.
//!
//! Operands are centred first (`x - zero_point`, `w - weight_zero_point`),
//! which fits `i16` for every supported type, and padding becomes a centred
//! zero. Sums accumulate in `i32` when a bound computed from the actual
//! operands proves no partial sum can overflow it, and in `i64` otherwise:
//! the result is the exact sum either way.

use std::ops::{AddAssign, Mul};

use ndarray::{Array2, Array3, ArrayView1};

use crate::workload::ir::{Activations, Conv2d, FullyConnected, Layer, Op, Padding};

/// An accumulator type: `i32` (fast) or `i64` (always exact here).
trait Acc: Copy + Default + AddAssign + Mul<Output = Self> + From<i16> + Into<i64> {}
impl Acc for i32 {}
impl Acc for i64 {}

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

/// True when `max|x| * sum|w| + |bias|` fits `i32` for every output channel.
fn fits_i32(max_x: i64, weight_rows: impl Iterator<Item = (i64, i64)>) -> bool {
    weight_rows.into_iter().all(|(sum_abs_w, bias)| {
        max_x.saturating_mul(sum_abs_w).saturating_add(bias.abs()) <= i64::from(i32::MAX)
    })
}

/// Exact sums of a convolution, bias included: `[out_channels, out_h, out_w]`.
pub fn conv_accumulate(conv: &Conv2d, input_zero: i32, input: &Activations) -> Array3<i64> {
    let x = centred_padded(input, input_zero, conv.padding);
    let wz = conv.weight_quant.zero();
    let w = conv.weights.mapv(|v| (i32::from(v) - wz) as i16);
    let max_x = max_abs(x.iter().copied());
    let safe = fits_i32(
        max_x,
        w.outer_iter()
            .zip(&conv.epilogue.bias)
            .map(|(row, &b)| (row.iter().map(|&v| i64::from(v).abs()).sum(), b)),
    );
    if safe {
        conv_sums::<i32>(conv, &x, &w)
    } else {
        conv_sums::<i64>(conv, &x, &w)
    }
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
    // Rows of one kernel tap are contiguous across output rows when the
    // window slides by one over an unpadded width: one long row.
    let flat = sx == 1 && sy == 1 && pw == ow;
    let mut out = Array3::<i64>::zeros((out_c, oh, ow));
    let mut acc = vec![A::default(); oh * ow];
    for oc in 0..out_c {
        let group = oc / ocg;
        let bias = conv.epilogue.bias[oc];
        acc.iter_mut().for_each(|a| *a = A::default());
        for icl in 0..icg {
            let base = (group * icg + icl) * plane;
            for ky in 0..kh {
                for kx in 0..kw {
                    let wv = w[[oc, icl, ky, kx]];
                    if wv == 0 {
                        continue;
                    }
                    let wv = A::from(wv);
                    if flat {
                        let start = base + ky * pw + kx;
                        for (a, &v) in acc.iter_mut().zip(&xs[start..start + oh * ow]) {
                            *a += wv * A::from(v);
                        }
                        continue;
                    }
                    for oy in 0..oh {
                        let row = base + (oy * sy + ky) * pw + kx;
                        let dst = &mut acc[oy * ow..(oy + 1) * ow];
                        if sx == 1 {
                            for (a, &v) in dst.iter_mut().zip(&xs[row..row + ow]) {
                                *a += wv * A::from(v);
                            }
                        } else {
                            for (ox, a) in dst.iter_mut().enumerate() {
                                *a += wv * A::from(xs[row + ox * sx]);
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
            *o = a.into() + bias;
        }
    }
    out
}

/// Exact sums of a fully connected layer over the flattened input: `[out, 1, 1]`.
pub fn fc_accumulate(fc: &FullyConnected, input_zero: i32, input: &Activations) -> Array3<i64> {
    let x: Vec<i16> = input
        .iter()
        .map(|&v| (i32::from(v) - input_zero) as i16)
        .collect();
    let wz = fc.weight_quant.zero();
    let w: Array2<i16> = fc.weights.mapv(|v| (i32::from(v) - wz) as i16);
    let max_x = max_abs(x.iter().copied());
    let safe = fits_i32(
        max_x,
        w.outer_iter()
            .zip(&fc.epilogue.bias)
            .map(|(row, &b)| (row.iter().map(|&v| i64::from(v).abs()).sum(), b)),
    );
    let n = fc.out_features();
    let mut out = Array3::<i64>::zeros((n, 1, 1));
    for (o, row) in w.outer_iter().enumerate() {
        let sum = if safe {
            dot::<i32>(row, &x)
        } else {
            dot::<i64>(row, &x)
        };
        out[[o, 0, 0]] = sum + fc.epilogue.bias[o];
    }
    out
}

fn dot<A: Acc>(w: ArrayView1<i16>, x: &[i16]) -> i64 {
    let mut s = A::default();
    match w.as_slice() {
        Some(ws) => {
            for (&a, &b) in ws.iter().zip(x) {
                s += A::from(a) * A::from(b);
            }
        }
        None => {
            for (&a, &b) in w.iter().zip(x) {
                s += A::from(a) * A::from(b);
            }
        }
    }
    s.into()
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
