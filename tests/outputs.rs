//! Outputs and failures (issue 17, docs/testing.md "Outputs and failures"):
//! a closed stdout ends every command quietly with its files written; a full
//! stdout or output file is an error (exit 2) naming it; a full disk leaves no
//! partial file behind; paths that cannot be what they are given as are named
//! for what they are.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use assert_cmd::cargo::CommandCargoExt;

fn accsim() -> Command {
    let mut c = Command::cargo_bin("accsim").unwrap();
    c.current_dir(env!("CARGO_MANIFEST_DIR"));
    c
}

fn output(args: &[String]) -> Output {
    accsim().args(args).output().unwrap()
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

const SWEEP_SPEC: &str = "[sweep]\nname = \"pipe\"\narch = \"lu22_fixed\"\n\
    workloads = [\"kws_cnn_one_fstride4\"]\n[[axis]]\npath = \"arch.pe_array.rows\"\n\
    values = [4, 8, 13]\n";

/// One command of each family that prints to stdout, and the file each
/// also writes (which a closed stdout must not prevent).
fn families(tmp: &Path) -> Vec<(Vec<String>, Option<PathBuf>)> {
    let spec = tmp.join("spec.toml");
    std::fs::write(&spec, SWEEP_SPEC).unwrap();
    let report = tmp.join("kws.json");
    let o = output(&strings(&[
        "run",
        "--workload",
        "kws_cnn_one_fstride4",
        "-q",
        "--json",
        report.to_str().unwrap(),
    ]));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let path = |name: &str| tmp.join(name);
    let s = |p: &Path| p.to_str().unwrap().to_string();
    vec![
        (strings(&["check", "mobilenet_v1_025"]), None),
        (strings(&["list"]), None),
        (
            vec![
                "run".into(),
                "--workload".into(),
                "kws_cnn_one_fstride4".into(),
                "--csv".into(),
                s(&path("run.csv")),
            ],
            Some(path("run.csv")),
        ),
        (
            vec!["sweep".into(), s(&spec), "--out".into(), s(&path("sweep"))],
            Some(path("sweep/results.csv")),
        ),
        (vec!["sweep".into(), s(&spec), "--dry-run".into()], None),
        (
            vec![
                "plot".into(),
                "--report".into(),
                s(&report),
                "--out".into(),
                s(&path("layers.svg")),
            ],
            Some(path("layers.svg")),
        ),
        (
            vec![
                "precision".into(),
                "--workload".into(),
                "kws_cnn_one_fstride4_float".into(),
                "--calib".into(),
                "2".into(),
                "--lambda".into(),
                "50".into(),
                "--iters".into(),
                "1".into(),
                "--out".into(),
                s(&path("precision")),
            ],
            Some(path("precision/study.json")),
        ),
    ]
}

#[test]
fn a_closed_stdout_ends_every_command_quietly_with_its_files_written() {
    let tmp = tempfile::tempdir().unwrap();
    for (args, file) in families(tmp.path()) {
        // The reader is gone before the command prints anything: every
        // write to stdout meets a closed pipe (`accsim ... | head -0`).
        let mut child = accsim()
            .args(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let o = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(0), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        if let Some(f) = file {
            assert!(f.is_file(), "{args:?}: {} not written", f.display());
        }
    }
}

#[test]
fn a_full_stdout_is_an_error_naming_stdout() {
    let tmp = tempfile::tempdir().unwrap();
    for (args, _) in families(tmp.path()) {
        let full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap();
        let o = accsim()
            .args(&args)
            .stdout(Stdio::from(full))
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        // The last line (a sweep reports progress on stderr before it).
        assert_eq!(
            err.lines().last(),
            Some("error: cannot write stdout: No space left on device (os error 28)"),
            "{args:?}"
        );
    }
}

#[test]
fn output_files_on_a_full_device_are_errors_naming_them() {
    for flag in ["--json", "--csv", "--trace"] {
        let o = output(&strings(&[
            "run",
            "--workload",
            "kws_cnn_one_fstride4",
            "-q",
            flag,
            "/dev/full",
        ]));
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{flag}: {err}");
        assert_eq!(
            err.trim_end(),
            "error: cannot write /dev/full: No space left on device (os error 28)",
            "{flag}"
        );
    }
}

/// A tmpfs of `kib` KiB mounted for one test (needs root, as CI and the
/// development machines run); unmounted when dropped.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(kib: u32) -> Option<SmallDisk> {
        let dir = tempfile::tempdir().unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={kib}k"), "tmpfs"])
            .arg(dir.path())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then_some(SmallDisk { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn entries(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

#[test]
fn a_full_disk_leaves_no_partial_trace_dump_or_report() {
    let Some(disk) = SmallDisk::mount(32) else {
        // Without root there is no small disk to fill; the same paths are
        // covered in-process by src/atomic.rs's unit tests.
        eprintln!("skipped: `mount -t tmpfs` needs root");
        return;
    };
    let at = |name: &str| disk.path().join(name).to_str().unwrap().to_string();
    // Each output is larger than the disk (the dump's .npy files, the
    // trace's megabytes, the JSON report's tens of kilobytes).
    let cases = [
        ("--dump", at("dump"), "/input.npy: I/O error"),
        ("--trace", at("cae.vcd"), ""),
        ("--json", at("r.json"), ""),
    ];
    for (flag, path, file) in cases {
        let workload = if flag == "--trace" {
            "cae_cnn"
        } else {
            "mobilenet_v1_025"
        };
        let o = output(&strings(&[
            "run",
            "--workload",
            workload,
            "-q",
            flag,
            &path,
        ]));
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{flag}: {err}");
        // The path as given, never the temporary's name.
        assert_eq!(
            err.trim_end(),
            format!("error: cannot write {path}{file}: No space left on device (os error 28)"),
            "{flag}"
        );
        assert_eq!(disk.entries(), Vec::<String>::new(), "{flag} left files");
    }
}

#[test]
fn paths_that_are_not_what_they_are_given_as_say_what_they_are() {
    let tmp = tempfile::tempdir().unwrap();
    let fifo = tmp.path().join("pipe");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let dir = tmp.path().to_str().unwrap().to_string();
    let fifo = fifo.to_str().unwrap().to_string();
    let cases = [
        (
            strings(&["run", "--workload", &dir]),
            format!(
                "error: {dir}: is a directory, not a file (given to --workload); valid: a \
                 workload file (.toml, .onnx or .csv) or a shipped workload name"
            ),
        ),
        (
            strings(&["run", "--workload", "cae_cnn", "--arch", &fifo]),
            format!(
                "error: {fifo}: is a FIFO (named pipe), not a file (given to --arch); valid: an \
                 architecture .toml file or a shipped architecture name"
            ),
        ),
        (
            strings(&["run", "--workload", "/dev/null"]),
            "error: /dev/null: is a device, not a file (given to --workload); valid: a workload \
             file (.toml, .onnx or .csv) or a shipped workload name"
                .to_string(),
        ),
    ];
    for (args, want) in cases {
        let o = output(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert_eq!(String::from_utf8_lossy(&o.stderr).trim_end(), want);
    }

    // An output under a regular file: refused before the run, naming it.
    let file = tmp.path().join("somefile");
    std::fs::write(&file, "x").unwrap();
    let json = file.join("r.json");
    let o = output(&strings(&[
        "run",
        "--workload",
        "kws_cnn_one_fstride4",
        "-q",
        "--json",
        json.to_str().unwrap(),
    ]));
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&o.stderr).trim_end(),
        format!(
            "error: cannot write {}: {} is a file, not a directory; valid: a path whose parent \
             directories are directories (or do not exist yet)",
            json.display(),
            file.display()
        )
    );

    // A picture into a place the OS refuses: the path and the OS's reason.
    let report = tmp.path().join("kws.json");
    let o = output(&strings(&[
        "run",
        "--workload",
        "kws_cnn_one_fstride4",
        "-q",
        "--json",
        report.to_str().unwrap(),
    ]));
    assert!(o.status.success());
    let o = output(&strings(&[
        "plot",
        "--report",
        report.to_str().unwrap(),
        "--out",
        "/proc/accsim.png",
    ]));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert_eq!(
        err.trim_end(),
        "error: cannot write /proc/accsim.png: No such file or directory (os error 2)"
    );
}

#[test]
fn a_dump_replaces_an_earlier_dump_whole_and_refuses_other_directories() {
    let tmp = tempfile::tempdir().unwrap();
    let dump = tmp.path().join("dump");
    let run = |dir: &Path| {
        output(&strings(&[
            "run",
            "--workload",
            "kws_cnn_one_fstride4",
            "-q",
            "--dump",
            dir.to_str().unwrap(),
        ]))
    };
    assert!(run(&dump).status.success());
    let count = std::fs::read_dir(&dump).unwrap().count();
    std::fs::write(dump.join("stale.npy"), "x").unwrap();
    assert!(run(&dump).status.success());
    assert!(!dump.join("stale.npy").exists());
    assert_eq!(std::fs::read_dir(&dump).unwrap().count(), count);
    // Nothing else is left beside it (no temporaries, no old copy).
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 1);

    let mine = tmp.path().join("mine");
    std::fs::create_dir(&mine).unwrap();
    std::fs::write(mine.join("notes.txt"), "keep").unwrap();
    let o = run(&mine);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&o.stderr).trim_end(),
        format!(
            "error: {}: field `--dump`: exists and holds files but no manifest.json, so it is \
             not an earlier dump (a dump replaces its directory whole); valid: a new or empty \
             directory, or an earlier dump",
            mine.display()
        )
    );
    assert_eq!(
        std::fs::read_to_string(mine.join("notes.txt")).unwrap(),
        "keep"
    );
}
