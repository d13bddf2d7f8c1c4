//! The PE-array engine at per-layer MAC precisions (SPEC section 2): a tiny
//! layer whose zero operands, cycles and MAC energy are derived by hand, and
//! the shipped 16-bit networks at several assignments, where every layer must
//! match the reference at that assignment bit for bit, count the zero-operand
//! MACs the reference counts, and spend exactly the cycles and energy the
//! MAC model gives for those counts.

use std::path::Path;

use accsim::arch::mac::MacConfig;
use accsim::arch::{self, Arch};
use accsim::engine::{self, EngineOptions, LayerStats};
use accsim::numerics::mac::{MacMode, Width};
use accsim::numerics::precision::PrecisionAssignment;
use accsim::reference::precision::{PrecisionNetwork, weighted_layers};
use accsim::run::{RunOptions, run};
use accsim::workload::{self, Workload};

/// The 2 x 2 array of tests/engine.rs (pieces of 3 words), with a `[mac]` section.
fn tiny_arch(mac: &str) -> Arch {
    let text = format!(
        r#"
[arch]
name = "tiny"
description = "2x2 test array"
clock_mhz = 100
[pe_array]
rows = 2
cols = 2
input_rf_entries = 6
psum_rf_entries = 4
weight_store = "fixed"
[interconnect]
glb_bus_bytes_per_cycle = 8
neighbor_words_per_cycle = 1
[glb]
capacity_kib = 1
banks = 4
bank_width_bytes = 8
ports_per_bank = 1
[dram]
model = "simple"
bandwidth_bytes_per_cycle = 4
latency_cycles = 10
[energy]
pj_per_unit = 2.0
{mac}
"#
    );
    arch::load_str(&text, Path::new("tiny_arch.toml")).unwrap_or_else(|e| panic!("{e}"))
}

/// Input 1 x 3 x 4, every word 200 (high byte 0); conv 3x3, 2 output
/// channels, every weight 1000 (high byte 3, i.e. 768 once reduced).
fn tiny_constant() -> Workload {
    let text = r#"
[network]
name = "tiny16"
description = "test: constant 16-bit operands"
[numerics]
mode = "dynamic_fixed_point"
[input]
shape = [1, 3, 4]
frac_len = 8
data = { dist = "constant", value = 200 }
[[layer]]
name = "c"
op = "conv2d"
out_channels = 2
kernel = 3
weights = { dist = "constant", value = 1000 }
weight_frac_len = 14
bias = { dist = "constant", value = 0 }
"#;
    workload::load_str(text, Path::new("tiny16.toml"), None).unwrap_or_else(|e| panic!("{e}"))
}

fn run_at(w: &Workload, a: &Arch, assignment: &PrecisionAssignment) -> LayerStats {
    let reference = PrecisionNetwork::new(&w.network, assignment)
        .unwrap_or_else(|e| panic!("{e}"))
        .run(w.default_input.clone())
        .into_parts()
        .1;
    let options = EngineOptions {
        precision: Some(assignment.clone()),
        ..EngineOptions::default()
    };
    let r = engine::run_with(&w.network, a, &w.default_input, Some(&reference), &options)
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(r.checked);
    r.layers[0].clone()
}

#[test]
fn tiny_layer_zero_operands_cycles_and_energy_by_hand() {
    let w = tiny_constant();
    let gated = tiny_arch("");
    let mac = MacConfig::default();
    // The default MAC energies follow [energy]: a 16x16 MAC costs
    // `mac x pj_per_unit` = 1 x 2.0 pJ, the others PELUSO's ratios.
    assert_eq!(gated.mac.energy_pj.full, 2.0);
    assert_eq!(gated.mac.energy_pj.half, 0.5);
    assert_eq!(gated.mac.cycles, mac.cycles);
    let e_zero = 0.103 * 0.5;

    // 36 MACs (2 positions x 2 channels x 9); 4 PEs each do 3 MACs per piece,
    // 3 pieces (tests/engine.rs derives the schedule).
    let full = run_at(&w, &gated, &PrecisionAssignment::full(1));
    assert_eq!((full.macs, full.zero_macs), (36, 0));
    assert_eq!(full.mac_mode, Some(MacMode::FULL));
    // 4 cycles per 16x16 MAC: 36 x 4 PE-cycles; each piece computes 3 x 4 = 12 cycles.
    assert_eq!(full.pe_busy_cycles, 144);
    assert_eq!(full.cycles.compute, 36);
    assert_eq!(full.mac_energy_pj, 36.0 * 2.0);
    // 16-bit words: every byte count doubles against the 8-bit affine layer.
    assert_eq!(full.dram.read_bytes, 24);
    assert_eq!(
        (full.word_bits.input, full.word_bits.weight),
        (16, 16),
        "storage widths"
    );

    // 8x16: the inputs' high byte is 0, so every MAC has a zero operand. The
    // MAC is gated (E_zero) but, in PELUSO's design, still takes 2 cycles.
    let i8 = run_at(
        &w,
        &gated,
        &PrecisionAssignment::new(vec![MacMode::I8_W16], Width::W16),
    );
    assert_eq!((i8.macs, i8.zero_macs), (36, 36));
    assert_eq!(i8.pe_busy_cycles, 72);
    assert_eq!(i8.cycles.compute, 18);
    assert!((i8.mac_energy_pj - 36.0 * e_zero).abs() < 1e-12);
    // The input is stored and moved at 8 bits: 12 bytes from DRAM.
    assert_eq!(i8.dram.read_bytes, 12);
    assert_eq!(i8.word_bits.input, 8);

    // 16x8: weights reduce to 768, inputs stay 200: no zero operand, 2 cycles.
    let w8 = run_at(
        &w,
        &gated,
        &PrecisionAssignment::new(vec![MacMode::I16_W8], Width::W16),
    );
    assert_eq!((w8.zero_macs, w8.pe_busy_cycles), (0, 72));
    assert_eq!(w8.mac_energy_pj, 36.0 * 1.0);

    // The cycle-saving variant: a zero-operand MAC takes 1 cycle.
    let skipping = tiny_arch("[mac]\nzero_skipping = { mode = \"energy_and_cycles\" }");
    let fast = run_at(
        &w,
        &skipping,
        &PrecisionAssignment::new(vec![MacMode::I8_W16], Width::W16),
    );
    assert_eq!((fast.zero_macs, fast.pe_busy_cycles), (36, 36));
    assert_eq!(fast.cycles.compute, 9);

    // Without gating, a zero MAC costs a full 8x16 MAC.
    let off = tiny_arch("[mac]\nzero_skipping = { mode = \"off\" }");
    let ungated = run_at(
        &w,
        &off,
        &PrecisionAssignment::new(vec![MacMode::I8_W16], Width::W16),
    );
    assert_eq!(ungated.mac_energy_pj, 36.0 * 1.0);
}

/// The 16-bit dynamic-fixed-point workloads shipped.
const DFP: [&str; 3] = ["ic_cifar10", "kws_cnn_one_fstride4", "fer"];

fn assignments(layers: usize) -> Vec<PrecisionAssignment> {
    let mut v = vec![PrecisionAssignment::full(layers)];
    for mode in [MacMode::I16_W8, MacMode::I8_W16, MacMode::HALF] {
        v.push(PrecisionAssignment::per_network(layers, mode));
    }
    // A mixed one: modes cycle through the four.
    let mixed = (0..layers).map(|k| MacMode::ALL[k % 4]).collect();
    v.push(PrecisionAssignment::new(mixed, Width::W8));
    v
}

#[test]
fn shipped_networks_match_the_reference_and_the_mac_model_at_every_assignment() {
    for arch_name in ["lu22_fixed", "lu22_programmable"] {
        let a = arch::load(arch_name).unwrap_or_else(|e| panic!("{e}"));
        for name in DFP {
            let w = workload::load(name).unwrap_or_else(|e| panic!("{e}"));
            let weighted = weighted_layers(&w.network);
            for assignment in assignments(weighted.len()) {
                let options = RunOptions {
                    precision: Some(assignment.clone()),
                    ..RunOptions::default()
                };
                let r = run(&w, &a, &options)
                    .unwrap_or_else(|e| panic!("{arch_name} {name} {assignment}: {e}"));
                assert!(r.report.bit_exact, "{arch_name} {name} {assignment}");
                assert_eq!(
                    r.report.precision.as_deref(),
                    Some(assignment.to_string().as_str())
                );
                let (_, counts) = PrecisionNetwork::new(&w.network, &assignment)
                    .unwrap_or_else(|e| panic!("{e}"))
                    .run_counting(w.default_input.clone());
                for (k, &i) in weighted.iter().enumerate() {
                    let s = &r.engine.layers[i];
                    let mode = assignment.layers()[k];
                    let what = format!("{arch_name} {name} {assignment} layer {i}");
                    assert_eq!(s.mac_mode, Some(mode), "{what}");
                    assert_eq!(s.macs, counts[k].nonzero + counts[k].zero, "{what}");
                    assert_eq!(s.zero_macs, counts[k].zero, "{what}");
                    assert_eq!(r.report.layers[i].zero_macs, counts[k].zero, "{what}");
                    let cost = a.mac.cost(mode, counts[k]);
                    // Every MAC occupies its PE for its mode's cycles.
                    assert_eq!(s.pe_busy_cycles, cost.cycles, "{what}");
                    assert_eq!(s.mac_energy_pj, cost.energy_pj, "{what}");
                }
            }
        }
    }
}

#[test]
fn without_an_assignment_zero_macs_are_the_references_and_modes_follow_storage() {
    let a = arch::load("lu22_fixed").unwrap_or_else(|e| panic!("{e}"));
    for name in ["cae_cnn", "ic_cifar10"] {
        let w = workload::load(name).unwrap_or_else(|e| panic!("{e}"));
        let r = run(&w, &a, &RunOptions::default()).unwrap_or_else(|e| panic!("{e}"));
        let outputs = r.execution.outputs();
        for (i, layer) in w.network.layers.iter().enumerate() {
            let s = &r.engine.layers[i];
            if layer.weight_quant().is_none() {
                assert_eq!(s.mac_mode, None);
                continue;
            }
            let input = match layer.inputs[0] {
                accsim::workload::ir::TensorSource::Input => &w.default_input,
                accsim::workload::ir::TensorSource::Layer(j) => &outputs[j],
            };
            assert_eq!(
                s.zero_macs,
                accsim::reference::zero_operand_macs(layer, input),
                "{name} layer {i}"
            );
            let expected = if name == "cae_cnn" {
                MacMode::HALF
            } else {
                MacMode::FULL
            };
            assert_eq!(s.mac_mode, Some(expected), "{name} layer {i}");
        }
    }
}

#[test]
fn eight_bit_modes_save_cycles_and_energy_on_a_whole_network() {
    let a = arch::load("lu22_programmable").unwrap_or_else(|e| panic!("{e}"));
    let w = workload::load("ic_cifar10").unwrap_or_else(|e| panic!("{e}"));
    let layers = weighted_layers(&w.network).len();
    let at = |assignment: PrecisionAssignment| {
        let options = RunOptions {
            precision: Some(assignment),
            ..RunOptions::default()
        };
        let r = run(&w, &a, &options).unwrap_or_else(|e| panic!("{e}"));
        let m = r
            .report
            .total
            .measured
            .clone()
            .unwrap_or_else(|| panic!("measured"));
        (m.cycles, m.energy_pj.total, m.energy_pj.mac)
    };
    let (c16, e16, mac16) = at(PrecisionAssignment::full(layers));
    let (c8, e8, mac8) = at(PrecisionAssignment::half(layers));
    assert!(
        c8 < c16 && e8 < e16 && mac8 < mac16 / 2.0,
        "{c8} {c16} {e8} {e16}"
    );
    // The default assignment-free run of a 16-bit network is the all-16 one.
    let r = run(&w, &a, &RunOptions::default()).unwrap_or_else(|e| panic!("{e}"));
    let m = r
        .report
        .total
        .measured
        .unwrap_or_else(|| panic!("measured"));
    assert_eq!((m.cycles, m.energy_pj.total), (c16, e16));
}

#[test]
fn precision_needs_a_16_bit_network_and_the_right_length() {
    let a = arch::load("lu22_fixed").unwrap_or_else(|e| panic!("{e}"));
    let cae = workload::load("cae_cnn").unwrap_or_else(|e| panic!("{e}"));
    let layers = weighted_layers(&cae.network).len();
    let options = RunOptions {
        precision: Some(PrecisionAssignment::full(layers)),
        ..RunOptions::default()
    };
    let e = run(&cae, &a, &options).map(|_| ()).unwrap_err().to_string();
    assert!(e.contains("--precision") && e.contains("dynamic"), "{e}");
    let ic = workload::load("ic_cifar10").unwrap_or_else(|e| panic!("{e}"));
    let options = RunOptions {
        precision: Some(PrecisionAssignment::full(2)),
        ..RunOptions::default()
    };
    let e = run(&ic, &a, &options).map(|_| ()).unwrap_err().to_string();
    assert!(e.contains("weighted layers"), "{e}");
}

mod cli {
    use assert_cmd::Command;

    fn accsim() -> Command {
        Command::cargo_bin("accsim").unwrap_or_else(|e| panic!("accsim binary: {e}"))
    }

    fn code(args: &[&str]) -> (i32, String, String) {
        let out = accsim()
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("{e}"));
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    #[test]
    fn run_precision_flag_reports_modes_and_refuses_what_it_cannot_do() {
        let (c, out, err) = code(&[
            "run",
            "--workload",
            "kws_cnn_one_fstride4",
            "--precision",
            "8x16",
        ]);
        assert_eq!(c, 0, "{err}");
        assert!(
            out.contains("precision 8x16,8x16,8x16,8x16,8x16/8") && out.contains("bit-exact: yes"),
            "{out}"
        );
        for (args, needle) in [
            (
                vec!["run", "--workload", "cae_cnn", "--precision", "8x8"],
                "dynamic",
            ),
            (
                vec![
                    "run",
                    "--workload",
                    "kws_cnn_one_fstride4",
                    "--precision",
                    "8x8,8x8/8",
                ],
                "weighted layers",
            ),
            (
                vec![
                    "run",
                    "--workload",
                    "kws_cnn_one_fstride4",
                    "--precision",
                    "9x9",
                ],
                "valid",
            ),
            (
                vec![
                    "run",
                    "--workload",
                    "kws_cnn_one_fstride4",
                    "--precision",
                    "8x8",
                    "--dump",
                    "x",
                ],
                "--dump",
            ),
            (
                vec![
                    "run",
                    "--workload",
                    "kws_cnn_one_fstride4",
                    "--arch",
                    "ffe4_nvdla_c",
                    "--precision",
                    "8x8",
                ],
                "PE-array",
            ),
            (
                vec!["precision", "--workload", "kws_cnn_one_fstride4"],
                "calibration",
            ),
            (
                vec![
                    "precision",
                    "--workload",
                    "kws_cnn_one_fstride4_float",
                    "--lambda",
                    "0:5:1",
                ],
                "--lambda",
            ),
        ] {
            let (c, _, err) = code(&args);
            assert_eq!(c, 2, "{args:?}: {err}");
            assert!(err.contains(needle), "{args:?}: {err}");
        }
    }

    #[test]
    fn a_small_study_writes_identical_files_for_any_thread_count() {
        let dir = std::env::temp_dir().join(format!("accsim_precision_{}", std::process::id()));
        let mut texts = Vec::new();
        for j in ["1", "2"] {
            let out = dir.join(j);
            let (c, stdout, err) = code(&[
                "precision",
                "--workload",
                "kws_cnn_one_fstride4_float",
                "--calib",
                "40",
                "--lambda",
                "2,10",
                "--iters",
                "5",
                "-j",
                j,
                "--out",
                out.to_str().unwrap_or("."),
            ]);
            assert_eq!(c, 0, "{err}");
            assert!(stdout.contains("PELUSO front"), "{stdout}");
            let read = |f: &str| std::fs::read(out.join(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
            for f in ["front.png", "front.svg"] {
                assert!(read(f).len() > 1000, "{f}");
            }
            texts.push([read("study.json"), read("points.csv"), read("states.csv")]);
        }
        assert!(texts[0] == texts[1], "outputs differ between -j 1 and -j 2");
        let study: serde_json::Value =
            serde_json::from_slice(&texts[0][0]).unwrap_or_else(|e| panic!("{e}"));
        let all16 = &study["all_16"];
        assert_eq!(all16["assignment"], "16x16,16x16,16x16,16x16,16x16/16");
        assert_eq!(all16["energy_saving"], 0.0);
        assert_eq!(study["per_network"].as_array().map(Vec::len), Some(4));
        let front = study["front"].as_array().cloned().unwrap_or_default();
        assert!(!front.is_empty());
        for p in &front {
            assert_eq!(p["bit_exact"], true);
            assert!(p["energy_pj"].as_f64().unwrap_or(0.0) > 0.0);
        }
        // The all-8 point spends fewer cycles and less energy than all-16.
        let all8 = &study["per_network"][3];
        assert_eq!(all8["assignment"], "8x8,8x8,8x8,8x8,8x8/8");
        assert!(all8["cycles"].as_u64() < all16["cycles"].as_u64());
        assert!(all8["energy_saving"].as_f64().unwrap_or(0.0) > 0.3);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_calibration_directory_with_labels_sets_the_drop_reference() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let dump = dir.path().join("dump");
        let (c, _, err) = code(&[
            "run",
            "--workload",
            "kws_cnn_one_fstride4_float",
            "-q",
            "--dump",
            dump.to_str().unwrap_or("."),
        ]);
        assert_eq!(c, 0, "{err}");
        let calib = dir.path().join("calib");
        std::fs::create_dir_all(&calib).unwrap_or_else(|e| panic!("{e}"));
        for i in 0..3 {
            std::fs::copy(dump.join("input.npy"), calib.join(format!("x{i}.npy")))
                .unwrap_or_else(|e| panic!("{e}"));
        }
        // The 16-bit network's class for this input, for all three.
        let w =
            accsim::workload::load("kws_cnn_one_fstride4_float").unwrap_or_else(|e| panic!("{e}"));
        let last = w.default_outputs.last().cloned().unwrap_or_default();
        let class = accsim::reference::precision::top1(&last) as i64;
        ndarray_npy::write_npy(
            calib.join("labels.npy"),
            &ndarray::arr1(&[class, class, class]),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let out = dir.path().join("out");
        let (c, stdout, err) = code(&[
            "precision",
            "--workload",
            "kws_cnn_one_fstride4_float",
            "--calib",
            calib.to_str().unwrap_or("."),
            "--lambda",
            "50",
            "--iters",
            "3",
            "--out",
            out.to_str().unwrap_or("."),
        ]);
        assert_eq!(c, 0, "{err}");
        assert!(stdout.contains("3 calibration samples"), "{stdout}");
        let study: serde_json::Value = serde_json::from_slice(
            &std::fs::read(out.join("study.json")).unwrap_or_else(|e| panic!("{e}")),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(study["reference"], "labels");
        assert_eq!(study["samples"], 3);
        // All 16-bit gets all three right: its drop is 0 by definition.
        assert_eq!(study["all_16"]["accuracy_drop"], 0.0);
        // Bad directories and counts are input errors.
        let empty = dir.path().join("empty");
        std::fs::create_dir_all(&empty).unwrap_or_else(|e| panic!("{e}"));
        for bad in [empty.to_str().unwrap_or("."), "0", "no_such_dir"] {
            let (c, _, err) = code(&[
                "precision",
                "--workload",
                "kws_cnn_one_fstride4_float",
                "--calib",
                bad,
            ]);
            assert_eq!(c, 2, "{bad}: {err}");
        }
    }
}
