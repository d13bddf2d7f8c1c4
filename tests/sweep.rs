//! Sweeps (issue 6): determinism for any -j, shards merged equal to an
//! unsharded run byte for byte, survival of SIGKILL with --resume, and
//! errors for bad specs. Small sweeps over the KWS network (milliseconds a
//! point) keep each test to a few seconds.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::cargo::CommandCargoExt;

fn accsim() -> Command {
    let mut c = Command::cargo_bin("accsim").unwrap();
    c.current_dir(env!("CARGO_MANIFEST_DIR"));
    c
}

/// A 24-point sweep: array rows x GLB size x weight store x sparsity, with
/// one impossible value (rows = 0) recorded as invalid.
const SPEC: &str = r#"
[sweep]
name = "kws_test"
arch = "lu22_programmable"
workloads = ["kws_cnn_one_fstride4"]
constraints = ["area_mm2 <= 11"]
objectives = [["area_mm2", "tops"], ["area_mm2", "energy_pj"], ["area_mm2", "tops", "energy_pj"]]

[[axis]]
path = "arch.pe_array.rows"
values = [0, 4, 13]

[[axis]]
path = "arch.glb.capacity_kib"
values = [16, 108]

[[axis]]
path = "arch.pe_array.weight_store"
values = ["fixed", "programmable"]

[[axis]]
path = "workload.defaults.weights.sparsity"
values = [0.0, 0.5]

[plot]
series = "weight_store"
marker = "rows"

[[budget]]
metric = "area_mm2"
limits = [4, 11]
objectives = ["tops", "energy_pj"]
baseline = { weight_store = "programmable" }

[[compare]]
axis = "weight_store"
baseline = "programmable"
metrics = ["energy_pj", "cycles"]
"#;

fn write_spec(dir: &Path, text: &str) -> PathBuf {
    let p = dir.join("spec.toml");
    std::fs::write(&p, text).unwrap();
    p
}

fn sweep(spec: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    let o = accsim()
        .arg("sweep")
        .arg(spec)
        .arg("--out")
        .arg(out)
        .args(extra)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "sweep {extra:?} failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

/// The final outputs (everything but the streams) of a sweep directory.
fn finals(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy();
            !n.starts_with("points")
        })
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect();
    out.sort();
    out
}

fn assert_same(a: &[(String, Vec<u8>)], b: &[(String, Vec<u8>)]) {
    let names = |v: &[(String, Vec<u8>)]| v.iter().map(|x| x.0.clone()).collect::<Vec<_>>();
    assert_eq!(names(a), names(b));
    for ((n, x), (_, y)) in a.iter().zip(b) {
        assert!(x == y, "{n} differs");
    }
}

#[test]
fn results_are_identical_for_any_jobs_and_merged_shards() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = write_spec(tmp.path(), SPEC);
    let one = tmp.path().join("j1");
    let o = sweep(&spec, &one, &["-j", "1"]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("4 infeasible, 8 invalid, 12 ok"), "{text}");
    let two = tmp.path().join("j2");
    sweep(&spec, &two, &["-j", "2"]);
    let reference = finals(&one);
    assert!(
        reference
            .iter()
            .any(|(n, _)| n == "plot_tops_vs_area_mm2.png")
    );
    assert!(
        reference
            .iter()
            .any(|(n, _)| n == "pareto_area_mm2-tops-energy_pj.csv")
    );
    assert_same(&reference, &finals(&two));

    // Three shards into one directory, in reverse order, then merged.
    let sharded = tmp.path().join("sharded");
    for i in [2, 0, 1] {
        let o = sweep(&spec, &sharded, &["--shard", &format!("{i}/3"), "-j", "2"]);
        assert!(String::from_utf8_lossy(&o.stdout).contains("accsim merge"));
    }
    let o = accsim().arg("merge").arg(&sharded).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_same(&reference, &finals(&sharded));

    // Two shards in separate directories merged into a third.
    let (a, b, m) = (
        tmp.path().join("a"),
        tmp.path().join("b"),
        tmp.path().join("m"),
    );
    sweep(&spec, &a, &["--shard", "0/2"]);
    let o = accsim()
        .arg("merge")
        .arg(&a)
        .arg("--out")
        .arg(&m)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "a missing shard is an error");
    assert!(String::from_utf8_lossy(&o.stderr).contains("have no record"));
    sweep(&spec, &b, &["--shard", "1/2"]);
    let o = accsim()
        .arg("merge")
        .arg(&a)
        .arg(&b)
        .arg("--out")
        .arg(&m)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_same(&reference, &finals(&m));

    // The results: every point once, by index; invalid ones with a reason.
    let csv = std::fs::read_to_string(one.join("results.csv")).unwrap();
    let rows: Vec<&str> = csv.lines().skip(1).collect();
    assert_eq!(rows.len(), 24);
    for (i, r) in rows.iter().enumerate() {
        assert!(r.starts_with(&format!("{i},")), "{r}");
    }
    assert!(rows[0].contains("invalid") && rows[0].contains("field `rows`: is 0"));
    assert!(csv.lines().next().unwrap().contains(",area_mm2,"));
    let tables = std::fs::read_to_string(one.join("tables.md")).unwrap();
    assert!(tables.contains("| fixed | energy_pj |"), "{tables}");
}

#[test]
fn sigkill_then_resume_leaves_every_point_exactly_once() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = write_spec(tmp.path(), SPEC);
    let out = tmp.path().join("out");
    let stream = out.join("points.jsonl");
    let mut child = accsim()
        .arg("sweep")
        .arg(&spec)
        .arg("--out")
        .arg(&out)
        .args(["-j", "1"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Kill once a few points are on disk (Child::kill is SIGKILL on Unix).
    let started = Instant::now();
    loop {
        let lines = std::fs::read_to_string(&stream)
            .map(|t| t.lines().count())
            .unwrap_or(0);
        if lines >= 3 || started.elapsed() > Duration::from_secs(60) {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap();
    let status = child.wait().unwrap();
    let done_before = std::fs::read_to_string(&stream).unwrap().lines().count();
    assert!(!status.success() || done_before == 24);
    // A write cut short by the kill: half a record without its newline.
    let mut bytes = std::fs::read(&stream).unwrap();
    let first_line_end = bytes.iter().position(|&b| b == b'\n').unwrap();
    let torn = bytes[..first_line_end / 2].to_vec();
    bytes.extend_from_slice(&torn);
    std::fs::write(&stream, bytes).unwrap();

    // Without --resume the directory is refused; the killed run's lock is
    // taken over (the kernel released it), with a warning naming it.
    let o = accsim()
        .arg("sweep")
        .arg(&spec)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("--resume"), "{err}");
    if !status.success() {
        assert!(
            err.contains(&format!(
                "warning: {}: taking over the lock of pid {} on host {}, which ended without \
                 releasing it (killed?)",
                out.join("points.lock").display(),
                child.id(),
                host()
            )),
            "{err}"
        );
    }

    let o = sweep(&spec, &out, &["--resume", "-j", "2"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("cut-off last line dropped"), "{err}");
    for name in ["points.jsonl", "results.jsonl"] {
        let text = std::fs::read_to_string(out.join(name)).unwrap();
        let mut indices: Vec<u64> = text
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                v["index"].as_u64().unwrap()
            })
            .collect();
        indices.sort_unstable();
        assert_eq!(indices, (0..24).collect::<Vec<_>>(), "{name}");
    }
    let csv = std::fs::read_to_string(out.join("points.csv")).unwrap();
    assert_eq!(csv.lines().count(), 25, "header + one row per point");

    // And the outcome is the uninterrupted run's, byte for byte.
    let clean = tmp.path().join("clean");
    sweep(&spec, &clean, &[]);
    assert_same(&finals(&clean), &finals(&out));

    // A second resume has nothing left to do.
    let o = sweep(&spec, &out, &["--resume"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("0 points evaluated"));
}

fn host() -> String {
    gethostname::gethostname().to_string_lossy().into_owned()
}

/// 216 points over the KWS network: 3 s with `-j 1` on the 2-core machine,
/// long enough for a second command to meet the first one running.
const SLOW_SPEC: &str = r#"
[sweep]
name = "kws_slow"
arch = "lu22_programmable"
workloads = ["kws_cnn_one_fstride4"]

[[axis]]
path = "arch.pe_array.rows"
values = [4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 16]

[[axis]]
path = "arch.glb.capacity_kib"
values = [16, 32, 108]

[[axis]]
path = "arch.pe_array.weight_store"
values = ["fixed", "programmable"]

[[axis]]
path = "workload.defaults.weights.sparsity"
values = [0.0, 0.25, 0.5]
"#;
const SLOW_POINTS: usize = 216;

fn spawn_sweep(spec: &Path, out: &Path, extra: &[&str]) -> std::process::Child {
    accsim()
        .arg("sweep")
        .arg(spec)
        .arg("--out")
        .arg(out)
        .args(["-j", "1", "-q"])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Every point of a finished sweep once, in `points.jsonl` and `results.csv`.
fn assert_complete(out: &Path, points: usize) {
    let stream = std::fs::read_to_string(out.join("points.jsonl")).unwrap();
    assert_eq!(stream.lines().count(), points);
    let csv = std::fs::read_to_string(out.join("results.csv")).unwrap();
    assert_eq!(
        csv.lines().count(),
        points + 1,
        "header + one row per point"
    );
}

fn holder_message(out: &Path, pid: u32) -> String {
    format!(
        "error: {}: {} is being written by pid {pid} on host {}; valid: wait for that run to \
         finish (or stop it), or give another --out",
        out.join("points.lock").display(),
        out.display(),
        host()
    )
}

/// Issue 17, first case: B `--resume`s the directory of a running sweep A
/// and is killed a second later. Before the lock, B rewrote the stream
/// under A, and A exited 0 with most of its points lost.
#[test]
fn a_second_writer_on_a_running_sweep_is_refused_naming_the_holder() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = write_spec(tmp.path(), SLOW_SPEC);
    let out = tmp.path().join("out");
    let a = spawn_sweep(&spec, &out, &[]);
    let started = Instant::now();
    while std::fs::read_to_string(out.join("points.jsonl")).map_or(0, |t| t.lines().count()) < 2
        && started.elapsed() < Duration::from_secs(60)
    {
        std::thread::sleep(Duration::from_millis(5));
    }
    let mut b = spawn_sweep(&spec, &out, &["--resume"]);
    // A merge into the same directory is a writer too.
    let m = accsim()
        .arg("merge")
        .arg(&out)
        .arg("--partial")
        .output()
        .unwrap();
    std::thread::sleep(Duration::from_secs(1));
    let _ = b.kill();
    let b = b.wait_with_output().unwrap();
    assert_eq!(b.status.code(), Some(2), "B was not refused");
    assert_eq!(
        String::from_utf8_lossy(&b.stderr).trim_end(),
        holder_message(&out, a.id())
    );
    assert_eq!(m.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&m.stderr).trim_end(),
        holder_message(&out, a.id())
    );
    let a = a.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&a.stderr);
    assert!(a.status.success(), "{err}");
    assert!(
        err.contains(&format!("{SLOW_POINTS} points evaluated")),
        "{err}"
    );
    assert_complete(&out, SLOW_POINTS);
}

/// Issue 17, second case: two `--resume` at once. Before the lock both
/// simulated everything and the first to finish wrote an incomplete set.
#[test]
fn of_two_resumes_at_once_one_runs_and_the_other_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = write_spec(tmp.path(), SLOW_SPEC);
    let out = tmp.path().join("out");
    let first = spawn_sweep(&spec, &out, &["--resume"]);
    let second = spawn_sweep(&spec, &out, &["--resume"]);
    let pids = [first.id(), second.id()];
    let outputs = [
        first.wait_with_output().unwrap(),
        second.wait_with_output().unwrap(),
    ];
    let codes: Vec<Option<i32>> = outputs.iter().map(|o| o.status.code()).collect();
    let winner = match codes[..] {
        [Some(0), Some(2)] => 0,
        [Some(2), Some(0)] => 1,
        _ => panic!("exit codes {codes:?}: one run must be refused"),
    };
    assert_eq!(
        String::from_utf8_lossy(&outputs[1 - winner].stderr).trim_end(),
        holder_message(&out, pids[winner])
    );
    assert_complete(&out, SLOW_POINTS);
}

#[test]
fn bad_specs_exit_2_with_file_line_and_what_is_valid() {
    let tmp = tempfile::tempdir().unwrap();
    let cases: [(&str, &str); 4] = [
        (
            "objectives = [[\"area_mm2\", \"rows\"]]\n",
            "field `objectives`",
        ),
        (
            "objectives = [[\"area_mm2\", \"accuracy_drop\"]]\n",
            "precision",
        ),
        ("[plot]\nseries = \"rows\"\n", "valid: workload"),
        (
            "constraints = [\"area_mm2 = 3\"]\n",
            "valid: `METRIC <= NUMBER`",
        ),
    ];
    for (i, (tail, want)) in cases.iter().enumerate() {
        let head = "[sweep]\nname = \"bad\"\narch = \"lu22_fixed\"\nworkloads = [\"kws_cnn_one_fstride4\"]\n";
        let text = format!("{head}{tail}");
        let spec = tmp.path().join(format!("bad{i}.toml"));
        std::fs::write(&spec, text).unwrap();
        let o = accsim()
            .arg("sweep")
            .arg(&spec)
            .arg("--out")
            .arg(tmp.path().join("o"))
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "case {i}: {err}");
        assert!(err.contains(&format!("bad{i}.toml:")), "case {i}: {err}");
        assert!(err.contains(want), "case {i}: {err}");
    }
    // Every point invalid: exit 2 with the first reason.
    let spec = write_spec(
        tmp.path(),
        "[sweep]\nname = \"none\"\narch = \"lu22_fixed\"\nworkloads = [\"kws_cnn_one_fstride4\"]\n\
         [[axis]]\npath = \"arch.pe_array.colss\"\nvalues = [1, 2]\n",
    );
    let o = accsim()
        .arg("sweep")
        .arg(&spec)
        .arg("--out")
        .arg(tmp.path().join("none"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("unknown field `colss`"), "{err}");
}

/// A GLB too small for a layer's working set is an `invalid` point whose
/// reason is the up-front refusal; on main the 1 KiB point ended as
/// `error` (the internal "GLB deadlock", exit 1) and the 6 KiB one as
/// `invalid` although it runs.
#[test]
fn a_glb_too_small_to_schedule_is_an_invalid_point_naming_the_least_glb() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = write_spec(
        tmp.path(),
        r#"
[sweep]
name = "glb_refusals"
arch = "lu22_fixed"
workloads = ["ic_cifar10"]
objectives = [["area_mm2", "energy_pj"]]

[[axis]]
path = "arch.glb.capacity_kib"
values = [1, 6, 108]
"#,
    );
    let out = tmp.path().join("out");
    let o = sweep(&spec, &out, &["-j", "1"]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("points: 1 invalid, 2 ok"), "{text}");
    let csv = std::fs::read_to_string(out.join("points.csv")).unwrap();
    let refused: Vec<&str> = csv.lines().filter(|l| l.contains(",invalid,")).collect();
    assert_eq!(refused.len(), 1, "{csv}");
    assert!(refused[0].starts_with("0,"), "{csv}");
    assert!(
        refused[0].contains("layer `conv1` (#0, conv2d) cannot be scheduled")
            && refused[0].contains("a GLB of at least 1152 bytes"),
        "{csv}"
    );
}
