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
}
impl Accumulator for i32 {}
impl Accumulator for i64 {}

/// `psums[o] += sum_e weights[e * width + o] * inputs[e]` for `o < width`:
/// one piece of the dot products of `width` outputs that share `inputs`.
/// Weights are stored piece-element-major so the inner loop runs over
/// outputs with unit stride.
#[inline]
pub fn accumulate<A: Accumulator>(psums: &mut [A], weights: &[i16], inputs: &[i16]) {
    let width = psums.len();
    for (e, &x) in inputs.iter().enumerate() {
        if x == 0 {
            continue;
        }
        crate::numerics::kernels::axpy(psums, A::from(x), &weights[e * width..(e + 1) * width]);
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
    }
}
