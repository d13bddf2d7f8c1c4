//! Accuracy drop of a precision assignment over a calibration set (SPEC
//! section 2: lambda(X)), computed in parallel with results identical for any
//! thread count.
//!
//! Two references, and the result says which was used:
//! - **labels** (the workload ships them): the drop is
//!   `accuracy(all 16 bit) - accuracy(X)`, the share of samples the 16x16
//!   network gets right minus the share X gets right (it can be negative:
//!   rounding sometimes helps);
//! - **no labels** (random weights, the shipped float workloads): the drop is
//!   the share of samples whose top-1 class differs from the 16x16
//!   network's top-1: agreement with full precision, not accuracy.
//!
//! Samples run in the evaluation order ([`evaluation_order`]: the
//! all-16-bit network's smallest top-1 margins first), in chunks of
//! [`CHUNK_SAMPLES`], each chunk as one batch
//! through the reference executor (`reference::precision`,
//! `PrecisionNetwork::run_range_batch`): every convolution and fully
//! connected layer is one integer matrix product over the chunk's samples
//! (their positions side by side), on the workers of a private rayon pool.
//! Sums are exact integers, predictions are collected in order and
//! the drop is a ratio of integer counts, so nothing depends on scheduling
//! or on the thread count.
//!
//! **Prefix cache.** The tensor that weighted layer k reads depends only on
//! the precisions of layers 0..k-1. For chain networks the evaluator keeps,
//! per such prefix of the bit vector, that tensor for every calibration
//! input (up to a memory budget), and a later assignment sharing the prefix
//! resumes from it. The search revisits prefixes constantly (ic_cifar10 has
//! 512 states but only 4 + 16 + 64 distinct prefixes before its last three
//! weighted layers), so this removes most of the work. It changes only what
//! is recomputed, never a value: cached tensors are exactly what a full run
//! computes (tested against runs without a cache).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use rayon::prelude::*;
use serde::Serialize;

use crate::numerics::precision::PrecisionAssignment;
use crate::reference::precision::{PrecisionNetwork, check_network, is_chain, weighted_layers};
use crate::workload::dfp::CalibrationSet;
use crate::workload::ir::{Activations, Network};

/// Default memory budget of the prefix cache: 512 MiB.
pub const DEFAULT_CACHE_BYTES: usize = 512 << 20;

/// Samples evaluated between two checks of the stopping rule, and the unit
/// of the prefix cache. A constant, not a function of the thread count, so
/// that where a rejected state stopped (and so the lower bound recorded for
/// it) is the same for any `-j`.
pub const CHUNK_SAMPLES: usize = 64;

/// A cache key: the bit-vector prefix (`2k` booleans) that determines the
/// input of weighted layer `k`, and the chunk's index.
type PrefixKey = (Vec<bool>, usize);

/// Intermediate tensors of chunks of calibration inputs, by [`PrefixKey`],
/// within a byte budget: when full, the least recently used tensors make
/// room for a new one (the search moves on, and the prefixes of the states
/// near its current one are the ones it reuses).
#[derive(Default)]
struct PrefixCache {
    /// Each tensor with the tick of its last use.
    tensors: HashMap<PrefixKey, (Arc<Vec<Activations>>, u64)>,
    /// The keys by tick of last use, oldest first.
    by_use: std::collections::BTreeMap<u64, PrefixKey>,
    tick: u64,
    bytes: usize,
    /// Chunks run, and weighted-layer segments those runs skipped thanks to
    /// a cached prefix, out of the segments they would have run without.
    chunk_runs: u64,
    segments_skipped: u64,
    segments_total: u64,
    /// Samples those chunks held, and the MACs of the segments they ran.
    samples_run: u64,
    macs_run: u64,
}

/// Bytes a chunk's tensors hold (their `i16` elements).
fn tensor_bytes(tensors: &[Activations]) -> usize {
    tensors.iter().map(|t| t.len() * 2).sum()
}

impl PrefixCache {
    /// The tensor cached under `key`, marked as just used.
    fn get(&mut self, key: &PrefixKey) -> Option<Arc<Vec<Activations>>> {
        self.tick += 1;
        let tick = self.tick;
        let (tensor, used) = self.tensors.get_mut(key)?;
        self.by_use.remove(used);
        *used = tick;
        self.by_use.insert(tick, key.clone());
        Some(Arc::clone(tensor))
    }

    /// Caches `tensor` under `key` if it fits `budget` bytes at all,
    /// dropping the least recently used tensors until it fits.
    fn insert(&mut self, key: PrefixKey, tensor: &Arc<Vec<Activations>>, budget: usize) {
        let bytes = tensor_bytes(tensor);
        if bytes > budget || self.tensors.contains_key(&key) {
            return;
        }
        while self.bytes + bytes > budget {
            let Some((_, old)) = self.by_use.pop_first() else {
                break;
            };
            if let Some((t, _)) = self.tensors.remove(&old) {
                self.bytes -= tensor_bytes(&t);
            }
        }
        self.tick += 1;
        self.bytes += bytes;
        self.by_use.insert(self.tick, key.clone());
        self.tensors.insert(key, (Arc::clone(tensor), self.tick));
    }
}

/// How far a state's evaluation has gone: its first `samples` samples.
#[derive(Debug, Clone, Copy, Default)]
struct Progress {
    samples: usize,
    differing: usize,
    correct: usize,
}

/// What the prefix cache did (see [`AccuracyEvaluator::cache_stats`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct CacheStats {
    /// Chunks of [`CHUNK_SAMPLES`] inputs run through a network.
    pub chunk_runs: u64,
    /// Weighted-layer segments (a weighted layer and the layers up to the
    /// next one) those runs took from the cache instead of computing.
    pub segments_skipped: u64,
    /// Segments they would have computed without a cache.
    pub segments_total: u64,
    /// Samples those chunks held (a sample counts once per chunk run).
    pub samples_run: u64,
    /// MACs of the segments the chunks computed (not those taken from the
    /// cache): the calibration inference's arithmetic.
    pub macs_run: u64,
    /// Bytes the cache holds.
    pub bytes: usize,
}

/// What the accuracy drop is measured against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DropReference {
    /// `accuracy(16x16) - accuracy(X)` against the workload's labels.
    Labels,
    /// Share of samples whose top-1 differs from the 16x16 prediction.
    FullPrecisionPrediction,
}

impl DropReference {
    /// Text for reports: what the number means.
    pub fn describe(self) -> &'static str {
        match self {
            DropReference::Labels => "accuracy drop vs the 16x16 accuracy on the labels",
            DropReference::FullPrecisionPrediction => {
                "disagreement with the 16x16 top-1 prediction (no labels: not accuracy)"
            }
        }
    }
}

/// The accuracy drop of one assignment.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct AccuracyDrop {
    /// A fraction: 0.03 = 3 %.
    pub drop: f64,
    /// Samples whose top-1 differs from the reference (label or 16x16 top-1).
    pub differing: usize,
    pub samples: usize,
    pub reference: DropReference,
    /// False when the evaluation stopped early: `drop` is then a lower
    /// bound (at least the `reject_at` it was asked about), `differing`
    /// counts the samples evaluated so far.
    pub exact: bool,
}

/// Evaluates assignments of one network over one calibration set.
pub struct AccuracyEvaluator<'a> {
    network: &'a Network,
    set: &'a CalibrationSet,
    pool: rayon::ThreadPool,
    /// The samples in evaluation order (see [`evaluation_order`]): chunk `c`
    /// is `inputs[c * CHUNK_SAMPLES..]`.
    inputs: Vec<Activations>,
    /// The labels in evaluation order, when the set has them.
    labels: Option<Vec<usize>>,
    /// `order[j]`: the sample (index into the set) evaluated `j`-th.
    order: Vec<usize>,
    /// Top-1 of the all-16-bit network per sample, in sample order.
    baseline: Vec<usize>,
    /// The same in evaluation order.
    baseline_ordered: Vec<usize>,
    /// Samples the all-16-bit network classifies as labelled.
    baseline_correct: usize,
    /// Indices of the weighted layers.
    weighted: Vec<usize>,
    /// MACs of one sample through segment `k` (weighted layer `k` up to the
    /// next one) and every later segment.
    macs_from: Vec<u64>,
    /// Whether runs may resume from cached prefixes (chain networks).
    chain: bool,
    cache: Mutex<PrefixCache>,
    cache_budget_bytes: usize,
    /// Partial evaluations of states that stopped early, to resume from.
    progress: Mutex<HashMap<Vec<bool>, Progress>>,
    /// Whether [`Self::accuracy_drop_below`] may stop early.
    early_stop: bool,
}

impl<'a> AccuracyEvaluator<'a> {
    /// Runs the all-16-bit network over the set once (the reference
    /// predictions) with `threads` workers (at least 1), with a prefix cache
    /// of [`DEFAULT_CACHE_BYTES`].
    pub fn new(
        network: &'a Network,
        set: &'a CalibrationSet,
        threads: usize,
    ) -> Result<Self, String> {
        Self::with_cache_budget(network, set, threads, DEFAULT_CACHE_BYTES)
    }

    /// [`Self::new`] with a prefix-cache budget in bytes (0 disables it).
    pub fn with_cache_budget(
        network: &'a Network,
        set: &'a CalibrationSet,
        threads: usize,
        cache_budget_bytes: usize,
    ) -> Result<Self, String> {
        check_network(network)?;
        if set.inputs.is_empty() {
            return Err("the calibration set is empty; give at least one sample".to_string());
        }
        if let Some(labels) = &set.labels
            && labels.len() != set.inputs.len()
        {
            return Err(format!(
                "the calibration set has {} samples but {} labels",
                set.inputs.len(),
                labels.len()
            ));
        }
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads.max(1))
            .build()
            .map_err(|e| format!("cannot start {threads} worker threads: {e}"))?;
        let weighted = weighted_layers(network);
        let mut me = AccuracyEvaluator {
            network,
            set,
            pool,
            inputs: set.inputs.clone(),
            labels: set.labels.clone(),
            order: (0..set.inputs.len()).collect(),
            baseline: Vec::new(),
            baseline_ordered: Vec::new(),
            baseline_correct: 0,
            chain: is_chain(network),
            macs_from: macs_from(network, &weighted),
            weighted,
            cache: Mutex::new(PrefixCache::default()),
            cache_budget_bytes,
            progress: Mutex::new(HashMap::new()),
            early_stop: true,
        };
        let full = PrecisionAssignment::full(me.weighted.len());
        let scored = me.scores(&full)?;
        me.baseline = scored.iter().map(|&(top, _)| top).collect();
        me.order = evaluation_order(&scored);
        me.inputs = me.order.iter().map(|&i| set.inputs[i].clone()).collect();
        me.labels = set
            .labels
            .as_ref()
            .map(|l| me.order.iter().map(|&i| l[i]).collect());
        me.baseline_ordered = me.order.iter().map(|&i| me.baseline[i]).collect();
        me.baseline_correct = me.correct(&me.baseline_ordered);
        // The cached tensors belong to the chunks of the sample order.
        me.cache = Mutex::new(PrefixCache::default());
        Ok(me)
    }

    /// Worker threads of the evaluator's pool.
    pub fn threads(&self) -> usize {
        self.pool.current_num_threads()
    }

    pub fn reference(&self) -> DropReference {
        if self.set.labels.is_some() {
            DropReference::Labels
        } else {
            DropReference::FullPrecisionPrediction
        }
    }

    /// Top-1 accuracy of the all-16-bit network on the labels (None
    /// without labels): what every drop is measured from.
    pub fn baseline_accuracy(&self) -> Option<f64> {
        self.set
            .labels
            .as_ref()
            .map(|_| self.baseline_correct as f64 / self.set.inputs.len() as f64)
    }

    /// Top-1 of the all-16-bit network per sample.
    pub fn baseline(&self) -> &[usize] {
        &self.baseline
    }

    /// Turns early stopping on (the default) or off: off,
    /// [`Self::accuracy_drop_below`] evaluates every sample, as
    /// [`Self::accuracy_drop`] does. For tests comparing the two.
    pub fn with_early_stopping(mut self, on: bool) -> Self {
        self.early_stop = on;
        self
    }

    /// Top-1 class per sample at `assignment`, in sample order.
    pub fn predictions(&self, assignment: &PrecisionAssignment) -> Result<Vec<usize>, String> {
        let mut out = vec![0; self.inputs.len()];
        for (j, (top, _)) in self.scores(assignment)?.into_iter().enumerate() {
            out[self.order[j]] = top;
        }
        Ok(out)
    }

    /// Top-1 and its margin ([`top1_margin`]) per sample at `assignment`,
    /// in evaluation order.
    fn scores(&self, assignment: &PrecisionAssignment) -> Result<Vec<(usize, i32)>, String> {
        let p = PrecisionNetwork::new(self.network, assignment)?;
        let bits = assignment.to_bits();
        let n = self.inputs.len();
        let mut out = Vec::with_capacity(n);
        for c in 0..n.div_ceil(CHUNK_SAMPLES) {
            out.extend(self.chunk_predictions(&p, &bits, c));
        }
        Ok(out)
    }

    /// Top-1 and its margin of the samples of chunk `c` (evaluation order)
    /// at `p` (whose bits are `bits`), resuming from the deepest cached
    /// prefix of this chunk.
    fn chunk_predictions(
        &self,
        p: &PrecisionNetwork,
        bits: &[bool],
        c: usize,
    ) -> Vec<(usize, i32)> {
        let n = self.inputs.len();
        let samples = &self.inputs[c * CHUNK_SAMPLES..((c + 1) * CHUNK_SAMPLES).min(n)];
        let layers = self.network.layers.len();
        let l = self.weighted.len();
        if self.chain && l < 2 {
            return self.pool.install(|| {
                p.run_range_batch(0..layers, samples)
                    .iter()
                    .map(top1_margin)
                    .collect()
            });
        }
        if !self.chain {
            return self.pool.install(|| {
                samples
                    .par_iter()
                    .map(|x| top1_margin(&p.run(x.clone()).outputs()[layers - 1]))
                    .collect()
            });
        }
        // Resume from the deepest cached prefix, if any.
        let mut k = 0;
        let mut current: Option<Arc<Vec<Activations>>> = None;
        if let Ok(mut cache) = self.cache.lock() {
            for kk in (1..l).rev() {
                if let Some(t) = cache.get(&(bits[..2 * kk].to_vec(), c)) {
                    k = kk;
                    current = Some(t);
                    break;
                }
            }
            cache.chunk_runs += 1;
            cache.segments_skipped += k as u64;
            cache.segments_total += l as u64;
            cache.samples_run += samples.len() as u64;
            cache.macs_run += self.macs_from[k].saturating_mul(samples.len() as u64);
        }
        loop {
            // Segment k: weighted layer k (from layer 0 for the first) up to
            // the next weighted layer.
            let start = if k == 0 { 0 } else { self.weighted[k] };
            let end = self.weighted.get(k + 1).copied().unwrap_or(layers);
            let inputs: &[Activations] = current.as_deref().map_or(samples, |v| v);
            // The chunk as one batch: each weighted layer one matrix
            // product over its samples, on the evaluator's threads.
            if k + 1 == l {
                return self.pool.install(|| {
                    p.run_range_batch(start..end, inputs)
                        .iter()
                        .map(top1_margin)
                        .collect()
                });
            }
            let next: Vec<Activations> =
                self.pool.install(|| p.run_range_batch(start..end, inputs));
            let next = Arc::new(next);
            if let Ok(mut cache) = self.cache.lock() {
                let key = (bits[..2 * (k + 1)].to_vec(), c);
                cache.insert(key, &next, self.cache_budget_bytes);
            }
            current = Some(next);
            k += 1;
        }
    }

    /// Bytes the prefix cache holds.
    pub fn cache_bytes(&self) -> usize {
        self.cache.lock().map_or(0, |c| c.bytes)
    }

    /// What the prefix cache did so far.
    pub fn cache_stats(&self) -> CacheStats {
        self.cache
            .lock()
            .map_or(CacheStats::default(), |c| CacheStats {
                chunk_runs: c.chunk_runs,
                segments_skipped: c.segments_skipped,
                segments_total: c.segments_total,
                samples_run: c.samples_run,
                macs_run: c.macs_run,
                bytes: c.bytes,
            })
    }

    /// Samples whose prediction equals their label, `predictions` in
    /// evaluation order.
    fn correct(&self, predictions: &[usize]) -> usize {
        match &self.labels {
            Some(labels) => predictions
                .iter()
                .zip(labels)
                .filter(|(p, l)| p == l)
                .count(),
            None => 0,
        }
    }

    /// lambda(X) for `assignment`, over every sample.
    pub fn accuracy_drop(&self, assignment: &PrecisionAssignment) -> Result<AccuracyDrop, String> {
        self.evaluate(assignment, f64::INFINITY)
    }

    /// lambda(X) for `assignment`, or, as soon as the samples evaluated so
    /// far prove `lambda(X) >= reject_at` whatever the rest give, a lower
    /// bound on it (`exact` false; the bound is at least `reject_at`).
    /// Samples run in chunks of [`CHUNK_SAMPLES`], in evaluation order, and
    /// the rule is checked after each; a later call for the same assignment resumes
    /// where this one stopped. "Acceptable" (`drop < reject_at`) is decided
    /// exactly as from the full evaluation: the lower bound only grows with
    /// more samples, and the full drop is the bound with every sample in.
    pub fn accuracy_drop_below(
        &self,
        assignment: &PrecisionAssignment,
        reject_at: f64,
    ) -> Result<AccuracyDrop, String> {
        let reject_at = if self.early_stop {
            reject_at
        } else {
            f64::INFINITY
        };
        self.evaluate(assignment, reject_at)
    }

    fn evaluate(
        &self,
        assignment: &PrecisionAssignment,
        reject_at: f64,
    ) -> Result<AccuracyDrop, String> {
        let p = PrecisionNetwork::new(self.network, assignment)?;
        let bits = assignment.to_bits();
        let n = self.inputs.len();
        let mut at = self
            .progress
            .lock()
            .ok()
            .and_then(|m| m.get(&bits).copied())
            .unwrap_or_default();
        while at.samples < n {
            let c = at.samples / CHUNK_SAMPLES;
            let predictions = self.chunk_predictions(&p, &bits, c);
            for (i, &(pred, _)) in predictions.iter().enumerate() {
                let s = at.samples + i;
                let reference = match &self.labels {
                    Some(labels) => labels[s],
                    None => self.baseline_ordered.get(s).copied().unwrap_or(pred),
                };
                at.differing += usize::from(pred != reference);
                at.correct += usize::from(self.labels.is_some() && pred == reference);
            }
            at.samples += predictions.len();
            let drop = self.drop_bound(&at);
            if at.samples < n && drop >= reject_at {
                if let Ok(mut m) = self.progress.lock() {
                    m.insert(bits, at);
                }
                return Ok(self.result(drop, &at, false));
            }
        }
        if let Ok(mut m) = self.progress.lock() {
            m.remove(&bits);
        }
        Ok(self.result(self.drop_bound(&at), &at, true))
    }

    /// The smallest drop the samples seen so far allow (the drop itself
    /// once every sample is in): unseen samples counted as agreeing with
    /// the reference.
    fn drop_bound(&self, at: &Progress) -> f64 {
        let n = self.set.inputs.len();
        match &self.set.labels {
            Some(_) => {
                let best_correct = at.correct + (n - at.samples);
                (self.baseline_correct as f64 - best_correct as f64) / n as f64
            }
            None => at.differing as f64 / n as f64,
        }
    }

    fn result(&self, drop: f64, at: &Progress, exact: bool) -> AccuracyDrop {
        AccuracyDrop {
            drop,
            differing: at.differing,
            samples: self.set.inputs.len(),
            reference: self.reference(),
            exact,
        }
    }
}

/// Per weighted layer `k`: the MACs of one inference from segment `k` (the
/// layers from weighted layer `k`, or layer 0 for `k = 0`) to the end.
fn macs_from(network: &Network, weighted: &[usize]) -> Vec<u64> {
    (0..weighted.len())
        .map(|k| {
            let start = if k == 0 { 0 } else { weighted[k] };
            network.layers[start..]
                .iter()
                .fold(0u64, |a, l| a.saturating_add(l.macs()))
        })
        .collect()
}

/// The top-1 class of an output tensor (the first maximum, as
/// `reference::precision::top1`) and its margin: the top value minus the
/// largest other value (0 on a tie; `i32::MAX` for a single class).
fn top1_margin(tensor: &Activations) -> (usize, i32) {
    let mut best = (0usize, i16::MIN);
    let mut second = i32::MIN;
    for (i, &v) in tensor.iter().enumerate() {
        if i == 0 || v > best.1 {
            if i > 0 {
                second = second.max(i32::from(best.1));
            }
            best = (i, v);
        } else {
            second = second.max(i32::from(v));
        }
    }
    let margin = if second == i32::MIN {
        i32::MAX
    } else {
        i32::from(best.1) - second
    };
    (best.0, margin)
}

/// The order samples are evaluated in: by the all-16-bit network's top-1
/// margin ascending (ties by index), so that the samples a reduced
/// precision most likely flips come first and a state whose drop reaches
/// lambda_max is rejected after fewer chunks. Any order gives the same
/// exact drops (counts over all samples); only where an early stop
/// happens, and the lower bound it records, depend on it. A function of
/// the all-16-bit outputs alone: the same for any thread count and run.
fn evaluation_order(scored: &[(usize, i32)]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..scored.len()).collect();
    order.sort_by_key(|&i| (scored[i].1, i));
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn margins_and_the_order_they_give() {
        let t =
            |v: &[i16]| Activations::from_shape_vec((v.len(), 1, 1), v.to_vec()).expect("shape");
        assert_eq!(top1_margin(&t(&[3, 9, -2, 7])), (1, 2));
        assert_eq!(top1_margin(&t(&[9, 3, 9])), (0, 0));
        assert_eq!(top1_margin(&t(&[-5, i16::MIN])), (0, 32_763));
        assert_eq!(top1_margin(&t(&[i16::MIN, i16::MAX])), (1, 65_535));
        assert_eq!(top1_margin(&t(&[4])), (0, i32::MAX));
        // The top-1 is `reference::precision::top1`'s.
        for v in [[1i16, 1, 0], [0, 2, 2], [-3, -1, -2]] {
            assert_eq!(
                top1_margin(&t(&v)).0,
                crate::reference::precision::top1(&t(&v))
            );
        }
        // Smallest margin first, ties by sample index.
        let scored = [(0, 5), (2, 1), (1, 5), (0, 0), (3, 1)];
        assert_eq!(evaluation_order(&scored), [3, 1, 4, 0, 2]);
    }
}
