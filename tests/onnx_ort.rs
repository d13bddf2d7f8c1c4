//! accsim's ONNX import against ONNX Runtime, bit for bit.
//!
//! `tests/data/onnx/` holds small quantised models and the outputs ONNX
//! Runtime computed for their inputs (`scripts/onnx_cases.py` made them;
//! `cases.json` records what ONNX Runtime ran). Each case is imported,
//! run through the reference executor, and its last layer compared with the
//! golden exactly: integer outputs element by element, float outputs (a
//! trailing DequantizeLinear) as `f32(q - zero_point) * scale`, bit for bit.

use std::path::{Path, PathBuf};

use accsim::numerics::TensorQuant;
use accsim::reference;
use accsim::run::read_input;
use accsim::workload::npy::{NpyArray, read_npy_any};
use accsim::workload::{Activations, TensorSource};

fn data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/onnx")
}

fn case_names() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(data())
        .expect("tests/data/onnx exists")
        .filter_map(|e| {
            let p = e.ok()?.path();
            if p.extension()? != "onnx" {
                return None;
            }
            Some(p.file_stem()?.to_string_lossy().into_owned())
        })
        .collect();
    names.sort();
    names
}

/// Runs one case; returns a description of the first difference, if any.
fn check(name: &str) -> Result<(), String> {
    let dir = data();
    let model = dir.join(format!("{name}.onnx"));
    let w = accsim::workload::load(model.to_str().expect("utf-8 path"))
        .map_err(|e| format!("import: {e}"))?;
    let x = read_input(&w, &dir.join(format!("{name}.input.npy")))
        .map_err(|e| format!("input: {e}"))?;
    let net = &w.network;
    let exec = reference::run(net, x);
    let last = net.layers.len() - 1;
    let got = exec.tensor(TensorSource::Layer(last));
    let golden =
        read_npy_any(&dir.join(format!("{name}.output.npy"))).map_err(|e| e.to_string())?;
    if golden.shape().iter().product::<usize>() != got.len() {
        return Err(format!(
            "shape: golden {:?}, accsim {:?}",
            golden.shape(),
            got.dim()
        ));
    }
    let expect: Vec<i64> = match &golden {
        NpyArray::F32(a) => {
            let TensorQuant::Affine {
                scale, zero_point, ..
            } = net.layers[last].output_quant
            else {
                return Err("float golden for a fixed-point output".into());
            };
            // Compare as ORT's DequantizeLinear would produce from accsim's integers.
            let mine: Vec<u32> = got
                .iter()
                .map(|&q| ((i32::from(q) - zero_point) as f32 * scale).to_bits())
                .collect();
            let theirs: Vec<u32> = a.iter().map(|v| v.to_bits()).collect();
            if let Some(i) = (0..mine.len()).find(|&i| mine[i] != theirs[i]) {
                let differing = (0..mine.len()).filter(|&i| mine[i] != theirs[i]).count();
                return Err(format!(
                    "element {i}: accsim {} ORT {} ({differing} of {} differ)",
                    f32::from_bits(mine[i]),
                    f32::from_bits(theirs[i]),
                    mine.len()
                ));
            }
            return Ok(());
        }
        other => other.to_i64().ok_or("unexpected golden type")?,
    };
    let mine: Vec<i64> = got.iter().map(|&v| i64::from(v)).collect();
    if let Some(i) = (0..mine.len()).find(|&i| mine[i] != expect[i]) {
        let differing = (0..mine.len()).filter(|&i| mine[i] != expect[i]).count();
        return Err(format!(
            "element {i}: accsim {} ORT {} ({differing} of {} differ)",
            mine[i],
            expect[i],
            mine.len()
        ));
    }
    Ok(())
}

#[test]
fn every_onnx_case_matches_onnx_runtime_bit_for_bit() {
    let names = case_names();
    assert!(names.len() >= 30, "only {} ONNX cases", names.len());
    let failures: Vec<String> = names
        .iter()
        .filter_map(|n| check(n).err().map(|e| format!("{n}: {e}")))
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} cases differ from ONNX Runtime:\n{}",
        failures.len(),
        names.len(),
        failures.join("\n")
    );
}

/// The cases run on several inputs (`<case>.inputs.npy`, stacked float
/// inputs, and `<case>.outputs.npy`, ONNX Runtime's float outputs): the
/// classifiers ending in Softmax.
fn multi_input_cases() -> Vec<String> {
    case_names()
        .into_iter()
        .filter(|n| data().join(format!("{n}.inputs.npy")).exists())
        .collect()
}

fn floats(path: &Path) -> (Vec<f32>, Vec<usize>) {
    match read_npy_any(path) {
        Ok(NpyArray::F32(a)) => (a.iter().copied().collect(), a.shape().to_vec()),
        other => panic!("{}: float32 expected, got {other:?}", path.display()),
    }
}

/// Each input of a multi-input case, quantised by the model's input
/// QuantizeLinear, with ONNX Runtime's float output for it.
fn inputs_and_goldens(w: &accsim::workload::Workload, name: &str) -> Vec<(Activations, Vec<f32>)> {
    let (xs, x_shape) = floats(&data().join(format!("{name}.inputs.npy")));
    let (ys, y_shape) = floats(&data().join(format!("{name}.outputs.npy")));
    let n = x_shape[0];
    assert_eq!(n, 10, "{name}: 10 inputs");
    assert_eq!(y_shape[0], n, "{name}: one output per input");
    let net = &w.network;
    let (x_len, y_len) = (xs.len() / n, ys.len() / n);
    assert_eq!(x_len, net.input_shape.len(), "{name}: input size");
    (0..n)
        .map(|k| {
            let q: Vec<i16> = xs[k * x_len..(k + 1) * x_len]
                .iter()
                .map(|&v| net.input_quant.quantize(f64::from(v)) as i16)
                .collect();
            let x = Activations::from_shape_vec(net.input_shape.dims(), q)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            (x, ys[k * y_len..(k + 1) * y_len].to_vec())
        })
        .collect()
}

/// accsim's integers of the last layer, dequantised as ONNX Runtime's
/// trailing DequantizeLinear does, as bits.
fn dequantised_bits(net: &accsim::workload::Network, out: &Activations) -> Vec<u32> {
    let last = net.layers.len() - 1;
    let TensorQuant::Affine {
        scale, zero_point, ..
    } = net.layers[last].output_quant
    else {
        panic!("an affine output");
    };
    out.iter()
        .map(|&q| ((i32::from(q) - zero_point) as f32 * scale).to_bits())
        .collect()
}

/// The classifiers ending in Softmax (quantize_static, uint8 and int8
/// activations, per-tensor and per-channel weights; a `[1, 10]` Softmax
/// after Gemm and a `[1, 10, 1, 1]` one after a 1x1 conv; QDQ, and QOperator
/// with its com.microsoft QLinearAdd, QLinearAveragePool,
/// QLinearGlobalAveragePool, QGemm and QLinearSoftmax; a residual `Sum`,
/// which ONNX Runtime runs in float32, in both forms; a channel shuffle), each on its 10
/// seeded inputs: the reference executor and the simulated machine (the
/// Softmax computed by the GLB unit) both give ONNX Runtime's outputs bit
/// for bit.
#[test]
fn softmax_classifiers_match_onnx_runtime_on_ten_inputs_each() {
    let names = multi_input_cases();
    assert_eq!(names.len(), 28, "{names:?}");
    let arch = accsim::arch::load("lu22_fixed").unwrap_or_else(|e| panic!("{e}"));
    for name in &names {
        let model = data().join(format!("{name}.onnx"));
        let w = accsim::workload::load(model.to_str().expect("utf-8 path"))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let net = &w.network;
        let last = net.layers.len() - 1;
        assert_eq!(net.layers[last].op.kind(), "softmax", "{name}");
        for (k, (x, golden)) in inputs_and_goldens(&w, name).into_iter().enumerate() {
            let theirs: Vec<u32> = golden.iter().map(|v| v.to_bits()).collect();
            let exec = reference::run(net, x.clone());
            let reference_bits = dequantised_bits(net, exec.tensor(TensorSource::Layer(last)));
            assert_eq!(reference_bits, theirs, "{name}, input {k}: reference");
            let mut one = w.clone();
            one.default_input = x;
            one.default_outputs = Vec::new();
            let r = accsim::run::run(&one, &arch, &accsim::run::RunOptions::default())
                .unwrap_or_else(|e| panic!("{name}, input {k}: {e}"));
            assert!(r.report.bit_exact, "{name}, input {k}");
            let softmax = &r.report.layers[last];
            assert_eq!(softmax.values.as_deref(), Some("simulated"), "{name}");
            let engine_bits = dequantised_bits(net, &r.engine.outputs[last]);
            assert_eq!(engine_bits, theirs, "{name}, input {k}: engine");
        }
    }
}

/// The new GLB-unit layers cost what docs/onnx.md (items 13 to 19) says,
/// on lu22_fixed (8 bytes per cycle, 1-byte words, 8 output rows of 8
/// columns): cycles = 8 rows x the unit's busy cycles per row, plus one
/// for the last row's GLB write; GLB reads and writes per element; LUT
/// reads for the requantised or looked-up elements.
#[test]
fn glb_unit_layers_cost_what_the_docs_say() {
    let arch = accsim::arch::load("lu22_fixed").unwrap_or_else(|e| panic!("{e}"));
    // (case, layer kind, cycles, GLB reads, GLB writes, LUT reads)
    let expected = [
        // 18 channels: 144 bytes a row, 18 cycles; 4 + 8 channels requantised.
        (
            "qdq_concat_cnn_u8_per_channel",
            "concat",
            8 * 18 + 1,
            1152,
            1152,
            768,
        ),
        // Three operands of 64 bytes a row: 24 cycles.
        (
            "qdq_sum3_cnn_u8_per_channel",
            "sum",
            8 * 24 + 1,
            1536,
            512,
            0,
        ),
        // One power per element: 64 cycles a row (streaming takes 8).
        ("qdq_lrn_cnn_u8_per_channel", "lrn", 8 * 64 + 1, 512, 512, 0),
        // One table read per element, 64 bytes a row: 8 cycles.
        (
            "qdq_activations_cnn_u8_per_channel",
            "leaky_relu",
            8 * 8 + 1,
            512,
            512,
            512,
        ),
        (
            "qdq_activations_cnn_u8_per_channel",
            "sigmoid",
            8 * 8 + 1,
            512,
            512,
            512,
        ),
    ];
    let expected = expected.into_iter().chain([
        // ResNet-50's tail in small (item 18): two 8x7x7 uint8 operands read
        // once (784 bytes, 98 cycles), the whole plane for the one output
        // row, 8 outputs written.
        (
            "qdq_chain_cnn_u8_per_channel",
            "float_chain",
            98 + 1,
            784,
            8,
            0,
        ),
        // DenseNet's dense layer in small (item 19): 12 channels of 8
        // columns, 96 bytes a row (12 cycles), each element read once.
        (
            "qdq_bn_cnn_u8_per_channel",
            "batch_norm",
            8 * 12 + 1,
            768,
            768,
            0,
        ),
        (
            "qdq_bn_cnn_u8_per_channel",
            "channel_mul",
            8 * 12 + 1,
            768,
            768,
            0,
        ),
        (
            "qop_bn_cnn_u8_per_channel",
            "channel_add",
            8 * 12 + 1,
            768,
            768,
            0,
        ),
    ]);
    for (name, kind, cycles, reads, writes, lut) in expected {
        let model = data().join(format!("{name}.onnx"));
        let w = accsim::workload::load(model.to_str().expect("utf-8 path"))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let r = accsim::run::run(&w, &arch, &accsim::run::RunOptions::default())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let layer = r
            .report
            .layers
            .iter()
            .find(|l| l.op == kind)
            .unwrap_or_else(|| panic!("{name}: no {kind} layer"));
        assert_eq!(layer.values.as_deref(), Some("simulated"), "{name} {kind}");
        let m = layer.measured.as_ref().expect("measured");
        let glb = &m.accesses.glb;
        assert_eq!(
            (m.cycles, glb.read, glb.write, m.lut_reads),
            (cycles, reads, writes, lut),
            "{name} {kind}"
        );
    }
}

/// A float32 tensor a QOperator residual carries to the next Sum (item 18)
/// is stored as two 16-bit words per element: the first block's Sum of two
/// 8x7x7 uint8 operands writes 16x7x7 words (4 bytes per element), reads
/// each operand element once (784 reads, 112 bytes a row: 14 cycles of
/// the unit at 8 bytes per cycle, 98 over the 7 rows), and the Relu'd sum's
/// QuantizeLinear for the next conv is a second layer that reads those
/// words (784) and writes the 392 uint8 outputs; the last block's Sum
/// reads a float32 operand and quantises for the pool.
#[test]
fn a_float32_residual_is_carried_as_four_bytes_per_element() {
    let arch = accsim::arch::load("lu22_fixed").unwrap_or_else(|e| panic!("{e}"));
    let name = "qop_chain_cnn_u8_per_channel";
    let model = data().join(format!("{name}.onnx"));
    let w = accsim::workload::load(model.to_str().expect("utf-8 path"))
        .unwrap_or_else(|e| panic!("{e}"));
    let r = accsim::run::run(&w, &arch, &accsim::run::RunOptions::default())
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(r.report.bit_exact);
    let chains: Vec<_> = r
        .report
        .layers
        .iter()
        .filter(|l| l.op == "float_chain")
        .collect();
    let float_out: Vec<_> = chains
        .iter()
        .map(|l| (l.output_shape, l.output_dtype.as_str()))
        .collect();
    assert_eq!(
        float_out,
        [
            ([16, 7, 7], "int16"),
            ([8, 7, 7], "uint8"),
            ([16, 7, 7], "int16"),
            ([8, 7, 7], "uint8"),
            // The last block's Sum of a float32 and a dequantised operand,
            // quantised for the pool.
            ([8, 7, 7], "uint8"),
        ]
    );
    let first = chains[0].measured.as_ref().expect("measured");
    let glb = &first.accesses.glb;
    assert_eq!((glb.read, glb.write), (784, 784));
    assert_eq!(first.cycle_split.compute, 98);
    let quantise = chains[1].measured.as_ref().expect("measured");
    let glb = &quantise.accesses.glb;
    assert_eq!((glb.read, glb.write), (784, 392));
}
