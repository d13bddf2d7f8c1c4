//! FFE -> buffer -> back-end: one frame and a stream of frames (SPEC
//! section 3; docs/ffe.md, "System").
//!
//! ```text
//!   sensor ─► FFE (stages of fixed layers 1..M, 810 MHz) ─► buffer slot ─► back-end (PE array or NVDLA table)
//!                                                         (GLB / NVDLA buffer; 1 or 2 frames)
//! ```
//!
//! **One frame.** The FFE pipeline is simulated cycle by cycle from empty,
//! computing every value (checked against the reference layer by layer);
//! its tapped output lands in the back-end's buffer. The back-end then runs
//! the remaining layers on that tensor: on the PE array it starts with the
//! tapped rows already in the GLB (as many as fit; the rest in DRAM), with
//! the next frame's slot reserved when the buffer holds two; the NVDLA
//! model takes its values from the reference executor. Latency = FFE frame
//! time + back-end time, each in its own clock.
//!
//! **A stream.** `stream_frames` frames (the same input each time) enter
//! back to back. The FFE is simulated cycle by cycle again, timing only,
//! over all frames at once, so frame i+1 flows into the pipeline while
//! frame i drains. Frame f's tapped pixels go to buffer slot f mod S
//! (S = 2 when two tapped frames fit the buffer and `buffer_frames` allows,
//! else 1); a slot frees when the back-end's first layer has consumed it,
//! and until then the FFE's last stage stalls (back-pressure up the whole
//! pipeline). The back-end starts frame f when the FFE has delivered all of
//! it and the back-end has finished frame f - 1, and takes the single-frame
//! time (its timing does not depend on values). Steady-state throughput is
//! the interval between the last two back-end completions.

use serde::Serialize;

use crate::arch::{Arch, Backend, FfeConfig};
use crate::cost::area;
use crate::cost::energy::{self, Energy};
use crate::cost::ffe::{self as ffe_cost, FfeArea, FfeEnergy};
use crate::error::Result;
use crate::hw::ffe::{StageInventory, StageStats};
use crate::mapping::ffe::{self as ffe_map, FfePlan, FixedLayersSite};
use crate::sim::{Clock, Cycle};
use crate::units::DataType;
use crate::workload::ir::{Activations, Network};

use super::ffe::{self, FfeRun, OpenSink, Sink};
use super::stats::{CycleBreakdown, LayerStats};
use super::{EngineRun, Start, nvdla};

/// Run-time choices for a system run.
#[derive(Debug, Clone, Default)]
pub struct SystemOptions {
    /// Use the first M fixed layers (default: all N).
    pub ffe_tap: Option<u32>,
    /// Frames in the stream (default: the arch's `[system] stream_frames`).
    pub stream_frames: Option<u32>,
    /// Trace the single frame: the FFE (its clock) into `path`, a PE-array
    /// back-end (its clock) into [`backend_trace_path`] of `path`.
    pub trace: Option<crate::trace::TraceOptions>,
    /// How the PE-array back-end is driven (`--engine`).
    pub timing: crate::sim::Timing,
    /// How the back-end's layers' schedules are chosen (docs/mapping.md).
    pub search: super::ScheduleSearchOptions,
}

/// Where the back-end's trace of a system run goes: `run.vcd` gives
/// `run.backend.vcd` (one VCD per clock domain).
pub fn backend_trace_path(path: &std::path::Path) -> std::path::PathBuf {
    let stem = path
        .file_stem()
        .map_or_else(|| "trace".to_string(), |s| s.to_string_lossy().into_owned());
    path.with_file_name(format!("{stem}.backend.vcd"))
}

/// Which engine computed a layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LayerEngine {
    /// A fixed-weight FFE stage, simulated cycle by cycle, values computed.
    Ffe,
    /// The PE array, simulated, values computed.
    PeArray,
    /// The NVDLA table model: no simulation, values from the reference.
    NvdlaTable,
}

impl LayerEngine {
    pub fn name(self) -> &'static str {
        match self {
            LayerEngine::Ffe => "ffe",
            LayerEngine::PeArray => "pe_array",
            LayerEngine::NvdlaTable => "nvdla_table",
        }
    }

    /// Where a layer's values come from on this engine (the report's `values`).
    pub fn values(self) -> &'static str {
        match self {
            LayerEngine::Ffe | LayerEngine::PeArray => crate::report::SIMULATED,
            LayerEngine::NvdlaTable => crate::report::FROM_REFERENCE,
        }
    }
}

/// What an FFE stage is and did.
#[derive(Debug, Clone)]
pub struct FfeLayer {
    pub fixed_layer: u32,
    pub stats: StageStats,
    pub inventory: StageInventory,
    pub area: FfeArea,
    pub energy: FfeEnergy,
    /// Line-buffer banks (0 without a line buffer).
    pub line_buffer_banks: u32,
}

/// One layer of a system run.
#[derive(Debug, Clone)]
pub struct LayerRecord {
    pub engine: LayerEngine,
    /// The clock its cycles count.
    pub clock_mhz: f64,
    pub stats: LayerStats,
    /// Energy per level in pJ, for layers whose energy does not come from
    /// the PE array's access-cost table (FFE stages, NVDLA layers).
    pub energy_pj: Option<Energy>,
    pub ffe: Option<FfeLayer>,
}

/// The FFE as a whole.
#[derive(Debug, Clone)]
pub struct FfeSummary {
    pub fixed_layers: u32,
    pub tap: u32,
    /// IR layers in the hardware and running.
    pub hardware_layers: usize,
    pub running_layers: usize,
    pub clock_mhz: f64,
    /// One frame from an empty pipeline: first pixel in to last tapped
    /// pixel in the buffer [FFE cycles].
    pub frame_cycles: u64,
    /// Cycles of that frame with some stage's clock enabled.
    pub busy_cycles: u64,
    /// Cycles simulated one by one in the single-frame run.
    pub stepped_cycles: u64,
    /// Area of all N fixed layers (the hardware), per stage and in total.
    pub area: FfeArea,
    pub stage_area_mm2: Vec<f64>,
    /// Energy of the running stages for one frame.
    pub energy: FfeEnergy,
    /// DEEPFREEZE's estimate: 2.05e-7 mm^2 x non-zero weights x activation
    /// bits x weight bits, over the N fixed layers.
    pub deepfreeze_mm2: f64,
    pub nonzero_weights: u64,
}

/// The stream of frames.
#[derive(Debug, Clone)]
pub struct StreamRun {
    pub frames: u32,
    /// Tapped frames the buffer holds (1 or 2).
    pub buffer_slots: u32,
    /// When each frame's back-end work ended [s from the first pixel].
    pub frame_end_s: Vec<f64>,
    /// Steady-state interval between frames [s].
    pub period_s: f64,
    /// Latency of the last frame: its first pixel in to its back-end end [s].
    pub last_latency_s: f64,
    /// Share of the stream's time in which some FFE stage was clocked.
    pub ffe_busy_share: f64,
    pub backend_busy_share: f64,
    /// FFE cycles simulated one by one (the rest were idle and jumped over).
    pub ffe_stepped_cycles: u64,
    pub ffe_total_cycles: u64,
}

/// The result of a system run.
#[derive(Debug, Clone)]
pub struct SystemRun {
    pub layers: Vec<LayerRecord>,
    pub outputs: Vec<Activations>,
    /// Every simulated layer was compared with the reference and matched.
    pub checked: bool,
    pub ffe: Option<FfeSummary>,
    pub backend_clock_mhz: f64,
    /// Back-end time of one frame [its cycles].
    pub backend_cycles: u64,
    pub backend_area_mm2: f64,
    pub backend_events: u64,
    /// The back-end's writers held back by a full DRAM write queue
    /// (`EngineRun::write_holds`).
    pub backend_write_holds: u64,
    /// Tapped words written into the buffer, and those that spilled to DRAM.
    pub handoff_buffer_words: u64,
    pub handoff_dram_words: u64,
    /// One frame from an empty pipeline [s].
    pub latency_s: f64,
    /// Energy of one frame [pJ].
    pub frame_energy_pj: f64,
    pub stream: Option<StreamRun>,
}

/// Bytes of the tensor the back-end starts from: the input of layer `first`
/// (the FFE's tap), at its storage type.
pub(crate) fn tap_bytes(network: &Network, first: usize) -> u64 {
    let (shape, word_bytes) = if first == 0 {
        (network.input_shape, network.input_quant.dtype().bytes())
    } else {
        let l = &network.layers[first - 1];
        (l.output_shape, l.output_quant.dtype().bytes())
    };
    shape.len() as u64 * word_bytes
}

/// Tapped frames the back-end's buffer holds: 2 when two fit and
/// `buffer_frames` allows, else 1.
fn buffer_slots(arch: &Arch, tap_bytes: u64) -> u32 {
    let buffer_bytes = match &arch.backend {
        Backend::PeArray => arch.glb.capacity_bytes,
        Backend::Nvdla(nv) => u64::from(nv.buffer_kib) * 1024,
    };
    if arch.system.buffer_frames >= 2 && 2 * tap_bytes <= buffer_bytes {
        2
    } else {
        1
    }
}

/// The PE array's span of an FFE system whose back-end starts at layer
/// `first`: the GLB bytes the next frame's slot holds throughout.
pub(crate) fn handoff_span(
    network: &Network,
    arch: &Arch,
    first: usize,
) -> super::feasibility::Span {
    if first == 0 || first >= network.layers.len() {
        return super::feasibility::Span {
            first,
            ..Default::default()
        };
    }
    let tap_bytes = tap_bytes(network, first);
    super::feasibility::Span {
        first,
        reserved_bytes: u64::from(buffer_slots(arch, tap_bytes) - 1) * tap_bytes,
        tap_bytes,
    }
}

/// Runs `network` on a system architecture (an FFE and/or a non-PE-array
/// back-end). `reference`: the reference outputs to check against.
pub fn run(
    network: &Network,
    arch: &Arch,
    input: &Activations,
    reference: Option<&[Activations]>,
    options: &SystemOptions,
) -> Result<SystemRun> {
    check_frames(options)?;
    let backend_clock = Clock::new(arch.clock_mhz);
    let ffe_part = ffe_frame(network, arch, input, reference, options)?;
    let first = ffe_part.as_ref().map_or(0, |f| f.plan.active);
    let tap: &Activations = match &ffe_part {
        Some(f) => f.run.outputs.last().unwrap_or(input),
        None => input,
    };
    let slots = buffer_slots(arch, tap_bytes(network, first));
    let mut backend = run_backend(network, arch, (first, tap), reference, options, slots)?;
    let backend_energy_pj: f64 = backend
        .layers
        .iter()
        .map(|l| match &l.energy_pj {
            Some(e) => e.total,
            None => energy::picojoules(&l.stats, &arch.energy).total,
        })
        .sum();
    let frames = options
        .stream_frames
        .unwrap_or(arch.system.stream_frames)
        .max(1);
    let mut latency_s = backend_clock.seconds(backend.cycles);
    let mut frame_energy_pj = backend_energy_pj;
    let (ffe_summary, stream) = match &ffe_part {
        Some(part) => {
            let (summary, stream, frame_s, ffe_pj) =
                part.prepend(network, arch, input, &mut backend, (frames, slots))?;
            latency_s += frame_s;
            frame_energy_pj += ffe_pj;
            (Some(summary), stream)
        }
        None => (None, backend_stream(&backend, backend_clock, frames, slots)),
    };
    Ok(SystemRun {
        layers: backend.layers,
        outputs: backend.outputs,
        checked: reference.is_some(),
        ffe: ffe_summary,
        backend_clock_mhz: arch.clock_mhz,
        backend_cycles: backend.cycles,
        backend_area_mm2: area::backend_mm2(arch),
        backend_events: backend.events,
        backend_write_holds: backend.write_holds,
        handoff_buffer_words: backend.handoff_buffer_words,
        handoff_dram_words: backend.handoff_dram_words,
        latency_s,
        frame_energy_pj,
        stream,
    })
}

/// `--frames` within the range of the arch file's `[system] stream_frames`.
fn check_frames(options: &SystemOptions) -> Result<()> {
    if let Some(frames) = options.stream_frames
        && !(1..=crate::arch::STREAM_FRAMES_MAX).contains(&frames)
    {
        return Err(crate::error::InputError::new(
            "--frames",
            format!(
                "is {frames}; valid: 1 to {} frames (the range of [system] stream_frames)",
                crate::arch::STREAM_FRAMES_MAX
            ),
        )
        .into());
    }
    Ok(())
}

/// The FFE's part of a run: its config, its plan and its one frame.
struct FfePart<'a> {
    cfg: &'a FfeConfig,
    plan: FfePlan,
    run: FfeRun,
}

/// The FFE, one frame, values computed and checked (`None` without an FFE).
fn ffe_frame<'a>(
    network: &Network,
    arch: &'a Arch,
    input: &Activations,
    reference: Option<&[Activations]>,
    options: &SystemOptions,
) -> Result<Option<FfePart<'a>>> {
    let Some(cfg) = &arch.ffe else {
        return Ok(None);
    };
    let site = FixedLayersSite {
        arch_file: &arch.path,
        line_column: cfg.fixed_layers_at,
    };
    let plan = ffe_map::plan(network, cfg.fixed_layers, options.ffe_tap, site)?;
    let run = ffe::simulate(
        network,
        &plan,
        cfg,
        input,
        1,
        true,
        &mut OpenSink,
        options.trace.as_ref(),
    )?;
    ffe::check(network, &run, reference)?;
    Ok(Some(FfePart { cfg, plan, run }))
}

impl FfePart<'_> {
    /// Puts the FFE's rows and outputs before the back-end's and runs the
    /// stream of `frames` through `slots` buffer slots; returns the FFE's
    /// summary, the stream (two frames or more), the FFE's frame time [s]
    /// and its frame energy [pJ].
    fn prepend(
        &self,
        network: &Network,
        arch: &Arch,
        input: &Activations,
        backend: &mut BackendRun,
        (frames, slots): (u32, u32),
    ) -> Result<(FfeSummary, Option<StreamRun>, f64, f64)> {
        let (cfg, plan, run) = (self.cfg, &self.plan, &self.run);
        let ffe_clock = Clock::new(cfg.clock_mhz);
        let frame_cycles = run.frame_done.first().copied().unwrap_or(run.end);
        let frame_s = ffe_clock.seconds(frame_cycles);
        let (rows, summary) = ffe_rows(
            network,
            arch,
            cfg,
            plan,
            run,
            frame_s,
            backend.handoff_buffer_words,
            backend.handoff_dram_words,
        )?;
        let ffe_pj: f64 = rows
            .iter()
            .filter_map(|r| r.energy_pj.map(|e| e.total))
            .sum();
        let mut all = rows;
        all.append(&mut backend.layers);
        backend.layers = all;
        let mut ffe_outputs = run.outputs.clone();
        ffe_outputs.append(&mut backend.outputs);
        backend.outputs = ffe_outputs;
        let mut stream = None;
        if frames >= 2 {
            let backend_clock = Clock::new(arch.clock_mhz);
            let mut sink = ScheduleSink {
                ffe: ffe_clock,
                slots,
                backend_s: backend_clock.seconds(backend.cycles),
                release_s: backend_clock.seconds(backend.release_cycles),
                last_end_s: 0.0,
                release_cycle: Vec::new(),
                end_s: Vec::new(),
            };
            let srun = ffe::simulate(network, plan, cfg, input, frames, false, &mut sink, None)?;
            stream = Some(stream_figures(&srun, &sink, ffe_clock, frames, slots));
        }
        Ok((summary, stream, frame_s, ffe_pj))
    }
}

/// No FFE: `frames` (two or more) follow each other on the back-end alone.
fn backend_stream(
    backend: &BackendRun,
    backend_clock: Clock,
    frames: u32,
    slots: u32,
) -> Option<StreamRun> {
    if frames < 2 || backend.cycles == 0 {
        return None;
    }
    let t = backend_clock.seconds(backend.cycles);
    Some(StreamRun {
        frames,
        buffer_slots: slots,
        frame_end_s: (1..=frames).map(|f| t * f64::from(f)).collect(),
        period_s: t,
        last_latency_s: t,
        ffe_busy_share: 0.0,
        backend_busy_share: 1.0,
        ffe_stepped_cycles: 0,
        ffe_total_cycles: 0,
    })
}

/// The back-end's part of one frame.
struct BackendRun {
    layers: Vec<LayerRecord>,
    outputs: Vec<Activations>,
    cycles: u64,
    events: u64,
    write_holds: u64,
    /// When the back-end's first layer ended (the tap's buffer slot frees).
    release_cycles: u64,
    /// Tapped words written into the buffer, and those that spilled to DRAM.
    handoff_buffer_words: u64,
    handoff_dram_words: u64,
}

/// The back-end, one frame, from layer `first` on the tapped tensor `tap`.
fn run_backend(
    network: &Network,
    arch: &Arch,
    (first, tap): (usize, &Activations),
    reference: Option<&[Activations]>,
    options: &SystemOptions,
    slots: u32,
) -> Result<BackendRun> {
    let tap_shape = if first == 0 {
        network.input_shape
    } else {
        network.layers[first - 1].output_shape
    };
    let mut backend = BackendRun {
        layers: Vec::with_capacity(network.layers.len()),
        outputs: Vec::with_capacity(network.layers.len()),
        cycles: 0,
        events: 0,
        write_holds: 0,
        release_cycles: 0,
        handoff_buffer_words: tap_shape.len() as u64,
        handoff_dram_words: 0,
    };
    if first == network.layers.len() {
        return Ok(backend);
    }
    match &arch.backend {
        Backend::PeArray => {
            let tap_bytes = tap_bytes(network, first);
            let reserved = u64::from(slots - 1) * tap_bytes;
            if first > 0 {
                // As many tapped rows as fit the GLB stay there.
                let row_bytes = tap_bytes / tap_shape.height.max(1) as u64;
                let free = arch.glb.capacity_bytes.saturating_sub(reserved);
                let rows = (free / row_bytes.max(1)).min(tap_shape.height as u64);
                backend.handoff_buffer_words = rows * (tap_shape.channels * tap_shape.width) as u64;
                backend.handoff_dram_words = tap_shape.len() as u64 - backend.handoff_buffer_words;
            }
            let run = pe_array_backend(network, arch, (first, tap), reference, options, reserved)?;
            Ok(backend.pe_array(arch, run))
        }
        Backend::Nvdla(nv) => {
            let run = nvdla::run(network, nv, first, tap, reference)?;
            backend.release_cycles = run.layers.first().map_or(0, |l| l.end.get());
            backend.cycles = run.total_cycles;
            for ((stats, e), out) in run.layers.into_iter().zip(run.energy_pj).zip(run.outputs) {
                backend.layers.push(LayerRecord {
                    engine: LayerEngine::NvdlaTable,
                    clock_mhz: nv.clock_mhz,
                    stats,
                    energy_pj: Some(Energy {
                        nvdla_table: e,
                        total: e,
                        ..Default::default()
                    }),
                    ffe: None,
                });
                backend.outputs.push(out);
            }
            Ok(backend)
        }
    }
}

/// The PE-array engine from layer `first` on `tap`, `reserved` GLB bytes
/// kept for the next frame's handoff slot.
fn pe_array_backend(
    network: &Network,
    arch: &Arch,
    (first, tap): (usize, &Activations),
    reference: Option<&[Activations]>,
    options: &SystemOptions,
    reserved: u64,
) -> Result<EngineRun> {
    let start = match first {
        0 => Start::Input,
        f => Start::Tap {
            first: f,
            reserved_bytes: reserved,
        },
    };
    let engine_options = super::EngineOptions {
        trace: options.trace.as_ref().map(|t| {
            let mut t = t.clone();
            if arch.ffe.is_some() {
                t.path = backend_trace_path(&t.path);
            }
            t
        }),
        timing: options.timing,
        search: options.search.clone(),
        ..super::EngineOptions::default()
    };
    super::run_from(network, arch, &start, tap, reference, &engine_options)
}

impl BackendRun {
    /// The PE-array engine's `run`: its layers and figures.
    fn pe_array(mut self, arch: &Arch, run: EngineRun) -> BackendRun {
        self.release_cycles = run.layers.first().map_or(0, |l| l.end.get());
        self.cycles = run.total_cycles;
        self.events = run.events;
        self.write_holds = run.write_holds;
        for (stats, out) in run.layers.into_iter().zip(run.outputs) {
            self.layers.push(LayerRecord {
                engine: LayerEngine::PeArray,
                clock_mhz: arch.clock_mhz,
                stats,
                energy_pj: None,
                ffe: None,
            });
            self.outputs.push(out);
        }
        self
    }
}

/// The FFE's per-layer records and its summary.
#[allow(clippy::too_many_arguments)]
fn ffe_rows(
    network: &Network,
    arch: &Arch,
    cfg: &FfeConfig,
    plan: &FfePlan,
    run: &FfeRun,
    frame_s: f64,
    handoff_buffer_words: u64,
    handoff_dram_words: u64,
) -> Result<(Vec<LayerRecord>, FfeSummary)> {
    let inventories = ffe::inventories(network, plan, cfg)?;
    let areas: Vec<FfeArea> = inventories
        .iter()
        .map(|inv| ffe_cost::area(inv, &cfg.area))
        .collect();
    let mut total_area = FfeArea::default();
    areas.iter().for_each(|a| total_area.add(a));
    let mut total_energy = FfeEnergy::default();
    let mut rows = Vec::with_capacity(run.stages.len());
    let last = run.stages.len().saturating_sub(1);
    for (k, s) in run.stages.iter().enumerate() {
        let area = areas.get(k).copied().unwrap_or_default();
        let e = ffe_cost::energy(
            &s.stats,
            &s.inventory,
            s.in_bits,
            &cfg.energy,
            area.total_mm2,
            frame_s,
        );
        total_energy.add(&e);
        let mut stats = ffe_stage_stats(&s.stats, network.layers[s.layer].macs());
        let mut level = ffe_level_energy(&e);
        if k == last {
            let words = (handoff_buffer_words, handoff_dram_words);
            add_handoff_writes(&mut stats, &mut level, arch, words);
        }
        level.total = level.mac + level.rf + level.array + level.glb + level.dram;
        let banks = if plan.stages[k].line_buffer {
            plan.stages[k].kernel[0] as u32 + 1
        } else {
            0
        };
        let ffe = FfeLayer {
            fixed_layer: s.fixed_layer,
            stats: s.stats,
            inventory: s.inventory,
            area,
            energy: e,
            line_buffer_banks: banks,
        };
        rows.push(LayerRecord {
            engine: LayerEngine::Ffe,
            clock_mhz: cfg.clock_mhz,
            stats,
            energy_pj: Some(level),
            ffe: Some(ffe),
        });
    }
    let (nonzero, deepfreeze) = deepfreeze_area(network, plan, &inventories);
    let summary = FfeSummary {
        fixed_layers: plan.fixed_layers,
        tap: plan.tap,
        hardware_layers: plan.stages.len(),
        running_layers: plan.active,
        clock_mhz: cfg.clock_mhz,
        frame_cycles: run.frame_done.first().copied().unwrap_or(run.end),
        busy_cycles: run.busy_cycles,
        stepped_cycles: run.stepped_cycles,
        area: total_area,
        stage_area_mm2: areas.iter().map(|a| a.total_mm2).collect(),
        energy: total_energy,
        deepfreeze_mm2: deepfreeze,
        nonzero_weights: nonzero,
    };
    Ok((rows, summary))
}

/// The last FFE stage also writes the hand-off buffer, and DRAM for the rows
/// that do not fit it: `(buffer_words, dram_words)`.
fn add_handoff_writes(
    stats: &mut LayerStats,
    level: &mut Energy,
    arch: &Arch,
    (buffer_words, dram_words): (u64, u64),
) {
    let a = &mut stats.accesses;
    a.glb.write(DataType::Output, buffer_words);
    a.dram.write(DataType::Output, dram_words);
    let unit = arch.energy.pj_per_unit;
    level.glb += buffer_words as f64 * arch.energy.glb * unit;
    level.dram += dram_words as f64 * arch.energy.dram * unit;
}

/// An FFE stage's cycles (from its first input taken to its last, split
/// into fill, one output per compute cycle, stall and drain), MACs and
/// line-buffer accesses (counted at the GLB level).
fn ffe_stage_stats(st: &StageStats, macs: u64) -> LayerStats {
    let start = st.first_input.unwrap_or(0);
    let end = st.last_taken.map_or(start, |t| t + 1);
    let total = end - start;
    let fill = st.first_output.map_or(total, |f| f - start);
    let compute = st.outputs;
    let drain = st.last_output.map_or(0, |l| end.saturating_sub(l + 1));
    let mut stats = LayerStats {
        start: Cycle(start),
        end: Cycle(end),
        cycles: CycleBreakdown {
            total,
            compute,
            stall: total.saturating_sub(fill + compute + drain),
            fill,
            drain,
        },
        macs,
        pe_busy_cycles: st.outputs,
        pes: 1,
        ..Default::default()
    };
    let glb = &mut stats.accesses.glb;
    glb.read(DataType::Input, st.line_buffer.read_words);
    glb.write(DataType::Input, st.line_buffer.write_words);
    stats
}

/// The level view of an FFE stage's energy: adders and multipliers as
/// `mac`, registers as `rf`, line-buffer SRAM as `glb` (`total` is summed
/// by the caller once every level is in).
fn ffe_level_energy(e: &FfeEnergy) -> Energy {
    Energy {
        mac: e.adders_pj + e.bn_pj,
        rf: e.registers_pj + e.leakage_pj,
        glb: e.line_buffer_pj,
        ..Default::default()
    }
}

/// The FFE's non-zero hard-wired weights and their area under DeepFreeze's
/// per-weight estimate (mm^2).
fn deepfreeze_area(
    network: &Network,
    plan: &FfePlan,
    inventories: &[StageInventory],
) -> (u64, f64) {
    let mut nonzero = 0u64;
    let mut deepfreeze = 0.0;
    for (st, inv) in plan.stages.iter().zip(inventories) {
        let l = &network.layers[st.layer];
        let a_bits = f64::from(l.input_quant.dtype().bits());
        let w_bits = l
            .weight_quant()
            .map_or(0.0, |w| f64::from(w.dtype().bits()));
        nonzero += inv.scalers;
        deepfreeze += 2.05e-7 * inv.scalers as f64 * a_bits * w_bits;
    }
    (nonzero, deepfreeze)
}

/// The buffer between FFE and back-end in a stream, with the back-end's
/// schedule: frame f starts when the FFE has delivered it and the back-end
/// has finished frame f - 1; its slot frees when the back-end's first layer
/// has consumed it.
struct ScheduleSink {
    ffe: Clock,
    slots: u32,
    backend_s: f64,
    release_s: f64,
    last_end_s: f64,
    /// Per frame: the FFE cycle its slot is free again.
    release_cycle: Vec<u64>,
    end_s: Vec<f64>,
}

impl Sink for ScheduleSink {
    fn free_at(&mut self, frame: u32) -> u64 {
        if frame < self.slots {
            return 0;
        }
        // Frames complete in order, so the slot's previous frame is known.
        self.release_cycle
            .get((frame - self.slots) as usize)
            .copied()
            .unwrap_or(0)
    }

    fn frame_done(&mut self, _frame: u32, cycle: u64) {
        let done = self.ffe.seconds(cycle);
        let start = done.max(self.last_end_s);
        let end = start + self.backend_s;
        self.release_cycle
            .push(self.ffe.cycle_at(start + self.release_s));
        self.end_s.push(end);
        self.last_end_s = end;
    }
}

fn stream_figures(
    srun: &FfeRun,
    sink: &ScheduleSink,
    ffe_clock: Clock,
    frames: u32,
    slots: u32,
) -> StreamRun {
    let ends = &sink.end_s;
    let last = ends.last().copied().unwrap_or(0.0);
    let period_s = match ends.len() {
        0 | 1 => last,
        k => ends[k - 1] - ends[k - 2],
    };
    let last_start = srun
        .frame_start
        .last()
        .map_or(0.0, |&c| ffe_clock.seconds(c));
    let total_cycles = ffe_clock.cycle_at(last).max(srun.end);
    StreamRun {
        frames,
        buffer_slots: slots,
        frame_end_s: ends.clone(),
        period_s,
        last_latency_s: last - last_start,
        ffe_busy_share: if total_cycles > 0 {
            srun.busy_cycles as f64 / total_cycles as f64
        } else {
            0.0
        },
        backend_busy_share: if last > 0.0 {
            sink.backend_s * f64::from(frames) / last
        } else {
            0.0
        },
        ffe_stepped_cycles: srun.stepped_cycles,
        ffe_total_cycles: total_cycles,
    }
}
