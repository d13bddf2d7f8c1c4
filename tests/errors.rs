//! Bad input: every case exits with code 2 and one message naming the file,
//! the line and column where there is one, the layer, the field and what would
//! be valid. Never a panic.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use ndarray::{Array1, Array3, Array4};
use ndarray_npy::WriteNpyExt;

const BASE: &str = r#"[network]
name = "t"
description = "test"

[numerics]
mode = "affine"

[input]
shape = [2, 6, 6]
"#;

fn accsim() -> Command {
    match Command::cargo_bin("accsim") {
        Ok(c) => c,
        Err(e) => panic!("accsim binary: {e}"),
    }
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap_or_else(|e| panic!("write {}: {e}", p.display()));
    p
}

fn write_npy<T: ndarray_npy::WritableElement, D: ndarray::Dimension>(
    path: &Path,
    a: &ndarray::Array<T, D>,
) {
    let f = std::fs::File::create(path).unwrap_or_else(|e| panic!("{e}"));
    a.write_npy(f).unwrap_or_else(|e| panic!("{e}"));
}

/// Runs `accsim ARGS`, expects exit code 2 and every fragment in stderr.
fn expect_error(args: &[&str], fragments: &[&str]) -> String {
    let out = accsim()
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        out.status.code(),
        Some(2),
        "args {args:?}\nstderr: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "one message expected: {stderr}");
    for f in fragments {
        assert!(stderr.contains(f), "missing {f:?} in: {stderr}");
    }
    stderr
}

fn check_workload(text: &str, fragments: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = write(dir.path(), "w.toml", text);
    let p = path.to_string_lossy().into_owned();
    let mut with_file = vec![p.as_str()];
    with_file.extend_from_slice(fragments);
    expect_error(&["check", &p], &with_file)
}

#[test]
fn toml_syntax_error_names_line_and_column() {
    check_workload(
        "[network\nname = \"x\"\n",
        &["w.toml:1:9", "unclosed table, expected `]`"],
    );
}

#[test]
fn unknown_key_is_an_error_with_the_valid_keys() {
    let text = format!(
        "{BASE}\n[[layer]]\nname = \"c\"\nop = \"conv2d\"\nout_channels = 4\nkernel = 3\ncolss = 3\n"
    );
    check_workload(
        &text,
        &[
            "w.toml:16:1",
            "unknown field `colss`",
            "expected one of",
            "`out_channels`",
        ],
    );
}

#[test]
fn wrong_type_names_the_expected_type() {
    let text = format!(
        "{BASE}\n[[layer]]\nname = \"c\"\nop = \"conv2d\"\nout_channels = \"many\"\nkernel = 3\n"
    );
    check_workload(
        &text,
        &[
            "w.toml:14:16",
            "layer `c`, field `out_channels`",
            "is the string \"many\"; valid: a positive integer (1 or more)",
        ],
    );
    let text = format!("{BASE}\n[[layer]]\nname = \"c\"\nop = \"convolution\"\n");
    check_workload(
        &text,
        &["w.toml:13:6", "unknown variant `convolution`", "`conv2d`"],
    );
    let text = format!(
        "{BASE}\n[[layer]]\nname = \"c\"\nop = \"conv2d\"\nout_channels = 4\nkernel = [3, 3, 3]\n"
    );
    check_workload(
        &text,
        &["w.toml:15:10", "an integer or a [height, width] array"],
    );
}

#[test]
fn kernel_larger_than_the_padded_input() {
    let text = format!(
        "{BASE}\n[[layer]]\nname = \"big\"\nop = \"conv2d\"\nout_channels = 4\nkernel = 9\npadding = 1\n"
    );
    check_workload(
        &text,
        &[
            "w.toml:15:10",
            "layer `big`",
            "field `kernel`",
            "9x9 is larger than the padded input 8x8",
            "(input 2x6x6, padding top 1, left 1, bottom 1, right 1)",
            "valid: a kernel of at most 8x8, or more padding",
        ],
    );
}

/// Issue 17: the padding was printed as Rust's `Padding { top: 0, ... }`.
#[test]
fn kernel_larger_than_the_unpadded_input_names_the_padding_in_words() {
    let text = format!(
        "{BASE}\n[[layer]]\nname = \"big\"\nop = \"conv2d\"\nout_channels = 4\nkernel = 9\n"
    );
    let stderr = check_workload(
        &text,
        &[
            "w.toml:15:10",
            "layer `big`, field `kernel`: 9x9 is larger than the padded input 6x6 (input 2x6x6, padding none); valid: a kernel of at most 6x6, or more padding",
        ],
    );
    assert!(!stderr.contains("Padding {"), "{stderr}");
}

/// Issue 17: a float where an integer count belongs said "expected i64"
/// without naming the field.
#[test]
fn a_fractional_channel_count_names_the_field_and_asks_for_a_positive_integer() {
    let text = format!(
        "{BASE}\n[[layer]]\nname = \"c\"\nop = \"conv2d\"\nout_channels = 128.5\nkernel = 3\n"
    );
    let stderr = check_workload(
        &text,
        &[
            "w.toml:14:16: layer `c`, field `out_channels`: is 128.5 (a number with a fraction or exponent); valid: a positive integer (1 or more)",
        ],
    );
    assert!(!stderr.contains("i64"), "{stderr}");
}

/// Issue 17: a duplicate key said only "duplicate key".
#[test]
fn a_duplicate_key_names_the_key_its_table_and_the_first_line() {
    let text = format!(
        "{BASE}\n[[layer]]\nname = \"c\"\nop = \"conv2d\"\nout_channels = 4\nkernel = 3\nkernel = 5\n"
    );
    check_workload(
        &text,
        &[
            "w.toml:16:1: duplicate key `kernel` in [[layer]] (line 11, layer `c`): first set on line 15; valid: each key once per table",
        ],
    );
    let text = BASE.replace("[input]", "[numerics]\nmode = \"affine\"\n\n[input]");
    check_workload(
        &text,
        &["w.toml:8:2: the table [numerics] is defined twice (first on line 5)"],
    );
}

/// Issue 17: a malformed .npy header printed the Python-literal parser's
/// multi-line ASCII art.
#[test]
fn a_malformed_npy_header_is_one_line_saying_what_is_valid() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let dict = b"{'descr': '<i1', 'fortran_order': False, 'shape': (4, 2, 3, 3 }";
    let mut header = dict.to_vec();
    header.resize(128 - 10 - 1, b' ');
    header.push(b'\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
    bytes.extend_from_slice(&header);
    bytes.extend_from_slice(&[0u8; 72]);
    std::fs::write(dir.path().join("bad.npy"), bytes).unwrap_or_else(|e| panic!("{e}"));
    let text = format!(
        "{BASE}\n[[layer]]\nname = \"c\"\nop = \"conv2d\"\nout_channels = 4\nkernel = 3\nweights = {{ file = \"bad.npy\" }}\n"
    );
    let path = write(dir.path(), "w.toml", &text);
    let p = path.to_string_lossy().into_owned();
    let stderr = expect_error(
        &["check", &p],
        &[
            "w.toml:16:20: layer `c`, field `weights`",
            "bad.npy: not a valid .npy file: its header is not a Python dict literal (syntax error at column 63 of `{'descr': '<i1', 'fortran_order': False, 'shape': (4, 2, 3, 3 }`); valid: a header like {'descr': '<i1', 'fortran_order': False, 'shape': (4, 2, 3, 3), }",
        ],
    );
    assert!(
        !stderr.contains("-->") && !stderr.contains("expected minus_sign"),
        "{stderr}"
    );
}

/// Issue 17: `clock_mhz = 1e308` printed the value as a 309-digit integer.
#[test]
fn a_huge_clock_is_printed_as_written_with_the_valid_range() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let good = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("arch_configs/lu22_fixed.toml"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let bad = good.replace("clock_mhz = 200.0", "clock_mhz = 1e308");
    assert_ne!(bad, good);
    let path = write(dir.path(), "a.toml", &bad);
    let p = path.to_string_lossy().into_owned();
    let stderr = expect_error(
        &["check", &p],
        &["a.toml:11:13: [arch], field `clock_mhz`: is 1e308; valid: 0.001 to 1000000"],
    );
    assert!(stderr.len() < 200, "{stderr}");
}

#[test]
fn channel_mismatch() {
    let text = format!(
        "{BASE}\n[[layer]]\nname = \"c\"\nop = \"conv2d\"\nin_channels = 3\nout_channels = 4\nkernel = 3\n"
    );
    check_workload(
        &text,
        &[
            "w.toml:14:15",
            "layer `c`",
            "field `in_channels`",
            "is 3, but the layer's input has 2 channels",
            "channel mismatch",
        ],
    );
    let text = format!(
        "{BASE}\n[[layer]]\nname = \"g\"\nop = \"conv2d\"\nout_channels = 3\nkernel = 3\ngroups = 2\n"
    );
    check_workload(
        &text,
        &[
            "layer `g`",
            "field `groups`",
            "2 groups must divide both the 2 input channels and the 3 output channels",
        ],
    );
}

#[test]
fn fc_input_size_mismatch() {
    let text = format!(
        "{BASE}\n[[layer]]\nname = \"fc\"\nop = \"fc\"\nin_features = 70\nout_features = 4\n"
    );
    check_workload(
        &text,
        &[
            "w.toml:14:15",
            "layer `fc`",
            "field `in_features`",
            "is 70, but the layer's input has 72 values",
            "FC input size mismatch",
        ],
    );
}

#[test]
fn fields_that_do_not_apply_and_bad_references() {
    let text = format!(
        "{BASE}\n[[layer]]\nname = \"p\"\nop = \"max_pool\"\nkernel = 2\nout_channels = 4\n"
    );
    check_workload(
        &text,
        &[
            "w.toml:15:16",
            "layer `p`",
            "field `out_channels`",
            "does not apply to op `max_pool`",
            "valid fields: kernel, stride, padding, ceil_mode",
        ],
    );
    let text = format!("{BASE}\n[[layer]]\nname = \"f\"\nop = \"flatten\"\ninput = \"conv9\"\n");
    check_workload(
        &text,
        &[
            "layer `f`",
            "field `input`",
            "no earlier layer named `conv9`; valid: input",
        ],
    );
    let text = format!(
        "{BASE}\n[[layer]]\nname = \"f\"\nop = \"flatten\"\n[[layer]]\nname = \"f\"\nop = \"flatten\"\n"
    );
    check_workload(
        &text,
        &["w.toml:15:8", "field `name`", "is used by an earlier layer"],
    );
    let text = format!(
        "{BASE}\n[[layer]]\nname = \"c\"\nop = \"conv2d\"\nout_channels = 2\nkernel = 1\nweight_frac_len = 3\n"
    );
    check_workload(
        &text,
        &[
            "field `weight_frac_len`",
            "does not apply to affine numerics",
        ],
    );
}

#[test]
fn impossible_values_name_the_valid_range() {
    let text = BASE.replace("shape = [2, 6, 6]", "shape = [2, 0, 6]");
    check_workload(
        &format!("{text}\n[[layer]]\nname = \"f\"\nop = \"flatten\"\n"),
        &["w.toml:9:9", "[input]", "field `shape`", "each at least 1"],
    );
    let text = format!(
        "{BASE}\n[[layer]]\nname = \"c\"\nop = \"conv2d\"\nout_channels = 2\nkernel = 3\nstride = 0\n"
    );
    check_workload(&text, &["field `stride`", "valid: integers from 1"]);
    let text = format!(
        "{BASE}\n[[layer]]\nname = \"c\"\nop = \"conv2d\"\nout_channels = 2\nkernel = 3\nweights = {{ dist = \"gaussian\", sparsity = 1.5 }}\n"
    );
    check_workload(
        &text,
        &["field `weights.sparsity`", "is 1.5; valid: 0 to 1"],
    );
    let text = format!(
        "{BASE}\n[[layer]]\nname = \"c\"\nop = \"conv2d\"\nout_channels = 2\nkernel = 1\noutput = {{ scale = -1.0 }}\n"
    );
    check_workload(
        &text,
        &["field `output.scale`", "valid: a finite number > 0"],
    );
    let text = BASE.replace(
        "mode = \"affine\"",
        "mode = \"affine\"\nactivation_bits = 16",
    );
    check_workload(
        &format!("{text}\n[[layer]]\nname = \"f\"\nop = \"flatten\"\n"),
        &[
            "[numerics]",
            "field `activation_bits`",
            "does not apply to mode `affine`",
        ],
    );
}

#[test]
fn npy_of_the_wrong_dtype_or_shape_or_missing() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    write_npy(
        &dir.path().join("w_f32.npy"),
        &Array4::<f32>::zeros((4, 2, 3, 3)),
    );
    write_npy(
        &dir.path().join("w_shape.npy"),
        &Array4::<i8>::zeros((4, 2, 3, 2)),
    );
    write_npy(&dir.path().join("bias_i8.npy"), &Array1::<i8>::zeros(4));
    let layer = |weights: &str| {
        format!(
            "{BASE}\n[[layer]]\nname = \"c\"\nop = \"conv2d\"\nout_channels = 4\nkernel = 3\nweights = {{ file = \"{weights}\" }}\n"
        )
    };
    let run = |text: String, fragments: &[&str]| {
        let path = write(dir.path(), "w.toml", &text);
        let p = path.to_string_lossy().into_owned();
        expect_error(&["check", &p], fragments);
    };
    run(
        layer("w_f32.npy"),
        &[
            "w.toml:16:20",
            "layer `c`",
            "field `weights`",
            "w_f32.npy",
            "dtype is float32, expected int8",
        ],
    );
    run(
        layer("w_shape.npy"),
        &[
            "w.toml:16:20",
            "w_shape.npy",
            "shape is [4, 2, 3, 2], expected [4, 2, 3, 3]",
        ],
    );
    run(
        layer("nowhere.npy"),
        &["w.toml:16:20", "nowhere.npy", "cannot read the file"],
    );
    let bias = format!(
        "{BASE}\n[[layer]]\nname = \"c\"\nop = \"conv2d\"\nout_channels = 4\nkernel = 3\nbias = {{ file = \"bias_i8.npy\" }}\n"
    );
    run(
        bias,
        &["field `bias`", "dtype is int8, expected int32 or int64"],
    );
    // Not an .npy at all.
    std::fs::write(dir.path().join("junk.npy"), b"hello").unwrap_or_else(|e| panic!("{e}"));
    run(layer("junk.npy"), &["junk.npy", "not a valid .npy file"]);
}

#[test]
fn run_input_of_the_wrong_dtype_or_shape() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let wrong_dtype = dir.path().join("x_i16.npy");
    write_npy(&wrong_dtype, &Array3::<i16>::zeros((3, 25, 25)));
    let wrong_shape = dir.path().join("x_shape.npy");
    write_npy(&wrong_shape, &Array3::<u8>::zeros((3, 24, 25)));
    let ws = wrong_dtype.to_string_lossy().into_owned();
    expect_error(
        &["run", "--workload", "kws_cnn_one_fstride4", "--input", &ws],
        &["x_i16.npy", "shape is [3, 25, 25], expected [1, 32, 40]"],
    );
    expect_error(
        &["run", "--workload", "cae_cnn", "--input", &ws],
        &[
            "x_i16.npy",
            "dtype is int16, expected uint8",
            "or float32/float64 values to quantise",
        ],
    );
    let ss = wrong_shape.to_string_lossy().into_owned();
    expect_error(
        &["run", "--workload", "cae_cnn", "--input", &ss],
        &["x_shape.npy", "shape is [3, 24, 25], expected [3, 25, 25]"],
    );
    expect_error(
        &[
            "run",
            "--workload",
            "cae_cnn",
            "--input",
            "/nonexistent/x.npy",
        ],
        &["/nonexistent/x.npy", "cannot read the file"],
    );
}

#[test]
fn missing_files_and_unknown_names() {
    expect_error(
        &["run", "--workload", "no_such_net"],
        &["no_such_net", "no such file or shipped name", "cae_cnn"],
    );
    expect_error(
        &["run", "--workload", "./missing.toml"],
        &["./missing.toml", "no such file"],
    );
    expect_error(
        &["run", "--workload", "cae_cnn", "--arch", "nope"],
        &["nope", "given to --arch", "lu22_fixed"],
    );
    expect_error(
        &["run", "--workload", "cae_cnn:hat"],
        &[
            "cae_cnn.toml",
            "no variant `hat`; valid: gender, glasses, pose, smile",
        ],
    );
    expect_error(
        &["check", "ic_cifar10:pose"],
        &["no variant `pose`; valid: none"],
    );
}

#[test]
fn bad_arch_files() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let good = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("arch_configs/lu22_fixed.toml"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let check = |text: String, fragments: &[&str]| {
        let path = write(dir.path(), "a.toml", &text);
        let p = path.to_string_lossy().into_owned();
        expect_error(&["check", &p], fragments);
        expect_error(
            &["run", "--workload", "kws_cnn_one_fstride4", "--arch", &p],
            fragments,
        );
    };
    check(
        good.replace("rows = 13 ", "rows = 0 "),
        &[
            "a.toml:14:8",
            "[pe_array]",
            "field `rows`",
            "is 0; valid: 1 to 4096",
        ],
    );
    check(
        good.replace("cols = 12 ", "colss = 12 "),
        &["a.toml:15:1", "unknown field `colss`", "expected one of"],
    );
    check(
        good.replace("weight_store = \"fixed\"", "weight_store = \"rom\""),
        &[
            "unknown variant `rom`",
            "expected `fixed` or `programmable`",
        ],
    );
    check(
        good.replace("burst_bytes = 32", "burst_bytes = 30"),
        &[
            "[dram.banked]",
            "field `burst_bytes`",
            "does not divide row_bytes 2048",
        ],
    );
}

#[test]
fn bad_flags_exit_2_without_panic() {
    let out = accsim()
        .args(["run"])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.status.code(), Some(2));
    let out = accsim()
        .args(["frobnicate"])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.status.code(), Some(2));
}

/// A 2x2 array whose GLB holds 32 bytes.
const TINY_GLB_ARCH: &str = r#"[arch]
name = "tiny"
description = "2x2 array, 32-byte GLB"
clock_mhz = 100
[pe_array]
rows = 2
cols = 2
input_rf_entries = 6
psum_rf_entries = 4
weight_store = "fixed"
[glb]
capacity_kib = 0.03125
[dram]
model = "simple"
bandwidth_bytes_per_cycle = 4
latency_cycles = 10
"#;

/// `accsim run` of `layer` (on the [2, 6, 6] uint8 input) on the tiny GLB
/// (`weight_store` fixed or programmable): one message, exit 2.
fn refused_run(layer: &str, weight_store: &str, message: &str) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let w = write(dir.path(), "w.toml", &format!("{BASE}[[layer]]\n{layer}\n"));
    let a = write(
        dir.path(),
        "a.toml",
        &TINY_GLB_ARCH.replace("\"fixed\"", &format!("\"{weight_store}\"")),
    );
    let (w, a) = (w.to_string_lossy(), a.to_string_lossy());
    let expected = format!("error: {a}: [glb], field `capacity_kib`: {message}\n");
    let stderr = expect_error(&["run", "-q", "--workload", &w, "--arch", &a], &[]);
    assert_eq!(stderr, expected);
}

#[test]
fn a_glb_smaller_than_one_pass_of_input_rows_is_refused_with_the_least_capacity() {
    // A 3x3 kernel over 6x6: each pass (2 positions of one output row)
    // reads 3 input rows of 2 channels x 6 columns x 1 byte.
    refused_run(
        "name = \"c\"\nop = \"conv2d\"\nout_channels = 2\nkernel = 3",
        "fixed",
        "layer `c` (#0, conv2d) cannot be scheduled: it needs 36 bytes of GLB at once, \
         3 rows of tensor `input` (the rows one pass reads, 12 bytes each) = 36 bytes, \
         and the GLB holds 32 bytes; valid: capacity_kib >= 0.03515625 (a GLB of at least 36 bytes)",
    );
}

#[test]
fn programmable_weights_add_their_staging_buffer_to_the_least_capacity() {
    // Pieces of 3 elements, one output channel per column: the first step
    // sends 2 x 3 weights and 2 biases = 8 bytes; three steps are staged.
    refused_run(
        "name = \"c\"\nop = \"conv2d\"\nout_channels = 2\nkernel = 3",
        "programmable",
        "layer `c` (#0, conv2d) cannot be scheduled: it needs 60 bytes of GLB at once, \
         3 rows of tensor `input` (the rows one pass reads, 12 bytes each) = 36 bytes \
         plus the weight staging buffer (3 steps of 8 bytes) = 24 bytes, and the GLB holds \
         32 bytes; valid: capacity_kib >= 0.05859375 (a GLB of at least 60 bytes)",
    );
}

#[test]
fn a_pooling_window_taller_than_the_glb_is_refused() {
    refused_run(
        "name = \"p\"\nop = \"max_pool\"\nkernel = 3\nstride = 1",
        "fixed",
        "layer `p` (#0, max_pool) cannot be scheduled: it needs 36 bytes of GLB at once, \
         3 rows of tensor `input` (the rows one output row reads, 12 bytes each) = 36 bytes, \
         and the GLB holds 32 bytes; valid: capacity_kib >= 0.03515625 (a GLB of at least 36 bytes)",
    );
}

#[test]
fn a_fully_connected_layer_needs_its_whole_input_in_the_glb() {
    refused_run(
        "name = \"f\"\nop = \"fc\"\nout_features = 3",
        "fixed",
        "layer `f` (#0, fc) cannot be scheduled: it needs 72 bytes of GLB at once, \
         6 rows of tensor `input` (all of it: every pass reads the whole input, 12 bytes each) \
         = 72 bytes, and the GLB holds 32 bytes; valid: capacity_kib >= 0.0703125 \
         (a GLB of at least 72 bytes)",
    );
}

#[test]
fn check_lists_every_layer_that_cannot_be_scheduled() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let a = write(dir.path(), "a.toml", TINY_GLB_ARCH);
    let a = a.to_string_lossy();
    let model =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/onnx/qdq_add_residual_u8.onnx");
    let model = model.to_string_lossy();
    let stderr = expect_error(
        &["check", &model, "--arch", &a],
        &["(2 more layers listed above)"],
    );
    assert!(stderr.starts_with(&format!(
        "error: {a}: [glb], field `capacity_kib`: layer `n_Conv_20` (#0, conv2d) cannot be scheduled"
    )), "{stderr}");
    let out = accsim()
        .args(["check", &model, "--arch", &a])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let listed: Vec<&str> = stdout
        .lines()
        .skip_while(|l| !l.starts_with("schedule on `tiny`"))
        .collect();
    assert_eq!(
        listed,
        [
            "schedule on `tiny`: 3 of 3 layers cannot be scheduled:",
            "  layer `n_Conv_20` (#0, conv2d) cannot be scheduled: it needs 72 bytes of GLB at once, 3 rows of tensor `input` (the rows one pass reads, 24 bytes each) = 72 bytes, and the GLB holds 32 bytes; valid: capacity_kib >= 0.0703125 (a GLB of at least 72 bytes)",
            "  layer `n_Conv_42` (#1, conv2d) cannot be scheduled: it needs 96 bytes of GLB at once, 3 rows of tensor `n_Conv_20` (the rows one pass reads, 32 bytes each) = 96 bytes, and the GLB holds 32 bytes; valid: capacity_kib >= 0.09375 (a GLB of at least 96 bytes)",
            "  layer `n_Add_56` (#2, add) cannot be scheduled: it needs 64 bytes of GLB at once, 1 row of tensor `n_Conv_20` (the rows one output row reads, 32 bytes each) = 32 bytes plus 1 row of tensor `n_Conv_42` (the rows one output row reads, 32 bytes each) = 32 bytes, and the GLB holds 32 bytes; valid: capacity_kib >= 0.0625 (a GLB of at least 64 bytes)",
        ]
    );
}

#[test]
fn schedule_file_and_objective_errors_name_the_place_and_what_is_valid() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let run = |file: &Path, objective: &str| {
        let file = file.to_string_lossy().into_owned();
        let args = [
            "run",
            "--workload",
            "cae_cnn",
            "--arch",
            "lu22_programmable",
            "--objective",
            objective,
            "--schedule",
            &file,
            "-q",
        ];
        args.map(str::to_string)
    };
    let expect = |args: [String; 10], fragments: &[&str]| {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        expect_error(&args, fragments)
    };
    let unknown = write(
        dir.path(),
        "unknown.toml",
        "[schedules]\nconv2 = \"pass_major\"\nconv9 = \"pass_major\"\n",
    );
    expect(
        run(&unknown, "energy"),
        &[
            "unknown.toml:3:1: [schedules], field `conv9`: no layer of the network is named `conv9`; valid: `conv1`, `conv2`, `pool1`, `conv3`, `conv4`, `pool2`, `fc1`, `fc2`",
        ],
    );
    let label = write(
        dir.path(),
        "label.toml",
        "[schedules]\nconv2 = \"weight_tile_major/6/rom\"\n",
    );
    expect(
        run(&label, "energy"),
        &[
            "label.toml:2:9: [schedules], field `conv2`: `weight_tile_major/6/rom` is not a schedule; valid: `pass_major` or `weight_tile_major/TILES/glb` or `weight_tile_major/TILES/dram`, TILES from 2",
        ],
    );
    let good = write(
        dir.path(),
        "good.toml",
        "[schedules]\nconv2 = \"pass_major\"\n",
    );
    expect(
        run(&good, "fastest"),
        &["--objective: unknown objective `fastest`; valid: energy, cycles, edp, dram, rule"],
    );
}

/// A tensor generator's parameters: each refusal names its field and what
/// is valid (`workload::load`, `generator` and `distribution`).
#[test]
fn generator_parameters_are_refused_by_field() {
    let conv = "\n[[layer]]\nname = \"c\"\nop = \"conv2d\"\nout_channels = 2\nkernel = 1\n";
    let cases: [(&str, &[&str]); 5] = [
        (
            "weights = { std = 3.0 }",
            &["field `weights.std`", "needs `dist`"],
        ),
        (
            "weights = { dist = \"uniform\", std = 3.0 }",
            &[
                "field `weights.std`",
                "does not apply to this distribution; valid: low, high",
            ],
        ),
        (
            "weights = { dist = \"constant\" }",
            &["field `weights.value`", "a constant needs `value`"],
        ),
        (
            "weights = { dist = \"uniform\", low = 3.0, high = 1.0 }",
            &["field `weights`", "low 3 > high 1; valid: low <= high"],
        ),
        (
            "weights = { dist = \"laplace\", scale = -2.0 }",
            &["field `weights`", "scale is -2; valid: >= 0"],
        ),
    ];
    for (line, want) in cases {
        check_workload(&format!("{BASE}{conv}{line}\n"), want);
    }
}
