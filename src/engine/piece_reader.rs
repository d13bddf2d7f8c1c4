//! The words of a step's piece as each receiving PE row gets them (the
//! array controller's input delivery, `array.rs`): each element's value
//! read from the GLB's copy at the row's output position (padding gives 0;
//! a row not valid in the GLB at that cycle reads poison), counted as read
//! from the GLB or, when the row above read the same input word for this
//! piece at its own position, as forwarded over the neighbour link.
//!
//! Whether an element is forwarded depends only on the piece and on the
//! offset between the two rows' positions, so it is worked out once per
//! piece list and offset, when first needed, rather than by a search of
//! the piece for every element of every row of every step.

use crate::mapping::{ArrayPlan, Element, Piece};
use crate::numerics::mac::Width;
use crate::sim::Cycle;
use crate::workload::ir::Shape;

use super::storage::{GlbReader, TensorStore};

/// The words of one piece as one row (or one PE) receives them.
#[derive(Default, Clone)]
pub(super) struct RowDelivery {
    /// Centred values, one per piece element (padding gives 0).
    pub values: Vec<i16>,
    /// Elements that are real (not padding), read from the GLB.
    pub from_glb: u64,
    /// Elements forwarded from the previous row.
    pub from_link: u64,
}

impl RowDelivery {
    /// Nothing received (the row's lane group has no piece this step).
    pub fn clear(&mut self) {
        self.values.clear();
        self.from_glb = 0;
        self.from_link = 0;
    }
}

/// A layer's input windows: where an output position reads its words.
#[derive(Clone, Copy)]
pub(super) struct Windows {
    pub stride: [usize; 2],
    pub pad_top: usize,
    pub pad_left: usize,
    /// The layer's logical input shape (an FC layer sees `[N, 1, 1]`).
    pub logical: Shape,
    /// The input's zero point, subtracted from every word read.
    pub input_zero: i16,
    /// The PEs use the high byte of each input word (8-bit input modes).
    pub reduce_input: bool,
}

/// Reads pieces for a layer's rows, with the forwarding masks it built.
pub(super) struct PieceReader {
    windows: Windows,
    /// Per piece list: where each piece's elements start among the list's.
    piece_base: Vec<Vec<usize>>,
    /// Offsets between two rows' positions at which they can share a word
    /// (`|dy| <= reach[0]`, `|dx| <= reach[1]`): beyond, no element is.
    reach: [usize; 2],
    /// Per piece list and offset in reach (`list * offsets + offset`), per
    /// element of the list: forwarded from the row at that offset.
    shared: Vec<Option<Vec<bool>>>,
    /// Per piece list, per element: its word's distance in the input
    /// (`[C, H, W]`, the logical shape) from its window's first word.
    distances: Vec<Vec<usize>>,
    /// The largest kernel offsets `(ky, kx)` of any element: a window that
    /// holds these inside the input holds every element.
    max_k: [usize; 2],
}

impl PieceReader {
    pub(super) fn new(plan: &ArrayPlan, windows: Windows) -> Self {
        let piece_base = plan
            .piece_lists
            .iter()
            .map(|list| {
                let mut base = 0;
                list.iter()
                    .map(|p| {
                        let at = base;
                        base += p.len();
                        at
                    })
                    .collect()
            })
            .collect();
        let elements = || plan.piece_lists.iter().flatten().flatten();
        let max_ky = elements().map(|e| usize::from(e.ky)).max().unwrap_or(0);
        let max_kx = elements().map(|e| usize::from(e.kx)).max().unwrap_or(0);
        // Two elements of a piece share a word when their kernel offsets
        // differ by the positions' offset times the stride: at most the
        // largest kernel offset.
        let reach = [
            max_ky / windows.stride[0].max(1),
            max_kx / windows.stride[1].max(1),
        ];
        let offsets = (2 * reach[0] + 1) * (2 * reach[1] + 1);
        let (h, w) = (windows.logical.height, windows.logical.width);
        let distances = plan
            .piece_lists
            .iter()
            .map(|list| {
                let elements = list.iter().flatten();
                elements
                    .map(|e| (e.channel as usize * h + usize::from(e.ky)) * w + usize::from(e.kx))
                    .collect()
            })
            .collect();
        PieceReader {
            windows,
            piece_base,
            reach,
            shared: vec![None; plan.piece_lists.len() * offsets],
            distances,
            max_k: [max_ky, max_kx],
        }
    }

    /// Fills each of `buffers` with piece `k` of piece list `list`
    /// (`pieces`): buffer `r` at output position `positions[r]` (the last
    /// position for buffers beyond), reading `input`'s GLB copy at `now`;
    /// with `linked`, a row after the first takes the words the row above
    /// also read over the link.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn fill_rows(
        &mut self,
        input: &TensorStore,
        now: Cycle,
        (list, pieces, k): (usize, &[Piece], usize),
        positions: &[(usize, usize)],
        linked: bool,
        buffers: &mut [RowDelivery],
    ) {
        let glb = input.glb_reader(now);
        let windows = self.windows;
        let direct = windows.logical == input.shape;
        let piece = &pieces[k][..];
        let base = self.piece_base[list][k];
        // Every piece's masks built before the rows read them.
        if linked {
            for pair in positions.windows(2) {
                self.shared_mask((list, pieces), pair[0], pair[1]);
            }
        }
        let this = &*self;
        let distances = &this.distances[list][base..base + piece.len()];
        for (r, b) in buffers.iter_mut().enumerate() {
            b.clear();
            let at = positions[r.min(positions.len() - 1)];
            let shared = if linked && r > 0 {
                this.built_mask(list, positions[r - 1], at)
                    .map(|m| &m[base..base + piece.len()])
            } else {
                None
            };
            if direct {
                if !this.read_inside(&glb, distances, at, shared, b) {
                    read_direct(&windows, &glb, piece, at, shared, b);
                }
            } else {
                read_located(&windows, input, &glb, piece, at, shared, b);
            }
        }
    }

    /// Row `b` of a piece at output position `at` when its window is
    /// inside the input and every row of it valid in the GLB: each word at
    /// its distance (`distances`, per element) from the window's first,
    /// none padding. False (`b` untouched) otherwise.
    fn read_inside(
        &self,
        glb: &GlbReader<'_>,
        distances: &[usize],
        (y, x): (usize, usize),
        shared: Option<&[bool]>,
        b: &mut RowDelivery,
    ) -> bool {
        let w = &self.windows;
        let (Some(iy0), Some(ix0)) = (
            (y * w.stride[0]).checked_sub(w.pad_top),
            (x * w.stride[1]).checked_sub(w.pad_left),
        ) else {
            return false;
        };
        let [ky, kx] = self.max_k;
        if iy0 + ky >= w.logical.height || ix0 + kx >= w.logical.width {
            return false;
        }
        let Some(words) = glb.valid_words(iy0..iy0 + ky + 1) else {
            return false;
        };
        let first = iy0 * w.logical.width + ix0;
        b.values
            .extend(distances.iter().map(|&d| centre(w, words[first + d])));
        let link = shared.map_or(0, |m| m.iter().filter(|&&s| s).count()) as u64;
        b.from_link = link;
        b.from_glb = distances.len() as u64 - link;
        true
    }

    /// Where the forwarding mask of piece list `list` for a row at `at`
    /// below a row at `above` is kept, and the offset in words between
    /// their windows; `None` when the offset is beyond reach.
    fn mask_index(
        &self,
        list: usize,
        above: (usize, usize),
        at: (usize, usize),
    ) -> Option<(usize, [isize; 2])> {
        let dy = at.0 as isize - above.0 as isize;
        let dx = at.1 as isize - above.1 as isize;
        let [ry, rx] = self.reach.map(|r| r as isize);
        if dy.abs() > ry || dx.abs() > rx {
            return None;
        }
        let width = 2 * rx + 1;
        let offsets = ((2 * ry + 1) * width) as usize;
        let index = list * offsets + ((dy + ry) * width + dx + rx) as usize;
        let step = [
            dy * self.windows.stride[0] as isize,
            dx * self.windows.stride[1] as isize,
        ];
        Some((index, step))
    }

    /// Builds the forwarding mask of piece list `list` (`pieces`) for a
    /// row at `at` below a row at `above`, unless built or beyond reach.
    fn shared_mask(
        &mut self,
        (list, pieces): (usize, &[Piece]),
        above: (usize, usize),
        at: (usize, usize),
    ) {
        if let Some((index, step)) = self.mask_index(list, above, at) {
            self.shared[index].get_or_insert_with(|| shared_elements(pieces, step));
        }
    }

    /// The mask [`Self::shared_mask`] built.
    fn built_mask(
        &self,
        list: usize,
        above: (usize, usize),
        at: (usize, usize),
    ) -> Option<&[bool]> {
        let (index, _) = self.mask_index(list, above, at)?;
        self.shared[index].as_deref()
    }
}

/// Per element of `pieces` in order: whether its piece also holds the
/// element of the same channel at kernel offset `(ky, kx) + step`, the word
/// a row whose window starts `step` words earlier read for the piece.
fn shared_elements(pieces: &[Piece], [sy, sx]: [isize; 2]) -> Vec<bool> {
    pieces
        .iter()
        .flat_map(|piece| {
            piece.iter().map(move |e| {
                let ky = e.ky as isize + sy;
                let kx = e.kx as isize + sx;
                piece
                    .iter()
                    .any(|o| o.channel == e.channel && o.ky as isize == ky && o.kx as isize == kx)
            })
        })
        .collect()
}

/// Row `b` of `piece` at output position `(y, x)`, element by element:
/// padding gives 0, a real element the GLB word `word(c, iy, ix)` reads for
/// its logical input word `(c, iy, ix)`, counted as forwarded where
/// `shared` says so, else as read from the GLB.
fn read_each(
    w: &Windows,
    piece: &[Element],
    (y, x): (usize, usize),
    shared: Option<&[bool]>,
    b: &mut RowDelivery,
    word: impl Fn(usize, usize, usize) -> i16,
) {
    let (height, width) = (w.logical.height as isize, w.logical.width as isize);
    let iy0 = (y * w.stride[0]) as isize - w.pad_top as isize;
    let ix0 = (x * w.stride[1]) as isize - w.pad_left as isize;
    let mut link = 0u64;
    let mut real = 0u64;
    for (i, e) in piece.iter().enumerate() {
        let iy = iy0 + e.ky as isize;
        let ix = ix0 + e.kx as isize;
        if iy < 0 || ix < 0 || iy >= height || ix >= width {
            b.values.push(0);
            continue;
        }
        let value = word(e.channel as usize, iy as usize, ix as usize);
        b.values.push(centre(w, value));
        real += 1;
        link += u64::from(shared.is_some_and(|m| m[i]));
    }
    b.from_link = link;
    b.from_glb = real - link;
}

/// [`read_each`] when the logical input is the stored one: flat reads of
/// the GLB copy.
fn read_direct(
    w: &Windows,
    glb: &GlbReader<'_>,
    piece: &[Element],
    at: (usize, usize),
    shared: Option<&[bool]>,
    b: &mut RowDelivery,
) {
    read_each(w, piece, at, shared, b, |c, iy, ix| glb.word(c, iy, ix));
}

/// [`read_each`] when the logical input is a view of the stored one (an FC
/// layer's `[N, 1, 1]`): each word located in the stored shape.
fn read_located(
    w: &Windows,
    input: &TensorStore,
    glb: &GlbReader<'_>,
    piece: &[Element],
    at: (usize, usize),
    shared: Option<&[bool]>,
    b: &mut RowDelivery,
) {
    let physical = input.shape;
    let plane = physical.height * physical.width;
    let logical = w.logical;
    read_each(w, piece, at, shared, b, |c, iy, ix| {
        let flat = (c * logical.height + iy) * logical.width + ix;
        glb.word(
            flat / plane,
            (flat % plane) / physical.width,
            flat % physical.width,
        )
    });
}

/// A GLB word as the PE uses it: centred, and reduced to its high byte in
/// 8-bit input modes.
#[inline]
fn centre(w: &Windows, word: i16) -> i16 {
    let centred = (i32::from(word) - i32::from(w.input_zero)) as i16;
    if w.reduce_input {
        crate::numerics::mac::reduce(centred, Width::W8)
    } else {
        centred
    }
}
