//! A precision study: PELUSO's search (SPEC section 2) with the engine as
//! the energy model, and what a user takes away from it: the front with
//! cycles and a bit-exact check per point, the per-network alternatives,
//! every evaluated state, a CSV, a JSON and a plot.
//!
//! ```text
//!   workload ([float]: calibration set) ──► AccuracyEvaluator ──┐
//!   arch + default input ──► SimulatedEnergyModel (engine) ─────┴─► precision::search
//!                                                                      │
//!        front / PELUSO front / per-network points ◄── checked engine runs (cycles, bit-exact)
//! ```
//!
//! Everything written is a pure function of (workload, arch, samples,
//! lambdas, anneal config): no wall time, no thread count, so files from two
//! runs compare byte for byte (the CLI prints the time on stdout only).

use std::collections::HashMap;
use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;
use rayon::prelude::*;
use serde::Serialize;

use super::accuracy::{AccuracyEvaluator, CacheStats, DropReference};
use super::anneal::{AnnealConfig, AnnealOutcome};
use super::energy::{SimulatedCost, SimulatedEnergyModel};
use super::{OperatingPoint, PrecisionSearch, StateEvaluated, search};
use crate::arch::Arch;
use crate::error::{Error, Result};
use crate::numerics::precision::PrecisionAssignment;
use crate::reference::precision::weighted_layers;
use crate::sweep::plot::axis::{Scale, Tick, Ticked};
use crate::trace::plot::{font, register_font};
use crate::workload::Workload;
use crate::workload::dfp::CalibrationSet;

/// What to search.
#[derive(Debug, Clone)]
pub struct StudyOptions {
    /// lambda_max values, fractions (0.01 = 1 %), one annealing run each.
    pub lambdas: Vec<f64>,
    pub anneal: AnnealConfig,
    /// Worker threads for the calibration set (results do not depend on it).
    pub threads: usize,
}

/// One operating point, simulated.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StudyPoint {
    pub assignment: PrecisionAssignment,
    pub accuracy_drop: f64,
    pub energy_pj: f64,
    /// `1 - E / E(all 16 bit)`.
    pub energy_saving: f64,
    pub mac_pj: f64,
    pub memory_pj: f64,
    pub cycles: u64,
    /// `cycles(all 16 bit) / cycles`.
    pub speedup: f64,
    /// The engine's outputs at this assignment matched the reference
    /// executor's at the same assignment, every layer, bit for bit.
    pub bit_exact: bool,
}

/// One annealing run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunSummary {
    pub lambda_max: f64,
    pub best: PrecisionAssignment,
    pub energy_pj: f64,
    pub accuracy_drop: f64,
    pub moves: u64,
    pub accepted: u64,
    pub new_evaluations: u64,
}

/// PELUSO's summary of a front (its Table: points, mean drop, mean saving).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct FrontSummary {
    pub points: usize,
    pub mean_accuracy_drop: f64,
    pub mean_energy_saving: f64,
    pub max_energy_saving: f64,
}

/// An evaluated state (not re-run with checking).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StateRecord {
    pub assignment: PrecisionAssignment,
    /// A lower bound when not `drop_exact`: the state was rejected as soon
    /// as its drop was proven at least the lambda_max of every run that
    /// visited it, and is off the front.
    pub accuracy_drop: f64,
    pub drop_exact: bool,
    pub energy_pj: f64,
    pub energy_saving: f64,
}

/// The result of a study.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PrecisionStudy {
    pub workload: String,
    pub arch: String,
    pub weighted_layers: usize,
    pub samples: usize,
    /// What the accuracy drop is measured against.
    pub reference: DropReference,
    /// The all-16-bit network's top-1 accuracy on the labels, when given
    /// (a point's accuracy is this minus its drop).
    pub reference_accuracy: Option<f64>,
    pub lambdas: Vec<f64>,
    pub anneal: AnnealConfig,
    pub all_16: StudyPoint,
    /// PELUSO's front: the non-dominated results of the annealing runs.
    pub search_front: Vec<StudyPoint>,
    pub search_summary: FrontSummary,
    /// The non-dominated points among every state evaluated.
    pub front: Vec<StudyPoint>,
    pub front_summary: FrontSummary,
    /// Every layer 16x16, 8x16, 16x8, 8x8.
    pub per_network: Vec<StudyPoint>,
    /// PELUSO's per-network column: the non-dominated per-network points.
    pub per_network_summary: FrontSummary,
    pub runs: Vec<RunSummary>,
    pub evaluated_states: usize,
    /// Every state evaluated, in bit-vector order.
    pub states: Vec<StateRecord>,
}

/// Wall times of a study (for the terminal only: no file holds them).
#[derive(Debug, Clone, Copy, Default)]
pub struct StudyTimes {
    /// Evaluating the four per-network points (PELUSO's per-network column).
    pub per_network_s: f64,
    /// The whole per-layer search, every evaluation included.
    pub search_s: f64,
    /// Re-running the reported points with checking.
    pub checking_s: f64,
    /// What the prefix cache of the calibration runs did.
    pub cache: CacheStats,
}

/// Runs the study of `workload` on `arch` with calibration set `set` (a
/// `[float]` workload's, or one given by the user). `on_state` is called
/// after each new state evaluation (progress: states, moves, of how many).
pub fn run(
    workload: &Workload,
    set: &CalibrationSet,
    arch: &Arch,
    options: &StudyOptions,
    mut on_state: impl FnMut(StateEvaluated<'_>),
) -> std::result::Result<(PrecisionStudy, StudyTimes), String> {
    let network = &workload.network;
    let layers = weighted_layers(network).len();
    let started = std::time::Instant::now();
    let accuracy = AccuracyEvaluator::new(network, set, options.threads)?;
    let energy = SimulatedEnergyModel::new(network, arch, &workload.default_input);
    let per_network_states: Vec<Vec<bool>> = crate::numerics::mac::MacMode::ALL
        .iter()
        .map(|&m| PrecisionAssignment::per_network(layers, m).to_bits())
        .collect();
    let mut times = StudyTimes::default();
    let found = search(
        &energy,
        &accuracy,
        layers,
        &options.lambdas,
        &options.anneal,
        |s| {
            if per_network_states.iter().any(|p| p == s.state) {
                times.per_network_s += s.seconds;
            }
            on_state(s);
        },
    )?;
    times.search_s = started.elapsed().as_secs_f64();
    times.per_network_s += found.per_network_engine_s;
    times.cache = accuracy.cache_stats();
    let checking = std::time::Instant::now();
    let full = PrecisionAssignment::full(layers);
    let reported = std::iter::once(&full).chain(
        [&found.search_front, &found.front, &found.per_network]
            .into_iter()
            .flatten()
            .map(|p| &p.assignment),
    );
    let costs = checked_costs(&energy, reported, options.threads)?;
    let Reported {
        all_16,
        search_front,
        front,
        per_network,
    } = reported_points(&found, &costs, full)?;
    let runs = run_summaries(&found.runs)?;
    times.checking_s = checking.elapsed().as_secs_f64();
    let per_network_front = pareto_front(&per_network);
    let study = PrecisionStudy {
        workload: network.name.clone(),
        arch: arch.name.clone(),
        weighted_layers: layers,
        samples: set.inputs.len(),
        reference: found.reference,
        reference_accuracy: found.reference_accuracy,
        lambdas: options.lambdas.clone(),
        anneal: options.anneal,
        all_16,
        search_summary: summary(&search_front),
        search_front,
        front_summary: summary(&front),
        front,
        per_network_summary: summary(&per_network_front),
        per_network,
        runs,
        evaluated_states: found.evaluated_states,
        states: found.states.iter().map(StateRecord::of).collect(),
    };
    Ok((study, times))
}

/// The points a study reports, each with its checked cost.
struct Reported {
    all_16: StudyPoint,
    search_front: Vec<StudyPoint>,
    front: Vec<StudyPoint>,
    per_network: Vec<StudyPoint>,
}

/// The all-16-bit point, PELUSO's front, the front of all states and the
/// per-network points of `found` as study points, from their checked costs.
fn reported_points(
    found: &PrecisionSearch,
    costs: &HashMap<Vec<bool>, SimulatedCost>,
    full: PrecisionAssignment,
) -> std::result::Result<Reported, String> {
    let all_16_cost = costs
        .get(&full.to_bits())
        .copied()
        .ok_or("the all-16-bit point was not re-run")?;
    let point = |p: &OperatingPoint| study_point(costs, all_16_cost.cycles, p);
    let points = |v: &[OperatingPoint]| v.iter().map(point).collect::<Result<Vec<_>, _>>();
    let all_16 = point(&OperatingPoint {
        assignment: full,
        energy_pj: found.all_16_energy_pj,
        energy_saving: 0.0,
        accuracy_drop: 0.0,
        drop_exact: true,
    })?;
    Ok(Reported {
        all_16,
        search_front: points(&found.search_front)?,
        front: points(&found.front)?,
        per_network: points(&found.per_network)?,
    })
}

impl StateRecord {
    fn of(p: &OperatingPoint) -> StateRecord {
        StateRecord {
            assignment: p.assignment.clone(),
            accuracy_drop: p.accuracy_drop,
            drop_exact: p.drop_exact,
            energy_pj: p.energy_pj,
            energy_saving: p.energy_saving,
        }
    }
}

/// `p` as a study point, its energy and cycles from a checked engine run:
/// an engine that disagreed with the reference is an error here, so
/// `bit_exact` is true for every point written.
fn study_point(
    costs: &HashMap<Vec<bool>, SimulatedCost>,
    all_16_cycles: u64,
    p: &OperatingPoint,
) -> std::result::Result<StudyPoint, String> {
    let cost = costs
        .get(&p.assignment.to_bits())
        .copied()
        .ok_or_else(|| format!("no checked run of `{}`", p.assignment))?;
    Ok(StudyPoint {
        assignment: p.assignment.clone(),
        accuracy_drop: p.accuracy_drop,
        energy_pj: cost.energy_pj,
        energy_saving: p.energy_saving,
        mac_pj: cost.mac_pj,
        memory_pj: cost.memory_pj,
        cycles: cost.cycles,
        speedup: if cost.cycles > 0 {
            all_16_cycles as f64 / cost.cycles as f64
        } else {
            0.0
        },
        bit_exact: true,
    })
}

/// The engine's run, checked against the reference, of each distinct
/// assignment in `assignments` (a point on several fronts runs once), on
/// `threads` workers. The first failure in `assignments` order is the
/// error, as when they ran one after the other.
fn checked_costs<'p>(
    energy: &SimulatedEnergyModel,
    assignments: impl Iterator<Item = &'p PrecisionAssignment>,
    threads: usize,
) -> std::result::Result<HashMap<Vec<bool>, SimulatedCost>, String> {
    let mut distinct: Vec<&PrecisionAssignment> = Vec::new();
    for a in assignments {
        if !distinct.contains(&a) {
            distinct.push(a);
        }
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads.max(1))
        .build()
        .map_err(|e| format!("cannot start {threads} worker threads: {e}"))?;
    let costs: Vec<std::result::Result<SimulatedCost, String>> =
        pool.install(|| distinct.par_iter().map(|a| energy.checked(a)).collect());
    distinct
        .iter()
        .zip(costs)
        .map(|(a, c)| c.map(|c| (a.to_bits(), c)))
        .collect()
}

/// One summary per annealing run (per `lambda_max`).
fn run_summaries(runs: &[AnnealOutcome]) -> std::result::Result<Vec<RunSummary>, String> {
    runs.iter()
        .map(|r| {
            Ok(RunSummary {
                lambda_max: r.lambda_max,
                best: PrecisionAssignment::from_bits(&r.best)?,
                energy_pj: r.best_evaluation.energy,
                accuracy_drop: r.best_evaluation.accuracy_drop,
                moves: r.moves,
                accepted: r.accepted,
                new_evaluations: r.new_evaluations,
            })
        })
        .collect()
}

/// The points no other point beats in both energy and accuracy drop.
fn pareto_front(points: &[StudyPoint]) -> Vec<StudyPoint> {
    let objectives: Vec<crate::sweep::pareto::Objectives> = points
        .iter()
        .map(|p| crate::sweep::pareto::Objectives {
            energy: p.energy_pj,
            accuracy_drop: p.accuracy_drop,
        })
        .collect();
    crate::sweep::pareto::front(&objectives)
        .into_iter()
        .map(|i| points[i].clone())
        .collect()
}

fn summary(points: &[StudyPoint]) -> FrontSummary {
    let n = points.len();
    let mean = |f: fn(&StudyPoint) -> f64| {
        if n == 0 {
            0.0
        } else {
            points.iter().map(f).sum::<f64>() / n as f64
        }
    };
    FrontSummary {
        points: n,
        mean_accuracy_drop: mean(|p| p.accuracy_drop),
        mean_energy_saving: mean(|p| p.energy_saving),
        max_energy_saving: points.iter().map(|p| p.energy_saving).fold(0.0, f64::max),
    }
}

/// The points as CSV rows, one per point, `kind` naming the set.
pub fn points_csv(study: &PrecisionStudy) -> std::result::Result<String, csv::Error> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record([
        "kind",
        "assignment",
        "accuracy_drop",
        "energy_pj",
        "energy_saving",
        "mac_pj",
        "memory_pj",
        "cycles",
        "speedup",
        "bit_exact",
    ])?;
    let sets: [(&str, &[StudyPoint]); 4] = [
        ("all_16", std::slice::from_ref(&study.all_16)),
        ("search_front", &study.search_front),
        ("front", &study.front),
        ("per_network", &study.per_network),
    ];
    for (kind, points) in sets {
        for p in points {
            w.write_record([
                kind.to_string(),
                p.assignment.to_string(),
                p.accuracy_drop.to_string(),
                p.energy_pj.to_string(),
                p.energy_saving.to_string(),
                p.mac_pj.to_string(),
                p.memory_pj.to_string(),
                p.cycles.to_string(),
                p.speedup.to_string(),
                p.bit_exact.to_string(),
            ])?;
        }
    }
    let bytes = w.into_inner().map_err(|e| e.into_error())?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// Every evaluated state as CSV.
pub fn states_csv(study: &PrecisionStudy) -> std::result::Result<String, csv::Error> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record([
        "assignment",
        "accuracy_drop",
        "drop_exact",
        "energy_pj",
        "energy_saving",
    ])?;
    for s in &study.states {
        w.write_record([
            s.assignment.to_string(),
            s.accuracy_drop.to_string(),
            s.drop_exact.to_string(),
            s.energy_pj.to_string(),
            s.energy_saving.to_string(),
        ])?;
    }
    let bytes = w.into_inner().map_err(|e| e.into_error())?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// Energy saving against accuracy drop (both in %): every state in grey,
/// the front as a line, PELUSO's front as squares, the per-network points
/// labelled. PNG or SVG by `out`'s extension.
pub fn plot(study: &PrecisionStudy, out: &Path) -> Result<()> {
    register_font();
    let size = (1000u32, 700u32);
    let drawn = match out.extension().and_then(|e| e.to_str()) {
        Some("png") => draw(BitMapBackend::new(out, size).into_drawing_area(), study),
        Some("svg") => draw(SVGBackend::new(out, size).into_drawing_area(), study),
        _ => {
            return Err(
                crate::error::InputError::new(out, "the plot must end in .png or .svg").into(),
            );
        }
    };
    drawn.map_err(|message| Error::Output {
        path: out.to_path_buf(),
        message,
    })
}

fn draw<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    study: &PrecisionStudy,
) -> std::result::Result<(), String> {
    let e = |x: DrawingAreaErrorKind<DB::ErrorType>| x.to_string();
    root.fill(&WHITE).map_err(e)?;
    let [(x_lo, x_hi), (y_lo, y_hi)] = padded_ranges(study);
    let title = format!(
        "{} on {}: energy saving vs accuracy drop, {} samples",
        study.workload, study.arch, study.samples
    );
    let x_desc = format!("accuracy drop [%]: {}", study.reference.describe());
    // Ticks as the sweep plots choose them: at least four, labels distinct.
    let linear = |lo: f64, hi: f64| Scale { log: false, lo, hi }.ticks();
    let (xt, yt) = (linear(x_lo, x_hi), linear(y_lo, y_hi));
    let mut chart = ChartBuilder::on(&root)
        .caption(title, font(16.0))
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(64)
        .build_cartesian_2d(Ticked::new(x_lo, x_hi, &xt), Ticked::new(y_lo, y_hi, &yt))
        .map_err(e)?;
    let label_of = |ticks: &[Tick], v: f64| {
        ticks
            .iter()
            .find(|t| t.at == v)
            .map_or_else(String::new, |t| t.label.clone())
    };
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc("energy saving vs all 16-bit [%]")
        .x_label_formatter(&|v| label_of(&xt, *v))
        .y_label_formatter(&|v| label_of(&yt, *v))
        .label_style(font(12.0))
        .draw()
        .map_err(e)?;
    draw_points(&mut chart, study)?;
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .label_font(font(12.0))
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .draw()
        .map_err(e)?;
    root.present().map_err(e)?;
    Ok(())
}

/// Percent.
fn pct(x: f64) -> f64 {
    100.0 * x
}

/// The plotted x (accuracy drop) and y (energy saving) ranges in percent:
/// every state and per-network point, and 0 to 1 at least, padded by 5 %.
fn padded_ranges(study: &PrecisionStudy) -> [(f64, f64); 2] {
    let all: Vec<(f64, f64)> = study
        .states
        .iter()
        .map(|s| (pct(s.accuracy_drop), pct(s.energy_saving)))
        .chain(
            study
                .per_network
                .iter()
                .map(|p| (pct(p.accuracy_drop), pct(p.energy_saving))),
        )
        .collect();
    let (mut x_lo, mut x_hi, mut y_lo, mut y_hi) = (0.0f64, 1.0f64, 0.0f64, 1.0f64);
    for &(x, y) in &all {
        x_lo = x_lo.min(x);
        x_hi = x_hi.max(x);
        y_lo = y_lo.min(y);
        y_hi = y_hi.max(y);
    }
    let pad = |lo: f64, hi: f64| (hi - lo) * 0.05;
    let (px, py) = (pad(x_lo, x_hi), pad(y_lo, y_hi));
    [(x_lo - px, x_hi + px), (y_lo - py, y_hi + py)]
}

/// The evaluated states, the front over them, PELUSO's front and the
/// per-network points, each with its legend entry.
fn draw_points<'a, DB: DrawingBackend + 'a>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<Ticked, Ticked>>,
    study: &PrecisionStudy,
) -> std::result::Result<(), String> {
    let e = |x: DrawingAreaErrorKind<DB::ErrorType>| x.to_string();
    let grey = RGBColor(190, 190, 190);
    chart
        .draw_series(study.states.iter().map(|s| {
            Circle::new(
                (pct(s.accuracy_drop), pct(s.energy_saving)),
                2,
                grey.filled(),
            )
        }))
        .map_err(e)?
        .label("evaluated states")
        .legend(move |(x, y)| Circle::new((x + 10, y), 3, grey.filled()));
    let blue = RGBColor(31, 119, 180);
    let front: Vec<(f64, f64)> = study
        .front
        .iter()
        .map(|p| (pct(p.accuracy_drop), pct(p.energy_saving)))
        .collect();
    chart
        .draw_series(LineSeries::new(front.clone(), blue.stroke_width(2)))
        .map_err(e)?;
    let drawn = chart
        .draw_series(front.iter().map(|&p| Circle::new(p, 4, blue.filled())))
        .map_err(e)?;
    // Legend entries only for what is drawn (a front of one point is its dot).
    if !front.is_empty() {
        drawn
            .label("front (all evaluated states)")
            .legend(move |(x, y)| {
                EmptyElement::at((x + 10, y))
                    + PathElement::new(vec![(-10, 0), (10, 0)], blue.stroke_width(2))
                    + Circle::new((0, 0), 4, blue.filled())
            });
    }
    let orange = RGBColor(255, 127, 14);
    let drawn = chart
        .draw_series(study.search_front.iter().map(|p| {
            EmptyElement::at((pct(p.accuracy_drop), pct(p.energy_saving)))
                + Rectangle::new([(-5, -5), (5, 5)], orange.stroke_width(2))
        }))
        .map_err(e)?;
    if !study.search_front.is_empty() {
        drawn
            .label("PELUSO front (annealing results)")
            .legend(move |(x, y)| {
                Rectangle::new([(x + 5, y - 5), (x + 15, y + 5)], orange.stroke_width(2))
            });
    }
    let red = RGBColor(214, 39, 40);
    chart
        .draw_series(study.per_network.iter().map(|p| {
            EmptyElement::at((pct(p.accuracy_drop), pct(p.energy_saving)))
                + TriangleMarker::new((0, 0), 7, red.filled())
                + Text::new(
                    format!(
                        "all {}",
                        p.assignment
                            .layers()
                            .first()
                            .map_or(String::new(), ToString::to_string)
                    ),
                    (8, -14),
                    font(12.0),
                )
        }))
        .map_err(e)?
        .label("per-network precision")
        .legend(move |(x, y)| TriangleMarker::new((x + 10, y), 6, red.filled()));
    Ok(())
}
