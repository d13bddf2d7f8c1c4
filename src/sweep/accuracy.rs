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

use rayon::prelude::*;
use serde::Serialize;

use crate::numerics::precision::PrecisionAssignment;
use crate::reference::precision::{PrecisionNetwork, check_network, top1, weighted_layers};
use crate::workload::dfp::CalibrationSet;
use crate::workload::ir::Network;

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
}

impl<'a> AccuracyEvaluator<'a> {
    /// Runs the all-16-bit network over the set once (the reference
    /// predictions) with `threads` workers (at least 1).
    pub fn new(
        network: &'a Network,
        set: &'a CalibrationSet,
        threads: usize,
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
        let mut me = AccuracyEvaluator {
            network,
            set,
            pool,
            baseline: Vec::new(),
            baseline_correct: 0,
        };
        let full = PrecisionAssignment::full(weighted_layers(network).len());
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

    /// Top-1 of the all-16-bit network per sample.
    pub fn baseline(&self) -> &[usize] {
        &self.baseline
    }

    /// Top-1 class per sample at `assignment`, in sample order.
    pub fn predictions(&self, assignment: &PrecisionAssignment) -> Result<Vec<usize>, String> {
        let p = PrecisionNetwork::new(self.network, assignment)?;
        let last = self.network.layers.len() - 1;
        Ok(self.pool.install(|| {
            self.set
                .inputs
                .par_iter()
                .map(|x| top1(&p.run(x.clone()).outputs()[last]))
                .collect()
        }))
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
