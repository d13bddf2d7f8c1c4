//! The float32 operators a dynamically quantised model runs between its
//! quantised layers beyond MaxPool, Concat, the plane means and Softmax
//! (docs/onnx.md, item 20): the windowed AveragePool, BatchNormalization,
//! ShuffleNet's channel shuffle and LRN, each as ONNX Runtime's CPU kernel
//! computes it (`numerics::ort_float`), on float32 words
//! (`ir::FLOAT32_WORDS`).

use ndarray::{Array3, Axis};

use super::dynamic::{floats, words};
use crate::numerics::ort_float::{FloatAverage, FloatChannel, SumOrder};
use crate::workload::ir::{Activations, FLOAT32_WORDS, Lrn, QLinearAvgPool, shuffled_channel};

/// ONNX Runtime's kernel for a float32 `AveragePool` (`q`, whose layer reads
/// `channels` float32 channels `width` wide).
pub fn float_average(q: &QLinearAvgPool, channels: usize, width: usize) -> FloatAverage {
    let p = q.pool.padding;
    FloatAverage {
        kernel: q.pool.kernel,
        stride: q.pool.stride,
        pad_top: p.top,
        pad_left: p.left,
        count_include_pad: q.count_include_pad,
        order: SumOrder::of(
            q.pool.kernel,
            q.pool.stride[1],
            p.left + p.right,
            channels,
            width,
        ),
    }
}

/// A float32 windowed AveragePool of `input` (words `[2C, H, W]`) to the
/// output plane `out_hw`.
pub fn float_avg_pool(q: &QLinearAvgPool, input: &Activations, out_hw: [usize; 2]) -> Activations {
    let x = floats(input);
    let (c, h, w) = x.dim();
    let k = float_average(q, c, w);
    let mut out = Array3::<f32>::zeros((c, out_hw[0], out_hw[1]));
    for ch in 0..c {
        let plane = x.index_axis(Axis(0), ch);
        for oy in 0..out_hw[0] {
            let rows: Vec<_> = k.rows(oy, h).map(|y| plane.row(y)).collect();
            for ox in 0..out_hw[1] {
                out[[ch, oy, ox]] = k.output(&rows, ox, w, |r, x| r[x]);
            }
        }
    }
    words(&out)
}

/// Float32 per-channel steps (BatchNormalization, Mul and Add by
/// constants, Relu) on every element of `input`.
pub fn float_channel(op: &FloatChannel, input: &Activations) -> Activations {
    let x = floats(input);
    words(&Array3::from_shape_fn(x.dim(), |(c, y, w)| {
        op.apply(c, x[[c, y, w]])
    }))
}

/// Float32 LRN over the channels of every position (`ort::Lrn`'s float
/// path: ONNX Runtime's running sum of squares, then `x * scale^-beta`
/// with Eigen's `pow` as ONNX Runtime takes it; docs/onnx.md, the LRN item).
pub fn float_lrn(op: &Lrn, input: &Activations) -> Activations {
    let k = crate::numerics::ort::Lrn::new(
        (op.size, op.alpha, op.beta, op.bias),
        &FLOAT32_WORDS,
        &FLOAT32_WORDS,
    );
    let x = floats(input);
    let (c, h, w) = x.dim();
    let mut out = Array3::<f32>::zeros((c, h, w));
    let mut y = vec![0.0f32; c];
    for i in 0..h {
        for j in 0..w {
            let column: Vec<f32> = (0..c).map(|ch| x[[ch, i, j]]).collect();
            let place = crate::numerics::ort::LrnPlace {
                position: i * w + j,
                plane: h * w,
            };
            k.float_column(&column, &mut y, place);
            for (ch, &v) in y.iter().enumerate() {
                out[[ch, i, j]] = v;
            }
        }
    }
    words(&out)
}

/// ShuffleNet's channel shuffle of float32 channels: output channel `k` is
/// input channel `shuffled_channel(k)`, both its words copied.
pub fn float_shuffle(groups: usize, input: &Activations) -> Activations {
    let x = floats(input);
    let channels = x.dim().0;
    let mut out = Array3::<f32>::zeros(x.dim());
    for (k, mut plane) in out.outer_iter_mut().enumerate() {
        plane.assign(&x.index_axis(Axis(0), shuffled_channel(k, channels, groups)));
    }
    words(&out)
}
