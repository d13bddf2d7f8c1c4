//! One FFE pipeline stage: a fixed layer's line buffer, window and datapath
//! with valid/ready ports (SPEC section 3, FIXYNN).
//!
//! ```text
//!            in_valid ─►┌─────────────┐   ┌──────────────┐   ┌──────────────┐   ┌───────────┐
//!   pixel (1x1xC) ─────►│ line buffer │──►│ shift-reg    │──►│ scalers +    │──►│ pipeline  │──► out pixel
//!            in_ready ◄─│ k+1 banks   │   │ window kxkxC │   │ adder trees, │   │ registers │    (1x1xC')
//!                       │ (writer)    │   │ (reader)     │   │ BN/ReLU/Q    │   │ L deep    │◄── out_ready
//!                       └─────────────┘   └──────────────┘   └──────────────┘   └───────────┘──► out_valid
//! ```
//!
//! A stage whose window is a single pixel (1x1, no padding) has no line
//! buffer and no shift register: it takes each input pixel straight into
//! its datapath (a pointwise layer behind a depthwise one).
//!
//! Cycle behaviour (one call of [`Stage::step`] and at most one of
//! [`Stage::accept`] per cycle, step first):
//! - the **writer** stores the incoming pixel in the bank of its row when
//!   that bank is free (the row it held is no longer needed); otherwise
//!   `in_ready` is low and the upstream stage waits. Rows no output needs
//!   are consumed and dropped.
//! - the **reader** works output row by output row. It starts a row when
//!   every real input row of its window is completely written, then shifts
//!   one padded column per cycle into the window: a real column is read
//!   from the k banks (padding rows and columns read nothing and hold the
//!   pad value). When the shifted column completes the window of an output
//!   pixel, that pixel is computed and enters the output pipeline, ready
//!   `latency` cycles later; if the pipeline is full the reader stalls
//!   (back-pressure). After the row's last column the rows no later output
//!   needs are released, from the next cycle on (the reader used their
//!   bank this cycle).
//! - the **output** is valid when the oldest pipeline entry's latency has
//!   elapsed; the downstream takes it when it is ready.

use std::collections::VecDeque;

use super::datapath::{PixelOps, ShiftAddArray, max_pool, requantize};
use super::line_buffer::{LineBuffer, LineBufferStats, PortConflict};
use crate::numerics::ChannelRequant;

/// `[channels, height, width]` of a feature map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dims {
    pub channels: usize,
    pub height: usize,
    pub width: usize,
}

/// What the stage computes.
#[derive(Debug, Clone)]
pub enum StageFunction {
    /// A convolution: scalers and adder trees, then the output stage of
    /// each channel.
    ShiftAdd {
        array: ShiftAddArray,
        requant: Vec<ChannelRequant>,
    },
    /// Max pooling: comparator trees of `element_bits` bits.
    Max { element_bits: u32 },
}

/// Everything a stage is built from.
#[derive(Debug, Clone)]
pub struct StageSpec {
    pub input: Dims,
    pub output: Dims,
    pub kernel: [usize; 2],
    pub stride: [usize; 2],
    pub pad_top: usize,
    pub pad_left: usize,
    /// False for a single-pixel window (1x1, no padding).
    pub line_buffer: bool,
    /// What padding holds: the input zero point (convolution) or the
    /// type's minimum (max pooling).
    pub pad_value: i16,
    /// Pipeline registers between the window and the output [cycles].
    pub latency: u32,
    /// Frames the stage processes back to back.
    pub frames: u32,
    /// Compute values (false: timing only).
    pub values: bool,
    pub function: StageFunction,
}

/// A pixel on a port: all channels of one position of one frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pixel {
    pub frame: u32,
    pub y: u32,
    pub x: u32,
    /// The channel values (absent in a timing-only run).
    pub values: Option<Box<[i16]>>,
}

/// What the stage did. Cycles are absolute cycles of the FFE clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StageStats {
    pub inputs: u64,
    /// Output pixels computed.
    pub outputs: u64,
    pub first_input: Option<u64>,
    pub first_output: Option<u64>,
    pub last_output: Option<u64>,
    /// Cycle in which the last output pixel left the stage.
    pub last_taken: Option<u64>,
    /// Cycles with the stage's clock enabled: it took a pixel, shifted a
    /// column, handed out a pixel, or had data moving through its pipeline.
    pub busy_cycles: u64,
    /// Cycles in which the reader had a column to shift but the output
    /// pipeline was full (back-pressure from downstream).
    pub backpressure_cycles: u64,
    /// Cycles in which the upstream offered a pixel and the stage refused it
    /// (its bank still held a needed row, or its pipeline was full).
    pub refused_input_cycles: u64,
    /// Columns shifted into the window, and those that were all padding.
    pub shifts: u64,
    pub pad_shifts: u64,
    /// Adder-tree additions and full-adder bit operations performed.
    pub adds: u64,
    pub adder_bits: u64,
    /// Channel outputs through BN / ReLU / Q.
    pub requants: u64,
    /// Comparator bit operations (max pooling).
    pub compare_bits: u64,
    pub line_buffer: LineBufferStats,
}

struct Entry {
    ready_at: u64,
    pixel: Pixel,
}

/// Row bookkeeping that is the same in every frame.
struct Rows {
    /// Per input row: its index among the rows the stage stores (rows no
    /// output needs are not stored).
    stored: Vec<Option<u64>>,
    per_frame: u64,
    /// Per output row: the stored index of the last real input row its
    /// window needs (None: the window is all padding).
    need: Vec<Option<u64>>,
    /// Per output row: stored rows no later output row needs once it is done.
    release_after: Vec<u64>,
}

impl Rows {
    fn new(s: &StageSpec) -> Self {
        let (h, oh) = (s.input.height, s.output.height);
        let [kh, _] = s.kernel;
        let sy = s.stride[0];
        let window = |oy: usize| {
            let lo = (oy * sy) as i64 - s.pad_top as i64;
            let hi = lo + kh as i64 - 1;
            (lo.max(0), hi.min(h as i64 - 1))
        };
        let mut last_user: Vec<Option<usize>> = vec![None; h];
        for oy in 0..oh {
            let (lo, hi) = window(oy);
            for y in lo..=hi {
                last_user[y as usize] = Some(oy);
            }
        }
        let mut stored = vec![None; h];
        let mut n = 0u64;
        for y in 0..h {
            if last_user[y].is_some() {
                stored[y] = Some(n);
                n += 1;
            }
        }
        let need = (0..oh)
            .map(|oy| {
                let (lo, hi) = window(oy);
                (lo <= hi).then(|| stored[hi as usize]).flatten()
            })
            .collect();
        let release_after = (0..oh)
            .map(|oy| {
                (0..h)
                    .filter(|&y| last_user[y].is_some_and(|u| u <= oy))
                    .count() as u64
            })
            .collect();
        Rows {
            stored,
            per_frame: n,
            need,
            release_after,
        }
    }
}

/// A stage of the FFE pipeline (see the module docs for its behaviour).
pub struct Stage {
    spec: StageSpec,
    lb: Option<LineBuffer>,
    rows: Rows,
    // Writer (input port).
    w_frame: u32,
    w_y: usize,
    w_x: usize,
    /// Stored rows completely written, counted over all frames.
    stored_done: u64,
    // Reader.
    r_frame: u32,
    r_oy: usize,
    r_col: usize,
    r_active: bool,
    /// Stored rows released (their banks may be overwritten), over all frames.
    released: u64,
    pending_release: Option<u64>,
    /// Padded columns shifted per output row.
    row_columns: usize,
    // Window: a ring of `kw` columns of `kh x C` values.
    window_ring: Vec<i16>,
    window_head: usize,
    column: Vec<i16>,
    flat: Vec<i16>,
    acc: Vec<i64>,
    pipe: VecDeque<Entry>,
    acted: bool,
    ops: PixelOps,
    pub stats: StageStats,
}

impl Stage {
    pub fn new(spec: StageSpec) -> Self {
        let [kh, kw] = spec.kernel;
        let c = spec.input.channels;
        let lb = spec
            .line_buffer
            .then(|| LineBuffer::new(kh + 1, spec.input.width, c, spec.values));
        let rows = Rows::new(&spec);
        let row_columns = (spec.output.width.saturating_sub(1)) * spec.stride[1] + kw;
        let values = spec.values;
        let ops = match &spec.function {
            StageFunction::ShiftAdd { array, .. } => array.ops_per_pixel(),
            StageFunction::Max { .. } => PixelOps::default(),
        };
        let out_c = spec.output.channels;
        Stage {
            lb,
            rows,
            w_frame: 0,
            w_y: 0,
            w_x: 0,
            stored_done: 0,
            r_frame: 0,
            r_oy: 0,
            r_col: 0,
            r_active: false,
            released: 0,
            pending_release: None,
            row_columns,
            window_ring: if values && spec.line_buffer {
                vec![spec.pad_value; kh * kw * c]
            } else {
                Vec::new()
            },
            window_head: 0,
            column: if values { vec![0; kh * c] } else { Vec::new() },
            flat: if values {
                vec![0; kh * kw * c]
            } else {
                Vec::new()
            },
            acc: if values { vec![0; out_c] } else { Vec::new() },
            pipe: VecDeque::with_capacity(spec.latency as usize),
            acted: false,
            ops,
            stats: StageStats::default(),
            spec,
        }
    }

    pub fn spec(&self) -> &StageSpec {
        &self.spec
    }

    /// Line-buffer capacity in data words (0 without a line buffer).
    pub fn line_buffer_words(&self) -> u64 {
        self.lb.as_ref().map_or(0, LineBuffer::capacity_words)
    }

    /// Data words the line buffer holds now: stored rows written and not yet
    /// released (0 without a line buffer).
    pub fn line_buffer_fill_words(&self) -> u64 {
        let row_words = (self.spec.input.width * self.spec.input.channels) as u64;
        self.stats
            .line_buffer
            .write_words
            .saturating_sub(self.released * row_words)
    }

    /// All frames processed and every output pixel handed on.
    pub fn done(&self) -> bool {
        let consumed = if self.spec.line_buffer {
            self.r_frame >= self.spec.frames
        } else {
            self.w_frame >= self.spec.frames
        };
        consumed && self.pipe.is_empty()
    }

    /// `in_ready`: the stage takes the next input pixel this cycle.
    pub fn input_ready(&self) -> bool {
        if self.w_frame >= self.spec.frames {
            return false;
        }
        if self.spec.line_buffer {
            match self.rows.stored[self.w_y] {
                None => true,
                Some(s) => {
                    let row = u64::from(self.w_frame) * self.rows.per_frame + s;
                    let banks = self.spec.kernel[0] as u64 + 1;
                    row < self.released + banks
                }
            }
        } else {
            !self.pass_through_emits() || self.pipe.len() < self.spec.latency as usize
        }
    }

    /// Records that the upstream offered a pixel the stage refused.
    pub fn refuse_input(&mut self) {
        self.stats.refused_input_cycles += 1;
    }

    /// Where the next input pixel lands in the output grid, for a stage
    /// without a line buffer: `Some((oy, ox))` when it makes an output.
    fn pass_through_target(&self) -> Option<(usize, usize)> {
        let [sy, sx] = self.spec.stride;
        let (oy, ox) = (self.w_y / sy, self.w_x / sx);
        (self.w_y.is_multiple_of(sy)
            && self.w_x.is_multiple_of(sx)
            && oy < self.spec.output.height
            && ox < self.spec.output.width)
            .then_some((oy, ox))
    }

    fn pass_through_emits(&self) -> bool {
        self.pass_through_target().is_some()
    }

    /// `in_valid && in_ready`: takes the input pixel in cycle `now`.
    pub fn accept(&mut self, now: u64, pixel: &Pixel) -> Result<(), PortConflict> {
        self.acted = true;
        self.stats.inputs += 1;
        self.stats.first_input.get_or_insert(now);
        if self.spec.line_buffer {
            if let Some(s) = self.rows.stored[self.w_y] {
                let row = u64::from(self.w_frame) * self.rows.per_frame + s;
                if let Some(lb) = self.lb.as_mut() {
                    lb.write(now, row, self.w_x, pixel.values.as_deref())?;
                }
                if self.w_x + 1 == self.spec.input.width {
                    self.stored_done += 1;
                }
            }
        } else if let Some((oy, ox)) = self.pass_through_target() {
            if let Some(v) = pixel.values.as_deref() {
                let n = v.len().min(self.flat.len());
                self.flat[..n].copy_from_slice(&v[..n]);
            }
            self.emit(now, oy, ox);
        }
        self.w_x += 1;
        if self.w_x == self.spec.input.width {
            self.w_x = 0;
            self.w_y += 1;
            if self.w_y == self.spec.input.height {
                self.w_y = 0;
                self.w_frame += 1;
            }
        }
        Ok(())
    }

    /// The reader's work for cycle `now` (call before [`Stage::accept`]).
    pub fn step(&mut self, now: u64) -> Result<(), PortConflict> {
        if let Some(r) = self.pending_release.take() {
            self.released = self.released.max(r);
        }
        if !self.spec.line_buffer || self.r_frame >= self.spec.frames {
            return Ok(());
        }
        let frame_base = u64::from(self.r_frame) * self.rows.per_frame;
        if !self.r_active {
            if let Some(need) = self.rows.need[self.r_oy]
                && self.stored_done <= frame_base + need
            {
                return Ok(()); // waiting for input rows
            }
            self.r_active = true;
            self.r_col = 0;
        }
        let kw = self.spec.kernel[1];
        let sx = self.spec.stride[1];
        let col = self.r_col;
        let emits = col + 1 >= kw
            && (col + 1 - kw).is_multiple_of(sx)
            && (col + 1 - kw) / sx < self.spec.output.width;
        if emits && self.pipe.len() >= self.spec.latency as usize {
            self.stats.backpressure_cycles += 1;
            return Ok(());
        }
        self.acted = true;
        self.shift_column(now, col, frame_base)?;
        if emits {
            if self.spec.values {
                self.flatten_window();
            }
            self.emit(now, self.r_oy, (col + 1 - kw) / sx);
        }
        self.r_col += 1;
        if self.r_col == self.row_columns {
            self.end_row(frame_base);
        }
        Ok(())
    }

    /// Shifts padded column `col` of the current output row's input rows
    /// into the window: line-buffer reads for real pixels, the pad value
    /// elsewhere.
    fn shift_column(&mut self, now: u64, col: usize, frame_base: u64) -> Result<(), PortConflict> {
        let kh = self.spec.kernel[0];
        let ix = col as i64 - self.spec.pad_left as i64;
        let real_x = ix >= 0 && (ix as usize) < self.spec.input.width;
        let c = self.spec.input.channels;
        let values = self.spec.values;
        let mut real_rows = 0;
        for ky in 0..kh {
            let iy = (self.r_oy * self.spec.stride[0] + ky) as i64 - self.spec.pad_top as i64;
            let stored = (iy >= 0 && (iy as usize) < self.spec.input.height)
                .then(|| self.rows.stored[iy as usize])
                .flatten();
            let slot = if values {
                Some(&mut self.column[ky * c..(ky + 1) * c])
            } else {
                None
            };
            match (stored, real_x, self.lb.as_mut()) {
                (Some(s), true, Some(lb)) => {
                    real_rows += 1;
                    lb.read(now, frame_base + s, ix as usize, slot)?;
                }
                _ => {
                    if let Some(slot) = slot {
                        slot.fill(self.spec.pad_value);
                    }
                }
            }
        }
        self.stats.shifts += 1;
        if real_rows == 0 {
            self.stats.pad_shifts += 1;
        }
        if values {
            let at = self.window_head * kh * c;
            self.window_ring[at..at + kh * c].copy_from_slice(&self.column);
            self.window_head = (self.window_head + 1) % self.spec.kernel[1];
        }
        Ok(())
    }

    /// Flattens the window ring into `flat`, oldest column first:
    /// `[ky][kx][c]`.
    fn flatten_window(&mut self) {
        let [kh, kw] = self.spec.kernel;
        let c = self.spec.input.channels;
        for kx in 0..kw {
            let slot = (self.window_head + kx) % kw;
            for ky in 0..kh {
                let src = (slot * kh + ky) * c;
                let dst = (ky * kw + kx) * c;
                self.flat[dst..dst + c].copy_from_slice(&self.window_ring[src..src + c]);
            }
        }
    }

    /// The current output row is done: release its input rows (all of the
    /// frame's after its last row) and clear the window.
    fn end_row(&mut self, frame_base: u64) {
        self.r_active = false;
        let release = frame_base + self.rows.release_after[self.r_oy];
        self.r_oy += 1;
        if self.r_oy == self.spec.output.height {
            self.r_oy = 0;
            self.r_frame += 1;
            self.pending_release = Some(u64::from(self.r_frame) * self.rows.per_frame);
        } else {
            self.pending_release = Some(release);
        }
        if self.spec.values {
            self.window_ring.fill(self.spec.pad_value);
        }
    }

    /// Computes output pixel `(oy, ox)` from the window in `flat` and puts
    /// it into the output pipeline.
    fn emit(&mut self, now: u64, oy: usize, ox: usize) {
        let frame = if self.spec.line_buffer {
            self.r_frame
        } else {
            self.w_frame
        };
        let out_c = self.spec.output.channels;
        let values = self.spec.values.then(|| {
            let mut out = vec![0i16; out_c].into_boxed_slice();
            match &self.spec.function {
                StageFunction::ShiftAdd { array, requant } => {
                    array.compute(&self.flat, &mut self.acc);
                    requantize(requant, &self.acc, &mut out);
                }
                StageFunction::Max { .. } => {
                    max_pool(&self.flat, out_c, &mut out);
                }
            }
            out
        });
        match &self.spec.function {
            StageFunction::ShiftAdd { .. } => {
                self.stats.adds += self.ops.adds;
                self.stats.adder_bits += self.ops.adder_bits;
                self.stats.requants += out_c as u64;
            }
            StageFunction::Max { element_bits } => {
                let [kh, kw] = self.spec.kernel;
                self.stats.compare_bits +=
                    ((kh * kw).saturating_sub(1) * out_c) as u64 * u64::from(*element_bits);
            }
        }
        self.stats.outputs += 1;
        self.stats.first_output.get_or_insert(now);
        self.stats.last_output = Some(now);
        self.pipe.push_back(Entry {
            ready_at: now + u64::from(self.spec.latency),
            pixel: Pixel {
                frame,
                y: oy as u32,
                x: ox as u32,
                values,
            },
        });
    }

    /// `out_valid` in cycle `now`: the frame of the pixel on the output port.
    pub fn output_valid(&self, now: u64) -> Option<u32> {
        self.pipe
            .front()
            .filter(|e| e.ready_at <= now)
            .map(|e| e.pixel.frame)
    }

    /// `out_valid && out_ready`: hands the output pixel on in cycle `now`.
    pub fn take(&mut self, now: u64) -> Option<Pixel> {
        let e = self.pipe.pop_front()?;
        self.acted = true;
        self.stats.last_taken = Some(now);
        Some(e.pixel)
    }

    /// True when the stage did something in the current cycle.
    pub fn acted(&self) -> bool {
        self.acted
    }

    /// The next cycle after `now` at which the stage can change state on
    /// its own: its oldest pipeline entry becoming valid.
    pub fn next_event(&self, now: u64) -> Option<u64> {
        self.pipe.front().map(|e| e.ready_at).filter(|&t| t > now)
    }

    /// Closes cycles `now..until` (one cycle, or an idle stretch the
    /// controller jumps over): counts the clock-enabled ones, and returns
    /// how many there were.
    pub fn end_cycles(&mut self, now: u64, until: u64) -> u64 {
        let in_flight = self
            .pipe
            .back()
            .map_or(0, |e| e.ready_at.min(until).saturating_sub(now));
        let busy = in_flight.max(u64::from(self.acted));
        self.stats.busy_cycles += busy;
        self.acted = false;
        if let Some(lb) = &self.lb {
            self.stats.line_buffer = lb.stats;
        }
        busy
    }
}

/// The hardware of a stage, counted for the area and energy models
/// (docs/ffe.md, "Area").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StageInventory {
    /// Non-zero weights: one hard-wired scaler each.
    pub scalers: u64,
    /// Non-zero digits: the adder-tree inputs besides the biases.
    pub digits: u64,
    /// Full-adder bits of the adder trees: per output channel, one adder of
    /// the tree's width per digit.
    pub adder_bits: u64,
    /// Full-adder bits of the BN scale multipliers (accumulator width x
    /// coefficient width per output channel).
    pub bn_multiplier_bits: u64,
    /// Comparator bits of a max-pooling stage.
    pub comparator_bits: u64,
    /// Line-buffer SRAM bits: (k + 1) rows x width x channels x bits.
    pub sram_bits: u64,
    /// The shift-register window (k x k x C) or, without a line buffer, the
    /// input pixel register.
    pub window_register_bits: u64,
    /// Accumulator registers, and output pixel registers for the rest of
    /// the pipeline depth.
    pub pipeline_register_bits: u64,
    /// Static BN / Q parameter registers: bias, scale, shift (6 bits),
    /// output zero point and the two clamp bounds per output channel.
    pub config_register_bits: u64,
    /// The widest accumulator.
    pub max_acc_bits: u32,
}

impl StageInventory {
    /// Registers clocked on every busy cycle (the parameter registers hold
    /// still and are not).
    pub fn clocked_register_bits(&self) -> u64 {
        self.window_register_bits + self.pipeline_register_bits
    }
}

impl StageSpec {
    /// The stage's hardware, for activations of `in_bits` / `out_bits` and
    /// a BN scale coefficient of `bn_scale_bits`.
    pub fn inventory(&self, in_bits: u32, out_bits: u32, bn_scale_bits: u32) -> StageInventory {
        let [kh, kw] = self.kernel;
        let c = self.input.channels as u64;
        let out_c = self.output.channels as u64;
        let (in_bits, out_bits) = (u64::from(in_bits), u64::from(out_bits));
        let latency = u64::from(self.latency.max(1));
        let mut inv = StageInventory {
            sram_bits: if self.line_buffer {
                (kh as u64 + 1) * self.input.width as u64 * c * in_bits
            } else {
                0
            },
            window_register_bits: if self.line_buffer {
                (kh * kw) as u64 * c * in_bits
            } else {
                c * in_bits
            },
            ..Default::default()
        };
        match &self.function {
            StageFunction::ShiftAdd { array, .. } => {
                let acc: u64 = array.acc_bits.iter().map(|&b| u64::from(b)).sum();
                inv.scalers = array.scalers.iter().map(|&s| u64::from(s)).sum();
                inv.digits = array.digits.iter().map(|&d| u64::from(d)).sum();
                inv.adder_bits = array.ops_per_pixel().adder_bits;
                inv.bn_multiplier_bits = acc * u64::from(bn_scale_bits);
                inv.pipeline_register_bits = acc + (latency - 1) * out_c * out_bits;
                inv.config_register_bits =
                    acc + out_c * (u64::from(bn_scale_bits) + 6 + 3 * out_bits);
                inv.max_acc_bits = array.acc_bits.iter().copied().max().unwrap_or(0);
            }
            StageFunction::Max { element_bits } => {
                inv.comparator_bits =
                    ((kh * kw).saturating_sub(1) as u64) * out_c * u64::from(*element_bits);
                inv.pipeline_register_bits = latency * out_c * out_bits;
            }
        }
        inv
    }
}
