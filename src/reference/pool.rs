//! Pooling on quantised values.
//!
//! Max pooling needs no arithmetic. Averages sum the stored integers of the
//! window elements that lie inside the input (padding and the overhang of a
//! ceil-mode window are excluded from both sum and count, as TFLite and ONNX's
//! default `count_include_pad = 0` do) and divide with the layer's rounding
//! rule. Output quantisation equals input quantisation.

use ndarray::Array3;

use crate::numerics::Rounding;
use crate::numerics::rounding::divide_rounded;
use crate::workload::ir::{Activations, Pool};

/// Visits each output position with the in-bounds input ranges of its window.
fn windows(
    pool: &Pool,
    input: &Activations,
    mut f: impl FnMut(usize, usize, usize, std::ops::Range<usize>, std::ops::Range<usize>),
) -> (usize, usize) {
    let (c, h, w) = input.dim();
    let p = pool.padding;
    let [kh, kw] = pool.kernel;
    let [sy, sx] = pool.stride;
    let oh = crate::workload::ir::pool_output_len(h, kh, sy, p.top, p.bottom, pool.ceil_mode)
        .unwrap_or(0);
    let ow = crate::workload::ir::pool_output_len(w, kw, sx, p.left, p.right, pool.ceil_mode)
        .unwrap_or(0);
    for ch in 0..c {
        for oy in 0..oh {
            let y0 = (oy * sy).saturating_sub(p.top);
            let y1 = (oy * sy + kh).saturating_sub(p.top).min(h);
            for ox in 0..ow {
                let x0 = (ox * sx).saturating_sub(p.left);
                let x1 = (ox * sx + kw).saturating_sub(p.left).min(w);
                f(ch, oy, ox, y0..y1, x0..x1);
            }
        }
    }
    (oh, ow)
}

fn output_dims(pool: &Pool, input: &Activations) -> (usize, usize, usize) {
    let (c, h, w) = input.dim();
    let p = pool.padding;
    let oh = crate::workload::ir::pool_output_len(
        h,
        pool.kernel[0],
        pool.stride[0],
        p.top,
        p.bottom,
        pool.ceil_mode,
    )
    .unwrap_or(0);
    let ow = crate::workload::ir::pool_output_len(
        w,
        pool.kernel[1],
        pool.stride[1],
        p.left,
        p.right,
        pool.ceil_mode,
    )
    .unwrap_or(0);
    (c, oh, ow)
}

/// Max pooling over the in-bounds elements of each window.
pub fn max_pool(pool: &Pool, input: &Activations) -> Activations {
    let (oc, oh, ow) = output_dims(pool, input);
    let (_, h, w) = input.dim();
    let standard = input.as_standard_layout();
    let values = standard.as_slice().unwrap_or(&[]);
    let mut out = vec![i16::MIN; oc * oh * ow];
    windows(pool, input, |c, oy, ox, ys, xs| {
        let plane = &values[c * h * w..(c + 1) * h * w];
        let m = ys
            .map(|y| {
                plane[y * w + xs.start..y * w + xs.end]
                    .iter()
                    .copied()
                    .max()
            })
            .fold(i16::MIN, |m, v| m.max(v.unwrap_or(i16::MIN)));
        out[(c * oh + oy) * ow + ox] = m;
    });
    Array3::from_shape_vec((oc, oh, ow), out).unwrap_or_else(|_| Array3::zeros((oc, oh, ow)))
}

/// Average pooling over the in-bounds elements of each window.
pub fn avg_pool(pool: &Pool, input: &Activations) -> Activations {
    let mut out = Array3::<i16>::zeros(output_dims(pool, input));
    windows(pool, input, |c, oy, ox, ys, xs| {
        let mut sum = 0i64;
        let mut count = 0i64;
        for y in ys {
            for x in xs.clone() {
                sum += i64::from(input[[c, y, x]]);
                count += 1;
            }
        }
        out[[c, oy, ox]] = divide_rounded(sum, count.max(1), pool.rounding) as i16;
    });
    out
}

/// Mean of each channel plane.
pub fn global_avg_pool(rounding: Rounding, input: &Activations) -> Activations {
    let (c, h, w) = input.dim();
    let count = (h * w).max(1) as i64;
    let mut out = Array3::<i16>::zeros((c, 1, 1));
    for (ch, plane) in input.outer_iter().enumerate() {
        let sum: i64 = plane.iter().map(|&v| i64::from(v)).sum();
        out[[ch, 0, 0]] = divide_rounded(sum, count, rounding) as i16;
    }
    out
}
