//! Where each tensor's data lives: the words the GLB holds and the words
//! DRAM holds, per spatial row, and which copy is valid.
//!
//! A row is all channels of one `y` (`C x W` words); it is the unit of
//! residency, GLB allocation and DRAM transfer. In DRAM, activations are laid
//! out row by row, each row `x`-major then channel (HWC), so a row is one
//! contiguous burst stream.
//!
//! The data moves as the hardware moves it: a row fetched from DRAM is
//! copied into the GLB's copy, valid from the cycle its GLB write completes;
//! a row written back goes from the GLB's copy to DRAM's; a row that leaves
//! the GLB leaves behind [`POISON`] (the space is another tensor's now).
//! Everything that computes reads the GLB's copy at the cycle it reads it,
//! so a schedule that reads a row before it arrived, or after it left,
//! computes from poison and fails the bit-exact check of that layer.

use ndarray::{Array3, ArrayView2};

use crate::sim::Cycle;
use crate::workload::ir::Shape;

/// What a GLB word holds when no valid row is there.
pub const POISON: i16 = 0x5a5a;

/// Never: a row that is not valid in the GLB.
const NEVER: Cycle = Cycle(u64::MAX);

/// The data of one tensor and where its rows are.
#[derive(Debug, Clone)]
pub struct TensorStore {
    pub shape: Shape,
    /// Bytes per word.
    pub word_bytes: u64,
    /// Row `y` holds GLB space (its data may still be on its way).
    pub in_glb: Vec<bool>,
    /// Row `y` has a valid copy in DRAM.
    pub in_dram: Vec<bool>,
    /// DRAM base address of the tensor's region, once it has one.
    pub dram_base: Option<u64>,
    /// Layers that still have to read this tensor.
    pub readers_left: usize,
    /// The GLB's words, `[C, H, W]`, and from when each row's are valid.
    glb: Array3<i16>,
    glb_valid_from: Vec<Cycle>,
    /// DRAM's words (valid where `in_dram`).
    dram: Array3<i16>,
}

/// The GLB's copy of a tensor as read at one cycle: its words through
/// one flat index (the copy is in standard `[C, H, W]` layout) rather than
/// a three-dimensional one.
pub struct GlbReader<'a> {
    glb: &'a Array3<i16>,
    /// The words in `[C, H, W]` order (empty were the copy not laid out so).
    words: &'a [i16],
    in_glb: &'a [bool],
    valid_from: &'a [Cycle],
    at: Cycle,
    height: usize,
    width: usize,
}

impl GlbReader<'_> {
    /// Row `y` is valid in the GLB at the read cycle.
    #[inline]
    fn row_valid(&self, y: usize) -> bool {
        self.in_glb.get(y).copied().unwrap_or(false) && self.valid_from[y] <= self.at
    }

    /// The words of `rows`, in `[C, H, W]` order, when every one of those
    /// rows is valid at the read cycle (then [`Self::word`] is
    /// `words[(c * H + y) * W + x]` for them).
    pub fn valid_words(&self, mut rows: std::ops::Range<usize>) -> Option<&[i16]> {
        (!self.words.is_empty() && rows.all(|y| self.row_valid(y))).then_some(self.words)
    }

    /// Word `(c, y, x)`: poison when row `y` is not valid in the GLB.
    #[inline]
    pub fn word(&self, c: usize, y: usize, x: usize) -> i16 {
        if !self.row_valid(y) {
            return POISON;
        }
        match self.words.get((c * self.height + y) * self.width + x) {
            Some(&w) if x < self.width => w,
            _ => self.glb[[c, y, x]],
        }
    }
}

impl TensorStore {
    /// A tensor that is nowhere yet.
    pub fn new(shape: Shape, word_bytes: u64, readers: usize) -> Self {
        TensorStore {
            shape,
            word_bytes,
            in_glb: vec![false; shape.height],
            in_dram: vec![false; shape.height],
            dram_base: None,
            readers_left: readers,
            glb: Array3::from_elem(shape.dims(), POISON),
            glb_valid_from: vec![NEVER; shape.height],
            dram: Array3::from_elem(shape.dims(), POISON),
        }
    }

    /// Row `y` valid in the GLB at `at`.
    fn glb_valid(&self, y: usize, at: Cycle) -> bool {
        self.in_glb.get(y).copied().unwrap_or(false) && self.glb_valid_from[y] <= at
    }

    /// The GLB's copy as read at `at`: each word, or poison when its row
    /// is not there (yet).
    pub fn glb_reader(&self, at: Cycle) -> GlbReader<'_> {
        GlbReader {
            glb: &self.glb,
            words: self.glb.as_slice().unwrap_or_default(),
            in_glb: &self.in_glb,
            valid_from: &self.glb_valid_from,
            at,
            height: self.shape.height,
            width: self.shape.width,
        }
    }

    /// Row `y` as `[channels, width]`, when the GLB holds it at `at`: what a
    /// unit beside the GLB can read.
    pub fn glb_row(&self, y: usize, at: Cycle) -> Option<ArrayView2<'_, i16>> {
        self.glb_valid(y, at)
            .then(|| self.glb.slice(ndarray::s![.., y, ..]))
    }

    /// Row `y` arrives in the GLB from DRAM, its write completing at `at`.
    pub fn fill_from_dram(&mut self, y: usize, at: Cycle) {
        let (mut glb, dram) = (
            self.glb.slice_mut(ndarray::s![.., y, ..]),
            self.dram.slice(ndarray::s![.., y, ..]),
        );
        if self.in_dram[y] {
            glb.assign(&dram);
        } else {
            glb.fill(POISON);
        }
        self.glb_valid_from[y] = at;
    }

    /// Row `y`'s GLB copy is written back to DRAM.
    pub fn write_back(&mut self, y: usize) {
        let glb = self.glb.slice(ndarray::s![.., y, ..]);
        self.dram.slice_mut(ndarray::s![.., y, ..]).assign(&glb);
        self.in_dram[y] = true;
    }

    /// Row `y` leaves the GLB: its words there are someone else's now.
    pub fn leave_glb(&mut self, y: usize) {
        self.in_glb[y] = false;
        self.glb_valid_from[y] = NEVER;
        self.glb.slice_mut(ndarray::s![.., y, ..]).fill(POISON);
    }

    /// Word `(c, y, x)` written into the GLB's copy (the row holds GLB
    /// space), valid once the write completes at `at`; or into DRAM's.
    pub fn write_word(&mut self, (c, y, x): (usize, usize, usize), value: i16, at: Cycle) {
        if self.in_glb[y] {
            self.glb[[c, y, x]] = value;
            let valid = self.glb_valid_from[y];
            self.glb_valid_from[y] = if valid == NEVER { at } else { valid.max(at) };
        } else {
            self.dram[[c, y, x]] = value;
        }
    }

    /// Row `y` (`[channels, width]`) written whole, as [`Self::write_word`].
    pub fn write_row(&mut self, y: usize, row: ArrayView2<'_, i16>, at: Cycle) {
        if self.in_glb[y] {
            self.glb.slice_mut(ndarray::s![.., y, ..]).assign(&row);
            self.glb_valid_from[y] = at;
        } else {
            self.dram.slice_mut(ndarray::s![.., y, ..]).assign(&row);
        }
    }

    /// The whole tensor placed where it starts: every row in DRAM, or the
    /// rows marked `in_glb` in the GLB (valid from `at`) and the rest in DRAM.
    pub fn place(&mut self, data: &Array3<i16>, at: Cycle) {
        for y in 0..self.shape.height {
            let row = data.slice(ndarray::s![.., y, ..]);
            if self.in_glb[y] {
                self.glb.slice_mut(ndarray::s![.., y, ..]).assign(&row);
                self.glb_valid_from[y] = at;
            }
            if self.in_dram[y] || !self.in_glb[y] {
                self.dram.slice_mut(ndarray::s![.., y, ..]).assign(&row);
            }
        }
    }

    /// The tensor as the machine holds it: each row from the GLB when valid
    /// there, else from DRAM when DRAM has it, else poison.
    pub fn contents(&self) -> Array3<i16> {
        let mut out = Array3::from_elem(self.shape.dims(), POISON);
        for y in 0..self.shape.height {
            let from = if self.in_glb[y] && self.glb_valid_from[y] != NEVER {
                Some(&self.glb)
            } else if self.in_dram[y] {
                Some(&self.dram)
            } else {
                None
            };
            if let Some(src) = from {
                out.slice_mut(ndarray::s![.., y, ..])
                    .assign(&src.slice(ndarray::s![.., y, ..]));
            }
        }
        out
    }

    /// Words in one row.
    pub fn row_words(&self) -> u64 {
        (self.shape.channels * self.shape.width) as u64
    }

    /// Bytes in one row.
    pub fn row_bytes(&self) -> u64 {
        self.row_words() * self.word_bytes
    }

    /// Bytes of the whole tensor.
    pub fn bytes(&self) -> u64 {
        self.row_bytes() * self.shape.height as u64
    }

    /// DRAM address of element `(c, y, x)`, if the tensor has a DRAM region.
    pub fn dram_address(&self, c: usize, y: usize, x: usize) -> u64 {
        let base = self.dram_base.unwrap_or(0);
        base + (y as u64 * self.row_words() + (x * self.shape.channels + c) as u64)
            * self.word_bytes
    }
}

/// Hands out DRAM regions, each aligned to a DRAM row so tensors do not
/// share row buffers.
#[derive(Debug, Clone)]
pub struct DramAllocator {
    next: u64,
    align: u64,
}

impl DramAllocator {
    pub fn new(align: u64) -> Self {
        DramAllocator {
            next: 0,
            align: align.max(1),
        }
    }

    pub fn allocate(&mut self, bytes: u64) -> u64 {
        let base = self.next;
        self.next = (base + bytes).div_ceil(self.align) * self.align;
        base
    }
}

/// Frees at least `bytes` of GLB space (if it can) by evicting rows of
/// `input`, those whose next use (`next_use(y)`, larger is later) is furthest
/// first. A row without a DRAM copy is written back (GLB read, DRAM write);
/// returns when the last write-back completes.
pub(crate) fn evict_rows(
    m: &mut super::Machine,
    input: &mut TensorStore,
    bytes: u64,
    next_use: impl Fn(usize) -> usize,
) -> crate::sim::Cycle {
    use std::cmp::Reverse;
    evict_rows_by(m, input, bytes, |y, _| {
        Some((Reverse(next_use(y)), Reverse(y)))
    })
}

/// [`evict_rows`] over the resident rows `key(y, has_dram_copy)` admits
/// (`Some`), smallest key first.
pub(crate) fn evict_rows_by<K: Ord>(
    m: &mut super::Machine,
    input: &mut TensorStore,
    bytes: u64,
    key: impl Fn(usize, bool) -> Option<K>,
) -> crate::sim::Cycle {
    evict_rows_as(m, input, bytes, key, crate::units::DataType::Input)
}

/// Spills rows of the output a layer is writing (its last rows first) to
/// DRAM until `bytes` are free or none is left in the GLB; returns the rows
/// spilled. The last resort of a layer that cannot otherwise get the room
/// its current pass needs (`feasibility`).
pub(crate) fn spill_output_rows(
    m: &mut super::Machine,
    output: &mut TensorStore,
    bytes: u64,
) -> Vec<usize> {
    let before = output.in_glb.clone();
    evict_rows_as(
        m,
        output,
        bytes,
        |y, _| Some(std::cmp::Reverse(y)),
        crate::units::DataType::Output,
    );
    (0..before.len())
        .filter(|&y| before[y] && !output.in_glb[y])
        .collect()
}

/// [`evict_rows_by`], counting the write-backs' accesses as `data_type`.
/// A row without a DRAM copy leaves only once its write-back is accepted:
/// when the DRAM write queue is full the eviction stops at that row (it
/// keeps its GLB space) and records in `m.write_held` when an entry frees;
/// the caller waits until then ([`evict_waiting`]) or retries then.
fn evict_rows_as<K: Ord>(
    m: &mut super::Machine,
    input: &mut TensorStore,
    bytes: u64,
    key: impl Fn(usize, bool) -> Option<K>,
    data_type: crate::units::DataType,
) -> crate::sim::Cycle {
    let mut done = m.clock;
    if m.glb.space.available() >= bytes {
        return done;
    }
    let mut rows: Vec<(K, usize)> = (0..input.shape.height)
        .filter(|&y| input.in_glb[y])
        .filter_map(|y| key(y, input.in_dram[y]).map(|k| (k, y)))
        .collect();
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    for (_, y) in rows {
        if m.glb.space.available() >= bytes {
            break;
        }
        if !input.in_dram[y] {
            if let Some(free) = m.dram_write_queue_full() {
                // The write-back cannot be sent: the row keeps its GLB
                // space, and the eviction stops here until an entry frees.
                m.write_held = Some(m.write_held.map_or(free, |t| t.min(free)));
                m.write_holds += 1;
                break;
            }
            if input.dram_base.is_none() {
                input.dram_base = Some(m.allocator.allocate(input.bytes()));
            }
            let (words, row_bytes) = (input.row_words(), input.row_bytes());
            let addr = input.dram_address(0, y, 0);
            done = done.max(write_back(m, data_type, words, row_bytes, addr));
            input.write_back(y);
        }
        input.leave_glb(y);
        m.glb.space.give_back(input.row_bytes());
    }
    done
}

/// Runs `evict` (evictions at the controller's clock) until none of its
/// write-backs is held back by a full DRAM write queue: each time one is,
/// the controller waits for the write-queue entry (its clock moves to the
/// cycle the entry frees) and runs `evict` again. Returns the later of the
/// clock and the completions `evict` returned.
pub(crate) fn evict_waiting(
    m: &mut super::Machine,
    mut evict: impl FnMut(&mut super::Machine) -> crate::sim::Cycle,
) -> crate::error::Result<crate::sim::Cycle> {
    let mut done = m.clock;
    loop {
        m.write_held = None;
        done = done.max(evict(m));
        match m.write_held.take() {
            Some(free) => m.set_clock(free.max(m.clock))?,
            None => return Ok(done.max(m.clock)),
        }
    }
}

/// Copies `words` (`bytes`) of `data` from the GLB to DRAM at `addr`, sent
/// now (`m.clock`): the write-back engine reads the GLB's ports and streams
/// the words into a DRAM write it issues at the same cycle (cut-through: a
/// DRAM write is a command and a burst of data; the data follows the GLB
/// read). Done when both the GLB read and the DRAM write are.
pub(crate) fn write_back(
    m: &mut super::Machine,
    data: crate::units::DataType,
    words: u64,
    bytes: u64,
    addr: u64,
) -> crate::sim::Cycle {
    let now = m.clock;
    let read = m.glb_read(now, data, words, bytes);
    let written = m.dram_write(now, addr, data, words, bytes);
    written.max(read.end)
}

/// Sends `words` (`bytes`) of `data` that arrive now (`m.clock`) through a
/// GLB staging buffer to DRAM at `addr`: written into the GLB, then read
/// back out behind that write on the same ports, streamed into a DRAM
/// write ([`write_back`]). Returns when the DRAM write is done.
pub(crate) fn through_glb_to_dram(
    m: &mut super::Machine,
    data: crate::units::DataType,
    words: u64,
    bytes: u64,
    addr: u64,
) -> crate::sim::Cycle {
    let staged = m.glb_write(m.clock, data, words, bytes);
    staged.end.max(write_back(m, data, words, bytes, addr))
}

/// Tensors that wait in the GLB for a later layer while another layer runs
/// (a residual shortcut, a branch), in the order they give up space: the
/// one read last first, and within a tensor its last rows first. They give
/// up rows only when the running layer cannot get the space otherwise.
pub(crate) struct Parked<'s>(
    pub Vec<&'s mut TensorStore>,
    /// Tensors no layer reads any more (a network output that is not the
    /// last layer's, a dead branch) that still hold GLB rows: they give way
    /// only as a last resort (`feasibility`), spilling to DRAM.
    pub Vec<&'s mut TensorStore>,
);

impl Parked<'_> {
    /// Spills rows of finished tensors until `bytes` are free, none is
    /// left or a write-back waits for a DRAM write-queue entry; a layer that
    /// cannot otherwise go on calls it.
    pub(crate) fn spill_finished(&mut self, m: &mut super::Machine, bytes: u64) {
        for t in &mut self.1 {
            if m.glb.space.available() >= bytes || m.write_held.is_some() {
                break;
            }
            spill_output_rows(m, t, bytes);
        }
    }

    /// Evicts parked rows (written back when DRAM has no copy) until
    /// `bytes` are free, nothing is left to evict or a write-back waits for
    /// a DRAM write-queue entry; returns when the last write-back completes.
    pub(crate) fn make_room(&mut self, m: &mut super::Machine, bytes: u64) -> crate::sim::Cycle {
        let mut done = m.clock;
        for t in &mut self.0 {
            if m.glb.space.available() >= bytes || m.write_held.is_some() {
                break;
            }
            done = done.max(evict_rows(m, t, bytes, |y| y));
        }
        done
    }
}
