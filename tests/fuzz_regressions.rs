//! One test per fuzzer finding (docs/testing.md, "A finding"), named for the
//! behaviour the fix gives. Each comment names the fuzz target, the input
//! and the symptom before the fix.

use std::path::{Path, PathBuf};

use accsim::workload::Workload;

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/onnx")
        .join(name)
}

/// `bytes` with the raw data of the initializer named `name` replaced; the
/// encoding is `name` (field 8) followed by `raw_data` (field 9).
fn set_raw(bytes: &mut [u8], name: &str, raw: &[u8]) {
    let mut key = vec![0x42, name.len() as u8];
    key.extend_from_slice(name.as_bytes());
    key.extend_from_slice(&[0x4a, raw.len() as u8]);
    let at = bytes
        .windows(key.len())
        .position(|w| w == key.as_slice())
        .unwrap_or_else(|| panic!("initializer `{name}` not found"));
    bytes[at + key.len()..at + key.len() + raw.len()].copy_from_slice(raw);
}

fn load(bytes: &[u8]) -> Workload {
    accsim::workload::onnx::load_bytes(bytes, Path::new("clip.onnx"))
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Target `onnx`, 15 minutes in: `qlinearconv_u8_clip.onnx` with its
/// integer Clip's min (60) above its max (17). The loader narrowed the
/// QLinearConv's output clamp to [60, 17] and the reference executor
/// panicked in `i64::clamp` ("min > max"). ONNX defines Clip as
/// `Min(max, Max(input, min))`, so every output is the max.
#[test]
fn an_integer_clip_with_min_above_max_outputs_max_everywhere() {
    let mut bytes =
        std::fs::read(data("qlinearconv_u8_clip.onnx")).unwrap_or_else(|e| panic!("{e}"));
    set_raw(&mut bytes, "c_11", &[60]);
    set_raw(&mut bytes, "c_12", &[17]);
    let w = load(&bytes);
    let outputs = w.reference_outputs();
    let out = outputs.last().unwrap_or_else(|| panic!("no layers"));
    assert!(!out.is_empty());
    assert!(out.iter().all(|&v| v == 17), "{out:?}");
}

/// Found with the same finding, by reading the QDQ path: a float Clip(6, 0)
/// between a Conv and its QuantizeLinear gave every output Q(6) (the clamp
/// was widened to the min); ONNX gives the max, Q(0): the zero point.
#[test]
fn a_qdq_clip_with_min_above_max_outputs_the_quantised_max() {
    let mut bytes = std::fs::read(data("qdq_conv_u8_relu6.onnx")).unwrap_or_else(|e| panic!("{e}"));
    set_raw(&mut bytes, "min_21", &6.0f32.to_le_bytes());
    set_raw(&mut bytes, "max_22", &0.0f32.to_le_bytes());
    let w = load(&bytes);
    let layer = w
        .network
        .layers
        .last()
        .unwrap_or_else(|| panic!("no layers"));
    let zero = layer.output_quant.zero() as i16;
    let outputs = w.reference_outputs();
    let out = outputs.last().unwrap_or_else(|| panic!("no layers"));
    assert!(out.iter().all(|&v| v == zero), "zero point {zero}: {out:?}");
    // Unchanged, the model is a ReLU6: not constant.
    let w = load(&std::fs::read(data("qdq_conv_u8_relu6.onnx")).unwrap_or_else(|e| panic!("{e}")));
    let outputs = w.reference_outputs();
    let out = outputs.last().unwrap_or_else(|| panic!("no layers"));
    assert!(out.iter().any(|&v| v != zero));
}

/// Target `onnx`, in the CI smoke of 4 December 2026 (8 s in):
/// `qdq_shuffle_cnn_u8_per_channel.onnx` with the channel shuffle's first
/// Reshape target `[1, 2^62 + 3, 4, 8, 8]`. The importer multiplied the group
/// count by the channels per group to compare with C and overflowed `i64` (wrapping, the product is 12 = C, so a release build took it for a shuffle of 2^62 + 3 groups)
/// ("attempt to multiply with overflow" under the fuzz build's overflow
/// checks). The product is now checked: the shape is not a channel shuffle
/// and the Reshape is refused, naming the node and what is valid.
#[test]
fn a_shuffle_reshape_whose_groups_times_channels_overflow_is_refused() {
    let name = "qdq_shuffle_cnn_u8_per_channel.onnx";
    let mut bytes = std::fs::read(data(name)).unwrap_or_else(|e| panic!("{e}"));
    let dims: Vec<u8> = [1i64, (1 << 62) + 3, 4, 8, 8]
        .iter()
        .flat_map(|d| d.to_le_bytes())
        .collect();
    set_raw(&mut bytes, "shape_7", &dims);
    let err = match accsim::workload::onnx::load_bytes(&bytes, Path::new(name)) {
        Ok(_) => panic!("the overflowing shuffle shape loaded"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains(name), "{err}");
    assert!(err.contains("Reshape"), "{err}");
}

/// Target `onnx`, 5 minutes in (4 December 2026): a flattening Reshape
/// whose target shape has an inferred `-1` beside dimensions whose product
/// overflows `i64` (`qdq_softmax_reshape_4d_s8.onnx` with its target
/// `[1, 10, 1, 1]` made `[2^32, 2^32, -1, 1]`). The flatten multiplied them
/// unchecked ("attempt to multiply with overflow" in the fuzz build). It
/// now shares the channel shuffle's `reshape_dims`, which saturates: the
/// shape is no flatten and the Reshape is refused, naming the node.
#[test]
fn a_flatten_reshape_whose_known_dims_overflow_is_refused() {
    let name = "qdq_softmax_reshape_4d_s8.onnx";
    let mut bytes = std::fs::read(data(name)).unwrap_or_else(|e| panic!("{e}"));
    let dims: Vec<u8> = [1i64 << 32, 1 << 32, -1, 1]
        .iter()
        .flat_map(|d| d.to_le_bytes())
        .collect();
    set_raw(&mut bytes, "shape_17", &dims);
    let err = match accsim::workload::onnx::load_bytes(&bytes, Path::new(name)) {
        Ok(_) => panic!("the overflowing flatten shape loaded"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains(name), "{err}");
    assert!(err.contains("Reshape"), "{err}");
}

/// Target `onnx`, 3 minutes in (4 December 2026, after dynamic
/// quantisation was imported): a Reshape of a constant (`dynamic_cnn_u8.onnx`'s
/// bias, 8 values, target `[1, -1, 1, 1]`) whose target dimensions
/// overflow when multiplied ("attempt to multiply with overflow" in the
/// fuzz build). Here the target is `[2^61 + 1, 8, 1, 1]`: the product
/// wraps to `2^64 + 8 = 8`, the bias's length, so a release build took the
/// constant for a `[2^61 + 1, 8, 1, 1]` tensor. The target is now resolved
/// with ONNX's rules shared with activations (`reshape_dims`) and the
/// element count is checked: the Reshape is refused, naming the file and
/// the node.
#[test]
fn a_constant_reshape_whose_dims_overflow_is_refused() {
    let name = "dynamic_cnn_u8.onnx";
    let mut bytes = std::fs::read(data(name)).unwrap_or_else(|e| panic!("{e}"));
    // The target is packed varints (`int64_data`, field 7, 13 bytes): 1,
    // -1 (ten bytes), 1, 1. The same 13 bytes spell 2^61 + 1 (nine bytes),
    // 8 (padded to two), 1, 1.
    let old: Vec<u8> = [&[0x3a, 13, 1][..], &[0xff; 9], &[0x01, 1, 1]].concat();
    let new: Vec<u8> = [
        &[0x3a, 13][..],
        &[0x81, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x20],
        &[0x88, 0x00],
        &[1, 1],
    ]
    .concat();
    let at = bytes
        .windows(old.len())
        .position(|w| w == old.as_slice())
        .unwrap_or_else(|| panic!("the bias Reshape's target not found"));
    bytes[at..at + old.len()].copy_from_slice(&new);
    let err = match accsim::workload::onnx::load_bytes(&bytes, Path::new(name)) {
        Ok(_) => panic!("the overflowing constant shape loaded"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains(name), "{err}");
    assert!(err.contains("Reshape"), "{err}");
}
