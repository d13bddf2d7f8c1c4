//! The workload file as written: raw serde structures, spans kept for errors.
//!
//! Only syntax and types are checked here (unknown keys are errors, through
//! `deny_unknown_fields`). Meaning (shapes, ranges, which field goes with which
//! operator) is checked in `load.rs`, which turns these into the IR.
//! docs/workload-format.md documents every field.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use toml::Spanned;

use super::generate::Pruning;
use super::ir::RequantRule;
use crate::numerics::{Activation, IntType, Rounding};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWorkload {
    pub network: RawNetwork,
    pub numerics: Spanned<RawNumerics>,
    pub input: Spanned<RawInput>,
    #[serde(default)]
    pub defaults: RawDefaults,
    #[serde(default)]
    pub layer: Vec<Spanned<RawLayer>>,
    #[serde(default)]
    pub variants: BTreeMap<String, Spanned<RawVariant>>,
    /// A float network: real weights, fractional lengths chosen by accsim
    /// (docs/precision.md).
    #[serde(default)]
    pub float: Option<Spanned<RawFloat>>,
}

/// `[float]`: the weights, biases and inputs are real values; every
/// fractional length is chosen by PELUSO's L2 rule over a calibration set.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFloat {
    /// Number of calibration inputs (default 2000, PELUSO's; with a file, its length).
    #[serde(default)]
    pub samples: Option<Spanned<i64>>,
    /// The calibration inputs: a generator in real units, or a float .npy
    /// file `[N, C, H, W]`.
    #[serde(default)]
    pub inputs: Option<Spanned<RawTensor>>,
    /// An integer .npy file `[N]` of class labels, relative to the workload.
    #[serde(default)]
    pub labels: Option<Spanned<String>>,
    /// Calibration inputs the output fractional lengths are fitted on
    /// (default: the first 16, or all when fewer).
    #[serde(default)]
    pub fl_samples: Option<Spanned<i64>>,
    /// Subtract from the last weighted layer's bias its mean real output
    /// over the fitting samples (default false): with random weights one
    /// class otherwise wins on every input.
    #[serde(default)]
    pub centre_last_bias: Option<Spanned<bool>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNetwork {
    pub name: String,
    pub description: String,
    /// Where the topology comes from (paper, table).
    #[serde(default)]
    pub source: Option<String>,
    /// Seed from which every tensor without its own seed derives one.
    #[serde(default)]
    pub seed: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NumericsMode {
    Affine,
    DynamicFixedPoint,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNumerics {
    pub mode: NumericsMode,
    /// Affine only: `tflite` (default) or `float`.
    #[serde(default)]
    pub requant: Option<Spanned<RequantRule>>,
    /// Affine only: `uint8` (default) or `int8`.
    #[serde(default)]
    pub activation_dtype: Option<Spanned<IntType>>,
    /// Dynamic fixed point only: rounding of the output shift (default `half_up`).
    #[serde(default)]
    pub rounding: Option<Spanned<Rounding>>,
    /// Dynamic fixed point only: 8 or 16 (default 16).
    #[serde(default)]
    pub activation_bits: Option<Spanned<u32>>,
    /// Dynamic fixed point only: 8 or 16 (default 16).
    #[serde(default)]
    pub weight_bits: Option<Spanned<u32>>,
    /// Accumulator width (affine: 32; fixed point: default 2N+16).
    #[serde(default)]
    pub accumulator_bits: Option<Spanned<u32>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawInput {
    /// `[channels, height, width]`.
    pub shape: Spanned<Vec<i64>>,
    #[serde(default)]
    pub scale: Option<Spanned<f64>>,
    #[serde(default)]
    pub zero_point: Option<Spanned<i64>>,
    #[serde(default)]
    pub frac_len: Option<Spanned<i64>>,
    /// The default input (and calibration data): a generator or a file.
    #[serde(default)]
    pub data: Option<Spanned<RawTensor>>,
}

/// Values applied to every layer that does not set them itself.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDefaults {
    #[serde(default)]
    pub weights: Option<Spanned<RawTensor>>,
    #[serde(default)]
    pub bias: Option<Spanned<RawTensor>>,
    #[serde(default)]
    pub activation: Option<Spanned<Activation>>,
    #[serde(default)]
    pub weight_scale: Option<Spanned<RawScale>>,
    #[serde(default)]
    pub weight_frac_len: Option<Spanned<i64>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OpKind {
    Conv2d,
    DepthwiseConv2d,
    #[serde(alias = "fully_connected")]
    Fc,
    MaxPool,
    AvgPool,
    GlobalAvgPool,
    Flatten,
}

impl OpKind {
    pub fn name(self) -> &'static str {
        match self {
            OpKind::Conv2d => "conv2d",
            OpKind::DepthwiseConv2d => "depthwise_conv2d",
            OpKind::Fc => "fc",
            OpKind::MaxPool => "max_pool",
            OpKind::AvgPool => "avg_pool",
            OpKind::GlobalAvgPool => "global_avg_pool",
            OpKind::Flatten => "flatten",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLayer {
    pub name: Spanned<String>,
    pub op: Spanned<OpKind>,
    /// Name of the layer whose output this layer reads (`"input"` for the
    /// network input); default: the previous layer.
    #[serde(default)]
    pub input: Option<Spanned<String>>,
    #[serde(default)]
    pub in_channels: Option<Spanned<i64>>,
    #[serde(default)]
    pub out_channels: Option<Spanned<i64>>,
    #[serde(default)]
    pub in_features: Option<Spanned<i64>>,
    #[serde(default)]
    pub out_features: Option<Spanned<i64>>,
    #[serde(default)]
    pub kernel: Option<Spanned<Pair>>,
    #[serde(default)]
    pub stride: Option<Spanned<Pair>>,
    #[serde(default)]
    pub padding: Option<Spanned<PaddingSpec>>,
    #[serde(default)]
    pub groups: Option<Spanned<i64>>,
    #[serde(default)]
    pub ceil_mode: Option<Spanned<bool>>,
    #[serde(default)]
    pub activation: Option<Spanned<Activation>>,
    #[serde(default)]
    pub weights: Option<Spanned<RawTensor>>,
    #[serde(default)]
    pub weight_scale: Option<Spanned<RawScale>>,
    #[serde(default)]
    pub weight_zero_point: Option<Spanned<i64>>,
    #[serde(default)]
    pub weight_frac_len: Option<Spanned<i64>>,
    #[serde(default)]
    pub bias: Option<Spanned<RawTensor>>,
    #[serde(default)]
    pub batch_norm: Option<Spanned<RawBatchNorm>>,
    #[serde(default)]
    pub output: Option<Spanned<RawOutput>>,
}

impl RawLayer {
    /// The fields that are set, by name, with their spans (for "does not
    /// apply to this operator" checks).
    pub fn set_fields(&self) -> Vec<(&'static str, std::ops::Range<usize>)> {
        let mut v = Vec::new();
        macro_rules! field {
            ($f:ident) => {
                if let Some(x) = &self.$f {
                    v.push((stringify!($f), x.span()));
                }
            };
        }
        field!(in_channels);
        field!(out_channels);
        field!(in_features);
        field!(out_features);
        field!(kernel);
        field!(stride);
        field!(padding);
        field!(groups);
        field!(ceil_mode);
        field!(activation);
        field!(weights);
        field!(weight_scale);
        field!(weight_zero_point);
        field!(weight_frac_len);
        field!(bias);
        field!(batch_norm);
        field!(output);
        v
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawVariant {
    pub description: String,
    /// Layers appended after the base network's layers.
    #[serde(default)]
    pub layer: Vec<Spanned<RawLayer>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DistKind {
    Uniform,
    Gaussian,
    Laplace,
    Constant,
}

/// A tensor: from a file, or from a seeded generator.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTensor {
    /// A .npy file, relative to the workload file.
    #[serde(default)]
    pub file: Option<Spanned<String>>,
    #[serde(default)]
    pub dist: Option<Spanned<DistKind>>,
    #[serde(default)]
    pub seed: Option<u64>,
    #[serde(default)]
    pub low: Option<Spanned<f64>>,
    #[serde(default)]
    pub high: Option<Spanned<f64>>,
    #[serde(default)]
    pub mean: Option<Spanned<f64>>,
    #[serde(default)]
    pub std: Option<Spanned<f64>>,
    #[serde(default)]
    pub scale: Option<Spanned<f64>>,
    #[serde(default)]
    pub value: Option<Spanned<f64>>,
    #[serde(default)]
    pub sparsity: Option<Spanned<f64>>,
    #[serde(default)]
    pub pruning: Option<Spanned<Pruning>>,
}

impl RawTensor {
    /// This spec with every unset field taken from `base` (layer over defaults).
    /// A `file` in either replaces generation entirely.
    pub fn over(&self, base: &RawTensor) -> RawTensor {
        if self.file.is_some() {
            return self.clone();
        }
        if base.file.is_some() && self.dist.is_none() {
            return RawTensor {
                file: base.file.clone(),
                ..Default::default()
            };
        }
        RawTensor {
            file: None,
            dist: self.dist.clone().or_else(|| base.dist.clone()),
            seed: self.seed.or(base.seed),
            low: self.low.clone().or_else(|| base.low.clone()),
            high: self.high.clone().or_else(|| base.high.clone()),
            mean: self.mean.clone().or_else(|| base.mean.clone()),
            std: self.std.clone().or_else(|| base.std.clone()),
            scale: self.scale.clone().or_else(|| base.scale.clone()),
            value: self.value.clone().or_else(|| base.value.clone()),
            sparsity: self.sparsity.clone().or_else(|| base.sparsity.clone()),
            pruning: self.pruning.clone().or_else(|| base.pruning.clone()),
        }
    }
}

/// Batch-norm folded into the layer: `y = scale[c] * conv + shift[c]` (real).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBatchNorm {
    pub scale: Spanned<RawTensor>,
    pub shift: Spanned<RawTensor>,
}

/// The quantisation of a layer's output; absent means "calibrate".
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOutput {
    #[serde(default)]
    pub scale: Option<Spanned<f64>>,
    #[serde(default)]
    pub zero_point: Option<Spanned<i64>>,
    #[serde(default)]
    pub frac_len: Option<Spanned<i64>>,
}

/// One integer for both dimensions, or `[height, width]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pair(pub i64, pub i64);

impl<'de> Deserialize<'de> for Pair {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Pair;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an integer or a [height, width] array of integers")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Pair, E> {
                Ok(Pair(v, v))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Pair, A::Error> {
                let h: i64 = seq
                    .next_element()?
                    .ok_or_else(|| de::Error::invalid_length(0, &self))?;
                let w: i64 = seq
                    .next_element()?
                    .ok_or_else(|| de::Error::invalid_length(1, &self))?;
                if seq.next_element::<i64>()?.is_some() {
                    return Err(de::Error::invalid_length(3, &self));
                }
                Ok(Pair(h, w))
            }
        }
        d.deserialize_any(V)
    }
}

/// `"same"`, `"valid"`, one integer, `[vertical, horizontal]` or
/// `[top, left, bottom, right]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PaddingSpec {
    Same,
    Valid,
    Explicit([i64; 4]),
}

impl<'de> Deserialize<'de> for PaddingSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = PaddingSpec;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(
                    "\"same\", \"valid\", an integer, [vertical, horizontal] or [top, left, bottom, right]",
                )
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<PaddingSpec, E> {
                match v {
                    "same" => Ok(PaddingSpec::Same),
                    "valid" => Ok(PaddingSpec::Valid),
                    _ => Err(de::Error::invalid_value(de::Unexpected::Str(v), &self)),
                }
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<PaddingSpec, E> {
                Ok(PaddingSpec::Explicit([v; 4]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<PaddingSpec, A::Error> {
                let mut v = Vec::new();
                while let Some(x) = seq.next_element::<i64>()? {
                    v.push(x);
                }
                match v.as_slice() {
                    [a, b] => Ok(PaddingSpec::Explicit([*a, *b, *a, *b])),
                    [t, l, b, r] => Ok(PaddingSpec::Explicit([*t, *l, *b, *r])),
                    _ => Err(de::Error::invalid_length(v.len(), &self)),
                }
            }
        }
        d.deserialize_any(V)
    }
}

/// A weight scale: one number (per tensor) or one per output channel.
#[derive(Debug, Clone, PartialEq)]
pub enum RawScale {
    PerTensor(f64),
    PerChannel(Vec<f64>),
}

impl<'de> Deserialize<'de> for RawScale {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawScale;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a number or an array of numbers (one per output channel)")
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<RawScale, E> {
                Ok(RawScale::PerTensor(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<RawScale, E> {
                Ok(RawScale::PerTensor(v as f64))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawScale, A::Error> {
                let mut v = Vec::new();
                while let Some(x) = seq.next_element::<f64>()? {
                    v.push(x);
                }
                Ok(RawScale::PerChannel(v))
            }
        }
        d.deserialize_any(V)
    }
}
