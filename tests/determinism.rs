//! The determinism contract (docs/testing.md, "Determinism"): the same
//! command gives a byte-identical JSON report run after run, whatever the
//! size of the rayon thread pool (`RAYON_NUM_THREADS`) that the loaders and
//! generators use.
//!
//! Every shipped format is covered: TOML workloads in both numeric modes
//! (one with `[float]` calibration, which runs the float network in
//! parallel), an ONNX model and a SCALE-Sim topology, on both shipped
//! architectures.

use std::path::{Path, PathBuf};

use assert_cmd::Command;

mod common;
use common::first_difference;

/// (workload, arch): what runs.
const CASES: &[(&str, &str)] = &[
    ("cae_cnn", "lu22_fixed"),
    ("cae_cnn:pose", "lu22_programmable"),
    ("ic_cifar10", "lu22_fixed"),
    ("mobilenet_v1_025", "lu22_fixed"),
    ("kws_cnn_one_fstride4_float", "lu22_programmable"),
    ("workloads/digits_cnn.onnx", "lu22_fixed"),
    ("workloads/scalesim_example.csv", "lu22_programmable"),
];

fn home() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs one case with `threads` rayon threads; returns the JSON report.
fn report(workload: &str, arch: &str, threads: usize, out: &Path) -> Vec<u8> {
    let workload = if workload.starts_with("workloads/") {
        home().join(workload).to_string_lossy().into_owned()
    } else {
        workload.to_string()
    };
    let output = Command::cargo_bin("accsim")
        .unwrap_or_else(|e| panic!("accsim binary: {e}"))
        .env("RAYON_NUM_THREADS", threads.to_string())
        .args([
            "run",
            "-q",
            "--workload",
            &workload,
            "--arch",
            arch,
            "--json",
        ])
        .arg(out)
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        output.status.success(),
        "{workload} on {arch}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    std::fs::read(out).unwrap_or_else(|e| panic!("{}: {e}", out.display()))
}

#[test]
fn reports_are_byte_identical_across_runs_and_thread_counts() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    for (i, &(workload, arch)) in CASES.iter().enumerate() {
        let mut first: Option<(String, Vec<u8>)> = None;
        for threads in [1, 2] {
            for run in 0..2 {
                let label = format!("RAYON_NUM_THREADS={threads}, run {}", run + 1);
                let out = dir.path().join(format!("{i}_{threads}_{run}.json"));
                let bytes = report(workload, arch, threads, &out);
                assert!(
                    bytes.len() > 100,
                    "{workload}: a report of {} bytes",
                    bytes.len()
                );
                match &first {
                    None => first = Some((label, bytes)),
                    Some((first_label, expected)) => assert!(
                        *expected == bytes,
                        "{workload} on {arch}: the report of {label} differs from that of {first_label} at {}",
                        first_difference(expected, &bytes)
                    ),
                }
            }
        }
    }
}
