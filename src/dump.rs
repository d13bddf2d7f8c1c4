//! `--dump DIR`: every layer's tensors as .npy plus a manifest that holds all
//! the parameters needed to recompute each layer independently
//! (docs/report.md, "Dump").
//!
//! Files: `input.npy`, and per layer `NN_<name>.input.npy`,
//! `NN_<name>.output.npy`, and for weighted layers `NN_<name>.weights.npy`
//! (storage type) and `NN_<name>.bias.npy` (int64, accumulator units); an
//! `add` layer also writes its second input as `NN_<name>.input2.npy`.
//!
//! The directory appears whole or not at all: it is filled under a temporary
//! sibling name and renamed into place ([`crate::atomic::AtomicDir`]), so a
//! failure (a full disk) leaves no partial `.npy` files. An earlier dump at
//! the path (a directory with a `manifest.json`, or an empty one) is
//! replaced whole; any other existing directory is refused.

use std::path::Path;

use serde::Serialize;

use crate::atomic::AtomicDir;
use crate::error::{Error, InputError, Result};
use crate::numerics::tflite;
use crate::numerics::{Activation, OutputStage, Requant, Rounding, TensorQuant, WeightQuant};
use crate::reference::Execution;
use crate::run::numerics_name;
use crate::workload::ir::{AddRule, Epilogue, Layer, Network, Op, Padding, TensorSource};
use crate::workload::npy;

#[derive(Serialize)]
struct Manifest<'a> {
    schema_version: u32,
    network: &'a str,
    variant: Option<&'a str>,
    numerics: String,
    layout: &'static str,
    /// How a float `.npy` given as `--input` became `input.npy`
    /// (docs/report.md, "Dump").
    float_input_rule: &'static str,
    input: TensorEntry,
    layers: Vec<LayerEntry>,
}

#[derive(Serialize)]
struct TensorEntry {
    file: String,
    shape: [usize; 3],
    quant: TensorQuant,
}

#[derive(Serialize)]
struct LayerEntry {
    index: usize,
    name: String,
    op: &'static str,
    /// `input` or the producing layer's name.
    inputs: Vec<String>,
    input: TensorEntry,
    output: TensorEntry,
    #[serde(skip_serializing_if = "Option::is_none")]
    weights: Option<WeightsEntry>,
    #[serde(skip_serializing_if = "Option::is_none")]
    conv: Option<ConvEntry>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pool: Option<PoolEntry>,
    #[serde(skip_serializing_if = "Option::is_none")]
    average_rounding: Option<Rounding>,
    #[serde(skip_serializing_if = "Option::is_none")]
    bias_file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    activation: Option<Activation>,
    #[serde(skip_serializing_if = "Option::is_none")]
    output_stage: Option<OutputStage>,
    /// Where `output_stage.clamp_min`/`clamp_max` come from: `activation`
    /// (the activation's range over the output type) or `clip` (narrowed by
    /// an ONNX Relu/Clip; the two integers are the rule).
    #[serde(skip_serializing_if = "Option::is_none")]
    clamp_rule: Option<&'static str>,
    /// `tflite` requantisation: `legacy` (the effective scale's product
    /// `s_in * s_w` rounded to float32 first) or `per_channel` (all double).
    #[serde(skip_serializing_if = "Option::is_none")]
    tflite_path: Option<&'static str>,
    /// `add`: the second input tensor and the sum's rule.
    #[serde(skip_serializing_if = "Option::is_none")]
    second_input: Option<TensorEntry>,
    #[serde(skip_serializing_if = "Option::is_none")]
    add_rule: Option<AddRule>,
    /// `qlinear_avg_pool`: divide by the whole window, padding included.
    #[serde(skip_serializing_if = "Option::is_none")]
    count_include_pad: Option<bool>,
    /// `channel_shuffle`: the groups (output channel `k` is input channel
    /// `(k % groups) * (C / groups) + k / groups`).
    #[serde(skip_serializing_if = "Option::is_none")]
    shuffle_groups: Option<usize>,
    /// `qlinear_avg_pool`: `global` (the window is the whole unpadded plane:
    /// exact integer sum) or `window` (float32 sum per window).
    #[serde(skip_serializing_if = "Option::is_none")]
    average_rule: Option<&'static str>,
}

#[derive(Serialize)]
struct WeightsEntry {
    file: String,
    shape: Vec<usize>,
    quant: WeightQuant,
}

#[derive(Serialize)]
struct ConvEntry {
    kernel: [usize; 2],
    stride: [usize; 2],
    padding: Padding,
    groups: usize,
}

#[derive(Serialize)]
struct PoolEntry {
    kernel: [usize; 2],
    stride: [usize; 2],
    padding: Padding,
    ceil_mode: bool,
}

fn write_activations(
    dir: &Path,
    file: &str,
    values: &crate::workload::Activations,
    quant: &TensorQuant,
) -> Result<TensorEntry> {
    let (c, h, w) = values.dim();
    let flat: Vec<i16> = values.iter().copied().collect();
    npy::write_quantised(&dir.join(file), &[c, h, w], &flat, quant.dtype())?;
    Ok(TensorEntry {
        file: file.to_string(),
        shape: [c, h, w],
        quant: *quant,
    })
}

/// Refuses a dump directory that exists and is not an earlier dump (nor
/// empty): replacing it would delete files accsim did not write.
pub fn check_target(dir: &Path) -> Result<()> {
    let Ok(mut entries) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    if entries.next().is_some() && !dir.join("manifest.json").is_file() {
        return Err(InputError::new(
            dir,
            "exists and holds files but no manifest.json, so it is not an earlier dump (a dump \
             replaces its directory whole); valid: a new or empty directory, or an earlier dump",
        )
        .field("--dump")
        .into());
    }
    Ok(())
}

/// Writes the dump of `execution` (a complete run of `network`) as `dir`.
pub fn write(dir: &Path, network: &Network, execution: &Execution) -> Result<()> {
    check_target(dir)?;
    let staged = AtomicDir::create(dir)?;
    let tmp = staged.temp_path().to_path_buf();
    write_into(&tmp, network, execution).map_err(|e| match e {
        // Name the file as it would have been, not the temporary.
        Error::Output { path, message } => Error::Output {
            path: dir.join(path.strip_prefix(&tmp).unwrap_or(&path)),
            message,
        },
        other => other,
    })?;
    staged.commit()
}

/// Writes every file of the dump into the existing directory `dir`.
fn write_into(dir: &Path, network: &Network, execution: &Execution) -> Result<()> {
    let input = write_activations(dir, "input.npy", execution.input(), &network.input_quant)?;
    let mut layers = Vec::with_capacity(network.layers.len());
    for (index, layer) in network.layers.iter().enumerate() {
        layers.push(layer_entry(dir, network, execution, index, layer)?);
    }
    let manifest = Manifest {
        schema_version: 2,
        network: &network.name,
        variant: network.variant.as_deref(),
        numerics: numerics_name(&network.numerics),
        layout: "CHW (channel-major, no batch dimension); conv weights [out, in/groups, kh, kw]; fc weights [out, in]",
        float_input_rule: match network.input_quant {
            TensorQuant::Affine { .. } => "quantize_linear_float32",
            TensorQuant::Fixed { .. } => "fixed_point_float64",
        },
        input,
        layers,
    };
    let path = dir.join("manifest.json");
    let text = serde_json::to_string_pretty(&manifest).map_err(|e| Error::Output {
        path: path.clone(),
        message: e.to_string(),
    })?;
    std::fs::write(&path, text + "\n").map_err(|e| Error::Output {
        path,
        message: e.to_string(),
    })
}

/// One layer's manifest entry, with its tensors, weights and bias written
/// beside it.
fn layer_entry(
    dir: &Path,
    network: &Network,
    execution: &Execution,
    index: usize,
    layer: &Layer,
) -> Result<LayerEntry> {
    let stem = format!("{index:02}_{}", sanitize(&layer.name));
    let source = layer.inputs.first().copied().unwrap_or(TensorSource::Input);
    let input_entry = write_activations(
        dir,
        &format!("{stem}.input.npy"),
        execution.tensor(source),
        &layer.input_quant,
    )?;
    let output_entry = write_activations(
        dir,
        &format!("{stem}.output.npy"),
        execution.tensor(TensorSource::Layer(index)),
        &layer.output_quant,
    )?;
    let mut entry = LayerEntry {
        index,
        name: layer.name.clone(),
        op: layer.op.kind(),
        inputs: layer
            .inputs
            .iter()
            .map(|s| match s {
                TensorSource::Input => "input".to_string(),
                TensorSource::Layer(i) => network.layers[*i].name.clone(),
            })
            .collect(),
        input: input_entry,
        output: output_entry,
        weights: None,
        conv: None,
        pool: None,
        average_rounding: None,
        bias_file: None,
        activation: None,
        output_stage: None,
        clamp_rule: None,
        tflite_path: None,
        second_input: None,
        add_rule: None,
        count_include_pad: None,
        shuffle_groups: None,
        average_rule: None,
    };
    let weights = op_fields(&mut entry, dir, execution, &stem, layer)?;
    if let Some((shape, values, quant, epilogue)) = weights {
        let file = format!("{stem}.weights.npy");
        npy::write_quantised(&dir.join(&file), &shape, &values, quant.dtype())?;
        entry.weights = Some(WeightsEntry {
            file,
            shape,
            quant: quant.clone(),
        });
        let bias_file = format!("{stem}.bias.npy");
        npy::write(
            &dir.join(&bias_file),
            &[epilogue.bias.len()],
            epilogue.bias.clone(),
        )?;
        entry.bias_file = Some(bias_file);
        entry.activation = Some(epilogue.activation);
        entry.output_stage = Some(epilogue.output_stage.clone());
    }
    describe_rules(&mut entry, layer);
    Ok(entry)
}

/// The weights of the weighted operators (shape, values, quantisation,
/// epilogue); fills `entry`'s operator-specific fields (windows, rules, a
/// second input) for the others.
fn op_fields<'a>(
    entry: &mut LayerEntry,
    dir: &Path,
    execution: &Execution,
    stem: &str,
    layer: &'a Layer,
) -> Result<Option<Weighted<'a>>> {
    let source = layer.inputs.first().copied().unwrap_or(TensorSource::Input);
    let weights = match &layer.op {
        Op::Conv2d(c) => {
            entry.conv = Some(ConvEntry {
                kernel: c.kernel,
                stride: c.stride,
                padding: c.padding,
                groups: c.groups,
            });
            Some((
                c.weights.shape().to_vec(),
                c.weights.iter().copied().collect::<Vec<i16>>(),
                &c.weight_quant,
                &c.epilogue,
            ))
        }
        Op::FullyConnected(f) => Some((
            f.weights.shape().to_vec(),
            f.weights.iter().copied().collect(),
            &f.weight_quant,
            &f.epilogue,
        )),
        Op::MaxPool(p) | Op::AvgPool(p) => {
            entry.pool = Some(PoolEntry {
                kernel: p.kernel,
                stride: p.stride,
                padding: p.padding,
                ceil_mode: p.ceil_mode,
            });
            if matches!(layer.op, Op::AvgPool(_)) {
                entry.average_rounding = Some(p.rounding);
            }
            None
        }
        Op::GlobalAvgPool { rounding } => {
            entry.average_rounding = Some(*rounding);
            None
        }
        Op::Flatten => None,
        Op::Add(a) => {
            let second = layer.inputs.get(1).copied().unwrap_or(source);
            entry.second_input = Some(write_activations(
                dir,
                &format!("{stem}.input2.npy"),
                execution.tensor(second),
                &a.input_quants[1],
            )?);
            entry.add_rule = Some(a.rule);
            None
        }
        Op::QLinearAvgPool(q) => {
            let p = q.pool;
            entry.pool = Some(PoolEntry {
                kernel: p.kernel,
                stride: p.stride,
                padding: p.padding,
                ceil_mode: p.ceil_mode,
            });
            entry.count_include_pad = Some(q.count_include_pad);
            None
        }
        // Their other inputs and parameters are not in the manifest:
        // scripts/recompute_dump.py does not recompute them (docs/onnx.md).
        Op::Softmax
        | Op::Concat(_)
        | Op::Lrn(_)
        | Op::Sum(_)
        | Op::Lookup(_)
        | Op::Channel(_)
        | Op::FloatChannel(_)
        | Op::DynamicRange
        | Op::DynamicQuantize => None,
        Op::ChannelShuffle { groups } => {
            entry.shuffle_groups = Some(*groups);
            None
        }
    };
    Ok(weights)
}

/// A weighted layer's weights: shape, values, quantisation and epilogue.
type Weighted<'a> = (Vec<usize>, Vec<i16>, &'a WeightQuant, &'a Epilogue);

/// Names the rules the manifest's numbers alone do not say: which of
/// TFLite's two multiplier paths a layer took, where its clamp comes from,
/// and which of ONNX Runtime's average-pool kernels applies.
fn describe_rules(entry: &mut LayerEntry, layer: &Layer) {
    let weighted = match &layer.op {
        Op::Conv2d(c) => Some((&c.weight_quant, &c.epilogue, false)),
        Op::FullyConnected(f) => Some((&f.weight_quant, &f.epilogue, true)),
        Op::QLinearAvgPool(q) => {
            let [kh, kw] = q.pool.kernel;
            let s = layer.input_shape;
            let global = [kh, kw] == [s.height, s.width] && q.pool.padding.is_zero();
            entry.average_rule = Some(match (q.unfused, global, q.uint8_kernel) {
                (true, _, _) => "unfused_float",
                (false, true, _) => "global",
                (false, false, true) => "window_uint8",
                (false, false, false) => "window",
            });
            None
        }
        _ => None,
    };
    let Some((weight_quant, epilogue, is_fc)) = weighted else {
        return;
    };
    let stage = &epilogue.output_stage;
    let from_activation = epilogue.activation.clamp_range(&layer.output_quant);
    entry.clamp_rule = Some(if (stage.clamp_min, stage.clamp_max) == from_activation {
        "activation"
    } else {
        "clip"
    });
    if matches!(stage.requant, Requant::Tflite { .. }) {
        let legacy = tflite::uses_legacy_multiplier(is_fc, &layer.input_quant, weight_quant);
        entry.tflite_path = Some(if legacy { "legacy" } else { "per_channel" });
    }
}

/// A layer name as a file-name fragment.
fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}
