//! Golden reports (docs/testing.md, "Golden reports"): the JSON report of
//! every shipped (architecture, workload) pair is committed under
//! `tests/golden/`, and any change in a count, a cycle or an energy fails
//! here until the snapshots are updated on purpose:
//!
//! ```sh
//! ACCSIM_BLESS=1 cargo test --test golden
//! ```
//!
//! with the reason in the commit message. Pairs the CLI refuses (an FFE with
//! more fixed layers than the network has) are listed in
//! `tests/golden/refused.txt`, so a pair that starts or stops running also
//! fails. Shipped files are found by listing `arch_configs/` and
//! `workloads/`: a new one without a snapshot fails until it is blessed.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use rayon::prelude::*;

mod common;
use common::first_difference;

fn home() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// File stems in `dir` whose names end with one of `extensions`, sorted.
fn shipped(dir: &Path, extensions: &[&str]) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|entry| entry.ok())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| extensions.iter().any(|ext| name.ends_with(ext)))
        .collect();
    names.sort();
    names
}

/// What one pair gave: the normalised report, or the refusal.
enum Outcome {
    Report(String),
    Refused,
}

/// Runs `workload` (a file name in `workloads/`) on `arch` (a stem).
fn run_pair(arch: &str, workload: &str, out: &Path) -> Outcome {
    let workload_path = home().join("workloads").join(workload);
    let output = Command::cargo_bin("accsim")
        .unwrap_or_else(|e| panic!("accsim binary: {e}"))
        .args(["run", "-q", "--arch", arch, "--workload"])
        .arg(&workload_path)
        .arg("--json")
        .arg(out)
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    match output.status.code() {
        Some(0) => {
            let text =
                std::fs::read_to_string(out).unwrap_or_else(|e| panic!("{}: {e}", out.display()));
            // Reports name their input files by absolute path: the snapshot
            // holds them relative to the repository.
            let root = format!("{}/", home().display());
            Outcome::Report(text.replace(&root, ""))
        }
        Some(2) => Outcome::Refused,
        code => panic!(
            "{workload} on {arch}: exit {code:?}, neither a report nor a refusal: {}",
            String::from_utf8_lossy(&output.stderr)
        ),
    }
}

#[test]
fn every_shipped_pair_reports_what_its_snapshot_holds() {
    let bless = std::env::var_os("ACCSIM_BLESS").is_some();
    let golden = home().join("tests/golden");
    let archs: Vec<String> = shipped(&home().join("arch_configs"), &[".toml"])
        .into_iter()
        .map(|name| name.trim_end_matches(".toml").to_string())
        .collect();
    let workloads = shipped(&home().join("workloads"), &[".toml", ".onnx", ".csv"]);
    assert!(
        archs.len() >= 11 && workloads.len() >= 14,
        "{archs:?} {workloads:?}"
    );
    let pairs: Vec<(String, String)> = archs
        .iter()
        .flat_map(|a| workloads.iter().map(move |w| (a.clone(), w.clone())))
        .collect();
    let scratch = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let outcomes: Vec<Outcome> = pairs
        .par_iter()
        .enumerate()
        .map(|(i, (a, w))| run_pair(a, w, &scratch.path().join(format!("{i}.json"))))
        .collect();

    let mut refused = String::new();
    let mut failures = Vec::new();
    let mut reports = 0;
    for ((arch, workload), outcome) in pairs.iter().zip(outcomes) {
        let Outcome::Report(text) = outcome else {
            refused.push_str(&format!("{arch} {workload}\n"));
            continue;
        };
        reports += 1;
        let path = golden.join(arch).join(format!("{workload}.json"));
        if bless {
            std::fs::create_dir_all(golden.join(arch)).unwrap_or_else(|e| panic!("{e}"));
            std::fs::write(&path, &text).unwrap_or_else(|e| panic!("{e}"));
            continue;
        }
        match std::fs::read_to_string(&path) {
            Ok(expected) if expected == text => {}
            Ok(expected) => failures.push(format!(
                "{workload} on {arch} differs from {}: {}",
                path.display(),
                first_difference(expected.as_bytes(), text.as_bytes())
            )),
            Err(_) => failures.push(format!(
                "{workload} on {arch}: no snapshot {}",
                path.display()
            )),
        }
    }
    let refused_path = golden.join("refused.txt");
    if bless {
        std::fs::write(&refused_path, &refused).unwrap_or_else(|e| panic!("{e}"));
    } else {
        let expected = std::fs::read_to_string(&refused_path).unwrap_or_default();
        if expected != refused {
            failures.push(format!(
                "the refused pairs changed ({}): {}",
                refused_path.display(),
                first_difference(expected.as_bytes(), refused.as_bytes())
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {reports} reports or the refusals differ; if the change is intended, \
         rerun with ACCSIM_BLESS=1 and say why in the commit message:\n{}",
        failures.len(),
        failures.join("\n")
    );
    // 82 pairs run when this was written; every shipped workload runs on
    // both LU22 architectures at least.
    assert!(reports >= 2 * workloads.len(), "{reports} reports");
}

/// PEs of a shipped architecture's array (`[pe_array]` rows x cols).
fn array_pes(arch: &str) -> Option<u64> {
    let text = std::fs::read_to_string(home().join("arch_configs").join(format!("{arch}.toml")))
        .unwrap_or_else(|e| panic!("{arch}: {e}"));
    let value: toml::Table = text.parse().unwrap_or_else(|e| panic!("{arch}: {e}"));
    let array = value.get("pe_array")?.as_table()?;
    Some((array.get("rows")?.as_integer()? * array.get("cols")?.as_integer()?) as u64)
}

/// Every PE-cycle of every layer in every snapshot has a cause: the causes
/// sum to PEs x cycles, and the total's to the layers'.
#[test]
fn every_snapshot_accounts_for_every_pe_cycle() {
    let golden = home().join("tests/golden");
    let mut checked = 0;
    for arch in shipped(&home().join("arch_configs"), &[".toml"]) {
        let arch = arch.trim_end_matches(".toml");
        let dir = golden.join(arch);
        for name in shipped(&dir, &[".json"]) {
            let text = std::fs::read_to_string(dir.join(&name)).unwrap_or_default();
            let report: serde_json::Value =
                serde_json::from_str(&text).unwrap_or_else(|e| panic!("{arch}/{name}: {e}"));
            let sum = |p: &serde_json::Value| -> u64 {
                let o = p
                    .as_object()
                    .unwrap_or_else(|| panic!("{arch}/{name}: {p}"));
                o.values().map(|v| v.as_u64().unwrap_or(u64::MAX)).sum()
            };
            let mut layers_total = 0;
            for layer in report["layers"].as_array().into_iter().flatten() {
                let p = &layer["pe_cycles"];
                if p.is_null() {
                    continue;
                }
                let pes = array_pes(arch).unwrap_or_else(|| panic!("{arch}: no [pe_array]"));
                let cycles = layer["cycles"].as_u64().unwrap_or_default();
                assert_eq!(sum(p), pes * cycles, "{arch}/{name} {}", layer["name"]);
                layers_total += sum(p);
                checked += 1;
            }
            let total = &report["total"]["pe_cycles"];
            if !total.is_null() {
                assert_eq!(sum(total), layers_total, "{arch}/{name} total");
            }
        }
    }
    assert!(checked > 500, "only {checked} layers had PE-cycles");
}
