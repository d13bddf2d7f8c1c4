//! ONNX Runtime's float32 CPU kernels for the operators a dynamically
//! quantised model (`quantize_dynamic`) leaves in float32 between its
//! quantised layers (docs/onnx.md, item 20). Measured with
//! `scripts/ort_dynamic_probe.py` (ONNX Runtime 1.32, x86-64 with AVX-512F,
//! one thread) and read in MLAS's `pooling.cpp`.
//!
//! - **Windowed AveragePool** ([`FloatAverage`]): which kernel ONNX Runtime
//!   runs decides the order of the window's float32 sum.
//!   - With a channel count that is a multiple of 16 (the AVX-512 NCHWc
//!     block) its layout transformer runs the NCHWc pool: the window's
//!     in-input elements added row by row, left to right, from 0.0
//!     ([`SumOrder::Rows`]).
//!   - Otherwise MLAS's plain NCHW pool; for a horizontal stride of at most
//!     2, kernels of at most 32 and a padded width of at most 2,045 its
//!     vector kernel (`MlasPool2DVectorKernel`): each input column's
//!     in-input rows of the window summed top to bottom (starting from the
//!     first row), then the window's column sums added left to right
//!     starting from its first column, a padding column counting as +0.0
//!     ([`SumOrder::Columns`]). Other geometries take the generic kernel,
//!     row order.
//!   - The sum is divided (one float32 division) by the window's in-input
//!     element count, or by the whole window with `count_include_pad`.
//!   - Measured: on 5 random tensors each of five shapes (16, 20, 24 and 32 channels,
//!     3x3 strides 1 and 2 pads 1, 2x2 stride 2), both `count_include_pad`:
//!     the chosen rule differs from ONNX Runtime in 0 of 168,280 outputs;
//!     the other order in 1,964 to 12,929 per shape.
//! - **BatchNormalization** (inference): per channel `s = (1 / sqrt(var +
//!   eps)) * scale`, `b = bias - mean * s`, then `y = x * s + b`, the product
//!   rounded before the addition (`ort_channel`'s rule, item 19): 0 of
//!   100,800 probed outputs differ (40 channels); a fused multiply-add
//!   differs in 36,815, the textbook `(x - mean) * (scale / sqrt(var +
//!   eps)) + bias` in 63,213. When the batch norm reads a MaxPool or
//!   AveragePool that ONNX Runtime runs in NCHWc form (a multiple of 16
//!   channels), it runs the batch norm in NCHWc form too, whose `s` is
//!   `scale / sqrt(var + eps)` (a division; [`float_batch_norm_constants`]):
//!   on 50 tensors of 64x14x14 after a MaxPool 0 of 627,200 outputs differ,
//!   the reciprocal form in 119,832; with 64 channels read from the graph
//!   input, or 40 after a MaxPool, the reciprocal form is exact and the
//!   division differs in 119,196 and 80,069.
//! - **Mul, Add by a per-channel constant and Relu** (DenseNet's scale
//!   layers after each batch norm): one float32 operation each, exact by
//!   construction. ONNX Runtime runs each node as its own kernel; accsim
//!   runs a chain of them on one float32 tensor as one pass
//!   ([`FloatChannel`]), the same roundings in the same order.

/// The AVX-512 NCHWc block: a float AveragePool whose channel count is a
/// multiple of it runs ONNX Runtime's NCHWc kernel.
pub const NCHWC_BLOCK: usize = 16;

/// MLAS's pool reduction buffer (`MLAS_POOL_REDUCTION_BUFFER_STACK` less
/// its 3 elements of over-read padding): the vector kernel needs the
/// padded width to fit.
const REDUCTION_BUFFER: usize = 2048 - 3;

/// The order a float AveragePool sums its window in (module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SumOrder {
    /// Row by row, left to right, from 0.0 (the NCHWc and generic kernels).
    Rows,
    /// Column sums top to bottom, then added left to right (MLAS's NCHW
    /// vector kernel).
    Columns,
}

impl SumOrder {
    /// The kernel ONNX Runtime runs for a `kernel` window of horizontal
    /// stride `stride_x` and `pads_x` padding columns (left and right) on
    /// `channels` channels of width `width` (module docs).
    pub fn of(
        kernel: [usize; 2],
        stride_x: usize,
        pads_x: usize,
        channels: usize,
        width: usize,
    ) -> Self {
        let vector =
            stride_x <= 2 && kernel.iter().all(|&k| k <= 32) && width + pads_x <= REDUCTION_BUFFER;
        if !channels.is_multiple_of(NCHWC_BLOCK) && vector {
            SumOrder::Columns
        } else {
            SumOrder::Rows
        }
    }
}

/// ONNX Runtime's float32 windowed AveragePool (module docs).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FloatAverage {
    pub kernel: [usize; 2],
    pub stride: [usize; 2],
    pub pad_top: usize,
    pub pad_left: usize,
    pub count_include_pad: bool,
    pub order: SumOrder,
}

impl FloatAverage {
    /// The in-input rows `[lo, hi)` of output row `oy` (input height `h`).
    pub fn rows(&self, oy: usize, h: usize) -> std::ops::Range<usize> {
        span(oy, self.stride[0], self.kernel[0], self.pad_top, h)
    }

    /// Output column `ox` of one channel from the window's in-input rows
    /// (`rows`, each the channel's whole input row, top to bottom; `value`
    /// reads element `x` of a row).
    pub fn output<R>(
        &self,
        rows: &[R],
        ox: usize,
        width: usize,
        value: impl Fn(&R, usize) -> f32,
    ) -> f32 {
        let xs = span(ox, self.stride[1], self.kernel[1], self.pad_left, width);
        let sum = match self.order {
            SumOrder::Rows => rows.iter().fold(0.0f32, |acc, r| {
                xs.clone().fold(acc, |acc, x| acc + value(r, x))
            }),
            SumOrder::Columns => {
                let column = |x: usize| {
                    let mut it = rows.iter();
                    let first = it.next().map_or(0.0, |r| value(r, x));
                    it.fold(first, |acc, r| acc + value(r, x))
                };
                // Window column j is padded column ox * stride + j.
                let start = ox * self.stride[1];
                let at = |j: usize| {
                    let x = (start + j)
                        .checked_sub(self.pad_left)
                        .filter(|&x| x < width);
                    x.map_or(0.0, column)
                };
                (1..self.kernel[1]).fold(at(0), |acc, j| acc + at(j))
            }
        };
        let count = if self.count_include_pad {
            self.kernel[0] * self.kernel[1]
        } else {
            rows.len() * xs.len()
        };
        sum / count.max(1) as f32
    }
}

/// The in-input span `[lo, hi)` along one axis of output index `o`.
fn span(o: usize, stride: usize, kernel: usize, pad: usize, len: usize) -> std::ops::Range<usize> {
    let lo = (o * stride).saturating_sub(pad).min(len);
    let hi = (o * stride + kernel).saturating_sub(pad).min(len);
    lo..hi.max(lo)
}

/// One per-channel float32 step of a [`FloatChannel`].
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChannelStep {
    /// BatchNormalization folded ([`batch_norm_constants`]): `x * scale[c]`
    /// rounded, then `+ bias[c]`.
    BatchNorm { scale: Vec<f32>, bias: Vec<f32> },
    /// `x * value[c]`.
    Mul(Vec<f32>),
    /// `x + value[c]`.
    Add(Vec<f32>),
    /// `max(x, 0)`.
    Relu,
}

/// Float32 per-channel operations applied in order to each element of one
/// tensor: BatchNormalization, Mul and Add by per-channel constants, Relu
/// (module docs).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct FloatChannel {
    pub steps: Vec<ChannelStep>,
}

impl FloatChannel {
    /// Element `x` of channel `c` through every step.
    pub fn apply(&self, c: usize, x: f32) -> f32 {
        let at = |v: &[f32]| v.get(c).or(v.first()).copied().unwrap_or(0.0);
        self.steps.iter().fold(x, |x, step| match step {
            ChannelStep::BatchNorm { scale, bias } => x * at(scale) + at(bias),
            ChannelStep::Mul(v) => x * at(v),
            ChannelStep::Add(v) => x + at(v),
            ChannelStep::Relu => x.max(0.0),
        })
    }

    /// Floating-point operations per element (a batch norm is two).
    pub fn operations(&self) -> u64 {
        self.steps
            .iter()
            .map(|s| match s {
                ChannelStep::BatchNorm { .. } => 2,
                _ => 1,
            })
            .sum()
    }
}

/// ONNX Runtime's float32 BatchNormalization folded per channel (module
/// docs): in its NCHWc form (`nchwc`: a multiple of [`NCHWC_BLOCK`]
/// channels read from a pool ONNX Runtime runs in NCHWc form) `s = scale /
/// sqrt(var + eps)` (a division); otherwise [`batch_norm_constants`].
pub fn float_batch_norm_constants(
    params: [&[f32]; 4],
    epsilon: f32,
    nchwc: bool,
) -> (Vec<f32>, Vec<f32>) {
    if !nchwc {
        return batch_norm_constants(params, epsilon);
    }
    let [scale, bias, mean, var] = params;
    let s: Vec<f32> = scale
        .iter()
        .zip(var)
        .map(|(&g, &v)| g / (v + epsilon).sqrt())
        .collect();
    let b = folded_bias(bias, mean, &s);
    (s, b)
}

/// ONNX Runtime's float32 BatchNormalization folded per channel (module
/// docs): `(s, b)` of `y = x * s + b`.
pub fn batch_norm_constants(
    [scale, bias, mean, var]: [&[f32]; 4],
    epsilon: f32,
) -> (Vec<f32>, Vec<f32>) {
    let s: Vec<f32> = scale
        .iter()
        .zip(var)
        .map(|(&g, &v)| 1.0 / (v + epsilon).sqrt() * g)
        .collect();
    let b = folded_bias(bias, mean, &s);
    (s, b)
}

/// The folded bias `B - mean * s` per channel (a product, then a
/// difference: no fused multiply-add), in both forms.
fn folded_bias(bias: &[f32], mean: &[f32], s: &[f32]) -> Vec<f32> {
    bias.iter()
        .zip(mean)
        .zip(s)
        .map(|((&b, &m), &s)| b - m * s)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `k x k` window, stride `s`, `p` pads on each side, on `channels`
    /// channels `width` wide.
    fn pool(
        k: usize,
        s: usize,
        p: usize,
        include: bool,
        channels: usize,
        width: usize,
    ) -> FloatAverage {
        FloatAverage {
            kernel: [k, k],
            stride: [s, s],
            pad_top: p,
            pad_left: p,
            count_include_pad: include,
            order: SumOrder::of([k, k], s, 2 * p, channels, width),
        }
    }

    fn order(k: usize, s: usize, p: usize, channels: usize, width: usize) -> SumOrder {
        pool(k, s, p, false, channels, width).order
    }

    #[test]
    fn the_channel_count_and_geometry_choose_the_kernel() {
        assert_eq!(order(3, 2, 1, 24, 28), SumOrder::Columns);
        assert_eq!(order(3, 2, 1, 32, 28), SumOrder::Rows);
        // Stride 3 or a 33-wide kernel: the generic kernel, row order.
        assert_eq!(order(3, 3, 1, 24, 28), SumOrder::Rows);
        assert_eq!(order(33, 1, 0, 24, 40), SumOrder::Rows);
        assert_eq!(order(3, 1, 1, 24, 2043), SumOrder::Columns);
        assert_eq!(order(3, 1, 1, 24, 2044), SumOrder::Rows);
    }

    #[test]
    fn the_two_orders_round_differently() {
        // One 2x2 window (rows [1, 2^-24], [-1, 2^-24]): row order
        // ((0 + 1) + 2^-24) + -1 + 2^-24 loses the first 2^-24 (1 + 2^-24
        // rounds to 1): 2^-24 / 4. Column order (1 + -1) + (2^-24 + 2^-24)
        // keeps both: 2^-23 / 4.
        let tiny = 2f32.powi(-24);
        let rows = [vec![1.0f32, tiny], vec![-1.0, tiny]];
        let mut k = pool(2, 2, 0, false, 16, 2);
        let read = |r: &Vec<f32>, x: usize| r[x];
        assert_eq!(k.output(&rows, 0, 2, read), tiny / 4.0);
        k.order = SumOrder::Columns;
        assert_eq!(k.output(&rows, 0, 2, read), 2.0 * tiny / 4.0);
    }

    #[test]
    fn channel_steps_round_one_at_a_time_in_order() {
        // (1 + 2^-23) * (1 + 2^-23) = 1 + 2^-22 + 2^-46 rounds to 1 + 2^-22
        // before the - 1 (a fused multiply-add would keep the 2^-46).
        let e = 2f32.powi(-23);
        let bn = ChannelStep::BatchNorm {
            scale: vec![1.0 + e, 2.0],
            bias: vec![-1.0, 0.5],
        };
        let k = FloatChannel {
            steps: vec![
                bn,
                ChannelStep::Mul(vec![4.0, -1.0]),
                ChannelStep::Add(vec![1.0, 0.25]),
                ChannelStep::Relu,
            ],
        };
        assert_eq!(k.apply(0, 1.0 + e), 4.0 * 2f32.powi(-22) + 1.0);
        // Channel 1: (3 * 2 + 0.5) * -1 + 0.25 = -6.25, then Relu.
        assert_eq!(k.apply(1, 3.0), 0.0);
        assert_eq!(k.operations(), 5);
    }

    #[test]
    fn padding_counts_only_with_count_include_pad() {
        // 3x3 stride 2 pads 1 at (0, 0) covers input rows 0..2, columns 0..2.
        let rows = [vec![1.0f32, 2.0, 4.0], vec![8.0, 16.0, 32.0]];
        let read = |r: &Vec<f32>, x: usize| r[x];
        let k = pool(3, 2, 1, false, 24, 3);
        assert_eq!(k.output(&rows, 0, 3, read), 27.0 / 4.0);
        let k = pool(3, 2, 1, true, 24, 3);
        assert_eq!(k.output(&rows, 0, 3, read), 27.0 / 9.0);
        // (0, 1): columns 1..3: 2 + 4 + 16 + 32 = 54 over 4.
        let k = pool(3, 2, 1, false, 24, 3);
        assert_eq!(k.output(&rows, 1, 3, read), 54.0 / 4.0);
    }
}
