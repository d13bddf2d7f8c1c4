//! Bad ONNX files: every unsupported operator named at once, exit code 2.

use assert_cmd::Command;
use predicates::str::contains;

/// A hand-encoded ModelProto: one graph with `nodes` (op_type, name) and a
/// float input `x`; field numbers as in onnx.proto.
fn model(nodes: &[(&str, &str)]) -> Vec<u8> {
    fn field(tag: u32, bytes: &[u8]) -> Vec<u8> {
        let mut v = vec![(tag << 3 | 2) as u8];
        let mut n = bytes.len();
        loop {
            let b = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                v.push(b);
                break;
            }
            v.push(b | 0x80);
        }
        v.extend_from_slice(bytes);
        v
    }
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

#[test]
fn unsupported_operators_are_listed_together_with_exit_code_2() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bad.onnx");
    std::fs::write(
        &path,
        model(&[("Softmax", "sm"), ("Relu", "r"), ("LSTM", "rnn1")]),
    )
    .expect("write");
    Command::cargo_bin("accsim")
        .expect("binary")
        .args(["run", "--workload"])
        .arg(&path)
        .assert()
        .code(2)
        .stderr(contains("2 unsupported operator node(s)"))
        .stderr(contains("Softmax at node `sm`"))
        .stderr(contains("LSTM at node `rnn1`"));
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
