//! The float32 convolution of an int8 QDQ group ONNX Runtime leaves
//! unfused (`Requant::FloatSum`; docs/onnx.md, item 6), written from the
//! rule as measured by `scripts/ort_unfused_conv_probe.py`, independently
//! of the machine's PE float mode (`numerics::ort_conv`):
//!
//! 1. dequantise: `xf = f32(x - zx) * sx` (0 in the padding, as MLAS's
//!    im2col pads the float input with zeros), `wf = f32(w - zw) * sw[o]`;
//! 2. lay each output's products out in im2col order (input channel of its
//!    group, kernel row, kernel column) and cut that row into blocks of
//!    `stride_k` (MLAS's SGEMM blocking for `N` output positions);
//! 3. each block sums from 0 by fused multiply-adds; the blocks' sums are
//!    added in order, then the dequantised bias `f32(b) * sb[o]`;
//! 4. `QuantizeLinear`: divided by the output scale, rounded half to even,
//!    the zero point added, saturated (clamped by a fused Relu/Clip).

use ndarray::Array3;

use crate::workload::ir::{Activations, Conv2d};

/// MLAS's K-block for `n` output positions (`MlasSgemmOperation`):
/// 128 doubled while its N-block of 128, halved alongside, stays above 16
/// and at least twice `n`.
fn stride_k(n: usize) -> usize {
    let mut k = 128;
    let mut stride_n = 128;
    while stride_n > 16 && n <= stride_n / 2 {
        k *= 2;
        stride_n /= 2;
    }
    k
}

fn pick(v: &[f32], o: usize) -> f32 {
    v.get(o).or_else(|| v.first()).copied().unwrap_or(1.0)
}

/// The layer's output (`c.epilogue`'s stage is a `Requant::FloatSum`).
pub fn float_conv(c: &Conv2d, input_zero: i32, input: &Activations) -> Activations {
    let stage = &c.epilogue.output_stage;
    let Some(scales) = stage.requant.float_sum() else {
        return Array3::zeros((c.out_channels(), 0, 0));
    };
    let (_, h, w) = input.dim();
    let [kh, kw] = c.kernel;
    let oh =
        crate::workload::ir::conv_output_len(h, kh, c.stride[0], c.padding.top, c.padding.bottom)
            .unwrap_or(0);
    let ow =
        crate::workload::ir::conv_output_len(w, kw, c.stride[1], c.padding.left, c.padding.right)
            .unwrap_or(0);
    let icg = c.in_channels_per_group();
    let ocg = c.out_channels() / c.groups.max(1);
    let block = stride_k(oh * ow);
    let wz = c.weight_quant.zero();
    let wf: Vec<Vec<f32>> = (0..c.out_channels())
        .map(|o| {
            let sw = pick(&scales.weight_scales, o);
            c.weights
                .index_axis(ndarray::Axis(0), o)
                .iter()
                .map(|&q| (i32::from(q) - wz) as f32 * sw)
                .collect()
        })
        .collect();
    let mut out = Array3::<i16>::zeros((c.out_channels(), oh, ow));
    let mut column = Vec::with_capacity(icg * kh * kw);
    for y in 0..oh {
        for x in 0..ow {
            for g in 0..c.groups.max(1) {
                // im2col: the group's dequantised inputs, padding 0.
                column.clear();
                for ci in 0..icg {
                    for ky in 0..kh {
                        for kx in 0..kw {
                            let iy = (y * c.stride[0] + ky) as isize - c.padding.top as isize;
                            let ix = (x * c.stride[1] + kx) as isize - c.padding.left as isize;
                            let inside =
                                iy >= 0 && ix >= 0 && (iy as usize) < h && (ix as usize) < w;
                            column.push(if inside {
                                let v = input[[g * icg + ci, iy as usize, ix as usize]];
                                (i32::from(v) - input_zero) as f32 * scales.input_scale
                            } else {
                                0.0
                            });
                        }
                    }
                }
                for o in g * ocg..(g + 1) * ocg {
                    let mut total = 0.0f32;
                    for (xs, ws) in column.chunks(block).zip(wf[o].chunks(block)) {
                        let mut acc = 0.0f32;
                        for (a, b) in xs.iter().zip(ws) {
                            acc = b.mul_add(*a, acc);
                        }
                        total += acc;
                    }
                    let v = total + c.epilogue.bias[o] as f32 * pick(&scales.bias_scales, o);
                    out[[o, y, x]] = stage
                        .channel(o)
                        .quantize_float(v)
                        .unwrap_or(stage.clamp_min as i16);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::stride_k;

    #[test]
    fn blocks_match_the_measured_shapes() {
        // docs/onnx.md item 6: 13x13 (169) and 15x15 -> 128; 7x7 -> 256;
        // 5x5 -> 512; 3x3 -> 1024.
        for (n, k) in [(169, 128), (225, 128), (49, 256), (25, 512), (9, 1024)] {
            assert_eq!(stride_k(n), k, "N = {n}");
        }
    }
}
