//! The report of a system run: an FFE in front of the PE array or of the
//! table-driven NVDLA model (SPEC section 3; docs/report.md, "system").
//!
//! Per-layer rows carry the engine that ran them. FFE rows are simulated
//! stages (cycles in the FFE clock, energy from their activity); PE-array
//! rows are the simulated array (its clock, access-cost energy); NVDLA rows
//! come from the published table (its implied clock, table power x time)
//! and their values from the reference executor.

use crate::arch::{Arch, Backend};
use crate::cost::energy::{self, Energy};
use crate::engine::LayerStats;
use crate::engine::system::{self, LayerEngine, LayerRecord, SystemOptions, SystemRun};
use crate::error::{InputError, Result};
use crate::reference::Execution;
use crate::report::{
    AreaReport, FfeLayerReport, FfeSystemReport, FrameReport, LayerReport, LineBufferReport,
    Measured, Report, SCHEMA_VERSION, StreamReport, SystemReport, Throughput, TotalReport,
};
use crate::sim::Clock;
use crate::workload::{Activations, Workload};

use super::{
    RunOptions, RunResult, accumulate_stats, arch_info, layer_row, layer_tops, layer_tops_per_w,
    measured, workload_info,
};

/// The measured view of a record: the PE array's energies from its access
/// costs, the others' from their own models.
fn record_measured(r: &LayerRecord, arch: &Arch) -> Measured {
    let mut m = measured(&r.stats, arch);
    if let Some(pj) = r.energy_pj {
        m.energy_pj = pj;
        m.energy = pj.scaled(1.0 / arch.energy.pj_per_unit);
        m.memory_energy = m.energy.memory();
    }
    m
}

fn record_pj(r: &LayerRecord, arch: &Arch) -> f64 {
    r.energy_pj.map_or_else(
        || energy::picojoules(&r.stats, &arch.energy).total,
        |e| e.total,
    )
}

pub(super) fn run(
    workload: &Workload,
    arch: &Arch,
    options: &RunOptions,
    input: Activations,
    reference_outputs: Option<Vec<Activations>>,
) -> Result<RunResult> {
    let net = &workload.network;
    if options.trace.is_some() && arch.ffe.is_none() {
        return Err(InputError::new(
            "--trace",
            format!(
                "arch `{}` runs every layer on the NVDLA table model, which is not simulated cycle by cycle; valid: --trace with a PE-array or FFE architecture",
                arch.name
            ),
        )
        .into());
    }
    let sys: SystemRun = system::run(
        net,
        arch,
        &input,
        reference_outputs.as_deref(),
        &SystemOptions {
            ffe_tap: options.ffe_tap,
            stream_frames: options.stream_frames,
            trace: options.trace.clone(),
            timing: options.timing,
            search: options.search.clone(),
        },
    )?;
    let execution = Execution::from_parts(input, sys.outputs.clone());
    let layers = layer_reports(workload, &execution, &sys, arch);
    let (total, throughput) = totals(&sys, arch, &layers);
    let report = report(workload, options, arch, &sys, (layers, total, throughput));
    // The engine view for callers that want raw statistics.
    let engine_run = crate::engine::EngineRun {
        layers: sys.layers.iter().map(|r| r.stats.clone()).collect(),
        outputs: sys.outputs.clone(),
        total_cycles: report.throughput.as_ref().map_or(0, |t| t.cycles),
        events: report.throughput.as_ref().map_or(0, |t| t.events),
        write_holds: sys.backend_write_holds,
        checked: sys.checked,
    };
    Ok(RunResult {
        report,
        execution,
        engine: engine_run,
        system: Some(sys),
    })
}

/// One report row per layer, from the record of the engine that ran it.
fn layer_reports(
    workload: &Workload,
    execution: &Execution,
    sys: &SystemRun,
    arch: &Arch,
) -> Vec<LayerReport> {
    let net = &workload.network;
    let rows = net.layers.iter().enumerate().map(|(index, layer)| {
        let r = sys.layers.get(index);
        LayerReport {
            measured: r.map(|r| record_measured(r, arch)),
            engine: r.map(|r| r.engine.name().to_string()),
            values: r.map(|r| r.engine.values().to_string()),
            clock_mhz: r.map(|r| r.clock_mhz),
            tops: r.and_then(|r| layer_tops(layer.macs(), r.stats.cycles.total, r.clock_mhz)),
            tops_per_w: r.and_then(|r| layer_tops_per_w(layer.macs(), record_pj(r, arch))),
            ffe: r
                .and_then(|r| r.ffe.as_ref())
                .map(|f| ffe_layer_report(f, layer)),
            ..layer_row(index, layer, execution, r.map(|r| &r.stats))
        }
    });
    rows.collect()
}

/// The FFE figures of a layer an FFE stage ran.
fn ffe_layer_report(f: &system::FfeLayer, layer: &crate::workload::ir::Layer) -> FfeLayerReport {
    let s = &f.stats;
    FfeLayerReport {
        fixed_layer: f.fixed_layer,
        scalers: f.inventory.scalers,
        digits: f.inventory.digits,
        max_accumulator_bits: f.inventory.max_acc_bits,
        adds: s.adds,
        adder_bit_ops: s.adder_bits,
        line_buffer: LineBufferReport {
            banks: f.line_buffer_banks,
            capacity_words: f.inventory.sram_bits / u64::from(layer.input_quant.dtype().bits()),
            read_words: s.line_buffer.read_words,
            write_words: s.line_buffer.write_words,
            read_accesses: s.line_buffer.read_accesses,
            write_accesses: s.line_buffer.write_accesses,
            rotations: s.line_buffer.rotations,
        },
        window_shifts: s.shifts,
        pad_shifts: s.pad_shifts,
        busy_cycles: s.busy_cycles,
        backpressure_cycles: s.backpressure_cycles,
        refused_input_cycles: s.refused_input_cycles,
        first_output_cycle: s.first_output.unwrap_or(0),
        area: f.area,
        energy_pj: f.energy,
    }
}

/// Totals: counts and energies summed; cycles = the frame latency in the
/// back-end clock (the FFE's frame counts as compute, then the back-end
/// layers' own split).
fn totals(sys: &SystemRun, arch: &Arch, layers: &[LayerReport]) -> (TotalReport, Throughput) {
    let backend_layers: Vec<&LayerRecord> = sys
        .layers
        .iter()
        .filter(|r| r.engine != LayerEngine::Ffe)
        .collect();
    let (clock_mhz, ffe_in_clock) = match &sys.ffe {
        Some(f) if !backend_layers.is_empty() => (
            sys.backend_clock_mhz,
            Clock::new(sys.backend_clock_mhz)
                .cycle_at(Clock::new(f.clock_mhz).seconds(f.frame_cycles)),
        ),
        Some(f) => (f.clock_mhz, f.frame_cycles),
        None => (sys.backend_clock_mhz, 0),
    };
    let mut sum = LayerStats::default();
    for r in &backend_layers {
        accumulate_stats(&mut sum, &r.stats);
    }
    let backend_pes = backend_layers.first().map_or(0, |r| r.stats.pes);
    let backend_busy = sum.pe_busy_cycles;
    for r in sys.layers.iter().filter(|r| r.engine == LayerEngine::Ffe) {
        let mut s = r.stats.clone();
        s.cycles = Default::default();
        s.pe_busy_cycles = 0;
        accumulate_stats(&mut sum, &s);
    }
    sum.cycles.total += ffe_in_clock;
    sum.cycles.compute += ffe_in_clock;
    sum.pes = backend_pes;
    let mut total_pj = Energy::default();
    for r in &sys.layers {
        total_pj.add(
            &r.energy_pj
                .unwrap_or_else(|| energy::picojoules(&r.stats, &arch.energy)),
        );
    }
    let mut total_measured = measured(&sum, arch);
    total_measured.energy_pj = total_pj;
    total_measured.energy = total_pj.scaled(1.0 / arch.energy.pj_per_unit);
    total_measured.memory_energy = total_measured.energy.memory();
    total_measured.utilisation = if backend_pes > 0 && sys.backend_cycles > 0 {
        backend_busy as f64 / (backend_pes * sys.backend_cycles) as f64
    } else {
        0.0
    };
    let total = TotalReport {
        name: "total".to_string(),
        weights: layers.iter().map(|l| l.weights).sum(),
        macs: layers.iter().map(|l| l.macs).sum(),
        zero_macs: layers.iter().map(|l| l.zero_macs).sum(),
        measured: Some(total_measured),
    };
    let throughput = throughput(sys, &total, clock_mhz, sum.cycles.total);
    (total, throughput)
}

/// Operations of one frame (two per MAC).
fn frame_ops(total: &TotalReport) -> u64 {
    2 * total.macs
}

/// Per second of the frame latency.
fn per_s(sys: &SystemRun, x: f64) -> f64 {
    if sys.latency_s > 0.0 {
        x / sys.latency_s
    } else {
        0.0
    }
}

/// Operations per pJ of one frame.
fn tops_per_w(sys: &SystemRun, total: &TotalReport) -> f64 {
    if sys.frame_energy_pj > 0.0 {
        frame_ops(total) as f64 / sys.frame_energy_pj
    } else {
        0.0
    }
}

/// One frame's throughput figures, `cycles` in the `clock_mhz` clock.
fn throughput(sys: &SystemRun, total: &TotalReport, clock_mhz: f64, cycles: u64) -> Throughput {
    let ops = frame_ops(total);
    Throughput {
        clock_mhz,
        cycles,
        seconds: sys.latency_s,
        inferences_per_s: per_s(sys, 1.0),
        tops: per_s(sys, ops as f64) / 1e12,
        tops_per_w: tops_per_w(sys, total),
        macs_per_cycle: if cycles > 0 {
            total.macs as f64 / cycles as f64
        } else {
            0.0
        },
        events: sys.backend_events + sys.ffe.as_ref().map_or(0, |f| f.stepped_cycles),
    }
}

/// The back-end's name in the report and where its area comes from.
fn backend_names(arch: &Arch) -> (String, String) {
    match &arch.backend {
        Backend::PeArray => ("pe_array".to_string(), "pe_array_model".to_string()),
        Backend::Nvdla(n) => (
            format!("nvdla_table {:?}", n.name),
            "nvdla_table".to_string(),
        ),
    }
}

/// The report of the run, around its rows, total and throughput.
fn report(
    workload: &Workload,
    options: &RunOptions,
    arch: &Arch,
    sys: &SystemRun,
    (layers, total, throughput): (Vec<LayerReport>, TotalReport, Throughput),
) -> Report {
    let ffe_mm2 = sys.ffe.as_ref().map(|f| f.area.total_mm2);
    let area_mm2 = ffe_mm2.unwrap_or(0.0) + sys.backend_area_mm2;
    let (backend_name, backend_source) = backend_names(arch);
    let engine = match &sys.ffe {
        Some(f) => format!(
            "ffe ({} fixed layers, tap {}) + {backend_name}",
            f.fixed_layers, f.tap
        ),
        None => backend_name.clone(),
    };
    let simulated_layers = sys
        .layers
        .iter()
        .filter(|r| r.engine.values() == crate::report::SIMULATED)
        .count();
    let system = SystemReport {
        backend: backend_name,
        backend_clock_mhz: sys.backend_clock_mhz,
        ffe: ffe_system_report(sys, arch),
        frame: frame_report(sys, arch, &total),
        stream: stream_report(sys, &total),
    };
    Report {
        precision: None,
        schema_version: SCHEMA_VERSION,
        accsim_version: env!("CARGO_PKG_VERSION").to_string(),
        workload: workload_info(workload, options),
        arch: arch_info(arch),
        engine,
        layers,
        total,
        bit_exact: sys.checked && simulated_layers > 0,
        simulated_layers,
        reference_layers: sys.layers.len() - simulated_layers,
        throughput: Some(throughput),
        area_mm2: Some(area_mm2),
        area: Some(AreaReport {
            total_mm2: area_mm2,
            ffe_mm2,
            ffe: sys.ffe.as_ref().map(|f| f.area),
            backend_mm2: sys.backend_area_mm2,
            backend_source,
        }),
        system: Some(system),
    }
}

/// One frame: its latency, cycles and energy split, and the handoff.
fn frame_report(sys: &SystemRun, arch: &Arch, total: &TotalReport) -> FrameReport {
    let ops = frame_ops(total);
    let ffe_pj: f64 = sys
        .layers
        .iter()
        .filter(|r| r.engine == LayerEngine::Ffe)
        .map(|r| record_pj(r, arch))
        .sum();
    FrameReport {
        latency_s: sys.latency_s,
        ffe_cycles: sys.ffe.as_ref().map_or(0, |f| f.frame_cycles),
        backend_cycles: sys.backend_cycles,
        energy_pj: sys.frame_energy_pj,
        ffe_energy_pj: ffe_pj,
        backend_energy_pj: sys.frame_energy_pj - ffe_pj,
        ops,
        tops: per_s(sys, ops as f64) / 1e12,
        tops_per_w: tops_per_w(sys, total),
        handoff_buffer_words: sys.handoff_buffer_words,
        handoff_dram_words: sys.handoff_dram_words,
    }
}

/// The stream of frames, when there was one.
fn stream_report(sys: &SystemRun, total: &TotalReport) -> Option<StreamReport> {
    let ops = frame_ops(total);
    sys.stream.as_ref().map(|s| {
        let fps = if s.period_s > 0.0 {
            1.0 / s.period_s
        } else {
            0.0
        };
        StreamReport {
            frames: s.frames,
            buffer_slots: s.buffer_slots,
            period_s: s.period_s,
            frames_per_s: fps,
            tops: ops as f64 * fps / 1e12,
            tops_per_w: tops_per_w(sys, total),
            last_frame_latency_s: s.last_latency_s,
            ffe_busy_share: s.ffe_busy_share,
            ffe_idle_share: if sys.ffe.is_some() {
                1.0 - s.ffe_busy_share
            } else {
                0.0
            },
            backend_busy_share: s.backend_busy_share,
            frame_end_s: s.frame_end_s.clone(),
            ffe_stepped_cycles: s.ffe_stepped_cycles,
            ffe_total_cycles: s.ffe_total_cycles,
        }
    })
}

/// The FFE's summary, when the arch has one.
fn ffe_system_report(sys: &SystemRun, arch: &Arch) -> Option<FfeSystemReport> {
    sys.ffe
        .as_ref()
        .zip(arch.ffe.as_ref())
        .map(|(f, cfg)| FfeSystemReport {
            fixed_layers: f.fixed_layers,
            tap: f.tap,
            hardware_layers: f.hardware_layers,
            running_layers: f.running_layers,
            clock_mhz: f.clock_mhz,
            digits: cfg.digits.name().to_string(),
            accumulator: match cfg.accumulator {
                crate::arch::AccumulatorWidth::Derived => "derived",
                crate::arch::AccumulatorWidth::Fixed => "fixed",
            }
            .to_string(),
            frame_cycles: f.frame_cycles,
            busy_cycles: f.busy_cycles,
            stepped_cycles: f.stepped_cycles,
            area_mm2: f.area.total_mm2,
            area: f.area,
            nonzero_weights: f.nonzero_weights,
            deepfreeze_area_mm2: f.deepfreeze_mm2,
            energy_pj: f.energy,
        })
}
