//! Convolution and fully connected sums, and zero-operand counts.
//!
//! Operands are centred first (`x - zero_point`, `w - weight_zero_point`),
//! which fits `i16` for every supported type, and padding becomes a centred
//! zero. Sums accumulate in `i32` when a bound computed from the actual
//! operands proves no partial sum can overflow it; otherwise in `f64` when the
//! bound is below 2^53 (every product and partial sum is then an integer that
//! `f64` represents exactly, so each addition is exact, and `f64` vectorises
//! where `i64` multiplication does not: 16-bit networks run several times
//! faster); and in `i64` beyond that. The result is the exact sum either way.

use std::mem::MaybeUninit;
use std::ops::{AddAssign, Mul};

use ndarray::{Array2, Array3};

use crate::numerics::kernels::{
    GemvInput, PairPanel, PairWeights, PlaneShape, axpy, dot, taps_rows_uninit,
};

use crate::workload::ir::{Activations, Conv2d, FullyConnected, Layer, Op, Padding};

/// An accumulator type: `i32` (fast), `f64` (exact below 2^53) or `i64`.
trait Acc: Copy + Default + Send + Sync + AddAssign + Mul<Output = Self> + From<i16> {
    /// The (integer) value held; exact whenever the type was chosen by bound.
    fn to_i64(self) -> i64;
}

/// MACs below which a layer runs on one thread: splitting smaller layers
/// over the cores costs more than it saves.
const PARALLEL_MIN_MACS: usize = 1 << 18;
impl Acc for i32 {
    fn to_i64(self) -> i64 {
        i64::from(self)
    }
}
impl Acc for i64 {
    fn to_i64(self) -> i64 {
        self
    }
}
impl Acc for f64 {
    fn to_i64(self) -> i64 {
        self as i64
    }
}

/// Which accumulator a bound allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AccKind {
    I32,
    F64,
    I64,
}

/// The input with `zero` subtracted and `padding` added around each plane.
pub(crate) fn centred_padded(input: &Activations, zero: i32, padding: Padding) -> Array3<i16> {
    let (c, h, w) = input.dim();
    let (ph, pw) = (
        h + padding.top + padding.bottom,
        w + padding.left + padding.right,
    );
    let standard = input.as_standard_layout();
    let values = standard.as_slice().unwrap_or(&[]);
    // Written once, in order (no zero fill first): `v - zero` wraps to the
    // same i16 in 16-bit lanes as through i32.
    let zero = zero as i16;
    let mut out = Vec::with_capacity(c * ph * pw);
    let pad_rows = |out: &mut Vec<i16>, rows: usize| out.resize(out.len() + rows * pw, 0);
    for ci in 0..c {
        pad_rows(&mut out, padding.top);
        for y in 0..h {
            let row = values
                .get((ci * h + y) * w..(ci * h + y + 1) * w)
                .unwrap_or(&[]);
            out.resize(out.len() + padding.left, 0);
            if zero == 0 {
                out.extend_from_slice(row);
            } else {
                out.extend(row.iter().map(|&v| v.wrapping_sub(zero)));
            }
            out.resize(out.len() + padding.right + w - row.len(), 0);
        }
        pad_rows(&mut out, padding.bottom);
    }
    Array3::from_shape_vec((c, ph, pw), out).unwrap_or_else(|_| Array3::zeros((c, ph, pw)))
}

fn max_abs(values: impl Iterator<Item = i16>) -> i64 {
    values.map(|v| i64::from(v).abs()).max().unwrap_or(0)
}

/// The smallest and largest of `values` and 0, and the OR of their bits,
/// in one pass over `i16` lanes (what [`max_abs`], [`range_with_zero`] and
/// [`common_shift`] compute one at a time over `i64`, several times slower).
fn scan(values: &[i16]) -> (i16, i16, u16) {
    let (mut lo, mut hi, mut bits) = (0i16, 0i16, 0u16);
    for &v in values {
        lo = lo.min(v);
        hi = hi.max(v);
        bits |= v as u16;
    }
    (lo, hi, bits)
}

/// The smallest and largest of `values` and 0 (a panel's padding).
fn range_with_zero(values: impl Iterator<Item = i16>) -> (i64, i64) {
    values.fold((0, 0), |(lo, hi), v| {
        (lo.min(i64::from(v)), hi.max(i64::from(v)))
    })
}

/// [`range_with_zero`] of `x` minus `zero` (wrapping to `i16`, as the
/// kernels centre it), over the slice where `x` is contiguous (`i16` lanes,
/// vectorised; ndarray's element iterator costs a few nanoseconds per
/// element, 7 % of the 64-input FC bench row).
fn centred_range(x: &Activations, zero: i32) -> (i64, i64) {
    let centre = |v: i16| (i32::from(v) - zero) as i16;
    let fold = |(lo, hi): (i16, i16), v: i16| (lo.min(v), hi.max(v));
    let (lo, hi) = match x.as_slice() {
        Some(values) => values.iter().map(|&v| centre(v)).fold((0, 0), fold),
        None => x.iter().map(|&v| centre(v)).fold((0, 0), fold),
    };
    (i64::from(lo), i64::from(hi))
}

/// The union of ranges from [`range_with_zero`].
fn union_range(ranges: impl Iterator<Item = (i64, i64)>) -> (i64, i64) {
    ranges.fold((0, 0), |(lo, hi), (l, h)| (lo.min(l), hi.max(h)))
}

/// The narrowest exact accumulator for `max|x| * sum|w|` (bounding every
/// partial sum) over all output channels; the bias is added in `i64`.
fn accumulator_kind(max_x: i64, weight_rows: impl Iterator<Item = (i64, i64)>) -> AccKind {
    let bound = weight_rows
        .into_iter()
        .map(|(sum_abs_w, bias)| max_x.saturating_mul(sum_abs_w).saturating_add(bias.abs()))
        .max()
        .unwrap_or(0);
    if bound <= i64::from(i32::MAX) {
        AccKind::I32
    } else if bound < 1i64 << 53 {
        AccKind::F64
    } else {
        AccKind::I64
    }
}

/// Exact sums of a convolution, bias included: `[out_channels, out_h, out_w]`.
pub fn conv_accumulate(conv: &Conv2d, input_zero: i32, input: &Activations) -> Array3<i64> {
    let mut out = conv_accumulate_batch(conv, input_zero, &[input]);
    out.pop().unwrap_or_else(|| Array3::zeros((0, 0, 0)))
}

/// [`conv_accumulate`] for each of `inputs`, in order: one matrix product
/// per group over every input at once (the samples' output positions side
/// by side as its columns), so the weights are packed and bounded once per
/// batch and small feature maps fill whole tiles. The sums are the exact
/// ones, as for one input.
pub fn conv_accumulate_batch(
    conv: &Conv2d,
    input_zero: i32,
    inputs: &[&Activations],
) -> Vec<Array3<i64>> {
    let sink = Sink {
        channel: &|_, sums, out| out.copy_from_slice(sums),
        sums: Some(same),
    };
    conv_batch_with(conv, input_zero, inputs, &sink)
}

fn same(sums: &mut [MaybeUninit<i64>]) -> &mut [MaybeUninit<i64>] {
    sums
}

/// The layer's outputs for each of `inputs`, in order: [`conv_accumulate_batch`]'s
/// exact sums through the layer's output stage, channel by channel (what
/// `requantize` does to [`conv_accumulate`]'s sums). On the matrix-product
/// path each group of samples is requantised as soon as its product is
/// done, by the thread that computed it, so no batch of `i64` sums is kept.
pub fn conv_output_batch(
    conv: &Conv2d,
    input_zero: i32,
    inputs: &[&Activations],
) -> Vec<Activations> {
    let stage = &conv.epilogue.output_stage;
    let sink = Sink {
        channel: &|oc, sums, out| stage.channel(oc).apply_slice(sums, out),
        sums: None,
    };
    conv_batch_with(conv, input_zero, inputs, &sink)
}

/// Writes one output channel of one sample from its exact sums (bias
/// included): `(channel, sums, out)`, both slices one plane long.
type ChannelSink<'a, T> = dyn Fn(usize, &[i64], &mut [T]) + Sync + 'a;

/// Where a batched convolution's sums go: `channel` writes one output
/// channel from its sums; `sums`, when the outputs are the sums themselves
/// (`T` is `i64`), views an output plane as the sums, so a kernel can
/// write them in place instead of into a buffer `channel` then copies.
struct Sink<'a, T> {
    channel: &'a ChannelSink<'a, T>,
    sums: Option<AsSums<T>>,
}

/// An output plane, not yet written, viewed as the `i64` sums it will hold
/// (the identity where `T` is `i64`).
type AsSums<T> = fn(&mut [MaybeUninit<T>]) -> &mut [MaybeUninit<i64>];

/// The batched convolution, each channel's exact sums handed to `sink`.
fn conv_batch_with<T: Copy + Default + Send>(
    conv: &Conv2d,
    input_zero: i32,
    inputs: &[&Activations],
    sink: &Sink<'_, T>,
) -> Vec<Array3<T>> {
    let wz = conv.weight_quant.zero();
    // Centred weights: the stored ones when the zero point is 0 (no copy).
    let centred;
    let w = if wz == 0 {
        &conv.weights
    } else {
        centred = conv.weights.mapv(|v| (i32::from(v) - wz) as i16);
        &centred
    };
    if conv.stride == [1, 1] && w.dim().0 / conv.groups < GEMM_MIN_CHANNELS {
        // Depthwise and other small groups: channel by channel, each
        // channel's planes centred and padded where they are read.
        return inputs
            .iter()
            .map(|x| {
                let x = x.as_standard_layout();
                let src = TapSource::Raw {
                    values: x.as_slice().unwrap_or(&[]),
                    zero: input_zero as i16,
                    dim: x.dim(),
                    padding: conv.padding,
                };
                taps_through_sink(conv, &src, w, sink)
            })
            .collect();
    }
    let xs = centred_batch(inputs, input_zero, conv.padding);
    let (lo, hi) = union_range(xs.iter().map(|(_, (r, _))| *r));
    let x_shift = xs.iter().map(|(_, (_, s))| *s).min().unwrap_or(0);
    let max_abs_x: Vec<i64> = xs.iter().map(|(_, ((l, h), _))| (-l).max(*h)).collect();
    let mut xs: Vec<Array3<i16>> = xs.into_iter().map(|(x, _)| x).collect();
    let (out_c, icg, kh, kw) = w.dim();
    if out_c / conv.groups >= GEMM_MIN_CHANNELS {
        let w = w.as_standard_layout();
        let w = w.as_slice().unwrap_or(&[]);
        // Operands that are all multiples of a power of two (PELUSO's 8-bit
        // modes: high bytes, low bytes zero) are divided by it: the same
        // products scaled by 2^shift, with blocks up to 2^shift times longer.
        let w_shift = common_shift(w.iter().copied());
        let scaled;
        let weights = if w_shift > 0 {
            scaled = w.iter().map(|&v| v >> w_shift).collect::<Vec<i16>>();
            PairWeights::new(&scaled, icg * kh * kw)
        } else {
            PairWeights::new(w, icg * kh * kw)
        };
        if let Some(block) = weights.block_pairs_in(lo >> x_shift, hi >> x_shift) {
            shift_batch(&mut xs, x_shift);
            let product = Product {
                weights: &weights,
                block,
                shift: x_shift + w_shift,
            };
            return conv_gemm(conv, &xs, &product, sink.channel);
        }
    }
    if conv.stride == [1, 1] {
        return xs
            .iter()
            .zip(max_abs_x)
            .map(|(x, max_abs_x)| {
                let x = x.as_standard_layout();
                let src = TapSource::Padded {
                    values: x.as_slice().unwrap_or(&[]),
                    dim: x.dim(),
                    max_abs_x,
                };
                taps_through_sink(conv, &src, w, sink)
            })
            .collect();
    }
    let sums = |x: &Array3<i16>| {
        let kind = accumulator_kind(
            max_abs(x.iter().copied()),
            w.outer_iter()
                .zip(&conv.epilogue.bias)
                .map(|(row, &b)| (row.iter().map(|&v| i64::from(v).abs()).sum(), b)),
        );
        match kind {
            AccKind::I32 => conv_sums::<i32>(conv, x, w),
            AccKind::F64 => conv_sums::<f64>(conv, x, w),
            AccKind::I64 => conv_sums::<i64>(conv, x, w),
        }
    };
    xs.iter()
        .map(|x| through_sink(&sums(x), sink.channel))
        .collect()
}

/// `acc` (`[channels, h, w]`) through `sink`, channel by channel.
fn through_sink<T: Copy + Default>(acc: &Array3<i64>, sink: &ChannelSink<'_, T>) -> Array3<T> {
    let (c, h, w) = acc.dim();
    let plane = (h * w).max(1);
    let acc = acc.as_standard_layout();
    let sums = acc.as_slice().unwrap_or(&[]);
    let mut out = vec![T::default(); sums.len()];
    for (ch, (src, dst)) in sums.chunks(plane).zip(out.chunks_mut(plane)).enumerate() {
        sink(ch, src, dst);
    }
    Array3::from_shape_vec((c, h, w), out).unwrap_or_else(|_| Array3::default((c, h, w)))
}

/// A centred input's range ([`range_with_zero`]) and [`common_shift`].
type InputBounds = ((i64, i64), u32);

/// Each input centred and padded ([`centred_padded`]) with its range
/// ([`range_with_zero`]) and [`common_shift`], on several threads for a
/// large batch.
fn centred_batch(
    inputs: &[&Activations],
    zero: i32,
    padding: Padding,
) -> Vec<(Array3<i16>, InputBounds)> {
    let one = |x: &&Activations| {
        let x = centred_padded(x, zero, padding);
        let (lo, hi, bits) = match x.as_slice() {
            Some(values) => scan(values),
            None => {
                let (lo, hi) = range_with_zero(x.iter().copied());
                let bits = x.iter().fold(0u16, |acc, &v| acc | v as u16);
                (lo as i16, hi as i16, bits)
            }
        };
        let shift = bits.trailing_zeros().min(15);
        (x, ((i64::from(lo), i64::from(hi)), shift))
    };
    let elements: usize = inputs.iter().map(|x| x.len()).sum();
    if inputs.len() > 1 && elements >= PARALLEL_FILL_ELEMENTS {
        use rayon::prelude::*;
        inputs.par_iter().map(one).collect()
    } else {
        inputs.iter().map(one).collect()
    }
}

/// The largest `s` (at most 15) such that every value is a multiple of
/// `2^s`: the trailing zeros common to all of them.
fn common_shift(values: impl Iterator<Item = i16>) -> u32 {
    values
        .fold(0u16, |acc, v| acc | v as u16)
        .trailing_zeros()
        .min(15)
}

/// Every input divided by `2^shift` (exactly: each is a multiple of it).
fn shift_batch(xs: &mut [Array3<i16>], shift: u32) {
    if shift == 0 {
        return;
    }
    let one = |x: &mut Array3<i16>| x.mapv_inplace(|v| v >> shift);
    let elements: usize = xs.iter().map(|x| x.len()).sum();
    if xs.len() > 1 && elements >= PARALLEL_FILL_ELEMENTS {
        use rayon::prelude::*;
        xs.par_iter_mut().for_each(one);
    } else {
        xs.iter_mut().for_each(one);
    }
}

/// Input elements from which a batch is centred on several threads.
const PARALLEL_FILL_ELEMENTS: usize = 1 << 16;

/// Output channels per group from which a convolution runs as a matrix
/// product (`gemm_pairs`): below it (depthwise), building the operand panel
/// costs as much as the MACs and the per-tap loop is faster.
const GEMM_MIN_CHANNELS: usize = 4;

/// Panel entries (`k x columns`) a batch's convolution builds at once: the
/// samples of a batch go through the matrix product in groups whose panel
/// stays about this size (512 KiB), so it is still in cache when the
/// product reads it; always at least one sample.
const PANEL_ELEMENTS: usize = 1 << 18;

/// Geometry of a convolution on padded inputs of `ph x pw`.
struct ConvShape {
    ph: usize,
    pw: usize,
    oh: usize,
    ow: usize,
    /// Rows of the im2col panel: `icg * kh * kw`.
    k: usize,
}

impl ConvShape {
    fn new(conv: &Conv2d, ph: usize, pw: usize) -> Self {
        let (_, icg, kh, kw) = conv.weights.dim();
        let [sy, sx] = conv.stride;
        ConvShape {
            ph,
            pw,
            oh: (ph - kh) / sy + 1,
            ow: (pw - kw) / sx + 1,
            k: icg * kh * kw,
        }
    }

    fn positions(&self) -> usize {
        self.oh * self.ow
    }
}

/// The matrix product of a convolution: its packed (possibly scaled)
/// weights, the `i32` block they allow against the (possibly scaled)
/// inputs, and the power of two the product's sums are to be multiplied by
/// (the two scalings together) to give the layer's sums.
struct Product<'a> {
    weights: &'a PairWeights,
    block: usize,
    shift: u32,
}

/// The convolution as one matrix product per group: weights `[ocg, k]`
/// times the im2col panel `[k, samples x positions]`, summed exactly in
/// `i32` blocks of `block` pairs (from [`PairWeights::block_pairs`]) and
/// `i64` across blocks, scaled back by `2^shift`, each channel of each
/// sample handed to `sink`. Groups of samples run on several threads; each
/// sample's sums are the same whichever group or thread computes them.
fn conv_gemm<T: Copy + Default + Send>(
    conv: &Conv2d,
    xs: &[Array3<i16>],
    product: &Product<'_>,
    sink: &ChannelSink<'_, T>,
) -> Vec<Array3<T>> {
    let Some(first) = xs.first() else {
        return Vec::new();
    };
    let (_, ph, pw) = first.dim();
    let shape = ConvShape::new(conv, ph, pw);
    let out_c = conv.weights.dim().0;
    let per_panel = (PANEL_ELEMENTS / (shape.k * shape.positions()).max(1)).clamp(1, xs.len());
    let groups: Vec<&[Array3<i16>]> = xs.chunks(per_panel).collect();
    let macs = out_c * shape.k * shape.positions() * xs.len();
    let parallel = macs >= PARALLEL_MIN_MACS;
    let run = |scratch: &mut GemmScratch, g: &&[Array3<i16>], split_rows: bool| {
        conv_gemm_samples(conv, &shape, g, product, split_rows, scratch, sink)
    };
    let flats: Vec<Vec<Array3<T>>> = if groups.len() > 1 && parallel {
        use rayon::prelude::*;
        groups
            .par_iter()
            .map_init(GemmScratch::default, |s, g| run(s, g, false))
            .collect()
    } else {
        // One panel: its rows of weights split over the threads instead.
        let mut scratch = GemmScratch::default();
        groups
            .iter()
            .map(|g| run(&mut scratch, g, parallel))
            .collect()
    };
    flats.into_iter().flatten().collect()
}

/// Buffers one thread reuses from one group of samples to the next: the
/// panel and the sums (no fresh pages, no page faults, per group).
#[derive(Default)]
struct GemmScratch {
    panel: PairPanel,
    sums: Vec<i64>,
}

/// [`conv_gemm`] on one group of samples: one panel of all their positions;
/// `split_rows` runs groups of weight rows on several threads.
fn conv_gemm_samples<T: Copy + Default + Send>(
    conv: &Conv2d,
    shape: &ConvShape,
    xs: &[Array3<i16>],
    product: &Product<'_>,
    split_rows: bool,
    scratch: &mut GemmScratch,
    sink: &ChannelSink<'_, T>,
) -> Vec<Array3<T>> {
    let (out_c, icg, kh, kw) = conv.weights.dim();
    let ocg = out_c / conv.groups;
    let (k, positions) = (shape.k, shape.positions());
    let (weights, block, shift) = (product.weights, product.block, product.shift);
    let slices: Vec<&[i16]> = xs.iter().map(|x| x.as_slice().unwrap_or(&[])).collect();
    let mut outs = vec![vec![T::default(); out_c * positions]; xs.len()];
    for g in 0..conv.groups {
        let panel = &mut scratch.panel;
        let taps = kh * kw;
        let row = |t: usize| (t < k).then(|| (g * icg + t / taps, t % taps));
        panel.refill(k, xs.len() * positions, |q, dst| {
            im2col_pair(conv, shape, &slices, row(2 * q), row(2 * q + 1), dst)
        });
        let stride = panel.stride();
        let sums = &mut scratch.sums;
        sums.clear();
        sums.resize(ocg * stride, 0);
        if split_rows && ocg > GEMM_MIN_CHANNELS {
            use rayon::prelude::*;
            sums.par_chunks_mut(GEMM_MIN_CHANNELS * stride)
                .enumerate()
                .for_each(|(i, o)| {
                    let r0 = g * ocg + GEMM_MIN_CHANNELS * i;
                    weights.gemm(r0..r0 + o.len() / stride, panel, block, o);
                });
        } else {
            weights.gemm(g * ocg..(g + 1) * ocg, panel, block, sums);
        }
        for (ocl, row) in sums.chunks_exact_mut(stride).enumerate() {
            let oc = g * ocg + ocl;
            let bias = conv.epilogue.bias[oc];
            for (out, sample) in outs.iter_mut().zip(row.chunks_exact_mut(positions)) {
                sample.iter_mut().for_each(|s| *s = (*s << shift) + bias);
                sink(oc, sample, &mut out[oc * positions..(oc + 1) * positions]);
            }
        }
    }
    let (oh, ow) = (shape.oh, shape.ow);
    outs.into_iter()
        .map(|o| {
            Array3::from_shape_vec((out_c, oh, ow), o)
                .unwrap_or_else(|_| Array3::default((out_c, oh, ow)))
        })
        .collect()
}

/// Rows `a` and `b` of the im2col panel, interleaved as a [`PairPanel`]
/// pair (`dst[2j]` from `a`, `dst[2j + 1]` from `b`, `None` a zero row). A
/// row `(c, tap)` (input channel `c`, kernel tap `tap = ky * kw + kx`)
/// holds the inputs that tap reads at every output position of every
/// sample, samples side by side. Written straight into the panel: no row
/// buffers, no zero fill.
fn im2col_pair(
    conv: &Conv2d,
    shape: &ConvShape,
    slices: &[&[i16]],
    a: Option<(usize, usize)>,
    b: Option<(usize, usize)>,
    dst: &mut [i16],
) {
    let kw = conv.weights.dim().3;
    let [sy, sx] = conv.stride;
    let (positions, plane) = (shape.positions(), shape.ph * shape.pw);
    let (ow, pw) = (shape.ow, shape.pw);
    // The first input of output row `oy` in a sample's plane, per row.
    let origin = |row: Option<(usize, usize)>, oy: usize| {
        row.map(|(c, tap)| c * plane + (oy * sy + tap / kw) * pw + tap % kw)
    };
    for (d, x) in dst.chunks_exact_mut(2 * positions).zip(slices) {
        for (oy, d) in d.chunks_exact_mut(2 * ow).enumerate() {
            let (ra, rb) = (origin(a, oy), origin(b, oy));
            let span = (ow - 1) * sx + 1;
            let src = |r: Option<usize>| r.and_then(|s| x.get(s..s + span));
            match (src(ra), src(rb)) {
                (Some(xa), Some(xb)) if sx == 1 => interleave(d, xa, xb),
                (Some(xa), None) if sx == 1 => interleave_zero(d, xa),
                (xa, xb) => {
                    for (ox, p) in d.chunks_exact_mut(2).enumerate() {
                        p[0] = xa.map_or(0, |v| v[ox * sx]);
                        p[1] = xb.map_or(0, |v| v[ox * sx]);
                    }
                }
            }
        }
    }
}

/// `d[2j] = a[j]`, `d[2j + 1] = b[j]`, 8 at a time (fixed-size blocks the
/// compiler turns into vector shuffles even for rows of 8: a loop over the
/// whole row would be vectorised for 16 or more only).
fn interleave(d: &mut [i16], a: &[i16], b: &[i16]) {
    let mut blocks = d.chunks_exact_mut(16);
    let (mut a8, mut b8) = (a.chunks_exact(8), b.chunks_exact(8));
    for ((p, x0), x1) in (&mut blocks).zip(&mut a8).zip(&mut b8) {
        for j in 0..8 {
            p[2 * j] = x0[j];
            p[2 * j + 1] = x1[j];
        }
    }
    let rest = blocks.into_remainder();
    for ((p, &x0), &x1) in rest
        .chunks_exact_mut(2)
        .zip(a8.remainder())
        .zip(b8.remainder())
    {
        p[0] = x0;
        p[1] = x1;
    }
}

/// `d[2j] = a[j]`, `d[2j + 1] = 0`.
fn interleave_zero(d: &mut [i16], a: &[i16]) {
    let zeros = [0i16; 8];
    let mut blocks = d.chunks_exact_mut(16);
    let mut a8 = a.chunks_exact(8);
    for (p, x0) in (&mut blocks).zip(&mut a8) {
        for j in 0..8 {
            p[2 * j] = x0[j];
            p[2 * j + 1] = zeros[j];
        }
    }
    for (p, &x0) in blocks
        .into_remainder()
        .chunks_exact_mut(2)
        .zip(a8.remainder())
    {
        p[0] = x0;
        p[1] = 0;
    }
}

/// Where a channel-by-channel convolution ([`taps_through_sink`]) reads
/// its input planes.
enum TapSource<'a> {
    /// Centred and padded already (`[c, ph, pw]` in standard layout), with
    /// a bound on every `|x|`.
    Padded {
        values: &'a [i16],
        dim: (usize, usize, usize),
        max_abs_x: i64,
    },
    /// The input as given (`[c, h, w]`, standard layout) and its zero
    /// point: an output channel's planes are centred and padded into a
    /// per-thread buffer just before it reads them (they stay in L1; no
    /// padded copy of the whole input is made), the bound taken from them.
    Raw {
        values: &'a [i16],
        zero: i16,
        dim: (usize, usize, usize),
        padding: Padding,
    },
}

impl TapSource<'_> {
    /// The padded plane's height and width.
    fn padded_dim(&self) -> (usize, usize) {
        match *self {
            TapSource::Padded { dim, .. } => (dim.1, dim.2),
            TapSource::Raw { dim, padding, .. } => (
                dim.1 + padding.top + padding.bottom,
                dim.2 + padding.left + padding.right,
            ),
        }
    }

    /// Input group `g`'s `icg` planes, centred and padded: the values that
    /// hold them, the offset of the first, and a bound on their `|x|`.
    fn group<'b>(&'b self, g: usize, icg: usize, buf: &'b mut Vec<i16>) -> (&'b [i16], usize, i64) {
        let (ph, pw) = self.padded_dim();
        match *self {
            TapSource::Padded {
                values, max_abs_x, ..
            } => (values, g * icg * ph * pw, max_abs_x),
            TapSource::Raw {
                values,
                zero,
                dim: (_, h, w),
                padding,
            } => {
                let n = icg * ph * pw;
                if buf.len() != n {
                    // Zeroed once per buffer: the padding is never written again.
                    buf.clear();
                    buf.resize(n, 0);
                }
                let (mut lo, mut hi) = (0i16, 0i16);
                // SAFETY: the same memory, viewed as possibly uninitialised;
                // `centre_rows` writes only values.
                let dst = unsafe { &mut *(&mut buf[..] as *mut [i16] as *mut [MaybeUninit<i16>]) };
                for icl in 0..icg {
                    let at = (icl * ph + padding.top) * pw + padding.left;
                    let from = (g * icg + icl) * h * w;
                    let rows = Rows {
                        at,
                        pitch: pw,
                        h,
                        w,
                    };
                    match values.get(from..from + h * w) {
                        Some(plane) => {
                            let (l, h) = centre_rows(dst, &rows, plane, zero);
                            (lo, hi) = (lo.min(l), hi.max(h));
                        }
                        None => {
                            centre_rows(dst, &rows, &vec![0; h * w], 0);
                        }
                    }
                }
                (&buf[..], 0, (-i64::from(lo)).max(i64::from(hi)))
            }
        }
    }
}

/// Where [`centre_rows`] writes: `h` rows of `w` values, the first at
/// `at`, each `pitch` after the previous.
struct Rows {
    at: usize,
    pitch: usize,
    h: usize,
    w: usize,
}

/// `src` (`h` rows of `w`) minus `zero` (wrapping, as in
/// [`centred_padded`]) into `dst` at `rows`, every element of those rows
/// written; the smallest and largest values written, with 0.
fn centre_rows(dst: &mut [MaybeUninit<i16>], rows: &Rows, src: &[i16], zero: i16) -> (i16, i16) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: AVX2 checked just above.
        return unsafe { centre_rows_avx2(dst, rows, src, zero) };
    }
    centre_rows_body(dst, rows, src, zero)
}

/// [`centre_rows`] under AVX2: 16 values per vector, each row's last
/// vector ending at its end (overlapping the one before: the same values
/// written twice); rows shorter than 16 take the plain loop.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn centre_rows_avx2(
    dst: &mut [MaybeUninit<i16>],
    rows: &Rows,
    src: &[i16],
    zero: i16,
) -> (i16, i16) {
    use std::arch::x86_64::*;
    let w = rows.w;
    if w < 16 {
        return centre_rows_body(dst, rows, src, zero);
    }
    let (mut lo, mut hi) = (_mm256_setzero_si256(), _mm256_setzero_si256());
    let z = _mm256_set1_epi16(zero);
    for (y, s) in src.chunks_exact(w).take(rows.h).enumerate() {
        let Some(d) = dst.get_mut(rows.at + y * rows.pitch..rows.at + y * rows.pitch + w) else {
            continue;
        };
        let mut i = 0;
        loop {
            let j = i.min(w - 16);
            // SAFETY: j + 16 <= w = d.len() = s.len().
            unsafe {
                let v =
                    _mm256_sub_epi16(_mm256_loadu_si256(s.as_ptr().add(j) as *const __m256i), z);
                _mm256_storeu_si256(d.as_mut_ptr().add(j) as *mut __m256i, v);
                lo = _mm256_min_epi16(lo, v);
                hi = _mm256_max_epi16(hi, v);
            }
            if j + 16 >= w {
                break;
            }
            i += 16;
        }
    }
    let (mut l, mut h) = ([0i16; 16], [0i16; 16]);
    // SAFETY: 16 i16 lanes into 16-element arrays.
    unsafe {
        _mm256_storeu_si256(l.as_mut_ptr() as *mut __m256i, lo);
        _mm256_storeu_si256(h.as_mut_ptr() as *mut __m256i, hi);
    }
    (
        l.iter().fold(0, |a, &v| a.min(v)),
        h.iter().fold(0, |a, &v| a.max(v)),
    )
}

/// [`centre_rows`]'s plain loop.
fn centre_rows_body(
    dst: &mut [MaybeUninit<i16>],
    rows: &Rows,
    src: &[i16],
    zero: i16,
) -> (i16, i16) {
    let (mut l, mut h) = (0i16, 0i16);
    let w = rows.w;
    for (y, s) in src.chunks_exact(w.max(1)).take(rows.h).enumerate() {
        let Some(d) = dst.get_mut(rows.at + y * rows.pitch..rows.at + y * rows.pitch + w) else {
            continue;
        };
        for (d, &s) in d.iter_mut().zip(s) {
            let v = s.wrapping_sub(zero);
            d.write(v);
            (l, h) = (l.min(v), h.max(v));
        }
    }
    (l, h)
}

/// A stride-1 convolution channel by channel (depthwise and other small
/// groups, or where no `i32` block is provable): each output channel's
/// plane from its kernel rows over the padded input
/// (`kernels::taps_rows_uninit`, vectorised over positions, `i32` blocks
/// where `max|x| * sum|w|` fits), bias included, handed to `sink` straight
/// from a per-thread buffer.
fn taps_through_sink<T: Copy + Default + Send>(
    conv: &Conv2d,
    src: &TapSource<'_>,
    w: &ndarray::Array4<i16>,
    sink: &Sink<'_, T>,
) -> Array3<T> {
    let (ph, pw) = src.padded_dim();
    let (out_c, icg, kh, kw) = w.dim();
    let (oh, ow) = ((ph + 1).saturating_sub(kh), (pw + 1).saturating_sub(kw));
    let ocg = out_c / conv.groups;
    let w = w.as_standard_layout();
    let w = w.as_slice().unwrap_or(&[]);
    // Output channel oc's kernel rows over planes from `base`: (offset, kw weights).
    let taps = |oc: usize, base: usize| -> Vec<(usize, &[i16])> {
        (0..icg * kh)
            .map(|r| {
                let (icl, ky) = (r / kh, r % kh);
                let at = (oc * icg * kh + r) * kw;
                (
                    base + (icl * ph + ky) * pw,
                    w.get(at..at + kw).unwrap_or(&[]),
                )
            })
            .collect()
    };
    let bias = |oc: usize| conv.epilogue.bias[oc];
    // One output channel's sums into `dst` (oh x ow, written in full).
    let sums = |buf: &mut Vec<i16>, oc: usize, dst: &mut [MaybeUninit<i64>]| {
        let (xs, base, max_abs_x) = src.group(oc / ocg, icg, buf);
        let shape = PlaneShape { pw, ow, max_abs_x };
        taps_rows_uninit(dst, xs, &shape, &taps(oc, base), bias(oc));
    };
    let plane = (oh * ow).max(1);
    let n = out_c * oh * ow;
    let parallel = out_c * icg * kh * kw * oh * ow >= PARALLEL_MIN_MACS && out_c > 1;
    let out = if let Some(in_place) = sink.sums {
        // The sums are the outputs: written in place, into memory not
        // zeroed first.
        let mut out: Vec<T> = Vec::with_capacity(n);
        let fill = |buf: &mut Vec<i16>, (oc, p): (usize, &mut [MaybeUninit<T>])| {
            sums(buf, oc, in_place(p))
        };
        let planes = &mut out.spare_capacity_mut()[..n];
        if parallel {
            use rayon::prelude::*;
            planes
                .par_chunks_mut(plane)
                .enumerate()
                .for_each_init(Vec::new, fill);
        } else {
            let mut buf = Vec::new();
            planes
                .chunks_mut(plane)
                .enumerate()
                .for_each(|item| fill(&mut buf, item));
        }
        // SAFETY: every plane of the first n elements was written in full
        // (`taps_rows_uninit` initialises its whole slice).
        unsafe { out.set_len(n) };
        out
    } else {
        type Buffers = (Vec<i16>, Vec<i64>);
        let channel = |(buf, acc): &mut Buffers, (oc, plane_out): (usize, &mut [T])| {
            acc.clear();
            acc.reserve(oh * ow);
            sums(buf, oc, &mut acc.spare_capacity_mut()[..oh * ow]);
            // SAFETY: `taps_rows_uninit` initialised all oh x ow elements.
            unsafe { acc.set_len(oh * ow) };
            (sink.channel)(oc, acc, plane_out);
        };
        let mut out = vec![T::default(); n];
        if parallel {
            use rayon::prelude::*;
            out.par_chunks_mut(plane)
                .enumerate()
                .for_each_init(Buffers::default, channel);
        } else {
            let mut buffers = Buffers::default();
            out.chunks_mut(plane)
                .enumerate()
                .for_each(|item| channel(&mut buffers, item));
        }
        out
    };
    Array3::from_shape_vec((out_c, oh, ow), out)
        .unwrap_or_else(|_| Array3::default((out_c, oh, ow)))
}

fn conv_sums<A: Acc>(conv: &Conv2d, x: &Array3<i16>, w: &ndarray::Array4<i16>) -> Array3<i64> {
    let (_, ph, pw) = x.dim();
    let (out_c, icg, kh, kw) = w.dim();
    let [sy, sx] = conv.stride;
    let oh = (ph - kh) / sy + 1;
    let ow = (pw - kw) / sx + 1;
    let ocg = out_c / conv.groups;
    let x = x.as_standard_layout();
    let xs = x.as_slice().unwrap_or(&[]);
    let plane = ph * pw;
    // With stride 1, one kernel tap reads the padded plane as one long run:
    // accumulate over rows of the padded width `pw` (columns `ow..pw` of
    // each row are discarded; they are sums of the same weights over other
    // inputs, so the same bound keeps them from overflowing). One long
    // multiply-add per tap instead of `oh` short ones.
    let wide = sx == 1 && sy == 1;
    let row_len = if wide { pw } else { ow };
    let run = (oh - 1) * row_len + ow;
    // One output channel's plane: every tap of its kernel over the input.
    let channel = |acc: &mut Vec<A>, oc: usize, plane_out: &mut [i64]| {
        let group = oc / ocg;
        let bias = conv.epilogue.bias[oc];
        acc.clear();
        acc.resize(oh * row_len, A::default());
        for icl in 0..icg {
            let base = (group * icg + icl) * plane;
            for ky in 0..kh {
                for kx in 0..kw {
                    let wv = w[[oc, icl, ky, kx]];
                    if wv == 0 {
                        continue;
                    }
                    let wv = A::from(wv);
                    if wide {
                        let start = base + ky * pw + kx;
                        axpy(&mut acc[..run], wv, &xs[start..start + run]);
                        continue;
                    }
                    for oy in 0..oh {
                        let row = base + (oy * sy + ky) * pw + kx;
                        let dst = &mut acc[oy * ow..(oy + 1) * ow];
                        if sx == 1 {
                            axpy(dst, wv, &xs[row..row + ow]);
                        } else {
                            for (ox, a) in dst.iter_mut().enumerate() {
                                *a += wv * A::from(xs[row + ox * sx]);
                            }
                        }
                    }
                }
            }
        }
        for (oy, row) in plane_out.chunks_exact_mut(ow).enumerate() {
            for (o, &a) in row.iter_mut().zip(&acc[oy * row_len..oy * row_len + ow]) {
                *o = a.to_i64() + bias;
            }
        }
    };
    // Channels are independent: large layers split them over the cores
    // (each channel's sums are the same whichever thread computes them).
    let mut out = vec![0i64; out_c * oh * ow];
    let macs = out_c * icg * kh * kw * oh * ow;
    if macs >= PARALLEL_MIN_MACS && out_c > 1 {
        use rayon::prelude::*;
        out.par_chunks_mut(oh * ow)
            .enumerate()
            .for_each_init(Vec::new, |acc, (oc, plane_out)| channel(acc, oc, plane_out));
    } else {
        let mut acc = Vec::new();
        for (oc, plane_out) in out.chunks_mut(oh * ow).enumerate() {
            channel(&mut acc, oc, plane_out);
        }
    }
    Array3::from_shape_vec((out_c, oh, ow), out).unwrap_or_else(|_| Array3::zeros((out_c, oh, ow)))
}

/// Rows of a fully connected layer one task computes.
const FC_ROWS_PER_TASK: usize = 16;

/// Exact sums of a fully connected layer over the flattened input: `[out, 1, 1]`.
pub fn fc_accumulate(fc: &FullyConnected, input_zero: i32, input: &Activations) -> Array3<i64> {
    // Flattened in logical order; from the slice where the input is
    // contiguous (ndarray's element iterator over an [n, 1, 1] array costs
    // a few nanoseconds per element).
    let centre = |v: i16| (i32::from(v) - input_zero) as i16;
    let x: Vec<i16> = match input.as_slice() {
        Some(values) => values.iter().map(|&v| centre(v)).collect(),
        None => input.iter().map(|&v| centre(v)).collect(),
    };
    let wz = fc.weight_quant.zero();
    let centred: Array2<i16>;
    let w = if wz == 0 {
        &fc.weights
    } else {
        centred = fc.weights.mapv(|v| (i32::from(v) - wz) as i16);
        &centred
    };
    let n = fc.out_features();
    let w = w.as_standard_layout();
    let ws = w.as_slice().unwrap_or(&[]);
    let k = x.len();
    let mut out = vec![0i64; n];
    if ws.len() != n * k {
        // Not a valid layer (the IR makes in_features the input's length):
        // the exact sums over the common length, row by row.
        let kw = ws.len().checked_div(n).unwrap_or(0).max(1);
        for (o, row) in out.iter_mut().zip(ws.chunks_exact(kw)) {
            *o = dot(0i64, row, &x);
        }
    }
    // Rows in groups sharing each load of the input (`gemv_exact`), on
    // several threads for large layers; each row's sum is exact wherever
    // it is computed. No bound is scanned from the weights: that pass
    // would cost as much as the MACs.
    let input = GemvInput::new(&x);
    let rows = |(i, o): (usize, &mut [i64])| {
        let r0 = i * FC_ROWS_PER_TASK;
        input.product(&ws[r0 * k..(r0 + o.len()) * k], o);
    };
    if ws.len() == n * k && n * k >= PARALLEL_MIN_MACS {
        use rayon::prelude::*;
        out.par_chunks_mut(FC_ROWS_PER_TASK)
            .enumerate()
            .for_each(rows);
    } else if ws.len() == n * k {
        out.chunks_mut(FC_ROWS_PER_TASK).enumerate().for_each(rows);
    }
    for (o, &b) in out.iter_mut().zip(&fc.epilogue.bias) {
        *o += b;
    }
    Array3::from_shape_vec((n, 1, 1), out).unwrap_or_else(|_| Array3::zeros((n, 1, 1)))
}

/// [`fc_accumulate`] for each of `inputs`, in order: with two or more, one
/// matrix product of the weights by the inputs side by side (a panel of
/// `in_features` rows by one column per sample), so each weight load serves
/// every sample instead of one; the weights are packed and bounded once per
/// batch. The sums are the exact ones, as for one input.
pub fn fc_accumulate_batch(
    fc: &FullyConnected,
    input_zero: i32,
    inputs: &[&Activations],
) -> Vec<Array3<i64>> {
    let n = fc.out_features();
    let k = fc.weights.dim().1;
    let fits = inputs.iter().all(|x| x.len() == k);
    if inputs.len() < 2 || !fits {
        return inputs
            .iter()
            .map(|x| fc_accumulate(fc, input_zero, x))
            .collect();
    }
    let centre = |v: i16| (i32::from(v) - input_zero) as i16;
    let (lo, hi) = union_range(inputs.iter().map(|x| centred_range(x, input_zero)));
    let wz = fc.weight_quant.zero();
    let centred: Array2<i16>;
    let w = if wz == 0 {
        &fc.weights
    } else {
        centred = fc.weights.mapv(|v| (i32::from(v) - wz) as i16);
        &centred
    };
    let w = w.as_standard_layout();
    let weights = PairWeights::new(w.as_slice().unwrap_or(&[]), k);
    let Some(block) = weights.block_pairs_in(lo, hi) else {
        return inputs
            .iter()
            .map(|x| fc_accumulate(fc, input_zero, x))
            .collect();
    };
    // Logical order, as `fc_accumulate` flattens (a copy only if not contiguous).
    let flat: Vec<std::borrow::Cow<'_, [i16]>> = inputs
        .iter()
        .map(|x| match x.as_slice() {
            Some(v) => std::borrow::Cow::Borrowed(v),
            None => std::borrow::Cow::Owned(x.iter().copied().collect()),
        })
        .collect();
    let mut panel = PairPanel::default();
    panel.refill(k, inputs.len(), |q, dst| {
        for (p, x) in dst.chunks_exact_mut(2).zip(&flat) {
            p[0] = x.get(2 * q).map_or(0, |&v| centre(v));
            p[1] = x.get(2 * q + 1).map_or(0, |&v| centre(v));
        }
    });
    let stride = panel.stride();
    let mut sums = vec![0i64; n * stride];
    weights.gemm_all(&panel, block, PARALLEL_MIN_MACS, &mut sums);
    (0..inputs.len())
        .map(|s| {
            let out: Vec<i64> = (0..n)
                .map(|o| sums[o * stride + s] + fc.epilogue.bias[o])
                .collect();
            Array3::from_shape_vec((n, 1, 1), out).unwrap_or_else(|_| Array3::zeros((n, 1, 1)))
        })
        .collect()
}

/// MACs of `layer` on `input` in which at least one (centred) operand is
/// zero: the work zero-skipping hardware can gate. Window positions over
/// padding count, with a zero input operand.
pub fn zero_operand_macs(layer: &Layer, input: &Activations) -> u64 {
    let zero = layer.input_quant.zero();
    match &layer.op {
        Op::Conv2d(c) => {
            let x = centred_padded(input, zero, c.padding);
            let (in_c, ph, pw) = x.dim();
            let (out_c, icg, kh, kw) = c.weights.dim();
            let [sy, sx] = c.stride;
            let oh = (ph - kh) / sy + 1;
            let ow = (pw - kw) / sx + 1;
            // nonzero_inputs[ic][ky][kx]: output positions whose tap (ky, kx)
            // reads a non-zero input of channel ic.
            let mut nonzero_inputs = vec![0u64; in_c * kh * kw];
            for ic in 0..in_c {
                for ky in 0..kh {
                    for kx in 0..kw {
                        let mut n = 0u64;
                        for oy in 0..oh {
                            for ox in 0..ow {
                                n += u64::from(x[[ic, oy * sy + ky, ox * sx + kx]] != 0);
                            }
                        }
                        nonzero_inputs[(ic * kh + ky) * kw + kx] = n;
                    }
                }
            }
            let wz = c.weight_quant.zero();
            let ocg = out_c / c.groups;
            let mut nonzero = 0u64;
            for ((oc, icl, ky, kx), &wv) in c.weights.indexed_iter() {
                if i32::from(wv) != wz {
                    let ic = (oc / ocg) * icg + icl;
                    nonzero += nonzero_inputs[(ic * kh + ky) * kw + kx];
                }
            }
            layer.macs() - nonzero
        }
        Op::FullyConnected(f) => {
            let wz = f.weight_quant.zero();
            let nonzero: u64 = input
                .iter()
                .zip(f.weights.columns())
                .filter(|(v, _)| i32::from(**v) != zero)
                .map(|(_, col)| col.iter().filter(|&&w| i32::from(w) != wz).count() as u64)
                .sum();
            layer.macs() - nonzero
        }
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::numerics::{OutputStage, Requant, Rounding, WeightQuant};
    use crate::workload::ir::Epilogue;
    use ndarray::Array4;

    fn fc(weights: Vec<i16>, n_in: usize, bias: i64) -> FullyConnected {
        let n_out = weights.len() / n_in;
        FullyConnected {
            weights: Array2::from_shape_vec((n_out, n_in), weights).expect("shape"),
            weight_quant: WeightQuant::Fixed {
                bits: 16,
                frac_len: 15,
            },
            epilogue: Epilogue {
                bias: vec![bias; n_out],
                activation: crate::numerics::Activation::None,
                output_stage: OutputStage {
                    accumulator_bits: 48,
                    requant: Requant::Shift {
                        shift: 0,
                        rounding: Rounding::HalfUp,
                    },
                    zero_point: 0,
                    clamp_min: -32768,
                    clamp_max: 32767,
                },
            },
        }
    }

    /// 16-bit operands: each accumulator kind gives the exact i64 sum.
    #[test]
    fn every_accumulator_kind_is_exact() {
        // Pseudo-random 16-bit operands with extremes mixed in.
        let mut state = 12345u64;
        let mut next = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 48) as i16
        };
        let n = 3000;
        let x: Vec<i16> = (0..n)
            .map(|i| if i % 97 == 0 { i16::MIN } else { next() })
            .collect();
        let w: Vec<i16> = (0..2 * n)
            .map(|i| if i % 89 == 0 { i16::MIN } else { next() })
            .collect();
        let exact = |row: &[i16]| -> i64 {
            row.iter()
                .zip(&x)
                .map(|(&a, &b)| i64::from(a) * i64::from(b))
                .sum()
        };
        let input = Array3::from_shape_vec((n, 1, 1), x.clone()).expect("shape");
        // F64: bound 2^15 * sum|w| ~ 2^15 * 3000 * 2^14 < 2^53.
        let layer = fc(w.clone(), n, 7);
        let max_x = max_abs(x.iter().copied());
        let kind = accumulator_kind(
            max_x,
            layer
                .weights
                .outer_iter()
                .map(|r| (r.iter().map(|&v| i64::from(v).abs()).sum(), 7)),
        );
        assert_eq!(kind, AccKind::F64);
        let out = fc_accumulate(&layer, 0, &input);
        assert_eq!(out[[0, 0, 0]], exact(&w[..n]) + 7);
        assert_eq!(out[[1, 0, 0]], exact(&w[n..]) + 7);
        // I64: a bias beyond 2^53 forces the widest path; still exact.
        let big = fc(w.clone(), n, 1 << 54);
        assert_eq!(
            fc_accumulate(&big, 0, &input)[[0, 0, 0]],
            exact(&w[..n]) + (1 << 54)
        );
        // I32: small operands.
        let small: Vec<i16> = w.iter().map(|v| v >> 12).collect();
        let xs = input.mapv(|v| v >> 12);
        let l = fc(small.clone(), n, 0);
        let want: i64 = small[..n]
            .iter()
            .zip(xs.iter())
            .map(|(&a, &b)| i64::from(a) * i64::from(b))
            .sum();
        assert_eq!(fc_accumulate(&l, 0, &xs)[[0, 0, 0]], want);
        // The same three paths through a convolution.
        let conv = Conv2d {
            kernel: [1, 1],
            stride: [1, 1],
            padding: Padding::default(),
            groups: 1,
            weights: Array4::from_shape_vec((2, n, 1, 1), w.clone()).expect("shape"),
            weight_quant: layer.weight_quant.clone(),
            epilogue: layer.epilogue.clone(),
        };
        let out = conv_accumulate(&conv, 0, &input);
        assert_eq!(out[[1, 0, 0]], exact(&w[n..]) + 7);
    }
}

#[cfg(test)]
mod batch_tests {
    use super::*;
    use crate::numerics::{OutputStage, Requant, Rounding, WeightQuant};
    use crate::workload::ir::Epilogue;
    use ndarray::Array4;
    use proptest::prelude::*;

    fn epilogue(bias: Vec<i64>) -> Epilogue {
        Epilogue {
            bias,
            activation: crate::numerics::Activation::None,
            output_stage: OutputStage {
                accumulator_bits: 48,
                requant: Requant::Shift {
                    shift: 0,
                    rounding: Rounding::HalfUp,
                },
                zero_point: 0,
                clamp_min: -32768,
                clamp_max: 32767,
            },
        }
    }

    /// The plain loop: exact `i64` sums of one input, padding as zeros.
    fn plain_conv(conv: &Conv2d, zero: i32, x: &Activations) -> Array3<i64> {
        let (_, h, w) = x.dim();
        let p = conv.padding;
        let (ph, pw) = (h + p.top + p.bottom, w + p.left + p.right);
        // The centred input at padded coordinates (zero outside).
        let at = |c: usize, y: usize, xx: usize| -> i16 {
            match (y.checked_sub(p.top), xx.checked_sub(p.left)) {
                (Some(y), Some(xx)) if y < h && xx < w => (i32::from(x[[c, y, xx]]) - zero) as i16,
                _ => 0,
            }
        };
        let (out_c, icg, kh, kw) = conv.weights.dim();
        let [sy, sx] = conv.stride;
        let (oh, ow) = ((ph - kh) / sy + 1, (pw - kw) / sx + 1);
        let ocg = out_c / conv.groups;
        let wz = conv.weight_quant.zero();
        Array3::from_shape_fn((out_c, oh, ow), |(oc, oy, ox)| {
            let mut s = conv.epilogue.bias[oc];
            for icl in 0..icg {
                for ky in 0..kh {
                    for kx in 0..kw {
                        let w = i64::from(conv.weights[[oc, icl, ky, kx]]) - i64::from(wz);
                        let v = at(oc / ocg * icg + icl, oy * sy + ky, ox * sx + kx);
                        s += w * i64::from(v);
                    }
                }
            }
            s
        })
    }

    /// 16-bit values, extremes included.
    fn value() -> impl Strategy<Value = i16> {
        prop_oneof![
            Just(i16::MIN),
            Just(i16::MAX),
            Just(0i16),
            any::<i16>(),
            (-300i16..300),
        ]
    }

    /// (groups, channels per group in, out per group, kernel, stride, pad, h, w, samples)
    fn shape() -> impl Strategy<Value = [usize; 9]> {
        (
            1usize..3,
            1usize..4,
            prop_oneof![Just(1usize), Just(4), Just(6)],
            1usize..4,
            1usize..3,
            0usize..2,
            3usize..7,
            3usize..9,
            1usize..5,
        )
            .prop_map(|(g, icg, ocg, k, s, p, h, w, n)| [g, icg, ocg, k, s, p, h, w, n])
    }

    fn conv_case() -> impl Strategy<Value = (Conv2d, Vec<Activations>)> {
        shape().prop_flat_map(|[g, icg, ocg, k, s, p, h, w, n]| {
            let weights = proptest::collection::vec(value(), g * ocg * icg * k * k);
            let inputs = proptest::collection::vec(value(), n * g * icg * h * w);
            let bias = proptest::collection::vec(-1_000_000i64..1_000_000, g * ocg);
            (weights, inputs, bias).prop_map(move |(wv, xv, bias)| {
                let conv = Conv2d {
                    kernel: [k, k],
                    stride: [s, s],
                    padding: Padding {
                        top: p,
                        bottom: p,
                        left: p,
                        right: p,
                    },
                    groups: g,
                    weights: Array4::from_shape_vec((g * ocg, icg, k, k), wv).expect("shape"),
                    weight_quant: WeightQuant::Fixed {
                        bits: 16,
                        frac_len: 15,
                    },
                    epilogue: epilogue(bias),
                };
                let xs = xv
                    .chunks_exact(g * icg * h * w)
                    .map(|c| Array3::from_shape_vec((g * icg, h, w), c.to_vec()).expect("shape"))
                    .collect();
                (conv, xs)
            })
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]
        /// A batch's convolution sums equal the plain loop per sample, for
        /// random shapes, groups, strides, padding and extreme values.
        #[test]
        fn batched_convolution_equals_the_plain_loop((conv, xs) in conv_case()) {
            let refs: Vec<&Activations> = xs.iter().collect();
            for zero in [0, -3] {
                let batch = conv_accumulate_batch(&conv, zero, &refs);
                prop_assert_eq!(batch.len(), xs.len());
                for (got, x) in batch.iter().zip(&xs) {
                    prop_assert_eq!(got, &plain_conv(&conv, zero, x));
                    prop_assert_eq!(got, &conv_accumulate(&conv, zero, x));
                }
            }
        }

        /// Depthwise and small-group convolutions on planes wide enough for
        /// the even/odd row kernel (outputs 16 to 40 wide), with the input
        /// centred and padded per channel (`TapSource::Raw`): the plain
        /// loop's sums and requantised outputs, for extreme operands,
        /// zero points and kernels 1-5 wide and high.
        #[test]
        fn wide_small_group_convolution_equals_the_plain_loop(
            (g, icg, ocg, kh, kw, p) in (1usize..4, 1usize..3, 1usize..4, 1usize..5, 1usize..6, 0usize..3),
            (h, w) in (1usize..6, 16usize..41),
            seed in any::<u64>(),
            small in any::<bool>(),
            zero in prop_oneof![Just(0i32), Just(-3), Just(128)],
        ) {
            let mut st = seed;
            let mut next = |lo: i32, hi: i32| {
                st = st.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                let v = lo + ((st >> 33) % (hi - lo + 1) as u64) as i32;
                // One in eight at an extreme.
                match (st >> 20) % 16 { 0 => lo, 1 => hi, _ => v }
            };
            let (xl, xh) = if small { (-300, 300) } else { (-32768, 32767) };
            let weights = Array4::from_shape_simple_fn((g * ocg, icg, kh, kw), || next(-32768, 32767) as i16);
            let x = Array3::from_shape_simple_fn((g * icg, h, w), || next(xl, xh) as i16);
            let conv = Conv2d {
                kernel: [kh, kw],
                stride: [1, 1],
                padding: Padding { top: p, bottom: p, left: p, right: p },
                groups: g,
                weights,
                weight_quant: WeightQuant::Fixed { bits: 16, frac_len: 15 },
                epilogue: epilogue((0..g * ocg).map(|i| i as i64 * 1_000_003 - 7).collect()),
            };
            prop_assume!(h + 2 * p >= kh);
            let got = conv_accumulate_batch(&conv, zero, &[&x]);
            let want = plain_conv(&conv, zero, &x);
            prop_assert_eq!(&got[0], &want);
            let outs = conv_output_batch(&conv, zero, &[&x]);
            let stage = &conv.epilogue.output_stage;
            let planes = want.outer_iter().enumerate();
            for (oc, plane) in planes {
                let sums: Vec<i64> = plane.iter().copied().collect();
                let mut requant = vec![0i16; sums.len()];
                stage.channel(oc).apply_slice(&sums, &mut requant);
                let got: Vec<i16> = outs[0].slice(ndarray::s![oc, .., ..]).iter().copied().collect();
                prop_assert_eq!(got, requant);
            }
        }

        /// Operands that are all multiples of powers of two (PELUSO's 8-bit
        /// high bytes, and coarser) run divided by them, with longer blocks:
        /// the sums are still the plain loop's.
        #[test]
        fn scaled_operands_give_the_plain_sums(
            (conv, xs) in conv_case(),
            x_shift in prop_oneof![Just(0u32), Just(8), 1u32..16],
            w_shift in prop_oneof![Just(0u32), Just(8), 1u32..16],
        ) {
            let mut conv = conv;
            let high = |s: u32| move |v: i16| (v >> s) << s;
            conv.weights.mapv_inplace(high(w_shift));
            let xs: Vec<Activations> = xs.iter().map(|x| x.mapv(high(x_shift))).collect();
            let refs: Vec<&Activations> = xs.iter().collect();
            let batch = conv_accumulate_batch(&conv, 0, &refs);
            for (got, x) in batch.iter().zip(&xs) {
                prop_assert_eq!(got, &plain_conv(&conv, 0, x));
            }
        }

        /// A batch's outputs (sums through the output stage, fused into the
        /// matrix product's threads) equal the plain loop's sums requantised,
        /// per sample, for shift rules with and without rounding.
        #[test]
        fn batched_outputs_equal_the_plain_loop_requantised(
            (conv, xs) in conv_case(),
            shift in prop_oneof![Just(0i32), 1i32..24],
            rounding in prop_oneof![Just(Rounding::HalfUp), Just(Rounding::HalfEven), Just(Rounding::Floor)],
        ) {
            let mut conv = conv;
            conv.epilogue.output_stage.requant = Requant::Shift { shift, rounding };
            let refs: Vec<&Activations> = xs.iter().collect();
            let batch = conv_output_batch(&conv, 0, &refs);
            prop_assert_eq!(batch.len(), xs.len());
            for (got, x) in batch.iter().zip(&xs) {
                let want = crate::reference::requantize(&conv.epilogue, &plain_conv(&conv, 0, x));
                prop_assert_eq!(got, &want);
            }
        }

        /// A batch's fully connected sums equal the plain loop per sample,
        /// for input zero points 0, -3 and 128 (the centred inputs wrap to
        /// `i16` as the kernels take them).
        #[test]
        fn batched_fc_equals_the_plain_loop(
            (k, rows, n) in (1usize..70, 1usize..10, 1usize..6),
            seed in any::<u64>(),
            extreme in any::<bool>(),
            zero in prop_oneof![Just(0i32), Just(-3), Just(128)],
        ) {
            let mut state = seed | 1;
            let mut next = || {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let v = (state >> 40) as i16;
                if extreme && state % 3 == 0 { i16::MIN } else { v }
            };
            let w: Vec<i16> = (0..rows * k).map(|_| next()).collect();
            let fc = FullyConnected {
                weights: Array2::from_shape_vec((rows, k), w.clone()).expect("shape"),
                weight_quant: WeightQuant::Fixed { bits: 16, frac_len: 15 },
                epilogue: epilogue((0..rows as i64).map(|r| r * 1000 - 3).collect()),
            };
            let xs: Vec<Activations> = (0..n)
                .map(|_| Array3::from_shape_vec((k, 1, 1), (0..k).map(|_| next()).collect()).expect("shape"))
                .collect();
            let refs: Vec<&Activations> = xs.iter().collect();
            let batch = fc_accumulate_batch(&fc, zero, &refs);
            for (got, x) in batch.iter().zip(&xs) {
                for r in 0..rows {
                    let want: i64 = (0..k)
                        .map(|t| {
                            let centred = (i32::from(x[[t, 0, 0]]) - zero) as i16;
                            i64::from(w[r * k + t]) * i64::from(centred)
                        })
                        .sum::<i64>() + r as i64 * 1000 - 3;
                    prop_assert_eq!(got[[r, 0, 0]], want);
                }
                prop_assert_eq!(got, &fc_accumulate(&fc, zero, x));
            }
        }
    }
}
