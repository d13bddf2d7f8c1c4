//! The GLB unit's float32 functions for a dynamic model's operators beyond
//! MaxPool, Softmax and the plane means (docs/onnx.md, item 20), on float32
//! words (`ir::FLOAT32_WORDS`: channel `2c` the high half of channel `c`):
//!
//! - the windowed AveragePool reads every in-input element of every window
//!   (two words each, no line buffer, as the integer pools) and sums them
//!   in the order of ONNX Runtime's kernel (`ort_float::FloatAverage`):
//!   row by row, or each column's rows then the columns; one float32
//!   division per output;
//! - the per-channel steps (batch norm, Mul and Add by constants, Relu)
//!   read each element once and apply the steps with the channel's
//!   constants, held in registers from when the unit is programmed;
//! - the channel shuffle reads each element once and writes it to its
//!   shuffled channel, unchanged;
//! - LRN reads each element once (two words), as the quantised LRN, and
//!   passes each output through the power unit: busy for the longer of the
//!   bytes read and one cycle per element (`LRN_CYCLES_PER_ELEMENT`).
//!
//! The other three are busy for the bytes read at the unit's bytes per cycle,
//! as the other element-wise and pooling functions.

use ndarray::{ArrayView2, ArrayViewMut2};

use super::{Function, GlbUnit};
use crate::numerics::ort::{f32_words, words_f32};

/// Element `x` of float32 channel `c` of a row of words.
fn value(row: &ArrayView2<'_, i16>, c: usize, x: usize) -> f32 {
    words_f32(row[[2 * c, x]], row[[2 * c + 1, x]])
}

/// Writes `v` as float32 channel `c`, column `x`, of a row of words.
fn store(out: &mut ArrayViewMut2<'_, i16>, c: usize, x: usize, v: f32) {
    let [hi, lo] = f32_words(v);
    out[[2 * c, x]] = hi;
    out[[2 * c + 1, x]] = lo;
}

impl GlbUnit {
    /// Every window of the output row, channel by channel.
    pub(super) fn float_average(
        &mut self,
        rows: &[ArrayView2<'_, i16>],
        out: &mut ArrayViewMut2<'_, i16>,
    ) {
        let Function::FloatAverage(k) = &self.function else {
            return;
        };
        let width = self.input_hw[1];
        let channels = out.nrows() / 2;
        let mut elements = 0u64;
        for ox in 0..self.output_width {
            for c in 0..channels {
                let v = k.output(rows, ox, width, |r, x| value(r, c, x));
                store(out, c, ox, v);
            }
            let start = ox * k.stride[1];
            let lo = start.saturating_sub(k.pad_left).min(width);
            let hi = (start + k.kernel[1]).saturating_sub(k.pad_left).min(width);
            elements += (rows.len() * hi.saturating_sub(lo) * channels) as u64;
        }
        self.reads[0] += 2 * elements;
    }

    /// Each element of the row through its channel's steps.
    pub(super) fn float_channel(
        &mut self,
        rows: &[ArrayView2<'_, i16>],
        out: &mut ArrayViewMut2<'_, i16>,
    ) {
        let (Some(row), Function::FloatChannel(k)) = (rows.first(), &self.function) else {
            return;
        };
        let (c2, width) = row.dim();
        for c in 0..c2 / 2 {
            for x in 0..width {
                store(out, c, x, k.apply(c, value(row, c, x)));
            }
        }
        self.reads[0] += row.len() as u64;
    }

    /// LRN of every column of the row over its float32 channels, one pass
    /// (as the quantised LRN: each element read once, one power each).
    pub(super) fn float_lrn(
        &mut self,
        rows: &[ArrayView2<'_, i16>],
        oy: usize,
        out: &mut ArrayViewMut2<'_, i16>,
    ) {
        let (Some(row), Function::FloatLrn(k)) = (rows.first(), &self.function) else {
            return;
        };
        let (c2, width) = row.dim();
        let channels = c2 / 2;
        let mut y = vec![0.0f32; channels];
        for x in 0..width {
            let column: Vec<f32> = (0..channels).map(|c| value(row, c, x)).collect();
            k.float_column(&column, &mut y, self.lrn_place(oy, x));
            for (c, &v) in y.iter().enumerate() {
                store(out, c, x, v);
            }
        }
        self.reads[0] += row.len() as u64;
        self.powers += (channels * width) as u64;
    }

    /// Output channel `k` is input channel `shuffled_channel(k)`, copied.
    pub(super) fn float_shuffle(
        &mut self,
        groups: usize,
        rows: &[ArrayView2<'_, i16>],
        out: &mut ArrayViewMut2<'_, i16>,
    ) {
        let Some(row) = rows.first() else { return };
        let channels = row.nrows() / 2;
        for k in 0..channels {
            let from = crate::workload::ir::shuffled_channel(k, channels, groups);
            for half in 0..2 {
                out.row_mut(2 * k + half).assign(&row.row(2 * from + half));
            }
        }
        self.reads[0] += row.len() as u64;
    }
}
