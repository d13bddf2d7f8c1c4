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

/// Visits each output position with the in-bounds input ranges of its window
/// (empty for a window wholly over padding).
fn windows(
    pool: &Pool,
    (c, h, w): (usize, usize, usize),
    mut f: impl FnMut(usize, usize, usize, std::ops::Range<usize>, std::ops::Range<usize>),
) -> (usize, usize) {
    let p = pool.padding;
    let [kh, kw] = pool.kernel;
    let [sy, sx] = pool.stride;
    let oh = crate::workload::ir::pool_output_len(h, kh, sy, p.top, p.bottom, pool.ceil_mode)
        .unwrap_or(0);
    let ow = crate::workload::ir::pool_output_len(w, kw, sx, p.left, p.right, pool.ceil_mode)
        .unwrap_or(0);
    for ch in 0..c {
        for oy in 0..oh {
            let y0 = (oy * sy).saturating_sub(p.top).min(h);
            let y1 = (oy * sy + kh).saturating_sub(p.top).min(h);
            for ox in 0..ow {
                let x0 = (ox * sx).saturating_sub(p.left).min(w);
                let x1 = (ox * sx + kw).saturating_sub(p.left).min(w);
                f(ch, oy, ox, y0..y1, x0..x1);
            }
        }
    }
    (oh, ow)
}

fn output_dims(pool: &Pool, input: &Activations) -> (usize, usize, usize) {
    output_dims_of(pool, input.dim())
}

fn output_dims_of(pool: &Pool, (c, h, w): (usize, usize, usize)) -> (usize, usize, usize) {
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
    max_pool_2x2(pool, input).unwrap_or_else(|| max_pool_rows(pool, input))
}

/// [`max_pool`] for any pooling, separably: per output row, the
/// element-wise maximum of the window's input rows (whole rows at a time,
/// vectorised), then each window's maximum along that row. Windows and
/// empty windows (`i16::MIN`) as in [`max_pool_windows`].
fn max_pool_rows(pool: &Pool, input: &Activations) -> Activations {
    let (oc, oh, ow) = output_dims(pool, input);
    let (_, h, w) = input.dim();
    let standard = input.as_standard_layout();
    let values = standard.as_slice().unwrap_or(&[]);
    let p = pool.padding;
    let ([kh, kw], [sy, sx]) = (pool.kernel, pool.stride);
    // The in-bounds input range of window `o` along one axis.
    let range = |o: usize, s: usize, k: usize, before: usize, len: usize| {
        (o * s).saturating_sub(before).min(len)..(o * s + k).saturating_sub(before).min(len)
    };
    let cols: Vec<std::ops::Range<usize>> =
        (0..ow).map(|ox| range(ox, sx, kw, p.left, w)).collect();
    let mut out = vec![i16::MIN; oc * oh * ow];
    let mut column_max = vec![i16::MIN; w];
    for (plane, o_plane) in values
        .chunks_exact((h * w).max(1))
        .zip(out.chunks_exact_mut((oh * ow).max(1)))
    {
        for (oy, o_row) in o_plane.chunks_exact_mut(ow.max(1)).enumerate() {
            column_max.fill(i16::MIN);
            for y in range(oy, sy, kh, p.top, h) {
                for (m, &v) in column_max.iter_mut().zip(&plane[y * w..(y + 1) * w]) {
                    *m = (*m).max(v);
                }
            }
            for (o, xs) in o_row.iter_mut().zip(&cols) {
                *o = column_max[xs.clone()]
                    .iter()
                    .copied()
                    .fold(i16::MIN, i16::max);
            }
        }
    }
    Array3::from_shape_vec((oc, oh, ow), out).unwrap_or_else(|_| Array3::zeros((oc, oh, ow)))
}

/// [`max_pool`] for 2x2 windows at stride 2 without padding, every window
/// inside the input (the common case): two input rows at a time, no
/// window ranges. `None` for any other pooling.
fn max_pool_2x2(pool: &Pool, input: &Activations) -> Option<Activations> {
    let p = pool.padding;
    if pool.kernel != [2, 2] || pool.stride != [2, 2] || p.top + p.bottom + p.left + p.right != 0 {
        return None;
    }
    let (c, oh, ow) = output_dims(pool, input);
    let (_, h, w) = input.dim();
    if oh == 0 || ow == 0 || 2 * oh > h || 2 * ow > w {
        return None;
    }
    let standard = input.as_standard_layout();
    let values = standard.as_slice()?;
    let mut out = vec![0i16; c * oh * ow];
    for (plane, o_plane) in values
        .chunks_exact(h * w)
        .zip(out.chunks_exact_mut(oh * ow))
    {
        for (oy, o_row) in o_plane.chunks_exact_mut(ow).enumerate() {
            let r0 = &plane[2 * oy * w..2 * oy * w + 2 * ow];
            let r1 = &plane[(2 * oy + 1) * w..(2 * oy + 1) * w + 2 * ow];
            for ((o, a), b) in o_row
                .iter_mut()
                .zip(r0.chunks_exact(2))
                .zip(r1.chunks_exact(2))
            {
                *o = a[0].max(a[1]).max(b[0].max(b[1]));
            }
        }
    }
    Array3::from_shape_vec((c, oh, ow), out).ok()
}

/// [`max_pool`] window by window, for any pooling: the definition the
/// fast paths are tested against.
#[cfg(test)]
fn max_pool_windows(pool: &Pool, input: &Activations) -> Activations {
    let (oc, oh, ow) = output_dims(pool, input);
    let (_, h, w) = input.dim();
    let standard = input.as_standard_layout();
    let values = standard.as_slice().unwrap_or(&[]);
    let mut out = vec![i16::MIN; oc * oh * ow];
    windows(pool, input.dim(), |c, oy, ox, ys, xs| {
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

/// Max pooling of a float32 tensor stored as words (`ir::FLOAT32_WORDS`,
/// `[2C, H, W]`), as ONNX Runtime's float MaxPool: the largest in-bounds
/// element of each window (exact: a comparison, no arithmetic).
pub fn float_max_pool(pool: &Pool, input: &Activations) -> Activations {
    let values = super::dynamic::floats(input);
    let dims = values.dim();
    let (oc, oh, ow) = output_dims_of(pool, dims);
    let mut out = ndarray::Array3::<f32>::from_elem((oc, oh, ow), f32::MIN);
    windows(pool, dims, |c, oy, ox, ys, xs| {
        let mut m = f32::MIN;
        for y in ys {
            for x in xs.clone() {
                m = m.max(values[[c, y, x]]);
            }
        }
        out[[c, oy, ox]] = m;
    });
    super::dynamic::words(&out)
}

/// Average pooling over the in-bounds elements of each window.
pub fn avg_pool(pool: &Pool, input: &Activations) -> Activations {
    let mut out = Array3::<i16>::zeros(output_dims(pool, input));
    windows(pool, input.dim(), |c, oy, ox, ys, xs| {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::ir::Padding;

    #[test]
    fn two_by_two_max_pool_equals_the_window_loop() {
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            match state % 5 {
                0 => i16::MIN,
                1 => i16::MAX,
                _ => (state >> 40) as i16,
            }
        };
        for ceil_mode in [false, true] {
            for (c, h, w) in [
                (1, 2, 2),
                (3, 4, 6),
                (2, 5, 7),
                (1, 9, 4),
                (4, 1, 8),
                (2, 3, 3),
            ] {
                let x = Activations::from_shape_fn((c, h, w), |_| next());
                let pool = Pool {
                    kernel: [2, 2],
                    stride: [2, 2],
                    padding: Padding {
                        top: 0,
                        bottom: 0,
                        left: 0,
                        right: 0,
                    },
                    ceil_mode,
                    rounding: Rounding::HalfUp,
                };
                let generic = max_pool_windows(&pool, &x);
                assert_eq!(max_pool(&pool, &x), generic, "{c}x{h}x{w} ceil {ceil_mode}");
                // The fast path ran wherever every window is inside the input.
                let inside = !ceil_mode || (h % 2 == 0 && w % 2 == 0);
                assert_eq!(
                    max_pool_2x2(&pool, &x).is_some(),
                    inside && h >= 2 && w >= 2
                );
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn max_pool_equals_the_window_loop(
            (c, h, w) in (1usize..4, 1usize..12, 1usize..12),
            (kh, kw, sy, sx) in (1usize..5, 1usize..5, 1usize..4, 1usize..4),
            (top, bottom, left, right) in (0usize..3, 0usize..3, 0usize..3, 0usize..3),
            ceil_mode in proptest::bool::ANY,
            seed in proptest::num::u64::ANY,
        ) {
            let mut state = seed | 1;
            let x = Activations::from_shape_fn((c, h, w), |_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                match state % 7 {
                    0 => i16::MIN,
                    1 => i16::MAX,
                    _ => (state >> 40) as i16,
                }
            });
            let pool = Pool {
                kernel: [kh, kw],
                stride: [sy, sx],
                padding: Padding { top, bottom, left, right },
                ceil_mode,
                rounding: Rounding::HalfUp,
            };
            proptest::prop_assert_eq!(max_pool(&pool, &x), max_pool_windows(&pool, &x));
            proptest::prop_assert_eq!(max_pool_rows(&pool, &x), max_pool_windows(&pool, &x));
        }
    }
}
