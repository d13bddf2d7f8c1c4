//! The processing elements (SPEC section 1).
//!
//! ```text
//!   input word ──► [input RF, 12] ──┐
//!                                   ├─► MAC ──► accumulator ──► [psum RF, 24] ──► output stage ──► output bus
//!   weight  ──► [LUT or 224-entry   ┘
//!                scratchpad]
//! ```
//!
//! [`PeArray`] runs the MAC datapaths of all PEs as one component: each PE
//! counts down the cycles of its piece, one per cycle, in lock-step.
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
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PeCounters {
    /// Register-file level: input RF, psum RF and weight store accesses.
    pub rf: LevelAccesses,
    /// Weight reads served by fixed look-up tables (a subset of `rf` weight reads).
    pub lut_reads: u64,
    pub macs: u64,
    /// MACs with a zero operand (a subset of `macs`).
    pub zero_macs: u64,
    /// Cycles the PEs spent computing, summed over the PEs (what the
    /// reports use; the cycle engine's [`PeArray`] counts them per PE).
    pub busy_cycles: u64,
}

impl PeCounters {
    pub fn new() -> Self {
        PeCounters {
            rf: LevelAccesses::default(),
            lut_reads: 0,
            macs: 0,
            zero_macs: 0,
            busy_cycles: 0,
        }
    }

    pub fn rf_read(&mut self, t: DataType, words: u64) {
        self.rf.read(t, words);
    }

    pub fn rf_write(&mut self, t: DataType, words: u64) {
        self.rf.write(t, words);
    }
}

/// The PE array's datapaths as a component (`sim::Component`): each PE
/// counts down the MAC cycles of the piece it was given, one per cycle.
///
/// ```text
///   start(piece cycles per PE) ──► [PE 0: n0 ↓] [PE 1: n1 ↓] ... ──► done when the last is 0
/// ```
///
/// The array runs in lock-step: a step is over when its slowest PE is, and
/// the next step starts together on every PE. Busy cycles count per PE.
#[derive(Debug, Clone)]
pub struct PeArray {
    remaining: Vec<u64>,
    busy_cycles: Vec<u64>,
    /// PEs with cycles left.
    running: usize,
    /// A step finished in the last tick (or started with no cycles).
    finished: bool,
}

impl PeArray {
    pub fn new(pes: usize) -> Self {
        PeArray {
            remaining: vec![0; pes],
            busy_cycles: vec![0; pes],
            running: 0,
            finished: false,
        }
    }

    /// Starts a step: `work` gives (PE, MAC cycles) for each PE that computes.
    /// The array must be idle.
    pub fn start(&mut self, work: impl IntoIterator<Item = (usize, u64)>) {
        debug_assert!(self.running == 0, "a step started on a busy array");
        for (pe, cycles) in work {
            if cycles > 0 && self.remaining[pe] == 0 {
                self.running += 1;
            }
            self.remaining[pe] += cycles;
        }
        self.finished = self.running == 0;
    }

    /// True once, after the step's last PE finished.
    pub fn take_finished(&mut self) -> bool {
        std::mem::take(&mut self.finished)
    }

    pub fn idle(&self) -> bool {
        self.running == 0
    }

    /// Cycles each PE spent computing.
    pub fn busy_cycles(&self) -> &[u64] {
        &self.busy_cycles
    }

    fn count_down(&mut self, cycles: u64) {
        for (left, busy) in self.remaining.iter_mut().zip(&mut self.busy_cycles) {
            if *left > 0 {
                let d = cycles.min(*left);
                *left -= d;
                *busy += d;
                if *left == 0 {
                    self.running -= 1;
                }
            }
        }
    }
}

impl crate::sim::Component for PeArray {
    fn tick(&mut self, _now: crate::sim::Cycle) {
        if self.running > 0 {
            self.count_down(1);
            self.finished = self.running == 0;
        }
    }

    fn next_change(&self, now: crate::sim::Cycle) -> Option<crate::sim::Cycle> {
        let longest = self.remaining.iter().copied().max().filter(|&c| c > 0)?;
        Some(now + (longest - 1))
    }

    fn skip(&mut self, now: crate::sim::Cycle, to: crate::sim::Cycle) {
        let cycles = to.since(now);
        if cycles > 0 && self.running > 0 {
            self.count_down(cycles);
            debug_assert!(self.running > 0, "skipped past a change");
        }
    }
}

/// A MAC accumulator: `i32` when a bound proves no overflow, else `i64`.
pub trait Accumulator:
    Copy + Default + AddAssign + Mul<Output = Self> + From<i16> + Into<i64> + Send + Sync
{
    /// A product of two 16-bit operands (exact in `i32`: at most 2^30).
    fn from_product(p: i32) -> Self;

    /// `psums[o] += w0[o] * x0 + w1[o] * x1`: two inputs of a piece.
    fn accumulate_pair(psums: &mut [Self], w0: &[i16], w1: &[i16], x0: i16, x1: i16) {
        for (w, x) in [(w0, x0), (w1, x1)] {
            if x != 0 {
                crate::numerics::kernels::axpy(psums, Self::from(x), w);
            }
        }
    }
}
impl Accumulator for i32 {
    fn from_product(p: i32) -> Self {
        p
    }
}
impl Accumulator for i64 {
    fn from_product(p: i32) -> Self {
        i64::from(p)
    }

    fn accumulate_pair(psums: &mut [Self], w0: &[i16], w1: &[i16], x0: i16, x1: i16) {
        crate::numerics::kernels::axpy2_i64(psums, w0, w1, x0, x1);
    }
}

/// `psums[o] += sum_e weights[e * width + o] * inputs[e]` for `o < width`:
/// one piece of the dot products of `width` outputs that share `inputs`.
/// Weights are stored piece-element-major so the inner loop runs over
/// outputs with unit stride; inputs go two at a time (one `vpmaddwd` per
/// pair of products for `i64` sums, exact: `kernels::axpy2_i64`).
///
/// Pieces of at most [`BLOCK_PIECE`] inputs (the PE array's usual 3 to 12)
/// go block of outputs by block ([`accumulate_blocks`]): each psum is
/// loaded and stored once per piece, not once per input. The sums are the
/// same: integer addition in any order.
#[inline]
pub fn accumulate<A: Accumulator>(psums: &mut [A], weights: &[i16], inputs: &[i16]) {
    if inputs.len() <= BLOCK_PIECE {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2, checked just above.
            unsafe { accumulate_blocks_avx2(psums, weights, inputs) };
            return;
        }
        accumulate_blocks(psums, weights, inputs);
        return;
    }
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

/// The longest piece [`accumulate`] takes block by block.
pub const BLOCK_PIECE: usize = 12;

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn accumulate_blocks_avx2<A: Accumulator>(psums: &mut [A], weights: &[i16], inputs: &[i16]) {
    accumulate_blocks(psums, weights, inputs);
}

/// [`accumulate`] over blocks of 16, 8 and 4 outputs, then one by one:
/// each block's psums held in registers over the piece's inputs.
#[inline(always)]
fn accumulate_blocks<A: Accumulator>(psums: &mut [A], weights: &[i16], inputs: &[i16]) {
    let width = psums.len();
    let mut o = accumulate_block::<A, 16>(psums, weights, inputs, 0);
    o = accumulate_block::<A, 8>(psums, weights, inputs, o);
    o = accumulate_block::<A, 4>(psums, weights, inputs, o);
    for (j, p) in psums.iter_mut().enumerate().skip(o) {
        let mut acc = *p;
        for (e, &x) in inputs.iter().enumerate() {
            acc += A::from_product(i32::from(weights[e * width + j]) * i32::from(x));
        }
        *p = acc;
    }
}

/// Outputs `from..` of [`accumulate`] in blocks of `N` while a whole block
/// is left; returns the first output not done.
#[inline(always)]
fn accumulate_block<A: Accumulator, const N: usize>(
    psums: &mut [A],
    weights: &[i16],
    inputs: &[i16],
    from: usize,
) -> usize {
    let width = psums.len();
    let mut o = from;
    while o + N <= width {
        let block = &mut psums[o..o + N];
        let mut acc = [A::default(); N];
        acc.copy_from_slice(block);
        for (e, &x) in inputs.iter().enumerate() {
            let row = &weights[e * width + o..e * width + o + N];
            let x = i32::from(x);
            for (a, &w) in acc.iter_mut().zip(row) {
                *a += A::from_product(i32::from(w) * x);
            }
        }
        block.copy_from_slice(&acc);
        o += N;
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::{Component, Cycle, Timing, advance};

    #[test]
    fn the_pe_array_finishes_with_its_slowest_pe_either_way() {
        for timing in [Timing::Cycle, Timing::Event] {
            let mut a = PeArray::new(4);
            a.start([(0, 3), (2, 7), (3, 0)]);
            assert!(!a.take_finished());
            let mut now = Cycle(10);
            let mut seen = Vec::new();
            while let Some(next) = advance(timing, now, &mut [&mut a as &mut dyn Component]) {
                if a.take_finished() {
                    seen.push(next);
                }
                now = next;
            }
            // Busy in cycles 10..17: finished as cycle 17 begins.
            assert_eq!(seen, [Cycle(17)]);
            assert_eq!(a.busy_cycles(), [3, 0, 7, 0]);
            assert!(a.idle());
            // A step without cycles is over at once.
            a.start([(1, 0)]);
            assert!(a.take_finished());
        }
    }

    /// Runs `steps` back to back, each started as the last one finished:
    /// the cycles the steps finished and each PE's busy cycles.
    fn run_steps(timing: Timing, steps: &[Vec<(usize, u64)>]) -> (Vec<Cycle>, Vec<u64>) {
        let mut a = PeArray::new(8);
        let mut now = Cycle(0);
        let mut ends = Vec::new();
        for work in steps {
            a.start(work.iter().copied());
            if a.take_finished() {
                ends.push(now);
                continue;
            }
            while let Some(next) = advance(timing, now, &mut [&mut a as &mut dyn Component]) {
                now = next;
                if a.take_finished() {
                    ends.push(now);
                    break;
                }
            }
        }
        (ends, a.busy_cycles().to_vec())
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(300))]
        #[test]
        fn stepped_and_skipped_pe_arrays_agree(
            steps in proptest::collection::vec(
                proptest::collection::vec((0usize..8, 0u64..50), 0..8), 1..10),
        ) {
            let steps: Vec<Vec<(usize, u64)>> = steps
                .into_iter()
                .map(|mut w| { w.sort_unstable(); w.dedup_by_key(|p| p.0); w })
                .collect();
            let (ends, busy) = run_steps(Timing::Cycle, &steps);
            proptest::prop_assert_eq!((&ends, &busy), (&run_steps(Timing::Event, &steps).0, &run_steps(Timing::Event, &steps).1));
            // Each step lasts as long as its slowest PE.
            let mut t = 0;
            for (work, end) in steps.iter().zip(&ends) {
                t += work.iter().map(|p| p.1).max().unwrap_or(0);
                proptest::prop_assert_eq!(end.get(), t);
            }
        }
    }

    /// `psums[o] += sum_e weights[e * width + o] * inputs[e]`, one product
    /// at a time in `i64`.
    fn plain(psums: &[i64], weights: &[i16], inputs: &[i16]) -> Vec<i64> {
        let width = psums.len();
        (0..width)
            .map(|o| {
                let mut acc = psums[o];
                for (e, &x) in inputs.iter().enumerate() {
                    acc += i64::from(weights[e * width + o]) * i64::from(x);
                }
                acc
            })
            .collect()
    }

    proptest::proptest! {
        /// Block by block or element by element, at any width and piece
        /// length (both sides of `BLOCK_PIECE`), the sums are the plain
        /// loop's: `i64` over the whole operand range, `i32` where its sums
        /// fit.
        #[test]
        fn accumulate_matches_the_plain_loop(
            width in 0usize..70,
            len in 0usize..=(BLOCK_PIECE + 3),
            seed in proptest::collection::vec(proptest::num::i16::ANY, 1..64),
        ) {
            let pick = |i: usize| seed[i % seed.len()];
            let weights: Vec<i16> = (0..width * len).map(|i| pick(i * 7 + 3)).collect();
            let inputs: Vec<i16> = (0..len).map(|i| pick(i * 5 + 1)).collect();
            let start: Vec<i64> = (0..width).map(|o| i64::from(pick(o)) << 20).collect();
            let mut wide = start.clone();
            accumulate(&mut wide, &weights, &inputs);
            proptest::prop_assert_eq!(&wide, &plain(&start, &weights, &inputs));
            // 10-bit operands: at most 15 products of 2^18 and a 2^25 start.
            let small = |v: i16| v >> 6;
            let weights: Vec<i16> = weights.iter().map(|&w| small(w)).collect();
            let inputs: Vec<i16> = inputs.iter().map(|&x| small(x)).collect();
            let start: Vec<i64> = (0..width).map(|o| i64::from(pick(o)) << 9).collect();
            let mut narrow: Vec<i32> = start.iter().map(|&v| v as i32).collect();
            accumulate(&mut narrow, &weights, &inputs);
            let narrow: Vec<i64> = narrow.into_iter().map(i64::from).collect();
            proptest::prop_assert_eq!(narrow, plain(&start, &weights, &inputs));
        }
    }

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
