//! The engine: runs a network on the simulated machine, layer by layer.
//!
//! ```text
//!   Network ──► mapping (plan per layer) ──► controller (array.rs / glb_ops.rs)
//!                                              │ requests at event times
//!                                              ▼
//!            Machine: DRAM ─ GLB ─ NoC ─ PEs (hw/, each counting its accesses)
//!                                              │ values through tensor stores
//!                                              ▼
//!            per-layer LayerStats  +  outputs checked against the reference
//! ```
//!
//! Layers run one after another on one timeline (the array finishes a layer
//! before the next starts). A layer's output rows stay in the GLB when they
//! fit and become the next layer's input; rows that do not fit go to DRAM
//! and are fetched back when needed. The network input starts in DRAM; the
//! network output stays where the last layer put it.

mod array;
mod causes;
mod dynamic;
pub mod feasibility;
pub(crate) mod ffe;
mod float_mode;
mod glb_ops;
mod nonzero;
pub(crate) mod nvdla;
mod piece_reader;
mod probes;
pub mod search;
pub mod stats;
mod step_map;
mod stepper;
mod storage;
pub mod system;
mod widths;

use crate::arch::Arch;
use crate::error::{MismatchError, Result};
use crate::hw::dram::Dram;
use crate::hw::glb::Glb;
use crate::hw::noc::Noc;
use crate::hw::pe::PeCounters;
use crate::mapping::{Dataflow, LayerPlan, dataflow_for};
use crate::sim::Cycle;
use crate::units::LevelAccesses;
use crate::workload::ir::{Activations, Network, Op, TensorSource};

pub use search::{Objective, ScheduleSearchOptions};
pub use stats::{
    Accesses, CycleBreakdown, LayerSchedule, LayerStats, PeCycles, ScheduleFigures, ScheduleSearch,
    WordBits,
};
use storage::{DramAllocator, Parked, TensorStore};

/// The simulated machine: every component and its counters.
pub(crate) struct Machine {
    pub arch: Arch,
    pub dram: Dram,
    pub glb: Glb,
    pub noc: Noc,
    pub pe: PeCounters,
    /// PE-to-PE transfers (the array level).
    pub array_accesses: LevelAccesses,
    pub allocator: DramAllocator,
    pub events: u64,
    /// The tracer and its signals, when tracing.
    pub trace: Option<(crate::trace::Tracer, probes::Probes)>,
    /// The stepped twins, under `--engine cycle`.
    pub stepper: Option<stepper::Stepper>,
    /// A deliberately broken schedule (tests only).
    pub sabotage: Option<Sabotage>,
    /// The schedule every convolution runs where it fits (`EngineOptions::schedule`).
    pub schedule_pin: Option<crate::mapping::schedule::ScheduleChoice>,
    /// The schedule the last array layer ran, for its statistics.
    pub last_schedule: Option<LayerSchedule>,
    /// The last array layer's schedule choice and the search's candidates
    /// for it (`search`).
    pub layer_candidates: Option<(
        crate::mapping::schedule::ScheduleChoice,
        Vec<crate::mapping::schedule::ScheduleChoice>,
    )>,
    /// The controllers' cycle: requests to the GLB's ports and to DRAM
    /// are made at it, never for a later cycle (`set_clock`).
    pub clock: Cycle,
    /// The first request made for another cycle than `clock`, or sent into
    /// a full queue (an engine bug).
    misplaced: Option<String>,
    /// Set by an eviction that stopped at a row whose write-back found the
    /// DRAM write queue full: the cycle an entry frees (the row keeps its
    /// GLB space until then; `storage::evict_rows_as`).
    pub write_held: Option<Cycle>,
    /// Writers held back by a full DRAM write queue so far.
    pub write_holds: u64,
}

impl Machine {
    fn new(arch: &Arch) -> Self {
        Machine {
            arch: arch.clone(),
            dram: Dram::new(&arch.dram),
            glb: Glb::new(&arch.glb),
            noc: Noc::new(arch),
            pe: PeCounters::new(),
            array_accesses: LevelAccesses::default(),
            allocator: DramAllocator::new(u64::from(arch.dram.banked.row_bytes)),
            events: 0,
            trace: None,
            stepper: None,
            sabotage: None,
            schedule_pin: None,
            last_schedule: None,
            layer_candidates: None,
            clock: Cycle::ZERO,
            misplaced: None,
            write_held: None,
            write_holds: 0,
        }
    }

    /// A copy of the machine to run a layer on for the schedule search:
    /// everything but the tracer and the stepped twins.
    fn fork(&self) -> Machine {
        Machine {
            arch: self.arch.clone(),
            dram: self.dram.clone(),
            glb: self.glb.clone(),
            noc: self.noc.clone(),
            pe: self.pe.clone(),
            array_accesses: self.array_accesses,
            allocator: self.allocator.clone(),
            events: self.events,
            trace: None,
            stepper: None,
            sabotage: self.sabotage,
            schedule_pin: self.schedule_pin,
            last_schedule: self.last_schedule.clone(),
            layer_candidates: None,
            clock: self.clock,
            misplaced: self.misplaced.clone(),
            write_held: self.write_held,
            write_holds: self.write_holds,
        }
    }

    /// The schedule choice of the last array layer.
    fn last_choice(&self) -> crate::mapping::schedule::ScheduleChoice {
        self.layer_candidates
            .as_ref()
            .map_or(crate::mapping::schedule::ScheduleChoice::PASS_MAJOR, |c| {
                c.0
            })
    }

    /// The controller is at cycle `now` (it never goes back): under
    /// `--engine cycle` the stepped twins are ticked up to it. Requests to
    /// the GLB's ports and to DRAM are made at the clock: a request made
    /// for a later cycle would be served in the order it was made rather
    /// than the order it reaches the resource (a reservation, not a
    /// request), so it is an internal error.
    pub(crate) fn set_clock(&mut self, now: Cycle) -> Result<()> {
        if now < self.clock {
            return Err(engine_error(format!(
                "the controller went back from cycle {} to {now}",
                self.clock
            )));
        }
        self.clock = now;
        if let Some(message) = self.misplaced.take() {
            return Err(engine_error(message));
        }
        match &mut self.stepper {
            Some(s) => s.run_to(now).map_err(stepper_error),
            None => Ok(()),
        }
    }

    /// Notes a request to a shared resource made for cycle `at` while the
    /// controller is at another cycle.
    fn check_made_now(&mut self, what: &str, at: Cycle) {
        if at != self.clock {
            self.note_engine_bug(format!(
                "a {what} request was made at cycle {} for cycle {at}: requests to shared resources are made at the cycle they are sent",
                self.clock
            ));
        }
    }

    /// Keeps the first engine bug found, reported at the next clock move.
    fn note_engine_bug(&mut self, message: String) {
        self.misplaced.get_or_insert(message);
    }

    /// Each PE's psum RF takes (`entries > 0`) or frees entries at `at`.
    pub(crate) fn psum_entries(&mut self, at: Cycle, entries: i64) {
        if let Some(s) = &mut self.stepper {
            s.psum_entries(at, entries);
        }
    }

    /// A PE-array step from `start` to `end`, with each computing PE's MAC cycles.
    pub(crate) fn pe_step(
        &mut self,
        start: Cycle,
        end: Cycle,
        work: impl FnOnce() -> Vec<(usize, u64)>,
    ) {
        if let Some(s) = &mut self.stepper {
            s.pe_step(start, end, work());
        }
    }

    /// The cumulative counters, to difference per layer.
    fn snapshot(&self) -> Snapshot {
        Snapshot {
            accesses: Accesses {
                dram: self.dram.accesses(),
                glb: self.glb.accesses(),
                array: self.array_accesses,
                rf: self.pe.rf,
            },
            macs: self.pe.macs,
            zero_macs: self.pe.zero_macs,
            lut_reads: self.pe.lut_reads,
            busy: self.pe.busy_cycles,
            dram: self.dram.stats(),
            events: self.events,
            glb_requests: self.glb.requests(),
        }
    }
}

struct Snapshot {
    accesses: Accesses,
    macs: u64,
    zero_macs: u64,
    lut_reads: u64,
    busy: u64,
    dram: crate::hw::dram::DramStats,
    events: u64,
    glb_requests: (u64, u64),
}

/// When a layer computed, as its controller measured it.
pub(crate) struct LayerTiming {
    pub start: Cycle,
    pub end: Cycle,
    pub first_compute: Cycle,
    pub last_compute: Cycle,
    /// Cycles in which something computed.
    pub compute: u64,
    pub spilled_rows: u64,
    /// The PE array's cycles between its first and last computation in
    /// which it waited, by cause (`causes::Wait`); they sum to the stall.
    pub waits: [u64; causes::Wait::COUNT],
    /// PEs the layer gave work (0: the layer ran beside the array).
    pub used_pes: u64,
}

/// The result of running a network.
#[derive(Debug, Clone)]
pub struct EngineRun {
    pub layers: Vec<LayerStats>,
    /// Every layer's output as the engine computed it.
    pub outputs: Vec<Activations>,
    pub total_cycles: u64,
    pub events: u64,
    /// Times a writer held back because the DRAM write queue was full: an
    /// eviction that stopped at a row to write back, or the GLB unit
    /// holding a spilled output row (docs/arch-format.md, `[dram]`).
    pub write_holds: u64,
    /// True when every layer was compared with the reference and matched.
    pub checked: bool,
}

/// Runs `network` on `arch` with `input`. With `reference` (the reference
/// executor's outputs, one per layer), every layer's output is compared as
/// soon as it is computed and the first difference stops the run.
pub fn run(
    network: &Network,
    arch: &Arch,
    input: &Activations,
    reference: Option<&[Activations]>,
) -> Result<EngineRun> {
    run_with(network, arch, input, reference, &EngineOptions::default())
}

/// [`run`], recording a cycle trace when `trace` is given.
pub fn run_traced(
    network: &Network,
    arch: &Arch,
    input: &Activations,
    reference: Option<&[Activations]>,
    trace: Option<crate::trace::TraceOptions>,
) -> Result<EngineRun> {
    let options = EngineOptions {
        trace,
        ..EngineOptions::default()
    };
    run_with(network, arch, input, reference, &options)
}

/// How to run: tracing, the precision of each layer, and the driver.
#[derive(Debug, Clone, Default)]
pub struct EngineOptions {
    /// `Timing::Cycle`: also step every component's twin every cycle and
    /// check each completion the scheduler used (`--engine cycle`).
    pub timing: crate::sim::Timing,
    /// Record a cycle trace.
    pub trace: Option<crate::trace::TraceOptions>,
    /// Run the layers at these MAC precisions (docs/precision.md); the
    /// network must be 16-bit dynamic fixed point. Without one, each layer
    /// runs at its operands' storage widths.
    pub precision: Option<crate::numerics::precision::PrecisionAssignment>,
    /// Skip the up-front schedule check ([`feasibility`]): for tests that
    /// show the check's bound is exact (the engine fails one byte below it).
    #[doc(hidden)]
    pub skip_schedule_check: bool,
    /// Break the schedule on purpose: for tests that show a broken schedule
    /// fails the bit-exact check.
    #[doc(hidden)]
    pub sabotage: Option<Sabotage>,
    /// Run every convolution of more than one pass in this schedule where
    /// it fits the GLB (else by the rule; docs/mapping.md, "The schedule
    /// space"): for tests that draw the loop order. No layer is searched.
    pub schedule: Option<crate::mapping::schedule::ScheduleChoice>,
    /// How the other layers' schedules are chosen: pinned by name, else
    /// searched on the objective (docs/mapping.md, "The search").
    pub search: ScheduleSearchOptions,
}

/// A deliberately broken schedule (tests only).
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sabotage {
    /// The steps of every pass after the first read the pass's input rows
    /// without waiting for them to arrive in the GLB.
    ReadRowsEarly,
    /// Input rows leave the GLB one pass before their last use.
    FreeRowsEarly,
    /// Each layer's output leaves the GLB as the layer ends, before the
    /// next layer reads it (not written back: nothing else has it).
    FreeTensorEarly,
}

/// [`run`] with `options`. With a precision assignment, `reference` must be
/// the outputs at that assignment (`PrecisionNetwork::run`).
pub fn run_with(
    network: &Network,
    arch: &Arch,
    input: &Activations,
    reference: Option<&[Activations]>,
    options: &EngineOptions,
) -> Result<EngineRun> {
    run_from(network, arch, &Start::Input, input, reference, options)
}

/// Where a run on the PE array starts.
pub(crate) enum Start {
    /// Layer 0, from the network input in DRAM.
    Input,
    /// Layer `first`, whose input (the output of layer `first - 1`, tapped
    /// from the FFE) has been written into the GLB: as many rows as fit,
    /// the rest in DRAM. `reserved_bytes` of GLB stay taken throughout (the
    /// next frame's handoff slot). `EngineRun::layers` and `outputs` then
    /// hold layers `first..` only.
    Tap { first: usize, reserved_bytes: u64 },
}

/// Runs layers from `start` on, `input` being the tensor the first of them
/// reads, as `options` say.
pub(crate) fn run_from(
    network: &Network,
    arch: &Arch,
    start: &Start,
    input: &Activations,
    reference: Option<&[Activations]>,
    options: &EngineOptions,
) -> Result<EngineRun> {
    let numerics = widths::plan(network, options.precision.as_ref())
        .map_err(|message| crate::error::InputError::new("--precision", message))?;
    let mut m = machine_for(arch, options)?;
    let n = network.layers.len();
    let first = match start {
        Start::Input => 0,
        Start::Tap { first, .. } => *first,
    };
    let tensors = Tensors::of(network, first);
    let mut stores: Vec<Option<TensorStore>> = (0..=n).map(|_| None).collect();
    let initial = initial_store(&mut m, network, &numerics, &tensors, start, input)?;
    stores[first] = Some(initial);
    let plans = plan_layers(network, arch, &numerics, start, options)?;

    // A helper thread gathers the weights of the array layers ahead, the
    // largest part of their setup, while the current one simulates. The
    // channel holds one layer, so at most three layers' gathered weights
    // exist at once.
    let weighted: Vec<(&crate::workload::ir::Layer, &crate::mapping::ArrayPlan)> = numerics
        .layers
        .iter()
        .skip(first)
        .zip(&plans)
        .filter_map(|(layer, plan)| match plan {
            LayerPlan::Array(p) => Some((layer, p)),
            _ => None,
        })
        .collect();
    std::thread::scope(|scope| -> Result<EngineRun> {
        let (sender, gathered) = std::sync::mpsc::sync_channel(1);
        scope.spawn(move || {
            for (layer, plan) in weighted {
                // The receiver is gone when the run stopped early.
                if sender.send(array::gather_weights(layer, plan)).is_err() {
                    break;
                }
            }
        });
        let mut run = LayerRunner {
            network,
            arch,
            numerics: &numerics,
            tensors: &tensors,
            reference,
            search: &options.search,
            gathered,
            memo: search::Memo::default(),
            now: Cycle::ZERO,
            layers: Vec::with_capacity(n),
            outputs: Vec::with_capacity(n),
        };
        for (i, plan) in (first..n).zip(&plans) {
            run.layer(&mut m, &mut stores, i, plan)?;
        }
        if let Some((t, _)) = &mut m.trace {
            t.finish(run.now)?;
        }
        m.finish_stepper()?;
        Ok(EngineRun {
            total_cycles: run.now.get(),
            events: m.events,
            write_holds: m.write_holds,
            layers: run.layers,
            outputs: run.outputs,
            checked: reference.is_some(),
        })
    })
}

/// The machine a run starts on: its stepped twins under `--engine cycle`,
/// the tracer when tracing, the tests' sabotage and schedule pin.
fn machine_for(arch: &Arch, options: &EngineOptions) -> Result<Machine> {
    let mut m = Machine::new(arch);
    if options.timing == crate::sim::Timing::Cycle {
        m.stepper = Some(stepper::Stepper::new(arch));
    }
    m.sabotage = options.sabotage;
    m.schedule_pin = options.schedule;
    if let Some(trace) = options.trace.clone() {
        let mut tracer = crate::trace::Tracer::new(trace, arch.clock_mhz);
        let probes = probes::Probes::define(
            &mut tracer,
            arch.pe_array.rows as usize,
            arch.pe_array.cols as usize,
        );
        tracer.begin()?;
        m.dram.log_busy = true;
        m.trace = Some((tracer, probes));
    }
    Ok(m)
}

/// Which store holds each tensor, and how many layers read each store.
struct Tensors {
    /// Index 0: the network input; `i + 1`: layer `i`'s output. Flatten
    /// outputs are views of their input's store.
    store_of: Vec<usize>,
    /// Per store, the layers of the run that read it (each distinct tensor
    /// a layer reads counts once).
    readers: Vec<usize>,
}

impl Tensors {
    /// The tensors of a run that starts at layer `first`.
    fn of(network: &Network, first: usize) -> Tensors {
        let n = network.layers.len();
        let mut store_of: Vec<usize> = Vec::with_capacity(n + 1);
        let mut readers = vec![0usize; n + 1];
        store_of.push(0);
        for (i, layer) in network.layers.iter().enumerate() {
            let src = source_index(layer.inputs.first().copied().unwrap_or(TensorSource::Input));
            if i < first {
                // Computed before the run (by the FFE): only its tensor index matters.
                store_of.push(i + 1);
            } else if matches!(layer.op, Op::Flatten) {
                store_of.push(store_of[src]);
            } else {
                store_of.push(i + 1);
                let mut read: Vec<usize> = layer
                    .inputs
                    .iter()
                    .map(|&s| store_of[source_index(s)])
                    .collect();
                read.sort_unstable();
                read.dedup();
                for s in read {
                    readers[s] += 1;
                }
            }
        }
        Tensors { store_of, readers }
    }

    /// The store layer `layer`'s first operand lives in.
    fn source_of(&self, layer: &crate::workload::ir::Layer) -> usize {
        self.store_of[source_index(layer.inputs.first().copied().unwrap_or(TensorSource::Input))]
    }
}

/// The tensor the first layer of the run reads, placed where it starts:
/// the network input in DRAM, or an FFE tap in the GLB (as many rows as
/// fit beside the reserved handoff slot, the rest in DRAM).
fn initial_store(
    m: &mut Machine,
    network: &Network,
    numerics: &widths::NumericsPlan,
    tensors: &Tensors,
    start: &Start,
    input: &Activations,
) -> Result<TensorStore> {
    let first = match start {
        Start::Input => 0,
        Start::Tap { first, .. } => *first,
    };
    let shape = match first {
        0 => network.input_shape,
        f => network.layers[f - 1].output_shape,
    };
    let readers = tensors.readers[first];
    let mut initial = TensorStore::new(shape, numerics.storage_bytes[first], readers);
    match start {
        Start::Input => {
            initial.dram_base = Some(m.allocator.allocate(initial.bytes()));
            initial.in_dram.iter_mut().for_each(|r| *r = true);
        }
        Start::Tap { reserved_bytes, .. } => {
            if !m.glb.space.try_take(*reserved_bytes) {
                return Err(crate::error::Error::Internal {
                    context: "FFE handoff".to_string(),
                    message: format!("{reserved_bytes} reserved bytes do not fit the GLB"),
                });
            }
            for y in 0..shape.height {
                if m.glb.space.try_take(initial.row_bytes()) {
                    initial.in_glb[y] = true;
                } else {
                    if initial.dram_base.is_none() {
                        initial.dram_base = Some(m.allocator.allocate(initial.bytes()));
                    }
                    initial.in_dram[y] = true;
                }
            }
        }
    }
    initial.place(input, Cycle::ZERO);
    Ok(initial)
}

/// The plan of every layer of the run (a pure function of the layer and
/// the arch); what cannot be scheduled is refused before the first cycle.
fn plan_layers(
    network: &Network,
    arch: &Arch,
    numerics: &widths::NumericsPlan,
    start: &Start,
    options: &EngineOptions,
) -> Result<Vec<LayerPlan>> {
    let dataflow = dataflow_for(arch);
    let (first, span) = match start {
        Start::Input => (0, feasibility::Span::default()),
        Start::Tap {
            first,
            reserved_bytes,
        } => (
            *first,
            feasibility::Span {
                first: *first,
                reserved_bytes: *reserved_bytes,
                tap_bytes: system::tap_bytes(network, *first),
            },
        ),
    };
    let plans: Vec<LayerPlan> = numerics
        .layers
        .iter()
        .skip(first)
        .map(|layer| dataflow.plan(layer, arch))
        .collect::<Result<_, _>>()?;
    if !options.skip_schedule_check {
        feasibility::refuse(network, arch, numerics, &plans, &span)?;
    }
    Ok(plans)
}

/// Runs the layers one after another on one timeline, collecting each
/// one's statistics and output.
struct LayerRunner<'r> {
    network: &'r Network,
    arch: &'r Arch,
    numerics: &'r widths::NumericsPlan,
    tensors: &'r Tensors,
    reference: Option<&'r [Activations]>,
    search: &'r ScheduleSearchOptions,
    /// The array layers' weights, gathered ahead in layer order.
    gathered: std::sync::mpsc::Receiver<Option<array::GatheredWeights>>,
    /// Earlier searches, for `--memo` (docs/mapping.md).
    memo: search::Memo,
    /// When the next layer starts.
    now: Cycle,
    layers: Vec<LayerStats>,
    outputs: Vec<Activations>,
}

impl LayerRunner<'_> {
    /// Runs layer `i` (`plan`) from `now`, its output into `stores`;
    /// checks its output against the reference.
    fn layer(
        &mut self,
        m: &mut Machine,
        stores: &mut Vec<Option<TensorStore>>,
        i: usize,
        plan: &LayerPlan,
    ) -> Result<()> {
        let layer = &self.numerics.layers[i];
        let layer_numerics = self.numerics.per_layer[i];
        m.set_clock(self.now)?;
        m.trace_advance(self.now)?;
        trace_layer_start(m, (i, self.now), plan, layer_numerics, self.arch);
        m.glb.space.reset_peak();
        let before = m.snapshot();
        let resolved = self.load_range(m, stores, i)?;
        let layer = resolved.as_ref().unwrap_or(layer);
        let src_store = self.tensors.source_of(layer);
        let (timing, searched) = match plan {
            LayerPlan::Reshape => return self.reshape(stores, i, src_store),
            LayerPlan::Array(p) => {
                self.array_layer(m, stores, (i, p, layer), &before, src_store)?
            }
            LayerPlan::Glb => (self.glb_layer(m, stores, i, layer)?, None),
        };
        let after = m.snapshot();
        let mut bits = word_bits(self.numerics, layer_numerics, src_store, i);
        if matches!(layer.op, Op::Softmax) {
            // The layer's constant data is its exp table: float32 entries.
            bits.weight = crate::hw::glb_unit::SOFTMAX_LUT_ENTRY_BITS;
        }
        let mut stats = layer_stats(
            &before,
            &after,
            &timing,
            self.arch,
            m.glb.space.peak(),
            (layer_numerics, bits),
        );
        stats.schedule = m.last_schedule.take();
        if let Some(schedule) = stats.schedule.as_mut() {
            schedule.search = searched;
        }
        self.now = timing.end;
        let out = stores[i + 1]
            .as_ref()
            .map(TensorStore::contents)
            .unwrap_or_default();
        self.outputs.push(out);
        check(layer, i, self.outputs.last(), self.reference, "pe_array")?;
        self.layers.push(stats);
        if m.sabotage == Some(Sabotage::FreeTensorEarly)
            && let Some(out) = stores[i + 1].as_mut()
        {
            array::free_all_rows(m, out);
        }
        Ok(())
    }

    /// A reshape (flatten) takes no time: its output is a view of its input.
    fn reshape(
        &mut self,
        stores: &[Option<TensorStore>],
        i: usize,
        src_store: usize,
    ) -> Result<()> {
        let layer = &self.numerics.layers[i];
        self.outputs.push(reshaped(
            stores[src_store].as_ref(),
            layer.output_shape.dims(),
        ));
        self.layers.push(LayerStats {
            start: self.now,
            end: self.now,
            pes: u64::from(self.arch.pe_array.rows * self.arch.pe_array.cols),
            pe_cycles: Some(PeCycles::default()),
            ..Default::default()
        });
        check(layer, i, self.outputs.last(), self.reference, "pe_array")
    }

    /// Layer `i` on the PE array (`p`), its schedule searched.
    fn array_layer(
        &mut self,
        m: &mut Machine,
        stores: &mut Vec<Option<TensorStore>>,
        (i, p, layer): (
            usize,
            &crate::mapping::ArrayPlan,
            &crate::workload::ir::Layer,
        ),
        before: &Snapshot,
        src_store: usize,
    ) -> Result<(LayerTiming, Option<ScheduleSearch>)> {
        let layer_numerics = self.numerics.per_layer[i];
        let job = ArrayJob {
            network: self.network,
            store_of: &self.tensors.store_of,
            layer,
            numerics: layer_numerics,
            plan: p,
            output_bytes: self.numerics.storage_bytes[i + 1],
            readers: self.tensors.readers[i + 1],
            src_store,
            index: i,
            start: self.now,
        };
        let base = search::Baseline {
            before,
            mode_bits: (
                layer_numerics,
                word_bits(self.numerics, layer_numerics, src_store, i),
            ),
        };
        let gathered = self.gathered.recv().ok().flatten();
        let how = (self.search, &base);
        search::run_layer(m, stores, &job, gathered, how, &mut self.memo)
    }

    /// Layer `i` on the GLB unit: each distinct input store is taken out of
    /// the table for the run (so `x + x` reads one tensor for both operands).
    fn glb_layer(
        &mut self,
        m: &mut Machine,
        stores: &mut [Option<TensorStore>],
        i: usize,
        layer: &crate::workload::ir::Layer,
    ) -> Result<LayerTiming> {
        let store_of = &self.tensors.store_of;
        let mut output = TensorStore::new(
            layer.output_shape,
            self.numerics.storage_bytes[i + 1],
            self.tensors.readers[i + 1],
        );
        // A dynamic_quantize's range was read into the unit's registers
        // (`load_range`): the unit streams only its first operand.
        let operands = if matches!(layer.op, Op::DynamicQuantize) {
            &layer.inputs[..1]
        } else {
            &layer.inputs[..]
        };
        let sources: Vec<usize> = operands
            .iter()
            .map(|&s| store_of[source_index(s)])
            .collect();
        let mut distinct = sources.clone();
        distinct.sort_unstable();
        distinct.dedup();
        let operand_of: Vec<usize> = sources
            .iter()
            .map(|s| distinct.iter().position(|d| d == s).unwrap_or(0))
            .collect();
        let mut taken: Vec<TensorStore> = Vec::with_capacity(distinct.len());
        for &d in &distinct {
            taken.push(stores[d].take().ok_or_else(|| missing(layer))?);
        }
        let result = {
            let mut refs: Vec<&mut TensorStore> = taken.iter_mut().collect();
            let next_read = |k: usize| next_reader(self.network, store_of, k, i);
            let (_, mut parked) = split_stores(stores, usize::MAX, next_read);
            glb_ops::run(
                m,
                layer,
                &mut refs,
                &operand_of,
                &mut output,
                &mut parked,
                self.now,
            )
        };
        for (d, mut store) in distinct.into_iter().zip(taken) {
            store.readers_left = store.readers_left.saturating_sub(1);
            stores[d] = Some(store);
        }
        stores[i + 1] = Some(output);
        result
    }
}

/// The trace marks layer `i` starting at `now`: its index, the array's
/// state (fill, or unused beside a GLB-unit layer) and its MAC mode.
fn trace_layer_start(
    m: &mut Machine,
    (i, now): (usize, Cycle),
    plan: &LayerPlan,
    layer_numerics: widths::LayerNumerics,
    arch: &Arch,
) {
    if let Some((t, p)) = &mut m.trace {
        t.layer_starts(i, now);
        t.set(p.layer, now, i as u64);
        match plan {
            LayerPlan::Array(_) => t.set(p.stall_cause, now, causes::TRACE_FILL),
            LayerPlan::Glb => t.set(p.stall_cause, now, causes::TRACE_UNUSED),
            _ => {}
        }
        if let (Some(mode), Some(datapath)) = (layer_numerics.mode, layer_numerics.datapath()) {
            t.set(
                p.mac_cycles,
                now,
                u64::from(arch.mac.datapath_cycles(datapath)),
            );
            t.set(p.mac_mode, now, mode.index() as u64);
        }
    }
}

/// One array layer of a run, as the engine and the schedule search run it.
pub(super) struct ArrayJob<'j> {
    network: &'j Network,
    store_of: &'j [usize],
    pub layer: &'j crate::workload::ir::Layer,
    numerics: widths::LayerNumerics,
    plan: &'j crate::mapping::ArrayPlan,
    /// Bytes per word of the layer's output, and the layers that read it.
    output_bytes: u64,
    readers: usize,
    src_store: usize,
    index: usize,
    start: Cycle,
}

impl ArrayJob<'_> {
    /// Runs the layer on `m`, its output into `stores`.
    fn run(
        &self,
        m: &mut Machine,
        stores: &mut [Option<TensorStore>],
        gathered: Option<array::GatheredWeights>,
    ) -> Result<LayerTiming> {
        let layer = self.layer;
        let mut output = TensorStore::new(layer.output_shape, self.output_bytes, self.readers);
        let next_read = |k: usize| next_reader(self.network, self.store_of, k, self.index);
        let (input, parked) = split_stores(stores, self.src_store, next_read);
        let input = input.ok_or_else(|| missing(layer))?;
        let timing = array::ArrayLayer::new(
            m,
            layer,
            self.numerics,
            self.plan,
            input,
            &mut output,
            parked,
            self.start,
            gathered,
        )?
        .run()?;
        input.readers_left = input.readers_left.saturating_sub(1);
        stores[self.index + 1] = Some(output);
        Ok(timing)
    }
}

fn engine_error(message: String) -> crate::error::Error {
    crate::error::Error::Internal {
        context: "engine".to_string(),
        message,
    }
}

fn stepper_error(message: String) -> crate::error::Error {
    crate::error::Error::Internal {
        context: "cycle stepper (--engine cycle)".to_string(),
        message,
    }
}

impl Machine {
    /// Steps the twins to idle; every promise must have been kept, and the
    /// closed forms' counters must equal the twins'.
    fn finish_stepper(&mut self) -> Result<()> {
        if let Some(message) = self.misplaced.take() {
            return Err(engine_error(message));
        }
        let Some(s) = &mut self.stepper else {
            return Ok(());
        };
        s.finish().map_err(stepper_error)?;
        let d = self.dram.stats();
        let want = (self.glb.busy_slots(), d.row_hits, d.row_misses, d.activates);
        if s.totals() != want {
            return Err(stepper_error(format!(
                "stepped (GLB slots, DRAM row hits, misses, activates) {:?}, closed forms {want:?}",
                s.totals()
            )));
        }
        tracing::info!(
            "cycle stepper: {} requests and {} PE-array steps served stepped as scheduled; {} component-cycles ticked",
            s.requests_checked(),
            s.pe_steps_checked(),
            s.ticks
        );
        Ok(())
    }
}

fn source_index(s: TensorSource) -> usize {
    match s {
        TensorSource::Input => 0,
        TensorSource::Layer(i) => i + 1,
    }
}

fn missing(layer: &crate::workload::ir::Layer) -> crate::error::Error {
    crate::error::Error::Internal {
        context: format!("layer `{}`", layer.name),
        message: "the layer's input tensor has no store".to_string(),
    }
}

fn reshaped(store: Option<&TensorStore>, dims: (usize, usize, usize)) -> Activations {
    let flat: Vec<i16> = store
        .map(|s| s.contents().iter().copied().collect())
        .unwrap_or_default();
    Activations::from_shape_vec(dims, flat).unwrap_or_else(|_| Activations::zeros(dims))
}

/// The first layer after `after` that reads store `k` (`usize::MAX`: none).
fn next_reader(network: &Network, store_of: &[usize], k: usize, after: usize) -> usize {
    network
        .layers
        .iter()
        .enumerate()
        .skip(after + 1)
        .find(|(_, l)| l.inputs.iter().any(|&s| store_of[source_index(s)] == k))
        .map_or(usize::MAX, |(j, _)| j)
}

/// Store `input`, and the other tensors later layers still read that hold
/// GLB rows, parked in the order they give up space (read last, first).
fn split_stores(
    stores: &mut [Option<TensorStore>],
    input: usize,
    next_read: impl Fn(usize) -> usize,
) -> (Option<&mut TensorStore>, Parked<'_>) {
    let mut found = None;
    let mut parked: Vec<(usize, &mut TensorStore)> = Vec::new();
    let mut finished = Vec::new();
    for (k, store) in stores.iter_mut().enumerate() {
        let Some(store) = store.as_mut() else {
            continue;
        };
        if k == input {
            found = Some(store);
        } else if store.in_glb.iter().any(|&r| r) {
            if store.readers_left > 0 {
                parked.push((next_read(k), store));
            } else {
                finished.push(store);
            }
        }
    }
    parked.sort_by_key(|(next, _)| std::cmp::Reverse(*next));
    (
        found,
        Parked(parked.into_iter().map(|(_, s)| s).collect(), finished),
    )
}

/// Compares layer `i`'s output, as `engine` computed it, with the reference's.
pub(crate) fn check(
    layer: &crate::workload::ir::Layer,
    i: usize,
    got: Option<&Activations>,
    reference: Option<&[Activations]>,
    engine: &str,
) -> Result<()> {
    let (Some(got), Some(reference)) = (got, reference) else {
        return Ok(());
    };
    let Some(want) = reference.get(i) else {
        return Ok(());
    };
    let mut first = None;
    let mut differing = 0usize;
    if got.dim() != want.dim() {
        differing = want.len();
        first = Some(((0, 0, 0), 0, 0));
    } else {
        for ((idx, &g), &w) in got.indexed_iter().zip(want.iter()) {
            if g != w {
                differing += 1;
                first.get_or_insert((idx, g, w));
            }
        }
    }
    match first {
        None => Ok(()),
        Some(((c, y, x), g, w)) => Err(MismatchError {
            layer: layer.name.clone(),
            engine: engine.to_string(),
            channel: c,
            row: y,
            column: x,
            engine_value: i32::from(g),
            reference_value: i32::from(w),
            differing,
            total: want.len(),
        }
        .into()),
    }
}

/// Bits per word of each data type of layer `i`, reading tensor `source`.
fn word_bits(
    numerics: &widths::NumericsPlan,
    layer: widths::LayerNumerics,
    source: usize,
    i: usize,
) -> WordBits {
    let bits = |bytes: u64| (bytes * 8) as u32;
    WordBits {
        input: bits(numerics.storage_bytes[source]),
        weight: bits(layer.weight_bytes),
        psum: 16,
        output: bits(numerics.storage_bytes[i + 1]),
    }
}

fn layer_stats(
    before: &Snapshot,
    after: &Snapshot,
    t: &LayerTiming,
    arch: &Arch,
    glb_peak: u64,
    (numerics, word_bits): (widths::LayerNumerics, WordBits),
) -> LayerStats {
    let datapath = numerics.datapath();
    let macs = after.macs - before.macs;
    let zero_macs = after.zero_macs - before.zero_macs;
    let mac_energy_pj = datapath.map_or(0.0, |d| {
        arch.mac
            .datapath_cost(
                d,
                crate::numerics::mac::MacCounts {
                    nonzero: macs - zero_macs,
                    zero: zero_macs,
                },
            )
            .energy_pj
    });
    let mut accesses = after.accesses;
    subtract(&mut accesses.dram, &before.accesses.dram);
    subtract(&mut accesses.glb, &before.accesses.glb);
    subtract(&mut accesses.array, &before.accesses.array);
    subtract(&mut accesses.rf, &before.accesses.rf);
    let total = t.end.since(t.start);
    let computing = t.compute;
    let (fill, drain, stall) = if computing == 0 {
        (0, 0, 0)
    } else {
        let fill = t.first_compute.since(t.start);
        let drain = t.end.since(t.last_compute);
        (fill, drain, total.saturating_sub(fill + drain + computing))
    };
    let pes = u64::from(arch.pe_array.rows * arch.pe_array.cols);
    let busy = after.busy - before.busy;
    let pe_cycles = pe_cycles(t, pes, busy, if computing == 0 { total } else { fill });
    let d = |a: u64, b: u64| a.saturating_sub(b);
    let dram = crate::hw::dram::DramStats {
        read_bytes: d(after.dram.read_bytes, before.dram.read_bytes),
        write_bytes: d(after.dram.write_bytes, before.dram.write_bytes),
        read_requests: d(after.dram.read_requests, before.dram.read_requests),
        write_requests: d(after.dram.write_requests, before.dram.write_requests),
        row_hits: d(after.dram.row_hits, before.dram.row_hits),
        row_misses: d(after.dram.row_misses, before.dram.row_misses),
        activates: d(after.dram.activates, before.dram.activates),
        busy_cycles: d(after.dram.busy_cycles, before.dram.busy_cycles),
    };
    LayerStats {
        start: t.start,
        end: t.end,
        cycles: CycleBreakdown {
            total,
            compute: if computing == 0 { 0 } else { computing },
            stall,
            fill: if computing == 0 { total } else { fill },
            drain,
        },
        accesses,
        macs,
        zero_macs,
        mac_mode: numerics.mode,
        float32_macs: datapath == Some(crate::arch::MacDatapath::Float32),
        mac_energy_pj,
        word_bits,
        lut_reads: after.lut_reads - before.lut_reads,
        pe_busy_cycles: busy,
        pes,
        pe_cycles: Some(pe_cycles),
        dram,
        spilled_rows: t.spilled_rows,
        glb_peak_bytes: glb_peak,
        events: after.events - before.events,
        glb_read_requests: after.glb_requests.0 - before.glb_requests.0,
        glb_write_requests: after.glb_requests.1 - before.glb_requests.1,
        schedule: None,
    }
}

/// Every PE-cycle of a layer by cause: the used PEs share the array's
/// fill, drain and waits; what they did not spend computing inside the
/// steps is lock-step waiting; the other PEs are unused throughout.
fn pe_cycles(t: &LayerTiming, pes: u64, busy: u64, fill: u64) -> PeCycles {
    let u = t.used_pes;
    let w = |c: causes::Wait| u * t.waits[c as usize];
    use causes::Wait::*;
    PeCycles {
        busy,
        lockstep: (u * t.compute).saturating_sub(busy),
        fill: u * fill,
        drain: if t.compute == 0 {
            0
        } else {
            u * t.end.since(t.last_compute)
        },
        prefetch: w(Prefetch),
        glb_space: w(GlbSpace),
        input_dram: w(InputDram),
        weight_dram: w(WeightDram),
        glb_port: w(GlbPort),
        input_bus: w(InputBus),
        weight_bus: w(WeightBus),
        psum_space: w(PsumSpace),
        dram_write: w(DramWrite),
        unused: (pes - u) * t.end.since(t.start),
    }
}

fn subtract(a: &mut LevelAccesses, b: &LevelAccesses) {
    for t in crate::units::DataType::ALL {
        let x = a.by_type.get_mut(t);
        let y = b.by_type.get(t);
        x.read -= y.read;
        x.write -= y.write;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::units::DataType;

    fn machine() -> Machine {
        let arch = crate::arch::load("lu22_fixed").unwrap_or_else(|e| panic!("{e}"));
        Machine::new(&arch)
    }

    #[test]
    fn requests_to_shared_resources_are_made_at_the_clock() {
        let mut m = machine();
        assert!(m.set_clock(Cycle(5)).is_ok());
        m.glb_read(Cycle(5), DataType::Input, 4, 4);
        m.dram_read(Cycle(5), 0, DataType::Input, 4, 4);
        assert!(m.set_clock(Cycle(6)).is_ok());
        // A reservation for a later cycle is an engine bug.
        m.dram_write(Cycle(9), 0, DataType::Output, 4, 4);
        let e = m.set_clock(Cycle(7)).err().map(|e| e.to_string());
        assert_eq!(
            e.as_deref(),
            Some(
                "internal simulator error in engine: a DRAM write request was made at cycle 6 for cycle 9: requests to shared resources are made at the cycle they are sent"
            )
        );
        // So is a controller going back in time.
        let e = m.set_clock(Cycle(3)).err().map(|e| e.to_string());
        assert_eq!(
            e.as_deref(),
            Some("internal simulator error in engine: the controller went back from cycle 7 to 3")
        );
    }
}
