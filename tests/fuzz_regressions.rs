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
