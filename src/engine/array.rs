//! Convolution and fully connected layers on the PE array: the controller.
//!
//! Three actors share the event queue, each reserving the hardware at the
//! cycle its event runs:
//! - the **prefetcher** brings input rows that are not in the GLB from DRAM,
//!   a pass ahead of the array, as far as GLB space allows;
//! - the **array** runs step by step (a step = one piece of every active
//!   PE's dot products): it reads the step's new input words from the GLB,
//!   sends them on the input bus (multicast to the PEs that need them),
//!   forwards words shared with the previous row over the neighbour links,
//!   delivers weights in programmable mode, then computes; the next step's
//!   delivery overlaps this step's compute when the input RF holds two pieces;
//! - **write-back** drains each sub-pass's outputs over the output bus into
//!   the GLB, or through it to DRAM when the GLB is full (a spill).
//!
//! The values move too: words are copied from the tensor store into each
//! row's RF buffer, the PE datapath computes on those buffers, and outputs go
//! back to the store, from which the next layer reads them.

use std::collections::VecDeque;
use std::ops::Range;

use crate::error::{Error, Result};
use crate::hw::pe::accumulate;
use std::borrow::Cow;

use crate::mapping::schedule::{
    InputReuse, LayerState, LoopOrder, Schedule, ScheduleChoice, StepId, WeightFit,
    dram_words_estimate,
};
use crate::mapping::{ArrayPlan, Element};
use crate::numerics::ChannelRequant;
use crate::numerics::mac::Width;
use crate::sim::{Cycle, EventQueue, Phase};
use crate::units::DataType;
use crate::workload::ir::{Epilogue, Layer, Op, Shape};

use super::causes::{Arrivals, Ledger, TRACE_COMPUTING, TRACE_DRAIN, Wait};
use super::nonzero::NonzeroMacs;
use super::piece_reader::{PieceReader, RowDelivery, Windows};
use super::probes::Bus;
use super::step_map::StepMap;
use super::storage::{Parked, TensorStore, evict_waiting};
use super::{LayerTiming, Machine};

/// Output channels of several lanes that compute from the same pieces,
/// laid side by side so one multiply covers them all.
#[derive(Clone)]
struct LaneGroup {
    lanes: Vec<usize>,
    /// Piece list the lanes iterate over.
    list: usize,
    /// Output channel of each column.
    outputs: Vec<usize>,
    /// Columns of each lane (parallel to `lanes`).
    lane_columns: Vec<Range<usize>>,
    /// Per step: the columns that use the step's piece, and where their
    /// weights start in `weights` (`[piece element][column]`, centred).
    blocks: Vec<(Range<usize>, usize)>,
    weights: Vec<i16>,
    /// Per element of every piece in order (piece `k` starts at
    /// `element_base[k]`), per lane (parallel to `lanes`): how many of the
    /// lane's columns that use the piece have a non-zero weight for the
    /// element (`[element][lane]`, so one non-zero input adds one row to
    /// every lane's count). Zero-operand MACs are counted from these and the
    /// inputs' zeros.
    nonzero_weights: Vec<u32>,
    element_base: Vec<usize>,
    /// Per receiving row `r`: the group's PEs that take the sub-pass's
    /// inputs (a convolution lane's PE in row `r`, an FC lane's whole
    /// column), 0 beyond the last.
    receivers: Vec<u64>,
    /// PEs of each lane (parallel to `lanes`).
    lane_pes: Vec<usize>,
}

/// An output word on its way: `(channel, y, x)` and its value.
type OutWord = ((usize, usize, usize), i16);

/// What a step's computing PEs did, gathered lane by lane: the slowest
/// PE's cycles, (PE row, busy cycles) per PE for the trace, and (PE, busy
/// cycles) for the stepper's PE array.
struct StepWork {
    longest: u64,
    activity: Vec<(usize, u64)>,
    pes: Vec<(usize, u64)>,
}

/// One lane's share of a step: the lane (and its index `i` in its
/// group), the pass's receiving rows, the output columns it computes
/// (`width`) and the piece's length.
struct LaneWork {
    lane: usize,
    i: usize,
    rows: usize,
    width: u64,
    len: u64,
}

/// The counts of a step's computing PEs, summed over the lanes: MACs,
/// zero-operand MACs, busy cycles, and psum-RF reads (as many writes).
#[derive(Default)]
struct StepCounts {
    macs: u64,
    zero_macs: u64,
    busy_cycles: u64,
    psum_accesses: u64,
}

/// What one receiving PE row gets for a step: input words read from the
/// GLB, words forwarded from the row above, and the PEs that take them.
#[derive(Debug, Clone, Copy, Default)]
struct RowWords {
    from_glb: u64,
    from_link: u64,
    receivers: u64,
}

enum Event {
    Prefetch,
    /// The weight fetcher's retry, once a DRAM read-queue entry frees.
    FetchWeights,
    RowArrived {
        row: usize,
    },
    WeightsArrived {
        step: usize,
    },
    Step,
    Writeback(Drained),
}

/// A sub-pass's sums are off the output bus: the step that ended it, when
/// the bus was done, and whether its drain claimed a DRAM write-queue
/// entry (`ArrayLayer::step`), used or given back now.
#[derive(Clone, Copy)]
struct Drained {
    step: usize,
    bus_end: Cycle,
    claimed: bool,
}

/// What waits for a DRAM write-queue entry (docs/arch-format.md, `[dram]`).
#[derive(Default)]
struct HeldWrites {
    /// The step that ends a sub-pass whose outputs may go to DRAM first
    /// found the write queue full at this cycle (it is issued once an entry
    /// frees), and the retry scheduled for it.
    entry_wait: Option<Cycle>,
    entry_wake: Option<Cycle>,
    /// Input rows a tile is done with that a later tile reads again, kept
    /// in the GLB because their write-back found the write queue full
    /// (`ArrayLayer::refetch_later`); they leave once it is sent.
    refetch_rows: Vec<usize>,
}

/// Psum storage, typed by the accumulator the layer needs.
enum Psums {
    Narrow(Vec<Vec<i32>>),
    Wide(Vec<Vec<i64>>),
    /// The PEs' float32 mode (`super::float_mode`).
    Float(
        Vec<Vec<crate::numerics::ort_conv::FloatPsum>>,
        Box<super::float_mode::FloatMode>,
    ),
}

struct Geometry {
    kernel: [usize; 2],
    stride: [usize; 2],
    pad_top: usize,
    pad_left: usize,
    /// The layer's logical input shape (an FC layer sees `[N, 1, 1]`).
    logical: Shape,
}

pub(super) struct ArrayLayer<'a> {
    m: &'a mut Machine,
    layer: &'a Layer,
    /// The layer's plan, re-cut into weight tiles when the schedule is
    /// tile-major.
    plan: Cow<'a, ArrayPlan>,
    input: &'a mut TensorStore,
    output: &'a mut TensorStore,
    /// Tensors other layers still read, holding GLB rows this layer may need.
    parked: Parked<'a>,
    last_reader: bool,
    /// Reads each step's piece for the receiving rows.
    reader: PieceReader,
    /// Words per output element: 2 for a float32 output (`Requant::DynamicFloat`), else 1.
    words_per_output: usize,
    stages: Vec<ChannelRequant>,
    bias: Vec<i64>,
    groups_per_subpass: Vec<Vec<LaneGroup>>,
    /// The steps in order and the input rows each pass reads.
    schedule: Schedule,
    /// The point of the schedule space the layer runs.
    choice: ScheduleChoice,
    /// Cycles of a MAC with non-zero operands and of one with a zero
    /// operand, at the layer's precision (`[mac]`).
    mac_cycles: u64,
    zero_mac_cycles: u64,
    /// The output stage keeps the high byte of each output (an 8-bit output layer).
    reduce_output: bool,
    programmable: bool,
    weight_bytes: u64,
    // Input rows.
    row_ready: Vec<Option<Cycle>>,
    row_requested: Vec<bool>,
    prefetch_visit: usize,
    rows_reserve_bytes: u64,
    // Weights in programmable mode.
    weights_from_dram: WeightSource,
    weight_staged: StepMap<Cycle>,
    weight_requested: usize,
    /// The prefetcher's and the weight fetcher's pending retries.
    wakeups: [Option<Cycle>; 2],
    /// What waits for a DRAM write-queue entry.
    held: HeldWrites,
    weight_dram_base: u64,
    weight_step_offsets: Vec<u64>,
    /// Weight (and bias) words each step sends.
    weight_step_words: Vec<u64>,
    weight_staging_bytes: u64,
    // Array progress.
    next_step: usize,
    waiting: bool,
    compute_end: Vec<Cycle>,
    /// Sub-passes whose sums are still in the psum RF, draining onto the
    /// output bus: (entries per PE, cycle they have left), oldest first.
    psum_draining: VecDeque<(usize, Cycle)>,
    psums: Psums,
    rf: Vec<Vec<RowDelivery>>,
    first_compute: Option<Cycle>,
    last_compute: Cycle,
    compute_cycles: u64,
    end: Cycle,
    spilled_rows: u64,
    out_row_state: Vec<RowState>,
    layer_start: Cycle,
    /// Per PE row, for traces: when the current piece arrived, its size in
    /// RF entries, and the psums the row holds.
    row_arrival: Vec<Cycle>,
    row_entries: Vec<u64>,
    row_psums: Vec<u64>,
    /// Scratch: what each receiving row of the step gets from where, and
    /// when it had all its words and its first.
    per_row: Vec<RowWords>,
    row_words_at: Vec<(Cycle, Cycle)>,
    /// Scratch: the MACs with both operands non-zero of each PE of the
    /// lane group being computed.
    nonzero: NonzeroMacs,
    activity: Vec<(usize, u64)>,
    /// Per PE row, the distinct busy durations of a step and how many PEs
    /// end at each (reused across steps, for the trace).
    row_ends: Vec<Vec<(u64, i64)>>,
    /// When the rows and weights steps wait for were requested and arrived,
    /// and the array's cycles without computation by cause.
    arrivals: Arrivals,
    ledger: Ledger,
    /// Scratch: a step's wait marks, latest first.
    marks: Vec<(Cycle, Wait)>,
    /// Per lane, how many of its PEs (`Lane::pes`, first first) the layer
    /// gave MACs to.
    lane_pes_used: Vec<usize>,
    /// Per sub-pass (keyed by its last step): the output values on their
    /// way to the GLB or DRAM; and a spent buffer to reuse.
    outbox: StepMap<Vec<OutWord>>,
    spare_outbox: Vec<OutWord>,
    queue: EventQueue<Event>,
}

/// Where a step's operands came from: the GLB read grant's first cycle and
/// the cycle the last word reached the RFs.
#[derive(Clone, Copy)]
struct Delivery {
    glb_start: Cycle,
    end: Cycle,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum RowState {
    Unallocated,
    Glb,
    Dram,
}

/// Where programmable-mode weights come from on each pass.
#[derive(Clone, Copy, PartialEq, Eq)]
enum WeightSource {
    /// Fixed mode: weights never move.
    None,
    /// Every pass streams them from DRAM through a GLB staging buffer.
    DramEveryPass,
    /// Tile-major order: each tile's weights are loaded from DRAM in its
    /// first pass into a GLB tile buffer and re-read from it by every pass.
    GlbTile,
    /// Loaded from DRAM in the first pass, kept in the GLB, re-read every pass.
    GlbResident,
    /// Loaded once (DRAM, GLB staging, weight bus) into the PEs'
    /// scratchpads in the first pass, and kept there.
    Scratchpad,
}

pub(super) const LOOKAHEAD_STEPS: usize = 2;

impl<'a> ArrayLayer<'a> {
    // The pieces of engine state one layer borrows, plus its prepared weights:
    // a struct around them would only rename them.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        m: &'a mut Machine,
        layer: &'a Layer,
        numerics: super::widths::LayerNumerics,
        plan: &'a ArrayPlan,
        input: &'a mut TensorStore,
        output: &'a mut TensorStore,
        mut parked: Parked<'a>,
        start: Cycle,
        gathered: Option<GatheredWeights>,
    ) -> Result<Self> {
        let s = LayerStart::prepare(
            &mut *m,
            layer,
            &numerics,
            plan,
            (&mut *input, &*output),
            &mut parked,
            start,
            gathered,
        )?;
        let c = s.chosen;
        m.layer_candidates = Some((c.choice, c.survivors));
        let height = input.shape.height;
        let out_rows = output.shape.height;
        let total_steps = c.schedule.steps.len();
        Ok(ArrayLayer {
            last_reader: input.readers_left <= 1,
            parked,
            reader: piece_reader(layer, &numerics, &s.geometry, &c.plan),
            words_per_output: if crate::reference::is_dynamic(s.epilogue) {
                2
            } else {
                1
            },
            stages: (0..s.epilogue.bias.len())
                .map(|c| s.epilogue.output_stage.channel(c))
                .collect(),
            bias: s.epilogue.bias.clone(),
            psums: psums_for(layer, input, &c.plan, &c.groups_per_subpass),
            groups_per_subpass: c.groups_per_subpass,
            mac_cycles: u64::from(m.arch.mac.datapath_cycles(s.datapath)),
            zero_mac_cycles: u64::from(m.arch.mac.zero_datapath_cycles(s.datapath)),
            reduce_output: numerics.reduce_output,
            programmable: s.programmable,
            weight_bytes: numerics.weight_bytes,
            row_ready: (0..height)
                .map(|y| input.in_glb[y].then_some(s.start))
                .collect(),
            row_requested: input.in_glb.clone(),
            schedule: c.schedule,
            prefetch_visit: 0,
            choice: c.choice,
            rows_reserve_bytes: s.rows_reserve_bytes,
            weights_from_dram: c.source,
            weight_staged: StepMap::default(),
            weight_requested: 0,
            wakeups: [None; 2],
            held: HeldWrites::default(),
            weight_dram_base: s.weight_dram_base,
            weight_step_offsets: c.layout.step_offsets,
            weight_step_words: c.layout.step_words,
            weight_staging_bytes: c.staging_bytes,
            next_step: 0,
            waiting: false,
            compute_end: vec![Cycle::ZERO; total_steps],
            psum_draining: VecDeque::new(),
            rf: Vec::new(),
            first_compute: None,
            last_compute: s.start,
            compute_cycles: 0,
            end: s.start,
            spilled_rows: 0,
            out_row_state: vec![RowState::Unallocated; out_rows],
            layer_start: s.layer_start,
            row_arrival: Vec::new(),
            row_entries: Vec::new(),
            row_psums: Vec::new(),
            nonzero: NonzeroMacs::default(),
            per_row: Vec::new(),
            row_words_at: Vec::new(),
            activity: Vec::new(),
            row_ends: Vec::new(),
            arrivals: Arrivals::new(height, s.start),
            ledger: Ledger::default(),
            marks: Vec::new(),
            lane_pes_used: vec![0; c.plan.lanes.len()],
            outbox: StepMap::default(),
            spare_outbox: Vec::new(),
            queue: EventQueue::starting_at(s.start),
            m,
            layer,
            plan: c.plan,
            input,
            output,
        })
    }

    /// Runs the layer to completion.
    pub(super) fn run(mut self) -> Result<LayerTiming> {
        let start = self.queue.now();
        let layer_start = self.layer_start;
        self.queue.schedule(start, Phase::Start, Event::Prefetch);
        self.queue.schedule(start, Phase::Start, Event::Step);
        if self.weights_from_dram != WeightSource::None {
            self.request_weights(start);
        }
        if self.m.tracing() {
            self.trace_schedule(start);
        }
        while let Some((now, event)) = self.queue.pop() {
            // Inside a gap between steps the trace waits at its start: the
            // gap's causes are known, and traced, when the next step starts.
            let held = self.ledger.cursor().map_or(now, |c| c.min(now));
            self.m.set_clock(now)?;
            self.m.trace_advance(held)?;
            match event {
                Event::Prefetch => {
                    self.clear_wakeup(0, now);
                    self.prefetch(now)
                }
                Event::FetchWeights => {
                    self.clear_wakeup(1, now);
                    self.request_weights(now)
                }
                Event::RowArrived { row } => {
                    let words = self.input.row_words();
                    let bytes = self.input.row_bytes();
                    let grant = self.m.glb_write(now, DataType::Input, words, bytes);
                    self.arrivals.row_from_dram(row, now);
                    self.input.fill_from_dram(row, grant.end);
                    self.row_ready[row] = Some(grant.end);
                    if self.waiting {
                        self.waiting = false;
                        self.queue.schedule(grant.end, Phase::Start, Event::Step);
                    }
                }
                Event::WeightsArrived { step } => {
                    let words = self.step_weight_words(step);
                    let grant =
                        self.m
                            .glb_write(now, DataType::Weight, words, words * self.weight_bytes);
                    self.arrivals.weights_from_dram(step, now);
                    self.weight_staged.insert(step, grant.end);
                    if self.waiting {
                        self.waiting = false;
                        self.queue.schedule(grant.end, Phase::Start, Event::Step);
                    }
                }
                Event::Step => self.step(now)?,
                Event::Writeback(d) => self.writeback(d)?,
            }
        }
        if self.next_step < self.schedule.steps.len() {
            return Err(internal(
                self.layer,
                "the layer stopped before its last step (GLB deadlock)",
            ));
        }
        self.m.events += self.queue.processed();
        self.m.last_schedule = Some(self.layer_schedule());
        if self.programmable {
            self.m.glb.space.give_back(self.weight_staging_bytes);
        }
        if self.last_reader {
            free_all_rows(self.m, self.input);
        }
        let first = self.first_compute.unwrap_or(start);
        let busy_span = self.last_compute.since(first);
        let (waits, unexplained) = self.ledger.finish();
        if unexplained > 0 {
            return Err(internal(
                self.layer,
                &format!("{unexplained} cycles between steps have no named cause"),
            ));
        }
        Ok(LayerTiming {
            start: layer_start,
            end: self.end.max(self.last_compute),
            first_compute: first,
            last_compute: self.last_compute,
            compute: self.compute_cycles.min(busy_span),
            spilled_rows: self.spilled_rows,
            waits,
            used_pes: self.used_pes(),
        })
    }

    /// PEs the layer gave MACs to.
    fn used_pes(&self) -> u64 {
        let pes = (self.m.arch.pe_array.rows * self.m.arch.pe_array.cols) as usize;
        let mut used = vec![false; pes];
        for (lane, &n) in self.plan.lanes.iter().zip(&self.lane_pes_used) {
            for &pe in &lane.pes[..n] {
                used[pe] = true;
            }
        }
        used.iter().filter(|&&u| u).count() as u64
    }

    /// Traces the layer's schedule at its start (docs/traces.md): the loop
    /// order, weight tiles, and where weights and input rows are re-read from.
    fn trace_schedule(&mut self, start: Cycle) {
        let order = match self.choice.order {
            LoopOrder::PassMajor => 0,
            LoopOrder::WeightTileMajor => 1,
        };
        let weights_from = match self.weights_from_dram {
            WeightSource::None => 0,
            WeightSource::Scratchpad => 1,
            WeightSource::GlbResident | WeightSource::GlbTile => 2,
            WeightSource::DramEveryPass => 3,
        };
        let inputs_from = match (self.choice.order, self.choice.inputs) {
            (LoopOrder::WeightTileMajor, InputReuse::Refetch) => 1,
            _ => 0,
        };
        let tiles = self.plan.tiles() as u64;
        self.m.trace_set(|p| p.loop_order, start, order);
        self.m.trace_set(|p| p.weight_tiles, start, tiles);
        self.m.trace_set(|p| p.weights_from, start, weights_from);
        self.m.trace_set(|p| p.inputs_from, start, inputs_from);
    }

    /// The schedule the layer ran, for its statistics.
    fn layer_schedule(&self) -> super::LayerSchedule {
        let weights_from = match self.weights_from_dram {
            WeightSource::None => "lut",
            WeightSource::Scratchpad => "scratchpad",
            WeightSource::GlbResident | WeightSource::GlbTile => "glb",
            WeightSource::DramEveryPass => "dram",
        };
        let inputs_from = match (self.choice.order, self.choice.inputs) {
            (LoopOrder::WeightTileMajor, InputReuse::Refetch) => "dram",
            _ => "glb",
        };
        super::LayerSchedule {
            loop_order: self.choice.order.name().to_string(),
            tiles: self.plan.tiles() as u64,
            weights_from: weights_from.to_string(),
            inputs_from: inputs_from.to_string(),
            search: None,
        }
    }

    // ---- prefetcher -------------------------------------------------------

    fn prefetch(&mut self, now: Cycle) {
        // Bring the rows of the array's current pass and the next one.
        let current = self
            .schedule
            .steps
            .get(self.next_step)
            .map_or(usize::MAX, |s| s.visit);
        self.send_held_refetches(current);
        while self.prefetch_visit < self.schedule.visits()
            && self.prefetch_visit <= current.saturating_add(1)
        {
            let rows = self.schedule.rows_of_visit(self.prefetch_visit);
            for y in rows {
                if self.row_requested[y] {
                    continue;
                }
                if let Some(free) = self.m.dram_read_queue_full() {
                    // Hold back until a read-queue entry frees.
                    self.arrivals.rows_held_back(Some(Wait::InputDram));
                    self.wake(free, Event::Prefetch);
                    return;
                }
                let bytes = self.input.row_bytes();
                self.m.write_held = None;
                if !self.held.refetch_rows.is_empty() {
                    // A held write-back frees its row's space once sent.
                    self.m.write_held = self.m.dram_write_queue_full();
                }
                if !self.room_for_row(bytes, current) {
                    if let Some(free) = self.m.write_held.take() {
                        // An eviction's write-back waits for a DRAM
                        // write-queue entry: retry when one frees.
                        self.arrivals.rows_held_back(Some(Wait::DramWrite));
                        self.wake(free, Event::Prefetch);
                        return;
                    }
                    // Wait for space; a pass completion reschedules us.
                    self.arrivals.rows_held_back(Some(Wait::GlbSpace));
                    return;
                }
                let base = self.input.dram_address(0, y, 0);
                let done =
                    self.m
                        .dram_read(now, base, DataType::Input, self.input.row_words(), bytes);
                self.row_requested[y] = true;
                self.arrivals.row_requested(y, now);
                self.input.in_glb[y] = true;
                self.queue
                    .schedule(done, Phase::Complete, Event::RowArrived { row: y });
            }
            self.prefetch_visit += 1;
        }
        self.arrivals.rows_held_back(None);
    }

    /// Schedules `event` (a fetcher's retry) at `at`, once: a retry already
    /// due by then does the work.
    fn wake(&mut self, at: Cycle, event: Event) {
        let slot = match event {
            Event::Prefetch => &mut self.wakeups[0],
            _ => &mut self.wakeups[1],
        };
        if slot.is_some_and(|due| due <= at) {
            return;
        }
        *slot = Some(at);
        self.queue.schedule(at, Phase::Start, event);
    }

    fn clear_wakeup(&mut self, which: usize, now: Cycle) {
        if self.wakeups[which].is_some_and(|due| due <= now) {
            self.wakeups[which] = None;
        }
    }

    // ---- weights (programmable mode) ---------------------------------------

    fn step_weight_words(&self, step: usize) -> u64 {
        self.weight_step_words[step]
    }

    /// Issues DRAM reads for the weights of the next steps, up to the lookahead.
    fn request_weights(&mut self, now: Cycle) {
        let limit = (self.next_step + LOOKAHEAD_STEPS + 1).min(self.schedule.steps.len());
        while self.weight_requested < limit {
            let step = self.weight_requested;
            let from_dram = match self.weights_from_dram {
                WeightSource::DramEveryPass => true,
                WeightSource::GlbResident | WeightSource::GlbTile | WeightSource::Scratchpad => {
                    self.schedule.steps[step].pass == 0
                }
                WeightSource::None => false,
            };
            if from_dram && let Some(free) = self.m.dram_read_queue_full() {
                // Hold back until a read-queue entry frees.
                self.arrivals.weights_held_back(Some(Wait::WeightDram));
                self.wake(free, Event::FetchWeights);
                return;
            }
            self.weight_requested += 1;
            self.arrivals.weights_requested(step, now);
            if from_dram {
                let words = self.step_weight_words(step);
                let addr = self.weight_dram_base + self.weight_step_offsets[step];
                let done = self.m.dram_read(
                    now,
                    addr,
                    DataType::Weight,
                    words,
                    words * self.weight_bytes,
                );
                self.queue
                    .schedule(done, Phase::Complete, Event::WeightsArrived { step });
            } else {
                self.weight_staged.insert(step, now);
            }
        }
        self.arrivals.weights_held_back(None);
    }

    // ---- the array ----------------------------------------------------------

    fn step(&mut self, now: Cycle) -> Result<()> {
        let Some(&id) = self.schedule.steps.get(self.next_step) else {
            return Ok(());
        };
        let s = self.next_step;
        let Some(ready) = self.operands_ready(now, id, s) else {
            self.waiting = true;
            return Ok(());
        };
        if ready > now {
            self.queue.schedule(ready, Phase::Start, Event::Step);
            return Ok(());
        }
        let last_of_subpass = self.ends_subpass(s, id);
        let claims_entry = last_of_subpass && self.may_spill(id);
        if claims_entry && let Some(free) = self.m.dram_write_queue_full() {
            self.hold_for_write_entry(now, free);
            return Ok(());
        }
        self.held.entry_wake = None;
        if self.m.tracing() {
            self.trace_issue(now, id, s);
        }
        let inputs = self.deliver_inputs(now, id);
        let weights = self.deliver_weights(now, id);
        let delivered = inputs.end;
        let mut start = delivered.max(weights.end);
        if let Some(previous) = s.checked_sub(1) {
            start = start.max(self.compute_end[previous]);
        }
        let before_psum_room = start;
        if id.piece == 0 {
            let entries = self.max_lane_channels(id.subpass);
            start = self.psum_room(entries, start);
            self.m.psum_entries(start, entries as i64);
            self.init_psums(id, start);
        }
        let duration = self.compute(id, start)?;
        self.record_waits(now, id, before_psum_room, (inputs, weights));
        let first_computation = self.ledger.cursor().is_none();
        self.ledger.step(start, duration, &self.marks);
        let end = start + duration;
        if self.m.tracing() {
            self.trace_stall_cause(start, duration, first_computation);
        }
        if !self.m.trace_quiet_before(end) {
            self.trace_input_rfs(id, end);
        }
        self.compute_end[s] = end;
        if duration > 0 {
            self.first_compute.get_or_insert(start);
            self.compute_cycles += duration;
            self.last_compute = self.last_compute.max(end);
        }
        self.next_step += 1;
        if self.programmable {
            self.weights_consumed(s, now);
        }
        if last_of_subpass {
            self.drain_subpass(id, s, end, claims_entry);
        }
        let last_of_visit = self
            .schedule
            .steps
            .get(s + 1)
            .is_none_or(|n| n.visit != id.visit);
        if last_of_visit {
            self.release_rows(id.visit, delivered);
        }
        if self.next_step < self.schedule.steps.len() {
            // The next delivery may start as soon as its RF buffer is free.
            let mut next = now;
            if let Some(previous) = (s + 1).checked_sub(self.plan.rf_buffers) {
                next = next.max(self.compute_end[previous]);
            }
            self.queue
                .schedule(next.max(delivered), Phase::Start, Event::Step);
        }
        Ok(())
    }

    /// Step `s`'s weights left the staging buffer for the scratchpads at
    /// its issue (`now`): the fetcher may stage more.
    fn weights_consumed(&mut self, s: usize, now: Cycle) {
        self.weight_staged.remove(s);
        self.arrivals.weights_consumed(s);
        self.request_weights(now);
    }

    /// Whether step `s` (`id`) is its sub-pass's last.
    fn ends_subpass(&self, s: usize, id: StepId) -> bool {
        self.schedule
            .steps
            .get(s + 1)
            .is_none_or(|n| n.subpass != id.subpass || n.pass != id.pass)
    }

    /// Traces the step `s` (`id`) issued at `now`: where the schedule is.
    fn trace_issue(&mut self, now: Cycle, id: StepId, s: usize) {
        self.m.trace_set(|p| p.pass, now, id.pass as u64);
        self.m.trace_set(|p| p.subpass, now, id.subpass as u64);
        self.m.trace_set(|p| p.step, now, s as u64);
        let tile = match self.choice.order {
            LoopOrder::PassMajor => 0,
            LoopOrder::WeightTileMajor => id.subpass / self.plan.subpasses_per_tile.max(1),
        };
        self.m.trace_set(|p| p.weight_tile, now, tile as u64);
        self.m.trace_set(|p| p.visit, now, id.visit as u64);
    }

    /// Traces each row's input RF holding the piece of step `id` from its
    /// arrival to the step's end.
    fn trace_input_rfs(&mut self, id: StepId, end: Cycle) {
        self.count_row_input_entries(id);
        for r in 0..self.row_arrival.len() {
            let entries = self.row_entries[r] as i64;
            if entries > 0 {
                self.m
                    .trace_add(|p| p.row_input_rf[r], self.row_arrival[r], entries);
                self.m.trace_add(|p| p.row_input_rf[r], end, -entries);
            }
        }
    }

    /// Step `s` (`id`) ended a sub-pass at `end`: the sums are final, the
    /// output stage runs as they leave the PEs, and they go onto the output
    /// bus, holding their psum-RF entries until the bus has taken them; the
    /// write-back follows the bus. `claim`: the outputs may go to DRAM, and
    /// the drain claims a DRAM write-queue entry (free: `Self::step` held
    /// the step until one was) for the write sent as the bus is done.
    fn drain_subpass(&mut self, id: StepId, s: usize, end: Cycle, claim: bool) {
        self.apply_output_stage(id, s);
        let (words, bytes) = self.output_words(id);
        let bus = self.m.bus(Bus::Output, end, bytes);
        if claim {
            self.m.dram.claim_write_entry(bus.end);
        }
        let entries = self.max_lane_channels(id.subpass);
        self.psum_draining.push_back((entries, bus.end));
        self.m.psum_entries(bus.end, -(entries as i64));
        self.m.pe.rf_read(DataType::Psum, words);
        if self.m.tracing() {
            for r in 0..self.row_psums.len() {
                let entries = self.row_psums[r] as i64;
                self.m.trace_add(|p| p.row_psum_rf[r], bus.end, -entries);
            }
        }
        let event = Event::Writeback(Drained {
            step: s,
            bus_end: bus.end,
            claimed: claim,
        });
        self.queue.schedule(bus.end, Phase::Complete, event);
    }

    /// The step at `now` ends a sub-pass whose outputs may go to DRAM, and
    /// the DRAM write queue has no entry for its drain until `free`: the
    /// step is not issued (the sub-pass keeps its psum-RF entries, the array
    /// waits: `Wait::DramWrite`) and is tried again then.
    fn hold_for_write_entry(&mut self, now: Cycle, free: Cycle) {
        if self.held.entry_wait.is_none() {
            self.held.entry_wait = Some(now);
            self.m.write_holds += 1;
        }
        if self.held.entry_wake != Some(free) {
            self.held.entry_wake = Some(free);
            self.queue.schedule(free, Phase::Start, Event::Step);
        }
    }

    /// Whether sub-pass `id`'s outputs may go to DRAM: one of the output
    /// rows it writes is not in the GLB (spilled, or not placed yet: placed
    /// when first written, `Self::output_row`).
    fn may_spill(&self, id: StepId) -> bool {
        if !self.plan.rows_are_positions {
            // FC outputs are [N, 1, 1]: one row, 0.
            return self.out_row_state[0] != RowState::Glb;
        }
        let rows = self.rows_of_pass(id.pass);
        pass_positions(&self.plan, id.pass)[..rows]
            .iter()
            .any(|&(y, _)| self.out_row_state[y] != RowState::Glb)
    }

    /// When step `s` (`id`) can be issued, at `now` or later: once its
    /// pass's input rows are in the GLB, the RF buffer its piece goes into
    /// is free and (programmable mode) its weights are staged; `None` while
    /// a row or the weights have not even been requested or arrived.
    fn operands_ready(&self, now: Cycle, id: StepId, s: usize) -> Option<Cycle> {
        let mut ready = now;
        let early = id.pass > 0 && self.m.sabotage == Some(super::Sabotage::ReadRowsEarly);
        if !early {
            for y in self.schedule.rows_of_pass[id.pass].clone() {
                ready = ready.max(self.row_ready[y]?);
            }
        }
        if let Some(previous) = s.checked_sub(self.plan.rf_buffers) {
            ready = ready.max(self.compute_end[previous]);
        }
        if self.weights_from_dram != WeightSource::None {
            ready = ready.max(*self.weight_staged.get(s)?);
        }
        Some(ready)
    }

    /// The marks of the step's wait chain, latest first (`causes`): the
    /// psum-RF wait, the later operand's bus transfer, its GLB read grant,
    /// then why the step could not be issued before `now`.
    fn record_waits(
        &mut self,
        now: Cycle,
        id: StepId,
        before_psum_room: Cycle,
        (inputs, weights): (Delivery, Delivery),
    ) {
        let mut marks = std::mem::take(&mut self.marks);
        marks.clear();
        marks.push((before_psum_room, Wait::PsumSpace));
        if weights.end > inputs.end {
            marks.push((weights.glb_start, Wait::WeightBus));
        } else {
            marks.push((inputs.glb_start, Wait::InputBus));
        }
        marks.push((now, Wait::GlbPort));
        if let Some(since) = self.held.entry_wait.take() {
            // The step waited from `since` for a DRAM write-queue entry for
            // its sub-pass's drain.
            marks.push((since, Wait::DramWrite));
        }
        let s = self.next_step;
        let staged = if self.weights_from_dram == WeightSource::None {
            None
        } else {
            self.weight_staged.get(s).map(|&t| (s, t))
        };
        let rows = self.schedule.rows_of_pass[id.pass].clone();
        self.arrivals
            .issue_chain(rows, &self.row_ready, staged, &mut marks);
        self.marks = marks;
    }

    /// The trace's `controller.stall_cause` for a step starting at `start`:
    /// the gap's causes, computing from `start` (when a gap or the fill
    /// ends there), and drain after the layer's last step.
    fn trace_stall_cause(&mut self, start: Cycle, duration: u64, first_computation: bool) {
        if duration > 0 {
            let gap = self.ledger.last_gap();
            for &(from, cause) in gap {
                self.m
                    .trace_set(|p| p.stall_cause, from, cause.trace_code());
            }
            if first_computation || !gap.is_empty() {
                self.m.trace_set(|p| p.stall_cause, start, TRACE_COMPUTING);
            }
        }
        if self.next_step + 1 == self.schedule.steps.len()
            && let Some(end) = self.ledger.cursor()
        {
            self.m.trace_set(|p| p.stall_cause, end, TRACE_DRAIN);
        }
    }

    /// When a sub-pass needing `entries` psum-RF entries per PE can start,
    /// at `at` or later: once the sub-passes still draining onto the output
    /// bus leave it that room (the psum RF is bounded; a slow output bus
    /// holds the array back).
    fn psum_room(&mut self, entries: usize, at: Cycle) -> Cycle {
        let capacity = self.m.arch.pe_array.psum_rf_entries as usize;
        let mut t = at;
        loop {
            while self
                .psum_draining
                .front()
                .is_some_and(|&(_, left)| left <= t)
            {
                self.psum_draining.pop_front();
            }
            let held: usize = self.psum_draining.iter().map(|&(e, _)| e).sum();
            match self.psum_draining.front() {
                Some(&(_, left)) if held + entries > capacity => t = left,
                _ => return t,
            }
        }
    }

    fn max_lane_channels(&self, subpass: usize) -> usize {
        self.plan
            .lanes
            .iter()
            .filter_map(|l| l.subpasses.get(subpass).map(|r| r.len()))
            .max()
            .unwrap_or(0)
    }

    /// Takes GLB space for one prefetched input row. When the GLB is full:
    /// an input that later layers read too (a fan-out tensor) keeps its
    /// rows only until this layer needs the room, so rows it is done with
    /// leave first (written back to DRAM when DRAM has no copy); then, if
    /// the row is for the pass the array is on (waiting cannot free space:
    /// only a pass end does), rows of parked tensors leave (`Parked`).
    /// Otherwise the prefetcher waits for a pass end.
    fn room_for_row(&mut self, bytes: u64, current: usize) -> bool {
        if self.m.glb.space.try_take(bytes) {
            return true;
        }
        if !self.last_reader {
            // Rows with a DRAM copy go first (dropping them costs nothing),
            // then the rows this layer finished with earliest. Write-backs
            // read the GLB from `now`, before the rows that take the space
            // arrive from DRAM.
            let (row_last_visit, requested) = (&self.schedule.row_last_visit, &self.row_requested);
            super::storage::evict_rows_by(self.m, self.input, bytes, |y, in_dram| {
                (requested[y] && row_last_visit[y] < current).then_some((!in_dram, y))
            });
            if self.m.glb.space.try_take(bytes) {
                return true;
            }
        }
        // A held write-back frees its row's space once it is sent: wait for
        // it rather than give up more rows.
        if self.prefetch_visit > current || self.m.write_held.is_some() {
            return false;
        }
        self.parked.make_room(self.m, bytes);
        if self.m.glb.space.try_take(bytes) {
            return true;
        }
        self.m.write_held.is_none() && self.last_resort_room(bytes, current)
    }

    /// The pass the array is on lacks a row and nothing else can give way:
    /// rows of the layer's own input that arrived for later passes leave
    /// (needed last first), then its output rows spill to DRAM. Without
    /// this the layer could never finish the pass (docs/mapping.md, "What
    /// the GLB must hold"); runs that got their room otherwise never get here.
    fn last_resort_room(&mut self, bytes: u64, visit: usize) -> bool {
        self.parked.spill_finished(self.m, bytes);
        if self.m.glb.space.try_take(bytes) {
            return true;
        }
        if self.m.write_held.is_some() {
            return false;
        }
        let current = self.schedule.rows_of_visit(visit);
        let (schedule, ready) = (&self.schedule, &self.row_ready);
        super::storage::evict_rows_by(self.m, self.input, bytes, |y, _| {
            let next = schedule.next_use(y, visit)?;
            (ready[y].is_some() && !current.contains(&y) && next > visit)
                .then_some(std::cmp::Reverse(next))
        });
        for y in 0..self.input.shape.height {
            if !self.input.in_glb[y] && self.row_ready[y].is_some() {
                self.row_ready[y] = None;
                self.row_requested[y] = false;
            }
        }
        let in_glb = &self.input.in_glb;
        self.held.refetch_rows.retain(|&y| in_glb[y]);
        if self.m.glb.space.try_take(bytes) {
            return true;
        }
        if self.m.write_held.is_some() {
            return false;
        }
        let evicted = super::storage::spill_output_rows(self.m, self.output, bytes);
        for &y in &evicted {
            self.out_row_state[y] = RowState::Dram;
        }
        self.spilled_rows += evicted.len() as u64;
        self.m.glb.space.try_take(bytes)
    }

    /// Frees the input rows that leave after visit `visit` (their last, or
    /// with `InputReuse::Refetch` their last in a tile: written back first
    /// when DRAM has no copy, fetched again for the next tile) when no later
    /// layer reads them, and moves the prefetcher on.
    fn release_rows(&mut self, visit: usize, at: Cycle) {
        if !self.last_reader {
            // The rows stay for the later readers; the prefetcher still has
            // to move on when some rows were never requested (an input that
            // starts in DRAM).
            if self.row_requested.iter().any(|&r| !r) {
                self.queue.schedule(at, Phase::Start, Event::Prefetch);
            }
            return;
        }
        let mut freed = false;
        // Sabotage: rows still needed by the next visit leave too.
        let last = visit + usize::from(self.m.sabotage == Some(super::Sabotage::FreeRowsEarly));
        for y in self.schedule.rows_of_visit(visit) {
            let leaves = self.schedule.row_releases[y]
                .iter()
                .any(|v| (visit..=last).contains(v));
            if leaves && self.input.in_glb[y] {
                let due = self.schedule.row_releases[y].contains(&visit);
                if due && self.schedule.next_use(y, visit + 1).is_some() && !self.refetch_later(y) {
                    continue; // held in the GLB until its write-back is sent
                }
                self.held.refetch_rows.retain(|&r| r != y);
                self.input.leave_glb(y);
                self.m.glb.space.give_back(self.input.row_bytes());
                freed = true;
            }
        }
        if freed {
            self.queue.schedule(at, Phase::Start, Event::Prefetch);
        }
        // The prefetcher also advances when the array moves to a new visit.
        self.queue.schedule(at, Phase::Start, Event::Prefetch);
    }

    /// Row `y` leaves the GLB now and a later tile reads it again: it is
    /// written back if DRAM has no copy, and the prefetcher fetches it again.
    /// While the DRAM write queue is full the row stays in the GLB, held
    /// (false; `Self::send_held_refetches` retries when an entry frees).
    fn refetch_later(&mut self, y: usize) -> bool {
        if !self.input.in_dram[y] {
            if let Some(free) = self.m.dram_write_queue_full() {
                if !self.held.refetch_rows.contains(&y) {
                    self.held.refetch_rows.push(y);
                    self.m.write_holds += 1;
                }
                self.wake(free, Event::Prefetch);
                return false;
            }
            if self.input.dram_base.is_none() {
                self.input.dram_base = Some(self.m.allocator.allocate(self.input.bytes()));
            }
            let (words, bytes) = (self.input.row_words(), self.input.row_bytes());
            let addr = self.input.dram_address(0, y, 0);
            super::storage::write_back(self.m, DataType::Input, words, bytes, addr);
            self.input.write_back(y);
        }
        self.row_requested[y] = false;
        self.row_ready[y] = None;
        true
    }

    /// The held rows of `Self::refetch_later`, now the array is on visit
    /// `current`: one the prefetcher has already passed by its next use
    /// stays in the GLB (no write-back: it is read there); one read by no
    /// later visit leaves without one; the others leave once their
    /// write-back is sent, while the write queue has entries.
    fn send_held_refetches(&mut self, current: usize) {
        let row_bytes = self.input.row_bytes();
        for y in std::mem::take(&mut self.held.refetch_rows) {
            let next = self.schedule.next_use(y, current);
            if next.is_some_and(|v| v < self.prefetch_visit) {
                continue;
            }
            if next.is_some() && !self.refetch_later(y) {
                continue; // held again
            }
            self.input.leave_glb(y);
            self.m.glb.space.give_back(row_bytes);
        }
    }

    /// Receiving PE rows in pass `pass`: one per output position of a
    /// convolution, one for an FC layer (each lane's PEs split the inputs).
    fn rows_of_pass(&self, pass: usize) -> usize {
        if self.plan.rows_are_positions {
            pass_positions(&self.plan, pass).len()
        } else {
            1
        }
    }

    /// Reads, sends and forwards the step's input words; returns when the
    /// last receiving PE has them.
    fn deliver_inputs(&mut self, now: Cycle, id: StepId) -> Delivery {
        let per_row = self.fill_input_rfs(now, id);
        let delivery = self.send_inputs(now, &per_row);
        self.per_row = per_row;
        delivery
    }

    /// Sends the words of `per_row` from the GLB (read at `now`) and over
    /// the links; returns when the last receiving PE has them.
    fn send_inputs(&mut self, now: Cycle, per_row: &[RowWords]) -> Delivery {
        if self.m.tracing() {
            self.row_arrival.clear();
            self.row_arrival
                .resize(self.m.arch.pe_array.rows as usize, now);
        }
        let glb_words: u64 = per_row.iter().map(|r| r.from_glb).sum();
        if glb_words == 0 && per_row.iter().all(|r| r.from_link == 0) {
            return Delivery {
                glb_start: now,
                end: now,
            };
        }
        let wb = self.input.word_bytes;
        let glb = self
            .m
            .glb_read(now, DataType::Input, glb_words, glb_words * wb);
        let delivered = self.stream_rows(now, glb.start, per_row);
        if self.m.tracing() {
            for (r, a) in self.row_arrival.iter_mut().enumerate() {
                *a = if self.plan.rows_are_positions {
                    self.row_words_at.get(r).map_or(now, |t| t.0)
                } else {
                    delivered
                };
            }
        }
        Delivery {
            glb_start: glb.start,
            end: delivered,
        }
    }

    /// Fills every lane group's input RF buffers with the step's piece
    /// (values read from the GLB at `now`, or forwarded from the previous
    /// row), counts the RF writes and link reads, and returns what each
    /// receiving row gets from where (in `self.per_row`, taken).
    fn fill_input_rfs(&mut self, now: Cycle, id: StepId) -> Vec<RowWords> {
        let plan: &ArrayPlan = &self.plan;
        let positions = pass_positions(plan, id.pass);
        let groups = &self.groups_per_subpass[id.subpass];
        let rows = if plan.rows_are_positions {
            positions.len()
        } else {
            1
        };
        self.rf.resize(groups.len(), Vec::new());
        let mut per_row = std::mem::take(&mut self.per_row);
        per_row.clear();
        per_row.resize(rows, RowWords::default());
        let (mut rf_writes, mut link_reads) = (0u64, 0u64);
        for (g, group) in groups.iter().enumerate() {
            let buffers = &mut self.rf[g];
            buffers.resize(rows, RowDelivery::default());
            let buffers = &mut buffers[..rows];
            let pieces = &plan.piece_lists[group.list];
            if id.piece >= pieces.len() {
                buffers.iter_mut().for_each(RowDelivery::clear);
                continue;
            }
            let piece = (group.list, &pieces[..], id.piece);
            let linked = plan.rows_are_positions;
            self.reader
                .fill_rows(self.input, now, piece, positions, linked, buffers);
            let len = pieces[id.piece].len() as u64;
            for (r, b) in buffers.iter().enumerate() {
                let receivers = group.receivers.get(r).copied().unwrap_or(0);
                rf_writes += len * receivers;
                link_reads += b.from_link * receivers;
                per_row[r].from_glb += b.from_glb;
                per_row[r].from_link += b.from_link;
                per_row[r].receivers += receivers;
            }
        }
        self.m.pe.rf_write(DataType::Input, rf_writes);
        self.m.array_accesses.read(DataType::Input, link_reads);
        per_row
    }

    /// Streams each row's words onto the input bus as the GLB delivers
    /// them (from `glb_start`) and over the links from the row above;
    /// returns when the last row has its words, and per row when it had
    /// them all and its first (`self.row_words_at`).
    fn stream_rows(&mut self, now: Cycle, glb_start: Cycle, per_row: &[RowWords]) -> Cycle {
        let wb = self.input.word_bytes;
        let mut at = std::mem::take(&mut self.row_words_at);
        at.clear();
        at.resize(per_row.len(), (now, now));
        let mut delivered = now;
        for (r, words) in per_row.iter().enumerate() {
            if words.receivers == 0 {
                continue;
            }
            let mut t = now;
            let mut first = Cycle(u64::MAX);
            if words.from_glb > 0 {
                let bus = self.m.bus(Bus::Input, glb_start + 1, words.from_glb * wb);
                t = t.max(bus.end);
                first = first.min(bus.start);
            }
            if words.from_link > 0 && r > 0 {
                let (above_arrived, above_first) = at[r - 1];
                let link_index = (r - 1).min(self.m.noc.links.len().saturating_sub(1));
                let link = self.m.link(link_index, above_first + 1, words.from_link);
                t = t.max(link.end).max(above_arrived + 1);
                first = first.min(link.start);
            }
            at[r] = (t, if first == Cycle(u64::MAX) { t } else { first });
            delivered = delivered.max(t);
        }
        self.row_words_at = at;
        delivered
    }

    /// Input RF entries per PE row for the step's piece (FC: the row of
    /// each receiving PE), into `row_entries`; only the trace needs them.
    fn count_row_input_entries(&mut self, id: StepId) {
        let pe_rows = self.m.arch.pe_array.rows as usize;
        let cols = self.m.arch.pe_array.cols as usize;
        let rows = self.rows_of_pass(id.pass);
        self.row_entries.clear();
        self.row_entries.resize(pe_rows, 0);
        for group in &self.groups_per_subpass[id.subpass] {
            let len = self.plan.piece_lists[group.list]
                .get(id.piece)
                .map_or(0, Vec::len) as u64;
            for &l in &group.lanes {
                for (i, &pe) in self.plan.lanes[l].pes.iter().enumerate() {
                    if self.plan.rows_are_positions && i >= rows {
                        break;
                    }
                    self.row_entries[pe / cols] += len;
                }
            }
        }
    }

    /// Sends the step's weights over the weight bus (programmable mode).
    fn deliver_weights(&mut self, now: Cycle, id: StepId) -> Delivery {
        let nothing = Delivery {
            glb_start: now,
            end: now,
        };
        if !self.programmable {
            return nothing;
        }
        if self.weights_from_dram == WeightSource::Scratchpad && id.pass > 0 {
            return nothing;
        }
        let groups = &self.groups_per_subpass[id.subpass];
        let mut glb_words = 0u64;
        let mut rf_words = 0u64;
        for group in groups {
            let Some((cols, _)) = group.blocks.get(id.piece) else {
                continue;
            };
            let len = self.plan.piece_lists[group.list][id.piece].len() as u64;
            for (i, &l) in group.lanes.iter().enumerate() {
                let lane = &self.plan.lanes[l];
                let width = overlap(&group.lane_columns[i], cols) as u64;
                let weights = width * len;
                // Biases travel with the first piece's weights, straight into
                // the psum RF (counted there, in `init_psums`).
                let biases = if id.piece == 0 {
                    lane.subpasses.get(id.subpass).map_or(0, |r| r.len()) as u64
                } else {
                    0
                };
                let active = if self.plan.rows_are_positions {
                    pass_positions(&self.plan, id.pass)
                        .len()
                        .min(lane.pes.len())
                } else {
                    lane.pes.len()
                } as u64;
                glb_words += weights + biases;
                rf_words += weights * active;
            }
        }
        let bytes = glb_words * self.weight_bytes;
        let glb = self.m.glb_read(now, DataType::Weight, glb_words, bytes);
        self.m.pe.rf_write(DataType::Weight, rf_words);
        let bus = self.m.bus(Bus::Weight, glb.start + 1, bytes);
        Delivery {
            glb_start: glb.start,
            end: bus.end,
        }
    }

    /// Biases into the psum RF at the start of a sub-pass (at `start`).
    fn init_psums(&mut self, id: StepId, start: Cycle) {
        let groups = &self.groups_per_subpass[id.subpass];
        let rows = self.rows_of_pass(id.pass);
        let mut writes = 0u64;
        let init = |v: &mut Vec<i64>, outputs: &[usize], bias: &[i64]| {
            v.clear();
            v.extend(outputs.iter().map(|&o| bias[o]));
        };
        match &mut self.psums {
            Psums::Wide(p) => {
                for (g, group) in groups.iter().enumerate() {
                    for r in 0..rows {
                        init(
                            &mut p[g * self.plan.positions_per_pass.max(1) + r],
                            &group.outputs,
                            &self.bias,
                        );
                    }
                }
            }
            Psums::Float(p, _) => super::float_mode::clear_psums(
                p,
                groups.iter().map(|g| g.outputs.len()),
                rows,
                self.plan.positions_per_pass.max(1),
            ),
            Psums::Narrow(p) => {
                for (g, group) in groups.iter().enumerate() {
                    for r in 0..rows {
                        let v = &mut p[g * self.plan.positions_per_pass.max(1) + r];
                        v.clear();
                        // Biases fit i32: checked with the accumulator bound.
                        v.extend(group.outputs.iter().map(|&o| self.bias[o] as i32));
                    }
                }
            }
        }
        for group in groups {
            for &l in &group.lanes {
                let lane = &self.plan.lanes[l];
                let width = lane.subpasses.get(id.subpass).map_or(0, |r| r.len()) as u64;
                let active = if self.plan.rows_are_positions {
                    rows.min(lane.pes.len()) as u64
                } else {
                    lane.pes.len() as u64
                };
                writes += width * active;
            }
        }
        self.m.pe.rf_write(DataType::Psum, writes);
        if self.m.tracing() {
            let cols = self.m.arch.pe_array.cols as usize;
            self.row_psums.clear();
            self.row_psums.resize(self.m.arch.pe_array.rows as usize, 0);
            for group in &self.groups_per_subpass[id.subpass] {
                for &l in &group.lanes {
                    let lane = &self.plan.lanes[l];
                    let width = lane.subpasses.get(id.subpass).map_or(0, |r| r.len()) as u64;
                    for (i, &pe) in lane.pes.iter().enumerate() {
                        if self.plan.rows_are_positions && i >= rows {
                            break;
                        }
                        self.row_psums[pe / cols] += width;
                    }
                }
            }
            for r in 0..self.row_psums.len() {
                let entries = self.row_psums[r] as i64;
                self.m.trace_add(|p| p.row_psum_rf[r], start, entries);
            }
        }
        if !self.programmable {
            // Fixed mode: biases live in the look-up table with the weights.
            self.m.pe.rf_read(DataType::Weight, writes);
            self.m.pe.lut_reads += writes;
        }
    }

    /// The PEs compute the step from `start`; returns its duration (the slowest PE).
    fn compute(&mut self, id: StepId, start: Cycle) -> Result<u64> {
        let groups = std::mem::take(&mut self.groups_per_subpass[id.subpass]);
        let rows = self.rows_of_pass(id.pass);
        let mut work = StepWork {
            longest: 0,
            activity: std::mem::take(&mut self.activity),
            pes: Vec::new(),
        };
        work.activity.clear();
        let mut counts = StepCounts::default();
        for (g, group) in groups.iter().enumerate() {
            let Some((cols, offset)) = group.blocks.get(id.piece).cloned() else {
                continue;
            };
            let len = self.plan.piece_lists[group.list][id.piece].len();
            let weights = &group.weights[offset..offset + len * cols.len()];
            let piece = (group.list, id.piece);
            self.accumulate_rows(g, rows, (&cols, &group.outputs), weights, piece);
            self.count_nonzero_macs(g, group, id.piece, rows);
            for (i, &l) in group.lanes.iter().enumerate() {
                let width = overlap(&group.lane_columns[i], &cols) as u64;
                if width > 0 {
                    let lane = LaneWork {
                        lane: l,
                        i,
                        rows,
                        width,
                        len: len as u64,
                    };
                    self.count_lane(&lane, start, &mut work, &mut counts);
                }
            }
        }
        self.groups_per_subpass[id.subpass] = groups;
        self.add_step_counts(&counts);
        let StepWork {
            longest,
            activity,
            pes,
        } = work;
        self.m.pe_step(start, start + longest, || pes);
        if !activity.is_empty() && !self.m.trace_quiet_before(start + longest) {
            // (A step over before the trace window nets to nothing: skipped.)
            self.trace_row_activity(&activity, start);
        }
        self.activity = activity;
        Ok(longest)
    }

    /// The step's PE counts into the machine's: MACs and zero-operand
    /// MACs, busy cycles, the RF and look-up-table accesses.
    fn add_step_counts(&mut self, c: &StepCounts) {
        let pe = &mut self.m.pe;
        pe.macs += c.macs;
        pe.zero_macs += c.zero_macs;
        pe.busy_cycles += c.busy_cycles;
        pe.rf_read(DataType::Input, c.macs);
        pe.rf_read(DataType::Weight, c.macs);
        if !self.programmable {
            pe.lut_reads += c.macs;
        }
        // The accumulator loads and stores each output's psum once per piece.
        pe.rf_read(DataType::Psum, c.psum_accesses);
        pe.rf_write(DataType::Psum, c.psum_accesses);
    }

    /// Per receiving row, per lane of `group` (lane group `g`), the MACs
    /// one PE of the lane makes on `piece` with both operands non-zero,
    /// into `self.nonzero` (`super::nonzero`).
    fn count_nonzero_macs(&mut self, g: usize, group: &LaneGroup, piece: usize, rows: usize) {
        let lanes = group.lanes.len();
        let base = group.element_base[piece] * lanes;
        let len = self.plan.piece_lists[group.list][piece].len();
        let table = &group.nonzero_weights[base..base + len * lanes];
        let inputs = &self.rf[g][..rows];
        self.nonzero
            .count(table, inputs, &group.lane_pes, self.plan.rows_are_positions);
    }

    /// Each row's psums of lane group `g` accumulate the piece's `weights`
    /// (columns `cols`) times the row's RF values.
    fn accumulate_rows(
        &mut self,
        g: usize,
        rows: usize,
        (cols, outputs): (&Range<usize>, &[usize]),
        weights: &[i16],
        (list, piece): (usize, usize),
    ) {
        let stride = self.plan.positions_per_pass.max(1);
        for r in 0..rows {
            let x = &self.rf[g][r].values;
            match &mut self.psums {
                Psums::Narrow(p) => {
                    accumulate::<i32>(&mut p[g * stride + r][cols.clone()], weights, x)
                }
                Psums::Wide(p) => {
                    accumulate::<i64>(&mut p[g * stride + r][cols.clone()], weights, x)
                }
                Psums::Float(p, mode) => mode.accumulate(
                    &mut p[g * stride + r][cols.clone()],
                    &outputs[cols.clone()],
                    weights,
                    (x, &self.plan.piece_lists[list][piece]),
                ),
            }
        }
    }

    /// One lane's PEs in the step: MACs, zero-operand MACs and busy cycles
    /// (from its inputs' and its columns' weights' non-zeros, in
    /// `self.nonzero`) into `counts`, the slowest PE into `work`, and the
    /// per-PE work the stepper and the trace take.
    fn count_lane(
        &mut self,
        w: &LaneWork,
        start: Cycle,
        work: &mut StepWork,
        counts: &mut StepCounts,
    ) {
        let lane = &self.plan.lanes[w.lane];
        let macs_per_pe = w.width * w.len;
        let active: &[usize] = if self.plan.rows_are_positions {
            &lane.pes[..w.rows.min(lane.pes.len())]
        } else {
            &lane.pes
        };
        let (mac_cycles, zero_mac_cycles) = (self.mac_cycles, self.zero_mac_cycles);
        let cycles_of = |nonzero: u64| {
            let zero = macs_per_pe - nonzero;
            nonzero * mac_cycles + zero * zero_mac_cycles
        };
        // A PE's cycles are linear in its non-zero MACs: the slowest PE is
        // the one with the most or the fewest; the busy cycles sum from
        // the lane's total.
        let n = active.len() as u64;
        let nonzero = self.nonzero.lane(w.i);
        if n > 0 {
            let slowest = cycles_of(nonzero.fewest).max(cycles_of(nonzero.most));
            work.longest = work.longest.max(slowest);
        }
        let zero = macs_per_pe * n - nonzero.sum;
        counts.macs += macs_per_pe * n;
        counts.zero_macs += zero;
        counts.busy_cycles += nonzero.sum * mac_cycles + zero * zero_mac_cycles;
        counts.psum_accesses += w.width * n;
        let used = &mut self.lane_pes_used[w.lane];
        *used = (*used).max(active.len());
        if self.m.stepper.is_none() && !self.m.tracing() {
            return;
        }
        let row_of = |k: usize| if self.plan.rows_are_positions { k } else { 0 };
        let pe_cycles = |k: usize| cycles_of(self.nonzero.pe(row_of(k), w.i));
        if self.m.stepper.is_some() {
            let each = active.iter().enumerate().map(|(k, &pe)| (pe, pe_cycles(k)));
            work.pes.extend(each);
        }
        if self.m.tracing() {
            let cols = self.m.arch.pe_array.cols as usize;
            for (k, &pe) in active.iter().enumerate() {
                let cycles = pe_cycles(k);
                work.activity.push((pe / cols, cycles));
                if let Some((t, p)) = &mut self.m.trace
                    && let Some(&id) = p.pe_busy.get(pe)
                {
                    t.busy(id, start, start + cycles);
                }
            }
        }
    }

    /// The trace's active PEs and busy span per PE row for a step from
    /// `start`: one change per row and distinct duration, +n at the start
    /// and -k at each end (rows hold few distinct durations, one per lane
    /// width). `activity`: (PE row, busy cycles) of every computing PE.
    fn trace_row_activity(&mut self, activity: &[(usize, u64)], start: Cycle) {
        let rows = self.m.arch.pe_array.rows as usize;
        let mut per_row = std::mem::take(&mut self.row_ends);
        per_row.iter_mut().for_each(Vec::clear);
        per_row.resize(rows, Vec::new());
        for &(row, cycles) in activity {
            let ends = &mut per_row[row];
            match ends.iter_mut().find(|(c, _)| *c == cycles) {
                Some((_, n)) => *n += 1,
                None => ends.push((cycles, 1)),
            }
        }
        for (row, ends) in per_row.iter().enumerate() {
            if ends.is_empty() {
                continue;
            }
            let total: i64 = ends.iter().map(|&(_, n)| n).sum();
            let busiest = ends.iter().map(|&(c, _)| c).max().unwrap_or(0);
            self.m.trace_add(|p| p.row_active_pes[row], start, total);
            for &(cycles, n) in ends {
                self.m
                    .trace_add(|p| p.row_active_pes[row], start + cycles, -n);
            }
            self.m
                .trace_busy(|p| p.row_busy[row], start, start + busiest);
        }
        self.row_ends = per_row;
    }

    /// Words (and bytes) a sub-pass writes out.
    fn output_words(&self, id: StepId) -> (u64, u64) {
        let rows = self.rows_of_pass(id.pass);
        let words: u64 = self.groups_per_subpass[id.subpass]
            .iter()
            .map(|g| g.outputs.len() as u64 * rows as u64)
            .sum::<u64>()
            * self.words_per_output as u64;
        (words, words * self.output.word_bytes)
    }

    /// The output stage of every PE of a finished sub-pass: the values that
    /// leave on the output bus (written where they land by `writeback`).
    fn apply_output_stage(&mut self, id: StepId, step: usize) {
        let mut outbox = std::mem::take(&mut self.spare_outbox);
        outbox.clear();
        let positions = pass_positions(&self.plan, id.pass);
        let rows = self.rows_of_pass(id.pass);
        let stride = self.plan.positions_per_pass.max(1);
        for (g, group) in self.groups_per_subpass[id.subpass].iter().enumerate() {
            for r in 0..rows {
                // FC outputs are [N, 1, 1]: position (0, 0).
                let (y, x) = if self.plan.rows_are_positions {
                    positions[r]
                } else {
                    (0, 0)
                };
                for (col, &o) in group.outputs.iter().enumerate() {
                    let acc = match &self.psums {
                        Psums::Narrow(p) => i64::from(p[g * stride + r][col]),
                        Psums::Wide(p) => p[g * stride + r][col],
                        Psums::Float(p, mode) => {
                            let v =
                                p[g * stride + r][col].sum() + mode.scales.bias(o, self.bias[o]);
                            let value = self.stages[o].quantize_float(v).unwrap_or(0);
                            outbox.push(((o, y, x), value));
                            continue;
                        }
                    };
                    if self.words_per_output == 2 {
                        // A float32 output: two words, channels 2o and 2o + 1.
                        let v = self.stages[o].apply_float(acc).unwrap_or(f32::NAN);
                        let [hi, lo] = crate::numerics::ort::f32_words(v);
                        outbox.push(((2 * o, y, x), hi));
                        outbox.push(((2 * o + 1, y, x), lo));
                        continue;
                    }
                    let value = self.stages[o].apply(acc);
                    let value = if self.reduce_output {
                        crate::numerics::mac::reduce(value, Width::W8)
                    } else {
                        value
                    };
                    outbox.push(((o, y, x), value));
                }
            }
        }
        self.outbox.insert(step, outbox);
    }

    /// The outputs of a sub-pass, off the output bus, into the GLB (or
    /// through it to DRAM when the GLB has no room for their rows), at `at`
    /// (`m.clock`). `claimed`: the drain's claimed DRAM write-queue entry is
    /// used now or given back. A spill without one (its rows were in the
    /// GLB when the sub-pass's last step issued, and spilled since to make
    /// room) waits staged in the GLB while the write queue is full.
    fn writeback(&mut self, d: Drained) -> Result<()> {
        let Drained {
            step,
            bus_end: at,
            claimed,
        } = d;
        if claimed {
            self.m.dram.release_write_entry(at);
        }
        let id = self.schedule.steps[step];
        let (glb_words, spill_words, spill_addr) = self.output_places(id);
        if spill_words > 0
            && let Some(free) = self.m.dram_write_queue_full()
        {
            self.m.write_holds += 1;
            let event = Event::Writeback(Drained {
                step,
                bus_end: free,
                claimed: false,
            });
            self.queue.schedule(free, Phase::Complete, event);
            return Ok(());
        }
        let wb = self.output.word_bytes;
        let mut end = at;
        let mut glb_end = at;
        if glb_words > 0 {
            glb_end = self
                .m
                .glb_write(at, DataType::Output, glb_words, glb_words * wb)
                .end;
            end = end.max(glb_end);
        }
        if spill_words > 0 {
            let addr = spill_addr.unwrap_or(0);
            let done = super::storage::through_glb_to_dram(
                self.m,
                DataType::Output,
                spill_words,
                spill_words * wb,
                addr,
            );
            end = end.max(done);
        }
        // The values land: in the GLB's copy as its write completes, or in DRAM's.
        if let Some(mut values) = self.outbox.remove(step) {
            for (at_word, value) in values.drain(..) {
                self.output.write_word(at_word, value, glb_end);
            }
            self.spare_outbox = values;
        }
        self.end = self.end.max(end);
        Ok(())
    }

    /// Where the outputs of sub-pass `id` go, placing each row the first
    /// time it is written ([`Self::output_row`]): the words into GLB rows,
    /// the words to DRAM and the DRAM address of the first of those.
    fn output_places(&mut self, id: StepId) -> (u64, u64, Option<u64>) {
        let positions = pass_positions(&self.plan, id.pass).to_vec();
        let rows = self.rows_of_pass(id.pass);
        let per_position: u64 = self.groups_per_subpass[id.subpass]
            .iter()
            .map(|g| g.outputs.len() as u64)
            .sum::<u64>()
            * self.words_per_output as u64;
        let first_channel = self.groups_per_subpass[id.subpass]
            .first()
            .and_then(|g| g.outputs.first().copied())
            .unwrap_or(0)
            * self.words_per_output;
        let mut glb_words = 0u64;
        let mut spill_words = 0u64;
        let mut spill_addr = None;
        // FC outputs are [N, 1, 1]: one position, (0, 0).
        let written: Vec<(usize, usize)> = if self.plan.rows_are_positions {
            positions[..rows].to_vec()
        } else {
            vec![(0, 0)]
        };
        for (y, x) in written {
            match self.output_row(y) {
                RowState::Glb => glb_words += per_position,
                _ => {
                    spill_words += per_position;
                    spill_addr.get_or_insert(self.output.dram_address(first_channel, y, x));
                }
            }
        }
        (glb_words, spill_words, spill_addr)
    }

    /// Decides, the first time row `y` of the output is written, whether it
    /// stays in the GLB (if it fits next to the input rows the prefetcher
    /// still needs) or goes to DRAM.
    fn output_row(&mut self, y: usize) -> RowState {
        if self.out_row_state[y] == RowState::Unallocated {
            let bytes = self.output.row_bytes();
            let state = if self.m.glb.space.available() >= bytes + self.rows_reserve_bytes
                && self.m.glb.space.try_take(bytes)
            {
                self.output.in_glb[y] = true;
                RowState::Glb
            } else {
                if self.output.dram_base.is_none() {
                    self.output.dram_base = Some(self.m.allocator.allocate(self.output.bytes()));
                }
                self.output.in_dram[y] = true;
                self.spilled_rows += 1;
                RowState::Dram
            };
            self.out_row_state[y] = state;
        }
        self.out_row_state[y]
    }
}

/// The layer's reader of pieces for `plan`: its windows and input operands.
fn piece_reader(
    layer: &Layer,
    numerics: &super::widths::LayerNumerics,
    g: &Geometry,
    plan: &ArrayPlan,
) -> PieceReader {
    let windows = Windows {
        stride: g.stride,
        pad_top: g.pad_top,
        pad_left: g.pad_left,
        logical: g.logical,
        input_zero: layer.input_quant.zero() as i16,
        reduce_input: numerics.reduce_input,
    };
    PieceReader::new(plan, windows)
}

/// The layer's window geometry, its weights, its epilogue and its groups.
fn geometry_of(layer: &Layer) -> Result<(Geometry, WeightsOf<'_>, &Epilogue, usize)> {
    match &layer.op {
        Op::Conv2d(c) => Ok((
            Geometry {
                kernel: c.kernel,
                stride: c.stride,
                pad_top: c.padding.top,
                pad_left: c.padding.left,
                logical: layer.input_shape,
            },
            WeightsOf::Conv(c),
            &c.epilogue,
            c.groups,
        )),
        Op::FullyConnected(f) => Ok((
            Geometry {
                kernel: [1, 1],
                stride: [1, 1],
                pad_top: 0,
                pad_left: 0,
                logical: Shape::new(f.in_features(), 1, 1),
            },
            WeightsOf::Fc(f),
            &f.epilogue,
            1,
        )),
        _ => Err(internal(
            layer,
            "the array controller got a layer without weights",
        )),
    }
}

/// Makes room for the prefetcher (`bytes`: two passes' rows, when some
/// input row is in DRAM): parked tensors, then the resident input rows
/// needed last, go back to DRAM (written if DRAM has no copy, each once
/// the DRAM write queue has an entry for it). Returns when the layer
/// starts: once those write-backs are done.
fn room_for_prefetch(
    m: &mut Machine,
    parked: &mut Parked<'_>,
    input: &mut TensorStore,
    schedule: &Schedule,
    bytes: u64,
) -> Result<Cycle> {
    if bytes == 0 {
        return Ok(m.clock);
    }
    let start = evict_waiting(m, |m| parked.make_room(m, bytes))?;
    m.set_clock(start)?;
    let first_visit = &schedule.row_first_visit;
    let start = evict_waiting(m, |m| {
        super::storage::evict_rows(m, input, bytes, |y| first_visit[y])
    })?;
    m.set_clock(start)?;
    Ok(start)
}

/// What a layer's start decides before its state is built: its schedule,
/// where its weights come from, the GLB room it makes and when it can
/// start.
struct LayerStart<'a> {
    geometry: Geometry,
    epilogue: &'a Epilogue,
    /// What the MACs run: an integer precision or the float32 mode.
    datapath: crate::arch::MacDatapath,
    programmable: bool,
    chosen: Chosen<'a>,
    weight_dram_base: u64,
    /// When the layer was handed over, and when its first step may issue
    /// (after the evictions its room needed).
    layer_start: Cycle,
    start: Cycle,
    rows_reserve_bytes: u64,
}

impl<'a> LayerStart<'a> {
    #[allow(clippy::too_many_arguments)]
    fn prepare(
        m: &mut Machine,
        layer: &'a Layer,
        numerics: &super::widths::LayerNumerics,
        plan: &'a ArrayPlan,
        (input, output): (&mut TensorStore, &TensorStore),
        parked: &mut Parked<'_>,
        start: Cycle,
        gathered: Option<GatheredWeights>,
    ) -> Result<Self> {
        let (geometry, weights_of, epilogue, groups) = geometry_of(layer)?;
        let groups_per_subpass = match gathered {
            Some(g) => g.0,
            None => gather(plan, groups, &weights_of),
        };
        let g = &geometry;
        let schedule = Schedule::new(
            plan,
            g.kernel[0],
            g.stride[0],
            g.pad_top,
            input.shape.height,
        );
        let two_passes_bytes = 2 * schedule.max_pass_rows() as u64 * input.row_bytes();
        let mut rows_reserve_bytes = if input.in_glb.iter().all(|&r| r) {
            0
        } else {
            two_passes_bytes
        };
        let layer_start = start;
        let start = room_for_prefetch(m, parked, input, &schedule, rows_reserve_bytes)?;
        let datapath = numerics
            .datapath()
            .ok_or_else(|| internal(layer, "a weighted layer without a MAC precision"))?;
        let programmable = m.arch.pe_array.weight_store == crate::arch::WeightStore::Programmable;
        let chosen = choose_schedule(
            m,
            layer,
            (plan, groups_per_subpass, schedule),
            (&weights_of, groups),
            (input, output),
            (numerics.weight_bytes, rows_reserve_bytes),
        )?;
        let weight_dram_base = if programmable {
            let base = m.allocator.allocate(chosen.layout.layer_bytes);
            stage_weights(
                m,
                parked,
                input,
                &chosen.schedule,
                chosen.staging_bytes,
                layer,
            )?;
            base
        } else {
            0
        };
        room_for_first_pass(m, parked, input, &chosen.schedule, layer)?;
        // Evictions that waited for DRAM write-queue entries delay the start.
        let start = start.max(m.clock);
        if rows_reserve_bytes == 0 && !input.in_glb.iter().all(|&r| r) {
            rows_reserve_bytes = two_passes_bytes;
        }
        Ok(LayerStart {
            geometry,
            epilogue,
            datapath,
            programmable,
            chosen,
            weight_dram_base,
            layer_start,
            start,
            rows_reserve_bytes,
        })
    }
}

/// The schedule a layer runs (docs/mapping.md, "The schedule space"): its
/// plan (re-cut into weight tiles for the tile-major order), weights
/// gathered for it, the steps in order, and where the weights come from.
struct Chosen<'a> {
    plan: Cow<'a, ArrayPlan>,
    groups_per_subpass: Vec<Vec<LaneGroup>>,
    schedule: Schedule,
    choice: ScheduleChoice,
    source: WeightSource,
    staging_bytes: u64,
    layout: WeightLayout,
    /// The candidates the search simulates ([`rule_choice`]).
    survivors: Vec<ScheduleChoice>,
}

/// Chooses the layer's schedule: the pinned one (`EngineOptions::schedule`)
/// where it fits, else by the rule ([`rule_choice`]); a tile-major choice
/// re-plans the layer in tiles and gathers its weights again.
fn choose_schedule<'a>(
    m: &Machine,
    layer: &Layer,
    (plan, groups_per_subpass, schedule): (&'a ArrayPlan, Vec<Vec<LaneGroup>>, Schedule),
    (weights_of, groups): (&WeightsOf, usize),
    (input, output): (&TensorStore, &TensorStore),
    (weight_bytes, rows_reserve_bytes): (u64, u64),
) -> Result<Chosen<'a>> {
    let layout = WeightLayout::new(plan, &groups_per_subpass, &schedule, weight_bytes);
    let programmable = m.arch.pe_array.weight_store == crate::arch::WeightStore::Programmable;
    let (source, staging_bytes) = if programmable {
        let free = m.glb.space.available();
        layout.choose_source(m, plan, &groups_per_subpass, free, rows_reserve_bytes)
    } else {
        (WeightSource::None, 0)
    };
    let pass_major = WeightFit {
        words: layout.layer_bytes / weight_bytes.max(1),
        glb_bytes: staging_bytes,
        every_pass: source == WeightSource::DramEveryPass,
    };
    let state = layer_state(m, plan, &schedule, input, output);
    let (choice, survivors) = rule_choice(m, layer, plan, &state, (weight_bytes, pass_major))?;
    if choice.order == LoopOrder::PassMajor {
        return Ok(Chosen {
            plan: Cow::Borrowed(plan),
            groups_per_subpass,
            schedule,
            choice,
            source,
            staging_bytes,
            layout,
            survivors,
        });
    }
    let tiled = tiled_plan(layer, &m.arch, choice.tiles)?;
    let groups_per_subpass = gather(&tiled, groups, weights_of);
    let height = input.shape.height;
    let schedule = Schedule::ordered(&tiled, choice, schedule.rows_of_pass, height);
    let layout = WeightLayout::new(&tiled, &groups_per_subpass, &schedule, weight_bytes);
    let lookahead = layout.max_step_bytes * LOOKAHEAD_STEPS as u64;
    let (source, staging_bytes) = if programmable {
        (WeightSource::GlbTile, layout.max_tile_bytes + lookahead)
    } else {
        (WeightSource::None, 0)
    };
    Ok(Chosen {
        plan: Cow::Owned(tiled),
        groups_per_subpass,
        schedule,
        choice,
        source,
        staging_bytes,
        layout,
        survivors,
    })
}

/// The layer's plan cut into `tiles` weight tiles.
fn tiled_plan(layer: &Layer, arch: &crate::arch::Arch, tiles: usize) -> Result<ArrayPlan> {
    match crate::mapping::lu22::plan_tiled(layer, arch, tiles)? {
        crate::mapping::LayerPlan::Array(p) => Ok(p),
        _ => Err(internal(layer, "a weighted layer without an array plan")),
    }
}

/// The rule (docs/mapping.md, "The schedule space"): a convolution of
/// more than one pass whose pass-major weights stream from DRAM every pass
/// runs the candidate with the fewest estimated DRAM words
/// ([`dram_words_estimate`]), ties to pass-major, then keeping input rows
/// over re-fetching them, then fewer tiles; each tile-major mode is tried
/// at the fewest tiles that fit. A pinned choice runs where it fits.
///
/// Also returns the survivors of the search's pre-filter: pass-major and,
/// for each tile-major mode, the fewest tiles that fit and, among the
/// tiles with the fewest estimated DRAM words, the fewest and the most
/// (smaller tiles leave output rows and the prefetcher more room).
fn rule_choice(
    m: &Machine,
    layer: &Layer,
    plan: &ArrayPlan,
    state: &LayerState,
    (weight_bytes, pass_major): (u64, WeightFit),
) -> Result<(ScheduleChoice, Vec<ScheduleChoice>)> {
    let alone = |c: ScheduleChoice| Ok((c, vec![c]));
    if !has_weight_tile_orders(plan) {
        return alone(ScheduleChoice::PASS_MAJOR);
    }
    let state = *state;
    let pass_major_words = dram_words_estimate(&state, &ScheduleChoice::PASS_MAJOR, &pass_major);
    if let Some(mut pin) = m.schedule_pin {
        // At most one tile per output channel of the widest column.
        pin.tiles = pin.tiles.min(plan.max_lane_channels());
        if pin.order == LoopOrder::PassMajor || pin.tiles < 2 {
            return alone(ScheduleChoice::PASS_MAJOR);
        }
        let fit = tile_fit(m, layer, pin.tiles, weight_bytes)?;
        return alone(match dram_words_estimate(&state, &pin, &fit) {
            Some(_) => pin,
            None => ScheduleChoice::PASS_MAJOR,
        });
    }
    if schedule_space_is_one_point(&m.arch, plan) {
        return alone(ScheduleChoice::PASS_MAJOR);
    }
    // The rule moves off pass-major only when its weights stream every pass.
    let mut best = (
        match (pass_major.every_pass, pass_major_words) {
            (true, Some(words)) => words,
            (true, None) => u64::MAX,
            (false, _) => 0,
        },
        ScheduleChoice::PASS_MAJOR,
    );
    let mut survivors = vec![ScheduleChoice::PASS_MAJOR];
    for inputs in [InputReuse::Keep, InputReuse::Refetch] {
        // (words, choice) at the fewest fitting tiles, and at the fewest
        // estimated words with the fewest and with the most tiles.
        let mut fitting: Vec<(u64, ScheduleChoice)> = Vec::new();
        for tiles in 2..=plan.max_lane_channels() {
            let choice = ScheduleChoice {
                order: LoopOrder::WeightTileMajor,
                tiles,
                inputs,
            };
            let fit = tile_fit(m, layer, tiles, weight_bytes)?;
            if let Some(words) = dram_words_estimate(&state, &choice, &fit) {
                fitting.push((words, choice));
            }
        }
        let Some(&(words, fewest)) = fitting.first() else {
            continue;
        };
        if words < best.0 {
            best = (words, fewest);
        }
        let least = fitting.iter().map(|f| f.0).min().unwrap_or(words);
        let mut at_least = fitting.iter().filter(|f| f.0 == least).map(|f| f.1);
        for choice in [Some(fewest), at_least.clone().next(), at_least.next_back()]
            .into_iter()
            .flatten()
        {
            if !survivors.contains(&choice) {
                survivors.push(choice);
            }
        }
    }
    Ok((best.1, survivors))
}

/// Whether the plan has weight-tile orders at all: a convolution of more
/// than one pass (the tiles re-run every pass) with a lane of two output
/// channels or more (one tile per output channel at most).
fn has_weight_tile_orders(plan: &ArrayPlan) -> bool {
    plan.rows_are_positions && plan.passes() >= 2 && plan.max_lane_channels() >= 2
}

/// Whether the layer's schedule space is pass-major alone, from the layer's
/// plan and the machine's configuration (no dynamic state): so the search
/// runs it once, without forking the machine. Fixed weights: the
/// weight-tile orders exist to move weights fewer times, and fixed weights
/// never move (the search chose pass-major on every fixed-weight layer of
/// every shipped workload, at 2-4x the run's time; docs/mapping.md).
pub(super) fn schedule_space_is_one_point(arch: &crate::arch::Arch, plan: &ArrayPlan) -> bool {
    arch.pe_array.weight_store == crate::arch::WeightStore::Fixed || !has_weight_tile_orders(plan)
}

/// The layer as the rule sees it at its start.
fn layer_state(
    m: &Machine,
    plan: &ArrayPlan,
    schedule: &Schedule,
    input: &TensorStore,
    output: &TensorStore,
) -> LayerState {
    let height = input.shape.height as u64;
    let resident = input.in_glb.iter().filter(|&&r| r).count() as u64;
    let glb_only = (0..input.shape.height)
        .filter(|&y| input.in_glb[y] && !input.in_dram[y])
        .count() as u64;
    let row_words = input.row_words();
    LayerState {
        passes: plan.passes() as u64,
        room_bytes: m.glb.space.available() + resident * input.row_bytes(),
        input_bytes: input.bytes(),
        input_words: height * row_words,
        input_dram_words: (height - resident) * row_words,
        input_glb_only_words: glb_only * row_words,
        two_passes_bytes: 2 * schedule.max_pass_rows() as u64 * input.row_bytes(),
        output_bytes: output.bytes(),
        output_word_bytes: output.word_bytes,
        last_reader: input.readers_left <= 1,
    }
}

/// The weights of the layer cut into `tiles` tiles: all its words, and the
/// GLB bytes of its largest tile plus the fetcher's lookahead.
fn tile_fit(m: &Machine, layer: &Layer, tiles: usize, weight_bytes: u64) -> Result<WeightFit> {
    let plan = tiled_plan(layer, &m.arch, tiles)?;
    let (groups, icg, ocg) = match &layer.op {
        Op::Conv2d(c) => (
            c.groups,
            c.in_channels_per_group(),
            c.out_channels() / c.groups.max(1),
        ),
        _ => {
            return Err(internal(
                layer,
                "a tile-major schedule for a layer without windows",
            ));
        }
    };
    let per_step = crate::mapping::schedule::step_weight_words(&plan, groups, icg, ocg);
    let per_tile = crate::mapping::schedule::tile_weight_words(&plan, &per_step);
    let max_step = per_step.iter().flatten().max().copied().unwrap_or(0);
    Ok(WeightFit {
        words: per_tile.iter().sum(),
        glb_bytes: (per_tile.iter().max().copied().unwrap_or(0)
            + max_step * LOOKAHEAD_STEPS as u64)
            * weight_bytes,
        every_pass: false,
    })
}

/// Where a programmable layer's weights sit in DRAM, step by step.
struct WeightLayout {
    /// Byte offset of each step's weights (later passes re-read pass 0's).
    step_offsets: Vec<u64>,
    /// Weight (and bias) words of each step ([`step_weight_words`]).
    step_words: Vec<u64>,
    layer_bytes: u64,
    max_step_bytes: u64,
    /// Bytes of the largest weight tile (the whole layer for one tile).
    max_tile_bytes: u64,
}

impl WeightLayout {
    fn new(
        plan: &ArrayPlan,
        groups_per_subpass: &[Vec<LaneGroup>],
        schedule: &Schedule,
        weight_bytes: u64,
    ) -> WeightLayout {
        let steps = &schedule.steps;
        // A step's words depend on its sub-pass and piece alone: counted
        // once for each, not once per pass.
        let mut per_piece: Vec<Vec<Option<u64>>> = vec![Vec::new(); groups_per_subpass.len()];
        let words: Vec<u64> = steps
            .iter()
            .map(|s| {
                let known = &mut per_piece[s.subpass];
                if known.len() <= s.piece {
                    known.resize(s.piece + 1, None);
                }
                *known[s.piece].get_or_insert_with(|| {
                    step_weight_words(plan, &groups_per_subpass[s.subpass], s)
                })
            })
            .collect();
        let mut step_offsets = Vec::with_capacity(steps.len());
        let mut offset = 0u64;
        let mut tile_bytes = vec![0u64; plan.tiles()];
        for (i, &s) in steps.iter().enumerate() {
            if s.pass == 0 {
                step_offsets.push(offset);
                offset += words[i] * weight_bytes;
                let tile = s.subpass / plan.subpasses_per_tile.max(1);
                tile_bytes[tile.min(plan.tiles() - 1)] += words[i] * weight_bytes;
            } else {
                step_offsets.push(step_offsets[schedule.first_pass_twin(s)]);
            }
        }
        WeightLayout {
            step_offsets,
            layer_bytes: offset,
            max_step_bytes: words.iter().max().copied().unwrap_or(0) * weight_bytes,
            max_tile_bytes: tile_bytes.into_iter().max().unwrap_or(0),
            step_words: words,
        }
    }

    /// Where the weights come from on each pass, and the GLB bytes they
    /// hold (`free`: the GLB's free bytes): the scratchpads if every PE's
    /// fit (one sub-pass); else the GLB if the whole layer fits next to the
    /// prefetcher's rows; else streamed from DRAM every pass.
    fn choose_source(
        &self,
        m: &Machine,
        plan: &ArrayPlan,
        groups_per_subpass: &[Vec<LaneGroup>],
        free: u64,
        rows_reserve_bytes: u64,
    ) -> (WeightSource, u64) {
        let scratchpad = u64::from(m.arch.pe_array.weight_scratchpad_entries);
        let fits_scratchpad = (0..plan.lanes.len()).all(|lane| {
            let per_pe: u64 = (0..plan.subpasses)
                .map(|q| lane_weight_words(plan, &groups_per_subpass[q], lane, q))
                .sum();
            per_pe <= scratchpad
        });
        let staging = self.max_step_bytes * (LOOKAHEAD_STEPS as u64 + 1);
        let lookahead = self.max_step_bytes * LOOKAHEAD_STEPS as u64;
        if fits_scratchpad && plan.subpasses <= 1 {
            (WeightSource::Scratchpad, staging)
        } else if free >= self.layer_bytes + rows_reserve_bytes + lookahead {
            (WeightSource::GlbResident, self.layer_bytes)
        } else {
            (WeightSource::DramEveryPass, staging)
        }
    }
}

/// Takes `bytes` of GLB for the weights: parked tensors give way, then
/// finished tensors and the layer's own input rows (those needed last
/// first), or the layer cannot be tiled.
fn stage_weights(
    m: &mut Machine,
    parked: &mut Parked<'_>,
    input: &mut TensorStore,
    schedule: &Schedule,
    bytes: u64,
    layer: &Layer,
) -> Result<()> {
    evict_waiting(m, |m| parked.make_room(m, bytes))?;
    if m.glb.space.try_take(bytes) {
        return Ok(());
    }
    evict_waiting(m, |m| {
        parked.spill_finished(m, bytes);
        m.clock
    })?;
    let first_visit = &schedule.row_first_visit;
    evict_waiting(m, |m| {
        super::storage::evict_rows(m, input, bytes, |y| first_visit[y])
    })?;
    if m.glb.space.try_take(bytes) {
        return Ok(());
    }
    Err(cannot_tile(
        m,
        layer,
        &format!("staging its weights needs {bytes} bytes of GLB"),
    ))
}

/// Makes room for the first pass's rows that are not in the GLB: parked
/// tensors give way, then finished tensors and resident rows the first
/// pass does not read (fetched again when needed), or the layer cannot be
/// tiled.
fn room_for_first_pass(
    m: &mut Machine,
    parked: &mut Parked<'_>,
    input: &mut TensorStore,
    schedule: &Schedule,
    layer: &Layer,
) -> Result<()> {
    let first_rows = schedule.rows_of_visit(0);
    let row_bytes = input.row_bytes();
    let needed = first_rows.clone().filter(|&y| !input.in_glb[y]).count() as u64 * row_bytes;
    evict_waiting(m, |m| parked.make_room(m, needed))?;
    if needed > m.glb.space.available() {
        evict_waiting(m, |m| {
            parked.spill_finished(m, needed);
            m.clock
        })?;
        let first_visit = &schedule.row_first_visit;
        evict_waiting(m, |m| {
            super::storage::evict_rows_by(m, input, needed, |y, _| {
                (!first_rows.contains(&y)).then_some(std::cmp::Reverse(first_visit[y]))
            })
        })?;
    }
    if needed <= m.glb.space.available() {
        return Ok(());
    }
    let pass_bytes = first_rows.len() as u64 * row_bytes;
    Err(cannot_tile(
        m,
        layer,
        &format!("one pass needs {pass_bytes} bytes of input rows in the GLB"),
    ))
}

/// The layer cannot start: it `needs` more GLB than is free.
fn cannot_tile(m: &Machine, layer: &Layer, needs: &str) -> Error {
    crate::error::InputError::new(
        &m.arch.path,
        format!(
            "layer `{}` cannot be tiled: {needs}, {} are free; valid: a larger [glb] capacity_kib",
            layer.name,
            m.glb.space.available()
        ),
    )
    .context("[glb]")
    .field("capacity_kib")
    .into()
}

/// The psum buffers: one per (PE row of a pass, lane set), as wide as the
/// widest set; 32-bit when the accumulator provably fits, else 64-bit.
fn psums_for(
    layer: &Layer,
    input: &TensorStore,
    plan: &ArrayPlan,
    groups_per_subpass: &[Vec<LaneGroup>],
) -> Psums {
    let width: usize = groups_per_subpass
        .iter()
        .flat_map(|gs| gs.iter().map(|g| g.outputs.len()))
        .max()
        .unwrap_or(0);
    let rows = if plan.rows_are_positions {
        plan.positions_per_pass
    } else {
        1
    };
    let sets = groups_per_subpass.iter().map(Vec::len).max().unwrap_or(1);
    if let Some(mode) = super::float_mode::FloatMode::of(layer) {
        Psums::Float(vec![Vec::with_capacity(width); rows * sets], Box::new(mode))
    } else if accumulator_fits_i32(layer, input) {
        Psums::Narrow(vec![Vec::with_capacity(width); rows * sets])
    } else {
        Psums::Wide(vec![Vec::with_capacity(width); rows * sets])
    }
}

fn pass_positions(plan: &ArrayPlan, p: usize) -> &[(usize, usize)] {
    let n = plan.positions_per_pass.max(1);
    let start = (p * n).min(plan.positions.len());
    &plan.positions[start..(start + n).min(plan.positions.len())]
}

fn overlap(a: &Range<usize>, b: &Range<usize>) -> usize {
    a.end.min(b.end).saturating_sub(a.start.max(b.start))
}

fn internal(layer: &Layer, what: &str) -> Error {
    Error::Internal {
        context: format!("layer `{}`", layer.name),
        message: what.to_string(),
    }
}

/// Releases every GLB row of a tensor nobody will read again.
pub(super) fn free_all_rows(m: &mut Machine, t: &mut TensorStore) {
    for y in 0..t.shape.height {
        if t.in_glb[y] {
            t.leave_glb(y);
            m.glb.space.give_back(t.row_bytes());
        }
    }
}

/// A layer's weights gathered into per-sub-pass lane groups: the setup of
/// an [`ArrayLayer`] that depends only on the layer and its plan, so the
/// engine can prepare the next layers' while it simulates this one.
#[derive(Clone)]
pub(crate) struct GatheredWeights(Vec<Vec<LaneGroup>>);

/// Gathers `layer`'s weights for `plan` (None for a layer without weights)
/// on the calling thread alone. It runs on the engine's helper thread, which
/// is not a rayon worker: were it to wait on the pool while the engine's
/// thread is a pool worker waiting on it (a library user's `par_iter` over
/// runs), the pool could run out of workers.
pub(crate) fn gather_weights(layer: &Layer, plan: &ArrayPlan) -> Option<GatheredWeights> {
    let (weights_of, groups) = match &layer.op {
        Op::Conv2d(c) => (WeightsOf::Conv(c), c.groups),
        Op::FullyConnected(f) => (WeightsOf::Fc(f), 1),
        _ => return None,
    };
    Some(GatheredWeights(
        (0..plan.subpasses)
            .map(|q| lane_groups(plan, q, groups, &weights_of))
            .collect(),
    ))
}

/// Sub-passes gather their weights independently: in parallel (the order of
/// the result is the sub-passes' order).
fn gather(plan: &ArrayPlan, groups: usize, weights_of: &WeightsOf) -> Vec<Vec<LaneGroup>> {
    use rayon::prelude::*;
    (0..plan.subpasses)
        .into_par_iter()
        .map(|q| lane_groups(plan, q, groups, weights_of))
        .collect()
}

/// Per receiving row, the PEs of `lanes` that take sub-pass `q`'s inputs
/// (an FC lane's whole column receives them).
fn receivers_per_row(plan: &ArrayPlan, q: usize, lanes: &[usize]) -> Vec<u64> {
    let lanes: Vec<&crate::mapping::Lane> = lanes
        .iter()
        .map(|&l| &plan.lanes[l])
        .filter(|lane| lane.subpasses.get(q).is_some_and(|s| !s.is_empty()))
        .collect();
    let rows = lanes.iter().map(|lane| lane.pes.len()).max().unwrap_or(0);
    (0..rows)
        .map(|r| {
            lanes
                .iter()
                .filter(|lane| r < lane.pes.len())
                .map(|lane| {
                    if plan.rows_are_positions {
                        1
                    } else {
                        lane.pes.len() as u64
                    }
                })
                .sum()
        })
        .collect()
}

enum WeightsOf<'a> {
    Conv(&'a crate::workload::ir::Conv2d),
    Fc(&'a crate::workload::ir::FullyConnected),
}

impl WeightsOf<'_> {
    /// Where element `e` sits among one output's weights (storage order).
    fn offset(&self, e: &Element) -> usize {
        match self {
            WeightsOf::Conv(c) => {
                let (_, icg, kh, kw) = c.weights.dim();
                let local = e.channel as usize % icg.max(1);
                (local * kh + e.ky as usize) * kw + e.kx as usize
            }
            WeightsOf::Fc(_) => e.channel as usize,
        }
    }

    /// Output `o`'s weights in storage order, when they are contiguous.
    fn output(&self, o: usize) -> Option<&[i16]> {
        match self {
            WeightsOf::Conv(c) => c.weights.as_slice().and_then(|w| {
                w.chunks_exact((w.len() / c.weights.dim().0.max(1)).max(1))
                    .nth(o)
            }),
            WeightsOf::Fc(f) => f
                .weights
                .as_slice()
                .and_then(|w| w.chunks_exact(f.weights.ncols().max(1)).nth(o)),
        }
    }

    fn zero(&self) -> i32 {
        match self {
            WeightsOf::Conv(c) => c.weight_quant.zero(),
            WeightsOf::Fc(f) => f.weight_quant.zero(),
        }
    }

    /// Centred weight of output `o`, element `e`.
    fn get(&self, o: usize, e: &Element) -> i16 {
        match self {
            WeightsOf::Conv(c) => {
                let icg = c.in_channels_per_group();
                let local = e.channel as usize % icg.max(1);
                (i32::from(c.weights[[o, local, e.ky as usize, e.kx as usize]])
                    - c.weight_quant.zero()) as i16
            }
            WeightsOf::Fc(f) => {
                (i32::from(f.weights[[o, e.channel as usize]]) - f.weight_quant.zero()) as i16
            }
        }
    }

    /// The group of input channel `c` / output channel `o`.
    fn groups(&self) -> (usize, usize) {
        match self {
            WeightsOf::Conv(c) => (
                c.in_channels_per_group(),
                c.out_channels() / c.groups.max(1),
            ),
            WeightsOf::Fc(f) => (f.in_features(), f.out_features()),
        }
    }
}

/// The lane groups of sub-pass `q`: with one group of channels (`groups == 1`)
/// every lane computes from the same pieces and they merge into one; grouped
/// convolutions keep one lane per group.
fn lane_groups(plan: &ArrayPlan, q: usize, groups: usize, weights: &WeightsOf) -> Vec<LaneGroup> {
    let sets = plan.lane_sets(q, groups);
    let (icg, ocg) = weights.groups();
    sets.into_iter()
        .map(|lanes| {
            let list = plan.lanes[lanes[0]].piece_list[q];
            let (outputs, lane_columns) = plan.set_columns(q, &lanes);
            let mut blocks = Vec::new();
            let mut w = Vec::new();
            let mut nonzero_weights: Vec<u32> = Vec::new();
            let mut element_base = Vec::new();
            let mut elements = 0usize;
            let mut offsets = Vec::new();
            let zero = weights.zero();
            for piece in &plan.piece_lists[list] {
                let cols = crate::mapping::piece_columns(piece, &outputs, icg, ocg);
                let base = w.len();
                blocks.push((cols.clone(), base));
                element_base.push(elements);
                elements += piece.len();
                // The block is element-major ([element][column]); it is filled
                // column by column so that each output's weights are read in
                // storage order (an FC layer's row is one long run).
                let width = cols.len();
                w.resize(base + piece.len() * width, 0);
                offsets.clear();
                offsets.extend(piece.iter().map(|e| weights.offset(e)));
                for (c, &o) in outputs[cols.clone()].iter().enumerate() {
                    match weights.output(o) {
                        Some(stored) => {
                            for (k, &at) in offsets.iter().enumerate() {
                                w[base + k * width + c] = (i32::from(stored[at]) - zero) as i16;
                            }
                        }
                        None => {
                            for (k, e) in piece.iter().enumerate() {
                                w[base + k * width + c] = weights.get(o, e);
                            }
                        }
                    }
                }
                for k in 0..piece.len() {
                    let row = base + k * width;
                    for lane_cols in &lane_columns {
                        let nonzero = (lane_cols.start.max(cols.start)
                            ..lane_cols.end.min(cols.end))
                            .filter(|&c| w[row + c - cols.start] != 0)
                            .count();
                        nonzero_weights.push(nonzero as u32);
                    }
                }
            }
            LaneGroup {
                receivers: receivers_per_row(plan, q, &lanes),
                lane_pes: lanes.iter().map(|&l| plan.lanes[l].pes.len()).collect(),
                lanes,
                list,
                outputs,
                lane_columns,
                blocks,
                weights: w,
                nonzero_weights,
                element_base,
            }
        })
        .collect()
}

/// Weight (and bias) words one step sends over the weight bus.
fn step_weight_words(plan: &ArrayPlan, groups: &[LaneGroup], s: &StepId) -> u64 {
    let mut words = 0u64;
    for group in groups {
        let Some((cols, _)) = group.blocks.get(s.piece) else {
            continue;
        };
        let len = plan.piece_lists[group.list][s.piece].len() as u64;
        for (i, &l) in group.lanes.iter().enumerate() {
            words += overlap(&group.lane_columns[i], cols) as u64 * len;
            if s.piece == 0 {
                words += plan.lanes[l]
                    .subpasses
                    .get(s.subpass)
                    .map_or(0, |r| r.len()) as u64;
            }
        }
    }
    words
}

/// Weight and bias words one PE of `lane` holds over sub-pass `q`.
fn lane_weight_words(plan: &ArrayPlan, groups: &[LaneGroup], lane: usize, q: usize) -> u64 {
    let mut words = 0u64;
    for group in groups {
        let Some(i) = group.lanes.iter().position(|&l| l == lane) else {
            continue;
        };
        for (k, (cols, _)) in group.blocks.iter().enumerate() {
            let len = plan.piece_lists[group.list][k].len() as u64;
            words += overlap(&group.lane_columns[i], cols) as u64 * len;
        }
        words += plan.lanes[lane].subpasses.get(q).map_or(0, |r| r.len()) as u64;
    }
    words
}

/// True when `max|x - zx| * sum|w - zw| + |bias|` fits `i32` for every output.
fn accumulator_fits_i32(layer: &Layer, input: &TensorStore) -> bool {
    let (lo, hi) = layer.input_quant.range();
    let zero = layer.input_quant.zero();
    let max_x = i64::from((hi - zero).max(zero - lo));
    let _ = input;
    let row_sums: Vec<(i64, i64)> = match &layer.op {
        Op::Conv2d(c) => {
            let wz = c.weight_quant.zero();
            c.weights
                .outer_iter()
                .zip(&c.epilogue.bias)
                .map(|(row, &b)| {
                    (
                        row.iter()
                            .map(|&w| i64::from((i32::from(w) - wz).abs()))
                            .sum(),
                        b,
                    )
                })
                .collect()
        }
        Op::FullyConnected(f) => {
            let wz = f.weight_quant.zero();
            f.weights
                .outer_iter()
                .zip(&f.epilogue.bias)
                .map(|(row, &b)| {
                    (
                        row.iter()
                            .map(|&w| i64::from((i32::from(w) - wz).abs()))
                            .sum(),
                        b,
                    )
                })
                .collect()
        }
        _ => Vec::new(),
    };
    row_sums.iter().all(|&(sum, bias)| {
        max_x.saturating_mul(sum).saturating_add(bias.abs()) <= i64::from(i32::MAX)
    })
}
