//! A layer's schedule on the PE array, as plain data: the loop order of
//! its steps and which input rows each step reads. The array controller
//! (`engine::array`) executes it; the schedule check (`engine::feasibility`)
//! sizes the GLB from it.
//!
//! ```text
//!   pass-major (LoopOrder::PassMajor)      weight-tile-major (LoopOrder::WeightTileMajor)
//!   for pass                               for tile (sub-passes whose weights the GLB holds)
//!     for sub-pass                           for pass
//!       for piece                              for sub-pass of the tile
//!         step                                   for piece
//!                                                  step
//! ```
//!
//! A **visit** is one (tile, pass) in order; pass-major has one tile, so
//! its visits are its passes. Input rows are fetched for and freed after
//! visits: a row leaves the GLB after its last visit, and in the
//! tile-major order with [`InputReuse::Refetch`] also after its last visit
//! of each tile when its next use is not the very next visit (it is
//! fetched again from DRAM for the next tile).

use std::collections::HashMap;
use std::ops::Range;

use super::ArrayPlan;

/// The order of a layer's loops (docs/mapping.md, "The schedule space").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LoopOrder {
    /// Pass outer, then sub-pass, then piece: each pass runs every sub-pass.
    PassMajor,
    /// Weight tile outer (a group of sub-passes), then pass, then sub-pass
    /// of the tile, then piece: a tile's weights are read from DRAM once
    /// and re-read from the GLB by every pass.
    WeightTileMajor,
}

impl LoopOrder {
    /// The name used in reports and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            LoopOrder::PassMajor => "pass_major",
            LoopOrder::WeightTileMajor => "weight_tile_major",
        }
    }
}

/// What happens to input rows between the tiles of a tile-major schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum InputReuse {
    /// Rows stay in the GLB from their first use to their last (every tile).
    Keep,
    /// Rows leave after their last use in each tile and are fetched from
    /// DRAM again by the next tile (written back first when DRAM has no copy).
    Refetch,
}

impl InputReuse {
    pub fn name(self) -> &'static str {
        match self {
            InputReuse::Keep => "glb",
            InputReuse::Refetch => "dram",
        }
    }
}

/// A point of a layer's schedule space: the loop order, the output-channel
/// tiles per lane and what becomes of input rows between tiles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ScheduleChoice {
    pub order: LoopOrder,
    pub tiles: usize,
    pub inputs: InputReuse,
}

impl ScheduleChoice {
    /// Today's order: every pass runs every sub-pass.
    pub const PASS_MAJOR: ScheduleChoice = ScheduleChoice {
        order: LoopOrder::PassMajor,
        tiles: 1,
        inputs: InputReuse::Keep,
    };

    /// `pass_major`, `weight_tile_major/T/glb` or `weight_tile_major/T/dram`.
    pub fn label(&self) -> String {
        match self.order {
            LoopOrder::PassMajor => self.order.name().to_string(),
            LoopOrder::WeightTileMajor => {
                format!(
                    "{}/{}/{}",
                    self.order.name(),
                    self.tiles,
                    self.inputs.name()
                )
            }
        }
    }
}

/// One step of the array: a piece of a sub-pass of a pass, in a visit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StepId {
    pub pass: usize,
    pub subpass: usize,
    pub piece: usize,
    /// The (tile, pass) visit the step belongs to, in execution order.
    pub visit: usize,
}

/// The steps of a layer in execution order and the input rows they read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    pub order: LoopOrder,
    pub inputs: InputReuse,
    pub steps: Vec<StepId>,
    /// Input rows each pass reads.
    pub rows_of_pass: Vec<Range<usize>>,
    /// The pass of each visit.
    pub visit_pass: Vec<usize>,
    /// The visits that read each input row, in order.
    pub row_visits: Vec<Vec<usize>>,
    /// The visits after which each input row leaves the GLB.
    pub row_releases: Vec<Vec<usize>>,
    /// The first and the last visit that read each input row
    /// (`usize::MAX` and 0 for a row no visit reads).
    pub row_first_visit: Vec<usize>,
    pub row_last_visit: Vec<usize>,
    /// The index in `steps` of the first step of each (pass, sub-pass).
    first_step: HashMap<(usize, usize), usize>,
}

impl Schedule {
    /// The pass-major schedule of `plan` over an input of `height` rows
    /// read through a kernel of `kernel_height` rows at `stride_height`,
    /// `pad_top` rows of padding above.
    pub fn new(
        plan: &ArrayPlan,
        kernel_height: usize,
        stride_height: usize,
        pad_top: usize,
        height: usize,
    ) -> Schedule {
        let rows = pass_rows(plan, kernel_height, stride_height, pad_top, height);
        Schedule::ordered(plan, ScheduleChoice::PASS_MAJOR, rows, height)
    }

    /// The schedule of `plan` in `choice`'s loop order (its tiles are the
    /// plan's), each pass reading `rows_of_pass`.
    pub fn ordered(
        plan: &ArrayPlan,
        choice: ScheduleChoice,
        rows_of_pass: Vec<Range<usize>>,
        height: usize,
    ) -> Schedule {
        let passes = plan.passes();
        let visits: Vec<(usize, usize)> = match choice.order {
            LoopOrder::PassMajor => (0..passes).map(|p| (0, p)).collect(),
            LoopOrder::WeightTileMajor => (0..plan.tiles())
                .flat_map(|t| (0..passes).map(move |p| (t, p)))
                .collect(),
        };
        let mut steps = Vec::new();
        let mut first_step = HashMap::new();
        // The pass of each visit; a (tile, pass) without steps (a tile
        // whose sub-passes are all empty) is no visit.
        let mut visit_pass = Vec::new();
        for &(tile, pass) in &visits {
            let subpasses = match choice.order {
                LoopOrder::PassMajor => 0..plan.subpasses,
                LoopOrder::WeightTileMajor => plan.tile_subpasses(tile),
            };
            let (visit, before) = (visit_pass.len(), steps.len());
            for subpass in subpasses {
                first_step.insert((pass, subpass), steps.len());
                for piece in 0..plan.steps(subpass) {
                    steps.push(StepId {
                        pass,
                        subpass,
                        piece,
                        visit,
                    });
                }
            }
            if steps.len() > before || choice.order == LoopOrder::PassMajor {
                visit_pass.push(pass);
            }
        }
        let mut row_visits = vec![Vec::new(); height];
        for (v, &p) in visit_pass.iter().enumerate() {
            for y in rows_of_pass[p].clone() {
                row_visits[y].push(v);
            }
        }
        let refetch =
            choice.order == LoopOrder::WeightTileMajor && choice.inputs == InputReuse::Refetch;
        let row_releases = row_visits
            .iter()
            .map(|uses| releases(uses, refetch))
            .collect();
        Schedule {
            order: choice.order,
            inputs: choice.inputs,
            steps,
            row_first_visit: row_visits
                .iter()
                .map(|u| u.first().copied().unwrap_or(usize::MAX))
                .collect(),
            row_last_visit: row_visits
                .iter()
                .map(|u| u.last().copied().unwrap_or(0))
                .collect(),
            rows_of_pass,
            visit_pass,
            row_visits,
            row_releases,
            first_step,
        }
    }

    /// The number of visits.
    pub fn visits(&self) -> usize {
        self.visit_pass.len()
    }

    /// The input rows visit `v` reads.
    pub fn rows_of_visit(&self, v: usize) -> Range<usize> {
        self.visit_pass
            .get(v)
            .map_or(0..0, |&p| self.rows_of_pass[p].clone())
    }

    /// The first visit at or after `from` that reads row `y`.
    pub fn next_use(&self, y: usize, from: usize) -> Option<usize> {
        let uses = &self.row_visits[y];
        uses.get(uses.partition_point(|&v| v < from)).copied()
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

/// The visits after which a row read at `uses` (in order) leaves the GLB:
/// its last; with `refetch` also every use whose next one is not the very
/// next visit.
fn releases(uses: &[usize], refetch: bool) -> Vec<usize> {
    let mut out = Vec::new();
    for (i, &v) in uses.iter().enumerate() {
        match uses.get(i + 1) {
            None => out.push(v),
            Some(&next) if refetch && next > v + 1 => out.push(v),
            _ => {}
        }
    }
    out
}

/// Weight (and bias) words each step of `plan` sends, per sub-pass and
/// piece, from the plan alone (no weight values): the columns of each lane
/// that use the piece times its length, plus each lane's biases with the
/// first piece. `groups`, `icg` and `ocg`: the layer's channel groups and
/// input and output channels per group.
pub fn step_weight_words(plan: &ArrayPlan, groups: usize, icg: usize, ocg: usize) -> Vec<Vec<u64>> {
    (0..plan.subpasses)
        .map(|q| {
            let mut per_step = vec![0u64; plan.steps(q)];
            for lanes in plan.lane_sets(q, groups) {
                let list = &plan.piece_lists[plan.lanes[lanes[0]].piece_list[q]];
                let (outputs, lane_columns) = plan.set_columns(q, &lanes);
                for (k, piece) in list.iter().enumerate() {
                    let Range { start: lo, end: hi } =
                        super::piece_columns(piece, &outputs, icg, ocg);
                    let len = piece.len() as u64;
                    for (i, &l) in lanes.iter().enumerate() {
                        let c = &lane_columns[i];
                        let width = c.end.min(hi).saturating_sub(c.start.max(lo)) as u64;
                        per_step[k] += width * len;
                        if k == 0 {
                            per_step[k] += plan.lanes[l].subpasses[q].len() as u64;
                        }
                    }
                }
            }
            per_step
        })
        .collect()
}

/// The weight words of each tile of `plan` (every step of its sub-passes
/// once), from [`step_weight_words`].
pub fn tile_weight_words(plan: &ArrayPlan, per_step: &[Vec<u64>]) -> Vec<u64> {
    (0..plan.tiles())
        .map(|t| {
            plan.tile_subpasses(t)
                .map(|q| per_step[q].iter().sum::<u64>())
                .sum()
        })
        .collect()
}

/// What the schedule rule knows of a layer as it starts (words unless the
/// name says bytes): the GLB room it may use and where its input is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LayerState {
    pub passes: u64,
    /// GLB bytes free plus the bytes the layer's own input rows hold.
    pub room_bytes: u64,
    pub input_bytes: u64,
    pub input_words: u64,
    /// Input words not in the GLB (every order reads them from DRAM once).
    pub input_dram_words: u64,
    /// Input words in the GLB without a DRAM copy (a refetch writes them back).
    pub input_glb_only_words: u64,
    /// Two passes' input rows (the prefetcher's room).
    pub two_passes_bytes: u64,
    pub output_bytes: u64,
    pub output_word_bytes: u64,
    /// Whether no later layer reads the input (rows may leave the GLB).
    pub last_reader: bool,
}

/// A plan's weights as the rule sees them: per pass-major run, or per tile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WeightFit {
    /// Weight and bias words of the layer.
    pub words: u64,
    /// GLB bytes the weights hold for the layer: the pass-major staging
    /// buffer, or the largest tile plus the lookahead.
    pub glb_bytes: u64,
    /// Pass-major only: whether the weights stream from DRAM every pass.
    pub every_pass: bool,
}

/// The DRAM words the rule expects `choice` to move (weights, input, and
/// output rows that find no GLB room, written and read back by the next
/// layer), or `None` when it does not fit `state`'s room. An estimate
/// (docs/mapping.md, "The schedule space"): the engine counts the real words.
pub fn dram_words_estimate(
    state: &LayerState,
    choice: &ScheduleChoice,
    w: &WeightFit,
) -> Option<u64> {
    let spill = |held_bytes: u64| {
        let free = state.room_bytes.saturating_sub(held_bytes);
        2 * state.output_bytes.saturating_sub(free) / state.output_word_bytes.max(1)
    };
    match (choice.order, choice.inputs) {
        (LoopOrder::PassMajor, _) => {
            let weights = if w.every_pass {
                w.words * state.passes
            } else {
                w.words
            };
            Some(weights + state.input_dram_words + spill(state.two_passes_bytes + w.glb_bytes))
        }
        (LoopOrder::WeightTileMajor, InputReuse::Keep) => {
            let held = state.input_bytes + w.glb_bytes;
            (held <= state.room_bytes).then(|| w.words + state.input_dram_words + spill(held))
        }
        (LoopOrder::WeightTileMajor, InputReuse::Refetch) => {
            let held = state.two_passes_bytes + w.glb_bytes;
            let again = (choice.tiles as u64).saturating_sub(1) * state.input_words;
            (state.last_reader && held <= state.room_bytes).then(|| {
                w.words + state.input_dram_words + again + state.input_glb_only_words + spill(held)
            })
        }
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
            subpasses_per_tile: 2,
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
        assert_eq!(s.row_first_visit, [0, 0, 0, 1]);
        assert_eq!(s.row_last_visit, [0, 1, 1, 1]);
        assert_eq!(s.row_releases, [vec![0], vec![1], vec![1], vec![1]]);
        assert_eq!(s.first_pass_twin(s.steps[4]), 1);
        assert_eq!(s.max_pass_rows(), 3);
    }

    #[test]
    fn tile_major_runs_every_pass_per_tile_and_refetches_rows_between_tiles() {
        // Three passes of one output row each over a 1-row kernel; two
        // tiles of one sub-pass each, one piece per sub-pass.
        let e = Element {
            channel: 0,
            ky: 0,
            kx: 0,
        };
        let plan = ArrayPlan {
            positions: vec![(0, 0), (1, 0), (2, 0)],
            positions_per_pass: 1,
            rows_are_positions: true,
            lanes: vec![Lane {
                pes: vec![0],
                subpasses: vec![0..1, 1..2],
                piece_list: vec![0, 0],
            }],
            piece_lists: vec![vec![vec![e]]],
            piece_capacity: 1,
            rf_buffers: 2,
            subpasses: 2,
            subpasses_per_tile: 1,
        };
        let rows = pass_rows(&plan, 1, 1, 0, 3);
        let choice = |inputs| ScheduleChoice {
            order: LoopOrder::WeightTileMajor,
            tiles: 2,
            inputs,
        };
        let s = Schedule::ordered(&plan, choice(InputReuse::Refetch), rows.clone(), 3);
        let order: Vec<(usize, usize, usize)> = s
            .steps
            .iter()
            .map(|t| (t.visit, t.pass, t.subpass))
            .collect();
        assert_eq!(
            order,
            [
                (0, 0, 0),
                (1, 1, 0),
                (2, 2, 0),
                (3, 0, 1),
                (4, 1, 1),
                (5, 2, 1)
            ]
        );
        assert_eq!(s.row_visits, [vec![0, 3], vec![1, 4], vec![2, 5]]);
        // Row 2's uses (2, then 5) are 3 visits apart: it leaves and comes back.
        assert_eq!(s.row_releases, [vec![0, 3], vec![1, 4], vec![2, 5]]);
        assert_eq!(s.next_use(0, 1), Some(3));
        assert_eq!(s.first_pass_twin(s.steps[4]), 3);
        // Kept rows leave after their last visit only.
        let s = Schedule::ordered(&plan, choice(InputReuse::Keep), rows, 3);
        assert_eq!(s.row_releases, [vec![3], vec![4], vec![5]]);
        assert_eq!(s.row_last_visit, [3, 4, 5]);
        assert_eq!(choice(InputReuse::Keep).label(), "weight_tile_major/2/glb");
    }
}
