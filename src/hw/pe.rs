//! The processing elements (SPEC section 1).
//!
//! ```text
//!   input word ──► [input RF, 12] ──┐
//!                                   ├─► MAC ──► accumulator ──► [psum RF, 24] ──► output stage ──► output bus
//!   weight  ──► [LUT or 224-entry   ┘
//!                scratchpad]
//! ```
//!
//! Each PE holds its inputs in an input register file, its partial sums in a
//! psum register file, and its weights either in a fixed look-up table
//! (transfer-learning mode) or in an SRAM scratchpad fed by the weight bus
//! (programmable mode); a LUT or scratchpad read costs one RF access. The
//! MAC's internal accumulator holds the running sum of one output: a psum is
//! read into it, accumulates a piece of the dot product, and is written back.
//!
//! [`PeCounters`] counts every RF access by data type, the MACs and each PE's
//! busy cycles; [`accumulate`] is the MAC datapath's arithmetic, exact.

use std::ops::{AddAssign, Mul};

use crate::units::{DataType, LevelAccesses};

/// What the PEs did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeCounters {
    /// Register-file level: input RF, psum RF and weight store accesses.
    pub rf: LevelAccesses,
    /// Weight reads served by fixed look-up tables (a subset of `rf` weight reads).
    pub lut_reads: u64,
    pub macs: u64,
    /// MACs with a zero operand (a subset of `macs`).
    pub zero_macs: u64,
    /// Cycles each PE spent computing, indexed `row * cols + col`.
    pub busy_cycles: Vec<u64>,
}

impl PeCounters {
    pub fn new(pes: usize) -> Self {
        PeCounters {
            rf: LevelAccesses::default(),
            lut_reads: 0,
            macs: 0,
            zero_macs: 0,
            busy_cycles: vec![0; pes],
        }
    }

    pub fn rf_read(&mut self, t: DataType, words: u64) {
        self.rf.read(t, words);
    }

    pub fn rf_write(&mut self, t: DataType, words: u64) {
        self.rf.write(t, words);
    }
}

/// A MAC accumulator: `i32` when a bound proves no overflow, else `i64`.
pub trait Accumulator:
    Copy + Default + AddAssign + Mul<Output = Self> + From<i16> + Into<i64> + Send + Sync
{
    /// `psums[o] += w0[o] * x0 + w1[o] * x1`: two inputs of a piece.
    fn accumulate_pair(psums: &mut [Self], w0: &[i16], w1: &[i16], x0: i16, x1: i16) {
        for (w, x) in [(w0, x0), (w1, x1)] {
            if x != 0 {
                crate::numerics::kernels::axpy(psums, Self::from(x), w);
            }
        }
    }
}
impl Accumulator for i32 {}
impl Accumulator for i64 {
    fn accumulate_pair(psums: &mut [Self], w0: &[i16], w1: &[i16], x0: i16, x1: i16) {
        crate::numerics::kernels::axpy2_i64(psums, w0, w1, x0, x1);
    }
}

/// `psums[o] += sum_e weights[e * width + o] * inputs[e]` for `o < width`:
/// one piece of the dot products of `width` outputs that share `inputs`.
/// Weights are stored piece-element-major so the inner loop runs over
/// outputs with unit stride; inputs go two at a time (one `vpmaddwd` per
/// pair of products for `i64` sums, exact: `kernels::axpy2_i64`).
#[inline]
pub fn accumulate<A: Accumulator>(psums: &mut [A], weights: &[i16], inputs: &[i16]) {
    let width = psums.len();
    let row = |e: usize| &weights[e * width..(e + 1) * width];
    let mut pairs = inputs.chunks_exact(2);
    for (i, x) in pairs.by_ref().enumerate() {
        let e = 2 * i;
        match (x[0], x[1]) {
            (0, 0) => {}
            (x0, 0) => crate::numerics::kernels::axpy(psums, A::from(x0), row(e)),
            (0, x1) => crate::numerics::kernels::axpy(psums, A::from(x1), row(e + 1)),
            (x0, x1) => A::accumulate_pair(psums, row(e), row(e + 1), x0, x1),
        }
    }
    if let [x] = pairs.remainder()
        && *x != 0
    {
        let e = inputs.len() - 1;
        crate::numerics::kernels::axpy(psums, A::from(*x), row(e));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accumulate_is_a_matrix_vector_product() {
        // Two outputs, three inputs: weights [[1, 2], [3, -1], [0, 5]] (element-major).
        let mut p = [10i64, 0];
        accumulate(&mut p, &[1, 2, 3, -1, 0, 5], &[2, 0, -1]);
        // 10 + 1*2 + 3*0 + 0*(-1) = 12; 0 + 2*2 + (-1)*0 + 5*(-1) = -1.
        assert_eq!(p, [12, -1]);
        // Pairs of inputs, extremes included, in both accumulators.
        let w: Vec<i16> = (0..9 * 19)
            .map(|i| [i16::MIN, i16::MAX, -3, 0, 7][i % 5])
            .collect();
        let x = [i16::MIN, i16::MIN, 5, 0, 0, 9, -4, i16::MAX, 300];
        let mut wide = vec![1i64; 19];
        accumulate(&mut wide, &w, &x);
        let want: Vec<i64> = (0..19)
            .map(|o| {
                1 + (0..9)
                    .map(|e| i64::from(w[e * 19 + o]) * i64::from(x[e]))
                    .sum::<i64>()
            })
            .collect();
        assert_eq!(wide, want);
    }
}
