//! Cycles by cause: why the PE array was not computing.
//!
//! The array advances in lock-step, one step (a piece of every active PE's
//! dot products) after another; a step starts when all of these hold:
//!
//! ```text
//!   input rows of the pass ──requested──► DRAM ──arrived──► GLB write ──ready─┐
//!   weights of the step   ──requested──► DRAM ──arrived──► GLB write ──ready─┤
//!                                                                             ▼
//!   the step is issued (`now`) ──GLB read grant──► input / weight bus ──► RFs ─┐
//!   previous step's compute done ─────────────────────────────────────────────┤
//!   psum RF room (earlier sub-passes gone onto the output bus) ───────────────┴► start
//! ```
//!
//! The gap between the previous step's compute end and this step's start is
//! split along that chain from the start backwards (the critical path): the
//! psum-RF wait, then the bus transfer of whichever operand arrived last,
//! the wait for its GLB read grant, and before the step could be issued, the
//! GLB write of the binding row (or weights), its DRAM read, and before that
//! the wait for the request itself (GLB space, or the prefetcher's one-pass
//! lookahead). Each PE-cycle of a layer is then busy, waiting for the step's
//! slowest PE, fill, drain, one of these waits, or unused by the layer
//! ([`super::stats::PeCycles`]).

use std::ops::Range;

use crate::sim::Cycle;

/// A named reason the array was not computing between two steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wait {
    /// The binding input row was not requested yet: the prefetcher works
    /// one pass ahead (or, for weights, a fixed number of steps ahead).
    Prefetch,
    /// The binding input row was not requested yet because the GLB had no
    /// room for it.
    GlbSpace,
    /// The binding input row was on its way from DRAM.
    InputDram,
    /// The step's weights were on their way from DRAM.
    WeightDram,
    /// Waiting for a GLB port: the binding row's or weights' write into the
    /// GLB, or the step's read grant.
    GlbPort,
    /// The step's input words on the input bus and neighbour links.
    InputBus,
    /// The step's weights on the weight bus.
    WeightBus,
    /// The psum RF was full: earlier sub-passes' sums had not yet left on
    /// the output bus.
    PsumSpace,
    /// A DRAM write-queue entry: the binding input row was not requested
    /// yet because the row it evicts had to be written back and the write
    /// queue was full (the evicted row keeps its GLB space until its write
    /// is accepted), or the step ends a sub-pass whose outputs may go to
    /// DRAM and waited for the entry its drain claims.
    DramWrite,
}

impl Wait {
    pub(crate) const COUNT: usize = 9;

    /// The code the trace's `controller.stall_cause` signal shows for the
    /// wait (docs/traces.md): 3 to 10 in declaration order, and 12 for
    /// `DramWrite` (added after `TRACE_UNUSED`'s 11).
    pub(crate) fn trace_code(self) -> u64 {
        match self {
            Wait::DramWrite => 12,
            _ => 3 + self as u64,
        }
    }
}

/// `controller.stall_cause` while the array computes (lock-step waits included).
pub(crate) const TRACE_COMPUTING: u64 = 0;
/// ... before a layer's first computation.
pub(crate) const TRACE_FILL: u64 = 1;
/// ... after a layer's last computation so far (until the next step's waits).
pub(crate) const TRACE_DRAIN: u64 = 2;
/// ... during a layer that leaves the whole array unused (the GLB unit's).
pub(crate) const TRACE_UNUSED: u64 = 11;

/// When a piece of data the array waits for was requested and when it
/// arrived from DRAM (equal when it needed no DRAM read).
#[derive(Debug, Clone, Copy)]
struct Arrival {
    requested: Cycle,
    from_dram: Cycle,
    /// Why it was not requested earlier: the fetcher held back for GLB
    /// room (`GlbSpace`), for a free DRAM read-queue entry (`InputDram`,
    /// `WeightDram`) or for the write-queue entry of an eviction's
    /// write-back (`DramWrite`); `Prefetch` when it was simply not due yet.
    held_back: Wait,
}

impl Default for Arrival {
    fn default() -> Self {
        Arrival {
            requested: Cycle::ZERO,
            from_dram: Cycle::ZERO,
            held_back: Wait::Prefetch,
        }
    }
}

/// The request and arrival times of a layer's input rows and staged weights.
#[derive(Debug, Default)]
pub(super) struct Arrivals {
    rows: Vec<Arrival>,
    weights: super::step_map::StepMap<Arrival>,
    /// Why the prefetcher stopped, while it has not caught up.
    rows_held_back: Option<Wait>,
    /// Why the weight fetcher stopped, while it has not caught up.
    weights_held_back: Option<Wait>,
}

impl Arrivals {
    /// Rows already in the GLB count as requested and arrived at `start`.
    pub(super) fn new(height: usize, start: Cycle) -> Arrivals {
        let at_start = Arrival {
            requested: start,
            from_dram: start,
            held_back: Wait::Prefetch,
        };
        Arrivals {
            rows: vec![at_start; height],
            ..Default::default()
        }
    }

    /// The prefetcher stopped for `why` (`GlbSpace`, `InputDram`,
    /// `DramWrite`), or
    /// completed its window (`None`).
    pub(super) fn rows_held_back(&mut self, why: Option<Wait>) {
        self.rows_held_back = why;
    }

    /// The weight fetcher stopped for a DRAM read-queue entry (`Some`), or
    /// caught up with its lookahead (`None`).
    pub(super) fn weights_held_back(&mut self, why: Option<Wait>) {
        self.weights_held_back = why;
    }

    /// Row `y` is requested now; what held the prefetcher back before it
    /// (if anything) explains the wait before the request.
    pub(super) fn row_requested(&mut self, y: usize, now: Cycle) {
        self.rows[y] = Arrival {
            requested: now,
            from_dram: now,
            held_back: self.rows_held_back.unwrap_or(Wait::Prefetch),
        };
    }

    pub(super) fn row_from_dram(&mut self, y: usize, now: Cycle) {
        self.rows[y].from_dram = now;
    }

    pub(super) fn weights_requested(&mut self, step: usize, now: Cycle) {
        let a = Arrival {
            requested: now,
            from_dram: now,
            held_back: self.weights_held_back.unwrap_or(Wait::Prefetch),
        };
        self.weights.insert(step, a);
    }

    pub(super) fn weights_from_dram(&mut self, step: usize, now: Cycle) {
        if let Some(a) = self.weights.get_mut(step) {
            a.from_dram = now;
        }
    }

    /// The step's weights have left the staging buffer.
    pub(super) fn weights_consumed(&mut self, step: usize) {
        self.weights.remove(step);
    }

    /// Why the step could not be issued earlier, latest first: the binding
    /// row (the pass's last to be ready) or the step's weights, whichever
    /// was ready last.
    pub(super) fn issue_chain(
        &self,
        rows: Range<usize>,
        row_ready: &[Option<Cycle>],
        weights: Option<(usize, Cycle)>,
        chain: &mut Vec<(Cycle, Wait)>,
    ) {
        let binding_row = rows
            .filter_map(|y| row_ready[y].map(|t| (t, y)))
            .max_by_key(|&(t, y)| (t, std::cmp::Reverse(y)));
        let row_t = binding_row.map_or(Cycle::ZERO, |(t, _)| t);
        match weights {
            Some((step, ready)) if ready > row_t => {
                let a = self.weights.get(step).copied().unwrap_or_default();
                chain.push((a.from_dram, Wait::GlbPort));
                chain.push((a.requested, Wait::WeightDram));
                chain.push((Cycle::ZERO, a.held_back));
            }
            _ => {
                let a = binding_row.map_or_else(Arrival::default, |(_, y)| self.rows[y]);
                chain.push((a.from_dram, Wait::GlbPort));
                chain.push((a.requested, Wait::InputDram));
                chain.push((Cycle::ZERO, a.held_back));
            }
        }
    }
}

/// The array's cycles without computation, by cause, as steps start.
#[derive(Debug, Default)]
pub(super) struct Ledger {
    waits: [u64; Wait::COUNT],
    /// The last gap's pieces, earliest first: (first cycle, cause).
    gap: Vec<(Cycle, Wait)>,
    /// The end of the last step that computed (`None`: still filling).
    cursor: Option<Cycle>,
    /// The chain's first mark was after the previous step's end: cycles no
    /// cause explains (an engine bug; the run refuses to report them).
    unexplained: u64,
}

impl Ledger {
    /// A step computes from `start` for `duration` cycles; `marks` say,
    /// latest first, from which cycle on each cause held it back. The gap
    /// since the previous step is split at the marks; a step with no
    /// computation leaves the gap to the next one that computes.
    pub(super) fn step(&mut self, start: Cycle, duration: u64, marks: &[(Cycle, Wait)]) {
        if duration == 0 {
            return;
        }
        self.gap.clear();
        if let Some(previous_end) = self.cursor {
            let mut hi = start;
            for &(from, cause) in marks {
                let lo = from.max(previous_end);
                if lo < hi {
                    self.waits[cause as usize] += hi.since(lo);
                    self.gap.push((lo, cause));
                    hi = lo;
                }
            }
            self.unexplained += hi.since(previous_end);
            self.gap.reverse();
        }
        self.cursor = Some(start + duration);
    }

    /// The pieces of the gap before the last step that computed, earliest
    /// first: (first cycle, cause).
    pub(super) fn last_gap(&self) -> &[(Cycle, Wait)] {
        &self.gap
    }

    /// The end of the last step that computed, once one has.
    pub(super) fn cursor(&self) -> Option<Cycle> {
        self.cursor
    }

    /// Cycles by cause, and the cycles no cause explained.
    pub(super) fn finish(&self) -> ([u64; Wait::COUNT], u64) {
        (self.waits, self.unexplained)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gap_is_split_at_the_marks_latest_first() {
        let mut l = Ledger::default();
        l.step(Cycle(10), 5, &[]); // the first compute: fill before it
        let marks = [
            (Cycle(30), Wait::PsumSpace),
            (Cycle(22), Wait::InputBus),
            (Cycle(20), Wait::GlbPort),
            (Cycle(12), Wait::InputDram),
            (Cycle::ZERO, Wait::Prefetch),
        ];
        l.step(Cycle(40), 3, &marks);
        let (waits, unexplained) = l.finish();
        assert_eq!(waits[Wait::PsumSpace as usize], 10);
        assert_eq!(waits[Wait::InputBus as usize], 8);
        assert_eq!(waits[Wait::GlbPort as usize], 2);
        assert_eq!(waits[Wait::InputDram as usize], 5);
        assert_eq!(waits[Wait::Prefetch as usize], 0);
        assert_eq!(waits.iter().sum::<u64>(), 40 - 15);
        assert_eq!(unexplained, 0);
        assert_eq!(
            l.last_gap(),
            &[
                (Cycle(15), Wait::InputDram),
                (Cycle(20), Wait::GlbPort),
                (Cycle(22), Wait::InputBus),
                (Cycle(30), Wait::PsumSpace),
            ]
        );
        assert_eq!(l.cursor(), Some(Cycle(43)));
    }

    #[test]
    fn marks_before_the_previous_end_are_clipped_and_steps_without_compute_pass_the_gap_on() {
        let mut l = Ledger::default();
        l.step(Cycle(0), 10, &[]);
        l.step(Cycle(12), 0, &[(Cycle::ZERO, Wait::WeightBus)]);
        l.step(Cycle(16), 4, &[(Cycle(5), Wait::GlbPort)]);
        let (waits, unexplained) = l.finish();
        assert_eq!(waits[Wait::GlbPort as usize], 6);
        assert_eq!(waits[Wait::WeightBus as usize], 0);
        assert_eq!(unexplained, 0);
    }

    #[test]
    fn a_gap_the_marks_do_not_reach_is_unexplained() {
        let mut l = Ledger::default();
        l.step(Cycle(0), 10, &[]);
        l.step(Cycle(20), 1, &[(Cycle(15), Wait::InputBus)]);
        assert_eq!(l.finish().1, 5);
    }

    #[test]
    fn the_binding_row_is_the_last_ready_and_its_times_make_the_chain() {
        let mut a = Arrivals::new(3, Cycle(0));
        a.rows_held_back(Some(Wait::GlbSpace));
        a.row_requested(1, Cycle(4));
        a.row_from_dram(1, Cycle(9));
        let ready = [Some(Cycle(0)), Some(Cycle(11)), Some(Cycle(3))];
        let mut chain = Vec::new();
        a.issue_chain(0..3, &ready, None, &mut chain);
        assert_eq!(
            chain,
            vec![
                (Cycle(9), Wait::GlbPort),
                (Cycle(4), Wait::InputDram),
                (Cycle::ZERO, Wait::GlbSpace),
            ]
        );
        a.weights_requested(7, Cycle(2));
        a.weights_from_dram(7, Cycle(13));
        chain.clear();
        a.issue_chain(0..3, &ready, Some((7, Cycle(14))), &mut chain);
        assert_eq!(
            chain,
            vec![
                (Cycle(13), Wait::GlbPort),
                (Cycle(2), Wait::WeightDram),
                (Cycle::ZERO, Wait::Prefetch),
            ]
        );
        // Weights whose fetcher held back for a DRAM read-queue entry: the
        // wait before their request is DRAM's too.
        a.weights_held_back(Some(Wait::WeightDram));
        a.weights_requested(8, Cycle(5));
        a.weights_from_dram(8, Cycle(13));
        chain.clear();
        a.issue_chain(0..3, &ready, Some((8, Cycle(14))), &mut chain);
        assert_eq!(chain[2], (Cycle::ZERO, Wait::WeightDram));
    }
}
