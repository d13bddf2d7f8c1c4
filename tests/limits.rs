//! Resource limits (docs/workload-format.md and docs/arch-format.md,
//! "Limits"): inputs that would need absurd memory or time are refused up
//! front, as input errors (CLI exit code 2) that name the limit they hit.
//! Each case here would otherwise allocate gigabytes or compute for hours,
//! so a test that passes in milliseconds shows the refusal came first.

use std::path::{Path, PathBuf};

use accsim::Error;
use accsim::workload::limits::Limits;
use accsim::workload::{LoadOptions, load_str, load_str_with};
use assert_cmd::Command;

const HEAD: &str = r#"[network]
name = "limits"
description = "a resource-limit test"

[numerics]
mode = "affine"
"#;

fn input_error<T: std::fmt::Debug>(r: accsim::Result<T>) -> accsim::InputError {
    match r {
        Err(Error::Input(e)) => *e,
        other => panic!("expected an input error, got {other:?}"),
    }
}

fn load(text: &str) -> accsim::InputError {
    input_error(load_str(text, Path::new("limits.toml"), None))
}

fn accsim() -> Command {
    Command::cargo_bin("accsim").unwrap_or_else(|e| panic!("accsim binary: {e}"))
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap_or_else(|e| panic!("write {}: {e}", p.display()));
    p
}

/// Runs `accsim ARGS`; expects exit code 2, no panic, and every fragment.
fn expect_exit_2(args: &[&std::ffi::OsStr], fragments: &[&str]) {
    let out = accsim()
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    for f in fragments {
        assert!(stderr.contains(f), "missing {f:?} in: {stderr}");
    }
}

#[test]
fn an_input_whose_size_overflows_is_refused_naming_the_per_tensor_limit() {
    let e = load(&format!(
        "{HEAD}[input]\nshape = [4294967296, 4294967296, 4294967296]\n[[layer]]\nname = \"f\"\nop = \"flatten\"\n"
    ));
    assert_eq!(e.field.as_deref(), Some("shape"));
    assert_eq!(e.line_column.map(|(l, _)| l), Some(8));
    assert!(
        e.message
            .contains("larger than the limit of 268435456 elements per tensor"),
        "{e}"
    );
}

#[test]
fn a_giant_input_tensor_is_refused_before_it_is_generated() {
    // 2^28 + 2^14 elements: just over the limit; generating it would take 512 MiB.
    let e = load(&format!(
        "{HEAD}[input]\nshape = [1, 16384, 16385]\n[[layer]]\nname = \"f\"\nop = \"flatten\"\n"
    ));
    assert!(
        e.message.contains("1x16384x16385 = 268451840 elements"),
        "{e}"
    );
}

#[test]
fn padding_that_explodes_the_output_is_refused_before_allocation() {
    // A 1x1 input padded by 2^20 on every side: a 2^42-element output.
    let e = load(&format!(
        "{HEAD}[input]\nshape = [1, 1, 1]\n[[layer]]\nname = \"c\"\nop = \"conv2d\"\nout_channels = 1\nkernel = 1\npadding = [1048576, 1048576, 1048576, 1048576]\n"
    ));
    assert_eq!(e.context.as_deref(), Some("layer `c`"));
    assert!(e.message.contains("1x2097153x2097153"), "{e}");
    assert!(e.message.contains("elements per tensor"), "{e}");
}

#[test]
fn weights_whose_count_overflows_are_refused_not_wrapped() {
    // 2^28 output channels of a 2^20 x 2^20 kernel over 2^20 x 2^20 padding.
    let e = load(&format!(
        "{HEAD}[input]\nshape = [1, 1, 1]\n[[layer]]\nname = \"c\"\nop = \"conv2d\"\nout_channels = 268435456\nkernel = 1048576\npadding = [524288, 524288, 524288, 524288]\n"
    ));
    assert!(e.message.contains("elements per tensor"), "{e}");
}

#[test]
fn a_kernel_and_padding_combination_needing_a_trillion_macs_is_refused() {
    // 1001x1001 output positions, each a 1001x1001 window: 1.0e12 MACs, ten
    // times the limit, from a 1x1 input and a million weights.
    let e = load(&format!(
        "{HEAD}[input]\nshape = [1, 1, 1]\n[[layer]]\nname = \"big\"\nop = \"conv2d\"\nout_channels = 1\nkernel = 1001\npadding = [1000, 1000, 1000, 1000]\n"
    ));
    assert_eq!(e.context.as_deref(), Some("layer `big`"));
    assert!(
        e.message
            .contains("more than the limit of 100000000000 operations"),
        "{e}"
    );
    assert!(e.message.contains("1004006004001 operations"), "{e}");
}

#[test]
fn the_cli_exits_2_naming_the_operation_limit_and_the_layer_line() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let w = write(
        dir.path(),
        "big.toml",
        format!(
            "{HEAD}[input]\nshape = [1, 1, 1]\n[[layer]]\nname = \"big\"\nop = \"conv2d\"\nout_channels = 1\nkernel = 1001\npadding = [1000, 1000, 1000, 1000]\n"
        )
        .as_bytes(),
    );
    let located = format!("{}:9:1: layer `big`: the layer needs", w.display());
    expect_exit_2(
        &[
            "run".as_ref(),
            "--workload".as_ref(),
            w.as_os_str(),
            "-q".as_ref(),
        ],
        &[&located, "more than the limit of 100000000000 operations"],
    );
}

#[test]
fn a_pooling_window_storm_is_refused_by_the_operation_limit() {
    // Max pooling has no MACs, but a 1024x1024 window at stride 1 over a
    // 2048x2048 input reads 10^12 elements.
    let e = load(&format!(
        "{HEAD}[input]\nshape = [1, 2048, 2048]\n[[layer]]\nname = \"p\"\nop = \"max_pool\"\nkernel = 1024\nstride = 1\n"
    ));
    assert_eq!(e.context.as_deref(), Some("layer `p`"));
    assert!(e.message.contains("the layer needs"), "{e}");
    assert!(e.message.contains("operations"), "{e}");
}

#[test]
fn a_network_of_too_many_layers_is_refused_before_it_is_built() {
    let mut text = format!("{HEAD}[input]\nshape = [1, 1, 1]\n");
    for i in 0..10_001 {
        text.push_str(&format!("[[layer]]\nname = \"f{i}\"\nop = \"flatten\"\n"));
    }
    let e = load(&text);
    assert!(
        e.message
            .contains("the network has 10001 layers, more than the limit of 10000"),
        "{e}"
    );
}

#[test]
fn the_network_element_limit_counts_every_layer_output_and_weight() {
    let limits = Limits {
        max_network_elements: 1000,
        ..Limits::DEFAULT
    };
    let text = format!(
        "{HEAD}[input]\nshape = [1, 16, 16]\n[[layer]]\nname = \"a\"\nop = \"conv2d\"\nout_channels = 2\nkernel = 1\n[[layer]]\nname = \"b\"\nop = \"conv2d\"\nout_channels = 2\nkernel = 1\n"
    );
    // input 256 + a (512 + 2) fits; b brings 514 more.
    let e = input_error(load_str_with(
        &text,
        Path::new("limits.toml"),
        None,
        &LoadOptions {
            limits,
            ..Default::default()
        },
    ));
    assert_eq!(e.context.as_deref(), Some("layer `b`"));
    assert!(e.message.contains("limit of 1000 elements"), "{e}");
}

#[test]
fn an_npy_header_claiming_petabytes_is_refused_without_allocating() {
    let header = "{'descr': '<f8', 'fortran_order': False, 'shape': (33554432, 33554432), }";
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend_from_slice(&(header.len() as u16 + 1).to_le_bytes());
    bytes.extend_from_slice(header.as_bytes());
    bytes.push(b'\n');
    let e = accsim::workload::npy::read_npy_bytes(&bytes, Path::new("huge.npy"))
        .expect_err("2^50 elements");
    assert!(e.message.contains("33554432x33554432"), "{e}");
    assert!(e.message.contains("elements per tensor"), "{e}");
}

#[test]
fn an_npy_header_length_past_the_end_of_the_file_is_refused() {
    // Format 2.0 lets the header length claim 4 GiB.
    let mut bytes = b"\x93NUMPY\x02\x00".to_vec();
    bytes.extend_from_slice(&u32::MAX.to_le_bytes());
    bytes.extend_from_slice(b"{'descr': '<i2'");
    let e = accsim::workload::npy::read_npy_bytes(&bytes, Path::new("h.npy"))
        .expect_err("header too long");
    assert!(
        e.message
            .contains("its header claims 4294967295 bytes, more than the limit of 65536"),
        "{e}"
    );
}

#[test]
fn an_npy_header_with_the_data_missing_names_both_sizes() {
    let header = "{'descr': '<i2', 'fortran_order': False, 'shape': (3, 4), }";
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend_from_slice(&(header.len() as u16 + 1).to_le_bytes());
    bytes.extend_from_slice(header.as_bytes());
    bytes.push(b'\n');
    bytes.extend_from_slice(&[0; 10]);
    let e = accsim::workload::npy::read_npy_bytes(&bytes, Path::new("short.npy"))
        .expect_err("10 of 24 bytes");
    assert!(
        e.message
            .contains("it holds 10 bytes of data, but its header's shape [3, 4] of int16 needs 24"),
        "{e}"
    );
}

#[test]
fn deeply_nested_toml_is_an_input_error_not_a_stack_overflow() {
    // Tests run on 2 MiB thread stacks: a recursive descent this deep would
    // overflow them; the TOML parser's recursion limit refuses it.
    for (open, close) in [("[", "]"), ("{a=", "}")] {
        let text = format!("x = {}1{}\n", open.repeat(100_000), close.repeat(100_000));
        let e = load(&text);
        assert!(e.message.contains("recursion"), "{e}");
        let e = input_error(accsim::arch::load_str(&text, Path::new("n.toml")));
        assert!(e.message.contains("recursion"), "{e}");
    }
}

#[test]
fn a_deeply_nested_npy_header_is_refused_before_it_is_parsed() {
    let header = format!("{}{}", "[".repeat(30_000), "]".repeat(30_000));
    let mut bytes = b"\x93NUMPY\x02\x00".to_vec();
    bytes.extend_from_slice(&(header.len() as u32 + 1).to_le_bytes());
    bytes.extend_from_slice(header.as_bytes());
    bytes.push(b'\n');
    let e =
        accsim::workload::npy::read_npy_bytes(&bytes, Path::new("deep.npy")).expect_err("nested");
    assert!(e.message.contains("nests brackets more than 4 deep"), "{e}");
}

#[test]
fn a_device_named_as_a_tensor_file_is_refused_as_not_a_regular_file() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let w = write(
        dir.path(),
        "w.toml",
        format!(
            "{HEAD}[input]\nshape = [1, 2, 2]\ndata = {{ file = \"/dev/zero\" }}\n[[layer]]\nname = \"f\"\nop = \"flatten\"\n"
        )
        .as_bytes(),
    );
    expect_exit_2(
        &[
            "run".as_ref(),
            "--workload".as_ref(),
            w.as_os_str(),
            "-q".as_ref(),
        ],
        &["/dev/zero", "not a regular file"],
    );
}

#[test]
fn a_device_given_to_the_library_as_a_workload_is_refused() {
    // The CLI resolves only regular files; the library reads what it is given.
    let e = input_error(accsim::workload::load_file(Path::new("/dev/zero"), None));
    assert!(e.message.contains("not a regular file"), "{e}");
    let e = input_error(accsim::workload::scalesim::load_file(Path::new(
        "/dev/zero",
    )));
    assert!(e.message.contains("not a regular file"), "{e}");
    let e = input_error(accsim::workload::onnx::load_file(Path::new("/dev/zero")));
    assert!(e.message.contains("not a regular file"), "{e}");
    let e = input_error(accsim::arch::load_file(Path::new("/dev/zero")));
    assert!(e.message.contains("not a regular file"), "{e}");
}

#[test]
fn an_onnx_graph_input_with_huge_dims_is_refused() {
    let model = onnx::model(&onnx::graph(
        &[],
        &[],
        &onnx::input("x", 2, &[1, 1 << 30, 1 << 30, 1 << 30]),
        "y",
    ));
    let e = input_error(accsim::workload::onnx::load_bytes(
        &model,
        Path::new("huge.onnx"),
    ));
    assert_eq!(e.context.as_deref(), Some("graph input `x`"));
    assert!(e.message.contains("elements per tensor"), "{e}");
}

#[test]
fn an_onnx_initializer_claiming_huge_dims_is_refused_without_allocating() {
    // dims [2^61] of int64 would need 2^64 bytes: the product times the
    // element size used to overflow; 8 bytes of data are all there is.
    let init = onnx::initializer("w", 7, &[1 << 61], &[0; 8]);
    let model = onnx::model(&onnx::graph(
        &[],
        &[init],
        &onnx::input("x", 2, &[1, 1, 2, 2]),
        "y",
    ));
    let e = input_error(accsim::workload::onnx::load_bytes(
        &model,
        Path::new("init.onnx"),
    ));
    assert!(
        e.message
            .contains("initializer `w` has dims [2305843009213693952]"),
        "{e}"
    );
    assert!(e.message.contains("elements per tensor"), "{e}");
}

#[test]
fn many_onnx_nodes_with_one_name_import_in_linear_time() {
    // 5000 MaxPools all named `p`: layer names p, p_2, ... p_5000. Finding
    // each free name by scanning every earlier layer for every suffix took
    // cubic time (minutes); a suffix counter makes it linear.
    let mut nodes = Vec::new();
    let mut prev = "x".to_string();
    for i in 0..5000 {
        let out = format!("t{i}");
        nodes.push(onnx::node(
            "MaxPool",
            "p",
            &[&prev],
            &out,
            &[("kernel_shape", &[1, 1])],
        ));
        prev = out;
    }
    let model = onnx::model(&onnx::graph(
        &nodes,
        &[],
        &onnx::input("x", 2, &[1, 1, 2, 2]),
        &prev,
    ));
    let start = std::time::Instant::now();
    let w = accsim::workload::onnx::load_bytes(&model, Path::new("many.onnx"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(w.network.layers.len(), 5000);
    assert_eq!(w.network.layers[4999].name, "p_5000");
    assert!(start.elapsed().as_secs() < 20, "took {:?}", start.elapsed());
}

#[test]
fn scalesim_rows_over_the_limits_are_refused_naming_the_csv_row() {
    let header = "Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,\n";
    let load = |rows: &str| {
        input_error(accsim::workload::scalesim::load_str(
            &format!("{header}{rows}"),
            Path::new("t.csv"),
            &LoadOptions::default(),
        ))
    };
    // The first row's IFMAP is the network input: 3 x 2^20 x 2^20 elements.
    let e = load("c1, 1048576, 1048576, 3, 3, 3, 8, 1,\n");
    assert_eq!(e.line_column, Some((2, 1)));
    assert!(e.message.contains("elements per tensor"), "{e}");
    // The second row: 1024 filters of 1024x1024 over 8 channels, 2^33 weights.
    let e = load("c1, 1024, 1024, 1, 1, 3, 8, 1,\nc2, 1024, 1024, 1024, 1024, 8, 1024, 1,\n");
    assert_eq!(e.line_column, Some((3, 1)));
    assert_eq!(e.context.as_deref(), Some("layer `c2`"));
    assert!(
        e.message.contains("limit of 268435456 elements per tensor"),
        "{e}"
    );
}

#[test]
fn bias_files_for_a_64_bit_accumulator_are_range_checked_without_overflow() {
    // The range was computed as 1i64 << 63, which is i64::MIN, and negating
    // it overflowed. The reference accumulates exactly in i64, so a 64-bit
    // accumulator takes biases of 63 bits.
    use ndarray_npy::WriteNpyExt;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let text = "[network]\nname = \"b\"\ndescription = \"64-bit accumulator\"\n[numerics]\nmode = \"dynamic_fixed_point\"\naccumulator_bits = 64\n[input]\nshape = [1, 2, 2]\n[[layer]]\nname = \"fc\"\nop = \"fc\"\nout_features = 2\nbias = { file = \"b.npy\" }\n";
    let with_bias = |values: Vec<i64>| {
        let f = std::fs::File::create(dir.path().join("b.npy")).unwrap_or_else(|e| panic!("{e}"));
        ndarray::Array1::from(values)
            .write_npy(f)
            .unwrap_or_else(|e| panic!("{e}"));
        load_str(text, &dir.path().join("w.toml"), None)
    };
    let e = input_error(with_bias(vec![i64::MAX, i64::MIN]));
    assert_eq!(e.field.as_deref(), Some("bias"));
    assert!(e.message.contains("valid: -2^62 to 2^62 - 1"), "{e}");
    let w = with_bias(vec![(1 << 62) - 1, -(1 << 62)]).unwrap_or_else(|e| panic!("{e}"));
    let bias = &w.network.layers[0]
        .epilogue()
        .unwrap_or_else(|| panic!("fc"))
        .bias;
    assert_eq!(bias, &vec![(1 << 62) - 1, -(1 << 62)]);
}

#[test]
fn a_huge_pe_array_is_refused_naming_the_pe_limit() {
    let text = "[arch]\nname = \"big\"\ndescription = \"4096x4096\"\n[pe_array]\nrows = 4096\ncols = 4096\nweight_store = \"fixed\"\n[glb]\ncapacity_kib = 108\n[dram]\n";
    let e = input_error(accsim::arch::load_str(text, Path::new("big.toml")));
    assert_eq!(e.field.as_deref(), Some("cols"));
    assert!(
        e.message
            .contains("a 4096x4096 array has 16777216 PEs, more than the limit of 65536"),
        "{e}"
    );
    let ok = text.replace("rows = 4096\ncols = 4096", "rows = 256\ncols = 256");
    assert!(accsim::arch::load_str(&ok, Path::new("ok.toml")).is_ok());
}

#[test]
fn mac_counts_of_a_hand_built_layer_saturate_instead_of_wrapping() {
    let w = load_str(
        &format!(
            "{HEAD}[input]\nshape = [1, 4, 4]\n[[layer]]\nname = \"c\"\nop = \"conv2d\"\nout_channels = 2\nkernel = 3\n"
        ),
        Path::new("t.toml"),
        None,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let mut layer = w.network.layers[0].clone();
    assert_eq!(layer.macs(), 2 * 2 * 2 * 9);
    layer.output_shape.channels = usize::MAX / 2;
    layer.output_shape.height = 1 << 20;
    assert_eq!(layer.macs(), u64::MAX);
}

/// A protobuf encoder for the few ONNX messages these tests need (field
/// numbers as in onnx.proto).
mod onnx {
    fn varint(mut n: u64, out: &mut Vec<u8>) {
        loop {
            let b = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                out.push(b);
                return;
            }
            out.push(b | 0x80);
        }
    }

    fn bytes(tag: u32, b: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        varint(u64::from(tag << 3 | 2), &mut v);
        varint(b.len() as u64, &mut v);
        v.extend_from_slice(b);
        v
    }

    fn int(tag: u32, n: i64) -> Vec<u8> {
        let mut v = Vec::new();
        varint(u64::from(tag << 3), &mut v);
        varint(n as u64, &mut v);
        v
    }

    /// A graph input of element type `elem` and `dims`.
    pub fn input(name: &str, elem: i64, dims: &[i64]) -> Vec<u8> {
        let mut shape = Vec::new();
        for &d in dims {
            shape.extend(bytes(1, &int(1, d)));
        }
        let mut tensor = int(1, elem);
        tensor.extend(bytes(2, &shape));
        let mut vi = bytes(1, name.as_bytes());
        vi.extend(bytes(2, &bytes(1, &tensor)));
        vi
    }

    pub fn initializer(name: &str, data_type: i64, dims: &[i64], raw: &[u8]) -> Vec<u8> {
        let mut t = Vec::new();
        for &d in dims {
            t.extend(int(1, d));
        }
        t.extend(int(2, data_type));
        t.extend(bytes(8, name.as_bytes()));
        t.extend(bytes(9, raw));
        t
    }

    pub fn node(
        op: &str,
        name: &str,
        inputs: &[&str],
        output: &str,
        ints: &[(&str, &[i64])],
    ) -> Vec<u8> {
        let mut n = Vec::new();
        for i in inputs {
            n.extend(bytes(1, i.as_bytes()));
        }
        n.extend(bytes(2, output.as_bytes()));
        n.extend(bytes(3, name.as_bytes()));
        n.extend(bytes(4, op.as_bytes()));
        for (attr, values) in ints {
            // AttributeProto: name = 1, ints = 8, type = 20 (INTS = 7).
            let mut a = bytes(1, attr.as_bytes());
            for &v in values.iter() {
                a.extend(int(8, v));
            }
            a.extend(int(20, 7));
            n.extend(bytes(5, &a));
        }
        n
    }

    pub fn graph(
        nodes: &[Vec<u8>],
        initializers: &[Vec<u8>],
        input: &[u8],
        output: &str,
    ) -> Vec<u8> {
        let mut g = Vec::new();
        for n in nodes {
            g.extend(bytes(1, n));
        }
        g.extend(bytes(2, b"g"));
        for i in initializers {
            g.extend(bytes(5, i));
        }
        g.extend(bytes(11, input));
        g.extend(bytes(12, &bytes(1, output.as_bytes())));
        g
    }

    pub fn model(graph: &[u8]) -> Vec<u8> {
        bytes(7, graph)
    }
}
