//! The layers of a dynamically quantised model (ONNX Runtime's
//! `quantize_dynamic`; docs/onnx.md, item 20): the run-time range and
//! quantisation of a float32 tensor, convolutions and matrix products
//! whose input scale and zero point are those run-time values, and the
//! float32 Softmax. Float32 tensors are stored as words
//! (`ir::FLOAT32_WORDS`: channel `2c` the high half of channel `c`).

use std::borrow::Cow;

use ndarray::Array3;

use crate::numerics::ort::{f32_words, words_f32};
use crate::numerics::ort_dynamic::{DynamicQuant, mlas_softmax, range_with_zero};
use crate::numerics::{IntType, Requant, TensorQuant};
use crate::workload::ir::{Activations, DYNAMIC_UINT8, Layer, Op};

/// The float32 values of a tensor stored as words (`[2C, H, W]` to
/// `[C, H, W]`).
pub fn floats(words: &Activations) -> Array3<f32> {
    let (c2, h, w) = words.dim();
    Array3::from_shape_fn((c2 / 2, h, w), |(c, y, x)| {
        words_f32(words[[2 * c, y, x]], words[[2 * c + 1, y, x]])
    })
}

/// The words that store `values` (`[C, H, W]` to `[2C, H, W]`).
pub fn words(values: &Array3<f32>) -> Activations {
    let (c, h, w) = values.dim();
    Array3::from_shape_fn((2 * c, h, w), |(k, y, x)| {
        f32_words(values[[k / 2, y, x]])[k % 2]
    })
}

/// `Op::DynamicRange`: the scale and zero point ONNX Runtime's
/// `DynamicQuantizeLinear` takes for `input` (its minimum and maximum
/// widened to include 0), as a float32 `[2, 1, 1]` tensor (the zero point
/// is an integer in float32).
pub fn dynamic_range(input: &Activations) -> Activations {
    let (lo, hi) = range_with_zero(floats(input).iter().copied());
    let q = DynamicQuant::of_range(lo, hi);
    let values = Array3::from_shape_vec((2, 1, 1), vec![q.scale, q.zero_point as f32])
        .unwrap_or_else(|_| Array3::zeros((2, 1, 1)));
    words(&values)
}

/// The parameters held by an `Op::DynamicRange` tensor.
pub fn range_quant(range: &Activations) -> DynamicQuant {
    let v = floats(range);
    let mut it = v.iter().copied();
    let scale = it.next().unwrap_or(1.0);
    let zero_point = it.next().unwrap_or(0.0) as i32;
    DynamicQuant { scale, zero_point }
}

/// The uint8 quantisation a run-time range stands for.
pub fn range_tensor_quant(range: &Activations) -> TensorQuant {
    let q = range_quant(range);
    TensorQuant::Affine {
        dtype: IntType::Uint8,
        scale: q.scale,
        zero_point: q.zero_point,
    }
}

/// `Op::DynamicQuantize`: `input`'s float32 values quantised with the
/// parameters of `range` (`DynamicQuant::quantize`: divide, clamp, round
/// half to even, add the zero point).
pub fn dynamic_quantize(input: &Activations, range: &Activations) -> Activations {
    let q = range_quant(range);
    floats(input).mapv(|v| q.quantize(v))
}

/// `layer` with its run-time quantisation filled in from `range` (the
/// values of its `Op::DynamicRange` input): a convolution or matrix
/// product reading a [`DYNAMIC_UINT8`] tensor gets that tensor's scale and
/// zero point as its input quantisation, and its float output stage the
/// input scale; a `dynamic_quantize` layer gets them as its output
/// quantisation. Any other layer is returned as it is.
pub fn resolve<'l>(layer: &'l Layer, range: Option<&Activations>) -> Cow<'l, Layer> {
    let Some(range) = range.filter(|_| reads_range(layer)) else {
        return Cow::Borrowed(layer);
    };
    let quant = range_tensor_quant(range);
    let mut l = layer.clone();
    if matches!(l.op, Op::DynamicQuantize) {
        l.output_quant = quant;
        return Cow::Owned(l);
    }
    l.input_quant = quant;
    let stage = match &mut l.op {
        Op::Conv2d(c) => Some(&mut c.epilogue.output_stage),
        Op::FullyConnected(f) => Some(&mut f.epilogue.output_stage),
        _ => None,
    };
    if let Some(stage) = stage
        && let Requant::DynamicFloat { input_scale, .. } = &mut stage.requant
    {
        *input_scale = Some(range_quant(range).scale);
    }
    Cow::Owned(l)
}

/// Whether `layer`'s last input is a `dynamic_range` tensor it needs
/// before it starts: a `dynamic_quantize`, or a convolution or matrix
/// product reading a [`DYNAMIC_UINT8`] tensor (a `flatten` of one moves
/// its values only).
pub fn reads_range(layer: &Layer) -> bool {
    let weighted = matches!(layer.op, Op::Conv2d(_) | Op::FullyConnected(_));
    layer.inputs.len() >= 2
        && (matches!(layer.op, Op::DynamicQuantize)
            || weighted && layer.input_quant == DYNAMIC_UINT8)
}

/// A [`Requant::DynamicFloat`] output stage applied to exact sums
/// `[C, H, W]`: float32 words `[2C, H, W]`.
pub fn requantize_float(
    epilogue: &crate::workload::ir::Epilogue,
    acc: &Array3<i64>,
) -> Activations {
    let (c, h, w) = acc.dim();
    let stages: Vec<_> = (0..c).map(|ch| epilogue.output_stage.channel(ch)).collect();
    let values = Array3::from_shape_fn((c, h, w), |(ch, y, x)| {
        stages[ch].apply_float(acc[[ch, y, x]]).unwrap_or(f32::NAN)
    });
    words(&values)
}

/// ONNX Runtime's float32 Softmax over the channels at each position
/// (`ort_dynamic::mlas_softmax`), on float32 words.
pub fn float_softmax(input: &Activations) -> Activations {
    let v = floats(input);
    let (c, h, w) = v.dim();
    let mut out = Array3::<f32>::zeros((c, h, w));
    for y in 0..h {
        for x in 0..w {
            let row: Vec<f32> = (0..c).map(|ch| v[[ch, y, x]]).collect();
            for (ch, p) in mlas_softmax(&row).into_iter().enumerate() {
                out[[ch, y, x]] = p;
            }
        }
    }
    words(&out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_round_trip_and_the_range_is_the_quantisers() {
        let v = Array3::from_shape_vec((2, 1, 2), vec![-1.0f32, 0.5, 1.55, 0.25]).unwrap();
        let w = words(&v);
        assert_eq!(w.dim(), (4, 1, 2));
        assert_eq!(floats(&w), v);
        // [-1, 1.55]: scale 2.55 / 255, zero point 100 (ort_dynamic's test).
        let r = dynamic_range(&w);
        let q = range_quant(&r);
        assert_eq!((q.scale, q.zero_point), ((1.55f32 + 1.0) / 255.0, 100));
        let quantised = dynamic_quantize(&w, &r);
        assert_eq!(
            quantised.iter().copied().collect::<Vec<_>>(),
            vec![0, 150, 255, 125]
        );
    }
}
