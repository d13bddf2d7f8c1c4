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
use accsim::workload::ir::FLOAT32_WORDS;
use accsim::workload::npy::{NpyArray, read_npy_any};
use accsim::workload::{Activations, TensorSource};

/// The float32 elements stored as words in `out`, as bits.
fn float_bits(out: &Activations) -> Vec<u32> {
    accsim::reference::dynamic::floats(out)
        .iter()
        .map(|v| v.to_bits())
        .collect()
}

fn compare_bits(mine: &[u32], theirs: &[u32]) -> Result<(), String> {
    if mine.len() != theirs.len() {
        return Err(format!("{} values, ORT {}", mine.len(), theirs.len()));
    }
    match (0..mine.len()).find(|&i| mine[i] != theirs[i]) {
        None => Ok(()),
        Some(i) => Err(format!(
            "element {i}: accsim {} ORT {} ({} of {} differ)",
            f32::from_bits(mine[i]),
            f32::from_bits(theirs[i]),
            (0..mine.len()).filter(|&i| mine[i] != theirs[i]).count(),
            mine.len()
        )),
    }
}

fn data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/onnx")
}

/// Loads test model `name` and runs it on `arch` with the default options.
fn load_and_run(
    name: &str,
    arch: &accsim::arch::Arch,
) -> (accsim::workload::Workload, accsim::run::RunResult) {
    let model = data().join(format!("{name}.onnx"));
    let w = accsim::workload::load(model.to_str().expect("utf-8 path"))
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    let r = accsim::run::run(&w, arch, &accsim::run::RunOptions::default())
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    (w, r)
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
    if let NpyArray::F32(a) = &golden
        && net.layers[last].output_quant == FLOAT32_WORDS
    {
        let theirs: Vec<u32> = a.iter().map(|v| v.to_bits()).collect();
        return compare_bits(&float_bits(got), &theirs);
    }
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
        .filter(|n| !n.starts_with("dynamic_") && !n.starts_with("qdq_unfused_conv_"))
        .collect()
}

/// The int8 QDQ convolutions ONNX Runtime runs unfused, as float `Conv`s
/// (a shared input DequantizeLinear, each output pair rewritten to uint8;
/// docs/onnx.md, item 6), on their 10 inputs each: both convolutions are
/// imported as `float_sum` and the reference and the simulated machine (the
/// PE array's float32 mode) give ONNX Runtime's outputs exactly. The fused
/// QLinearConv's rule (exact integer sums, `f32(acc) * (sx * sw / sy)`),
/// which accsim used before, differs in `integer_rule_differs` outputs.
#[test]
fn the_unfused_int8_convs_match_onnx_runtime_on_ten_inputs_each() {
    use accsim::numerics::Requant;
    use accsim::workload::ir::Op;
    let arch = accsim::arch::load("lu22_fixed").unwrap_or_else(|e| panic!("{e}"));
    // (case, outputs over the 10 inputs, the integer rule's differing outputs)
    for (name, outputs, integer_rule_differs) in [
        ("qdq_unfused_conv_s8_6x6", 11_520, 87),
        ("qdq_unfused_conv_s8_11x11", 38_720, 192),
    ] {
        let model = data().join(format!("{name}.onnx"));
        let w = accsim::workload::load(model.to_str().expect("utf-8 path"))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let net = &w.network;
        let kinds: Vec<&str> = net.layers.iter().map(|l| l.op.kind()).collect();
        assert_eq!(kinds, ["conv2d", "conv2d", "concat"], "{name}");
        let mut fused = net.clone();
        for l in &mut fused.layers[..2] {
            let Op::Conv2d(c) = &mut l.op else {
                unreachable!()
            };
            let stage = &mut c.epilogue.output_stage;
            let Requant::FloatSum {
                input_scale,
                weight_scales,
                output_scale,
                ..
            } = &stage.requant
            else {
                panic!("{name}: {} is not a float sum", l.name);
            };
            let scales = weight_scales
                .iter()
                .map(|sw| *input_scale * *sw / *output_scale)
                .collect();
            stage.requant = Requant::Float { scales };
        }
        let xs = ints(&data().join(format!("{name}.inputs.npy")));
        let ys = ints(&data().join(format!("{name}.outputs.npy")));
        assert_eq!((xs.len(), ys.len()), (10, 10), "{name}");
        assert_eq!(ys.iter().map(Vec::len).sum::<usize>(), outputs, "{name}");
        let last = net.layers.len() - 1;
        let mut differ = 0;
        for (k, (x, golden)) in xs.into_iter().zip(ys).enumerate() {
            let s = net.input_shape;
            let x = Activations::from_shape_vec((s.channels, s.height, s.width), x)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            let out = |a: &Activations| a.iter().copied().collect::<Vec<i16>>();
            let exec = reference::run(net, x.clone());
            assert_eq!(
                out(exec.tensor(TensorSource::Layer(last))),
                golden,
                "{name}, input {k}: reference"
            );
            let integer = reference::run(&fused, x.clone());
            let integer = out(integer.tensor(TensorSource::Layer(last)));
            differ += integer.iter().zip(&golden).filter(|(a, b)| a != b).count();
            let mut one = w.clone();
            one.default_input = x;
            one.default_outputs = Vec::new();
            let r = accsim::run::run(&one, &arch, &accsim::run::RunOptions::default())
                .unwrap_or_else(|e| panic!("{name}, input {k}: {e}"));
            assert!(r.report.bit_exact, "{name}, input {k}");
            assert_eq!(
                out(&r.engine.outputs[last]),
                golden,
                "{name}, input {k}: engine"
            );
        }
        assert_eq!(
            differ, integer_rule_differs,
            "{name}: the integer rule's differences"
        );
    }
}

/// The PEs' float32 mode is priced as float32 multiply-adds and named in the
/// report. The 6x6 case's two convolutions run in that mode: 16 outputs of
/// 6x6 each, the first a 3x3 over 64 channels (576 taps, 331,776 MACs), the
/// second a 1x1 over 64 (36,864 MACs). Under PELUSO's `energy_only` zero skipping every MAC,
/// zero or not, keeps the PE busy for its cycles: a float32 multiply-add is
/// 3 x 3 = 9 byte steps of the 9x9 multiplier (8x8 steps of one cycle), so
/// the busy PE-cycles are 9 x MACs; with `float32_cycles = 4` they are 4 x.
/// A non-zero one costs 9 x E(8x8), a zero one the gated `0.103 x E(8x8)`.
#[test]
fn the_float32_mode_is_priced_as_float32_multiply_adds_and_named() {
    let mut arch = accsim::arch::load("lu22_fixed").unwrap_or_else(|e| panic!("{e}"));
    let e8 = arch.mac.energy_pj.half;
    let run = |arch: &accsim::arch::Arch| {
        let (_, r) = load_and_run("qdq_unfused_conv_s8_6x6", arch);
        r.report
    };
    let report = run(&arch);
    let convs = &report.layers[..2];
    for (l, taps) in convs.iter().zip([64 * 9, 64]) {
        assert_eq!(l.macs, 16 * 36 * taps, "{}", l.name);
        assert_eq!(l.precision.as_deref(), Some("float32"), "{}", l.name);
        let m = l.measured.as_ref().expect("simulated");
        let busy = m.pe_cycles.expect("array layer").busy;
        assert_eq!(busy, 9 * l.macs, "{}", l.name);
        let nonzero = (l.macs - l.zero_macs) as f64;
        let want = nonzero * 9.0 * e8 + l.zero_macs as f64 * 0.103 * e8;
        assert!(
            (m.energy_pj.mac - want).abs() <= 1e-9 * want,
            "{}: {} pJ, want {want}",
            l.name,
            m.energy_pj.mac
        );
    }
    let text = accsim::report::text::render(&report);
    assert!(
        text.contains(
            "float32 MACs: 2 layer(s) (n_Conv_16, n_Conv_36) ran on the PEs' float32 mode"
        ),
        "{text}"
    );
    arch.mac.float32_cycles = Some(4);
    let faster = run(&arch);
    for l in &faster.layers[..2] {
        let busy = l
            .measured
            .as_ref()
            .and_then(|m| m.pe_cycles)
            .expect("array")
            .busy;
        assert_eq!(busy, 4 * l.macs, "{}", l.name);
    }
    let cycles = |r: &accsim::report::Report| r.total.measured.as_ref().expect("measured").cycles;
    assert!(cycles(&faster) < cycles(&report));
}

/// The int8 tensors stacked in an `.npy` file, one `Vec` per first index.
fn ints(path: &Path) -> Vec<Vec<i16>> {
    let a = read_npy_any(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let n = a.shape()[0];
    let v = a.to_i64().expect("integers");
    v.chunks(v.len() / n)
        .map(|c| c.iter().map(|&x| x as i16).collect())
        .collect()
}

/// The dynamically quantised classifiers (`quantize_dynamic`, uint8:
/// conv-relu-maxpool-conv-relu-flatten-gemm-softmax, SqueezeNet's fire
/// module and tail in small, a float32 Concat and GlobalAveragePool, and
/// ResNet-50's first two blocks in small, a float32 Relu read both by a
/// DynamicQuantizeLinear and by the next Sum; float32 between the layers
/// and out) on their 10 seeded inputs each:
/// the reference executor and the
/// simulated machine (every layer's values computed by the GLB unit or the
/// PE array, none by the host) give ONNX Runtime's float32 probabilities
/// bit for bit (docs/onnx.md, item 20).
#[test]
fn the_dynamic_classifiers_match_onnx_runtime_on_ten_inputs_each() {
    let fire = [
        "dynamic_range",
        "dynamic_quantize",
        "conv2d",
        "dynamic_range",
        "dynamic_quantize",
        "conv2d",
        "conv2d",
        "concat",
        "dynamic_range",
        "dynamic_quantize",
        "conv2d",
        "float_chain",
        "softmax",
    ];
    let plain = [
        "dynamic_range",
        "dynamic_quantize",
        "conv2d",
        "max_pool",
        "dynamic_range",
        "dynamic_quantize",
        "conv2d",
        "dynamic_range",
        "dynamic_quantize",
        "flatten",
        "fc",
        "softmax",
    ];
    // ResNet-50's first two blocks in small: the second block's Sum reads
    // the first's Relu, which its DynamicQuantizeLinear also reads.
    let (range, quantize) = ("dynamic_range", "dynamic_quantize");
    let residual = [
        range,
        quantize,
        "conv2d",
        range,
        quantize,
        "conv2d",
        range,
        quantize,
        "conv2d",
        "conv2d",
        "float_chain",
        range,
        quantize,
        "conv2d",
        range,
        quantize,
        "conv2d",
        "float_chain",
        range,
        quantize,
        "fc",
        "softmax",
    ];
    // Windowed float32 AveragePools in both summation orders (24 channels:
    // column sums; 16: row order, count_include_pad).
    let pools = [
        "dynamic_range",
        "dynamic_quantize",
        "conv2d",
        "qlinear_avg_pool",
        "dynamic_range",
        "dynamic_quantize",
        "conv2d",
        "qlinear_avg_pool",
        "dynamic_range",
        "dynamic_quantize",
        "flatten",
        "fc",
        "softmax",
    ];
    // BatchNormalization -> Mul -> Add -> Relu as one float_channel layer,
    // and a float32 channel shuffle.
    let bn_shuffle = [
        "dynamic_range",
        "dynamic_quantize",
        "conv2d",
        "max_pool",
        "float_channel",
        "dynamic_range",
        "dynamic_quantize",
        "conv2d",
        "channel_shuffle",
        "dynamic_range",
        "dynamic_quantize",
        "conv2d",
        "float_chain",
        "softmax",
    ];
    // AlexNet's float32 LRN (539 elements: 3 in the tail) under a max pool.
    let lrn = [
        "dynamic_range",
        "dynamic_quantize",
        "conv2d",
        "lrn",
        "max_pool",
        "dynamic_range",
        "dynamic_quantize",
        "conv2d",
        "dynamic_range",
        "dynamic_quantize",
        "flatten",
        "fc",
        "softmax",
    ];
    let cases: [(&str, &[&str]); 6] = [
        ("dynamic_cnn_u8", &plain),
        ("dynamic_concat_gap_cnn_u8", &fire),
        ("dynamic_residual_cnn_u8", &residual),
        ("dynamic_avgpool_cnn_u8", &pools),
        ("dynamic_bn_shuffle_cnn_u8", &bn_shuffle),
        ("dynamic_lrn_cnn_u8", &lrn),
    ];
    for (name, kinds) in cases {
        check_dynamic(name, kinds);
    }
}

fn check_dynamic(name: &str, kinds: &[&str]) {
    let model = data().join(format!("{name}.onnx"));
    let w = accsim::workload::load(model.to_str().expect("utf-8 path"))
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    let net = &w.network;
    let got: Vec<&str> = net.layers.iter().map(|l| l.op.kind()).collect();
    assert_eq!(got, kinds, "{name}");
    let arch = accsim::arch::load("lu22_fixed").unwrap_or_else(|e| panic!("{e}"));
    check_each_input(&w, name, &arch, |r| {
        for l in &r.layers {
            assert_eq!(l.values.as_deref(), Some("simulated"), "{name}: {}", l.name);
        }
    });
}

/// Runs each of `name`'s 10 inputs through the reference executor and the
/// simulated machine on `arch`: both must give ONNX Runtime's outputs bit for
/// bit, and the run must say so; `check` looks at each run's report further.
fn check_each_input(
    w: &accsim::workload::Workload,
    name: &str,
    arch: &accsim::arch::Arch,
    check: impl Fn(&accsim::report::Report),
) {
    let net = &w.network;
    let last = net.layers.len() - 1;
    for (k, (x, golden)) in inputs_and_goldens(w, name).into_iter().enumerate() {
        let theirs: Vec<u32> = golden.iter().map(|v| v.to_bits()).collect();
        let exec = reference::run(net, x.clone());
        let reference_bits = dequantised_bits(net, exec.tensor(TensorSource::Layer(last)));
        assert_eq!(reference_bits, theirs, "{name}, input {k}: reference");
        let mut one = w.clone();
        one.default_input = x;
        one.default_outputs = Vec::new();
        let r = accsim::run::run(&one, arch, &accsim::run::RunOptions::default())
            .unwrap_or_else(|e| panic!("{name}, input {k}: {e}"));
        assert!(r.report.bit_exact, "{name}, input {k}");
        check(&r.report);
        let engine_bits = dequantised_bits(net, &r.engine.outputs[last]);
        assert_eq!(engine_bits, theirs, "{name}, input {k}: engine");
    }
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
    // A float32 input is stored as two words per element.
    let x_len = if net.input_quant == FLOAT32_WORDS {
        2 * x_len
    } else {
        x_len
    };
    assert_eq!(x_len, net.input_shape.len(), "{name}: input size");
    if net.input_quant == FLOAT32_WORDS {
        let s = net.input_shape;
        return (0..n)
            .map(|k| {
                let v = xs[k * x_len / 2..(k + 1) * x_len / 2].to_vec();
                let a = ndarray::Array3::from_shape_vec((s.channels / 2, s.height, s.width), v)
                    .unwrap_or_else(|e| panic!("{name}: {e}"));
                let x = accsim::reference::dynamic::words(&a);
                (x, ys[k * y_len..(k + 1) * y_len].to_vec())
            })
            .collect();
    }
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
    if net.layers[last].output_quant == FLOAT32_WORDS {
        return float_bits(out);
    }
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
        check_each_input(&w, name, &arch, |r| {
            let softmax = &r.layers[last];
            assert_eq!(softmax.values.as_deref(), Some("simulated"), "{name}");
        });
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
        let (_, r) = load_and_run(name, &arch);
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
    let (_, r) = load_and_run(name, &arch);
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

/// The dynamic classifier's GLB-unit layers cost what docs/onnx.md (item
/// 20) says, on lu22_fixed (8 bytes per cycle, 2-byte words for float32,
/// 1-byte uint8, divider latency 12): busy for the bytes read, plus one
/// cycle for the last row's GLB write. After the first conv (8 channels of
/// 8x8 float32: `[16, 8, 8]` words): the max pool reads 2 rows x 2 columns
/// x 16 words for each of 4 outputs per row (512 bytes, 64 cycles a row,
/// 4 rows); the range streams the `[16, 4, 4]` words a row at a time (4
/// rows of 128 bytes, 16 cycles each) and writes its 4 words after the
/// last; the quantiser reads the 4
/// range words when it starts, then 16 x 4 words a row (16 cycles, 4 rows)
/// and writes 8 x 4 bytes a row; the Softmax of 10 float32 values streams
/// two passes of 40 bytes (10 cycles), paces the third by the divider (10
/// cycles) and adds its latency (12).
#[test]
fn the_dynamic_layers_cost_what_the_docs_say() {
    let arch = accsim::arch::load("lu22_fixed").unwrap_or_else(|e| panic!("{e}"));
    let name = "dynamic_cnn_u8";
    let (_, r) = load_and_run(name, &arch);
    // (layer index, kind, cycles, GLB reads, GLB writes)
    let expected = [
        (3, "max_pool", 4 * 64 + 1, 1024, 256),
        (4, "dynamic_range", 4 * 16 + 1, 256, 4),
        (5, "dynamic_quantize", 4 * 16 + 1, 4 + 256, 128),
        (11, "softmax", 10 + 10 + 12 + 1, 3 * 20, 20),
    ];
    for (i, kind, cycles, reads, writes) in expected {
        let layer = &r.report.layers[i];
        assert_eq!(layer.op, kind);
        let m = layer.measured.as_ref().expect("measured");
        let glb = &m.accesses.glb;
        assert_eq!(
            (m.cycles, glb.read, glb.write, m.lut_reads),
            (cycles, reads, writes, 0),
            "{kind}"
        );
    }
    // The conv writes two words per output element: 8 x 8 x 8 float32.
    let conv = r.report.layers[2].measured.as_ref().expect("measured");
    assert_eq!(conv.accesses.glb.write, 2 * 8 * 8 * 8);
}

/// A float32 chain's mean streams its plane a row per step (docs/onnx.md,
/// item 18): `dynamic_residual_cnn_u8`'s last `Sum -> Relu -> AveragePool`
/// (#17) reads one row of each of its two 16-channel 8x8 float32 operands
/// per step (2 x 32 x 8 words, 1,024 bytes: 128 cycles at 8 bytes per
/// cycle), 8 steps, then writes its one row of 16 float32 means (32 words)
/// in one more cycle; the range of those means (#18) reads the 32 words (8
/// cycles) and writes its 4.
#[test]
fn a_streamed_chain_mean_costs_a_row_of_each_operand_per_step() {
    let arch = accsim::arch::load("lu22_fixed").unwrap_or_else(|e| panic!("{e}"));
    let name = "dynamic_residual_cnn_u8";
    let (w, r) = load_and_run(name, &arch);
    let expected = [
        (17, "float_chain", 8 * 128 + 1, 8 * 2 * 32 * 8, 32),
        (18, "dynamic_range", 8 + 1, 32, 4),
    ];
    for (i, kind, cycles, reads, writes) in expected {
        let layer = &r.report.layers[i];
        assert_eq!(layer.op, kind);
        let m = layer.measured.as_ref().expect("measured");
        let glb = &m.accesses.glb;
        assert_eq!(
            (m.cycles, glb.read, glb.write),
            (cycles, reads, writes),
            "{kind}"
        );
    }
    // The schedule check's GLB need: a row of each operand (2 x 512
    // bytes), not the plane (8 rows each); a row of the 32 words (64 bytes).
    let schedule = accsim::engine::feasibility::check(&w.network, &arch)
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    let need = |i: usize| {
        schedule
            .needs
            .iter()
            .find(|n| n.layer == i)
            .map(|n| n.bytes())
    };
    assert_eq!((need(17), need(18)), (Some(2 * 512), Some(64)));
}

/// ONNX Runtime's integer global average pool streams its plane a row per
/// step into a sum per channel (docs/onnx.md, item 4): in
/// `qdq_gap_head_u8_opset21` the pool (#1) reads the 5 rows of its `[6, 5,
/// 5]` uint8 input one per step (30 bytes: 4 cycles at 8 bytes per cycle),
/// then writes its row of 6 averages in one more cycle: 5 x 4 + 1 = 21
/// cycles (20 when it read the plane in one step), 150 reads, 6 writes; the
/// schedule check asks for one row (30 bytes), not the plane's 150, which
/// is what lets SqueezeNet's last pool (13 rows of 13,000 bytes) run on
/// lu22_fixed.
#[test]
fn an_integer_global_average_streams_a_row_per_step() {
    let arch = accsim::arch::load("lu22_fixed").unwrap_or_else(|e| panic!("{e}"));
    let name = "qdq_gap_head_u8_opset21";
    let (w, r) = load_and_run(name, &arch);
    let layer = &r.report.layers[1];
    assert_eq!(layer.op, "qlinear_avg_pool");
    let m = layer.measured.as_ref().expect("measured");
    assert_eq!(
        (m.cycles, m.accesses.glb.read, m.accesses.glb.write),
        (21, 150, 6)
    );
    let schedule = accsim::engine::feasibility::check(&w.network, &arch)
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    let need = schedule
        .needs
        .iter()
        .find(|n| n.layer == 1)
        .map(|n| n.bytes());
    assert_eq!(need, Some(30));
}

/// The float32 operators' GLB-unit layers cost what docs/onnx.md (item 20)
/// says, on lu22_fixed (8 bytes per cycle, 2-byte words, two per float32
/// element): busy for the bytes read, plus one cycle for the last row's GLB
/// write. `dynamic_avgpool_cnn_u8`: the 3x3 stride 2 pads 1 AveragePool
/// of 24 channels of 8x8 reads, for its 4 output rows, 2, 3, 3 and 3 input
/// rows and, over its 4 outputs per row, 2 + 3 + 3 + 3 = 11 columns: rows
/// of 2 x 11 x 24 x 2 = 1,056 words (264 cycles) and 3 x 11 x 24 x 2 =
/// 1,584 words (396 cycles); it writes 4 rows of 48 words x 4. The 3x3
/// stride 1 pads 1 pool of 16 channels of 4x4 reads 2, 3, 3, 2 rows of 2 +
/// 3 + 3 + 2 = 10 columns: 640, 960, 960, 640 words (160, 240, 240, 160
/// cycles). Each pool's output row (48 x 4 and 32 x 4 words: 384 and 256
/// bytes, 48 and 32 bank slots of 8 bytes) takes the GLB's 27 bank ports
/// for two cycles, all 27 in the first, so the next row's reads start one
/// cycle later (3 rows) and the last write ends two cycles after the last
/// read: + 3 + 2. `dynamic_bn_shuffle_cnn_u8`: the batch norm chain and
/// the channel shuffle each read and write every word of `[24, 4, 4]`
/// once: 96 words (24 cycles) a row, its write (24 slots) within one cycle.
#[test]
fn the_float_operators_cost_what_the_docs_say() {
    let arch = accsim::arch::load("lu22_fixed").unwrap_or_else(|e| panic!("{e}"));
    // (case, layer index, kind, cycles, GLB reads, GLB writes)
    let expected = [
        (
            "dynamic_avgpool_cnn_u8",
            3,
            "qlinear_avg_pool",
            264 + 3 * 396 + 3 + 2,
            1056 + 3 * 1584,
            4 * 48 * 4,
        ),
        (
            "dynamic_avgpool_cnn_u8",
            7,
            "qlinear_avg_pool",
            160 + 240 + 240 + 160 + 3 + 2,
            3200,
            4 * 32 * 4,
        ),
        (
            "dynamic_bn_shuffle_cnn_u8",
            4,
            "float_channel",
            4 * 24 + 1,
            384,
            384,
        ),
        (
            "dynamic_bn_shuffle_cnn_u8",
            8,
            "channel_shuffle",
            4 * 24 + 1,
            384,
            384,
        ),
    ];
    for (name, i, kind, cycles, reads, writes) in expected {
        let (_, r) = load_and_run(name, &arch);
        let layer = &r.report.layers[i];
        assert_eq!(layer.op, kind, "{name}");
        let m = layer.measured.as_ref().expect("measured");
        let glb = &m.accesses.glb;
        assert_eq!(
            (m.cycles, glb.read, glb.write, m.lut_reads),
            (cycles, reads, writes, 0),
            "{name}: {kind}"
        );
    }
}
