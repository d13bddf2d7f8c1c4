//! A layer's schedule on the PE array, as plain data: the order of its
//! steps and which input rows each pass reads. The array controller
//! (`engine::array`) executes it; the schedule check (`engine::feasibility`)
//! sizes the GLB from it.
//!
//! ```text
//!   for pass (a group of output positions, one per PE row)
//!     for sub-pass (the output channels the psum RF holds at once)
//!       for piece (the input elements the input RF holds at once)
//!         step: deliver the piece's inputs (and weights), compute
//! ```

use std::collections::HashMap;
use std::ops::Range;

use super::ArrayPlan;

/// One step of the array: a piece of a sub-pass of a pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StepId {
    pub pass: usize,
    pub subpass: usize,
    pub piece: usize,
}

/// The steps of a layer in execution order and the input rows they read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    pub steps: Vec<StepId>,
    /// Input rows each pass reads.
    pub rows_of_pass: Vec<Range<usize>>,
    /// The first and the last pass that read each input row
    /// (`usize::MAX` and 0 for a row no pass reads).
    pub row_first_pass: Vec<usize>,
    pub row_last_pass: Vec<usize>,
    /// The index in `steps` of the first step of each (pass, sub-pass).
    first_step: HashMap<(usize, usize), usize>,
}

impl Schedule {
    /// The schedule of `plan` over an input of `height` rows read through a
    /// kernel of `kernel_height` rows at `stride_height`, `pad_top` rows of
    /// padding above.
    pub fn new(
        plan: &ArrayPlan,
        kernel_height: usize,
        stride_height: usize,
        pad_top: usize,
        height: usize,
    ) -> Schedule {
        let mut steps = Vec::new();
        let mut first_step = HashMap::new();
        for pass in 0..plan.passes() {
            for subpass in 0..plan.subpasses {
                first_step.insert((pass, subpass), steps.len());
                for piece in 0..plan.steps(subpass) {
                    steps.push(StepId {
                        pass,
                        subpass,
                        piece,
                    });
                }
            }
        }
        let rows_of_pass = pass_rows(plan, kernel_height, stride_height, pad_top, height);
        let mut row_first_pass = vec![usize::MAX; height];
        let mut row_last_pass = vec![0; height];
        for (p, rows) in rows_of_pass.iter().enumerate() {
            for y in rows.clone() {
                row_first_pass[y] = row_first_pass[y].min(p);
                row_last_pass[y] = p;
            }
        }
        Schedule {
            steps,
            rows_of_pass,
            row_first_pass,
            row_last_pass,
            first_step,
        }
    }

    /// The step of pass 0 that computes what `step` computes (the same
    /// sub-pass and piece): later passes reuse its weights.
    pub fn first_pass_twin(&self, step: StepId) -> usize {
        self.first_step[&(0, step.subpass)] + step.piece
    }

    /// The most input rows one pass reads.
    pub fn max_pass_rows(&self) -> usize {
        self.rows_of_pass.iter().map(|r| r.len()).max().unwrap_or(0)
    }
}

/// The input rows each pass of `plan` reads (all of them for an FC layer).
pub fn pass_rows(
    plan: &ArrayPlan,
    kernel_height: usize,
    stride_height: usize,
    pad_top: usize,
    height: usize,
) -> Vec<Range<usize>> {
    (0..plan.passes())
        .map(|p| {
            if !plan.rows_are_positions {
                return 0..height;
            }
            let n = plan.positions_per_pass.max(1);
            let start = (p * n).min(plan.positions.len());
            let positions = &plan.positions[start..(start + n).min(plan.positions.len())];
            let ys = positions.iter().map(|&(y, _)| y);
            let lo = ys.clone().min().unwrap_or(0) * stride_height;
            let hi = ys.max().unwrap_or(0) * stride_height + kernel_height;
            lo.saturating_sub(pad_top).min(height)..hi.saturating_sub(pad_top).min(height)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mapping::{Element, Lane};

    #[test]
    fn steps_run_pass_then_subpass_then_piece_and_rows_follow_the_positions() {
        // Four output rows, two per pass; a 3-row kernel at stride 1 with one
        // row of padding over a 4-row input; one lane, two sub-passes, of
        // two and one pieces.
        let e = Element {
            channel: 0,
            ky: 0,
            kx: 0,
        };
        let plan = ArrayPlan {
            positions: vec![(0, 0), (1, 0), (2, 0), (3, 0)],
            positions_per_pass: 2,
            rows_are_positions: true,
            lanes: vec![Lane {
                pes: vec![0, 1],
                subpasses: vec![0..1, 1..2],
                piece_list: vec![0, 1],
            }],
            piece_lists: vec![vec![vec![e], vec![e]], vec![vec![e]]],
            piece_capacity: 1,
            rf_buffers: 2,
            subpasses: 2,
        };
        let s = Schedule::new(&plan, 3, 1, 1, 4);
        let order: Vec<(usize, usize, usize)> = s
            .steps
            .iter()
            .map(|t| (t.pass, t.subpass, t.piece))
            .collect();
        assert_eq!(
            order,
            [
                (0, 0, 0),
                (0, 0, 1),
                (0, 1, 0),
                (1, 0, 0),
                (1, 0, 1),
                (1, 1, 0)
            ]
        );
        // Pass 0 computes output rows 0 and 1: input rows -1..=2, clipped.
        assert_eq!(s.rows_of_pass, [0..3, 1..4]);
        assert_eq!(s.row_first_pass, [0, 0, 0, 1]);
        assert_eq!(s.row_last_pass, [0, 1, 1, 1]);
        assert_eq!(s.first_pass_twin(s.steps[4]), 1);
        assert_eq!(s.max_pass_rows(), 3);
    }
}
