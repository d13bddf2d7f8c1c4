//! Per-layer precision end to end without the engine: [float] workloads,
//! accuracy drop over a calibration set, and the annealing search checked
//! against exhaustive enumeration on a network small enough to enumerate.

use std::path::{Path, PathBuf};

use accsim::arch::mac::MacConfig;
use accsim::numerics::mac::MacMode;
use accsim::numerics::precision::PrecisionAssignment;
use accsim::numerics::{TensorQuant, WeightQuant};
use accsim::precision::accuracy::{AccuracyEvaluator, DropReference};
use accsim::precision::anneal::AnnealConfig;
use accsim::precision::energy::{AnalyticEnergyModel, EnergyModel};
use accsim::reference::precision::{PrecisionNetwork, weighted_layers};
use accsim::sweep::pareto::{self, Objectives};
use accsim::workload::dfp::l2_frac_len;
use accsim::workload::{LoadOptions, Workload, load_file, load_file_with, load_str};

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

fn tiny() -> Workload {
    load_file(&data("tiny_float.toml"), None).unwrap_or_else(|e| panic!("{e}"))
}

fn all_states(bits: usize) -> Vec<Vec<bool>> {
    (0u32..1 << bits)
        .map(|m| (0..bits).map(|k| m >> k & 1 == 1).collect())
        .collect()
}

#[test]
fn sa_finds_the_enumerated_optimum_on_a_tiny_network() {
    let w = tiny();
    let set = w
        .calibration
        .as_ref()
        .expect("a [float] workload has a calibration set");
    let accuracy = AccuracyEvaluator::new(&w.network, set, 2).expect("16-bit network");
    assert_eq!(accuracy.reference(), DropReference::FullPrecisionPrediction);
    let energy = AnalyticEnergyModel::new(&w.network, &w.default_input, MacConfig::default(), 6.0);
    let layers = weighted_layers(&w.network).len();
    assert_eq!(layers, 2);
    // Every one of the 32 states, evaluated directly.
    let states = all_states(2 * layers + 1);
    let evals: Vec<Objectives> = states
        .iter()
        .map(|x| {
            let a = PrecisionAssignment::from_bits(x).expect("odd length");
            Objectives {
                energy: energy.energy_pj(&a).expect("valid"),
                accuracy_drop: accuracy.accuracy_drop(&a).expect("valid").drop,
            }
        })
        .collect();
    // Drops on this network stay below 6 %: sweep lambda_max in 0.5 % steps
    // so that the constraint binds (several distinct optima).
    let lambdas: Vec<f64> = (1..=12).map(|k| f64::from(k) * 0.005).collect();
    let optimum = |lambda: f64| {
        evals
            .iter()
            .filter(|e| e.accuracy_drop < lambda)
            .map(|e| e.energy)
            .fold(f64::INFINITY, f64::min)
    };
    let mut distinct: Vec<f64> = lambdas.iter().map(|&l| optimum(l)).collect();
    distinct.dedup();
    assert!(distinct.len() >= 4, "{distinct:?}");
    let result = accsim::precision::search(
        &energy,
        &accuracy,
        layers,
        &lambdas,
        &AnnealConfig::default(),
        |_: accsim::precision::StateEvaluated| {},
    )
    .expect("search runs");
    for run in &result.runs {
        assert_eq!(
            run.best_evaluation.energy,
            optimum(run.lambda_max),
            "lambda {}",
            run.lambda_max
        );
    }
    // Every state was visited, so the front is the true Pareto front.
    assert_eq!(result.evaluated_states, 32);
    let want: Vec<(f64, f64)> = pareto::front(&evals)
        .into_iter()
        .map(|i| (evals[i].energy, evals[i].accuracy_drop))
        .collect();
    let got: Vec<(f64, f64)> = result
        .front
        .iter()
        .map(|p| (p.energy_pj, p.accuracy_drop))
        .collect();
    assert_eq!(got, want);
    // The per-network points are the four uniform assignments.
    let names: Vec<String> = result
        .per_network
        .iter()
        .map(|p| p.assignment.to_string())
        .collect();
    assert_eq!(
        names,
        ["16x16,16x16/16", "8x16,8x16/8", "16x8,16x8/16", "8x8,8x8/8"]
    );
    assert_eq!(result.per_network[0].energy_saving, 0.0);
    assert_eq!(result.per_network[0].accuracy_drop, 0.0);
    assert!(result.per_network[3].energy_saving > 0.5);
}

/// Early stopping (a state's calibration set stops once its drop is proven
/// `>= lambda_max`) takes the same decisions as full evaluations: the same
/// runs (trajectories: best state, moves, acceptances, new states), the same
/// fronts and per-network points, the same states; only drops of states
/// rejected early and off the front are lower bounds.
#[test]
fn early_stopping_gives_the_same_search_as_full_evaluation() {
    let w = tiny();
    let set = w
        .calibration
        .as_ref()
        .expect("a [float] workload has a calibration set");
    let energy = AnalyticEnergyModel::new(&w.network, &w.default_input, MacConfig::default(), 6.0);
    // Up to 3 %: the states with larger drops (up to about 6 %) end as bounds.
    let lambdas: Vec<f64> = (1..=6).map(|k| f64::from(k) * 0.005).collect();
    let config = AnnealConfig {
        iterations_per_temperature: 20,
        seed: 5,
        ..AnnealConfig::default()
    };
    let search = |early: bool| {
        let accuracy = AccuracyEvaluator::new(&w.network, set, 2)
            .expect("16-bit network")
            .with_early_stopping(early);
        let found = accsim::precision::search(
            &energy,
            &accuracy,
            2,
            &lambdas,
            &config,
            |_: accsim::precision::StateEvaluated| {},
        )
        .expect("search runs");
        (found, accuracy.cache_stats())
    };
    let (full, full_cache) = search(false);
    let (early, early_cache) = search(true);
    assert_eq!(early.runs, full.runs);
    assert_eq!(early.front, full.front);
    assert_eq!(early.search_front, full.search_front);
    assert_eq!(early.per_network, full.per_network);
    assert_eq!(early.evaluated_states, full.evaluated_states);
    assert!(full.states.iter().all(|s| s.drop_exact));
    let mut stopped = 0;
    for (e, f) in early.states.iter().zip(&full.states) {
        assert_eq!((&e.assignment, e.energy_pj), (&f.assignment, f.energy_pj));
        if e.drop_exact {
            assert_eq!(e.accuracy_drop, f.accuracy_drop, "{}", e.assignment);
        } else {
            stopped += 1;
            assert!(e.accuracy_drop <= f.accuracy_drop, "{}", e.assignment);
            assert!(e.accuracy_drop >= lambdas[0], "{}", e.assignment);
        }
    }
    assert!(stopped > 0, "no state stopped early");
    // Fewer chunks of samples run with early stopping.
    assert!(early_cache.chunk_runs < full_cache.chunk_runs);
    assert!(full_cache.segments_skipped > 0);
}

#[test]
fn accuracy_drop_is_identical_for_any_thread_count() {
    let w = tiny();
    let set = w.calibration.as_ref().expect("calibration set");
    let a = PrecisionAssignment::new(
        vec![MacMode::I8_W16, MacMode::HALF],
        accsim::numerics::mac::Width::W16,
    );
    let results: Vec<_> = [1, 2, 3]
        .iter()
        .map(|&t| {
            let ev = AccuracyEvaluator::new(&w.network, set, t).expect("valid");
            (
                ev.predictions(&a).expect("valid"),
                ev.accuracy_drop(&a).expect("valid"),
            )
        })
        .collect();
    assert_eq!(results[0], results[1]);
    assert_eq!(results[0], results[2]);
    // And equal to running the samples one by one.
    let p = PrecisionNetwork::new(&w.network, &a).expect("valid");
    let last = w.network.layers.len() - 1;
    let serial: Vec<usize> = set
        .inputs
        .iter()
        .map(|x| accsim::reference::precision::top1(&p.run(x.clone()).outputs()[last]))
        .collect();
    assert_eq!(results[0].0, serial);
}

#[test]
fn prefix_cache_changes_no_prediction() {
    let w = tiny();
    let set = w.calibration.as_ref().expect("calibration set");
    let cached = AccuracyEvaluator::new(&w.network, set, 2).expect("valid");
    let plain = AccuracyEvaluator::with_cache_budget(&w.network, set, 2, 0).expect("valid");
    // Every state, in an order that revisits prefixes from both sides.
    let mut states = all_states(5);
    states.reverse();
    states.extend(all_states(5));
    for x in &states {
        let a = PrecisionAssignment::from_bits(x).expect("odd length");
        assert_eq!(
            cached.predictions(&a).expect("valid"),
            plain.predictions(&a).expect("valid"),
            "{a}"
        );
    }
    assert!(cached.cache_bytes() > 0);
    assert_eq!(plain.cache_bytes(), 0);
}

#[test]
fn an_evicting_prefix_cache_changes_no_prediction() {
    let w = tiny();
    let set = w.calibration.as_ref().expect("calibration set");
    let plain = AccuracyEvaluator::with_cache_budget(&w.network, set, 2, 0).expect("valid");
    let mut states = all_states(5);
    states.reverse();
    states.extend(all_states(5));
    // What an unbounded cache would hold, then a quarter of it: the least
    // recently used tensors make room for new ones, over and over.
    let full = AccuracyEvaluator::with_cache_budget(&w.network, set, 2, usize::MAX).expect("valid");
    for x in &states {
        let a = PrecisionAssignment::from_bits(x).expect("odd length");
        full.predictions(&a).expect("valid");
    }
    let budget = full.cache_bytes() / 4;
    let small = AccuracyEvaluator::with_cache_budget(&w.network, set, 2, budget).expect("valid");
    for x in &states {
        let a = PrecisionAssignment::from_bits(x).expect("odd length");
        assert_eq!(
            small.predictions(&a).expect("valid"),
            plain.predictions(&a).expect("valid"),
            "{a}"
        );
        assert!(small.cache_bytes() <= budget);
    }
    let stats = small.cache_stats();
    assert!(stats.bytes > 0 && stats.segments_skipped > 0);
    assert!(stats.segments_skipped < full.cache_stats().segments_skipped);
}

#[test]
fn float_workload_chooses_every_frac_len_by_l2() {
    let w = tiny();
    let set = w.calibration.as_ref().expect("calibration set");
    assert_eq!(set.inputs.len(), 200);
    assert_eq!(set.inputs[0], w.default_input);
    assert!(set.labels.is_none());
    // Uniform inputs in [-1, 1): all fraction bits.
    assert_eq!(
        w.network.input_quant,
        TensorQuant::Fixed {
            bits: 16,
            frac_len: 15
        }
    );
    // The weights' FL is the L2 choice over the integers' real values: the
    // quantised weights reproduce it (their real values are within half a step).
    let conv = &w.network.layers[0];
    let Some(WeightQuant::Fixed { bits: 16, frac_len }) = conv.weight_quant() else {
        panic!("16-bit fixed-point weights");
    };
    let accsim::workload::Op::Conv2d(c) = &conv.op else {
        panic!("conv");
    };
    let reals: Vec<f64> = c
        .weights
        .iter()
        .map(|&q| f64::from(q) * 2f64.powi(-frac_len))
        .collect();
    assert_eq!(l2_frac_len(reals.iter(), 16), *frac_len);
    // A smaller set is a prefix of a larger one (per-sample seeds).
    let small = load_file_with(
        &data("tiny_float.toml"),
        None,
        &LoadOptions {
            calibration_samples: Some(30),
            ..Default::default()
        },
    )
    .expect("loads");
    let small_set = small.calibration.expect("calibration set");
    assert_eq!(small_set.inputs[..], set.inputs[..30]);
    // The all-16-bit precision network is the loaded network.
    let p = PrecisionNetwork::new(&w.network, &PrecisionAssignment::full(2)).expect("valid");
    assert_eq!(
        p.run(w.default_input.clone()).outputs(),
        &w.default_outputs[..]
    );
}

#[test]
fn labels_give_an_accuracy_drop_against_the_16_bit_accuracy() {
    let dir = tempfile::tempdir().expect("temp dir");
    let text = std::fs::read_to_string(data("tiny_float.toml")).expect("read");
    let w = tiny();
    // Labels: the 16-bit predictions, except the first 20 shifted by one
    // class, so the 16-bit accuracy is 90 %.
    let set = w.calibration.as_ref().expect("calibration set");
    let base = AccuracyEvaluator::new(&w.network, set, 2).expect("valid");
    let labels: Vec<i64> = base
        .baseline()
        .iter()
        .enumerate()
        .map(|(i, &p)| {
            if i < 20 {
                ((p + 1) % 5) as i64
            } else {
                p as i64
            }
        })
        .collect();
    accsim::workload::npy::write(&dir.path().join("labels.npy"), &[200], labels.clone())
        .expect("write labels");
    let with_labels = text.replace(
        "fl_samples = 20",
        "fl_samples = 20\nlabels = \"labels.npy\"",
    );
    let path = dir.path().join("tiny_labels.toml");
    let lw = load_str(&with_labels, &path, None).expect("loads with labels");
    let lset = lw.calibration.as_ref().expect("calibration set");
    assert_eq!(lset.labels.as_ref().map(Vec::len), Some(200));
    let ev = AccuracyEvaluator::new(&lw.network, lset, 2).expect("valid");
    assert_eq!(ev.reference(), DropReference::Labels);
    let full = ev
        .accuracy_drop(&PrecisionAssignment::full(2))
        .expect("valid");
    assert_eq!((full.drop, full.differing), (0.0, 20));
    let half = PrecisionAssignment::half(2);
    let d = ev.accuracy_drop(&half).expect("valid");
    let preds = ev.predictions(&half).expect("valid");
    let correct = preds
        .iter()
        .zip(&labels)
        .filter(|(p, l)| **p as i64 == **l)
        .count();
    assert_eq!(d.drop, (180.0 - correct as f64) / 200.0);
    // Out-of-range labels are refused, naming the file, field and valid range.
    accsim::workload::npy::write(&dir.path().join("labels.npy"), &[200], vec![7i64; 200])
        .expect("write labels");
    let e = load_str(&with_labels, &path, None).expect_err("label 7 of 5 classes");
    let m = e.to_string();
    assert!(
        m.contains("tiny_labels.toml") && m.contains("labels") && m.contains("0 to 4"),
        "{m}"
    );
}

#[test]
fn float_workload_errors_name_the_field() {
    let text = std::fs::read_to_string(data("tiny_float.toml")).expect("read");
    let p = Path::new("f.toml");
    let cases = [
        (
            text.replace("[defaults]\n", "[defaults]\nweight_frac_len = 12\n"),
            "weight_frac_len",
        ),
        (
            text.replace("shape = [2, 8, 8]", "shape = [2, 8, 8]\nfrac_len = 12"),
            "frac_len",
        ),
        (
            text.replace(
                "activation = \"none\"",
                "activation = \"none\"\noutput = { frac_len = 3 }",
            ),
            "output",
        ),
        (text.replace("samples = 200", "samples = 0"), "samples"),
        (
            text.replace("fl_samples = 20", "fl_samples = 500"),
            "fl_samples",
        ),
        (
            text.replace("mode = \"dynamic_fixed_point\"", "mode = \"affine\""),
            "dynamic_fixed_point",
        ),
    ];
    for (bad, field) in cases {
        let m = load_str(&bad, p, None).expect_err("refused").to_string();
        assert!(
            m.starts_with("f.toml:") && m.contains(field),
            "{field}: {m}"
        );
    }
}

#[test]
fn shipped_float_benchmarks_keep_their_topology() {
    let load = |name: &str| {
        accsim::workload::load_file_with(
            &PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("workloads")
                .join(format!("{name}.toml")),
            None,
            &LoadOptions {
                calibration_samples: Some(4),
                ..Default::default()
            },
        )
        .unwrap_or_else(|e| panic!("{name}: {e}"))
    };
    for (float, int) in [
        ("ic_cifar10_float", "ic_cifar10"),
        ("kws_cnn_one_fstride4_float", "kws_cnn_one_fstride4"),
        ("fer_float", "fer"),
    ] {
        let f = load(float);
        let i = accsim::workload::load(int).unwrap_or_else(|e| panic!("{int}: {e}"));
        assert_eq!(f.network.macs(), i.network.macs(), "{float}");
        assert_eq!(f.calibration.map(|c| c.inputs.len()), Some(4));
        assert!(accsim::reference::precision::check_network(&f.network).is_ok());
    }
}

#[test]
fn the_trained_digits_model_is_accurate_at_16_bits_and_reports_its_accuracy() {
    // digits_cnn_float: the trained digits CNN (99.11 % in float and as
    // int8, docs/onnx.md) requantised to 16-bit dynamic fixed point, with
    // labelled test images. On its first 90 test images the 16-bit network
    // must be as accurate as a trained model is, and the evaluator's
    // reference accuracy must be the share of its predictions that match.
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("workloads/digits_cnn_float.toml");
    let w = load_file_with(
        &path,
        None,
        &LoadOptions {
            calibration_samples: Some(90),
            ..Default::default()
        },
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let set = w
        .calibration
        .as_ref()
        .unwrap_or_else(|| panic!("a [float] workload"));
    let labels = set.labels.as_ref().unwrap_or_else(|| panic!("labels"));
    assert_eq!((set.inputs.len(), labels.len()), (90, 90));
    let ev = AccuracyEvaluator::new(&w.network, set, 2).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(ev.reference(), DropReference::Labels);
    let correct = ev
        .baseline()
        .iter()
        .zip(labels)
        .filter(|(p, l)| p == l)
        .count();
    assert_eq!(ev.baseline_accuracy(), Some(correct as f64 / 90.0));
    assert!(correct >= 87, "{correct} of 90 right at 16 bits");
}
