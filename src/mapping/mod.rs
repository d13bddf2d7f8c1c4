//! Mappings: which PE computes what, and in which order. Plain data, no
//! timing: the engine turns a plan into requests on the hardware.
//!
//! A dataflow implements [`Dataflow`]; today there is one, LU22's
//! ([`lu22::Lu22`], SPEC section 1, docs/mapping.md), chosen in one place
//! ([`dataflow_for`]), so other dataflows can be added as sibling modules.
//! [`ffe`] plans the fixed-weight feature extractor's pipeline stages
//! (SPEC section 3). [`schedule`] orders a plan's steps (plain data the
//! array controller executes).

pub mod ffe;
pub mod lu22;
pub mod schedule;
pub mod schedule_file;

use std::ops::Range;

use crate::arch::Arch;
use crate::error::InputError;
use crate::workload::ir::Layer;

/// One element of a dot product: input channel and kernel tap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Element {
    pub channel: u32,
    pub ky: u16,
    pub kx: u16,
}

/// A piece of a dot product: the elements that sit in a PE's input register
/// file together (at most the RF's piece capacity).
pub type Piece = Vec<Element>;

/// A group of PEs that always compute the same output channels: a PE column
/// for convolutions, a single PE for fully connected layers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lane {
    /// PEs of the lane, as `row * cols + col`, in row order.
    pub pes: Vec<usize>,
    /// Output channels per channel sub-pass (at most the psum RF holds).
    pub subpasses: Vec<Range<usize>>,
    /// For each sub-pass, the index into [`ArrayPlan::piece_lists`] of the
    /// pieces the lane's PEs iterate over.
    pub piece_list: Vec<usize>,
}

/// How a convolution or FC layer runs on the PE array.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArrayPlan {
    /// Output positions `(y, x)` in processing order; pass `p` takes
    /// `positions[p * positions_per_pass ..]`, position `i` of a pass goes to
    /// PE row `i` (convolution) or to every PE (FC: one position).
    pub positions: Vec<(usize, usize)>,
    pub positions_per_pass: usize,
    /// True when every lane's PEs each take a different position of the pass
    /// (convolution: PE row = position); false when all PEs share the one
    /// position (FC).
    pub rows_are_positions: bool,
    pub lanes: Vec<Lane>,
    pub piece_lists: Vec<Vec<Piece>>,
    /// Largest piece, in RF entries.
    pub piece_capacity: usize,
    /// Pieces the input RF holds at once (2: delivery overlaps compute).
    pub rf_buffers: usize,
    /// Number of channel sub-passes (the most any lane has).
    pub subpasses: usize,
    /// Sub-passes per output-channel tile: tile `t` is sub-passes
    /// `t * subpasses_per_tile ..` (one tile of every sub-pass unless the
    /// plan was built with [`lu22::plan_tiled`]).
    pub subpasses_per_tile: usize,
}

impl ArrayPlan {
    /// Number of passes.
    pub fn passes(&self) -> usize {
        self.positions
            .len()
            .div_ceil(self.positions_per_pass.max(1))
    }

    /// Number of output-channel tiles.
    pub fn tiles(&self) -> usize {
        self.subpasses
            .div_ceil(self.subpasses_per_tile.max(1))
            .max(1)
    }

    /// The sub-passes of tile `t`.
    pub fn tile_subpasses(&self, t: usize) -> Range<usize> {
        let n = self.subpasses_per_tile.max(1);
        (t * n).min(self.subpasses)..((t + 1) * n).min(self.subpasses)
    }

    /// The most output channels one lane has (the most tiles a plan can have).
    pub fn max_lane_channels(&self) -> usize {
        self.lanes
            .iter()
            .map(|l| l.subpasses.iter().map(|r| r.len()).sum::<usize>())
            .max()
            .unwrap_or(0)
    }

    /// The lanes active in sub-pass `q`, as the sets that compute from the
    /// same pieces: with one group of channels (`groups == 1`) all of them
    /// together; grouped convolutions keep one lane per set.
    pub fn lane_sets(&self, q: usize, groups: usize) -> Vec<Vec<usize>> {
        let active: Vec<usize> = (0..self.lanes.len())
            .filter(|&l| {
                self.lanes[l]
                    .subpasses
                    .get(q)
                    .is_some_and(|r| !r.is_empty())
            })
            .collect();
        if groups != 1 {
            active.into_iter().map(|l| vec![l]).collect()
        } else if active.is_empty() {
            Vec::new()
        } else {
            vec![active]
        }
    }

    /// The output channels a lane set computes in sub-pass `q`, laid side by
    /// side (the set's columns), and each lane's range of those columns.
    pub fn set_columns(&self, q: usize, lanes: &[usize]) -> (Vec<usize>, Vec<Range<usize>>) {
        let mut outputs = Vec::new();
        let mut lane_columns = Vec::new();
        for &l in lanes {
            let r = self.lanes[l].subpasses[q].clone();
            lane_columns.push(outputs.len()..outputs.len() + r.len());
            outputs.extend(r);
        }
        (outputs, lane_columns)
    }

    /// Steps (pieces) of sub-pass `q`: the most any lane has.
    pub fn steps(&self, q: usize) -> usize {
        self.lanes
            .iter()
            .filter_map(|l| l.piece_list.get(q).map(|&i| self.piece_lists[i].len()))
            .max()
            .unwrap_or(0)
    }
}

/// The columns of `outputs` (a lane set's output channels, ascending
/// within each lane) that use `piece`: those of the piece's channel group,
/// contiguous because grouped convolutions have one lane per set. `icg` and
/// `ocg` are the input and output channels per group.
pub fn piece_columns(piece: &[Element], outputs: &[usize], icg: usize, ocg: usize) -> Range<usize> {
    let group = piece.first().map_or(0, |e| e.channel as usize / icg.max(1));
    let lo = outputs
        .iter()
        .position(|&o| o / ocg.max(1) == group)
        .unwrap_or(outputs.len());
    let hi = outputs
        .iter()
        .rposition(|&o| o / ocg.max(1) == group)
        .map_or(lo, |i| i + 1);
    lo..hi
}

/// What a layer needs from the hardware.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LayerPlan {
    /// Convolution or FC on the PE array.
    Array(ArrayPlan),
    /// Pooling or averaging on data in the GLB (no PE work).
    Glb,
    /// A view change only (flatten): no data moves.
    Reshape,
}

/// A dataflow: plans each layer for an architecture.
pub trait Dataflow {
    fn name(&self) -> &'static str;
    fn plan(&self, layer: &Layer, arch: &Arch) -> Result<LayerPlan, InputError>;
}

/// The dataflow of an architecture (one today).
pub fn dataflow_for(_arch: &Arch) -> impl Dataflow {
    lu22::Lu22
}
