//! LU22's logical mapping (SPEC section 1; docs/mapping.md has a worked example).
//!
//! Convolution, for an array of `R` rows and `C` columns:
//! - each PE **column** owns a contiguous group of output channels (the `m`
//!   channels split as evenly as possible over the `C` columns); a PE holds
//!   partial sums for at most `psum_rf_entries` channels at once, so a larger
//!   group is processed in channel **sub-passes**;
//! - each PE **row** owns one output position; the `R` rows take `R`
//!   consecutive positions of the output plane in row-major order (a **pass**);
//! - a PE computes its position's outputs for its channels over every input
//!   channel of their groups and every kernel tap, a **piece** at a time: a
//!   piece is as many (channel, tap) elements as fit half the input RF, so the
//!   next piece can arrive while the PE computes on the current one.
//!
//! Fully connected: the outputs are spread over all `R x C` PEs, every PE
//! receives the whole input vector (broadcast), a piece at a time.
//!
//! Pooling and element-wise additions run on data in the GLB; flatten moves nothing.

use std::collections::HashMap;
use std::ops::Range;

use super::{ArrayPlan, Dataflow, Element, Lane, LayerPlan, Piece};
use crate::arch::{Arch, WeightStore};
use crate::error::InputError;
use crate::workload::ir::{Layer, Op};

/// The LU22 dataflow.
pub struct Lu22;

impl Dataflow for Lu22 {
    fn name(&self) -> &'static str {
        "lu22"
    }

    fn plan(&self, layer: &Layer, arch: &Arch) -> Result<LayerPlan, InputError> {
        plan_tiled(layer, arch, 1)
    }
}

/// The LU22 plan of `layer` with each lane's output channels cut into
/// `tiles` tiles (balanced, each in sub-passes the psum RF holds): the
/// weight tiles of the tile-major loop order (`schedule::LoopOrder`).
/// `tiles == 1` is the plain plan. Fully connected layers have one tile.
pub fn plan_tiled(layer: &Layer, arch: &Arch, tiles: usize) -> Result<LayerPlan, InputError> {
    let limits = Limits::new(arch)?;
    match &layer.op {
        Op::Conv2d(c) => {
            let out = layer.output_shape;
            let positions = (0..out.height)
                .flat_map(|y| (0..out.width).map(move |x| (y, x)))
                .collect();
            let groups = c.groups;
            let icg = c.in_channels_per_group();
            let ocg = c.out_channels() / groups.max(1);
            let rows = arch.pe_array.rows as usize;
            let cols = arch.pe_array.cols as usize;
            let lanes_pes: Vec<Vec<usize>> = (0..cols)
                .map(|j| (0..rows).map(|r| r * cols + j).collect())
                .collect();
            let taps: Vec<(u16, u16)> = (0..c.kernel[0])
                .flat_map(|ky| (0..c.kernel[1]).map(move |kx| (ky as u16, kx as u16)))
                .collect();
            Ok(LayerPlan::Array(build(
                positions,
                rows,
                true,
                lanes_pes,
                (c.out_channels(), tiles),
                &limits,
                |outputs| {
                    // The input channels of the groups the outputs belong to.
                    let first = outputs.start / ocg.max(1);
                    let last = (outputs.end - 1) / ocg.max(1);
                    (first..=last).map(|g| g * icg..(g + 1) * icg).collect()
                },
                &taps,
                c.kernel[1],
            )))
        }
        Op::FullyConnected(f) => {
            let pes = (arch.pe_array.rows * arch.pe_array.cols) as usize;
            let n = f.in_features();
            Ok(LayerPlan::Array(build(
                vec![(0, 0)],
                1,
                false,
                (0..pes).map(|p| vec![p]).collect(),
                (f.out_features(), 1),
                &limits,
                |_| std::iter::once(0..n).collect(),
                &[(0, 0)],
                1,
            )))
        }
        Op::MaxPool(_)
        | Op::AvgPool(_)
        | Op::GlobalAvgPool { .. }
        | Op::QLinearAvgPool(_)
        | Op::Add(_)
        | Op::Softmax
        | Op::ChannelShuffle { .. }
        | Op::Concat(_)
        | Op::Lrn(_)
        | Op::Sum(_)
        | Op::Lookup(_)
        | Op::Channel(_)
        | Op::FloatChannel(_)
        | Op::DynamicRange
        | Op::DynamicQuantize => Ok(LayerPlan::Glb),
        Op::Flatten => Ok(LayerPlan::Reshape),
    }
}

/// Register-file limits of the mapping.
struct Limits {
    /// Elements per piece: half the input RF (all of it when it holds one).
    piece_capacity: usize,
    /// Pieces resident at once.
    rf_buffers: usize,
    /// Output channels a PE works on at once.
    channels: usize,
}

impl Limits {
    fn new(arch: &Arch) -> Result<Self, InputError> {
        let pe = &arch.pe_array;
        let entries = pe.input_rf_entries as usize;
        let piece_capacity = if entries >= 2 {
            entries / 2
        } else {
            entries.max(1)
        };
        let rf_buffers = (entries / piece_capacity).max(1);
        let mut channels = pe.psum_rf_entries as usize;
        if pe.weight_store == WeightStore::Programmable {
            // The scratchpad holds the weights of the resident pieces.
            let per_channel = piece_capacity * rf_buffers;
            let fit = pe.weight_scratchpad_entries as usize / per_channel;
            if fit == 0 {
                return Err(InputError::new(
                    &arch.path,
                    format!(
                        "the {}-entry weight scratchpad cannot hold one output channel's weights for {rf_buffers} pieces of {piece_capacity} input elements; valid: at least {per_channel} entries (or a smaller input RF)",
                        pe.weight_scratchpad_entries
                    ),
                )
                .context("[pe_array]")
                .field("weight_scratchpad_entries"));
            }
            channels = channels.min(fit);
        }
        Ok(Limits {
            piece_capacity,
            rf_buffers,
            channels: channels.max(1),
        })
    }
}

/// Splits `range` into `parts` contiguous ranges whose sizes differ by at most one.
fn split(range: Range<usize>, parts: usize) -> Vec<Range<usize>> {
    let n = range.len();
    let parts = parts.max(1);
    let (base, extra) = (n / parts, n % parts);
    let mut start = range.start;
    (0..parts)
        .map(|i| {
            let len = base + usize::from(i < extra);
            let r = start..start + len;
            start += len;
            r
        })
        .collect()
}

/// Pieces over the channels of `channel_ranges` (each a group's channels,
/// never mixed in one piece) and the kernel `taps`, at most `capacity`
/// elements each. Whole windows of several channels when a window fits;
/// otherwise whole kernel rows of one channel; otherwise parts of a row.
fn pieces(
    channel_ranges: &[Range<usize>],
    taps: &[(u16, u16)],
    kernel_w: usize,
    capacity: usize,
) -> Vec<Piece> {
    let window = taps.len();
    let mut out = Vec::new();
    for range in channel_ranges {
        if window <= capacity {
            let per_piece = capacity / window;
            let channels: Vec<usize> = range.clone().collect();
            for chunk in channels.chunks(per_piece) {
                out.push(
                    chunk
                        .iter()
                        .flat_map(|&c| {
                            taps.iter().map(move |&(ky, kx)| Element {
                                channel: c as u32,
                                ky,
                                kx,
                            })
                        })
                        .collect(),
                );
            }
        } else {
            let rows_per_piece = capacity / kernel_w.max(1);
            for c in range.clone() {
                let by_row: Vec<&[(u16, u16)]> = taps.chunks(kernel_w.max(1)).collect();
                if rows_per_piece >= 1 {
                    for rows in by_row.chunks(rows_per_piece) {
                        out.push(
                            rows.iter()
                                .flat_map(|r| r.iter())
                                .map(|&(ky, kx)| Element {
                                    channel: c as u32,
                                    ky,
                                    kx,
                                })
                                .collect(),
                        );
                    }
                } else {
                    for row in by_row {
                        for part in row.chunks(capacity) {
                            out.push(
                                part.iter()
                                    .map(|&(ky, kx)| Element {
                                        channel: c as u32,
                                        ky,
                                        kx,
                                    })
                                    .collect(),
                            );
                        }
                    }
                }
            }
        }
    }
    out
}

#[allow(clippy::too_many_arguments)]
fn build(
    positions: Vec<(usize, usize)>,
    positions_per_pass: usize,
    rows_are_positions: bool,
    lanes_pes: Vec<Vec<usize>>,
    (out_channels, tiles): (usize, usize),
    limits: &Limits,
    inputs_of: impl Fn(&Range<usize>) -> Vec<Range<usize>>,
    taps: &[(u16, u16)],
    kernel_w: usize,
) -> ArrayPlan {
    let lane_channels = split(0..out_channels, lanes_pes.len());
    let lane_tiles = tile_subpasses(&lane_channels, tiles.max(1), limits.channels);
    let subpasses_per_tile = lane_tiles
        .iter()
        .flat_map(|t| t.iter().map(Vec::len))
        .max()
        .unwrap_or(0);
    let mut piece_lists: Vec<Vec<Piece>> = Vec::new();
    let mut list_of: HashMap<Vec<Range<usize>>, usize> = HashMap::new();
    let mut subpasses = 0;
    let lanes = lanes_pes
        .into_iter()
        .zip(lane_tiles)
        .map(|(pes, per_tile)| {
            // Every tile but the last is padded to the same number of
            // sub-passes, so sub-pass `q` is in tile `q / subpasses_per_tile`.
            let last = per_tile.len().saturating_sub(1);
            let subs: Vec<Range<usize>> = per_tile
                .into_iter()
                .enumerate()
                .flat_map(|(t, mut subs)| {
                    if t < last {
                        subs.resize(subpasses_per_tile, 0..0);
                    }
                    subs
                })
                .collect();
            subpasses = subpasses.max(subs.len());
            let piece_list = subs
                .iter()
                .map(|s| {
                    let inputs = if s.is_empty() {
                        Vec::new()
                    } else {
                        inputs_of(s)
                    };
                    *list_of.entry(inputs.clone()).or_insert_with(|| {
                        piece_lists.push(pieces(&inputs, taps, kernel_w, limits.piece_capacity));
                        piece_lists.len() - 1
                    })
                })
                .collect();
            Lane {
                pes,
                subpasses: subs,
                piece_list,
            }
        })
        .collect();
    ArrayPlan {
        positions,
        positions_per_pass,
        rows_are_positions,
        lanes,
        piece_lists,
        piece_capacity: limits.piece_capacity,
        rf_buffers: limits.rf_buffers,
        subpasses,
        subpasses_per_tile: if tiles <= 1 {
            subpasses.max(1)
        } else {
            subpasses_per_tile.max(1)
        },
    }
}

/// Each lane's channels cut into `tiles` balanced tiles, each tile into
/// the sub-passes of at most `per_subpass` channels (none for an empty tile).
fn tile_subpasses(
    lane_channels: &[Range<usize>],
    tiles: usize,
    per_subpass: usize,
) -> Vec<Vec<Vec<Range<usize>>>> {
    lane_channels
        .iter()
        .map(|channels| {
            if channels.is_empty() {
                return Vec::new();
            }
            split(channels.clone(), tiles)
                .into_iter()
                .map(|tile| {
                    if tile.is_empty() {
                        Vec::new()
                    } else {
                        split(tile.clone(), tile.len().div_ceil(per_subpass))
                    }
                })
                .collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_is_balanced() {
        assert_eq!(
            split(0..128, 12)
                .iter()
                .map(|r| r.len())
                .collect::<Vec<_>>(),
            [11, 11, 11, 11, 11, 11, 11, 11, 10, 10, 10, 10]
        );
        assert_eq!(split(0..5, 12).iter().filter(|r| !r.is_empty()).count(), 5);
        assert_eq!(split(10..20, 3), [10..14, 14..17, 17..20]);
    }

    #[test]
    fn pieces_fit_half_the_rf() {
        let taps3: Vec<(u16, u16)> = (0..3).flat_map(|y| (0..3).map(move |x| (y, x))).collect();
        // 3x3 window, 6 entries: two kernel rows, then one.
        let p = pieces(std::slice::from_ref(&(0..2)), &taps3, 3, 6);
        assert_eq!(p.iter().map(Vec::len).collect::<Vec<_>>(), [6, 3, 6, 3]);
        assert_eq!(
            p[1][0],
            Element {
                channel: 0,
                ky: 2,
                kx: 0
            }
        );
        // 1x1 window: six channels per piece, never across a group boundary.
        let p = pieces(&[0..8, 8..16], &[(0, 0)], 1, 6);
        assert_eq!(p.iter().map(Vec::len).collect::<Vec<_>>(), [6, 2, 6, 2]);
        // A row wider than the piece: parts of a row.
        let taps8: Vec<(u16, u16)> = (0..2).flat_map(|y| (0..8).map(move |x| (y, x))).collect();
        let p = pieces(std::slice::from_ref(&(0..1)), &taps8, 8, 6);
        assert_eq!(p.iter().map(Vec::len).collect::<Vec<_>>(), [6, 2, 6, 2]);
    }
}
