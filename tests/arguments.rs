//! Command-line values (issue 17): every numeric flag is checked where the
//! file's field is, with the flag and the valid range in the message (no
//! abort on `--frames 4294967295`, no silent `-j 0`), and inputs that used
//! to be accepted silently are refused naming what is wrong: NaN or infinite
//! float inputs, a `--trace-layers` selection of no layer, a `plot --window`
//! past the end of the trace.

use std::path::Path;
use std::process::Command;

use assert_cmd::cargo::CommandCargoExt;
use ndarray::Array3;
use ndarray_npy::WriteNpyExt;

fn accsim() -> Command {
    let mut c = Command::cargo_bin("accsim").unwrap();
    c.current_dir(env!("CARGO_MANIFEST_DIR"));
    c
}

/// Runs `accsim args`: (exit code, stderr without its final newline).
fn cli(args: &[&str]) -> (Option<i32>, String) {
    let o = accsim().args(args).output().unwrap();
    (
        o.status.code(),
        String::from_utf8_lossy(&o.stderr).trim_end().to_string(),
    )
}

fn refused(args: &[&str], want: &str) {
    let (code, err) = cli(args);
    assert_eq!(code, Some(2), "{args:?}: {err}");
    assert_eq!(err, want, "{args:?}");
}

#[test]
fn numeric_flags_are_checked_like_the_files_fields() {
    let frames = |n: &str| {
        vec![
            "run",
            "--arch",
            "ffe4_nvdla_c",
            "--workload",
            "mobilenet_v1_025",
            "-q",
            "--frames",
            n,
        ]
        .into_iter()
        .map(String::from)
        .collect::<Vec<_>>()
    };
    for n in ["0", "65537", "4294967295"] {
        let args = frames(n);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        refused(
            &args,
            &format!(
                "error: --frames: is {n}; valid: 1 to 65536 frames (the range of [system] \
                 stream_frames)"
            ),
        );
    }
    for j in ["0", "1025"] {
        refused(
            &["sweep", "sweeps/lu22.toml", "--dry-run", "-j", j],
            &format!("error: -j: is {j}; valid: 1 to 1024 worker threads"),
        );
        refused(
            &[
                "precision",
                "--workload",
                "kws_cnn_one_fstride4_float",
                "-j",
                j,
            ],
            &format!("error: -j: is {j}; valid: 1 to 1024 worker threads"),
        );
    }
    refused(
        &[
            "precision",
            "--workload",
            "kws_cnn_one_fstride4_float",
            "--calib",
            "1000001",
        ],
        "error: --calib: is 1000001; valid: 1 to 1000000 samples (the range of [float] \
         samples), or a directory of inputs",
    );
    refused(
        &[
            "precision",
            "--workload",
            "kws_cnn_one_fstride4_float",
            "--iters",
            "0",
        ],
        "error: --iters: iterations_per_temperature is 0; valid: at least 1",
    );
}

fn write_npy(path: &Path, a: &Array3<f32>) {
    let f = std::fs::File::create(path).unwrap();
    a.write_npy(std::io::BufWriter::new(f)).unwrap();
}

#[test]
fn a_float_input_with_nan_or_infinity_is_refused_naming_the_first_bad_element() {
    let tmp = tempfile::tempdir().unwrap();
    // kws_cnn_one_fstride4 takes [1, 32, 40] (one feature map).
    for (value, name) in [
        (f32::NAN, "NaN"),
        (f32::INFINITY, "inf"),
        (f32::NEG_INFINITY, "-inf"),
    ] {
        let mut a = Array3::<f32>::zeros((1, 32, 40));
        a[[0, 3, 7]] = value;
        a[[0, 20, 1]] = value;
        let path = tmp.path().join("x.npy");
        write_npy(&path, &a);
        refused(
            &[
                "run",
                "--workload",
                "kws_cnn_one_fstride4",
                "-q",
                "--input",
                path.to_str().unwrap(),
            ],
            &format!(
                "error: {}: element 127 (index [0, 3, 7] of shape [1, 32, 40]) is {name}; \
                 valid: finite values (float inputs are quantised, and NaN or infinity has no \
                 quantised value)",
                path.display()
            ),
        );
    }
}

#[test]
fn a_trace_of_no_layer_is_refused_naming_the_layers() {
    let tmp = tempfile::tempdir().unwrap();
    let vcd = tmp.path().join("t.vcd");
    refused(
        &[
            "run",
            "--workload",
            "kws_cnn_one_fstride4",
            "-q",
            "--trace",
            vcd.to_str().unwrap(),
            "--trace-layers",
            "1,99",
        ],
        "error: --trace-layers: layer 99 does not exist: `kws_cnn_one_fstride4` has 5 layers; \
         valid: indices 0 to 4 (0 conv1, 1 lin, 2 dnn1, 3 dnn2, 4 softmax)",
    );
    assert!(!vcd.exists());
}

#[test]
fn a_plot_window_past_the_end_of_the_trace_is_refused_naming_its_last_timestamp() {
    let tmp = tempfile::tempdir().unwrap();
    let vcd = tmp.path().join("t.vcd");
    let (code, err) = cli(&[
        "run",
        "--workload",
        "kws_cnn_one_fstride4",
        "-q",
        "--trace",
        vcd.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(0), "{err}");
    let text = std::fs::read_to_string(&vcd).unwrap();
    let last: u64 = text
        .lines()
        .filter_map(|l| l.strip_prefix('#'))
        .filter_map(|t| t.parse().ok())
        .max()
        .unwrap();
    let png = tmp.path().join("p.png");
    let window = format!("{}:{}", last + 10, last + 1000);
    refused(
        &[
            "plot",
            "--trace",
            vcd.to_str().unwrap(),
            "--window",
            &window,
            "--out",
            png.to_str().unwrap(),
        ],
        &format!(
            "error: --window: {window} starts at or after the last timestamp of {} ({last}); \
             valid: a window starting before cycle {last}",
            vcd.display()
        ),
    );
    assert!(!png.exists());
    // A window that overlaps the end still draws.
    let (code, err) = cli(&[
        "plot",
        "--trace",
        vcd.to_str().unwrap(),
        "--window",
        &format!("{}:{}", last - 1000, last + 1000),
        "--out",
        png.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(0), "{err}");
    assert!(png.is_file());
}
