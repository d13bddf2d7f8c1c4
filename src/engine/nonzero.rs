//! The MACs with both operands non-zero that each computing PE makes in a
//! step (the rest are zero-operand MACs, cheaper in the `[mac]` model):
//! for a lane group, per receiving row the group's inputs, per lane its
//! columns' weights.
//!
//! A lane group keeps, per element of its pieces and per lane, how many of
//! the lane's columns have a non-zero weight (`[element][lane]`). A PE's
//! count is then that row of the table summed over its row's non-zero
//! inputs. The sum is taken without a branch per input (a mask instead:
//! the inputs are zero about half the time, too often to predict), lanes
//! side by side in registers.

use super::piece_reader::RowDelivery;

/// One step's non-zero MAC counts of a lane group, and per lane over its
/// computing PEs their sum, the fewest and the most (a PE's busy cycles
/// are linear in its count: the slowest PE has the most or the fewest).
#[derive(Default)]
pub(super) struct NonzeroMacs {
    lanes: usize,
    /// Per receiving row, per lane: one PE's count (`[row][lane]`).
    per_pe: Vec<u32>,
    sum: Vec<u64>,
    fewest: Vec<u32>,
    most: Vec<u32>,
    /// Per receiving row, per input: all ones when non-zero, else 0.
    masks: Vec<u32>,
}

/// What [`NonzeroMacs::count`] counts.
struct Step<'a> {
    table: &'a [u32],
    rows: &'a [RowDelivery],
    lane_pes: &'a [usize],
    rows_are_positions: bool,
}

/// A lane's counts over its computing PEs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct LaneNonzero {
    pub sum: u64,
    pub fewest: u64,
    pub most: u64,
}

impl NonzeroMacs {
    /// Counts a step of a lane group of `lane_pes.len()` lanes: `table`
    /// is its `[element][lane]` table over the step's piece, `rows` the
    /// receiving rows' buffers (centred inputs: 0 is a zero operand). With
    /// `rows_are_positions` lane `l`'s PE `k` takes row `k`, for the first
    /// `lane_pes[l]` rows; else (FC) all its `lane_pes[l]` PEs take row 0.
    pub(super) fn count(
        &mut self,
        table: &[u32],
        rows: &[RowDelivery],
        lane_pes: &[usize],
        rows_are_positions: bool,
    ) {
        let lanes = lane_pes.len();
        self.lanes = lanes;
        self.per_pe.clear();
        self.per_pe.resize(rows.len() * lanes, 0);
        self.sum.clear();
        self.sum.resize(lanes, 0);
        self.fewest.clear();
        self.fewest.resize(lanes, u32::MAX);
        self.most.clear();
        self.most.resize(lanes, 0);
        // Per row and element, all ones for a non-zero input. Made opaque:
        // seeing where they come from, the compiler branches around the
        // adds, on inputs that are zero half the time.
        self.masks.clear();
        for row in rows {
            let masks = row
                .values
                .iter()
                .map(|&v| 0u32.wrapping_sub(u32::from(v != 0)));
            self.masks.extend(masks);
        }
        std::hint::black_box(self.masks.as_mut_slice());
        let step = Step {
            table,
            rows,
            lane_pes,
            rows_are_positions,
        };
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2, checked just above.
            unsafe { self.count_avx2(&step) };
            return;
        }
        self.count_all(&step);
    }

    /// [`Self::count_all`] compiled for AVX2: eight lanes to a register.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn count_avx2(&mut self, step: &Step<'_>) {
        self.count_all(step);
    }

    /// The lanes eight, four, then one at a time.
    #[inline(always)]
    fn count_all(&mut self, step: &Step<'_>) {
        let l = self.count_lanes::<8>(step, 0);
        let l = self.count_lanes::<4>(step, l);
        self.count_lanes::<1>(step, l);
    }

    /// Lanes `from..` in blocks of `N` while a whole block is left, each
    /// block's counts held in registers over the rows; returns the first
    /// lane not done.
    #[inline(always)]
    fn count_lanes<const N: usize>(&mut self, step: &Step<'_>, from: usize) -> usize {
        let lanes = step.lane_pes.len();
        let mut l = from;
        while l + N <= lanes {
            let mut pes = [0usize; N];
            pes.copy_from_slice(&step.lane_pes[l..l + N]);
            let (mut sum, mut fewest, mut most) = ([0u64; N], [u32::MAX; N], [0u32; N]);
            for (r, row) in step.rows.iter().enumerate() {
                let mut counts = [0u32; N];
                let len = row.values.len();
                let masks = &self.masks[r * len..(r + 1) * len];
                for (e, &mask) in masks.iter().enumerate() {
                    let per_lane = &step.table[e * lanes + l..e * lanes + l + N];
                    for (c, &n) in counts.iter_mut().zip(per_lane) {
                        *c += n & mask;
                    }
                }
                self.per_pe[r * lanes + l..r * lanes + l + N].copy_from_slice(&counts);
                for j in 0..N {
                    // FC: every PE of the lane takes this (the one) row.
                    let (computing, times) = if step.rows_are_positions {
                        (r < pes[j], 1)
                    } else {
                        (pes[j] > 0, pes[j] as u64)
                    };
                    let c = counts[j];
                    sum[j] += if computing { u64::from(c) * times } else { 0 };
                    fewest[j] = if computing {
                        fewest[j].min(c)
                    } else {
                        fewest[j]
                    };
                    most[j] = if computing { most[j].max(c) } else { most[j] };
                }
            }
            self.sum[l..l + N].copy_from_slice(&sum);
            self.fewest[l..l + N].copy_from_slice(&fewest);
            self.most[l..l + N].copy_from_slice(&most);
            l += N;
        }
        l
    }

    /// Lane `l`'s counts over its computing PEs (the fewest is `u64::MAX`
    /// when none computes).
    pub(super) fn lane(&self, l: usize) -> LaneNonzero {
        let fewest = match self.fewest[l] {
            u32::MAX => u64::MAX,
            f => u64::from(f),
        };
        LaneNonzero {
            sum: self.sum[l],
            fewest,
            most: u64::from(self.most[l]),
        }
    }

    /// The count of lane `l`'s PE in receiving row `row`.
    pub(super) fn pe(&self, row: usize, l: usize) -> u64 {
        u64::from(self.per_pe[row * self.lanes + l])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_sum_the_table_over_non_zero_inputs() {
        // Two lanes, three elements: [element][lane].
        let table = [2, 1, 0, 3, 4, 4];
        let rows: Vec<RowDelivery> = [vec![5, 0, -1], vec![0, 0, 0], vec![1, 1, 1]]
            .into_iter()
            .map(|values| RowDelivery {
                values,
                ..RowDelivery::default()
            })
            .collect();
        let mut n = NonzeroMacs::default();
        // Lane 0 has three PEs, lane 1 two: row 2 counts for lane 0 only.
        n.count(&table, &rows, &[3, 2], true);
        assert_eq!((n.pe(0, 0), n.pe(0, 1)), (6, 5));
        assert_eq!((n.pe(1, 0), n.pe(1, 1)), (0, 0));
        assert_eq!((n.pe(2, 0), n.pe(2, 1)), (6, 8));
        let lane = |sum, fewest, most| LaneNonzero { sum, fewest, most };
        assert_eq!(n.lane(0), lane(12, 0, 6));
        assert_eq!(n.lane(1), lane(5, 0, 5));
        // FC: every PE of a lane takes row 0; a lane without PEs counts none.
        n.count(&table, &rows[..1], &[4, 0], false);
        assert_eq!(n.lane(0), lane(24, 6, 6));
        assert_eq!(n.lane(1), lane(0, u64::MAX, 0));
    }
}
