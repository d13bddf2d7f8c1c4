//! Layers that run on data in the GLB (SPEC section 1: "pooling runs on data
//! in the GLB"): max, average and global average pooling, ONNX's
//! requantising average pool, element-wise additions (residuals), Softmax
//! and ShuffleNet's channel shuffle (a permutation).
//!
//! ```text
//!   DRAM ──(rows not in the GLB)──► GLB ──► GLB unit ──► GLB (or DRAM)
//! ```
//!
//! The GLB unit reads every in-input element of every window (every element
//! of both operands for an addition) from the GLB, with no line buffer, and
//! writes one word per output; it consumes `bank_width_bytes` bytes per
//! cycle, one bank port's worth (accsim choice, docs/arch-format.md). It
//! works an output row at a time; the input rows the next output row needs
//! are fetched from DRAM while it works. A reduction of a whole tensor into
//! one row (`dynamic_range`) works an input row at a time instead (a step,
//! `GlbUnit::steps`): each row is read once from the GLB (fetched from DRAM
//! first when it spilled), into the unit's registers, and freed after it
//! when no later layer reads it; the output row is written after the last. The values come from the GLB unit
//! (`hw::glb_unit`), which computes each output row from the input rows the
//! GLB holds at that moment and counts the elements it read.
//!
//! Softmax (docs/arch-format.md, `[glb]`): the unit streams the first two
//! passes over each column (maximum; LUT reads and sum) at
//! `bank_width_bytes` bytes per cycle, then the third through its
//! pipelined divider, one output per cycle (or the read rate, if slower),
//! and the divider's last result leaves `divider_latency_cycles` later:
//! `ceil(2 E b / w) + max(ceil(E b / w), E) + latency` cycles for a row of
//! `E` outputs of `b` bytes at `w` bytes per cycle. Its exp-table reads are
//! counted as `lut_reads` (docs/report.md).
//!
//! Concat reads each operand's row once and writes the output row; its
//! requantised inputs' table reads count as `lut_reads`. An n-ary Sum reads
//! every operand's element once. Both are busy for the bytes read at
//! `bank_width_bytes` bytes per cycle. LRN reads each element once and is
//! busy for `max(ceil(E b / w), E x LRN_CYCLES_PER_ELEMENT)` cycles per row
//! (its power unit, `hw::glb_unit`).

use ndarray::ArrayView2;

use crate::error::{InputError, Result};
use crate::hw::glb_unit::{AddKernel, Function, GlbUnit, MissingRow, ResidentRows, Window};
use crate::numerics::ort::{
    ConcatInput, FloatAdd, FloatChain, FloatSum, Lrn, PlaneOrder, QLinearAdd, QLinearAverage,
    QLinearGlobalAverage, QLinearSoftmax,
};
use crate::sim::{Cycle, RateServer};
use crate::units::DataType;
use crate::workload::ir::{AddRule, FLOAT32_WORDS, Layer, Op, PlaneAverage, Pool, Sum};

use super::array::free_all_rows;
use super::storage::{Parked, TensorStore};
use super::{LayerTiming, Machine};

/// The GLB unit's program for `layer`, reading an input of `input_hw`.
pub(super) fn program(layer: &Layer, input_hw: [usize; 2]) -> Result<Function> {
    let [h, w] = input_hw;
    if layer.input_quant == FLOAT32_WORDS
        && let Some(f) = float_program(layer, w)
    {
        return Ok(f);
    }
    Ok(match &layer.op {
        Op::FloatChannel(f) => Function::FloatChannel(Box::new(f.clone())),
        Op::MaxPool(p) => Function::Max(window(p)),
        Op::AvgPool(p) => Function::Average {
            window: window(p),
            rounding: p.rounding,
        },
        Op::GlobalAvgPool { rounding } => Function::Average {
            window: Window::plane(h, w),
            rounding: *rounding,
        },
        // ONNX Runtime takes its integer global path when the window is
        // the whole unpadded plane (docs/onnx.md).
        Op::QLinearAvgPool(q)
            if q.pool.kernel == input_hw && q.pool.padding.is_zero() && !q.unfused =>
        {
            Function::QLinearGlobalAverage(QLinearGlobalAverage::new(
                &layer.input_quant,
                &layer.output_quant,
                h * w,
            ))
        }
        Op::QLinearAvgPool(q) => Function::QLinearAverage {
            window: window(&q.pool),
            count_include_pad: q.count_include_pad,
            kernel: QLinearAverage::new(&layer.input_quant, &layer.output_quant, q.unfused)
                .with_uint8_kernel(q.uint8_kernel),
        },
        Op::Add(a) => {
            let [qa, qb] = &a.input_quants;
            let out = &layer.output_quant;
            Function::Add(match a.rule {
                AddRule::QLinearAdd => AddKernel::QLinear(QLinearAdd::new(qa, qb, out)),
                AddRule::Float => AddKernel::Float(FloatAdd::new(qa, qb, out)),
            })
        }
        Op::Softmax => Function::Softmax(Box::new(QLinearSoftmax::new(
            &layer.input_quant,
            &layer.output_quant,
            layer.input_shape.channels,
        ))),
        Op::ChannelShuffle { groups } => Function::ChannelShuffle { groups: *groups },
        Op::Concat(c) => Function::Concat(
            c.input_quants
                .iter()
                .map(|q| ConcatInput::new(q, &layer.output_quant))
                .collect(),
        ),
        Op::Lrn(l) => Function::Lrn(Lrn::new(
            (l.size, l.alpha, l.beta, l.bias),
            &layer.input_quant,
            &layer.output_quant,
        )),
        Op::Sum(s) if s.is_chain() => chain(s, layer),
        Op::Sum(s) => Function::Sum(FloatSum::new(&s.input_quants, &layer.output_quant)),
        Op::Lookup(l) => Function::Lookup(l.table(&layer.input_quant, &layer.output_quant)),
        Op::Channel(c) => {
            Function::Channel(Box::new(c.kernel(&layer.input_quant, &layer.output_quant)))
        }
        Op::DynamicRange => Function::DynamicRange,
        Op::DynamicQuantize => Function::DynamicQuantize(dynamic_quant(layer)),
        Op::Conv2d(_) | Op::FullyConnected(_) | Op::Flatten => {
            return Err(crate::error::Error::Internal {
                context: format!("layer `{}`", layer.name),
                message: format!("a {} layer was given to the GLB unit", layer.op.kind()),
            });
        }
    })
}

/// The program of a layer on float32 words (dynamic quantisation's float
/// tensors), for the operators that have a float32 form; `input_width` in
/// elements.
fn float_program(layer: &Layer, input_width: usize) -> Option<Function> {
    Some(match &layer.op {
        Op::MaxPool(p) => Function::FloatMax(window(p)),
        Op::Softmax => Function::FloatSoftmax,
        Op::QLinearAvgPool(q) => {
            let channels = layer.input_shape.channels / 2;
            let kernel = crate::reference::dynamic_float::float_average(q, channels, input_width);
            Function::FloatAverage(kernel)
        }
        Op::Lrn(l) => Function::FloatLrn(Lrn::new(
            (l.size, l.alpha, l.beta, l.bias),
            &FLOAT32_WORDS,
            &FLOAT32_WORDS,
        )),
        Op::ChannelShuffle { groups } => Function::FloatShuffle { groups: *groups },
        _ => return None,
    })
}

/// A `dynamic_quantize` layer's run-time scale and zero point: a resolved
/// layer's output quantisation is the run-time one, read from its range
/// tensor (`engine::dynamic`); unresolved (the schedule check, which needs
/// only the geometry), the unit is not programmed yet.
fn dynamic_quant(layer: &Layer) -> Option<crate::numerics::ort_dynamic::DynamicQuant> {
    match layer.output_quant {
        crate::numerics::TensorQuant::Affine {
            scale, zero_point, ..
        } if layer.output_quant != crate::workload::ir::DYNAMIC_UINT8 => {
            Some(crate::numerics::ort_dynamic::DynamicQuant { scale, zero_point })
        }
        _ => None,
    }
}

/// A float32 chain (item 18's `Sum`, its Relu, its plane mean).
fn chain(s: &Sum, layer: &Layer) -> Function {
    Function::Chain {
        kernel: FloatChain::new(&s.input_quants, s.relu, &layer.output_quant, &FLOAT32_WORDS),
        plane: s.plane_average.map(|p| match p {
            PlaneAverage::AveragePool => PlaneOrder::Sequential,
            PlaneAverage::GlobalAveragePool => PlaneOrder::MlasGlobal,
        }),
    }
}

/// A pool's window as the unit walks it.
fn window(p: &Pool) -> Window {
    Window {
        kernel: p.kernel,
        stride: p.stride,
        pad_top: p.padding.top,
        pad_left: p.padding.left,
    }
}

/// The unit's view of the GLB: each operand's rows that the GLB holds.
struct Resident<'a, 'b> {
    inputs: &'a [&'b mut TensorStore],
    operand_of: &'a [usize],
    /// The cycle the unit reads them.
    at: Cycle,
}

impl ResidentRows for Resident<'_, '_> {
    fn row(&self, operand: usize, y: usize) -> Option<ArrayView2<'_, i16>> {
        self.inputs[*self.operand_of.get(operand)?].glb_row(y, self.at)
    }
}

fn missing_row(layer: &Layer, miss: MissingRow, oy: usize) -> crate::error::Error {
    crate::error::Error::Internal {
        context: format!("layer `{}`", layer.name),
        message: format!(
            "the GLB unit read row {} of operand {} for output row {oy}, and the GLB does not hold it (a schedule error)",
            miss.row, miss.operand
        ),
    }
}

fn cannot_tile(m: &Machine, layer: &Layer, bytes: u64) -> crate::error::Error {
    InputError::new(
        &m.arch.path,
        format!(
            "layer `{}` cannot be tiled: an input row of {bytes} bytes does not fit the {} free bytes of GLB; valid: a larger [glb] capacity_kib",
            layer.name,
            m.glb.space.available()
        ),
    )
    .context("[glb]")
    .field("capacity_kib")
    .into()
}

/// The room one input row of the current output row needs, when neither
/// free space nor parked tensors give it.
struct Room {
    /// The input rows of the current output row (they stay).
    wanted: std::ops::Range<usize>,
    bytes: u64,
}

/// Whether a row's fill got its GLB room.
enum Taken {
    Yes,
    /// Not now (a row fetched ahead): when its output row runs.
    Later,
    /// A wanted row finds none: the layer cannot be tiled.
    Never,
}

impl Room {
    /// Takes the room of row `y`: free space, or parked tensors give way;
    /// a row the current output row wants also gets the last resort. An
    /// eviction whose write-back waits for a DRAM write-queue entry keeps
    /// its space until the entry frees: the unit waits for it (landing the
    /// fills that arrive meanwhile) when the row is wanted, else leaves the
    /// row for later.
    fn take(
        &self,
        m: &mut Machine,
        inputs: &mut [&mut TensorStore],
        rows: &mut Rows,
        (output, parked, spilled_rows): (&mut TensorStore, &mut Parked<'_>, &mut u64),
        y: usize,
    ) -> Result<Taken> {
        loop {
            if m.glb.space.try_take(self.bytes) {
                return Ok(Taken::Yes);
            }
            // The unit works one output row at a time: the rows it
            // needs can come only from tensors parked for later layers.
            m.write_held = None;
            parked.make_room(m, self.bytes);
            if m.glb.space.try_take(self.bytes) {
                return Ok(Taken::Yes);
            }
            if !self.wanted.contains(&y) {
                m.write_held = None;
                return Ok(Taken::Later);
            }
            if m.write_held.is_none()
                && self.last_resort(m, inputs, rows, output, parked, spilled_rows)
            {
                return Ok(Taken::Yes);
            }
            match m.write_held.take() {
                Some(free) => rows.advance(m, inputs, free.max(m.clock))?,
                None => return Ok(Taken::Never),
            }
        }
    }

    /// Evicts the operands' rows the current output row does not read
    /// (those with a DRAM copy first, then the last rows; fetched again
    /// when needed), then spills the output's rows; takes the room. Only a
    /// layer that could not otherwise go on gets here (`feasibility`).
    fn last_resort(
        &self,
        m: &mut Machine,
        inputs: &mut [&mut TensorStore],
        rows: &mut Rows,
        output: &mut TensorStore,
        parked: &mut Parked<'_>,
        spilled_rows: &mut u64,
    ) -> bool {
        parked.spill_finished(m, self.bytes);
        if m.glb.space.try_take(self.bytes) {
            return true;
        }
        if m.write_held.is_some() {
            return false;
        }
        for (k, input) in inputs.iter_mut().enumerate() {
            let resident = &rows.ready[k];
            super::storage::evict_rows_by(m, input, self.bytes, |y, in_dram| {
                (resident[y].is_some() && !self.wanted.contains(&y))
                    .then_some((!in_dram, std::cmp::Reverse(y)))
            });
            for (y, r) in rows.ready[k].iter_mut().enumerate() {
                if !input.in_glb[y] {
                    *r = None;
                }
            }
            if m.glb.space.available() >= self.bytes || m.write_held.is_some() {
                break;
            }
        }
        if m.glb.space.try_take(self.bytes) {
            return true;
        }
        if m.write_held.is_some() {
            return false;
        }
        *spilled_rows += super::storage::spill_output_rows(m, output, self.bytes).len() as u64;
        m.glb.space.try_take(self.bytes)
    }
}

/// The operands' rows: which the GLB holds (and from when), and the fills
/// on their way from DRAM. A fill is two requests: the DRAM read, sent when
/// the row is wanted, and the GLB write, sent when the DRAM's data arrives;
/// the fills wait here, by arrival, until the unit's clock reaches them.
struct Rows {
    /// Per operand, per row: when its GLB write completed (`None`: not in
    /// the GLB, or still on its way).
    ready: Vec<Vec<Option<Cycle>>>,
    /// Per operand, per row: the output row that reads it last.
    last_use: Vec<Vec<usize>>,
    /// Fills whose DRAM data arrives at the key's cycle: (operand, row),
    /// in the order they were sent.
    arriving: std::collections::BTreeMap<(Cycle, u64), (usize, usize)>,
    sent: u64,
}

impl Rows {
    fn arriving(&self, k: usize, y: usize) -> bool {
        self.arriving.values().any(|&(kk, yy)| (kk, yy) == (k, y))
    }

    /// Writes into the GLB every fill whose data arrives by `to` (at its
    /// arrival, in arrival order), then moves the clock to `to`.
    fn advance(
        &mut self,
        m: &mut Machine,
        inputs: &mut [&mut TensorStore],
        to: Cycle,
    ) -> Result<()> {
        while let Some(entry) = self.arriving.first_entry() {
            let (arrival, _) = *entry.key();
            if arrival > to {
                break;
            }
            let (k, y) = entry.remove();
            self.land(m, inputs, arrival, k, y)?;
        }
        m.set_clock(to)
    }

    /// Writes fills into the GLB, earliest first, until every row of
    /// `wanted` of operand `k` is there; returns when the last of them is.
    fn wait_for(
        &mut self,
        m: &mut Machine,
        inputs: &mut [&mut TensorStore],
        k: usize,
        wanted: std::ops::Range<usize>,
    ) -> Result<Cycle> {
        let mut ready = m.clock;
        for y in wanted {
            while self.ready[k][y].is_none() {
                let Some(((arrival, _), (kk, yy))) = self.arriving.pop_first() else {
                    break;
                };
                self.land(m, inputs, arrival, kk, yy)?;
            }
            ready = ready.max(self.ready[k][y].unwrap_or(ready));
        }
        Ok(ready)
    }

    fn land(
        &mut self,
        m: &mut Machine,
        inputs: &mut [&mut TensorStore],
        arrival: Cycle,
        k: usize,
        y: usize,
    ) -> Result<()> {
        m.set_clock(arrival.max(m.clock))?;
        let input = &mut inputs[k];
        let written = m.glb_write(
            m.clock,
            DataType::Input,
            input.row_words(),
            input.row_bytes(),
        );
        input.fill_from_dram(y, written.end);
        self.ready[k][y] = Some(written.end);
        Ok(())
    }
}

/// Runs a GLB-side layer. `inputs` holds each distinct input tensor once;
/// `operand_of[i]` is the index in `inputs` of the operator's `i`-th operand
/// (so `x + x` reads one tensor for both). Each request is made at the
/// cycle it is sent (`Machine::set_clock`): an output row's fills when the
/// row starts, their GLB writes as their data arrives, the unit's reads
/// when its rows are in the GLB, its output when it is computed.
pub(super) fn run(
    m: &mut Machine,
    layer: &Layer,
    inputs: &mut [&mut TensorStore],
    operand_of: &[usize],
    output: &mut TensorStore,
    parked: &mut Parked<'_>,
    layer_start: Cycle,
) -> Result<LayerTiming> {
    let out_rows = output.shape.height;
    let first_operand = &inputs[operand_of.first().copied().unwrap_or(0)].shape;
    let mut glb_unit = GlbUnit::new(
        program(layer, [first_operand.height, first_operand.width])?,
        [first_operand.height, first_operand.width],
        output.shape.width,
    );
    let mut unit = RateServer::new(u64::from(m.arch.glb.bank_width_bytes));
    m.set_clock(layer_start)?;
    // One step per output row, or per input row of a streamed reduction.
    let steps = glb_unit.steps(out_rows);
    let mut rows = make_room_for_rows(m, inputs, &glb_unit, steps)?;
    let start = m.clock;
    let last_reader: Vec<bool> = inputs.iter().map(|i| i.readers_left <= 1).collect();

    let mut t = start;
    let mut first_compute = None;
    let mut last_compute = start;
    let mut compute = 0u64;
    let mut end = start;
    let mut spilled_rows = 0;
    for oy in 0..steps {
        rows.advance(m, inputs, t)?;
        m.trace_advance(t)?;
        m.trace_set(|p| p.step, t, oy as u64);
        let step = (oy, steps, t);
        let data_ready = gather_step_rows(
            m,
            layer,
            (inputs, &mut rows),
            (output, parked, &mut spilled_rows),
            &glb_unit,
            step,
        )?;
        rows.advance(m, inputs, data_ready)?;
        // The output row, computed from the rows the GLB now holds.
        let resident = Resident {
            inputs,
            operand_of,
            at: m.clock,
        };
        let out_dims = (output.shape.channels, output.shape.width);
        let (row, work, done) =
            compute_row(m, layer, &mut glb_unit, &mut unit, &resident, oy, out_dims)?;
        first_compute.get_or_insert(work.start);
        compute += work.end.since(work.start);
        last_compute = last_compute.max(done);
        rows.advance(m, inputs, done)?;
        if let Some(out_row) = glb_unit.step_output(oy) {
            let wait = |m: &mut Machine, free| rows.advance(m, inputs, free);
            let (written, spilled) = store_output_row(m, output, out_row, row.view(), wait)?;
            end = end.max(written);
            spilled_rows += u64::from(spilled);
        }
        release_input_rows(m, inputs, &rows, &last_reader, glb_unit.input_rows(oy), oy);
        // A spilled row that waited for a write-queue entry holds the unit.
        t = done.max(m.clock);
        m.events += 1;
    }
    land_last_fills(m, inputs, &mut rows, &last_reader, t)?;
    let first = first_compute.unwrap_or(start);
    Ok(LayerTiming {
        start: layer_start,
        end: end.max(last_compute),
        first_compute: first,
        last_compute,
        compute: compute.min(last_compute.since(first)),
        spilled_rows,
        // The GLB unit computes; the PE array has nothing to do.
        waits: [0; super::causes::Wait::COUNT],
        used_pes: 0,
    })
}

/// Per operand, the rows that are in the GLB when the layer starts, after
/// making room for two steps' worth when some input is in DRAM (the
/// layer starts once the write-backs that make it are done).
/// Sends the DRAM reads of step `oy`'s rows and of the next step's (each
/// operand's), from cycle `t`, and lands fills until the step's rows are
/// in the GLB; returns when the last of them is.
fn gather_step_rows(
    m: &mut Machine,
    layer: &Layer,
    (inputs, rows): (&mut [&mut TensorStore], &mut Rows),
    (output, parked, spilled_rows): (&mut TensorStore, &mut Parked<'_>, &mut u64),
    glb_unit: &GlbUnit,
    (oy, steps, t): (usize, usize, Cycle),
) -> Result<Cycle> {
    for k in 0..inputs.len() {
        let fetch = Fetch {
            k,
            wanted: glb_unit.input_rows(oy),
            ahead: if oy + 1 < steps {
                glb_unit.input_rows(oy + 1)
            } else {
                0..0
            },
        };
        if !fetch.send(m, inputs, rows, output, parked, spilled_rows)? {
            return Err(cannot_tile(m, layer, inputs[k].row_bytes()));
        }
    }
    let mut data_ready = t;
    for k in 0..inputs.len() {
        let wanted = glb_unit.input_rows(oy);
        data_ready = data_ready.max(rows.wait_for(m, inputs, k, wanted)?);
    }
    Ok(data_ready)
}

/// After the last step: lands the fills still on their way (rows fetched
/// ahead), then frees the rows of the operands this layer read last.
fn land_last_fills(
    m: &mut Machine,
    inputs: &mut [&mut TensorStore],
    rows: &mut Rows,
    last_reader: &[bool],
    t: Cycle,
) -> Result<()> {
    let last = rows
        .arriving
        .last_key_value()
        .map_or(t, |(&(c, _), _)| c.max(t));
    rows.advance(m, inputs, last)?;
    for (k, input) in inputs.iter_mut().enumerate() {
        if last_reader[k] {
            free_all_rows(m, input);
        }
    }
    Ok(())
}

fn make_room_for_rows(
    m: &mut Machine,
    inputs: &mut [&mut TensorStore],
    glb_unit: &GlbUnit,
    steps: usize,
) -> Result<Rows> {
    let mut rows = Rows {
        ready: Vec::new(),
        last_use: Vec::new(),
        arriving: std::collections::BTreeMap::new(),
        sent: 0,
    };
    for input in inputs.iter_mut() {
        let height = input.shape.height;
        let mut first_use = vec![usize::MAX; height];
        let mut last = vec![0usize; height];
        for oy in 0..steps {
            for y in glb_unit.input_rows(oy) {
                first_use[y] = first_use[y].min(oy);
                last[y] = oy;
            }
        }
        if !input.in_glb.iter().all(|&r| r) {
            let window_rows = (0..steps)
                .map(|oy| glb_unit.input_rows(oy).len())
                .max()
                .unwrap_or(0) as u64;
            let bytes = 2 * window_rows * input.row_bytes();
            let done = super::storage::evict_waiting(m, |m| {
                super::storage::evict_rows(m, input, bytes, |y| first_use[y])
            })?;
            m.set_clock(done)?;
        }
        rows.last_use.push(last);
    }
    let start = m.clock;
    for input in inputs.iter() {
        let ready = (0..input.shape.height).map(|y| input.in_glb[y].then_some(start));
        rows.ready.push(ready.collect());
    }
    Ok(rows)
}

/// The DRAM reads of operand `k`'s rows for an output row (`wanted`) and
/// the next one (`ahead`, fetched while the unit works), sent now.
struct Fetch {
    k: usize,
    wanted: std::ops::Range<usize>,
    ahead: std::ops::Range<usize>,
}

impl Fetch {
    /// Sends the reads of the rows neither in the GLB nor on their way,
    /// each once it has GLB room; false when a wanted row finds none.
    fn send(
        &self,
        m: &mut Machine,
        inputs: &mut [&mut TensorStore],
        rows: &mut Rows,
        output: &mut TensorStore,
        parked: &mut Parked<'_>,
        spilled_rows: &mut u64,
    ) -> Result<bool> {
        let k = self.k;
        for y in self.wanted.clone().chain(self.ahead.clone()) {
            if rows.ready[k][y].is_some() || rows.arriving(k, y) {
                continue;
            }
            let row_bytes = inputs[k].row_bytes();
            let room = Room {
                wanted: self.wanted.clone(),
                bytes: row_bytes,
            };
            match room.take(m, inputs, rows, (output, parked, spilled_rows), y)? {
                Taken::Yes => {}
                Taken::Later => break, // fetched when its output row runs
                Taken::Never => return Ok(false),
            }
            if let Some(free) = m.dram_read_queue_full() {
                if !self.wanted.contains(&y) {
                    m.glb.space.give_back(row_bytes);
                    break; // fetched when its output row runs
                }
                // Hold back until a read-queue entry frees (landing the
                // fills that arrive meanwhile).
                rows.advance(m, inputs, free)?;
            }
            let input = &mut inputs[k];
            let addr = input.dram_address(0, y, 0);
            let (words, bytes) = (input.row_words(), input.row_bytes());
            let arrival = m.dram_read(m.clock, addr, DataType::Input, words, bytes);
            input.in_glb[y] = true;
            rows.arriving.insert((arrival, rows.sent), (k, y));
            rows.sent += 1;
        }
        Ok(true)
    }
}

/// The GLB unit computes output row `oy` from the rows the GLB holds now
/// (`m.clock`, `resident.at`): its GLB reads are sent now, its work follows them. Returns
/// the row, the unit's work and when both are done.
fn compute_row(
    m: &mut Machine,
    layer: &Layer,
    glb_unit: &mut GlbUnit,
    unit: &mut RateServer,
    resident: &Resident<'_, '_>,
    oy: usize,
    out_dims: (usize, usize),
) -> Result<(ndarray::Array2<i16>, crate::sim::Grant, Cycle)> {
    let now = m.clock;
    let (inputs, operand_of) = (resident.inputs, resident.operand_of);
    let before = glb_unit.reads();
    let (lut_before, divisions_before) = (glb_unit.lut_reads(), glb_unit.divisions());
    let powers_before = glb_unit.powers();
    let mut row = ndarray::Array2::zeros(out_dims);
    glb_unit
        .output_row(resident, oy, row.view_mut())
        .map_err(|miss| missing_row(layer, miss, oy))?;
    let after = glb_unit.reads();
    let (mut reads, mut read_bytes) = (0u64, 0u64);
    for (operand, &k) in operand_of.iter().enumerate() {
        let words = after[operand] - before[operand];
        reads += words;
        read_bytes += words * inputs[k].word_bytes;
    }
    let glb = m.glb_read(now, DataType::Input, reads, read_bytes);
    let lut_reads = glb_unit.lut_reads() - lut_before;
    m.pe.rf_read(DataType::Weight, lut_reads);
    m.pe.lut_reads += lut_reads;
    let divisions = glb_unit.divisions() - divisions_before;
    let powers = glb_unit.powers() - powers_before;
    let busy_bytes = if powers > 0 {
        lrn_busy_bytes(read_bytes, powers, unit.units_per_cycle())
    } else if divisions == 0 {
        read_bytes
    } else {
        let bytes_per_cycle = unit.units_per_cycle();
        let word_bytes = inputs[operand_of.first().copied().unwrap_or(0)].word_bytes;
        // A float32 element is two words.
        let word_bytes = if layer.input_quant == FLOAT32_WORDS {
            2 * word_bytes
        } else {
            word_bytes
        };
        softmax_row_cycles(divisions, word_bytes, bytes_per_cycle, &m.arch.glb) * bytes_per_cycle
    };
    // The unit consumes the words as the GLB delivers them.
    let work = m.glb_unit_work(unit, glb.start, busy_bytes);
    m.trace_busy(|p| p.pool_busy, work.start, work.end);
    Ok((row, work, work.end.max(glb.end)))
}

/// Output row `oy`, computed now (`m.clock`): into the GLB if it has room,
/// else through it to DRAM, once the DRAM write queue has an entry for it
/// (the unit holds the row until then: `wait` moves its clock). Returns
/// when it is stored, and whether it spilled.
fn store_output_row(
    m: &mut Machine,
    output: &mut TensorStore,
    oy: usize,
    row: ArrayView2<'_, i16>,
    mut wait: impl FnMut(&mut Machine, Cycle) -> Result<()>,
) -> Result<(Cycle, bool)> {
    let (words, bytes) = (output.row_words(), output.row_bytes());
    if m.glb.space.try_take(bytes) {
        output.in_glb[oy] = true;
        let written = m.glb_write(m.clock, DataType::Output, words, bytes).end;
        output.write_row(oy, row, written);
        return Ok((written, false));
    }
    while let Some(free) = m.dram_write_queue_full() {
        m.write_holds += 1;
        wait(m, free.max(m.clock))?;
    }
    if output.dram_base.is_none() {
        output.dram_base = Some(m.allocator.allocate(output.bytes()));
    }
    let addr = output.dram_address(0, oy, 0);
    let end = super::storage::through_glb_to_dram(m, DataType::Output, words, bytes, addr);
    output.write_row(oy, row, end);
    output.in_dram[oy] = true;
    Ok((end, true))
}

/// Frees the input rows (of tensors no later layer reads) that no output
/// row after `oy` needs.
fn release_input_rows(
    m: &mut Machine,
    inputs: &mut [&mut TensorStore],
    rows: &Rows,
    last_reader: &[bool],
    read: std::ops::Range<usize>,
    oy: usize,
) {
    for (k, input) in inputs.iter_mut().enumerate() {
        if !last_reader[k] {
            continue;
        }
        for y in read.clone() {
            if rows.last_use[k][y] == oy && input.in_glb[y] {
                input.leave_glb(y);
                m.glb.space.give_back(input.row_bytes());
            }
        }
    }
}

/// Busy cycles of the GLB unit for a Softmax row of `outputs` outputs of
/// `word_bytes` bytes each (module docs): two streamed passes, a third
/// paced by the divider, and the divider's latency.
pub(super) fn softmax_row_cycles(
    outputs: u64,
    word_bytes: u64,
    bytes_per_cycle: u64,
    glb: &crate::arch::GlbConfig,
) -> u64 {
    let stream = |elements: u64| (elements * word_bytes).div_ceil(bytes_per_cycle.max(1));
    stream(2 * outputs) + stream(outputs).max(outputs) + u64::from(glb.divider_latency_cycles)
}

/// The bytes' worth of GLB-unit time an LRN row of `powers` outputs takes
/// when it read `read_bytes` (module docs): the longer of streaming them and
/// the power unit's cycles.
fn lrn_busy_bytes(read_bytes: u64, powers: u64, bytes_per_cycle: u64) -> u64 {
    let bytes_per_cycle = bytes_per_cycle.max(1);
    let stream = read_bytes.div_ceil(bytes_per_cycle);
    let power = powers * crate::hw::glb_unit::LRN_CYCLES_PER_ELEMENT;
    stream.max(power) * bytes_per_cycle
}
