//! The GLB unit: the vector datapath beside the global buffer that computes
//! the layers without weights (SPEC section 1: "pooling runs on data in the
//! GLB"): max and average pooling, windowed and global, ONNX Runtime's
//! requantising average pool, element-wise additions, and Softmax over the
//! channels with ONNX Runtime's exp look-up table.
//!
//! ```text
//!                  ┌──────────────────────── GLB unit ─────────────────────────┐
//!   GLB read ────► │ window walker ──┬─► comparator ────────────► (max)        │
//!   port: rows     │ (output row oy, ├─► adder ─► divider ───────► (average)    ├──► output row
//!   resident in    │  column by      ├─► dequantiser ─► float adder ─► quant.   │    to the GLB
//!   the GLB        │  column)        ├─► operand pair ─► requantising adder     │    write port
//!                  │                 └─► max ─► exp LUT ─► float adder ─► divider │
//!                  └────────────────────────────────────────────────────────────┘
//! ```
//!
//! The unit works one output row at a time (a step), except for the
//! reductions of a whole tensor into one row (`dynamic_range`, a float32
//! chain's mean, ONNX Runtime's integer global average pool), which take
//! one input row per step into registers (a running minimum and maximum;
//! a running mean per channel, `numerics::running_mean`; an integer sum per
//! channel) and write their row after the last
//! ([`GlbUnit::steps`]). It reads the input rows a step needs from the
//! GLB, element by element: every in-input element of
//! every window (no line buffer, so an element under two windows is read
//! twice) and both operands of every element of an addition. A row that is
//! not resident in the GLB when the unit reads it is a schedule error
//! ([`MissingRow`]): the unit computes only from data the GLB holds. It
//! counts the elements it read per operand ([`GlbUnit::reads`]); the engine
//! turns those into GLB accesses and, at the unit's bytes per cycle, into
//! busy cycles. The arithmetic is each operator's defining rounding rule
//! (`numerics`), applied in the order the operator specifies.
//!
//! Softmax works on the channels of one position (a column of the row):
//! with no buffer for the column, it reads the column three times, once
//! per pass: the largest element (comparator), the sum of the elements'
//! exp-table entries (one LUT read and one float32 addition each, in
//! channel order), and the outputs (one LUT read, one multiplication by
//! `floor(1 / ys)` and one float32 division each). The LUT holds the 256
//! float32 entries of ONNX Runtime's QLinearSoftmax table for the layer's
//! input scale and channel count (`numerics::ort::QLinearSoftmax`), loaded
//! when the unit is programmed. The unit counts its LUT reads and
//! divisions ([`GlbUnit::lut_reads`], [`GlbUnit::divisions`]).
//!
//! A channel shuffle (ShuffleNet) is a permutation: for each output row the
//! unit reads every element of the input row once, channel `(k % g) * (C /
//! g) + k / g` for output channel `k`, and writes it unchanged: one read
//! and one write per element, no arithmetic, busy for the row's bytes at
//! the unit's bytes per cycle, as every other function.
//!
//! A concatenation (GoogLeNet, DenseNet) reads, for each output row, the
//! same row of every input once and writes the inputs' channels one after
//! the other: an input whose quantisation is the output's is copied, any
//! other goes through its 256-entry requantisation table (ONNX Runtime's
//! QLinearConcat, `numerics::ort::ConcatInput`), loaded into the LUT when
//! the unit is programmed: one LUT read per requantised element
//! ([`GlbUnit::lut_reads`]). Busy for the bytes read at the unit's bytes per
//! cycle. (Placing the inputs side by side in the GLB, so that no copy is
//! made, is the next step: docs/onnx.md.)
//!
//! LeakyRelu and Sigmoid are a table look-up per element: ONNX Runtime's
//! QLinearLeakyRelu and QLinearSigmoid compute the activation once for
//! each of the 256 input bytes; the unit holds that table in its LUT and
//! reads each element once, one LUT read per element, busy for the bytes
//! read.
//!
//! A Sum of three or more inputs reads every operand's element once and
//! adds the dequantised values in float32 in input order, then quantises
//! (`numerics::ort::FloatSum`): busy for the bytes read, as an addition.
//!
//! LRN works on the channels of one position, as Softmax, but in one
//! pass: each element is read once; a running window sum of squares in
//! float32 (one multiply and two multiply-then-adds per element, the
//! window's squares held in `size` registers), then `x * scale^-beta`
//! through a pipelined power unit (log2, multiply, exp2) that takes
//! [`LRN_CYCLES_PER_ELEMENT`] cycle per element, then the quantiser
//! (`numerics::ort::Lrn`). Busy for the longer of streaming the row's
//! bytes and the power unit's cycles; [`GlbUnit::powers`] counts them.
//!
//! A per-channel operation (DenseNet's batch norm after a Concat, and its
//! Mul and Add by per-channel constants; `numerics::ort_channel`) reads
//! each element once and computes it with its channel's constants (a
//! float32 multiply and add for the batch norm, an integer product and a
//! float32 scaling, or two fused multiply-adds), held in the unit's
//! registers from when it is programmed, as the LUT's tables are: busy for
//! the bytes read, as every element-wise function.

use crate::numerics::ort::{f32_words, words_f32};
use crate::numerics::ort_dynamic::{DynamicQuant, mlas_softmax, range_with_zero};
use crate::numerics::running_mean::RunningMean;
use std::ops::Range;

use ndarray::{ArrayView2, ArrayViewMut2, s};

use crate::numerics::Rounding;
use crate::numerics::ort::{
    ConcatInput, FloatAdd, FloatChain, FloatSum, Lrn, PlaneOrder, QLinearAdd, QLinearAverage,
    QLinearGlobalAverage, QLinearSoftmax,
};
use crate::numerics::ort_channel::ChannelKernel;
use crate::numerics::rounding::divide_rounded;

/// Width of one entry of the Softmax exp table (float32) [bits]: a LUT
/// read costs `[energy] lut` per 16 bits (docs/arch-format.md).
pub const SOFTMAX_LUT_ENTRY_BITS: u32 = 32;

/// Cycles the LRN power unit takes per element (pipelined: one result per
/// cycle; module docs).
pub const LRN_CYCLES_PER_ELEMENT: u64 = 1;

/// A pooling window's geometry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub kernel: [usize; 2],
    pub stride: [usize; 2],
    /// Zero-padding rows above and columns left of the input.
    pub pad_top: usize,
    pub pad_left: usize,
}

impl Window {
    /// A window covering a whole `height x width` plane (global pooling).
    pub fn plane(height: usize, width: usize) -> Self {
        Window {
            kernel: [height, width],
            stride: [1, 1],
            pad_top: 0,
            pad_left: 0,
        }
    }

    /// The in-input span `[lo, hi)` along one axis of output index `o`.
    fn span(o: usize, stride: usize, kernel: usize, pad: usize, len: usize) -> Range<usize> {
        let lo = (o * stride).saturating_sub(pad).min(len);
        let hi = (o * stride + kernel).saturating_sub(pad).min(len);
        lo..hi.max(lo)
    }
}

/// How an element-wise addition requantises (ONNX Runtime's two rules).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AddKernel {
    QLinear(QLinearAdd),
    Float(FloatAdd),
}

impl AddKernel {
    fn apply(&self, a: i16, b: i16) -> i16 {
        match self {
            AddKernel::QLinear(k) => k.apply(a, b),
            AddKernel::Float(k) => k.apply(a, b),
        }
    }
}

/// What the unit computes for a layer: its program.
#[derive(Debug, Clone, PartialEq)]
pub enum Function {
    /// The largest in-input element of each window (`i16::MIN` for a
    /// window wholly over padding).
    Max(Window),
    /// The exact integer sum of the in-input elements of each window,
    /// divided by their count with `rounding`.
    Average { window: Window, rounding: Rounding },
    /// QLinearAveragePool's float path: elements dequantised and summed in
    /// window order in float32, divided by the in-input count or, with
    /// `count_include_pad`, the whole window.
    QLinearAverage {
        window: Window,
        count_include_pad: bool,
        kernel: QLinearAverage,
    },
    /// QLinearGlobalAveragePool's integer path over the whole plane.
    QLinearGlobalAverage(QLinearGlobalAverage),
    /// Operand 0 plus operand 1, element by element, requantised.
    Add(AddKernel),
    /// QLinearSoftmax over the channels of each position, its exp table in
    /// the unit's LUT.
    Softmax(Box<QLinearSoftmax>),
    /// ShuffleNet's channel shuffle in `groups`: a permutation of the
    /// channels of each row (module docs).
    ChannelShuffle { groups: usize },
    /// The operands' channels one after the other, each copied or
    /// requantised through its table (module docs).
    Concat(Vec<ConcatInput>),
    /// LRN over the channels of each position (module docs).
    Lrn(Lrn),
    /// The operands' float32 sum, in operand order, quantised once.
    Sum(FloatSum),
    /// Each element through a 256-entry table indexed by its stored byte
    /// (LeakyRelu, Sigmoid; module docs).
    Lookup(Box<[i16; 256]>),
    /// A float32 chain (module docs): element-wise, or (`plane`) one mean
    /// per channel over the whole plane, streamed one input row per step
    /// into a running mean per channel ([`GlbUnit::steps`]).
    Chain {
        kernel: FloatChain,
        plane: Option<PlaneOrder>,
    },
    /// Each element through its channel's constants: batch norm, or a Mul
    /// or Add by a per-channel constant (module docs).
    Channel(Box<ChannelKernel>),
    /// Max pooling of float32 words (`ir::FLOAT32_WORDS`): each window's
    /// largest element, compared as float32 (a dynamic model's MaxPool).
    FloatMax(Window),
    /// The minimum and maximum of a whole float32 tensor, streamed one
    /// input row per step through two registers (a running minimum and
    /// maximum, from 0), to the uint8 scale and zero point
    /// `DynamicQuantizeLinear` takes, written as a float32 `[2, 1]` row
    /// after the last input row (`numerics::ort_dynamic`; docs/onnx.md,
    /// item 20; [`GlbUnit::steps`]).
    DynamicRange,
    /// Each float32 element quantised with the run-time parameters the
    /// unit was programmed with (read from the range tensor when the layer
    /// starts): a division, a clamp, a rounding and an addition, pipelined
    /// at the read rate. `None`: not programmed yet (the schedule check
    /// reads only the geometry); it computes nothing.
    DynamicQuantize(Option<DynamicQuant>),
    /// ONNX Runtime's float32 Softmax (MLAS) over the channels of each
    /// position: the maximum, the exponentials and their sum, each over
    /// the sum (three passes, as the quantised Softmax).
    FloatSoftmax,
    /// ONNX Runtime's float32 windowed AveragePool (`float_ops`).
    FloatAverage(crate::numerics::ort_float::FloatAverage),
    /// Float32 per-channel steps, each element read once (`float_ops`).
    FloatChannel(Box<crate::numerics::ort_float::FloatChannel>),
    /// ShuffleNet's channel shuffle of float32 channels, both words of each
    /// element copied (`float_ops`).
    FloatShuffle { groups: usize },
    /// LRN over the float32 channels of each position (`float_ops`).
    FloatLrn(Lrn),
}

mod float_ops;

/// Where the unit reads: the rows of each operand resident in the GLB.
pub trait ResidentRows {
    /// Row `y` of operand `operand` as `[channels, width]`, when the GLB
    /// holds it.
    fn row(&self, operand: usize, y: usize) -> Option<ArrayView2<'_, i16>>;
}

/// The unit tried to read a row the GLB does not hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MissingRow {
    pub operand: usize,
    pub row: usize,
}

/// The GLB unit, programmed for one layer.
#[derive(Debug, Clone)]
pub struct GlbUnit {
    function: Function,
    /// Input plane `[height, width]`.
    input_hw: [usize; 2],
    output_width: usize,
    /// Elements read so far, per operand (at least two entries).
    reads: Vec<u64>,
    /// Softmax exp-table reads so far.
    lut_reads: u64,
    /// Softmax divisions so far (one per output).
    divisions: u64,
    /// LRN powers so far (one per output).
    powers: u64,
    /// The running minimum and maximum of a streamed range (`DynamicRange`),
    /// both from 0 (`ort_dynamic::range_with_zero`).
    range: (f32, f32),
    /// A streamed float32 chain mean's running sums, one per channel
    /// (`numerics::running_mean`; empty until its first row).
    means: Vec<RunningMean>,
    /// A streamed integer global average's running sums, one per channel
    /// (empty until its first row).
    sums: Vec<i64>,
}

impl GlbUnit {
    pub fn new(function: Function, input_hw: [usize; 2], output_width: usize) -> Self {
        let operands = function_operands(&function);
        GlbUnit {
            function,
            input_hw,
            output_width,
            reads: vec![0; operands.max(2)],
            lut_reads: 0,
            divisions: 0,
            powers: 0,
            range: (0.0, 0.0),
            means: Vec::new(),
            sums: Vec::new(),
        }
    }

    /// Whether the unit reduces its whole input into one output row one
    /// input row per step (`DynamicRange`, a chain's mean, an integer global
    /// average), rather than computing an output row per step from the
    /// input rows the GLB holds.
    fn streams_rows(&self) -> bool {
        matches!(
            self.function,
            Function::DynamicRange
                | Function::Chain { plane: Some(_), .. }
                | Function::QLinearGlobalAverage(_)
        )
    }

    /// The steps of a layer whose output has `out_rows` rows: one per
    /// output row, or, for a streamed reduction, one per input row (each
    /// step reads [`GlbUnit::input_rows`] of its index).
    pub fn steps(&self, out_rows: usize) -> usize {
        if self.streams_rows() {
            self.input_hw[0]
        } else {
            out_rows
        }
    }

    /// The output row step `step` completes (`None`: the step only updated
    /// the unit's registers; a streamed reduction writes its one row after
    /// its last input row).
    pub fn step_output(&self, step: usize) -> Option<usize> {
        if !self.streams_rows() {
            Some(step)
        } else {
            (step + 1 == self.input_hw[0]).then_some(0)
        }
    }

    /// Operands the function reads.
    pub fn operands(&self) -> usize {
        function_operands(&self.function)
    }

    /// Elements read from the GLB so far, per operand (at least two
    /// entries, the unused ones zero).
    pub fn reads(&self) -> Vec<u64> {
        self.reads.clone()
    }

    /// LRN powers so far (one per output element).
    pub fn powers(&self) -> u64 {
        self.powers
    }

    /// Where column `x` of output row `oy` sits in the LRN's plane (an LRN
    /// keeps its input's shape).
    fn lrn_place(&self, oy: usize, x: usize) -> crate::numerics::ort::LrnPlace {
        let [height, width] = self.input_hw;
        crate::numerics::ort::LrnPlace {
            position: oy * width + x,
            plane: height * width,
        }
    }

    /// Softmax exp-table (LUT) reads so far.
    pub fn lut_reads(&self) -> u64 {
        self.lut_reads
    }

    /// Divisions so far (Softmax: one per output).
    pub fn divisions(&self) -> u64 {
        self.divisions
    }

    fn window(&self) -> Option<Window> {
        match &self.function {
            Function::Max(w) | Function::Average { window: w, .. } => Some(*w),
            Function::QLinearAverage { window, .. } => Some(*window),
            Function::QLinearGlobalAverage(_)
            | Function::Chain { .. }
            | Function::Add(_)
            | Function::Softmax(_)
            | Function::ChannelShuffle { .. }
            | Function::Concat(_)
            | Function::Lrn(_)
            | Function::Sum(_)
            | Function::Lookup(_)
            | Function::Channel(_)
            | Function::DynamicQuantize(_)
            | Function::DynamicRange
            | Function::FloatSoftmax => None,
            Function::FloatMax(w) => Some(*w),
            Function::FloatAverage(k) => Some(Window {
                kernel: k.kernel,
                stride: k.stride,
                pad_top: k.pad_top,
                pad_left: k.pad_left,
            }),
            Function::FloatChannel(_) | Function::FloatShuffle { .. } | Function::FloatLrn(_) => {
                None
            }
        }
    }

    /// The input rows step `oy` reads (output row `oy`, but for a streamed
    /// reduction, which reads input row `oy`: [`GlbUnit::steps`]).
    pub fn input_rows(&self, oy: usize) -> Range<usize> {
        let height = self.input_hw[0];
        match self.window() {
            Some(w) => Window::span(oy, w.stride[0], w.kernel[0], w.pad_top, height),
            None => oy.min(height)..(oy + 1).min(height),
        }
    }

    /// Takes step `oy` ([`GlbUnit::steps`]): computes output row `oy`
    /// (`[channels, output width]`) from the rows resident in the GLB, or,
    /// streaming a reduction, takes input row `oy` into the registers (and
    /// writes the output row after the last).
    pub fn output_row(
        &mut self,
        rows: &impl ResidentRows,
        oy: usize,
        mut out: ArrayViewMut2<'_, i16>,
    ) -> Result<(), MissingRow> {
        let ys = self.input_rows(oy);
        let mut operand_rows: Vec<Vec<ArrayView2<'_, i16>>> = vec![Vec::new(); self.reads.len()];
        for (operand, gathered) in operand_rows.iter_mut().enumerate().take(self.operands()) {
            for y in ys.clone() {
                let row = rows.row(operand, y).ok_or(MissingRow { operand, row: y })?;
                gathered.push(row);
            }
        }
        match &self.function {
            Function::Add(kernel) => {
                let kernel = *kernel;
                self.add(kernel, &operand_rows, &mut out);
            }
            Function::Softmax(_) => self.softmax(&operand_rows[0], &mut out),
            Function::ChannelShuffle { groups } => {
                let groups = *groups;
                self.shuffle(groups, &operand_rows[0], &mut out);
            }
            Function::Concat(_) => self.concat(&operand_rows, &mut out),
            Function::Lrn(_) => self.lrn(&operand_rows[0], oy, &mut out),
            Function::Sum(_) => self.sum(&operand_rows, &mut out),
            Function::Lookup(_) => self.lookup(&operand_rows[0], &mut out),
            Function::Chain { .. } => self.chain(&operand_rows, oy, &mut out),
            Function::Channel(_) => self.channel(&operand_rows[0], &mut out),
            Function::FloatMax(_) => self.float_max(&operand_rows[0], &mut out),
            Function::DynamicRange => self.dynamic_range(&operand_rows[0], oy, &mut out),
            Function::QLinearGlobalAverage(_) => {
                self.global_average(&operand_rows[0], oy, &mut out);
            }
            Function::DynamicQuantize(_) => self.dynamic_quantize(&operand_rows[0], &mut out),
            Function::FloatSoftmax => self.float_softmax(&operand_rows[0], &mut out),
            Function::FloatAverage(_) => self.float_average(&operand_rows[0], &mut out),
            Function::FloatChannel(_) => self.float_channel(&operand_rows[0], &mut out),
            Function::FloatLrn(_) => self.float_lrn(&operand_rows[0], oy, &mut out),
            Function::FloatShuffle { groups } => {
                let groups = *groups;
                self.float_shuffle(groups, &operand_rows[0], &mut out);
            }
            _ => self.pool(&operand_rows[0], &mut out),
        }
        Ok(())
    }

    /// Softmax of every column of the row, over its channels, in three
    /// passes over the column (module docs).
    fn softmax(&mut self, rows: &[ArrayView2<'_, i16>], out: &mut ArrayViewMut2<'_, i16>) {
        let (Some(row), Function::Softmax(kernel)) = (rows.first(), &self.function) else {
            return;
        };
        let (channels, width) = row.dim();
        for x in 0..width {
            let column = row.column(x);
            // Pass 1: the largest element.
            let max = column.iter().copied().fold(i16::MIN, i16::max);
            // Pass 2: the entries' sum, in channel order.
            let sum = column.iter().fold(0.0f32, |s, &v| {
                s + kernel.entry(QLinearSoftmax::index(max, v))
            });
            // Pass 3: each entry over the sum.
            for (c, &v) in column.iter().enumerate() {
                out[[c, x]] = kernel.finish(kernel.entry(QLinearSoftmax::index(max, v)), sum);
            }
        }
        let elements = (channels * width) as u64;
        self.reads[0] += 3 * elements;
        self.lut_reads += 2 * elements;
        self.divisions += elements;
    }

    /// Output channel `k` of the row is input channel
    /// `(k % groups) * (C / groups) + k / groups`, copied.
    fn shuffle(
        &mut self,
        groups: usize,
        rows: &[ArrayView2<'_, i16>],
        out: &mut ArrayViewMut2<'_, i16>,
    ) {
        let Some(row) = rows.first() else { return };
        let channels = row.nrows();
        for (k, mut dst) in out.outer_iter_mut().enumerate() {
            dst.assign(&row.row(crate::workload::ir::shuffled_channel(k, channels, groups)));
        }
        self.reads[0] += row.len() as u64;
    }

    /// Each operand's row into its channels of the output row, copied or
    /// through its table.
    fn concat(&mut self, rows: &[Vec<ArrayView2<'_, i16>>], out: &mut ArrayViewMut2<'_, i16>) {
        let Function::Concat(inputs) = &self.function else {
            return;
        };
        let mut c0 = 0;
        for (operand, (input, row)) in inputs.iter().zip(rows).enumerate() {
            let Some(row) = row.first() else { continue };
            let c = row.nrows();
            ndarray::Zip::from(out.slice_mut(s![c0..c0 + c, ..]))
                .and(row)
                .for_each(|o, &v| *o = input.apply(v));
            c0 += c;
            let elements = row.len() as u64;
            self.reads[operand] += elements;
            if matches!(input, ConcatInput::Table(_)) {
                self.lut_reads += elements;
            }
        }
    }

    /// LRN of every column of the row over its channels, one pass.
    fn lrn(&mut self, rows: &[ArrayView2<'_, i16>], oy: usize, out: &mut ArrayViewMut2<'_, i16>) {
        let (Some(row), Function::Lrn(kernel)) = (rows.first(), &self.function) else {
            return;
        };
        let (channels, width) = row.dim();
        let mut column = vec![0i16; channels];
        let mut result = vec![0i16; channels];
        for x in 0..width {
            for (v, &r) in column.iter_mut().zip(row.column(x)) {
                *v = r;
            }
            kernel.column(&column, &mut result, self.lrn_place(oy, x));
            for (o, &r) in out.column_mut(x).iter_mut().zip(&result) {
                *o = r;
            }
        }
        let elements = (channels * width) as u64;
        self.reads[0] += elements;
        self.powers += elements;
    }

    /// Each element of the row through the table.
    fn lookup(&mut self, rows: &[ArrayView2<'_, i16>], out: &mut ArrayViewMut2<'_, i16>) {
        let (Some(row), Function::Lookup(table)) = (rows.first(), &self.function) else {
            return;
        };
        ndarray::Zip::from(out)
            .and(row)
            .for_each(|o, &v| *o = table[usize::from(v as u8)]);
        let elements = row.len() as u64;
        self.reads[0] += elements;
        self.lut_reads += elements;
    }

    /// Each element of the row through its channel's constants.
    fn channel(&mut self, rows: &[ArrayView2<'_, i16>], out: &mut ArrayViewMut2<'_, i16>) {
        let (Some(row), Function::Channel(kernel)) = (rows.first(), &self.function) else {
            return;
        };
        for ((c, x), o) in out.indexed_iter_mut() {
            *o = kernel.apply(c, row[[c, x]]);
        }
        self.reads[0] += row.len() as u64;
    }

    /// A float32 chain's output row from every operand's row `y`, or, for
    /// a mean, row `y` into the running means (the output row after the
    /// last); each element read once.
    fn chain(
        &mut self,
        rows: &[Vec<ArrayView2<'_, i16>>],
        y: usize,
        out: &mut ArrayViewMut2<'_, i16>,
    ) {
        let Function::Chain { kernel, plane } = &self.function else {
            return;
        };
        let operands = &rows[..kernel.operands()];
        let firsts: Vec<ArrayView2<'_, i16>> = operands
            .iter()
            .filter_map(|r| r.first().map(|v| v.view()))
            .collect();
        match plane {
            Some(order) => {
                let channels = out.nrows() / kernel.output_words();
                if self.means.is_empty() {
                    let count = self.input_hw[0] * self.input_hw[1];
                    self.means = vec![RunningMean::new(*order, count); channels];
                }
                let width = firsts.first().map_or(0, |r| r.ncols());
                for (c, mean) in self.means.iter_mut().enumerate() {
                    (0..width).for_each(|x| mean.add(kernel.value(&firsts, c, x)));
                }
                if self.step_output(y).is_some() {
                    for (c, mean) in self.means.iter().enumerate() {
                        kernel.store(mean.finish(), out, c, 0);
                    }
                }
            }
            None => kernel.row(&firsts, out),
        }
        for (operand, gathered) in operands.iter().enumerate() {
            self.reads[operand] += gathered.iter().map(|r| r.len() as u64).sum::<u64>();
        }
    }

    /// An integer global average, streamed: input row `y` into each
    /// channel's running sum (exact integers, so in any order), and after
    /// the last row each channel's sum through ONNX Runtime's requantisation
    /// (`QLinearGlobalAverage::finish`).
    fn global_average(
        &mut self,
        rows: &[ArrayView2<'_, i16>],
        y: usize,
        out: &mut ArrayViewMut2<'_, i16>,
    ) {
        let (Some(row), Function::QLinearGlobalAverage(kernel)) = (rows.first(), &self.function)
        else {
            return;
        };
        if self.sums.is_empty() {
            self.sums = vec![0; row.nrows()];
        }
        for (sum, channel) in self.sums.iter_mut().zip(row.outer_iter()) {
            *sum += channel.iter().map(|&v| i64::from(v)).sum::<i64>();
        }
        self.reads[0] += row.len() as u64;
        if self.step_output(y).is_some() {
            for (c, &sum) in self.sums.iter().enumerate() {
                out[[c, 0]] = kernel.finish(sum);
            }
        }
    }

    /// The operands' float32 sum, element by element.
    fn sum(&mut self, rows: &[Vec<ArrayView2<'_, i16>>], out: &mut ArrayViewMut2<'_, i16>) {
        let Function::Sum(kernel) = &self.function else {
            return;
        };
        let operands: Vec<&ArrayView2<'_, i16>> = rows.iter().filter_map(|r| r.first()).collect();
        for ((c, x), o) in out.indexed_iter_mut() {
            *o = kernel.apply(operands.iter().map(|r| r[[c, x]]));
        }
        for (operand, row) in operands.iter().enumerate() {
            self.reads[operand] += row.len() as u64;
        }
    }

    fn add(
        &mut self,
        kernel: AddKernel,
        rows: &[Vec<ArrayView2<'_, i16>>],
        out: &mut ArrayViewMut2<'_, i16>,
    ) {
        let (Some(a), Some(b)) = (rows[0].first(), rows[1].first()) else {
            return;
        };
        ndarray::Zip::from(out)
            .and(a)
            .and(b)
            .for_each(|o, &x, &y| *o = kernel.apply(x, y));
        let elements = a.len() as u64;
        self.reads[0] += elements;
        self.reads[1] += elements;
    }

    /// Every window of the output row over float32 words: each window's
    /// largest float32 element, written as two words.
    fn float_max(&mut self, rows: &[ArrayView2<'_, i16>], out: &mut ArrayViewMut2<'_, i16>) {
        let Some(w) = self.window() else { return };
        let width = self.input_hw[1];
        let channels = out.nrows() / 2;
        for ox in 0..self.output_width {
            let xs = Window::span(ox, w.stride[1], w.kernel[1], w.pad_left, width);
            for c in 0..channels {
                let m = rows
                    .iter()
                    .flat_map(|r| {
                        xs.clone()
                            .map(move |x| words_f32(r[[2 * c, x]], r[[2 * c + 1, x]]))
                    })
                    .fold(f32::MIN, f32::max);
                let [hi, lo] = f32_words(m);
                out[[2 * c, ox]] = hi;
                out[[2 * c + 1, ox]] = lo;
            }
            self.reads[0] += (rows.len() * xs.len() * 2 * channels) as u64;
        }
    }

    /// Input row `y`'s float32 elements into the running minimum and
    /// maximum; after the last row, the range's scale and zero point as a
    /// float32 `[2, 1]` output row.
    fn dynamic_range(
        &mut self,
        rows: &[ArrayView2<'_, i16>],
        y: usize,
        out: &mut ArrayViewMut2<'_, i16>,
    ) {
        for r in rows {
            let (c2, w) = r.dim();
            let values = (0..c2 / 2)
                .flat_map(|c| (0..w).map(move |x| words_f32(r[[2 * c, x]], r[[2 * c + 1, x]])));
            let (lo, hi) = range_with_zero(values);
            self.range = (self.range.0.min(lo), self.range.1.max(hi));
            self.reads[0] += r.len() as u64;
        }
        if self.step_output(y).is_none() {
            return;
        }
        let q = DynamicQuant::of_range(self.range.0, self.range.1);
        for (k, v) in [q.scale, q.zero_point as f32].into_iter().enumerate() {
            let [h, l] = f32_words(v);
            out[[2 * k, 0]] = h;
            out[[2 * k + 1, 0]] = l;
        }
    }

    /// Each float32 element of the row quantised (`DynamicQuant::quantize`).
    fn dynamic_quantize(&mut self, rows: &[ArrayView2<'_, i16>], out: &mut ArrayViewMut2<'_, i16>) {
        let (Some(row), Function::DynamicQuantize(Some(q))) = (rows.first(), &self.function) else {
            return;
        };
        for ((c, x), o) in out.indexed_iter_mut() {
            *o = q.quantize(words_f32(row[[2 * c, x]], row[[2 * c + 1, x]]));
        }
        self.reads[0] += row.len() as u64;
    }

    /// MLAS's float32 Softmax of every column of the row, over its channels
    /// (`ort_dynamic::mlas_softmax`).
    fn float_softmax(&mut self, rows: &[ArrayView2<'_, i16>], out: &mut ArrayViewMut2<'_, i16>) {
        let Some(row) = rows.first() else { return };
        let (c2, width) = row.dim();
        for x in 0..width {
            let column: Vec<f32> = (0..c2 / 2)
                .map(|c| words_f32(row[[2 * c, x]], row[[2 * c + 1, x]]))
                .collect();
            for (c, p) in mlas_softmax(&column).into_iter().enumerate() {
                let [h, l] = f32_words(p);
                out[[2 * c, x]] = h;
                out[[2 * c + 1, x]] = l;
            }
        }
        self.reads[0] += 3 * row.len() as u64;
        self.divisions += (c2 / 2 * width) as u64;
    }

    /// Every window of the output row, channel by channel, column by column.
    fn pool(&mut self, rows: &[ArrayView2<'_, i16>], out: &mut ArrayViewMut2<'_, i16>) {
        let Some(w) = self.window() else { return };
        let width = self.input_hw[1];
        let channels = out.nrows();
        for ox in 0..self.output_width {
            let xs = Window::span(ox, w.stride[1], w.kernel[1], w.pad_left, width);
            for c in 0..channels {
                let elements = rows
                    .iter()
                    .flat_map(|r| r.slice(s![c, xs.clone()]).into_iter().copied());
                out[[c, ox]] = self.reduce(elements, w);
            }
            self.reads[0] += (rows.len() * xs.len() * channels) as u64;
        }
    }

    /// One window's elements, in window order (rows, then columns), to its output.
    fn reduce(&self, elements: impl Iterator<Item = i16>, w: Window) -> i16 {
        match &self.function {
            Function::Max(_) => elements.fold(i16::MIN, i16::max),
            Function::Average { rounding, .. } => {
                let (sum, count) =
                    elements.fold((0i64, 0i64), |(s, n), v| (s + i64::from(v), n + 1));
                divide_rounded(sum, count.max(1), *rounding) as i16
            }
            Function::QLinearAverage {
                count_include_pad,
                kernel,
                ..
            } => {
                let (sum, count) = elements.fold((0.0f32, 0usize), |(s, n), v| {
                    (s + kernel.dequantize(v), n + 1)
                });
                let count = if *count_include_pad {
                    w.kernel[0] * w.kernel[1]
                } else {
                    count
                };
                kernel.finish(sum, count.max(1))
            }
            Function::QLinearGlobalAverage(_)
            | Function::Add(_)
            | Function::Softmax(_)
            | Function::ChannelShuffle { .. }
            | Function::Concat(_)
            | Function::Lrn(_)
            | Function::Sum(_)
            | Function::Lookup(_)
            | Function::Chain { .. }
            | Function::Channel(_)
            | Function::FloatMax(_)
            | Function::DynamicRange
            | Function::DynamicQuantize(_)
            | Function::FloatSoftmax
            | Function::FloatAverage(_)
            | Function::FloatChannel(_)
            | Function::FloatShuffle { .. }
            | Function::FloatLrn(_) => 0,
        }
    }
}

/// Operands `function` reads.
fn function_operands(function: &Function) -> usize {
    match function {
        Function::Add(_) => 2,
        Function::Concat(inputs) => inputs.len(),
        Function::Sum(kernel) => kernel.operands(),
        Function::Chain { kernel, .. } => kernel.operands(),
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use ndarray::{Array3, ArrayView2, s};

    use super::*;
    use crate::numerics::{IntType, TensorQuant};

    /// Operands as whole tensors, with some rows absent from the GLB.
    struct Glb {
        operands: Vec<Array3<i16>>,
        absent: Vec<(usize, usize)>,
    }

    impl ResidentRows for Glb {
        fn row(&self, operand: usize, y: usize) -> Option<ArrayView2<'_, i16>> {
            if self.absent.contains(&(operand, y)) {
                return None;
            }
            Some(self.operands[operand].slice(s![.., y, ..]))
        }
    }

    fn glb(operands: Vec<Array3<i16>>) -> Glb {
        Glb {
            operands,
            absent: Vec::new(),
        }
    }

    /// One channel, 4x4, values 0..16 row by row.
    fn ramp() -> Array3<i16> {
        Array3::from_shape_fn((1, 4, 4), |(_, y, x)| (4 * y + x) as i16)
    }

    fn run(
        unit: &mut GlbUnit,
        source: &Glb,
        channels: usize,
        rows: usize,
        width: usize,
    ) -> Array3<i16> {
        let mut out = Array3::<i16>::zeros((channels, rows, width));
        for oy in 0..rows {
            unit.output_row(source, oy, out.slice_mut(s![.., oy, ..]))
                .unwrap();
        }
        out
    }

    const TWO_BY_TWO: Window = Window {
        kernel: [2, 2],
        stride: [2, 2],
        pad_top: 0,
        pad_left: 0,
    };

    #[test]
    fn max_pool_takes_each_windows_largest_element_and_reads_each_once() {
        let mut unit = GlbUnit::new(Function::Max(TWO_BY_TWO), [4, 4], 2);
        let out = run(&mut unit, &glb(vec![ramp()]), 1, 2, 2);
        // Windows {0,1,4,5} {2,3,6,7} {8,9,12,13} {10,11,14,15}.
        assert_eq!(out.into_raw_vec_and_offset().0, vec![5, 7, 13, 15]);
        assert_eq!(unit.reads(), [16, 0]);
    }

    #[test]
    fn padded_average_divides_by_the_in_input_count_with_its_rounding() {
        // 3x3 window, stride 2, padding 1: output (0, 0) covers rows 0..2 and
        // columns 0..2 of the input: {0, 1, 4, 5}, sum 10, count 4 -> 2.5.
        let window = Window {
            kernel: [3, 3],
            stride: [2, 2],
            pad_top: 1,
            pad_left: 1,
        };
        let half_up = Function::Average {
            window,
            rounding: Rounding::HalfUp,
        };
        let mut unit = GlbUnit::new(half_up, [4, 4], 2);
        let out = run(&mut unit, &glb(vec![ramp()]), 1, 2, 2);
        // (0,1): rows 0..2, cols 1..4: {1,2,3,5,6,7} = 24 / 6 = 4.
        // (1,0): rows 1..4, cols 0..2: {4,5,8,9,12,13} = 51 / 6 = 8.5 -> 9.
        // (1,1): rows 1..4, cols 1..4: {5,6,7,9,10,11,13,14,15} = 90 / 9 = 10.
        assert_eq!(out.into_raw_vec_and_offset().0, vec![3, 4, 9, 10]);
        assert_eq!(unit.reads(), [4 + 6 + 6 + 9, 0]);

        let floor = Function::Average {
            window,
            rounding: Rounding::Floor,
        };
        let mut unit = GlbUnit::new(floor, [4, 4], 2);
        let out = run(&mut unit, &glb(vec![ramp()]), 1, 2, 2);
        assert_eq!(out.into_raw_vec_and_offset().0, vec![2, 4, 8, 10]);
    }

    #[test]
    fn a_global_average_reads_the_whole_plane_for_its_one_row() {
        let function = Function::Average {
            window: Window::plane(4, 4),
            rounding: Rounding::HalfEven,
        };
        let mut unit = GlbUnit::new(function, [4, 4], 1);
        assert_eq!(unit.input_rows(0), 0..4);
        let out = run(&mut unit, &glb(vec![ramp()]), 1, 1, 1);
        // 120 / 16 = 7.5, ties to even: 8.
        assert_eq!(out[[0, 0, 0]], 8);
        assert_eq!(unit.reads(), [16, 0]);
    }

    #[test]
    fn an_addition_requantises_each_pair_and_reads_both_operands() {
        let q = |scale| TensorQuant::Affine {
            dtype: IntType::Int8,
            scale,
            zero_point: 0,
        };
        // a * 0.5 + b * 0.25 at output scale 0.25: 2a + b, saturated to int8.
        let kernel = AddKernel::Float(FloatAdd::new(&q(0.5), &q(0.25), &q(0.25)));
        let mut unit = GlbUnit::new(Function::Add(kernel), [4, 4], 4);
        let b = Array3::from_elem((1, 4, 4), 100i16);
        let out = run(&mut unit, &glb(vec![ramp(), b]), 1, 4, 4);
        assert_eq!(out[[0, 0, 0]], 100);
        assert_eq!(out[[0, 0, 3]], 106);
        assert_eq!(out[[0, 3, 3]], 127);
        assert_eq!(unit.reads(), [16, 16]);
    }

    /// Six channels in two groups: `[2, 3]` transposed to `[3, 2]`, so the
    /// output channels are input channels 0, 3, 1, 4, 2, 5; each element is
    /// read once and copied unchanged.
    #[test]
    fn a_channel_shuffle_permutes_the_channels_and_reads_each_element_once() {
        let input = Array3::from_shape_fn((6, 2, 3), |(c, y, x)| (100 * c + 10 * y + x) as i16);
        let mut unit = GlbUnit::new(Function::ChannelShuffle { groups: 2 }, [2, 3], 3);
        let out = run(&mut unit, &glb(vec![input]), 6, 2, 3);
        let firsts: Vec<i16> = (0..6).map(|k| out[[k, 0, 0]]).collect();
        assert_eq!(firsts, [0, 300, 100, 400, 200, 500]);
        assert_eq!(out[[1, 1, 2]], 312);
        assert_eq!(out[[5, 1, 1]], 511);
        assert_eq!(unit.reads(), [36, 0]);
        assert_eq!((unit.lut_reads(), unit.divisions()), (0, 0));
    }

    #[test]
    fn a_row_the_glb_does_not_hold_is_a_schedule_error_naming_it() {
        let mut source = glb(vec![ramp()]);
        source.absent.push((0, 3));
        let mut unit = GlbUnit::new(Function::Max(TWO_BY_TWO), [4, 4], 2);
        let mut out = Array3::<i16>::zeros((1, 2, 2));
        assert_eq!(
            unit.output_row(&source, 0, out.slice_mut(s![.., 0, ..])),
            Ok(())
        );
        assert_eq!(
            unit.output_row(&source, 1, out.slice_mut(s![.., 1, ..])),
            Err(MissingRow { operand: 0, row: 3 })
        );
    }

    fn affine(dtype: IntType, scale: f32, zero_point: i32) -> TensorQuant {
        TensorQuant::Affine {
            dtype,
            scale,
            zero_point,
        }
    }

    fn softmax_unit(
        input: TensorQuant,
        output: TensorQuant,
        channels: usize,
        width: usize,
    ) -> GlbUnit {
        let kernel = QLinearSoftmax::new(&input, &output, channels);
        GlbUnit::new(Function::Softmax(Box::new(kernel)), [1, width], width)
    }

    #[test]
    fn softmax_of_equal_inputs_gives_each_one_over_the_channel_count() {
        // Output scale 1/256: floor(1 / ys) = 256, so each of 4 equal
        // entries gives 256 e / 4e = 64, whatever the entry e.
        let x = affine(IntType::Uint8, 0.1, 0);
        let mut unit = softmax_unit(x, affine(IntType::Uint8, 1.0 / 256.0, 0), 4, 1);
        let out = run(
            &mut unit,
            &glb(vec![Array3::from_elem((4, 1, 1), 77)]),
            4,
            1,
            1,
        );
        assert_eq!(out.into_raw_vec_and_offset().0, vec![64, 64, 64, 64]);
        // The quantiser's scale f32(1/255) enters as floor(254.99998) = 254:
        // two equal entries give 127 each (255 / 2 = 127.5 would round to 128).
        let mut unit = softmax_unit(x, affine(IntType::Uint8, 1.0 / 255.0, 0), 2, 1);
        let out = run(
            &mut unit,
            &glb(vec![Array3::from_elem((2, 1, 1), 3)]),
            2,
            1,
            1,
        );
        assert_eq!(out.into_raw_vec_and_offset().0, vec![127, 127]);
        // int8 with 7 channels and zero point -128: 254 / 7 = 36.29 -> 36 - 128.
        let s = affine(IntType::Int8, 0.1, 0);
        let mut unit = softmax_unit(s, affine(IntType::Int8, 1.0 / 255.0, -128), 7, 1);
        let out = run(
            &mut unit,
            &glb(vec![Array3::from_elem((7, 1, 1), -5)]),
            7,
            1,
            1,
        );
        assert_eq!(out.into_raw_vec_and_offset().0, vec![-92; 7]);
    }

    #[test]
    fn a_dominant_input_takes_everything_and_saturates() {
        // Scores 0.5 apart per step: 200 steps = e^-100 relative, nothing
        // next to the largest. int8 at 1/256, zero point -128: the largest
        // gets 256 - 128 = 128, saturated to 127; the others -128.
        let x = affine(IntType::Int8, 0.5, 0);
        let y = affine(IntType::Int8, 1.0 / 256.0, -128);
        let mut unit = softmax_unit(x, y, 3, 1);
        let scores = Array3::from_shape_vec((3, 1, 1), vec![-100, 100, -100]).unwrap();
        let out = run(&mut unit, &glb(vec![scores]), 3, 1, 1);
        assert_eq!(out.into_raw_vec_and_offset().0, vec![-128, 127, -128]);
        // uint8 at 1/255: 254, the most the quantiser's scale allows.
        let u = affine(IntType::Uint8, 0.5, 0);
        let mut unit = softmax_unit(u, affine(IntType::Uint8, 1.0 / 255.0, 0), 3, 1);
        let scores = Array3::from_shape_vec((3, 1, 1), vec![0, 0, 250]).unwrap();
        let out = run(&mut unit, &glb(vec![scores]), 3, 1, 1);
        assert_eq!(out.into_raw_vec_and_offset().0, vec![0, 0, 254]);
    }

    #[test]
    fn softmax_reduces_each_position_over_its_channels_reading_each_element_three_times() {
        // Two positions of two channels: (5, 5) and (9, 9 - 10) with input
        // scale ln(3) / 10 per step: entries e and e/3 -> 3/4 and 1/4 of 256.
        let x = affine(IntType::Uint8, (3.0f32).ln() / 10.0, 0);
        let mut unit = softmax_unit(x, affine(IntType::Uint8, 1.0 / 256.0, 0), 2, 2);
        let t = Array3::from_shape_vec((2, 1, 2), vec![5, 9, 5, 19]).unwrap();
        let out = run(&mut unit, &glb(vec![t]), 2, 1, 2);
        // Channel 0: (128, 64); channel 1: (128, 192).
        assert_eq!(out.into_raw_vec_and_offset().0, vec![128, 64, 128, 192]);
        assert_eq!(unit.reads(), [12, 0]);
        assert_eq!(unit.lut_reads(), 8);
        assert_eq!(unit.divisions(), 4);
    }

    #[test]
    fn a_concat_copies_inputs_of_the_output_quantisation_and_requantises_the_others() {
        let out = affine(IntType::Uint8, 0.25, 10);
        // Operand 1 at scale 0.5, zero point 0: 0.5 x / 0.25 + 10 = 2x + 10.
        let inputs = vec![
            ConcatInput::new(&out, &out),
            ConcatInput::new(&affine(IntType::Uint8, 0.5, 0), &out),
        ];
        let mut unit = GlbUnit::new(Function::Concat(inputs), [1, 2], 2);
        let a = Array3::from_shape_vec((1, 1, 2), vec![7, 250]).unwrap();
        let b = Array3::from_shape_vec((2, 1, 2), vec![3, 200, 0, 1]).unwrap();
        let got = run(&mut unit, &glb(vec![a, b]), 3, 1, 2);
        // Channel 0 copied; channels 1 and 2 through the table (410 saturates).
        assert_eq!(
            got.into_raw_vec_and_offset().0,
            vec![7, 250, 16, 255, 10, 12]
        );
        assert_eq!(unit.reads(), [2, 4]);
        assert_eq!(unit.lut_reads(), 4);
    }

    #[test]
    fn a_float_chain_mean_reads_every_operand_element_of_the_plane_once() {
        // Two 1-channel 2x3 uint8 operands of scale 1: sums 2, 4, 6, 8, 10,
        // 12, mean 7 in either order, quantised at scale 1: 7.
        let q = affine(IntType::Uint8, 1.0, 0);
        let float32 = affine(IntType::Int16, 1.0, 0);
        let kernel = FloatChain::new(&[q, q], true, &q, &float32);
        let function = Function::Chain {
            kernel,
            plane: Some(PlaneOrder::MlasGlobal),
        };
        let mut unit = GlbUnit::new(function, [2, 3], 1);
        let x = Array3::from_shape_vec((1, 2, 3), vec![1, 2, 3, 4, 5, 6]).unwrap();
        // Streamed: one step per input row, the output row after the last.
        assert_eq!((unit.steps(1), unit.input_rows(1)), (2, 1..2));
        let source = glb(vec![x.clone(), x]);
        let mut out = Array3::<i16>::zeros((1, 1, 1));
        for step in 0..2 {
            unit.output_row(&source, step, out.slice_mut(s![.., 0, ..]))
                .unwrap();
            assert_eq!(unit.reads(), [3 * (step as u64 + 1); 2]);
        }
        assert_eq!(out.into_raw_vec_and_offset().0, vec![7]);
    }

    #[test]
    fn a_range_streams_one_input_row_per_step_and_writes_its_row_after_the_last() {
        // One float32 channel of 3x2 (two words each): rows (1, 2),
        // (-1, 0.5), (3, 0.25): range [-1, 3], scale 4 / 255, zero point
        // round(1 / (4 / 255)) = round(63.75) = 64.
        let values = [1.0f32, 2.0, -1.0, 0.5, 3.0, 0.25];
        let x = Array3::from_shape_fn((2, 3, 2), |(k, y, x)| f32_words(values[2 * y + x])[k]);
        let mut unit = GlbUnit::new(Function::DynamicRange, [3, 2], 1);
        assert_eq!(unit.steps(1), 3);
        assert_eq!(unit.input_rows(1), 1..2);
        let source = glb(vec![x]);
        let mut out = Array3::<i16>::zeros((4, 1, 1));
        for step in 0..3 {
            assert_eq!(unit.step_output(step), (step == 2).then_some(0));
            unit.output_row(&source, step, out.slice_mut(s![.., 0, ..]))
                .unwrap();
            if step < 2 {
                assert!(out.iter().all(|&w| w == 0), "written at step {step}");
            }
            // Each step reads its row's 2 x 2 words.
            assert_eq!(unit.reads(), [4 * (step as u64 + 1), 0]);
        }
        let got = |k: usize| words_f32(out[[2 * k, 0, 0]], out[[2 * k + 1, 0, 0]]);
        assert_eq!((got(0), got(1)), (4.0f32 / 255.0, 64.0));
    }

    #[test]
    fn an_int8_concat_table_is_indexed_by_the_stored_byte_and_rounds_half_to_even() {
        let out = affine(IntType::Int8, 2.0, 0);
        let table = ConcatInput::new(&affine(IntType::Int8, 1.0, 0), &out);
        // -1 / 2 = -0.5 -> -0; -3 / 2 = -1.5 -> -2; 127 / 2 = 63.5 -> 64.
        assert_eq!(
            [table.apply(-1), table.apply(-3), table.apply(127)],
            [0, -2, 64]
        );
        assert_eq!(table.apply(-128), -64);
    }

    #[test]
    fn lrn_normalises_each_position_over_its_channel_window_reading_each_element_once() {
        // size 3, alpha 3 (alpha / size = 1), beta 1, bias 1; channels (1, 2):
        // both windows hold 1 + 4, scale 6: 1 / 6 and 2 / 6 at output scale
        // 1/8: 1.33 -> 1 and 2.67 -> 3. A second position of zeros stays 0.
        let q = affine(IntType::Uint8, 1.0, 0);
        let kernel = Lrn::new((3, 3.0, 1.0, 1.0), &q, &affine(IntType::Uint8, 0.125, 0));
        let mut unit = GlbUnit::new(Function::Lrn(kernel), [1, 2], 2);
        let x = Array3::from_shape_vec((2, 1, 2), vec![1, 0, 2, 0]).unwrap();
        let got = run(&mut unit, &glb(vec![x]), 2, 1, 2);
        assert_eq!(got.into_raw_vec_and_offset().0, vec![1, 0, 3, 0]);
        assert_eq!(unit.reads(), [4, 0]);
        assert_eq!(unit.powers(), 4);
    }

    #[test]
    fn a_sum_of_three_adds_in_float32_and_quantises_once() {
        let scales = [1.0, 0.5, 0.25].map(|s| affine(IntType::Int8, s, 0));
        let kernel = FloatSum::new(&scales, &affine(IntType::Int8, 1.0, 0));
        let mut unit = GlbUnit::new(Function::Sum(kernel), [1, 1], 1);
        assert_eq!(unit.operands(), 3);
        let one = |v: i16| Array3::from_elem((1, 1, 1), v);
        // 10 + 2 + 0.5 = 12.5 -> 12 (half to even), one rounding.
        let got = run(&mut unit, &glb(vec![one(10), one(4), one(2)]), 1, 1, 1);
        assert_eq!(got[[0, 0, 0]], 12);
        assert_eq!(unit.reads(), [1, 1, 1]);
    }

    #[test]
    fn leaky_relu_and_sigmoid_are_one_table_read_per_element() {
        use crate::workload::ir::Lookup;
        let x = affine(IntType::Int8, 1.0, 0);
        // alpha 0.1 at output scale 0.5: -5 -> -1, -15 -> -3, 3 -> 6, 100 -> 200 -> 127.
        let leaky = Lookup::LeakyRelu { alpha: 0.1 }.table(&x, &affine(IntType::Int8, 0.5, 0));
        let mut unit = GlbUnit::new(Function::Lookup(leaky), [1, 4], 4);
        let row = Array3::from_shape_vec((1, 1, 4), vec![-5, -15, 3, 100]).unwrap();
        let got = run(&mut unit, &glb(vec![row]), 1, 1, 4);
        assert_eq!(got.into_raw_vec_and_offset().0, vec![-1, -3, 6, 127]);
        assert_eq!((unit.reads(), unit.lut_reads()), (vec![4, 0], 4));
        // Sigmoid at output scale 1/256, zero point -128: 0 -> 0.5 -> 0;
        // 100 -> 1.0 -> 128 saturates to 127; -100 -> 0 -> -128.
        let sigmoid = Lookup::Sigmoid.table(&x, &affine(IntType::Int8, 1.0 / 256.0, -128));
        assert_eq!([sigmoid[0], sigmoid[100], sigmoid[156]], [0, 127, -128]);
        assert_eq!(crate::numerics::ort::logistic(0.0), 0.5);
    }
}
