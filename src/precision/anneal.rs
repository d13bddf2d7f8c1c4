//! Simulated annealing over per-layer precision assignments: PELUSO's
//! Algorithm 2 (SPEC section 2).
//!
//! ```text
//!  X = all 16 bit; best = X
//!  for T = T0, T0/c, T0/c^2, ... while T > Tf:
//!      repeat iterations_per_temperature times:
//!          X' = X with 1..=max_flips random bits flipped
//!          (E', drop') = evaluate(X')                       (memoised)
//!          if drop' < lambda_max:                           (acceptable)
//!              dE = (E' - E(X)) / (E(all 16) - E(all 8))
//!              X = X' if dE <= 0 or u < exp(-dE / (K_b T))  (u uniform in [0, 1))
//!              best = X' if E' < E(best)
//! ```
//!
//! The search knows nothing of networks or engines: it explores bit vectors
//! (`PrecisionAssignment::to_bits` order) through an [`Objective`] that
//! gives a state's accuracy drop and, separately, its energy. The energy is
//! asked for only where the algorithm reads it (acceptable states and the
//! all-16 / all-8 normalisation), so an objective may compute the others'
//! later, off the search's path. Drops are memoised across runs, so
//! sweeping lambda_max re-evaluates nothing. The random stream is ChaCha8
//! from the configured seed, so a run is a pure function of (config,
//! lambda_max, evaluations).
//!
//! Choices SPEC leaves open, made here: a move flips `k` distinct bits with
//! `k` uniform in `1..=max_flips` (default 2); ties in energy keep the earlier
//! best; if `E(all 16) - E(all 8)` is not positive the energy differences are
//! not normalised (divided by 1); the all-16-bit start is the best until an
//! acceptable cheaper state is found, so it is the answer when lambda_max
//! admits nothing (its drop is 0 by definition, and `0 < lambda_max` fails
//! only for lambda_max <= 0).

use std::collections::BTreeMap;

use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{Rng, SeedableRng};
use serde::Serialize;

/// What the search needs to know about a state.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Evaluation {
    /// Energy of one inference (pJ when the engine's model supplies it).
    pub energy: f64,
    /// Accuracy drop, a fraction (0.03 = 3 %); a lower bound when not `exact`.
    pub accuracy_drop: f64,
    /// False when the evaluation stopped as soon as the drop was proven at
    /// least the `reject_at` it was asked about ([`Probe`]).
    pub exact: bool,
}

impl Evaluation {
    /// An exact evaluation.
    pub fn exact(energy: f64, accuracy_drop: f64) -> Self {
        Evaluation {
            energy,
            accuracy_drop,
            exact: true,
        }
    }
}

/// A state's accuracy drop as far as it was evaluated.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct DropEstimate {
    /// Accuracy drop, a fraction; a lower bound when not `exact`.
    pub accuracy_drop: f64,
    /// False when the evaluation stopped as soon as the drop was proven at
    /// least the `reject_at` it was asked about ([`Probe`]).
    pub exact: bool,
}

impl From<Evaluation> for DropEstimate {
    fn from(e: Evaluation) -> Self {
        DropEstimate {
            accuracy_drop: e.accuracy_drop,
            exact: e.exact,
        }
    }
}

/// What the annealer evaluates: a state's accuracy drop (exact, or a lower
/// bound at least the probe's `reject_at`) and its energy. Both are pure
/// functions of the state; the annealer memoises drops, the objective
/// whatever it likes.
pub trait Objective {
    type Error;
    /// The drop of `p.state`, exact or a lower bound `>= p.reject_at`.
    fn drop_below(&mut self, p: Probe<'_>) -> Result<DropEstimate, Self::Error>;
    /// The energy of one inference at `state`.
    fn energy(&mut self, state: &[bool]) -> Result<f64, Self::Error>;
}

/// An [`Objective`] from one closure that returns the whole [`Evaluation`]
/// (its energy asked for with `reject_at` infinite): for tests and
/// closed-form problems.
pub struct Whole<F>(pub F);

impl<F, E> Objective for Whole<F>
where
    F: FnMut(Probe<'_>) -> Result<Evaluation, E>,
{
    type Error = E;

    fn drop_below(&mut self, p: Probe<'_>) -> Result<DropEstimate, E> {
        (self.0)(p).map(DropEstimate::from)
    }

    fn energy(&mut self, state: &[bool]) -> Result<f64, E> {
        let p = Probe {
            state,
            reject_at: f64::INFINITY,
            moves_done: 0,
        };
        (self.0)(p).map(|e| e.energy)
    }
}

/// What the objective is asked for a drop: the state, the drop from which a
/// lower bound is enough (the run's lambda_max: any drop at or above it
/// rejects; infinity asks for the exact drop), and the moves made so far by
/// this annealer over all its runs (for progress).
#[derive(Debug, Clone, Copy)]
pub struct Probe<'a> {
    pub state: &'a [bool],
    pub reject_at: f64,
    pub moves_done: u64,
}

/// PELUSO's benchmark sizes, which set the iterations per temperature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BenchmarkSize {
    Small,
    Medium,
    Large,
}

impl BenchmarkSize {
    /// PELUSO's iterations per temperature: 10 / 100 / 1000.
    pub fn iterations_per_temperature(self) -> u32 {
        match self {
            BenchmarkSize::Small => 10,
            BenchmarkSize::Medium => 100,
            BenchmarkSize::Large => 1000,
        }
    }
}

/// Hyper-parameters (defaults: PELUSO's).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct AnnealConfig {
    /// T0, default 512.
    pub initial_temperature: f64,
    /// The search stops once T <= Tf; default 2.5.
    pub final_temperature: f64,
    /// K_b, default 1e-2.
    pub boltzmann: f64,
    /// T <- T / cooling_factor after each temperature; default 2.5.
    pub cooling_factor: f64,
    /// Moves per temperature; default 100 (PELUSO's medium benchmark).
    pub iterations_per_temperature: u32,
    /// A move flips 1..=max_flips distinct bits; default 2.
    pub max_flips: u32,
    /// Seed of the ChaCha8 stream.
    pub seed: u64,
}

impl Default for AnnealConfig {
    fn default() -> Self {
        AnnealConfig {
            initial_temperature: 512.0,
            final_temperature: 2.5,
            boltzmann: 1e-2,
            cooling_factor: 2.5,
            iterations_per_temperature: BenchmarkSize::Medium.iterations_per_temperature(),
            max_flips: 2,
            seed: 0,
        }
    }
}

impl AnnealConfig {
    /// Checks every value; the message names the field and what is valid.
    pub fn validate(&self) -> Result<(), String> {
        let positive = |name: &str, v: f64| {
            if v.is_finite() && v > 0.0 {
                Ok(())
            } else {
                Err(format!("{name} is {v}; valid: a finite number > 0"))
            }
        };
        positive("initial_temperature", self.initial_temperature)?;
        positive("final_temperature", self.final_temperature)?;
        positive("boltzmann", self.boltzmann)?;
        if !(self.cooling_factor.is_finite() && self.cooling_factor > 1.0) {
            return Err(format!(
                "cooling_factor is {}; valid: a finite number > 1",
                self.cooling_factor
            ));
        }
        if self.iterations_per_temperature == 0 {
            return Err("iterations_per_temperature is 0; valid: at least 1".to_string());
        }
        if self.max_flips == 0 {
            return Err("max_flips is 0; valid: at least 1".to_string());
        }
        Ok(())
    }

    /// The temperatures visited: T0, T0/c, ... while above Tf.
    pub fn temperatures(&self) -> Vec<f64> {
        let mut out = Vec::new();
        let mut t = self.initial_temperature;
        while t > self.final_temperature && out.len() < 10_000 {
            out.push(t);
            t /= self.cooling_factor;
        }
        out
    }
}

/// The result of one annealing run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AnnealOutcome {
    pub lambda_max: f64,
    /// The lowest-energy acceptable state visited (the all-16-bit start if
    /// none was acceptable and cheaper).
    pub best: Vec<bool>,
    pub best_evaluation: Evaluation,
    /// The all-16-bit and all-8-bit evaluations (the normalisation).
    pub all_16: Evaluation,
    pub all_8: Evaluation,
    /// Moves proposed, and how many were accepted.
    pub moves: u64,
    pub accepted: u64,
    /// States this run evaluated that no earlier run had (memo misses).
    pub new_evaluations: u64,
}

/// The annealer: a memo of evaluated drops around an [`Objective`].
///
/// The objective returns an exact drop, or one stopped early (`exact`
/// false) that is a lower bound at least the probe's `reject_at`. A
/// memoised lower bound answers every later probe it still rejects; a
/// probe with a larger `reject_at` asks the objective again (which may
/// resume). Acceptance (`drop < lambda_max`) is therefore decided as from
/// exact drops: the trajectory does not depend on early stopping, nor on
/// when the energies of states it never reads are computed.
pub struct Annealer<O> {
    objective: O,
    memo: BTreeMap<Vec<bool>, DropEstimate>,
    moves_done: u64,
}

impl<O: Objective> Annealer<O> {
    pub fn new(objective: O) -> Self {
        Annealer {
            objective,
            memo: BTreeMap::new(),
            moves_done: 0,
        }
    }

    /// Moves proposed over every run so far.
    pub fn moves_done(&self) -> u64 {
        self.moves_done
    }

    /// Every state evaluated so far and its drop, in bit-vector order.
    pub fn memo(&self) -> &BTreeMap<Vec<bool>, DropEstimate> {
        &self.memo
    }

    /// The exact drop and the energy of `state`.
    pub fn evaluate(&mut self, state: &[bool]) -> Result<Evaluation, O::Error> {
        let d = self.evaluate_below(state, f64::INFINITY)?;
        self.with_energy(state, d)
    }

    /// `state`'s drop `d` with its energy.
    pub fn with_energy(&mut self, state: &[bool], d: DropEstimate) -> Result<Evaluation, O::Error> {
        Ok(Evaluation {
            energy: self.objective.energy(state)?,
            accuracy_drop: d.accuracy_drop,
            exact: d.exact,
        })
    }

    /// The drop of `state`, exact or a lower bound of at least
    /// `reject_at`, from the memo or the objective.
    pub fn evaluate_below(
        &mut self,
        state: &[bool],
        reject_at: f64,
    ) -> Result<DropEstimate, O::Error> {
        if let Some(d) = self.memo.get(state)
            && (d.exact || d.accuracy_drop >= reject_at)
        {
            return Ok(*d);
        }
        let d = self.objective.drop_below(Probe {
            state,
            reject_at,
            moves_done: self.moves_done,
        })?;
        self.memo.insert(state.to_vec(), d);
        Ok(d)
    }

    /// One search over vectors of `bits` booleans for the lowest energy with
    /// accuracy drop below `lambda_max`. `config` must be valid
    /// ([`AnnealConfig::validate`]); an invalid one is clamped to run at
    /// least one move per temperature with at least one flip.
    pub fn run(
        &mut self,
        bits: usize,
        lambda_max: f64,
        config: &AnnealConfig,
    ) -> Result<AnnealOutcome, O::Error> {
        let before = self.memo.len();
        let start = vec![false; bits];
        let all_16 = self.evaluate(&start)?;
        let all_8 = self.evaluate(&vec![true; bits])?;
        let span = all_16.energy - all_8.energy;
        let scale = if span.is_finite() && span > 0.0 {
            span
        } else {
            1.0
        };
        let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
        let mut current = start.clone();
        let mut current_eval = all_16;
        let mut best = start;
        let mut best_evaluation = all_16;
        let (mut moves, mut accepted) = (0u64, 0u64);
        if bits > 0 {
            for t in config.temperatures() {
                for _ in 0..config.iterations_per_temperature.max(1) {
                    let candidate = flip(&current, config.max_flips.max(1), &mut rng);
                    let d = self.evaluate_below(&candidate, lambda_max)?;
                    moves += 1;
                    self.moves_done += 1;
                    // Acceptable only when drop < lambda_max (a NaN drop never is).
                    let acceptable = d.accuracy_drop < lambda_max;
                    if !acceptable {
                        continue;
                    }
                    let e = self.with_energy(&candidate, d)?;
                    let de = (e.energy - current_eval.energy) / scale;
                    let take = de <= 0.0 || unit(&mut rng) < (-de / (config.boltzmann * t)).exp();
                    if e.energy < best_evaluation.energy {
                        best = candidate.clone();
                        best_evaluation = e;
                    }
                    if take {
                        accepted += 1;
                        current = candidate;
                        current_eval = e;
                    }
                }
            }
        }
        Ok(AnnealOutcome {
            lambda_max,
            best,
            best_evaluation,
            all_16,
            all_8,
            moves,
            accepted,
            new_evaluations: (self.memo.len() - before) as u64,
        })
    }
}

/// A uniform double in [0, 1) from 53 random bits.
fn unit(r: &mut ChaCha8Rng) -> f64 {
    (r.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// Uniform in `0..n` (n >= 1), without modulo bias.
fn below(r: &mut ChaCha8Rng, n: u64) -> u64 {
    let zone = u64::MAX - u64::MAX % n;
    loop {
        let x = r.next_u64();
        if x < zone {
            return x % n;
        }
    }
}

/// `state` with `k` distinct random bits flipped, `k` uniform in
/// `1..=max_flips` (capped at the length).
fn flip(state: &[bool], max_flips: u32, r: &mut ChaCha8Rng) -> Vec<bool> {
    let n = state.len();
    let k = 1 + below(r, u64::from(max_flips)) as usize;
    let k = k.min(n);
    // Partial Fisher-Yates over the positions.
    let mut positions: Vec<usize> = (0..n).collect();
    let mut out = state.to_vec();
    for j in 0..k {
        let pick = j + below(r, (n - j) as u64) as usize;
        positions.swap(j, pick);
        out[positions[j]] = !out[positions[j]];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A synthetic problem: each reduced bit saves energy and costs accuracy
    /// by fixed amounts, with an interaction so greedy choices mislead.
    fn synthetic(bits: &[bool]) -> Result<Evaluation, String> {
        const SAVE: [f64; 7] = [5.0, 9.0, 3.0, 7.0, 2.0, 8.0, 1.0];
        const COST: [f64; 7] = [0.010, 0.040, 0.005, 0.030, 0.002, 0.035, 0.001];
        let mut energy = 100.0;
        let mut drop = 0.0;
        for (k, &b) in bits.iter().enumerate() {
            if b {
                energy -= SAVE[k];
                drop += COST[k];
            }
        }
        if bits[1] && bits[5] {
            drop += 0.02; // the two big savers together hurt more
        }
        Ok(Evaluation::exact(energy, drop))
    }

    /// [`synthetic`] as the annealer asks for it.
    fn probe(p: Probe<'_>) -> Result<Evaluation, String> {
        synthetic(p.state)
    }

    fn enumerate_optimum(lambda: f64) -> f64 {
        (0u32..128)
            .map(|m| (0..7).map(|k| m >> k & 1 == 1).collect::<Vec<bool>>())
            .filter_map(|b| synthetic(&b).ok())
            .filter(|e| e.accuracy_drop < lambda)
            .map(|e| e.energy)
            .fold(f64::INFINITY, f64::min)
    }

    #[test]
    fn finds_the_enumerated_optimum_for_every_lambda() {
        let mut a = Annealer::new(Whole(probe));
        for seed in 0..8 {
            let config = AnnealConfig {
                seed,
                ..AnnealConfig::default()
            };
            for step in 1..=15 {
                let lambda = f64::from(step) / 100.0;
                let out = a.run(7, lambda, &config).expect("synthetic never fails");
                let want = enumerate_optimum(lambda);
                assert_eq!(
                    out.best_evaluation.energy, want,
                    "seed {seed} lambda {lambda}"
                );
                assert!(out.best_evaluation.accuracy_drop < lambda);
            }
        }
        // Memoisation: at most the 128 states were ever evaluated.
        assert!(a.memo().len() <= 128);
    }

    #[test]
    fn runs_are_deterministic_and_memo_independent() {
        let config = AnnealConfig {
            seed: 42,
            ..AnnealConfig::default()
        };
        let mut fresh = Annealer::new(Whole(probe));
        let a = fresh.run(7, 0.05, &config).expect("ok");
        let mut warm = Annealer::new(Whole(probe));
        warm.run(7, 0.10, &config).expect("ok");
        let b = warm.run(7, 0.05, &config).expect("ok");
        assert_eq!(
            (a.best.clone(), a.moves, a.accepted),
            (b.best, b.moves, b.accepted)
        );
        assert!(b.new_evaluations <= a.new_evaluations);
        assert_eq!(config.temperatures().len(), 6); // 512 .. 5.24
        assert_eq!(a.moves, 600);
    }

    #[test]
    fn lower_bounds_give_the_same_runs_as_exact_drops() {
        // A closure that stops as early as allowed: the drop it reports for
        // a rejected state is just `reject_at`. Lambdas up to 10 % leave
        // the states with drops above it (up to 14.3 %) as bounds.
        let bounded = |p: Probe<'_>| {
            let e = synthetic(p.state)?;
            Ok::<_, String>(if e.accuracy_drop >= p.reject_at {
                Evaluation {
                    accuracy_drop: p.reject_at,
                    exact: false,
                    ..e
                }
            } else {
                e
            })
        };
        let mut exact = Annealer::new(Whole(probe));
        let mut early = Annealer::new(Whole(bounded));
        for seed in 0..4 {
            let config = AnnealConfig {
                seed,
                ..AnnealConfig::default()
            };
            for step in 1..=10 {
                let lambda = f64::from(step) / 100.0;
                let a = exact.run(7, lambda, &config).expect("ok");
                let b = early.run(7, lambda, &config).expect("ok");
                assert_eq!(a, b, "seed {seed} lambda {lambda}");
            }
        }
        assert_eq!(exact.memo().len(), early.memo().len());
        assert!(early.memo().values().any(|e| !e.exact));
    }

    #[test]
    fn nothing_acceptable_keeps_the_start() {
        let mut a = Annealer::new(Whole(probe));
        let out = a.run(7, 0.0, &AnnealConfig::default()).expect("ok");
        assert_eq!(out.best, vec![false; 7]);
        assert_eq!(out.accepted, 0);
    }

    #[test]
    fn errors_propagate_and_configs_validate() {
        let mut a = Annealer::new(Whole(|_: Probe<'_>| Err::<Evaluation, _>("engine failed")));
        assert_eq!(
            a.run(3, 0.1, &AnnealConfig::default()),
            Err("engine failed")
        );
        let bad = AnnealConfig {
            cooling_factor: 1.0,
            ..AnnealConfig::default()
        };
        assert!(bad.validate().is_err_and(|e| e.contains("cooling_factor")));
        assert_eq!(AnnealConfig::default().validate(), Ok(()));
    }

    #[test]
    fn flips_are_distinct_and_bounded() {
        let mut r = ChaCha8Rng::seed_from_u64(1);
        let s = vec![false; 9];
        for _ in 0..1000 {
            let f = flip(&s, 2, &mut r);
            let n = f.iter().filter(|&&b| b).count();
            assert!((1..=2).contains(&n));
        }
        let one = vec![true];
        assert_eq!(flip(&one, 5, &mut r), vec![false]);
    }
}
