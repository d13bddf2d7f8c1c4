//! Bad ONNX files: exit code 2 and one message naming the node, the
//! operator and what is valid; every unsupported operator type at once.

use assert_cmd::Command;
use predicates::str::contains;

/// A length-delimited protobuf field.
fn field(tag: u32, bytes: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    varint(u64::from(tag << 3 | 2), &mut v);
    varint(bytes.len() as u64, &mut v);
    v.extend_from_slice(bytes);
    v
}

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

fn int(tag: u32, n: i64) -> Vec<u8> {
    let mut v = Vec::new();
    varint(u64::from(tag << 3), &mut v);
    varint(n as u64, &mut v);
    v
}

/// A hand-encoded ModelProto: one graph with `nodes` (op_type, name) and a
/// float input `x`; field numbers as in onnx.proto.
fn model(nodes: &[(&str, &str)]) -> Vec<u8> {
    let mut graph = Vec::new();
    for (i, (op, name)) in nodes.iter().enumerate() {
        let mut node = field(1, if i == 0 { b"x" } else { b"y" });
        node.extend(field(2, b"y"));
        node.extend(field(3, name.as_bytes()));
        node.extend(field(4, op.as_bytes()));
        graph.extend(field(1, &node));
    }
    graph.extend(field(11, &field(1, b"x")));
    field(7, &graph)
}

/// A dimension of a graph input.
enum Dim {
    Size(i64),
    Name(&'static str),
    Unknown,
}

/// A float graph input (ValueInfoProto) of `dims`.
fn input(name: &str, dims: &[Dim]) -> Vec<u8> {
    let mut shape = Vec::new();
    for d in dims {
        shape.extend(field(
            1,
            &match d {
                Dim::Size(v) => int(1, *v),
                Dim::Name(p) => field(2, p.as_bytes()),
                Dim::Unknown => Vec::new(),
            },
        ));
    }
    let mut tensor = int(1, 1);
    tensor.extend(field(2, &shape));
    let mut vi = field(1, name.as_bytes());
    vi.extend(field(2, &field(1, &tensor)));
    vi
}

/// A TensorProto with `raw` little-endian data.
fn initializer(name: &str, data_type: i64, dims: &[i64], raw: &[u8]) -> Vec<u8> {
    let mut t = Vec::new();
    for &d in dims {
        t.extend(int(1, d));
    }
    t.extend(int(2, data_type));
    t.extend(field(8, name.as_bytes()));
    t.extend(field(9, raw));
    t
}

/// A NodeProto with integer attributes (one `(name, value)` per element:
/// repeated names make an INTS attribute).
fn node(op: &str, name: &str, inputs: &[&str], output: &str, ints: &[(&str, i64)]) -> Vec<u8> {
    let mut n = Vec::new();
    for i in inputs {
        n.extend(field(1, i.as_bytes()));
    }
    n.extend(field(2, output.as_bytes()));
    n.extend(field(3, name.as_bytes()));
    n.extend(field(4, op.as_bytes()));
    let mut names: Vec<&str> = ints.iter().map(|(a, _)| *a).collect();
    names.dedup();
    for attr in names {
        let values: Vec<i64> = ints
            .iter()
            .filter(|(a, _)| *a == attr)
            .map(|(_, v)| *v)
            .collect();
        // AttributeProto: name = 1, i = 3, ints = 8, type = 20 (INT = 2, INTS = 7).
        let mut a = field(1, attr.as_bytes());
        if matches!(attr, "axis" | "opset" | "channels_last" | "size") {
            a.extend(int(3, values[0]));
            a.extend(int(20, 2));
        } else {
            for v in values {
                a.extend(int(8, v));
            }
            a.extend(int(20, 7));
        }
        n.extend(field(5, &a));
    }
    n
}

/// A ModelProto (IR 8, opset 13) of one graph.
fn graph_model(nodes: &[Vec<u8>], inits: &[Vec<u8>], input: &[u8], output: &str) -> Vec<u8> {
    let mut g = Vec::new();
    for n in nodes {
        g.extend(field(1, n));
    }
    g.extend(field(2, b"g"));
    for i in inits {
        g.extend(field(5, i));
    }
    g.extend(field(11, input));
    g.extend(field(12, &field(1, output.as_bytes())));
    let mut m = int(1, 8);
    m.extend(field(7, &g));
    m.extend(field(8, &int(2, 13)));
    m
}

/// Runs `accsim check` on `bytes` saved as `name`; returns the path and
/// stderr, after checking exit code 2 and an empty stdout.
fn refused(name: &str, bytes: &[u8]) -> (tempfile::TempDir, String, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).expect("write");
    let out = Command::cargo_bin("accsim")
        .expect("binary")
        .arg("check")
        .arg(&path)
        .output()
        .expect("accsim runs");
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(out.stdout.is_empty(), "{out:?}");
    let shown = path.display().to_string();
    (
        dir,
        shown,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The message's lines but the last, exactly; the last lists the supported
/// operators (other operators join that list).
fn split_refusal(stderr: &str) -> Vec<&str> {
    let mut lines: Vec<&str> = stderr.lines().collect();
    let last = lines.pop().unwrap_or("");
    assert!(
        last.starts_with("  valid: QuantizeLinear, DequantizeLinear, Conv,"),
        "{last}"
    );
    lines
}

#[test]
fn unsupported_operators_get_one_line_per_type_with_count_and_first_node() {
    let (_dir, path, stderr) = refused(
        "bad.onnx",
        &model(&[
            ("Hardmax", "hm"),
            ("Relu", "r"),
            ("LSTM", "rnn1"),
            ("Hardmax", "hm2"),
            ("Hardmax", ""),
        ]),
    );
    assert_eq!(
        split_refusal(&stderr),
        [
            &format!("error: {path}: 2 operator types accsim does not import (4 nodes):"),
            "  Hardmax: 3 nodes, the first node `hm`",
            "  LSTM: 1 node, node `rnn1`"
        ]
    );
}

/// DenseNet-121 was refused with one 3.8 KB line naming its 120 batch
/// norms (imported since); 120 nodes of one type are now one line.
#[test]
fn a_hundred_and_twenty_nodes_of_one_type_are_one_line() {
    let names: Vec<String> = (0..120).map(|i| format!("bn_{i}")).collect();
    let nodes: Vec<(&str, &str)> = names
        .iter()
        .map(|n| ("InstanceNormalization", n.as_str()))
        .collect();
    let (_dir, path, stderr) = refused("densenet.onnx", &model(&nodes));
    assert_eq!(
        split_refusal(&stderr),
        [
            &format!("error: {path}: 1 operator type accsim does not import (120 nodes):"),
            "  InstanceNormalization: 120 nodes, the first node `bn_0`"
        ]
    );
}

/// An unnamed node is named by its output; a contrib operator by its domain.
#[test]
fn unnamed_and_contrib_operators_are_named_by_output_and_domain() {
    let mut node = field(1, b"x");
    node.extend(field(2, b"q"));
    node.extend(field(4, b"QLinearReduceMean"));
    node.extend(field(7, b"com.microsoft"));
    let mut graph = field(1, &node);
    graph.extend(field(11, &field(1, b"x")));
    let (_dir, path, stderr) = refused("contrib.onnx", &field(7, &graph));
    assert_eq!(
        split_refusal(&stderr),
        [
            &format!("error: {path}: 1 operator type accsim does not import (1 node):"),
            "  com.microsoft.QLinearReduceMean: 1 node, node producing `q`"
        ]
    );
}

/// ONNX Runtime's quantiser with `AddQDQPairToWeight` keeps float weights
/// behind QuantizeLinear -> DequantizeLinear. Before, accsim said "y scale
/// must be one positive finite float32 (a per-tensor scale)" for their
/// per-channel scales, which read as if per-channel were unsupported.
#[test]
fn float_weights_behind_a_quantize_dequantize_pair_are_named_as_such() {
    let f32s = |v: &[f32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
    let inits = [
        initializer("s", 1, &[], &f32s(&[0.05])),
        initializer("z", 2, &[], &[128]),
        initializer("W", 1, &[2, 1, 1, 1], &f32s(&[0.5, -0.25])),
        initializer("ws", 1, &[2], &f32s(&[0.01, 0.02])),
        initializer("wz", 3, &[2], &[0, 0]),
    ];
    let nodes = [
        node("QuantizeLinear", "x_q", &["x", "s", "z"], "xq", &[]),
        node("DequantizeLinear", "x_dq", &["xq", "s", "z"], "xd", &[]),
        node(
            "QuantizeLinear",
            "w_q",
            &["W", "ws", "wz"],
            "wq",
            &[("axis", 0)],
        ),
        node(
            "DequantizeLinear",
            "w_dq",
            &["wq", "ws", "wz"],
            "wd",
            &[("axis", 0)],
        ),
        node("Conv", "conv", &["xd", "wd"], "y", &[]),
    ];
    let bytes = graph_model(
        &nodes,
        &inits,
        &input(
            "x",
            &[Dim::Size(1), Dim::Size(1), Dim::Size(4), Dim::Size(4)],
        ),
        "y",
    );
    let (_dir, path, stderr) = refused("qdq_pair.onnx", &bytes);
    assert_eq!(
        stderr,
        format!(
            "error: {path}: node `w_q` (QuantizeLinear): quantises the constant `W` (float [2, 1, 1, 1]) \
             inside the graph; accsim does not quantise constants: valid weights are int8/uint8 \
             initializers read through DequantizeLinear, as ONNX Runtime's quantiser writes them by \
             default (float weights behind a QuantizeLinear -> DequantizeLinear pair come from its \
             AddQDQPairToWeight option)\n"
        )
    );
}

/// A symbolic height was reported as "the input must be a 4-D [1, C, H, W]
/// tensor" (it was taken as 1, and a 1x1 float input as rank 2).
#[test]
fn a_symbolic_height_is_named_with_the_fix() {
    let x = input(
        "x",
        &[
            Dim::Name("N"),
            Dim::Size(3),
            Dim::Name("height"),
            Dim::Size(8),
        ],
    );
    let (_dir, path, stderr) = refused("sym.onnx", &graph_model(&[], &[], &x, "x"));
    assert_eq!(
        stderr,
        format!(
            "error: {path}: graph input `x`: dimension 2 (H) is symbolic (`height`); valid: a fixed \
             size for every dimension but the batch (fix it with `python -m \
             onnxruntime.tools.make_dynamic_shape_fixed --dim_param height --dim_value SIZE model.onnx \
             fixed.onnx`)\n"
        )
    );
}

#[test]
fn a_width_without_a_size_is_named_with_the_fix() {
    let x = input(
        "x",
        &[Dim::Size(1), Dim::Size(3), Dim::Size(8), Dim::Unknown],
    );
    let (_dir, path, stderr) = refused("unknown.onnx", &graph_model(&[], &[], &x, "x"));
    assert_eq!(
        stderr,
        format!(
            "error: {path}: graph input `x`: dimension 3 (W) has no size; valid: a fixed size for \
             every dimension but the batch (fix it with `python -m \
             onnxruntime.tools.make_dynamic_shape_fixed --input_name x --input_shape 1,C,H,W \
             model.onnx fixed.onnx`)\n"
        )
    );
}

/// A symbolic batch is one inference: the model loads, 1x2x2.
#[test]
fn a_symbolic_batch_is_one_inference() {
    let f32s = |v: f32| v.to_le_bytes().to_vec();
    let inits = [
        initializer("s", 1, &[], &f32s(0.05)),
        initializer("z", 2, &[], &[128]),
    ];
    let nodes = [
        node("QuantizeLinear", "x_q", &["x", "s", "z"], "xq", &[]),
        node("DequantizeLinear", "x_dq", &["xq", "s", "z"], "xd", &[]),
        node(
            "MaxPool",
            "pool",
            &["xd"],
            "p",
            &[("kernel_shape", 1), ("kernel_shape", 1)],
        ),
        node("QuantizeLinear", "y_q", &["p", "s", "z"], "y", &[]),
    ];
    let x = input(
        "x",
        &[Dim::Name("batch"), Dim::Size(1), Dim::Size(2), Dim::Size(2)],
    );
    let w = accsim::workload::onnx::load_bytes(
        &graph_model(&nodes, &inits, &x, "y"),
        std::path::Path::new("batch.onnx"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(w.network.input_shape.dims(), (1, 2, 2));
    assert_eq!(w.network.layers.len(), 1);
    // Loading does not run the model; the reference outputs come on demand.
    assert!(w.default_outputs.is_empty());
    let out = w.reference_outputs();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0], w.default_input);
}

#[test]
fn a_file_that_is_not_onnx_is_an_input_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("text.onnx");
    std::fs::write(&path, "this is not protobuf \u{7f}\u{ff}").expect("write");
    Command::cargo_bin("accsim")
        .expect("binary")
        .args(["run", "--workload"])
        .arg(&path)
        .assert()
        .code(2)
        .stderr(contains("text.onnx"));
}

#[test]
fn a_scalesim_file_with_a_missing_pool_names_the_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("t.csv");
    std::fs::write(
        &path,
        "Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,\n\
         c1, 32, 32, 3, 3, 3, 8, 1,\nc2, 15, 15, 3, 3, 8, 8, 1,\n",
    )
    .expect("write");
    Command::cargo_bin("accsim")
        .expect("binary")
        .args(["run", "--workload"])
        .arg(&path)
        .assert()
        .code(2)
        .stderr(contains("t.csv:3:1"))
        .stderr(contains("IFMAP Height"));
}

/// `x` (float `[1, 4]`) -> Q -> DQ -> Softmax -> Q, with the activations
/// of type `x_type` and the Softmax output quantised to `y_type` (ONNX
/// data types: 2 uint8, 3 int8), `extra` nodes after that.
fn softmax_model(
    x_type: i64,
    y_type: i64,
    axis: i64,
    dims: &[i64],
    extra: &[Vec<u8>],
    out: &str,
) -> Vec<u8> {
    let f32s = |v: f32| v.to_le_bytes().to_vec();
    let zero = |t: i64| if t == 3 { vec![0x80] } else { vec![0] };
    let inits = [
        initializer("s", 1, &[], &f32s(0.05)),
        initializer("z", x_type, &[], &[0]),
        initializer("ys", 1, &[], &f32s(1.0 / 255.0)),
        initializer("yz", y_type, &[], &zero(y_type)),
    ];
    let mut nodes = vec![
        node("QuantizeLinear", "x_q", &["x", "s", "z"], "xq", &[]),
        node("DequantizeLinear", "x_dq", &["xq", "s", "z"], "xd", &[]),
        node("Softmax", "softmax", &["xd"], "p", &[("axis", axis)]),
        node("QuantizeLinear", "p_q", &["p", "ys", "yz"], "pq", &[]),
    ];
    nodes.extend(extra.iter().cloned());
    let dims: Vec<Dim> = dims.iter().map(|&d| Dim::Size(d)).collect();
    graph_model(&nodes, &inits, &input("x", &dims), out)
}

/// ONNX Runtime 1.32 on x86-64 without VNNI converts int8 Q -> DQ pairs
/// to uint8; a Softmax with a pair on one side only then has a uint8
/// input and an int8 output and runs unfused, in float: refused, naming
/// the Softmax node and the two ways that fuse.
#[test]
fn an_int8_softmax_that_onnx_runtime_runs_unfused_is_refused_naming_why() {
    let bytes = softmax_model(3, 3, 1, &[1, 4], &[], "pq");
    let (_dir, path, stderr) = refused("softmax_s8_unpaired.onnx", &bytes);
    assert_eq!(
        stderr,
        format!(
            "error: {path}: node `softmax` (Softmax): an int8 Softmax with a QuantizeLinear -> \
             DequantizeLinear pair before it and no pair after it: ONNX Runtime (x86-64 without \
             AVX-512 VNNI) rewrites int8 Q -> DQ pairs to uint8, so the two sides' types differ and \
             it runs this Softmax unfused, in float32, which accsim does not model; valid: pairs on \
             both sides (as quantize_static writes: a DequantizeLinear after the Softmax's \
             QuantizeLinear) or uint8 activations\n"
        )
    );
    // With the DequantizeLinear after it, the same Softmax is accepted.
    let dq = node("DequantizeLinear", "p_dq", &["pq", "ys", "yz"], "y", &[]);
    let bytes = softmax_model(3, 3, 1, &[1, 4], &[dq], "y");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("softmax_s8_paired.onnx");
    std::fs::write(&path, bytes).expect("write");
    Command::cargo_bin("accsim")
        .expect("binary")
        .arg("check")
        .arg(&path)
        .assert()
        .success()
        .stdout(contains("softmax"));
}

#[test]
fn a_softmax_whose_output_type_differs_from_its_input_is_refused() {
    let bytes = softmax_model(2, 3, 1, &[1, 4], &[], "pq");
    let (_dir, path, stderr) = refused("softmax_u8_to_s8.onnx", &bytes);
    assert_eq!(
        stderr,
        format!(
            "error: {path}: node `softmax` (Softmax): has uint8 input and its QuantizeLinear writes \
             int8; valid: a QuantizeLinear to uint8, the input's type (ONNX Runtime fuses \
             DequantizeLinear -> Softmax -> QuantizeLinear into QLinearSoftmax only then)\n"
        )
    );
}

/// From opset 13 Softmax reduces one axis: -1 of `[1, C, H, W]` is the
/// width, not the channels accsim reduces.
#[test]
fn a_softmax_over_the_width_is_refused_naming_the_valid_axes() {
    let bytes = softmax_model(2, 2, -1, &[1, 4, 2, 3], &[], "pq");
    let (_dir, path, stderr) = refused("softmax_width.onnx", &bytes);
    assert_eq!(
        stderr,
        format!(
            "error: {path}: node `softmax` (Softmax): axis -1 of the [1, 4, 2, 3] input (opset 13) \
             does not reduce over the channels; accsim computes Softmax over the channels: valid: \
             axis 1 or -1 of a [1, N] tensor, axis 1 of a [1, C, H, W] tensor (before opset 13 only \
             when H = W = 1)\n"
        )
    );
}

/// A node of the `com.microsoft` domain (ONNX Runtime's contrib operators).
fn ms(mut node: Vec<u8>) -> Vec<u8> {
    node.extend(field(7, b"com.microsoft"));
    node
}

/// A model `x` (float `dims`) -> QuantizeLinear (uint8, scale 0.05) ->
/// `nodes`, with int8 weights `w` (4 x 4), their scale `ws` and zero point
/// `wz`, and an output scale `ys` and zero point `yz` (uint8).
fn qoperator_model(dims: &[i64], nodes: &[Vec<u8>], out: &str) -> Vec<u8> {
    let f32s = |v: f32| v.to_le_bytes().to_vec();
    let inits = [
        initializer("s", 1, &[], &f32s(0.05)),
        initializer("z", 2, &[], &[0]),
        initializer("w", 3, &[4, 4], &[1; 16]),
        initializer("ws", 1, &[], &f32s(0.01)),
        initializer("wz", 3, &[], &[0]),
        initializer("ys", 1, &[], &f32s(1.0 / 256.0)),
        initializer("yz", 2, &[], &[0]),
    ];
    let mut all = vec![node("QuantizeLinear", "x_q", &["x", "s", "z"], "xq", &[])];
    all.extend(nodes.iter().cloned());
    let dims: Vec<Dim> = dims.iter().map(|&d| Dim::Size(d)).collect();
    graph_model(&all, &inits, &input("x", &dims), out)
}

/// The operators ONNX Runtime's quantiser writes that accsim does not
/// import are refused with the reason, one line per type (QLinearMul was
/// one, before DenseNet's scale layer was imported, and
/// DynamicQuantizeLinear before dynamic models were; ONNX Runtime's own
/// DynamicQuantizeMatMul, which only its optimised graphs hold, is one now).
#[test]
fn unimported_quantiser_operators_are_refused_with_the_reason() {
    let nodes = [
        ms(node("DynamicQuantizeMatMul", "dq", &["xq"], "b", &[])),
        ms(node("QLinearConcat", "cat", &["b"], "c", &[])),
        ms(node("DynamicQuantizeMatMul", "dq2", &["c"], "d", &[])),
    ];
    let bytes = qoperator_model(&[1, 4], &nodes, "d");
    let (_dir, path, stderr) = refused("qop_unsupported.onnx", &bytes);
    assert_eq!(
        split_refusal(&stderr),
        [
            &format!("error: {path}: 1 operator type accsim does not import (2 nodes):"),
            "  com.microsoft.DynamicQuantizeMatMul: 2 nodes, the first node `dq` (ONNX \
             Runtime's own fusion of DynamicQuantizeLinear -> MatMulInteger -> Cast -> Mul -> \
             Add, found only in a graph it optimised; valid: the model quantize_dynamic wrote, \
             which accsim imports)",
        ]
    );
    assert!(
        stderr.ends_with(
            ", and in the com.microsoft domain (QOperator form) QGemm, QLinearAdd, \
             QLinearMul, QLinearAveragePool, QLinearConcat, QLinearLeakyRelu, QLinearSigmoid, \
             QLinearGlobalAveragePool, QLinearSoftmax\n"
        ),
        "{stderr}"
    );
}

/// A QGemm without y_scale writes float32 (ONNX Runtime's kernel then
/// scales, it does not requantise): refused, naming what is valid.
#[test]
fn a_qgemm_with_a_float_output_is_refused() {
    let qgemm = ms(node(
        "QGemm",
        "fc",
        &["xq", "s", "z", "w", "ws", "wz"],
        "y",
        &[("transB", 1)],
    ));
    let (_dir, path, stderr) =
        refused("qgemm_float.onnx", &qoperator_model(&[1, 4], &[qgemm], "y"));
    assert_eq!(
        stderr,
        format!(
            "error: {path}: node `fc` (QGemm): has no y_scale, so its output is float; valid: \
             y_scale and y_zero_point (a quantised output, as quantize_static writes it)\n"
        )
    );
}

#[test]
fn a_channels_last_qlinear_global_average_pool_is_refused() {
    let gap = ms(node(
        "QLinearGlobalAveragePool",
        "gap",
        &["xq", "s", "z", "ys", "yz"],
        "y",
        &[("channels_last", 1)],
    ));
    let bytes = qoperator_model(&[1, 4, 2, 2], &[gap], "y");
    let (_dir, path, stderr) = refused("gap_nhwc.onnx", &bytes);
    assert_eq!(
        stderr,
        format!(
            "error: {path}: node `gap` (QLinearGlobalAveragePool): channels_last = 1 (an NHWC \
             tensor); valid: channels_last = 0 (NCHW, as quantize_static writes it)\n"
        )
    );
}

/// QLinearSoftmax takes its axis rules from its `opset` attribute: axis -1
/// at opset 13 is the width of a `[1, C, H, W]` tensor; without the
/// attribute ONNX Runtime refuses the node.
#[test]
fn a_qlinear_softmax_over_the_width_or_without_opset_is_refused() {
    let inputs = ["xq", "s", "z", "ys", "yz"];
    let width = ms(node(
        "QLinearSoftmax",
        "sm",
        &inputs,
        "y",
        &[("axis", -1), ("opset", 13)],
    ));
    let bytes = qoperator_model(&[1, 4, 2, 3], &[width], "y");
    let (_dir, path, stderr) = refused("qsoftmax_width.onnx", &bytes);
    assert_eq!(
        stderr,
        format!(
            "error: {path}: node `sm` (QLinearSoftmax): axis -1 of the [1, 4, 2, 3] input (opset \
             13) does not reduce over the channels; accsim computes Softmax over the channels: \
             valid: axis 1 or -1 of a [1, N] tensor, axis 1 of a [1, C, H, W] tensor (before opset \
             13 only when H = W = 1)\n"
        )
    );
    let no_opset = ms(node("QLinearSoftmax", "sm", &inputs, "y", &[("axis", 1)]));
    let bytes = qoperator_model(&[1, 4], &[no_opset], "y");
    let (_dir, path, stderr) = refused("qsoftmax_no_opset.onnx", &bytes);
    assert_eq!(
        stderr,
        format!(
            "error: {path}: node `sm` (QLinearSoftmax): has no `opset` attribute; valid: the \
             opset of the Softmax it replaces (ONNX Runtime requires it)\n"
        )
    );
    // With its opset, the same node over the channels of [1, 4] is accepted.
    let ok = ms(node(
        "QLinearSoftmax",
        "sm",
        &inputs,
        "y",
        &[("axis", 1), ("opset", 13)],
    ));
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("qsoftmax.onnx");
    std::fs::write(&path, qoperator_model(&[1, 4], &[ok], "y")).expect("write");
    Command::cargo_bin("accsim")
        .expect("binary")
        .arg("check")
        .arg(&path)
        .assert()
        .success()
        .stdout(contains("softmax"));
}

/// `x` (float `[1, 4]`) -> Q -> DQ (uint8, zero point 0) -> Sum of `k`
/// copies -> [Relu] -> Q with output zero point `yz`.
fn sum_model(k: usize, relu: bool, yz: u8) -> Vec<u8> {
    let f32s = |v: f32| v.to_le_bytes().to_vec();
    let inits = [
        initializer("s", 1, &[], &f32s(0.05)),
        initializer("z", 2, &[], &[0]),
        initializer("ys", 1, &[], &f32s(0.1)),
        initializer("yz", 2, &[], &[yz]),
    ];
    let copies = vec!["xd"; k];
    let mut nodes = vec![
        node("QuantizeLinear", "x_q", &["x", "s", "z"], "xq", &[]),
        node("DequantizeLinear", "x_dq", &["xq", "s", "z"], "xd", &[]),
        node("Sum", "sum", &copies, "t", &[]),
    ];
    let summed = if relu {
        nodes.push(node("Relu", "relu", &["t"], "r", &[]));
        "r"
    } else {
        "t"
    };
    nodes.push(node(
        "QuantizeLinear",
        "y_q",
        &[summed, "ys", "yz"],
        "y",
        &[],
    ));
    graph_model(
        &nodes,
        &inits,
        &input("x", &[Dim::Size(1), Dim::Size(4)]),
        "y",
    )
}

/// A Sum of two is an Add in float32 (as ONNX Runtime runs it), a Sum of
/// three or more one `sum` layer (float32, input order).
#[test]
fn sums_of_two_and_of_three_inputs_are_accepted() {
    for (k, kind) in [(2, "add"), (3, "sum")] {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(format!("sum{k}.onnx"));
        std::fs::write(&path, sum_model(k, true, 0)).expect("write");
        Command::cargo_bin("accsim")
            .expect("binary")
            .arg("check")
            .arg(&path)
            .assert()
            .success()
            .stdout(contains(kind));
    }
}

/// `x` quantised and dequantised on `[1, 2, 3, 3]`, then `nodes` reading
/// `xd` (float) or `xq` (integers), quantised again as `y` from `out`.
fn float_op_model(nodes: &[Vec<u8>], out: &str) -> Vec<u8> {
    let f32s = |v: f32| v.to_le_bytes().to_vec();
    let inits = [
        initializer("s", 1, &[], &f32s(0.05)),
        initializer("z", 2, &[], &[0]),
    ];
    let mut all = vec![
        node("QuantizeLinear", "x_q", &["x", "s", "z"], "xq", &[]),
        node("DequantizeLinear", "x_dq", &["xq", "s", "z"], "xd", &[]),
    ];
    all.extend(nodes.iter().cloned());
    all.push(node("QuantizeLinear", "y_q", &[out, "s", "z"], "y", &[]));
    let dims = [Dim::Size(1), Dim::Size(2), Dim::Size(3), Dim::Size(3)];
    graph_model(&all, &inits, &input("x", &dims), "y")
}

/// accsim concatenates channels; any other axis is refused naming the valid ones.
#[test]
fn a_concat_along_the_width_is_refused_naming_the_valid_axis() {
    let cat = node("Concat", "cat", &["xd", "xd"], "c", &[("axis", 3)]);
    let (_dir, path, stderr) = refused("concat_w.onnx", &float_op_model(&[cat], "c"));
    assert_eq!(
        stderr,
        format!(
            "error: {path}: node `cat` (Concat): concatenates along axis 3; accsim concatenates \
             channels: valid: axis 1 (or -3 of [1, C, H, W])\n"
        )
    );
    let ok = node("Concat", "cat", &["xd", "xd"], "c", &[("axis", 1)]);
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("concat_c.onnx");
    std::fs::write(&path, float_op_model(&[ok], "c")).expect("write");
    Command::cargo_bin("accsim")
        .expect("binary")
        .arg("check")
        .arg(&path)
        .assert()
        .success()
        .stdout(contains("concat"));
}

/// ONNX Runtime runs LRN on float32 only: an LRN of integers (no
/// DequantizeLinear before it) is refused naming the valid form.
#[test]
fn an_lrn_of_integers_is_refused_naming_the_qdq_form() {
    let lrn = node("LRN", "lrn", &["xq"], "l", &[("size", 3)]);
    let (_dir, path, stderr) = refused("lrn_int.onnx", &float_op_model(&[lrn], "l"));
    assert_eq!(
        stderr,
        format!(
            "error: {path}: node `lrn` (LRN): LRN needs a dequantised activation: valid is \
             DequantizeLinear -> LRN -> QuantizeLinear (QDQ form; ONNX Runtime runs LRN in \
             float32)\n"
        )
    );
}

/// ONNX Runtime's LRN kernel refuses an even size (its window is centred);
/// so does the importer, naming the node and what is valid.
#[test]
fn an_lrn_of_even_size_is_refused_as_onnx_runtime_refuses_it() {
    let lrn = node("LRN", "lrn", &["xd"], "l", &[("size", 4)]);
    let (_dir, path, stderr) = refused("lrn_even.onnx", &float_op_model(&[lrn], "l"));
    assert_eq!(
        stderr,
        format!(
            "error: {path}: node `lrn` (LRN): size 4, alpha 0.0001, beta 0.75, bias 1; valid: an \
             odd size >= 1, finite alpha > 0, beta > 0, finite bias (ONNX Runtime's limits)\n"
        )
    );
}

/// A Relu after a Sum is a no-op only when the QuantizeLinear's zero point
/// is the type's minimum (ONNX Runtime then drops it); otherwise refused.
#[test]
fn a_relu_after_a_sum_that_would_clamp_is_refused() {
    let (_dir, path, stderr) = refused("sum_relu.onnx", &sum_model(2, true, 10));
    assert_eq!(
        stderr,
        format!(
            "error: {path}: node `y_q` (QuantizeLinear): a Relu between the Sum and this \
             QuantizeLinear clamps at zero point 10; valid: a zero point of 0 (the type's minimum, \
             where the Relu changes nothing and ONNX Runtime drops it)\n"
        )
    );
}

/// Transpose is imported only as ShuffleNet's channel shuffle; any other
/// is refused naming the one pattern that is valid.
#[test]
fn a_transpose_that_is_not_a_channel_shuffle_is_refused() {
    let f32s = |v: f32| v.to_le_bytes().to_vec();
    let inits = [
        initializer("s", 1, &[], &f32s(0.05)),
        initializer("z", 2, &[], &[0]),
    ];
    let nodes = [
        node("QuantizeLinear", "x_q", &["x", "s", "z"], "xq", &[]),
        node(
            "Transpose",
            "t",
            &["xq"],
            "y",
            &[("perm", 0), ("perm", 2), ("perm", 1), ("perm", 3)],
        ),
    ];
    let dims = [Dim::Size(1), Dim::Size(4), Dim::Size(2), Dim::Size(2)];
    let bytes = graph_model(&nodes, &inits, &input("x", &dims), "y");
    let (_dir, path, stderr) = refused("transpose.onnx", &bytes);
    assert_eq!(
        stderr,
        format!(
            "error: {path}: node `t` (Transpose): Transpose with perm [0, 2, 1, 3]; valid: \
             ShuffleNet's channel shuffle, Reshape of [1, C, H, W] to [1, g, C/g, H, W], Transpose \
             with perm [0, 2, 1, 3, 4], Reshape back to [1, C, H, W]\n"
        )
    );
}

/// `DQ, DQ -> Sum -> Relu -> pool -> Q` with no QuantizeLinear after the
/// Relu (ResNet-50's last block in QDQ form), which ONNX Runtime runs in
/// float32 (docs/onnx.md, item 18).
fn float_chain_model(pool: Vec<u8>) -> Vec<u8> {
    let f32s = |v: f32| v.to_le_bytes().to_vec();
    let inits = [
        initializer("s", 1, &[], &f32s(0.05)),
        initializer("z", 2, &[], &[0]),
    ];
    let nodes = [
        node("QuantizeLinear", "x_q", &["x", "s", "z"], "xq", &[]),
        node("DequantizeLinear", "x_dq", &["xq", "s", "z"], "xd", &[]),
        node("Sum", "sum", &["xd", "xd"], "t", &[]),
        node("Relu", "relu", &["t"], "r", &[]),
        pool,
        node("QuantizeLinear", "p_q", &["p", "s", "z"], "y", &[]),
    ];
    let dims = [Dim::Size(1), Dim::Size(4), Dim::Size(3), Dim::Size(3)];
    graph_model(&nodes, &inits, &input("x", &dims), "y")
}

/// The chain is one `float_chain` layer when the pool averages the whole
/// plane (GlobalAveragePool, or an AveragePool window of the plane's size,
/// ONNX Runtime's two summation orders); any other window is refused
/// naming the valid ones. Before, every such pool was refused.
#[test]
fn a_float_chain_is_pooled_over_the_whole_plane_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    let whole = [
        node("GlobalAveragePool", "pool", &["r"], "p", &[]),
        node(
            "AveragePool",
            "pool",
            &["r"],
            "p",
            &[("kernel_shape", 3), ("kernel_shape", 3)],
        ),
    ];
    for (k, pool) in whole.into_iter().enumerate() {
        let path = dir.path().join(format!("chain{k}.onnx"));
        std::fs::write(&path, float_chain_model(pool)).expect("write");
        let w =
            accsim::workload::load(path.to_str().expect("utf-8")).unwrap_or_else(|e| panic!("{e}"));
        let kinds: Vec<&str> = w.network.layers.iter().map(|l| l.op.kind()).collect();
        assert_eq!(kinds, ["float_chain"], "pool {k}");
        assert_eq!(w.network.layers[0].output_shape.to_string(), "4x1x1");
    }
    let part = node(
        "AveragePool",
        "pool",
        &["r"],
        "p",
        &[("kernel_shape", 2), ("kernel_shape", 2)],
    );
    let (_dir, path, stderr) = refused("float_chain.onnx", &float_chain_model(part));
    assert_eq!(
        stderr,
        format!(
            "error: {path}: node `pool` (AveragePool): AveragePool reads the float32 result of \
             `sum` with no QuantizeLinear between; accsim averages a float32 chain over the whole \
             plane only; valid: a 3x3 window with no pads, GlobalAveragePool, or a QuantizeLinear \
             before the pool\n"
        )
    );
}

/// LeakyRelu and Sigmoid are imported between DequantizeLinear and
/// QuantizeLinear (ONNX Runtime: QLinearLeakyRelu, QLinearSigmoid); on
/// integers they are refused naming that form.
#[test]
fn a_sigmoid_of_integers_is_refused_naming_the_qdq_form() {
    let sigmoid = node("Sigmoid", "sig", &["xq"], "g", &[]);
    let (_dir, path, stderr) = refused("sigmoid_int.onnx", &float_op_model(&[sigmoid], "g"));
    assert_eq!(
        stderr,
        format!(
            "error: {path}: node `sig` (Sigmoid): Sigmoid needs a dequantised activation: valid is \
             DequantizeLinear -> Sigmoid -> QuantizeLinear (QDQ form), which ONNX Runtime runs as \
             QLinearSigmoid\n"
        )
    );
}

/// DenseNet's scale layer is a QLinearMul by a per-channel constant
/// (item 19); a product of two activations, or a constant that would
/// broadcast along another axis than the channels, is refused, naming what
/// is valid.
#[test]
fn a_qlinear_mul_of_two_activations_or_a_misshaped_constant_is_refused() {
    let two = [ms(node(
        "QLinearMul",
        "mul",
        &["xq", "s", "z", "xq", "s", "z", "ys", "yz"],
        "y",
        &[],
    ))];
    let (_dir, path, stderr) =
        refused("qlinear_mul_two.onnx", &qoperator_model(&[1, 4], &two, "y"));
    assert_eq!(
        stderr,
        format!(
            "error: {path}: node `mul` (QLinearMul): multiplies two activations; valid: B a \
             per-channel constant (DenseNet's scale layer), as quantize_static writes it\n"
        )
    );
    let misshaped = [ms(node(
        "QLinearMul",
        "mul",
        &["xq", "s", "z", "w", "ws", "wz", "ys", "yz"],
        "y",
        &[],
    ))];
    let bytes = qoperator_model(&[1, 4], &misshaped, "y");
    let (_dir, path, stderr) = refused("qlinear_mul_shape.onnx", &bytes);
    assert_eq!(
        stderr,
        format!(
            "error: {path}: node `mul` (QLinearMul): the constant operand has shape [4, 4]; \
             valid: one value per channel ([4] or [1, 4] for the [1, N] input) or one value\n"
        )
    );
}
