//! The trained digits model (scripts/train_digits.py): its ONNX export and
//! its native workload file are the same network, so `accsim run` must give
//! identical reports and outputs for both; and accsim's predictions on the
//! test set must be ONNX Runtime's.

use std::path::{Path, PathBuf};

use accsim::reference;
use accsim::run::read_input;
use accsim::workload::TensorSource;
use accsim::workload::npy::read_npy_any;
use assert_cmd::Command;
use ndarray::Array3;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn test_input() -> PathBuf {
    let dir = root().join("workloads/inputs");
    let mut names: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("workloads/inputs")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("digits_test_0_"))
        })
        .collect();
    names.sort();
    names.pop().expect("a digits test input")
}

/// `accsim run` with a JSON report and a dump; returns the report without
/// the fields that name the file.
fn run_cli(workload: &Path, input: &Path, out: &Path) -> serde_json::Value {
    let json = out.join("report.json");
    Command::cargo_bin("accsim")
        .expect("binary")
        .current_dir(root())
        .args(["run", "--quiet", "--workload"])
        .arg(workload)
        .arg("--input")
        .arg(input)
        .arg("--json")
        .arg(&json)
        .arg("--dump")
        .arg(out.join("dump"))
        .assert()
        .success();
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(json).expect("report")).expect("json");
    let w = v["workload"].as_object_mut().expect("workload");
    for key in ["file", "description"] {
        w.remove(key);
    }
    v
}

#[test]
fn onnx_and_native_digits_models_give_identical_reports_and_outputs() {
    let input = test_input();
    let tmp = tempfile::tempdir().expect("tempdir");
    let (a, b) = (tmp.path().join("onnx"), tmp.path().join("toml"));
    let ra = run_cli(&root().join("workloads/digits_cnn.onnx"), &input, &a);
    let rb = run_cli(&root().join("workloads/digits_cnn.toml"), &input, &b);
    assert_eq!(ra, rb);
    assert_eq!(ra["layers"].as_array().map(Vec::len), Some(8));
    // Every tensor of the dump, byte for byte.
    let mut files: Vec<_> = std::fs::read_dir(a.join("dump"))
        .expect("dump")
        .filter_map(|e| e.ok().map(|e| e.file_name()))
        .filter(|n| n.to_string_lossy().ends_with(".npy"))
        .collect();
    files.sort();
    assert!(files.len() > 20, "{files:?}");
    for f in files {
        let x = std::fs::read(a.join("dump").join(&f)).expect("onnx dump file");
        let y = std::fs::read(b.join("dump").join(&f)).expect("native dump file");
        assert!(x == y, "{} differs", f.to_string_lossy());
    }
}

#[test]
fn digits_predictions_match_onnx_runtime_on_test_images() {
    let w = accsim::workload::load("workloads/digits_cnn.onnx").or_else(|_| {
        accsim::workload::load(
            root()
                .join("workloads/digits_cnn.onnx")
                .to_str()
                .expect("path"),
        )
    });
    let w = w.expect("digits model loads");
    let images =
        read_npy_any(&root().join("workloads/digits_cnn/test_digits_8x8.npy")).expect("test set");
    let images = images.to_i64().expect("uint8 images");
    let labels = read_npy_any(&root().join("workloads/digits_cnn/test_labels.npy"))
        .expect("labels")
        .to_i64()
        .expect("ints");
    let ort = read_npy_any(&root().join("workloads/digits_cnn/test_predictions_ort.npy"))
        .expect("ORT predictions")
        .to_i64()
        .expect("ints");
    assert_eq!(labels.len(), 450);
    // The first 40 test images (the whole set is slow in a debug build).
    let n = 40;
    let mut correct = 0;
    for i in 0..n {
        // scripts/train_digits.py: 4x4 pixel repetition, 3 channels.
        let img = &images[i * 64..(i + 1) * 64];
        let x = Array3::from_shape_fn((3, 32, 32), |(_, y, x)| img[(y / 4) * 8 + x / 4] as i16);
        let exec = reference::run(&w.network, x);
        let out = exec.tensor(TensorSource::Layer(w.network.layers.len() - 1));
        let mut best = 0;
        for (k, &v) in out.iter().enumerate() {
            if v > out.iter().nth(best).copied().unwrap_or(i16::MIN) {
                best = k;
            }
        }
        assert_eq!(
            best as i64, ort[i],
            "image {i}: accsim and ONNX Runtime disagree"
        );
        correct += usize::from(best as i64 == labels[i]);
    }
    assert!(correct >= n - 2, "{correct} of {n} correct");
    // The shipped ready-to-run input is test image 0.
    let first = read_input(&w, &test_input()).expect("input");
    let img = &images[0..64];
    assert!(
        first
            .indexed_iter()
            .all(|((_, y, x), &v)| i64::from(v) == img[(y / 4) * 8 + x / 4])
    );
}
