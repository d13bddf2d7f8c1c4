//! The FFE controller: builds one stage per fixed layer from the mapping's
//! plan and clocks the pipeline (SPEC section 3; docs/ffe.md).
//!
//! ```text
//!   sensor ─► stage 0 ─► stage 1 ─► ... ─► stage M ─► sink (buffer slot of the frame)
//! ```
//!
//! Each cycle the stages are evaluated from the sink back to the sensor: the
//! sink takes the last stage's pixel when the frame's buffer slot is free;
//! then, for each stage, its reader works ([`Stage::step`]) and it takes its
//! upstream neighbour's pixel when that is valid and it is ready. Going
//! downstream-first makes `ready` combinational along the chain: a slot
//! freed in a cycle can be refilled in the same cycle, as in an elastic
//! pipeline, so a stream of one pixel per cycle flows without bubbles.
//!
//! The loop advances one cycle at a time while anything moves; when nothing
//! did (all stages waiting for a pipeline register or for the sink), it
//! jumps to the next cycle at which something can change. The values move
//! with the pixels: every output pixel is computed by the stage's
//! shift-add datapath from the window its shift register holds, and the
//! frame-0 outputs of every stage are collected for the bit-exact check.

use ndarray::Array3;

use crate::arch::{AccumulatorWidth, Digits, FfeConfig};
use crate::error::{Error, Result};
use crate::hw::ffe::{
    Dims, Pixel, PortConflict, ShiftAddArray, Stage, StageFunction, StageInventory, StageSpec,
    StageStats,
};
use crate::mapping::ffe::{FfePlan, StageKind, StagePlan};
use crate::numerics::csd::DigitEncoding;
use crate::sim::Cycle;
use crate::trace::{Group, SignalId, TraceOptions, Tracer};
use crate::workload::ir::{Activations, Network, Op, Shape};

/// The buffer behind the tap, as the FFE sees it.
pub(crate) trait Sink {
    /// First FFE cycle at which the buffer slot of `frame` accepts pixels.
    fn free_at(&mut self, frame: u32) -> u64;
    /// The last pixel of `frame` entered the buffer; `cycle` is the cycle after.
    fn frame_done(&mut self, frame: u32, cycle: u64);
}

/// A sink that always accepts (one frame into an empty buffer).
pub(crate) struct OpenSink;

impl Sink for OpenSink {
    fn free_at(&mut self, _frame: u32) -> u64 {
        0
    }
    fn frame_done(&mut self, _frame: u32, _cycle: u64) {}
}

/// What a stage did and is.
#[derive(Debug, Clone)]
pub(crate) struct StageResult {
    /// The IR layer it computes.
    pub layer: usize,
    pub fixed_layer: u32,
    pub stats: StageStats,
    pub inventory: StageInventory,
    pub in_bits: u32,
}

/// The result of simulating frames through the FFE.
#[derive(Debug, Clone)]
pub(crate) struct FfeRun {
    pub stages: Vec<StageResult>,
    /// Frame 0's output of every running stage (empty in a timing-only run).
    pub outputs: Vec<Activations>,
    /// Per frame: the cycle its first pixel entered stage 0.
    pub frame_start: Vec<u64>,
    /// Per frame: the cycle after its last pixel entered the buffer.
    pub frame_done: Vec<u64>,
    /// Cycles in which at least one stage's clock was enabled.
    pub busy_cycles: u64,
    /// Cycle after the last pixel of the last frame entered the buffer.
    pub end: u64,
    /// Cycles simulated one by one (the rest were jumped over).
    pub stepped_cycles: u64,
}

/// Bits of a layer's input and output activations.
fn bits(network: &Network, plan: &StagePlan) -> (u32, u32) {
    let l = &network.layers[plan.layer];
    (l.input_quant.dtype().bits(), l.output_quant.dtype().bits())
}

fn dims(s: Shape) -> Dims {
    Dims {
        channels: s.channels,
        height: s.height,
        width: s.width,
    }
}

fn internal(message: String) -> Error {
    Error::Internal {
        context: "FFE pipeline".to_string(),
        message,
    }
}

fn conflict(stage: &StagePlan, network: &Network, c: PortConflict) -> Error {
    internal(format!(
        "layer `{}`: line-buffer bank {} accessed twice (or read before written) in cycle {}",
        network.layers[stage.layer].name, c.bank, c.cycle
    ))
}

/// The hardware description of stage `plan`.
pub(crate) fn stage_spec(
    network: &Network,
    plan: &StagePlan,
    cfg: &FfeConfig,
    frames: u32,
    values: bool,
) -> Result<StageSpec> {
    let layer = &network.layers[plan.layer];
    let (function, pad_value) = match (&layer.op, plan.kind) {
        (Op::Conv2d(c), StageKind::Conv) => {
            let stage = &c.epilogue.output_stage;
            let array = ShiftAddArray::new(
                c.weights.view(),
                c.groups,
                c.in_channels(),
                c.weight_quant.zero(),
                layer.input_quant.zero(),
                layer.input_quant.range(),
                &c.epilogue.bias,
                match cfg.digits {
                    Digits::Csd => DigitEncoding::Csd,
                    Digits::Binary => DigitEncoding::Binary,
                },
                cfg.accumulator,
                stage.accumulator_bits,
            );
            if cfg.accumulator == AccumulatorWidth::Derived
                && let Some(o) = array
                    .acc_bits
                    .iter()
                    .position(|&b| b > 63 || b > stage.accumulator_bits + 32)
            {
                return Err(internal(format!(
                    "layer `{}` channel {o}: derived accumulator of {} bits",
                    layer.name, array.acc_bits[o]
                )));
            }
            let requant = (0..c.out_channels()).map(|o| stage.channel(o)).collect();
            (
                StageFunction::ShiftAdd { array, requant },
                layer.input_quant.zero() as i16,
            )
        }
        (Op::MaxPool(_), StageKind::MaxPool) => (
            StageFunction::Max {
                element_bits: layer.input_quant.dtype().bits(),
            },
            layer.input_quant.range().0 as i16,
        ),
        _ => {
            return Err(internal(format!(
                "layer `{}` ({}) planned as an FFE stage",
                layer.name,
                layer.op.kind()
            )));
        }
    };
    Ok(StageSpec {
        input: dims(plan.input),
        output: dims(plan.output),
        kernel: plan.kernel,
        stride: plan.stride,
        pad_top: plan.pad_top,
        pad_left: plan.pad_left,
        line_buffer: plan.line_buffer,
        pad_value,
        latency: cfg.datapath_latency_cycles,
        frames,
        values,
        function,
    })
}

/// The hardware inventory of every stage of the FFE (all N fixed layers,
/// running or not): what the area model counts.
pub(crate) fn inventories(
    network: &Network,
    plan: &FfePlan,
    cfg: &FfeConfig,
) -> Result<Vec<StageInventory>> {
    plan.stages
        .iter()
        .map(|s| {
            let spec = stage_spec(network, s, cfg, 1, false)?;
            let (i, o) = bits(network, s);
            Ok(spec.inventory(i, o, cfg.area.bn_scale_bits))
        })
        .collect()
}

/// Signals of one stage (scope `ffe`, group `ffe`).
struct StageProbes {
    /// The upstream offers a pixel (the sensor, or the previous stage's
    /// output register).
    in_valid: SignalId,
    /// The stage can take a pixel (its line-buffer bank is free, or its
    /// pipeline has room).
    in_ready: SignalId,
    /// Offered but refused: `in_valid && !in_ready`.
    stall: SignalId,
    /// Its output register holds a pixel.
    out_valid: SignalId,
    /// Data words in its line buffer.
    line_buffer_words: SignalId,
}

/// The FFE's tracer and signals.
struct FfeTrace {
    tracer: Tracer,
    frame: SignalId,
    stages: Vec<Option<StageProbes>>,
}

impl FfeTrace {
    /// Declares the signals of the running stages (only those of the
    /// `--trace-layers` list, when given) and writes the header.
    fn start(
        options: &TraceOptions,
        cfg: &FfeConfig,
        network: &Network,
        running: &[StagePlan],
    ) -> Result<FfeTrace> {
        // Stages run concurrently: the layer list picks stages, not time.
        let mut own = options.clone();
        own.layers = None;
        let mut tracer = Tracer::new(own, cfg.clock_mhz);
        let frame = tracer.signal(Group::Ffe, "ffe", "sensor_frame", 16);
        let stages = running
            .iter()
            .enumerate()
            .map(|(j, s)| {
                let picked = options.layers.as_ref().is_none_or(|l| l.contains(&s.layer));
                picked.then(|| {
                    let name = &network.layers[s.layer].name;
                    let mut signal = |what: &str, width: u32| {
                        tracer.signal(Group::Ffe, "ffe", format!("stage{j}_{name}_{what}"), width)
                    };
                    StageProbes {
                        in_valid: signal("in_valid", 1),
                        in_ready: signal("in_ready", 1),
                        stall: signal("stall", 1),
                        out_valid: signal("out_valid", 1),
                        line_buffer_words: signal("line_buffer_words", 32),
                    }
                })
            })
            .collect();
        tracer.begin()?;
        Ok(FfeTrace {
            tracer,
            frame,
            stages,
        })
    }

    /// The output registers at the start of cycle `now`.
    fn outputs(&mut self, now: u64, stages: &[Stage], sensor_frame: u32) {
        let at = Cycle(now);
        self.tracer.set(self.frame, at, u64::from(sensor_frame));
        for (p, s) in self.stages.iter().zip(stages) {
            if let Some(p) = p {
                self.tracer
                    .set(p.out_valid, at, u64::from(s.output_valid(now).is_some()));
            }
        }
    }

    /// Stage `j`'s input handshake in cycle `now`.
    fn handshake(&mut self, j: usize, now: u64, offered: bool, ready: bool) {
        if let Some(Some(p)) = self.stages.get(j) {
            let at = Cycle(now);
            self.tracer.set(p.in_valid, at, u64::from(offered));
            self.tracer.set(p.in_ready, at, u64::from(ready));
            self.tracer.set(p.stall, at, u64::from(offered && !ready));
        }
    }

    /// Line-buffer fills at the end of cycle `now`; writes what is final.
    /// Returns false once the window is over (the trace is then finished).
    fn end_cycle(&mut self, now: u64, stages: &[Stage]) -> Result<bool> {
        for (p, s) in self.stages.iter().zip(stages) {
            if let Some(p) = p {
                self.tracer
                    .set(p.line_buffer_words, Cycle(now), s.line_buffer_fill_words());
            }
        }
        if self.tracer.past_window(Cycle(now + 1)) {
            self.tracer.finish(Cycle(now + 1))?;
            return Ok(false);
        }
        self.tracer.advance(Cycle(now))?;
        Ok(true)
    }
}

/// Simulates `frames` frames of `input` through the running stages of
/// `plan`. With `values`, frame 0's values are computed and returned. With
/// `trace`, every stepped cycle's handshakes and line-buffer fill are
/// recorded (in FFE cycles).
#[allow(clippy::too_many_arguments)]
pub(crate) fn simulate(
    network: &Network,
    plan: &FfePlan,
    cfg: &FfeConfig,
    input: &Activations,
    frames: u32,
    values: bool,
    sink: &mut dyn Sink,
    trace: Option<&TraceOptions>,
) -> Result<FfeRun> {
    let running = plan.active_stages();
    let (stages, mut results) = build_stages(network, running, cfg, frames, values)?;
    let n = stages.len();
    if n == 0 || frames == 0 {
        return Err(internal("no stage or no frame to simulate".to_string()));
    }
    let mut trace = trace
        .map(|t| FfeTrace::start(t, cfg, network, running))
        .transpose()?;
    let tap = running[n - 1].output;
    let mut p = Pipeline {
        network,
        running,
        stages,
        input,
        frames,
        values,
        outputs: frame_outputs(running, values),
        sensor: (0, 0, 0),
        tap_pixels: (tap.height * tap.width) as u64,
        delivered: 0,
        frame_start: Vec::with_capacity(frames as usize),
        frame_done: Vec::with_capacity(frames as usize),
    };
    let (mut now, mut busy, mut stepped) = (0u64, 0u64, 0u64);
    while p.sensor.0 < frames || !p.stages.iter().all(Stage::done) {
        stepped += 1;
        if let Some(t) = &mut trace {
            t.outputs(now, &p.stages, p.sensor.0);
        }
        let delivered = p.deliver(now, sink);
        for j in (0..n).rev() {
            p.stage_cycle(j, now, &mut trace)?;
        }
        let moved = delivered || p.stages.iter().any(Stage::acted);
        let next = if moved {
            now + 1
        } else {
            p.next_change(now, sink)?
        };
        if let Some(t) = &mut trace
            && !t.end_cycle(now, &p.stages)?
        {
            trace = None;
        }
        let mut any = 0;
        for s in &mut p.stages {
            any = any.max(s.end_cycles(now, next));
        }
        busy += any;
        now = next;
    }
    if let Some(t) = &mut trace {
        t.tracer.finish(Cycle(now))?;
    }
    for (r, s) in results.iter_mut().zip(&p.stages) {
        r.stats = s.stats;
    }
    Ok(FfeRun {
        stages: results,
        outputs: p.outputs,
        frame_start: p.frame_start,
        frame_done: p.frame_done,
        busy_cycles: busy,
        end: now,
        stepped_cycles: stepped,
    })
}

/// One stage per running fixed layer, and its result record.
fn build_stages(
    network: &Network,
    running: &[StagePlan],
    cfg: &FfeConfig,
    frames: u32,
    values: bool,
) -> Result<(Vec<Stage>, Vec<StageResult>)> {
    let mut stages = Vec::with_capacity(running.len());
    let mut results = Vec::with_capacity(running.len());
    for s in running {
        let spec = stage_spec(network, s, cfg, frames, values)?;
        let (i, o) = bits(network, s);
        results.push(StageResult {
            layer: s.layer,
            fixed_layer: s.fixed_layer,
            stats: StageStats::default(),
            inventory: spec.inventory(i, o, cfg.area.bn_scale_bits),
            in_bits: i,
        });
        stages.push(Stage::new(spec));
    }
    Ok((stages, results))
}

/// Frame 0's output of every running stage, zeroed (none in a
/// timing-only run).
fn frame_outputs(running: &[StagePlan], values: bool) -> Vec<Activations> {
    if !values {
        return Vec::new();
    }
    running
        .iter()
        .map(|s| Array3::zeros(s.output.dims()))
        .collect()
}

/// The pipeline's state between cycles: the stages, the sensor's position
/// and the frames delivered to the sink.
struct Pipeline<'p> {
    network: &'p Network,
    running: &'p [StagePlan],
    stages: Vec<Stage>,
    input: &'p Activations,
    frames: u32,
    values: bool,
    /// Frame 0's output of every stage (empty in a timing-only run).
    outputs: Vec<Activations>,
    /// The sensor's next pixel: (frame, y, x).
    sensor: (u32, usize, usize),
    tap_pixels: u64,
    /// Pixels of the current frame in the sink.
    delivered: u64,
    frame_start: Vec<u64>,
    frame_done: Vec<u64>,
}

impl Pipeline<'_> {
    /// Stage `j`'s frame-0 output pixel `px`, for the bit-exact check.
    fn record(&mut self, j: usize, px: &Pixel) {
        if let (Some(out), Some(v), 0) = (self.outputs.get_mut(j), px.values.as_deref(), px.frame) {
            for (c, &value) in v.iter().enumerate() {
                out[[c, px.y as usize, px.x as usize]] = value;
            }
        }
    }

    /// The sink takes the tapped pixel when its frame's slot is free;
    /// returns whether it did.
    fn deliver(&mut self, now: u64, sink: &mut dyn Sink) -> bool {
        let last = self.stages.len() - 1;
        let Some(f) = self.stages[last].output_valid(now) else {
            return false;
        };
        if sink.free_at(f) > now {
            return false;
        }
        let Some(px) = self.stages[last].take(now) else {
            return false;
        };
        self.record(last, &px);
        self.delivered += 1;
        if self.delivered == self.tap_pixels {
            self.delivered = 0;
            self.frame_done.push(now + 1);
            sink.frame_done(px.frame, now + 1);
        }
        true
    }

    /// Stage `j` in cycle `now`: its reader works, then it takes its
    /// upstream's pixel (the sensor's, for stage 0) when offered and ready.
    fn stage_cycle(&mut self, j: usize, now: u64, trace: &mut Option<FfeTrace>) -> Result<()> {
        let (network, running) = (self.network, self.running);
        self.stages[j]
            .step(now)
            .map_err(|c| conflict(&running[j], network, c))?;
        let offered = if j == 0 {
            self.sensor.0 < self.frames
        } else {
            self.stages[j - 1].output_valid(now).is_some()
        };
        if let Some(t) = trace {
            t.handshake(j, now, offered, self.stages[j].input_ready());
        }
        if !offered {
            return Ok(());
        }
        if !self.stages[j].input_ready() {
            self.stages[j].refuse_input();
            return Ok(());
        }
        if j == 0 {
            return self.sense(now);
        }
        if let Some(px) = self.stages[j - 1].take(now) {
            self.record(j - 1, &px);
            self.stages[j]
                .accept(now, &px)
                .map_err(|c| conflict(&running[j], network, c))?;
        }
        Ok(())
    }

    /// Stage 0 takes the sensor's next pixel in cycle `now`.
    fn sense(&mut self, now: u64) -> Result<()> {
        let (frame, y, x) = self.sensor;
        let (in_c, in_h, in_w) = self.input.dim();
        let values = self.values.then(|| {
            (0..in_c)
                .map(|c| self.input[[c, y, x]])
                .collect::<Box<[i16]>>()
        });
        let px = Pixel {
            frame,
            y: y as u32,
            x: x as u32,
            values,
        };
        if y == 0 && x == 0 {
            self.frame_start.push(now);
        }
        self.stages[0]
            .accept(now, &px)
            .map_err(|c| conflict(&self.running[0], self.network, c))?;
        self.sensor = match (x + 1 == in_w, y + 1 == in_h) {
            (false, _) => (frame, y, x + 1),
            (true, false) => (frame, y + 1, 0),
            (true, true) => (frame + 1, 0, 0),
        };
        Ok(())
    }

    /// Nothing moved in cycle `now`: the next pipeline register coming
    /// valid, or the sink's slot freeing up.
    fn next_change(&self, now: u64, sink: &mut dyn Sink) -> Result<u64> {
        let last = self.stages.len() - 1;
        let sink_wake = self.stages[last]
            .output_valid(u64::MAX)
            .map(|f| sink.free_at(f))
            .filter(|&t| t > now);
        self.stages
            .iter()
            .filter_map(|s| s.next_event(now))
            .chain(sink_wake)
            .min()
            .ok_or_else(|| internal(format!("deadlock at cycle {now}")))
    }
}

/// Checks every running stage's frame-0 output against the reference.
pub(crate) fn check(
    network: &Network,
    run: &FfeRun,
    reference: Option<&[Activations]>,
) -> Result<()> {
    for (r, out) in run.stages.iter().zip(&run.outputs) {
        super::check(
            &network.layers[r.layer],
            r.layer,
            Some(out),
            reference,
            "ffe",
        )?;
    }
    Ok(())
}
