//! The operators ONNX import adds: residual adds, requantising average
//! pools and Softmax, with ONNX Runtime's arithmetic from `numerics::ort`.

use ndarray::Array3;

use crate::numerics::TensorQuant;
use crate::numerics::ort::{
    ConcatInput, FloatAdd, FloatChain, FloatSum, Lrn as LrnKernel, LrnPlace, PlaneOrder,
    QLinearAdd, QLinearAverage, QLinearGlobalAverage, QLinearSoftmax,
};
use crate::numerics::ort_channel::ChannelKernel;
use crate::workload::ir::{
    Activations, Add, AddRule, Concat, FLOAT32_WORDS, Layer, Lrn, PlaneAverage, QLinearAvgPool,
    Sum, pool_output_len, shuffled_channel,
};

/// Element-wise sum of `a` and `b` (same shape), requantised to `output`.
pub fn add(op: &Add, output: &TensorQuant, a: &Activations, b: &Activations) -> Activations {
    let [qa, qb] = &op.input_quants;
    let mut out = Array3::<i16>::zeros(a.dim());
    match op.rule {
        AddRule::QLinearAdd => {
            let k = QLinearAdd::new(qa, qb, output);
            ndarray::Zip::from(&mut out)
                .and(a)
                .and(b)
                .for_each(|o, &x, &y| *o = k.apply(x, y));
        }
        AddRule::Float => {
            let k = FloatAdd::new(qa, qb, output);
            ndarray::Zip::from(&mut out)
                .and(a)
                .and(b)
                .for_each(|o, &x, &y| *o = k.apply(x, y));
        }
    }
    out
}

/// Average pooling with requantisation, as ONNX Runtime's
/// QLinearAveragePool: a window covering the whole unpadded plane takes the
/// integer global-average path, every other window (and every window of an
/// unfused group, `QLinearAvgPool::unfused`) the float32 path.
pub fn qlinear_avg_pool(
    op: &QLinearAvgPool,
    input_quant: &TensorQuant,
    output_quant: &TensorQuant,
    input: &Activations,
) -> Activations {
    let (c, h, w) = input.dim();
    let p = op.pool.padding;
    let [kh, kw] = op.pool.kernel;
    let [sy, sx] = op.pool.stride;
    if [kh, kw] == [h, w] && p.is_zero() && !op.unfused {
        let g = QLinearGlobalAverage::new(input_quant, output_quant, h * w);
        let mut out = Array3::<i16>::zeros((c, 1, 1));
        for (ch, plane) in input.outer_iter().enumerate() {
            out[[ch, 0, 0]] = g.finish(plane.iter().map(|&v| i64::from(v)).sum());
        }
        return out;
    }
    let oh = pool_output_len(h, kh, sy, p.top, p.bottom, op.pool.ceil_mode).unwrap_or(0);
    let ow = pool_output_len(w, kw, sx, p.left, p.right, op.pool.ceil_mode).unwrap_or(0);
    let k = QLinearAverage::new(input_quant, output_quant, op.unfused)
        .with_uint8_kernel(op.uint8_kernel);
    let mut out = Array3::<i16>::zeros((c, oh, ow));
    for ch in 0..c {
        for oy in 0..oh {
            let y0 = (oy * sy).saturating_sub(p.top);
            let y1 = (oy * sy + kh).saturating_sub(p.top).min(h);
            for ox in 0..ow {
                let x0 = (ox * sx).saturating_sub(p.left);
                let x1 = (ox * sx + kw).saturating_sub(p.left).min(w);
                let mut sum = 0.0f32;
                for y in y0..y1 {
                    for x in x0..x1 {
                        sum += k.dequantize(input[[ch, y, x]]);
                    }
                }
                let count = if op.count_include_pad {
                    kh * kw
                } else {
                    (y1 - y0) * (x1 - x0)
                };
                out[[ch, oy, ox]] = k.finish(sum, count.max(1));
            }
        }
    }
    out
}

/// ShuffleNet's channel shuffle: output channel `k` is input channel
/// [`shuffled_channel`]`(k)`, each plane copied as it is.
pub fn channel_shuffle(groups: usize, input: &Activations) -> Activations {
    let channels = input.dim().0;
    let mut out = Array3::<i16>::zeros(input.dim());
    for (k, mut plane) in out.outer_iter_mut().enumerate() {
        plane.assign(&input.index_axis(ndarray::Axis(0), shuffled_channel(k, channels, groups)));
    }
    out
}

/// Softmax over the channels at each position, as ONNX Runtime's
/// QLinearSoftmax: each element's table entry by its distance from the
/// position's largest element, the entries summed in channel order in
/// float32, each output its entry over the sum (docs/numerics.md, "Softmax").
pub fn softmax(
    input_quant: &TensorQuant,
    output_quant: &TensorQuant,
    input: &Activations,
) -> Activations {
    let (c, h, w) = input.dim();
    let k = QLinearSoftmax::new(input_quant, output_quant, c);
    let mut out = Array3::<i16>::zeros((c, h, w));
    for y in 0..h {
        for x in 0..w {
            let column: Vec<i16> = (0..c).map(|ch| input[[ch, y, x]]).collect();
            let max = column.iter().copied().max().unwrap_or(0);
            let entries: Vec<f32> = column
                .iter()
                .map(|&v| k.entry(QLinearSoftmax::index(max, v)))
                .collect();
            let sum = entries.iter().fold(0.0f32, |s, &e| s + e);
            for (ch, &e) in entries.iter().enumerate() {
                out[[ch, y, x]] = k.finish(e, sum);
            }
        }
    }
    out
}

/// Concatenation along the channels, as ONNX Runtime's QLinearConcat: each
/// input's channels in input order, copied or requantised through its table
/// ([`ConcatInput`]).
pub fn concat(op: &Concat, output: &TensorQuant, inputs: &[&Activations]) -> Activations {
    let channels: usize = inputs.iter().map(|x| x.dim().0).sum();
    let (_, h, w) = inputs.first().map_or((0, 0, 0), |x| x.dim());
    let mut out = Array3::<i16>::zeros((channels, h, w));
    let mut c0 = 0;
    for (x, q) in inputs.iter().zip(&op.input_quants) {
        let k = ConcatInput::new(q, output);
        let c = x.dim().0;
        ndarray::Zip::from(out.slice_mut(ndarray::s![c0..c0 + c, .., ..]))
            .and(*x)
            .for_each(|o, &v| *o = k.apply(v));
        c0 += c;
    }
    out
}

/// LRN across the channels at each position, in float32 as ONNX Runtime
/// computes it ([`LrnKernel`]), quantised to `output`.
pub fn lrn(
    op: &Lrn,
    input_quant: &TensorQuant,
    output: &TensorQuant,
    x: &Activations,
) -> Activations {
    let k = LrnKernel::new((op.size, op.alpha, op.beta, op.bias), input_quant, output);
    let (c, h, w) = x.dim();
    let mut out = Array3::<i16>::zeros((c, h, w));
    let mut column = vec![0i16; c];
    let mut result = vec![0i16; c];
    for y in 0..h {
        for xx in 0..w {
            for (ch, v) in column.iter_mut().enumerate() {
                *v = x[[ch, y, xx]];
            }
            let place = LrnPlace {
                position: y * w + xx,
                plane: h * w,
            };
            k.column(&column, &mut result, place);
            for (ch, &v) in result.iter().enumerate() {
                out[[ch, y, xx]] = v;
            }
        }
    }
    out
}

/// An element-wise activation through its 256-entry table
/// ([`crate::workload::ir::Lookup::table`]), indexed by the stored byte.
pub fn lookup(table: &[i16; 256], x: &Activations) -> Activations {
    x.mapv(|v| table[usize::from(v as u8)])
}

/// A per-channel operation (batch norm, or a Mul or Add by a per-channel
/// constant): each element through its channel's kernel
/// ([`crate::workload::ir::ChannelOp::kernel`]).
pub fn channel(kernel: &ChannelKernel, x: &Activations) -> Activations {
    Array3::from_shape_fn(x.dim(), |(c, y, w)| kernel.apply(c, x[[c, y, w]]))
}

/// Element-wise float32 sum of the inputs in order, quantised once
/// ([`FloatSum`]).
pub fn sum(op: &Sum, output: &TensorQuant, inputs: &[&Activations]) -> Activations {
    let k = FloatSum::new(&op.input_quants, output);
    let dim = inputs.first().map_or((0, 0, 0), |x| x.dim());
    Array3::from_shape_fn(dim, |i| k.apply(inputs.iter().map(|x| x[i])))
}

/// The float32 chain of `layer` (docs/onnx.md, item 18): element-wise, or
/// one mean per channel over the whole plane.
pub fn float_chain(op: &Sum, layer: &Layer, inputs: &[&Activations]) -> Activations {
    let kernel = FloatChain::new(
        &op.input_quants,
        op.relu,
        &layer.output_quant,
        &FLOAT32_WORDS,
    );
    let o = layer.output_shape;
    let mut out = Array3::<i16>::zeros((o.channels, o.height, o.width));
    let height = inputs.first().map_or(0, |x| x.dim().1);
    fn row(x: &Activations, y: usize) -> ndarray::ArrayView2<'_, i16> {
        x.slice(ndarray::s![.., y, ..])
    }
    match op.plane_average {
        Some(order) => {
            let planes: Vec<Vec<_>> = inputs
                .iter()
                .map(|x| (0..height).map(|y| row(x, y)).collect())
                .collect();
            let order = match order {
                PlaneAverage::AveragePool => PlaneOrder::Sequential,
                PlaneAverage::GlobalAveragePool => PlaneOrder::MlasGlobal,
            };
            kernel.plane_average(&planes, order, &mut out.slice_mut(ndarray::s![.., 0, ..]));
        }
        None => {
            for y in 0..o.height {
                let rows: Vec<_> = inputs.iter().map(|x| row(x, y)).collect();
                kernel.row(&rows, &mut out.slice_mut(ndarray::s![.., y, ..]));
            }
        }
    }
    out
}
