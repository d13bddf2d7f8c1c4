//! A stage's arithmetic: hard-wired shift-add scalers into one adder tree
//! per output channel, then batch-norm / ReLU / requantisation (SPEC
//! section 3, FIXYNN); or comparators for max pooling.
//!
//! ```text
//!   window (k x k x C, from the shift register)
//!     │  every non-zero weight w of output channel o: one input per digit of w
//!     ▼
//!   ±(x << s1), ±(x << s2), ...  ──► carry-save adder tree ──► CPA ──► acc[o]
//!   bias[o] (BN shift register) ─────────┘           (acc_bits[o] wide)
//!     │
//!     ▼
//!   BN scale, ReLU, Q (the layer's OutputStage) ──► 8-bit out[o]
//! ```
//!
//! The input zero point is folded into the bias register
//! (`bias' = bias - z_x * Σ w`), so the scalers see raw stored activations
//! and padding is the zero point itself: `Σ (x - z_x) w = Σ x w - z_x Σ w`
//! exactly. Zero (pruned) weights have no digits and no hardware.
//!
//! Accumulator width: with [`AccumulatorWidth::Derived`] each output
//! channel's tree is as wide as its largest possible partial sum,
//! `|bias'| + max|x| * Σ over digits of 2^shift` plus a sign bit (FIXYNN's
//! optimised intermediate precision; summing digit magnitudes bounds every
//! partial sum whatever order the tree adds in). The value computed is the
//! exact sum, which is what the reference executor computes too.

use ndarray::ArrayView4;

use crate::arch::AccumulatorWidth;
use crate::numerics::ChannelRequant;
use crate::numerics::csd::{Digit, DigitEncoding, digits};

/// One adder-tree input: window element `index` shifted left by `shift`,
/// negated when `negate` is all ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Term {
    index: u32,
    shift: u32,
    /// 0 to add, -1 to subtract (`(v ^ m) - m` negates when `m = -1`).
    negate: i64,
}

/// The scalers and adder trees of one convolution stage.
#[derive(Debug, Clone)]
pub struct ShiftAddArray {
    window_len: usize,
    /// `terms[offsets[o]..offsets[o + 1]]` feed output channel `o`.
    offsets: Vec<usize>,
    terms: Vec<Term>,
    /// The BN shift registers: bias with the input zero point folded in.
    pub bias: Vec<i64>,
    /// Width of each output channel's tree and accumulator [bits].
    pub acc_bits: Vec<u32>,
    /// Non-zero weights (scalers) per output channel.
    pub scalers: Vec<u32>,
    /// Non-zero digits (adder-tree inputs besides the bias) per output channel.
    pub digits: Vec<u32>,
}

/// What one computed output pixel cost, in hardware operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PixelOps {
    /// Additions in the adder trees (one per digit: a tree of n inputs plus
    /// the bias performs n additions).
    pub adds: u64,
    /// Full-adder bit operations (each addition is as wide as its tree).
    pub adder_bits: u64,
}

impl ShiftAddArray {
    /// Builds the scalers of a convolution.
    ///
    /// `weights` is `[out, in / groups, kh, kw]` (stored integers),
    /// `weight_zero` their zero point, `input_zero` the input's and
    /// `input_range` its stored range; `bias` is in accumulator units.
    /// The window is laid out `[ky][kx][channel]` over all input channels.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        weights: ArrayView4<i16>,
        groups: usize,
        in_channels: usize,
        weight_zero: i32,
        input_zero: i32,
        input_range: (i32, i32),
        bias: &[i64],
        encoding: DigitEncoding,
        width: AccumulatorWidth,
        fixed_bits: u32,
    ) -> Self {
        let (out, icg, kh, kw) = weights.dim();
        let ocg = out / groups.max(1);
        let max_x = i64::from(
            input_range
                .0
                .unsigned_abs()
                .max(input_range.1.unsigned_abs()),
        );
        let mut offsets = Vec::with_capacity(out + 1);
        let mut terms = Vec::new();
        let mut folded = Vec::with_capacity(out);
        let mut acc_bits = Vec::with_capacity(out);
        let mut scalers = Vec::with_capacity(out);
        let mut digit_counts = Vec::with_capacity(out);
        offsets.push(0);
        for o in 0..out {
            let group = o / ocg.max(1);
            let mut sum_w = 0i64;
            let mut magnitude = 0i64;
            let mut nz = 0u32;
            let first = terms.len();
            for icl in 0..icg {
                let ic = group * icg + icl;
                for ky in 0..kh {
                    for kx in 0..kw {
                        let w = i64::from(weights[[o, icl, ky, kx]]) - i64::from(weight_zero);
                        if w == 0 {
                            continue;
                        }
                        nz += 1;
                        sum_w += w;
                        let index = ((ky * kw + kx) * in_channels + ic) as u32;
                        for Digit { shift, negative } in digits(w, encoding) {
                            magnitude += 1i64 << shift;
                            terms.push(Term {
                                index,
                                shift: u32::from(shift),
                                negate: if negative { -1 } else { 0 },
                            });
                        }
                    }
                }
            }
            let b = bias.get(o).copied().unwrap_or(0) - i64::from(input_zero) * sum_w;
            folded.push(b);
            let bound = b
                .unsigned_abs()
                .saturating_add((max_x as u64).saturating_mul(magnitude as u64));
            acc_bits.push(match width {
                AccumulatorWidth::Derived => (64 - bound.leading_zeros()) + 1,
                AccumulatorWidth::Fixed => fixed_bits,
            });
            scalers.push(nz);
            digit_counts.push((terms.len() - first) as u32);
            offsets.push(terms.len());
        }
        ShiftAddArray {
            window_len: kh * kw * in_channels,
            offsets,
            terms,
            bias: folded,
            acc_bits,
            scalers,
            digits: digit_counts,
        }
    }

    pub fn out_channels(&self) -> usize {
        self.bias.len()
    }

    /// Elements of the window the scalers read.
    pub fn window_len(&self) -> usize {
        self.window_len
    }

    /// The operations of one output pixel (the same for every pixel: the
    /// trees are hard-wired and all add on every output).
    pub fn ops_per_pixel(&self) -> PixelOps {
        let mut ops = PixelOps::default();
        for (d, b) in self.digits.iter().zip(&self.acc_bits) {
            ops.adds += u64::from(*d);
            ops.adder_bits += u64::from(*d) * u64::from(*b);
        }
        ops
    }

    /// Every output channel's accumulator for `window`: the bias plus the
    /// sum over digits of the shifted (and possibly negated) window element.
    #[inline]
    pub fn compute(&self, window: &[i16], acc: &mut [i64]) {
        for (o, a) in acc.iter_mut().enumerate().take(self.bias.len()) {
            let mut sum = self.bias[o];
            for t in &self.terms[self.offsets[o]..self.offsets[o + 1]] {
                let v = i64::from(window[t.index as usize]) << t.shift;
                sum += (v ^ t.negate) - t.negate;
            }
            *a = sum;
        }
    }
}

/// The output stage of every channel (BN scale and shift are in the bias
/// and the requantisation multiplier; ReLU in the clamp).
pub fn requantize(stages: &[ChannelRequant], acc: &[i64], out: &mut [i16]) {
    for ((o, s), a) in out.iter_mut().zip(stages).zip(acc) {
        *o = s.apply(*a);
    }
}

/// Max pooling over a `[ky][kx][channel]` window: per channel, the largest
/// element (padding holds the type's minimum, so it never wins).
pub fn max_pool(window: &[i16], channels: usize, out: &mut [i16]) {
    for (c, o) in out.iter_mut().enumerate().take(channels) {
        *o = window
            .iter()
            .skip(c)
            .step_by(channels)
            .copied()
            .max()
            .unwrap_or(i16::MIN);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array4;

    #[test]
    fn shift_add_tree_equals_the_centred_dot_product() {
        // 2 output channels, 2 input channels, 1x2 kernel; weights stored
        // with zero point 1, inputs with zero point 3.
        let w = Array4::from_shape_vec((2, 2, 1, 2), vec![8, 1, -6, 2, 1, 1, 4, 0]).unwrap();
        let a = ShiftAddArray::new(
            w.view(),
            1,
            2,
            1,
            3,
            (0, 255),
            &[100, -5],
            DigitEncoding::Csd,
            AccumulatorWidth::Derived,
            32,
        );
        // Window [ky=0][kx][c]: kx=0: (c0 5, c1 9), kx=1: (c0 0, c1 200).
        let window = [5, 9, 0, 200];
        let mut acc = [0i64; 2];
        a.compute(&window, &mut acc);
        // Centred weights o0: c0 (7, 0), c1 (-7, 1); x - 3: c0 (2, -3), c1 (6, 197).
        // o0 = 100 + 7*2 + 0 + (-7)*6 + 1*197 = 269.
        // o1: c0 (0, 0), c1 (3, -1) -> -5 + 3*6 - 197 = -184.
        assert_eq!(acc, [269, -184]);
        assert_eq!(a.scalers, vec![3, 2]);
        // Digits: 7 = 8 - 1 (2), -7 (2), 1 (1); 3 = 4 - 1 (2), -1 (1).
        assert_eq!(a.digits, vec![5, 3]);
        assert_eq!(a.ops_per_pixel().adds, 8);
    }

    #[test]
    fn max_pool_takes_each_channel_maximum() {
        let mut out = [0i16; 2];
        max_pool(&[1, 9, 7, -3, 4, 2], 2, &mut out);
        assert_eq!(out, [7, 9]);
    }
}
