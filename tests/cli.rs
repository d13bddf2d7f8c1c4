//! The `accsim` command end to end: reports, dumps, list, check.

use std::path::Path;

use assert_cmd::Command;
use serde_json::Value;

fn accsim() -> Command {
    match Command::cargo_bin("accsim") {
        Ok(c) => c,
        Err(e) => panic!("accsim binary: {e}"),
    }
}

fn run_ok(args: &[&str]) -> String {
    let out = accsim()
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "accsim {args:?} failed: {stderr}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

const PUBLISHED_MACS: [(&str, u64); 7] = [
    ("cae_cnn", 257_209_728),
    ("ic_cifar10", 12_298_240),
    ("kws_cnn_one_fstride4", 504_128),
    ("fer", 149_331_456),
    ("mobilenet_v1_025", 41_030_272),
    ("mobilenet_v1_050", 149_497_088),
    ("mobilenet_v1_100", 568_740_352),
];

#[test]
fn run_reports_published_mac_totals_in_json_and_csv() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    for (name, macs) in PUBLISHED_MACS {
        let json = dir.path().join(format!("{name}.json"));
        let csv = dir.path().join(format!("{name}.csv"));
        let stdout = run_ok(&[
            "run",
            "--workload",
            name,
            "--json",
            &json.to_string_lossy(),
            "--csv",
            &csv.to_string_lossy(),
        ]);
        assert!(
            stdout.contains(&accsim::report::thousands(macs)),
            "{name}: table lacks the total\n{stdout}"
        );
        let r = read_json(&json);
        for key in ["workload", "arch", "layers", "total", "bit_exact"] {
            assert!(r.get(key).is_some(), "{name}: report lacks `{key}`");
        }
        assert_eq!(r["total"]["macs"].as_u64(), Some(macs), "{name}");
        let layers = r["layers"].as_array().map(Vec::as_slice).unwrap_or(&[]);
        let sum: u64 = layers.iter().filter_map(|l| l["macs"].as_u64()).sum();
        assert_eq!(sum, macs, "{name}: layer MACs do not add up");
        let zero: u64 = layers.iter().filter_map(|l| l["zero_macs"].as_u64()).sum();
        assert_eq!(r["total"]["zero_macs"].as_u64(), Some(zero));
        assert!(zero < macs);
        // The engine computed every layer and matched the reference.
        assert_eq!(r["engine"], "pe_array (fixed weights)");
        assert_eq!(r["bit_exact"], true);
        for l in layers.iter().chain(std::iter::once(&r["total"])) {
            for level in ["dram", "glb", "array", "rf"] {
                for dir in ["read", "write"] {
                    assert!(
                        l["accesses"][level][dir].is_u64(),
                        "{name}: accesses.{level}.{dir}"
                    );
                }
            }
            for key in ["mac", "rf", "array", "glb", "dram", "total"] {
                assert!(
                    l["energy"][key].is_f64() && l["energy_pj"][key].is_f64(),
                    "{name}: energy.{key}"
                );
            }
            assert!(l["cycles"].is_u64(), "{name}: cycles");
        }
        let cycles: u64 = layers.iter().filter_map(|l| l["cycles"].as_u64()).sum();
        assert_eq!(r["total"]["cycles"].as_u64(), Some(cycles));
        assert_eq!(r["throughput"]["cycles"].as_u64(), Some(cycles));
        let csv_text = std::fs::read_to_string(&csv).unwrap_or_else(|e| panic!("{e}"));
        let total = csv_text.lines().last().unwrap_or_default();
        assert!(total.starts_with(",total,"), "{total}");
        assert!(
            total.contains(&format!(",{macs},{zero},,,{cycles},")),
            "{name}: {total}"
        );
        assert_eq!(csv_text.lines().count(), layers.len() + 2);
    }
}

#[test]
fn same_inputs_give_byte_identical_reports() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let a = dir.path().join("a.json");
    let b = dir.path().join("b.json");
    run_ok(&[
        "run",
        "--workload",
        "ic_cifar10",
        "-q",
        "--json",
        &a.to_string_lossy(),
    ]);
    run_ok(&[
        "run",
        "--workload",
        "ic_cifar10",
        "-q",
        "--json",
        &b.to_string_lossy(),
    ]);
    assert_eq!(std::fs::read(&a).ok(), std::fs::read(&b).ok());
}

#[test]
fn dump_holds_every_tensor_and_matches_the_report() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    for workload in [
        data.join("tiny_affine_float.toml"),
        data.join("tiny_affine_tflite.toml"),
        data.join("tiny_fixed8.toml"),
    ] {
        let stem = workload
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let dump = dir.path().join(&stem);
        let json = dir.path().join(format!("{stem}.json"));
        run_ok(&[
            "run",
            "--workload",
            &workload.to_string_lossy(),
            "-q",
            "--json",
            &json.to_string_lossy(),
            "--dump",
            &dump.to_string_lossy(),
        ]);
        let report = read_json(&json);
        let manifest = read_json(&dump.join("manifest.json"));
        let layers = manifest["layers"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        assert_eq!(
            layers.len(),
            report["layers"].as_array().map_or(0, Vec::len)
        );
        for (entry, row) in layers.iter().zip(
            report["layers"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or(&[]),
        ) {
            for key in ["input", "output"] {
                assert!(
                    dump.join(entry[key]["file"].as_str().unwrap_or("?"))
                        .is_file(),
                    "{stem}: {key}"
                );
            }
            if entry.get("weights").is_some() {
                assert!(
                    dump.join(entry["weights"]["file"].as_str().unwrap_or("?"))
                        .is_file()
                );
                assert!(
                    dump.join(entry["bias_file"].as_str().unwrap_or("?"))
                        .is_file()
                );
                let stage = &entry["output_stage"];
                assert!(stage["requant"]["rule"].is_string() && stage["clamp_min"].is_i64());
            }
            // The report's checksum is the CRC-32 of the dumped output's data bytes.
            let bytes = std::fs::read(dump.join(entry["output"]["file"].as_str().unwrap_or("?")))
                .unwrap_or_default();
            let header_len = 10 + u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
            let crc = crc32fast::hash(&bytes[header_len..]);
            assert_eq!(
                row["output_crc32"].as_str(),
                Some(format!("{crc:08x}").as_str()),
                "{stem} {}",
                entry["name"]
            );
        }
    }
}

#[test]
fn list_names_every_shipped_file() {
    let out = run_ok(&["list"]);
    for name in [
        "cae_cnn",
        "ic_cifar10",
        "kws_cnn_one_fstride4",
        "fer",
        "mobilenet_v1_025",
        "mobilenet_v1_050",
        "mobilenet_v1_075",
        "mobilenet_v1_100",
        "lu22_fixed",
        "lu22_programmable",
    ] {
        assert!(out.contains(name), "{name} missing from:\n{out}");
    }
    assert!(out.contains("[variants: gender, glasses, pose, smile]"));
}

#[test]
fn check_prints_shapes_and_counts() {
    let out = run_ok(&["check", "cae_cnn:pose"]);
    assert!(
        out.contains("valid workload `cae_cnn` (variant pose)"),
        "{out}"
    );
    assert!(out.contains("257,212,288"), "{out}"); // 257,209,728 + 512 * 5
    assert!(out.contains("12,845,056"));
    let out = run_ok(&["check", "arch_configs/lu22_programmable.toml"]);
    assert!(
        out.contains("valid architecture `lu22_programmable`"),
        "{out}"
    );
    assert!(out.contains("13x12 (156 PEs)"));
}

#[test]
fn float_input_is_quantised_like_quantize_linear() {
    use ndarray_npy::WriteNpyExt;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    // KWS input: Q4.11 fixed point. 0.5 -> 1024; 1/4096 -> 0.5 step -> 0 (ties to even).
    let mut x = ndarray::Array3::<f32>::zeros((1, 32, 40));
    x[[0, 0, 0]] = 0.5;
    x[[0, 0, 1]] = 1.0 / 4096.0;
    x[[0, 0, 2]] = 100.0; // saturates to 32767
    let path = dir.path().join("x.npy");
    x.write_npy(std::fs::File::create(&path).unwrap_or_else(|e| panic!("{e}")))
        .unwrap_or_else(|e| panic!("{e}"));
    let workload = accsim::workload::load("kws_cnn_one_fstride4").unwrap_or_else(|e| panic!("{e}"));
    let q = accsim::run::read_input(&workload, &path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        [q[[0, 0, 0]], q[[0, 0, 1]], q[[0, 0, 2]], q[[0, 1, 0]]],
        [1024, 0, 32767, 0]
    );
    let dump = dir.path().join("d");
    run_ok(&[
        "run",
        "--workload",
        "kws_cnn_one_fstride4",
        "-q",
        "--input",
        &path.to_string_lossy(),
        "--dump",
        &dump.to_string_lossy(),
    ]);
}

/// Issue 17: the run table's columns carry their units.
#[test]
fn run_table_columns_carry_units() {
    let out = run_ok(&["run", "--workload", "kws_cnn_one_fstride4"]);
    let header = out
        .lines()
        .find(|l| l.starts_with("| # "))
        .unwrap_or_else(|| panic!("no table header in {out}"));
    for column in [
        "output [CxHxW]",
        "zero-op [%]",
        "stall [%]",
        "util [%]",
        "DRAM [words]",
        "GLB [words]",
        "array [words]",
        "RF [words]",
        "energy [16b-MACs]",
    ] {
        assert!(header.contains(column), "{column} missing from {header}");
    }
    assert!(out.contains(" 16-bit-MAC units (memory "), "{out}");
    let out = run_ok(&["check", "kws_cnn_one_fstride4"]);
    assert!(
        out.contains("| input [CxHxW] | output [CxHxW] |") && out.contains("weights [values]"),
        "{out}"
    );
}

/// Issue 17: `check` printed Rust's names of internal enums (`Simple`,
/// `EnergyOnly`, `Atomic`) instead of the arch file's spelling.
#[test]
fn check_spells_settings_as_the_arch_file_does() {
    let out = run_ok(&["check", "lu22_fixed"]);
    assert!(out.contains("DRAM model simple:"), "{out}");
    assert!(out.contains("(zero_skipping energy_only)"), "{out}");
    assert!(
        !out.contains("Simple") && !out.contains("EnergyOnly"),
        "{out}"
    );
    let out = run_ok(&["check", "ffe7_nvdla_c"]);
    assert!(out.contains("utilisation model atomic"), "{out}");
}

/// Issue 17: the top-level help documents the exit codes as `main` maps them.
#[test]
fn top_level_help_lists_the_exit_codes() {
    let out = run_ok(&["--help"]);
    for line in [
        "Exit codes:",
        "  0  success",
        "  1  simulator fault",
        "  2  bad input or output",
    ] {
        assert!(out.contains(line), "{line:?} missing from {out}");
    }
}

/// Issue 17: for an FFE system the summary's parts add up to its total:
/// memory, MAC and (with an NVDLA back-end) the table's unsplit energy,
/// and the FFE's parts in its own line. Exact sums are checked on the JSON
/// in tests/ffe.rs.
#[test]
fn ffe_summary_names_every_energy_part() {
    let out = run_ok(&[
        "run",
        "--arch",
        "ffe7_nvdla_c",
        "--workload",
        "mobilenet_v1_025",
    ]);
    assert!(
        out.contains(", NVDLA table ") && out.contains("(power x time, not split)"),
        "{out}"
    );
    assert!(
        out.contains("uJ/frame (adder trees ") && out.contains(", hand-off writes "),
        "{out}"
    );
}

/// Issue 17: `precision` takes `-j/--jobs` as `sweep` does (`--threads`
/// still accepted, hidden) and writes to out/precision/NAME by default,
/// as `sweep` writes out/sweeps/NAME; `-j 0` is refused as in `sweep`.
#[test]
fn precision_takes_jobs_and_writes_under_out_by_default() {
    let help = run_ok(&["precision", "--help"]);
    assert!(help.contains("-j, --jobs <N>"), "{help}");
    assert!(!help.contains("--threads"), "{help}");
    assert!(help.contains("[default: out/precision/NAME"), "{help}");
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let workload =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("workloads/kws_cnn_one_fstride4_float.toml");
    let w = workload.to_string_lossy().into_owned();
    let out = accsim()
        .current_dir(dir.path())
        .args([
            "precision",
            "--workload",
            &w,
            "--calib",
            "3",
            "--lambda",
            "50",
            "--iters",
            "3",
            "--threads",
            "1",
            "-q",
        ])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let study = dir
        .path()
        .join("out/precision/kws_cnn_one_fstride4_float/study.json");
    assert!(study.is_file(), "no {}", study.display());
    for jobs in ["-j", "--jobs"] {
        let out = accsim()
            .args(["precision", "--workload", &w, jobs, "0"])
            .output()
            .unwrap_or_else(|e| panic!("{e}"));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(
            stderr.contains("-j: is 0; valid: 1 to 1024 worker threads"),
            "{stderr}"
        );
    }
}

/// Runs `workload` (on `input`, if given) with `--dump DIR/NAME` and returns
/// the dump's manifest.
fn dump_manifest(dir: &Path, name: &str, workload: &Path, input: Option<&Path>) -> Value {
    let dump = dir.join(name);
    let mut args = vec![
        "run".to_string(),
        "--workload".to_string(),
        workload.to_string_lossy().into_owned(),
        "-q".to_string(),
        "--dump".to_string(),
        dump.to_string_lossy().into_owned(),
    ];
    if let Some(input) = input {
        args.push("--input".to_string());
        args.push(input.to_string_lossy().into_owned());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    run_ok(&args);
    read_json(&dump.join("manifest.json"))
}

/// An ONNX model of `tests/data/onnx/` run on its committed input.
fn onnx_manifest(dir: &Path, case: &str) -> Value {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/onnx");
    dump_manifest(
        dir,
        case,
        &data.join(format!("{case}.onnx")),
        Some(&data.join(format!("{case}.input.npy"))),
    )
}

#[test]
fn dump_manifest_says_a_clamp_came_from_an_onnx_integer_clip() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let m = onnx_manifest(dir.path(), "qlinearconv_s8_clip");
    assert_eq!(m["schema_version"], 2);
    assert_eq!(m["float_input_rule"], "quantize_linear_float32");
    let conv = &m["layers"][0];
    assert_eq!(conv["op"], "conv2d");
    // The integer Clip narrowed the int8 range; no activation says so.
    assert_eq!(conv["activation"], "none");
    assert_eq!(conv["clamp_rule"], "clip");
    assert_eq!(conv["output_stage"]["clamp_min"], -68);
    assert_eq!(conv["output_stage"]["clamp_max"], 77);
    assert_eq!(conv["output_stage"]["requant"]["rule"], "float");
    assert!(conv.get("tflite_path").is_none());
}

#[test]
fn dump_manifest_names_the_add_rule_and_second_input() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let m = onnx_manifest(dir.path(), "qdq_add_residual_u8");
    let layers = m["layers"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    let add = layers.last().unwrap_or(&Value::Null);
    assert_eq!(add["op"], "add");
    assert_eq!(add["add_rule"], "qlinear_add");
    assert_eq!(add["inputs"], serde_json::json!(["n_Conv_42", "n_Conv_20"]));
    assert_eq!(add["second_input"]["file"], "02_n_Add_56.input2.npy");
    assert_eq!(add["second_input"]["shape"], serde_json::json!([4, 8, 8]));
    assert_eq!(
        add["second_input"]["quant"],
        serde_json::json!({"mode": "affine", "dtype": "uint8", "scale": 0.056857556, "zero_point": 0})
    );
}

#[test]
fn dump_manifest_names_the_average_pool_kernel() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let window = onnx_manifest(dir.path(), "qdq_avgpool_u8_include_pad");
    let pool = &window["layers"][0];
    assert_eq!(pool["op"], "qlinear_avg_pool");
    assert_eq!(pool["count_include_pad"], true);
    assert_eq!(pool["average_rule"], "window");
    assert_eq!(
        pool["pool"],
        serde_json::json!({
            "kernel": [3, 3],
            "stride": [1, 1],
            "padding": {"top": 1, "left": 1, "bottom": 1, "right": 1},
            "ceil_mode": false
        })
    );
    let global = onnx_manifest(dir.path(), "qdq_gap_u8");
    let gap = &global["layers"][0];
    assert_eq!(gap["op"], "qlinear_avg_pool");
    assert_eq!(gap["average_rule"], "global");
    // int8, its output Q a graph output: ONNX Runtime leaves it unfused
    // (docs/onnx.md, item 6), QuantizeLinear of the float average.
    let unfused = onnx_manifest(dir.path(), "qdq_avgpool_s8_ceil_odd");
    let pool = &unfused["layers"][0];
    assert_eq!(pool["op"], "qlinear_avg_pool");
    assert_eq!(pool["average_rule"], "unfused_float");
}

#[test]
fn dump_manifest_writes_the_float_chain_requantisation() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let m = onnx_manifest(dir.path(), "convinteger_u8_chain");
    let conv = &m["layers"][0];
    assert_eq!(conv["clamp_rule"], "activation");
    assert_eq!(
        conv["output_stage"]["requant"],
        serde_json::json!({
            "rule": "float_chain",
            "scales": [0.0001633491],
            "offsets": [0.0063832933, 0.030821389, 0.18674958, 0.09278229, 0.23153329],
            "output_scale": 0.19102743
        })
    );
}

#[test]
fn dump_manifest_says_which_layers_took_tflites_legacy_multiplier_path() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    // int8 activations: the convolution takes the per-channel path, the fc
    // the legacy one, also with per-channel weight scales.
    let workload = dir.path().join("int8_tflite.toml");
    std::fs::write(
        &workload,
        r#"[network]
name = "int8_tflite"
description = "test: TFLite paths"
[numerics]
mode = "affine"
requant = "tflite"
activation_dtype = "int8"
[input]
shape = [2, 4, 4]
scale = 0.1
zero_point = -3
[[layer]]
name = "conv"
op = "conv2d"
out_channels = 2
kernel = 3
weight_scale = [0.01, 0.003]
output = { scale = 0.2, zero_point = 5 }
[[layer]]
name = "flat"
op = "flatten"
[[layer]]
name = "fc"
op = "fc"
out_features = 2
weight_scale = [0.007, 0.011]
output = { scale = 0.3, zero_point = -1 }
"#,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let m = dump_manifest(dir.path(), "int8", &workload, None);
    let (conv, fc) = (&m["layers"][0], &m["layers"][2]);
    assert_eq!(conv["tflite_path"], "per_channel");
    assert_eq!(fc["op"], "fc");
    assert_eq!(fc["tflite_path"], "legacy");
    assert_eq!(
        fc["output_stage"]["requant"],
        serde_json::json!({
            // float32(0.2 * 0.007) / 0.3 and float32(0.2 * 0.011) / 0.3; the
            // per-channel path would give 1282763573 and 2015771257.
            "rule": "tflite",
            "multipliers": [1282763576, 2015771227],
            "shifts": [-7, -7]
        })
    );
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let uint8 = dump_manifest(
        dir.path(),
        "u8",
        &data.join("tiny_affine_tflite.toml"),
        None,
    );
    for layer in uint8["layers"].as_array().map(Vec::as_slice).unwrap_or(&[]) {
        if layer.get("weights").is_some() {
            assert_eq!(layer["tflite_path"], "legacy", "{}", layer["name"]);
        }
    }
    let fixed = dump_manifest(dir.path(), "fx", &data.join("tiny_fixed8.toml"), None);
    assert_eq!(fixed["float_input_rule"], "fixed_point_float64");
}

/// `--engine cycle` ticks every component every cycle beside the event
/// scheduler: the same report byte for byte, on a PE array and behind an
/// FFE; a misspelt engine is refused with exit 2.
#[test]
fn the_cycle_engine_writes_the_event_engines_report() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    for (arch, workload) in [
        ("lu22_programmable", "digits_cnn"),
        ("ffe4_pe_array", "mobilenet_v1_025"),
    ] {
        let mut texts = Vec::new();
        for engine in ["event", "cycle"] {
            let json = dir.path().join(format!("{arch}-{engine}.json"));
            run_ok(&[
                "run",
                "--arch",
                arch,
                "--workload",
                workload,
                "--engine",
                engine,
                "-q",
                "--json",
                &json.to_string_lossy(),
            ]);
            texts.push(std::fs::read(&json).unwrap_or_else(|e| panic!("{e}")));
        }
        assert!(
            texts[0] == texts[1],
            "{arch} {workload}: the reports differ"
        );
    }
    let out = accsim()
        .args(["run", "--workload", "digits_cnn", "--engine", "step"])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("possible values: event, cycle"), "{stderr}");
}

/// Issue 15: the text report gives each PE-array layer's schedule and the
/// search that chose it, with the figures of the JSON's `schedule.search`
/// (docs/mapping.md's worked conv2: 446.7 M pJ against 476.5 M pJ, 6.7 %).
#[test]
fn run_text_shows_each_layers_schedule_and_search() {
    let out = run_ok(&[
        "run",
        "--workload",
        "cae_cnn",
        "--arch",
        "lu22_programmable",
    ]);
    let lines: Vec<&str> = out
        .lines()
        .skip_while(|l| *l != "schedules (docs/mapping.md):")
        .collect();
    assert_eq!(
        lines.get(2).copied(),
        Some(
            "  #1 conv2: weight_tile_major/2/dram (weights glb, inputs dram); searched on energy, \
             4 candidates: chosen 446.7 M pJ, 1,059,013 cycles, 438,784 DRAM words; runner-up \
             weight_tile_major/6/glb 476.5 M pJ, 1,168,212 cycles, 227,584 DRAM words; gap 6.7%"
        ),
        "{out}"
    );
    // Fully-connected layers have one schedule: no search.
    assert_eq!(
        lines.last().copied(),
        Some("  #7 fc2: pass_major (weights dram, inputs glb)"),
        "{out}"
    );
    // The rule's choices: no search; fixed weights come from the tables.
    let out = run_ok(&["run", "--workload", "cae_cnn", "--objective", "rule"]);
    assert!(
        out.contains("\n  #1 conv2: pass_major (weights lut, inputs glb)\n"),
        "{out}"
    );
}
