//! PELUSO's per-layer precision search (SPEC section 2; docs/precision.md),
//! built from parts that know nothing of the engine:
//!
//! ```text
//!   PrecisionAssignment ──► jobs::EnergyJobs ─► EnergyModel (engine; analytic stand-in for tests) ──┐
//!          (bits X)         (worker thread: energies off the search's path)          energy(X) ───┤
//!                       └─► AccuracyEvaluator (reference at X, calibration set)      drop(X) ─────┤
//!                                                                                                 │
//!   anneal::Annealer (Algorithm 2, drops memoised; reads energies of acceptable states) ◄─────────┘
//!          │ one run per lambda_max
//!          ▼
//!   sweep::pareto::front over every evaluated state  +  the four per-network points
//! ```
//!
//! [`search`] is the whole flow; [`study`] runs it with the engine's
//! [`energy::SimulatedEnergyModel`] for the `accsim precision` command.

pub mod accuracy;
pub mod anneal;
pub mod energy;
pub mod jobs;
pub mod study;

use std::collections::BTreeMap;

use serde::Serialize;

use crate::numerics::mac::MacMode;
use crate::numerics::precision::PrecisionAssignment;
use crate::sweep::pareto::{self, Objectives};
use accuracy::{AccuracyEvaluator, DropReference};
use anneal::{AnnealConfig, AnnealOutcome, Annealer, DropEstimate, Evaluation, Objective, Probe};
use energy::EnergyModel;
use jobs::EnergyJobs;

/// One evaluated operating point.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OperatingPoint {
    pub assignment: PrecisionAssignment,
    pub energy_pj: f64,
    /// `1 - E / E(all 16 bit)`.
    pub energy_saving: f64,
    /// A lower bound when not `drop_exact` (a state rejected early).
    pub accuracy_drop: f64,
    pub drop_exact: bool,
}

/// The result of a precision search.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PrecisionSearch {
    /// What `accuracy_drop` is measured against.
    pub reference: DropReference,
    /// The all-16-bit network's top-1 accuracy on the labels, when given.
    pub reference_accuracy: Option<f64>,
    pub all_16_energy_pj: f64,
    /// One annealing run per lambda_max, in the order given.
    pub runs: Vec<AnnealOutcome>,
    /// The non-dominated points among every state evaluated (a superset of
    /// what the runs returned), by accuracy drop ascending.
    pub front: Vec<OperatingPoint>,
    /// PELUSO's front: the non-dominated points among the runs' best states.
    pub search_front: Vec<OperatingPoint>,
    /// PELUSO's per-network alternatives: every layer 16x16, 8x16, 16x8, 8x8.
    pub per_network: Vec<OperatingPoint>,
    /// Distinct states evaluated (energy model and calibration set each run once per state).
    pub evaluated_states: usize,
    /// Every state evaluated, in bit-vector order.
    pub states: Vec<OperatingPoint>,
    /// Wall time of the four per-network states' engine runs, s (for the
    /// terminal only; their calibration inference is in
    /// [`StateEvaluated::seconds`]).
    #[serde(skip)]
    pub per_network_engine_s: f64,
}

/// What the progress hook of [`search`] hears after each new evaluation.
#[derive(Debug, Clone, Copy)]
pub struct StateEvaluated<'a> {
    /// Distinct states evaluated so far.
    pub count: usize,
    pub state: &'a [bool],
    /// Wall time of this state's calibration inference, s (its engine run
    /// is in the background: [`jobs`]). For progress and timing only:
    /// nothing the search returns depends on it.
    pub seconds: f64,
    /// Annealing moves made so far, of `moves_total` (lambdas x
    /// temperatures x iterations): the search's progress, for an ETA.
    pub moves_done: u64,
    pub moves_total: u64,
}

/// Runs PELUSO's search: one annealing run per `lambdas` entry (memo shared,
/// so no state is evaluated twice), then the Pareto front of all evaluated
/// states and the per-network points. `on_state` is called after each
/// evaluation of a new state (a progress hook; it must not print from the
/// library).
///
/// A state is evaluated only as far as its run needs: the calibration set
/// stops as soon as the drop is proven `>= lambda_max`
/// ([`AccuracyEvaluator::accuracy_drop_below`]); a later run with a larger
/// lambda_max resumes it. The runs are the same as with full evaluations.
/// Every new state's energy is computed by a worker thread beside the
/// calibration inference; the search waits only for the energies it reads
/// (acceptable states), and for all of them, on the accuracy evaluator's
/// thread count, before the fronts ([`jobs`]).
/// The front of all states is then made exact: states on it whose drop is
/// a lower bound are evaluated in full, until none is (a state off that
/// front is dominated at its bound, so at its true drop too). States that
/// never needed it keep their lower bound (`OperatingPoint::drop_exact`).
pub fn search(
    energy: &dyn EnergyModel,
    accuracy: &AccuracyEvaluator<'_>,
    weighted_layers: usize,
    lambdas: &[f64],
    config: &AnnealConfig,
    mut on_state: impl FnMut(StateEvaluated<'_>),
) -> Result<PrecisionSearch, String> {
    config.validate()?;
    let jobs = EnergyJobs::new(energy);
    std::thread::scope(|scope| {
        scope.spawn(|| jobs.work());
        let evaluator = StateEvaluator {
            jobs: &jobs,
            accuracy,
            moves_total: lambdas.len() as u64
                * config.temperatures().len() as u64
                * u64::from(config.iterations_per_temperature),
            on_state: &mut on_state,
        };
        let found =
            anneal_and_per_network(Annealer::new(evaluator), weighted_layers, lambdas, config);
        // No state is new from here on. The worker, and as many helpers as
        // the evaluator has threads besides it and this one, finish the
        // queue; on an error it is dropped.
        jobs.close(found.is_err());
        for _ in 2..accuracy.threads() {
            scope.spawn(|| jobs.work());
        }
        let (annealer, runs, per_network) = found?;
        drain(&jobs, annealer.memo().keys())?;
        let per_network_engine_s = per_network
            .iter()
            .filter_map(|(a, _)| jobs.seconds(&a.to_bits()))
            .sum();
        let found = Found {
            annealer,
            runs,
            per_network,
            per_network_engine_s,
        };
        fronts(found, accuracy)
    })
}

/// The four per-network assignments with their evaluations.
type PerNetwork = Vec<(PrecisionAssignment, Evaluation)>;

/// The annealing runs, then the per-network points, each with its
/// evaluation; the annealer is returned for the fronts.
fn anneal_and_per_network<O: Objective<Error = String>>(
    mut annealer: Annealer<O>,
    weighted_layers: usize,
    lambdas: &[f64],
    config: &AnnealConfig,
) -> Result<(Annealer<O>, Vec<AnnealOutcome>, PerNetwork), String> {
    let bits = 2 * weighted_layers + 1;
    let mut runs = Vec::with_capacity(lambdas.len());
    for &lambda in lambdas {
        runs.push(annealer.run(bits, lambda, config)?);
    }
    let mut per_network = Vec::new();
    for m in [
        MacMode::FULL,
        MacMode::I8_W16,
        MacMode::I16_W8,
        MacMode::HALF,
    ] {
        let a = PrecisionAssignment::per_network(weighted_layers, m);
        let e = annealer.evaluate(&a.to_bits())?;
        per_network.push((a, e));
    }
    Ok((annealer, runs, per_network))
}

/// Waits for the energy of every state in `states` (computing those no
/// worker has started on this thread), so that none is pending.
fn drain<'s>(
    jobs: &EnergyJobs<'_>,
    states: impl Iterator<Item = &'s Vec<bool>>,
) -> Result<(), String> {
    let states: Vec<&Vec<bool>> = states.collect();
    // Newest first: the workers take the queue oldest first.
    for state in states.into_iter().rev() {
        jobs.energy(state)?;
    }
    Ok(())
}

/// A finished search before its fronts: the annealer with every drop, the
/// runs, the per-network points, and the wall time of their engine runs.
struct Found<O> {
    annealer: Annealer<O>,
    runs: Vec<AnnealOutcome>,
    per_network: PerNetwork,
    per_network_engine_s: f64,
}

/// The fronts and records of a finished search (every energy computed).
fn fronts<O: Objective<Error = String>>(
    found: Found<O>,
    accuracy: &AccuracyEvaluator<'_>,
) -> Result<PrecisionSearch, String> {
    let Found {
        mut annealer,
        runs,
        per_network,
        per_network_engine_s,
    } = found;
    let all_16 = per_network[0].1.energy;
    complete_front(&mut annealer)?;
    let evaluated = evaluations(&mut annealer)?;
    let point = |x: &[bool], e: &Evaluation| operating_point(x, e, all_16);
    let states: Vec<(&Vec<bool>, &Evaluation)> = evaluated.iter().collect();
    let objectives: Vec<Objectives> = states.iter().map(|(_, e)| objectives_of(e)).collect();
    let front = pareto::front(&objectives)
        .into_iter()
        .map(|i| point(states[i].0, states[i].1))
        .collect::<Result<Vec<_>, _>>()?;
    let all_states = states
        .iter()
        .map(|(x, e)| point(x, e))
        .collect::<Result<Vec<_>, _>>()?;
    let run_objectives: Vec<Objectives> = runs
        .iter()
        .map(|r| objectives_of(&r.best_evaluation))
        .collect();
    let search_front = pareto::front(&run_objectives)
        .into_iter()
        .map(|i| point(&runs[i].best, &runs[i].best_evaluation))
        .collect::<Result<Vec<_>, _>>()?;
    let per_network = per_network
        .iter()
        .map(|(a, e)| point(&a.to_bits(), e))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(PrecisionSearch {
        reference: accuracy.reference(),
        reference_accuracy: accuracy.baseline_accuracy(),
        all_16_energy_pj: all_16,
        runs,
        front,
        search_front,
        per_network,
        evaluated_states: evaluated.len(),
        states: all_states,
        per_network_engine_s,
    })
}

/// Every memoised state's drop with its energy, in bit-vector order.
fn evaluations<O: Objective<Error = String>>(
    annealer: &mut Annealer<O>,
) -> Result<BTreeMap<Vec<bool>, Evaluation>, String> {
    let drops: Vec<(Vec<bool>, DropEstimate)> = annealer
        .memo()
        .iter()
        .map(|(x, d)| (x.clone(), *d))
        .collect();
    drops
        .into_iter()
        .map(|(x, d)| Ok((x.clone(), annealer.with_energy(&x, d)?)))
        .collect()
}

/// State `x` with its evaluation, its saving relative to all 16-bit
/// (`all_16` pJ).
fn operating_point(x: &[bool], e: &Evaluation, all_16: f64) -> Result<OperatingPoint, String> {
    Ok(OperatingPoint {
        assignment: PrecisionAssignment::from_bits(x)?,
        energy_pj: e.energy,
        energy_saving: if all_16 > 0.0 {
            1.0 - e.energy / all_16
        } else {
            0.0
        },
        accuracy_drop: e.accuracy_drop,
        drop_exact: e.exact,
    })
}

/// The search's objective: a state's calibration inference on the calling
/// thread (the accuracy evaluator's pool), its engine run submitted to the
/// energy jobs when the state is new.
struct StateEvaluator<'j, 'e, 'a, 'c, F> {
    jobs: &'j EnergyJobs<'e>,
    accuracy: &'j AccuracyEvaluator<'a>,
    moves_total: u64,
    on_state: &'c mut F,
}

impl<F: FnMut(StateEvaluated<'_>)> Objective for StateEvaluator<'_, '_, '_, '_, F> {
    type Error = String;

    fn drop_below(&mut self, p: Probe<'_>) -> Result<DropEstimate, String> {
        let started = std::time::Instant::now();
        let a = PrecisionAssignment::from_bits(p.state)?;
        let new = self.jobs.submit(p.state);
        let drop = self.accuracy.accuracy_drop_below(&a, p.reject_at)?;
        if new {
            (self.on_state)(StateEvaluated {
                count: self.jobs.submitted(),
                state: p.state,
                seconds: started.elapsed().as_secs_f64(),
                moves_done: p.moves_done,
                moves_total: self.moves_total,
            });
        }
        Ok(DropEstimate {
            accuracy_drop: drop.drop,
            exact: drop.exact,
        })
    }

    fn energy(&mut self, state: &[bool]) -> Result<f64, String> {
        self.jobs.energy(state)
    }
}

/// What the fronts compare of an evaluated state.
fn objectives_of(e: &Evaluation) -> Objectives {
    Objectives {
        energy: e.energy,
        accuracy_drop: e.accuracy_drop,
    }
}

/// Makes the front of all memoised states exact. A state on it whose drop
/// is a lower bound is evaluated further only until its bound reaches the
/// drop of an exactly evaluated state of no more energy
/// ([`dominating_drop`]): that state then dominates it at its bound, hence
/// at its true drop, and it leaves the front keeping a (higher) bound. A
/// state still on the front after that (an exact tie) or with no such state
/// is evaluated in full. Repeated until the front holds exact drops only;
/// a state is raised at most once and then evaluated in full, so it ends.
fn complete_front<O: Objective<Error = String>>(annealer: &mut Annealer<O>) -> Result<(), String> {
    let mut raised = std::collections::HashSet::new();
    loop {
        let evaluated = evaluations(annealer)?;
        let states: Vec<(&Vec<bool>, &Evaluation)> = evaluated.iter().collect();
        let objectives: Vec<Objectives> = states.iter().map(|(_, e)| objectives_of(e)).collect();
        let pending: Vec<Vec<bool>> = pareto::front(&objectives)
            .into_iter()
            .filter(|&i| !states[i].1.exact)
            .map(|i| states[i].0.clone())
            .collect();
        if pending.is_empty() {
            return Ok(());
        }
        for state in pending {
            let reject_at = if raised.insert(state.clone()) {
                dominating_drop(&evaluated, &state)
            } else {
                f64::INFINITY
            };
            annealer.evaluate_below(&state, reject_at)?;
        }
    }
}

/// The smallest exact drop among the memoised states other than `state`
/// whose energy is at most `state`'s (infinity if none): a bound on
/// `state`'s drop at least this puts it off the front.
fn dominating_drop(memo: &BTreeMap<Vec<bool>, Evaluation>, state: &[bool]) -> f64 {
    let Some(own) = memo.get(state) else {
        return f64::INFINITY;
    };
    memo.iter()
        .filter(|(x, e)| e.exact && x.as_slice() != state && e.energy <= own.energy)
        .map(|(_, e)| e.accuracy_drop)
        .fold(f64::INFINITY, f64::min)
}
