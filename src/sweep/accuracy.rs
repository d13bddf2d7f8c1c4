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
//! Each sample is one reference inference (`reference::precision`) on a
//! worker of a private rayon pool; predictions are collected in sample order
//! and the drop is a ratio of integer counts, so no floating-point sum
//! depends on scheduling.
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
use crate::reference::precision::{
    PrecisionNetwork, check_network, is_chain, top1, weighted_layers,
};
use crate::workload::dfp::CalibrationSet;
use crate::workload::ir::{Activations, Network};

/// Default memory budget of the prefix cache: 512 MiB.
pub const DEFAULT_CACHE_BYTES: usize = 512 << 20;

/// Intermediate tensors of every calibration input, keyed by the bit-vector
/// prefix (`2k` booleans) that determines the input of weighted layer `k`.
#[derive(Default)]
struct PrefixCache {
    tensors: HashMap<Vec<bool>, Arc<Vec<Activations>>>,
    bytes: usize,
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
}

/// Evaluates assignments of one network over one calibration set.
pub struct AccuracyEvaluator<'a> {
    network: &'a Network,
    set: &'a CalibrationSet,
    pool: rayon::ThreadPool,
    /// Top-1 of the all-16-bit network per sample.
    baseline: Vec<usize>,
    /// Samples the all-16-bit network classifies as labelled.
    baseline_correct: usize,
    /// Indices of the weighted layers.
    weighted: Vec<usize>,
    /// Whether runs may resume from cached prefixes (chain networks).
    chain: bool,
    cache: Mutex<PrefixCache>,
    cache_budget_bytes: usize,
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
            baseline: Vec::new(),
            baseline_correct: 0,
            chain: is_chain(network),
            weighted,
            cache: Mutex::new(PrefixCache::default()),
            cache_budget_bytes,
        };
        let full = PrecisionAssignment::full(me.weighted.len());
        me.baseline = me.predictions(&full)?;
        me.baseline_correct = me.correct(&me.baseline);
        Ok(me)
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

    /// Top-1 class per sample at `assignment`, in sample order.
    pub fn predictions(&self, assignment: &PrecisionAssignment) -> Result<Vec<usize>, String> {
        let p = PrecisionNetwork::new(self.network, assignment)?;
        let layers = self.network.layers.len();
        let l = self.weighted.len();
        if !self.chain || l < 2 {
            return Ok(self.pool.install(|| {
                self.set
                    .inputs
                    .par_iter()
                    .map(|x| top1(&p.run(x.clone()).outputs()[layers - 1]))
                    .collect()
            }));
        }
        let bits = assignment.to_bits();
        // Resume from the deepest cached prefix, if any.
        let mut k = 0;
        let mut current: Option<Arc<Vec<Activations>>> = None;
        if let Ok(cache) = self.cache.lock() {
            for kk in (1..l).rev() {
                if let Some(t) = cache.tensors.get(&bits[..2 * kk]) {
                    k = kk;
                    current = Some(Arc::clone(t));
                    break;
                }
            }
        }
        loop {
            // Segment k: weighted layer k (from layer 0 for the first) up to
            // the next weighted layer.
            let start = if k == 0 { 0 } else { self.weighted[k] };
            let end = self.weighted.get(k + 1).copied().unwrap_or(layers);
            let inputs: &[Activations] = current.as_deref().map_or(&self.set.inputs, |v| v);
            if k + 1 == l {
                return Ok(self.pool.install(|| {
                    inputs
                        .par_iter()
                        .map(|x| top1(&p.run_range(start..end, x)))
                        .collect()
                }));
            }
            let next: Vec<Activations> = self.pool.install(|| {
                inputs
                    .par_iter()
                    .map(|x| p.run_range(start..end, x))
                    .collect()
            });
            let next = Arc::new(next);
            let bytes: usize = next.iter().map(|t| t.len() * 2).sum();
            if let Ok(mut cache) = self.cache.lock()
                && cache.bytes + bytes <= self.cache_budget_bytes
            {
                let key = bits[..2 * (k + 1)].to_vec();
                if !cache.tensors.contains_key(&key) {
                    cache.bytes += bytes;
                    cache.tensors.insert(key, Arc::clone(&next));
                }
            }
            current = Some(next);
            k += 1;
        }
    }

    /// Bytes the prefix cache holds.
    pub fn cache_bytes(&self) -> usize {
        self.cache.lock().map_or(0, |c| c.bytes)
    }

    fn correct(&self, predictions: &[usize]) -> usize {
        match &self.set.labels {
            Some(labels) => predictions
                .iter()
                .zip(labels)
                .filter(|(p, l)| p == l)
                .count(),
            None => 0,
        }
    }

    /// lambda(X) for `assignment`.
    pub fn accuracy_drop(&self, assignment: &PrecisionAssignment) -> Result<AccuracyDrop, String> {
        let predictions = self.predictions(assignment)?;
        let samples = predictions.len();
        let (differing, drop) = match &self.set.labels {
            Some(labels) => {
                let differing = predictions
                    .iter()
                    .zip(labels)
                    .filter(|(p, l)| p != l)
                    .count();
                let correct = self.correct(&predictions);
                let drop = (self.baseline_correct as f64 - correct as f64) / samples as f64;
                (differing, drop)
            }
            None => {
                let differing = predictions
                    .iter()
                    .zip(&self.baseline)
                    .filter(|(p, b)| p != b)
                    .count();
                (differing, differing as f64 / samples as f64)
            }
        };
        Ok(AccuracyDrop {
            drop,
            differing,
            samples,
            reference: self.reference(),
        })
    }
}
