//! The schedule search (docs/mapping.md, "The search"): at an array
//! layer's start the machine is forked once per candidate schedule, each
//! fork runs the layer to its end, and the machine continues from the fork
//! that did best on the objective.
//!
//! ```text
//!   machine at the layer's start ──fork──► rule's choice   ──► figures ┐
//!                                 ──fork──► other survivor ──► figures ├─► best fork
//!                                 ──fork──► ...                        ┘   becomes the machine
//! ```
//!
//! The first fork runs the rule's choice ([`super::array`]) and reports the
//! pre-filter's survivors: pass-major and each tile-major mode at its fewest
//! fitting tiles, for a layer whose pass-major weights stream from DRAM
//! every pass. A layer whose space is one point (fixed weights, one pass,
//! a fully-connected layer, one output channel per lane:
//! [`super::array::schedule_space_is_one_point`]) runs once on the machine
//! itself, unforked; a layer with one survivor after the pre-filter costs
//! one run on a fork (its fit depends on the GLB at the layer's start,
//! known only inside the run). Forks carry no
//! tracer and no stepped twins: a traced or `--engine cycle` run re-runs the
//! winner on the machine itself. The candidates are compared in the
//! survivors' order whichever finishes first, so the result does not
//! depend on the thread count.

use std::collections::BTreeMap;
use std::str::FromStr;

use super::stats::{ScheduleFigures, ScheduleSearch};
use super::storage::TensorStore;
use super::{ArrayJob, LayerTiming, Machine, Snapshot, WordBits};
use crate::error::Result;
use crate::mapping::schedule::ScheduleChoice;

/// What the search minimises per layer (`--objective`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Objective {
    /// Energy (pJ) of the layer.
    #[default]
    Energy,
    /// The layer's cycles, start to end.
    Cycles,
    /// Energy x cycles.
    Edp,
    /// DRAM words read and written.
    Dram,
    /// No search: the rule's analytic DRAM-word estimate picks (one run).
    Rule,
}

impl Objective {
    pub const ALL: [Objective; 5] = [
        Objective::Energy,
        Objective::Cycles,
        Objective::Edp,
        Objective::Dram,
        Objective::Rule,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Objective::Energy => "energy",
            Objective::Cycles => "cycles",
            Objective::Edp => "edp",
            Objective::Dram => "dram",
            Objective::Rule => "rule",
        }
    }

    /// The value minimised for one candidate's figures.
    fn value(self, f: &ScheduleFigures) -> f64 {
        match self {
            Objective::Energy | Objective::Rule => f.energy_pj,
            Objective::Cycles => f.cycles as f64,
            Objective::Edp => f.energy_pj * f.cycles as f64,
            Objective::Dram => f.dram_words as f64,
        }
    }
}

impl FromStr for Objective {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        Objective::ALL
            .into_iter()
            .find(|o| o.name() == s)
            .ok_or_else(|| {
                let valid: Vec<&str> = Objective::ALL.iter().map(|o| o.name()).collect();
                format!("unknown objective `{s}`; valid: {}", valid.join(", "))
            })
    }
}

/// How each layer's schedule is chosen.
#[derive(Debug, Clone, Default)]
pub struct ScheduleSearchOptions {
    pub objective: Objective,
    /// Schedules pinned by layer name (`--schedule FILE`); a pinned layer
    /// is not searched.
    pub pins: BTreeMap<String, ScheduleChoice>,
    /// Reuse an earlier layer's search for a layer of the same
    /// [`memo_key`] (`--memo`; off by default: docs/mapping.md, "Memoised
    /// searches").
    pub memoise: bool,
}

/// The searches of a run so far, by [`memo_key`]: the searched layer's
/// name, its choice and its search.
#[derive(Debug, Default)]
pub(super) struct Memo(BTreeMap<String, (String, ScheduleChoice, ScheduleSearch)>);

/// What determines a convolution's candidate space and costs apart from
/// the machine's dynamic state (GLB contents, DRAM queues, clock): its
/// geometry, weight tensor's dimensions, precisions, word widths and
/// readers. The machine's configuration is the run's, one per memo.
fn memo_key(job: &ArrayJob, stores: &[Option<TensorStore>]) -> Option<String> {
    let crate::workload::ir::Op::Conv2d(c) = &job.layer.op else {
        return None;
    };
    let input = stores.get(job.src_store)?.as_ref()?;
    Some(format!(
        "{:?} {:?} {:?} {} {:?} {:?} {:?} {:?} {} {} {} {}",
        c.kernel,
        c.stride,
        c.padding,
        c.groups,
        c.weights.dim(),
        job.layer.input_shape,
        job.layer.output_shape,
        job.numerics,
        job.output_bytes,
        job.readers,
        input.word_bytes,
        input.readers_left <= 1,
    ))
}

/// What the figures of a fork are measured against: the machine's counters
/// at the layer's start and the layer's word widths.
pub(super) struct Baseline<'b> {
    pub before: &'b Snapshot,
    pub mode_bits: (super::widths::LayerNumerics, WordBits),
}

/// A fork of the machine and the tensor stores, after running the layer.
struct Trial {
    m: Machine,
    stores: Vec<Option<TensorStore>>,
    timing: LayerTiming,
    figures: ScheduleFigures,
}

/// Runs `job`'s layer on `m`, searching its schedule as `how` says (or
/// reusing a search of `memo`'s); returns its timing and, when more than
/// one candidate ran, the search.
pub(super) fn run_layer(
    m: &mut Machine,
    stores: &mut Vec<Option<TensorStore>>,
    job: &ArrayJob,
    gathered: Option<super::array::GatheredWeights>,
    (how, base): (&ScheduleSearchOptions, &Baseline),
    memo: &mut Memo,
) -> Result<(LayerTiming, Option<ScheduleSearch>)> {
    if let Some(&pin) = how.pins.get(&job.layer.name) {
        return Ok((pinned(m, stores, job, gathered, pin)?, None));
    }
    if m.schedule_pin.is_some()
        || how.objective == Objective::Rule
        || super::array::schedule_space_is_one_point(&m.arch, job.plan)
    {
        // One candidate (or none searched): the layer runs once, unforked.
        return Ok((job.run(m, stores, gathered)?, None));
    }
    let key = memo_key(job, stores).filter(|_| how.memoise);
    if let Some((of, choice, search)) = key.as_ref().and_then(|k| memo.0.get(k)) {
        let timing = pinned(m, stores, job, gathered, *choice)?;
        let search = ScheduleSearch {
            memo_of: Some(of.clone()),
            ..search.clone()
        };
        return Ok((timing, Some(search)));
    }
    let (timing, search) = searched(m, stores, job, gathered, (how, base))?;
    if let (Some(key), Some(search)) = (key, &search) {
        let entry = (job.layer.name.clone(), m.last_choice(), search.clone());
        memo.0.insert(key, entry);
    }
    Ok((timing, search))
}

/// Runs `job`'s layer on a fork of `m` per candidate and continues from
/// the best; returns its timing and, when more than one candidate ran,
/// the search.
fn searched(
    m: &mut Machine,
    stores: &mut Vec<Option<TensorStore>>,
    job: &ArrayJob,
    gathered: Option<super::array::GatheredWeights>,
    (how, base): (&ScheduleSearchOptions, &Baseline),
) -> Result<(LayerTiming, Option<ScheduleSearch>)> {
    let first = trial(m, stores, job, gathered.clone(), None, base)?;
    let (rule, survivors) = first
        .m
        .layer_candidates
        .clone()
        .unwrap_or((ScheduleChoice::PASS_MAJOR, Vec::new()));
    // The other candidates run on threads of their own (each from its own
    // fork); they are compared in the survivors' order, whatever finishes first.
    let others: Vec<ScheduleChoice> = survivors.into_iter().filter(|&c| c != rule).collect();
    let (shared, shared_stores): (&Machine, &[Option<TensorStore>]) = (m, stores);
    let results: Vec<Result<Trial>> = std::thread::scope(|scope| {
        let handles: Vec<_> = others
            .iter()
            .map(|&choice| {
                let gathered = gathered.clone();
                scope.spawn(move || trial(shared, shared_stores, job, gathered, Some(choice), base))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| {
                    Err(super::engine_error(
                        "a schedule candidate's run panicked".to_string(),
                    ))
                })
            })
            .collect()
    });
    let mut trials = vec![first];
    for result in results {
        trials.push(result?);
    }
    let objective = how.objective;
    let mut order: Vec<usize> = (0..trials.len()).collect();
    // Stable: ties keep the rule's choice, then the survivors' order.
    order.sort_by(|&a, &b| {
        objective
            .value(&trials[a].figures)
            .total_cmp(&objective.value(&trials[b].figures))
    });
    let search = (trials.len() > 1).then(|| {
        let (chosen, runner_up) = (&trials[order[0]].figures, &trials[order[1]].figures);
        let (c, r) = (objective.value(chosen), objective.value(runner_up));
        ScheduleSearch {
            objective: objective.name().to_string(),
            candidates: trials.len() as u64,
            chosen: chosen.clone(),
            runner_up: runner_up.clone(),
            gap: if c == 0.0 { 0.0 } else { (r - c) / c },
            memo_of: None,
        }
    });
    let best = trials.swap_remove(order[0]);
    let choice = best.m.last_choice();
    if m.trace.is_some() || m.stepper.is_some() {
        return Ok((pinned(m, stores, job, gathered, choice)?, search));
    }
    *m = best.m;
    *stores = best.stores;
    Ok((best.timing, search))
}

/// Runs the layer on `m` itself in `choice` (where it fits).
fn pinned(
    m: &mut Machine,
    stores: &mut [Option<TensorStore>],
    job: &ArrayJob,
    gathered: Option<super::array::GatheredWeights>,
    choice: ScheduleChoice,
) -> Result<LayerTiming> {
    let saved = m.schedule_pin.replace(choice);
    let timing = job.run(m, stores, gathered);
    m.schedule_pin = saved;
    timing
}

/// Runs the layer on a fork of `m` in `choice` (None: the rule's choice).
fn trial(
    m: &Machine,
    stores: &[Option<TensorStore>],
    job: &ArrayJob,
    gathered: Option<super::array::GatheredWeights>,
    choice: Option<ScheduleChoice>,
    base: &Baseline,
) -> Result<Trial> {
    let mut fork = m.fork();
    fork.schedule_pin = choice;
    let mut stores = stores.to_vec();
    let timing = job.run(&mut fork, &mut stores, gathered)?;
    fork.schedule_pin = m.schedule_pin;
    let stats = super::layer_stats(
        base.before,
        &fork.snapshot(),
        &timing,
        &fork.arch,
        fork.glb.space.peak(),
        base.mode_bits,
    );
    let energy = crate::cost::energy::picojoules(&stats, &fork.arch.energy);
    let dram = stats.accesses.dram.total();
    let schedule = fork.last_choice();
    let figures = ScheduleFigures {
        schedule: schedule.label(),
        energy_pj: energy.total,
        cycles: stats.cycles.total,
        dram_words: dram.read + dram.write,
    };
    Ok(Trial {
        m: fork,
        stores,
        timing,
        figures,
    })
}
