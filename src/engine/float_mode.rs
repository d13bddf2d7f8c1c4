//! The PE array's float32 mode, for the int8 QDQ convolutions ONNX Runtime
//! runs unfused in float32 (`Requant::FloatSum`; docs/onnx.md, item 6):
//! each PE dequantises its two operands (`f32(x - zx) * sx`,
//! `f32(w - zw) * sw`) and accumulates them by fused multiply-adds into a
//! float32 psum. MLAS's K-blocking is the schedule's: the pieces of a
//! dot product arrive in im2col order (input channel, kernel row, kernel
//! column; `mapping::lu22`), and each psum keeps the sum of its finished
//! K-blocks beside the block being accumulated
//! (`numerics::ort_conv::FloatPsum`). The drain adds the dequantised bias
//! and quantises (`ChannelRequant::quantize_float`). Cycles, register-file
//! accesses and energy are those of the integer MAC (docs/onnx.md says
//! what that leaves out).

use crate::mapping::Element;
use crate::numerics::ort_conv::{FloatConvScales, FloatPsum, mlas_stride_k};
use crate::workload::ir::{Layer, Op};

/// Zeroes the psums of each lane group (its `widths`, in order) for `rows`
/// PE rows (`stride` buffers per group): the bias is added at the drain.
pub(super) fn clear_psums(
    psums: &mut [Vec<FloatPsum>],
    widths: impl Iterator<Item = usize>,
    rows: usize,
    stride: usize,
) {
    for (g, width) in widths.enumerate() {
        for v in &mut psums[g * stride..g * stride + rows] {
            v.clear();
            v.resize(width, FloatPsum::default());
        }
    }
}

/// What a float-mode PE needs to know about its layer.
#[derive(Debug, Clone)]
pub(super) struct FloatMode {
    pub scales: FloatConvScales,
    stride_k: usize,
    /// Input channels per group, kernel `[height, width]`: an element's
    /// im2col index.
    icg: usize,
    kernel: [usize; 2],
}

impl FloatMode {
    /// The mode of `layer`, when it is a float-sum convolution.
    pub fn of(layer: &Layer) -> Option<Self> {
        let Op::Conv2d(c) = &layer.op else {
            return None;
        };
        let scales = c.epilogue.output_stage.requant.float_sum()?;
        let positions = layer.output_shape.height * layer.output_shape.width;
        Some(FloatMode {
            scales,
            stride_k: mlas_stride_k(positions),
            icg: c.in_channels_per_group(),
            kernel: c.kernel,
        })
    }

    fn im2col_index(&self, e: &Element) -> usize {
        let local = e.channel as usize % self.icg.max(1);
        (local * self.kernel[0] + e.ky as usize) * self.kernel[1] + e.kx as usize
    }

    /// One PE row's psums (`psums[col]` for output `outputs[col]`)
    /// accumulate the piece: `weights[e * width + col]` times input
    /// `inputs[e]` (both centred), element `piece[e]`. A zero input
    /// changes no psum, as in the integer mode.
    pub fn accumulate(
        &self,
        psums: &mut [FloatPsum],
        outputs: &[usize],
        weights: &[i16],
        (inputs, piece): (&[i16], &[Element]),
    ) {
        let width = psums.len();
        for (e, (&x, element)) in inputs.iter().zip(piece).enumerate() {
            if x == 0 {
                continue;
            }
            let k = self.im2col_index(element);
            let xf = self.scales.input(x);
            let row = &weights[e * width..(e + 1) * width];
            for ((p, &w), &o) in psums.iter_mut().zip(row).zip(outputs) {
                p.fma(k, self.stride_k, xf, self.scales.weight(o, w));
            }
        }
    }
}
