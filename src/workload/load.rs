//! Workload file to IR: validation, tensor generation, calibration.
//!
//! Loading is sequential over the layers because shapes and quantisation
//! flow forward: a layer's input shape and quantisation are its producer's
//! output. Output quantisation that the file does not give is calibrated on
//! the network's own default input (docs/workload-format.md, "Calibration"):
//! the loader runs the reference executor layer by layer as it goes, and keeps
//! the activations, which are the reference result for the default input.

use std::collections::HashMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

use ndarray::{Array2, Array3, Array4};
use toml::Spanned;

use super::dfp::CalibrationSet;
use super::format::{
    DistKind, NumericsMode, OpKind, PaddingSpec, Pair, RawInput, RawLayer, RawNumerics, RawOutput,
    RawScale, RawTensor, RawWorkload,
};
use super::generate::{self, Distribution, Generator};
use super::ir::{
    Activations, Conv2d, Epilogue, FullyConnected, Layer, Network, Numerics, Op, Padding, Pool,
    RequantRule, Shape, TensorSource, conv_output_len, pool_output_len, same_padding,
};
use super::limits::{Budget, LayerCost, Limits, MAX_DIMENSION};
use super::{calibrate, npy};
use crate::error::{InputError, Result};
use crate::numerics::tflite::quantize_multiplier;
use crate::numerics::{
    Activation, IntType, OutputStage, Requant, Rounding, TensorQuant, WeightQuant,
};
use crate::reference;

mod float;

/// Largest tensor accsim will generate or read by default, in elements
/// (2^28: 512 MiB as i16); see [`Limits`] for all the limits.
pub const MAX_TENSOR_ELEMENTS: usize = Limits::DEFAULT.max_tensor_elements as usize;

/// A loaded workload: the network, its default input, and the reference
/// activations computed for that input while calibrating.
#[derive(Debug, Clone)]
pub struct Workload {
    pub network: Network,
    /// The file it came from.
    pub path: PathBuf,
    /// The default input (also the calibration data), quantised.
    pub default_input: Activations,
    /// Reference outputs of the first layers for `default_input`, in layer
    /// order: every layer of a workload file (calibrating computes them),
    /// none of an ONNX model (loading does not run it). Complete with
    /// [`Workload::reference_outputs`].
    pub default_outputs: Vec<Activations>,
    /// The calibration set of a `[float]` workload (its first input is
    /// `default_input`); `None` for integer workloads.
    pub calibration: Option<CalibrationSet>,
}

impl Workload {
    /// The reference output of every layer for `default_input`: the layers
    /// `default_outputs` holds, and the rest computed now.
    pub fn reference_outputs(&self) -> Vec<Activations> {
        let mut e = reference::Execution::from_parts(
            self.default_input.clone(),
            self.default_outputs.clone(),
        );
        e.finish(&self.network);
        e.into_parts().1
    }
}

/// Options that change what a workload file loads to.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// Calibration inputs of a `[float]` workload, replacing its `samples`.
    pub calibration_samples: Option<usize>,
    /// The sizes to refuse up front ([`Limits::DEFAULT`] unless lowered).
    pub limits: Limits,
}

/// [`load_file`] with options.
pub fn load_file_with(
    path: &Path,
    variant: Option<&str>,
    options: &LoadOptions,
) -> Result<Workload> {
    let text = super::limits::read_text(path, "workload file")?;
    load_str_with(&text, path, variant, options)
}

/// Loads a workload file, with an optional variant from its `[variants]`.
pub fn load_file(path: &Path, variant: Option<&str>) -> Result<Workload> {
    let text = super::limits::read_text(path, "workload file")?;
    load_str(&text, path, variant)
}

/// Loads a workload from its text; `path` names it in errors and anchors
/// relative file names.
pub fn load_str(text: &str, path: &Path, variant: Option<&str>) -> Result<Workload> {
    load_str_with(text, path, variant, &LoadOptions::default())
}

/// What is valid for an integer field given a value of another type
/// (`out_channels = 128.5`), where that is sharper than "an integer".
fn valid_for_integer(field: &str) -> Option<&'static str> {
    match field {
        "in_channels" | "out_channels" | "in_features" | "out_features" | "groups" => {
            Some("a positive integer (1 or more)")
        }
        _ => None,
    }
}

/// [`load_str`] with options.
pub fn load_str_with(
    text: &str,
    path: &Path,
    variant: Option<&str>,
    options: &LoadOptions,
) -> Result<Workload> {
    let raw: RawWorkload = toml::from_str(text)
        .map_err(|e| crate::error::from_toml(path, text, &e, &valid_for_integer))?;
    let cx = Cx {
        path,
        text,
        dir: path.parent().map(Path::to_path_buf).unwrap_or_default(),
        seed: raw.network.seed,
        limits: options.limits,
    };
    let numerics = cx.numerics(&raw.numerics)?;
    let float_inputs = match &raw.float {
        Some(f) => Some(cx.float_inputs(f, &raw.input, &numerics, options)?),
        None => None,
    };
    let (input_shape, input_quant, default_input) =
        cx.input(&raw.input, &numerics, float_inputs.as_ref())?;

    let layer_specs = cx.layer_specs(&raw, variant)?;
    // The float network runs on the fitting samples alongside the integer one.
    let runs = float_inputs
        .as_ref()
        .map_or(1, |f| 1 + f.fitting_samples() as u64);
    let budget = cx.budget(&raw, input_shape, runs)?;

    let mut builder = Builder {
        cx: &cx,
        numerics: &numerics,
        defaults: &raw.defaults,
        layers: Vec::new(),
        names: HashMap::new(),
        input_shape,
        input_quant,
        execution: reference::Execution::new(default_input),
        float: float_inputs
            .as_ref()
            .map(|f| float::FloatBuild::new(f, &layer_specs)),
        pending: Default::default(),
        budget,
    };
    for spec in layer_specs {
        builder.add(spec)?;
    }
    let Builder {
        layers, execution, ..
    } = builder;
    let (default_input, default_outputs) = execution.into_parts();
    let calibration = match float_inputs {
        Some(f) => Some(cx.calibration_set(f, &input_quant, &layers)?),
        None => None,
    };
    Ok(Workload {
        network: Network {
            name: raw.network.name,
            description: raw.network.description,
            variant: variant.map(str::to_string),
            numerics: numerics.ir(),
            input_shape,
            input_quant,
            layers,
        },
        path: path.to_path_buf(),
        default_input,
        default_outputs,
        calibration,
    })
}

/// The network-wide numeric settings, validated.
#[derive(Debug, Clone, Copy)]
enum NumericsConfig {
    Affine {
        requant: RequantRule,
        activation_dtype: IntType,
    },
    Fixed {
        rounding: Rounding,
        activation_bits: u32,
        weight_bits: u32,
        accumulator_bits: u32,
    },
}

impl NumericsConfig {
    fn ir(&self) -> Numerics {
        match *self {
            NumericsConfig::Affine { requant, .. } => Numerics::Affine { requant },
            NumericsConfig::Fixed { rounding, .. } => Numerics::DynamicFixedPoint { rounding },
        }
    }

    fn accumulator_bits(&self) -> u32 {
        match *self {
            NumericsConfig::Affine { .. } => 32,
            NumericsConfig::Fixed {
                accumulator_bits, ..
            } => accumulator_bits,
        }
    }

    fn weight_dtype(&self) -> IntType {
        match *self {
            NumericsConfig::Affine { .. } => IntType::Int8,
            NumericsConfig::Fixed { weight_bits, .. } => {
                IntType::signed(weight_bits).unwrap_or(IntType::Int16)
            }
        }
    }
}

/// Where we are: the file, for errors and relative paths.
struct Cx<'a> {
    path: &'a Path,
    text: &'a str,
    dir: PathBuf,
    seed: u64,
    limits: Limits,
}

impl Cx<'_> {
    fn err(
        &self,
        span: Option<Range<usize>>,
        context: &str,
        field: &str,
        message: impl Into<String>,
    ) -> InputError {
        let mut e = InputError::new(self.path, message).at(self.text, span);
        if !context.is_empty() {
            e = e.context(context);
        }
        if !field.is_empty() {
            e = e.field(field);
        }
        e
    }

    fn resolve(&self, file: &str) -> PathBuf {
        let p = Path::new(file);
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.dir.join(p)
        }
    }

    /// The layers to build: the file's, then the chosen variant's.
    fn layer_specs<'w>(
        &self,
        raw: &'w RawWorkload,
        variant: Option<&str>,
    ) -> Result<Vec<&'w Spanned<RawLayer>>, InputError> {
        let mut layer_specs: Vec<&Spanned<RawLayer>> = raw.layer.iter().collect();
        if let Some(name) = variant {
            let Some(v) = raw.variants.get(name) else {
                let valid: Vec<&str> = raw.variants.keys().map(String::as_str).collect();
                let valid = if valid.is_empty() {
                    "none (this workload has no variants)".to_string()
                } else {
                    valid.join(", ")
                };
                return Err(InputError::new(
                    self.path,
                    format!("no variant `{name}`; valid: {valid}"),
                ));
            };
            layer_specs.extend(v.get_ref().layer.iter());
        }
        if layer_specs.is_empty() {
            return Err(InputError::new(
                self.path,
                "the network has no [[layer]]; give at least one",
            ));
        }
        self.limits
            .layers(layer_specs.len())
            .map_err(|m| self.err(layer_specs.last().map(|l| l.span()), "", "layer", m))?;
        Ok(layer_specs)
    }

    /// The memory budget of loading, for `runs` runs of the network.
    fn budget(
        &self,
        raw: &RawWorkload,
        input_shape: Shape,
        runs: u64,
    ) -> Result<Budget, InputError> {
        let span = Some(raw.input.get_ref().shape.span());
        Budget::new(self.limits, input_shape)
            .map_err(|m| self.err(span, "[input]", "shape", m))
            .map(|b| b.with_runs(runs))
    }

    fn numerics(&self, raw: &Spanned<RawNumerics>) -> Result<NumericsConfig, InputError> {
        let n = raw.get_ref();
        match n.mode {
            NumericsMode::Affine => self.affine_numerics(n),
            NumericsMode::DynamicFixedPoint => self.fixed_numerics(n),
        }
    }

    /// `[numerics] field` given for a mode it does not apply to.
    fn not_for(&self, field: &str, span: Range<usize>, mode: &str) -> InputError {
        self.err(
            Some(span),
            "[numerics]",
            field,
            format!("does not apply to mode `{mode}`; remove it"),
        )
    }

    /// The first of `fields` that is given, refused with `message`.
    fn refuse_fields<const N: usize>(
        &self,
        ctx: &str,
        fields: [(&str, Option<Range<usize>>); N],
        message: &str,
    ) -> Result<(), InputError> {
        match fields
            .into_iter()
            .find_map(|(name, span)| Some((name, span?)))
        {
            Some((name, span)) => Err(self.err(Some(span), ctx, name, message)),
            None => Ok(()),
        }
    }

    /// `mode = "affine"`: the TFLite-style uint8/int8 settings.
    fn affine_numerics(&self, n: &RawNumerics) -> Result<NumericsConfig, InputError> {
        let ctx = "[numerics]";
        if let Some(x) = &n.rounding {
            return Err(self.not_for("rounding", x.span(), "affine"));
        }
        if let Some(x) = &n.activation_bits {
            return Err(self.not_for("activation_bits", x.span(), "affine"));
        }
        if let Some(x) = &n.weight_bits {
            return Err(self.not_for("weight_bits", x.span(), "affine"));
        }
        if let Some(bits) = &n.accumulator_bits
            && *bits.get_ref() != 32
        {
            return Err(self.err(
                Some(bits.span()),
                ctx,
                "accumulator_bits",
                format!(
                    "is {}, but affine int8 accumulates in 32 bits; valid: 32",
                    bits.get_ref()
                ),
            ));
        }
        let activation_dtype = match &n.activation_dtype {
            None => IntType::Uint8,
            Some(d) if *d.get_ref() == IntType::Int16 => {
                return Err(self.err(
                    Some(d.span()),
                    ctx,
                    "activation_dtype",
                    "int16 is not an affine activation type; valid: uint8, int8",
                ));
            }
            Some(d) => *d.get_ref(),
        };
        Ok(NumericsConfig::Affine {
            requant: n
                .requant
                .as_ref()
                .map_or(RequantRule::Tflite, |r| *r.get_ref()),
            activation_dtype,
        })
    }

    /// `mode = "dynamic_fixed_point"`: PELUSO's 8/16-bit settings.
    fn fixed_numerics(&self, n: &RawNumerics) -> Result<NumericsConfig, InputError> {
        let ctx = "[numerics]";
        if let Some(x) = &n.requant {
            return Err(self.not_for("requant", x.span(), "dynamic_fixed_point"));
        }
        if let Some(x) = &n.activation_dtype {
            return Err(self.err(
                Some(x.span()),
                ctx,
                "activation_dtype",
                "does not apply to mode `dynamic_fixed_point`; use activation_bits = 8 or 16",
            ));
        }
        let bits = |v: &Option<Spanned<u32>>, field: &str| -> Result<u32, InputError> {
            match v {
                None => Ok(16),
                Some(b) if matches!(*b.get_ref(), 8 | 16) => Ok(*b.get_ref()),
                Some(b) => Err(self.err(
                    Some(b.span()),
                    ctx,
                    field,
                    format!("is {}; valid: 8 or 16", b.get_ref()),
                )),
            }
        };
        let activation_bits = bits(&n.activation_bits, "activation_bits")?;
        let weight_bits = bits(&n.weight_bits, "weight_bits")?;
        let widest = activation_bits.max(weight_bits);
        let accumulator_bits = match &n.accumulator_bits {
            None => 2 * widest + 16,
            Some(b) => {
                let v = *b.get_ref();
                if !(activation_bits + weight_bits..=64).contains(&v) {
                    return Err(self.err(
                        Some(b.span()),
                        ctx,
                        "accumulator_bits",
                        format!(
                            "is {v}; valid: {} (one full product) to 64",
                            activation_bits + weight_bits
                        ),
                    ));
                }
                v
            }
        };
        Ok(NumericsConfig::Fixed {
            rounding: n
                .rounding
                .as_ref()
                .map_or(Rounding::HalfUp, |r| *r.get_ref()),
            activation_bits,
            weight_bits,
            accumulator_bits,
        })
    }

    /// The validated `[input] shape`.
    fn input_shape(&self, r: &RawInput) -> Result<Shape, InputError> {
        let dims = r.shape.get_ref();
        if dims.len() != 3 || dims.iter().any(|&d| d < 1) {
            return Err(self.err(
                Some(r.shape.span()),
                "[input]",
                "shape",
                format!("is {dims:?}; valid: [channels, height, width], each at least 1"),
            ));
        }
        let dims: Vec<u64> = dims.iter().map(|&d| d as u64).collect();
        self.check_size(&dims, Some(r.shape.span()), "[input]", "shape")?;
        Ok(Shape::new(
            dims[0] as usize,
            dims[1] as usize,
            dims[2] as usize,
        ))
    }

    fn input(
        &self,
        raw: &Spanned<RawInput>,
        numerics: &NumericsConfig,
        float: Option<&float::FloatInputs>,
    ) -> Result<(Shape, TensorQuant, Activations), InputError> {
        let ctx = "[input]";
        let r = raw.get_ref();
        let shape = self.input_shape(r)?;
        if let Some(f) = float {
            return Ok((shape, f.quant, f.default_input()));
        }
        let quant = match *numerics {
            NumericsConfig::Affine {
                activation_dtype, ..
            } => self.affine_input(r, activation_dtype)?,
            NumericsConfig::Fixed {
                activation_bits, ..
            } => self.fixed_input(r, activation_bits)?,
        };
        let spec = r
            .data
            .as_ref()
            .map(|d| d.get_ref().clone())
            .unwrap_or_default();
        let span = r.data.as_ref().map(|d| d.span());
        let values = self.int_tensor(
            &spec,
            span,
            ctx,
            "data",
            "input",
            &[shape.channels, shape.height, shape.width],
            quant.zero(),
            quant.dtype(),
            Some(&quant),
        )?;
        let data = Array3::from_shape_vec(shape.dims(), values)
            .map_err(|e| self.err(None, ctx, "data", e.to_string()))?;
        Ok((shape, quant, data))
    }

    /// The input's affine quantisation (`scale`, `zero_point`).
    fn affine_input(
        &self,
        r: &RawInput,
        activation_dtype: IntType,
    ) -> Result<TensorQuant, InputError> {
        let ctx = "[input]";
        if let Some(f) = &r.frac_len {
            return Err(self.err(
                Some(f.span()),
                ctx,
                "frac_len",
                "does not apply to affine numerics; use scale and zero_point",
            ));
        }
        let scale = match &r.scale {
            Some(s) => self.positive(s, ctx, "scale")?,
            None => 1.0 / 255.0,
        };
        let default_zero = if activation_dtype == IntType::Int8 {
            -128
        } else {
            0
        };
        let zero_point = match &r.zero_point {
            Some(z) => self.in_range(z, activation_dtype.range(), ctx, "zero_point")?,
            None => default_zero,
        };
        Ok(TensorQuant::Affine {
            dtype: activation_dtype,
            scale: scale as f32,
            zero_point,
        })
    }

    /// The input's dynamic fixed-point format (`frac_len`).
    fn fixed_input(&self, r: &RawInput, activation_bits: u32) -> Result<TensorQuant, InputError> {
        let ctx = "[input]";
        self.refuse_fields(
            ctx,
            [
                ("scale", r.scale.as_ref().map(|s| s.span())),
                ("zero_point", r.zero_point.as_ref().map(|s| s.span())),
            ],
            "does not apply to dynamic fixed point; use frac_len",
        )?;
        Ok(TensorQuant::Fixed {
            bits: activation_bits,
            frac_len: self.frac_len(r.frac_len.as_ref(), activation_bits, ctx, "frac_len")?,
        })
    }

    /// Checks a tensor of `dims` against the per-tensor limit (an
    /// overflowing product is too large); returns its element count.
    fn check_size(
        &self,
        dims: &[u64],
        span: Option<Range<usize>>,
        ctx: &str,
        field: &str,
    ) -> Result<usize, InputError> {
        self.limits
            .tensor(dims)
            .map(|n| n as usize)
            .map_err(|m| self.err(span, ctx, field, m))
    }

    fn positive(&self, v: &Spanned<f64>, ctx: &str, field: &str) -> Result<f64, InputError> {
        let x = *v.get_ref();
        if x.is_finite() && x > 0.0 && (x as f32) > 0.0 && (x as f32).is_finite() {
            Ok(x)
        } else {
            Err(self.err(
                Some(v.span()),
                ctx,
                field,
                format!(
                    "is {}; valid: a finite number > 0 (as float32)",
                    crate::error::number(x)
                ),
            ))
        }
    }

    fn in_range(
        &self,
        v: &Spanned<i64>,
        (lo, hi): (i32, i32),
        ctx: &str,
        field: &str,
    ) -> Result<i32, InputError> {
        let x = *v.get_ref();
        if (i64::from(lo)..=i64::from(hi)).contains(&x) {
            Ok(x as i32)
        } else {
            Err(self.err(
                Some(v.span()),
                ctx,
                field,
                format!("is {x}; valid: {lo} to {hi}"),
            ))
        }
    }

    fn frac_len(
        &self,
        v: Option<&Spanned<i64>>,
        bits: u32,
        ctx: &str,
        field: &str,
    ) -> Result<i32, InputError> {
        match v {
            None => Ok(bits as i32 - 1),
            Some(f) => {
                let x = *f.get_ref();
                if (-32..=32).contains(&x) {
                    Ok(x as i32)
                } else {
                    Err(self.err(
                        Some(f.span()),
                        ctx,
                        field,
                        format!("is {x}; valid: -32 to 32"),
                    ))
                }
            }
        }
    }

    /// The generator a tensor spec describes, with defaults for an integer
    /// target of `range` whose zero is `zero`.
    fn generator(
        &self,
        spec: &RawTensor,
        span: Option<Range<usize>>,
        ctx: &str,
        field: &str,
        seed_name: &str,
        default_dist: Distribution,
    ) -> Result<Generator, InputError> {
        let distribution = match spec.dist.as_ref().map(|d| *d.get_ref()) {
            None => {
                // Parameters without a distribution would be silently ignored.
                if let Some((name, x)) = dist_params(spec)
                    .into_iter()
                    .find_map(|(n, v)| Some((n, v.as_ref()?)))
                {
                    return Err(self.err(
                        Some(x.span()),
                        ctx,
                        &format!("{field}.{name}"),
                        "needs `dist` (uniform, gaussian, laplace or constant)",
                    ));
                }
                default_dist
            }
            Some(kind) => self.distribution(spec, kind, default_dist, span, ctx, field)?,
        };
        let sparsity = match &spec.sparsity {
            None => None,
            Some(s) => {
                let x = *s.get_ref();
                if !(0.0..=1.0).contains(&x) {
                    return Err(self.err(
                        Some(s.span()),
                        ctx,
                        &format!("{field}.sparsity"),
                        format!("is {}; valid: 0 to 1", crate::error::number(x)),
                    ));
                }
                Some(x)
            }
        };
        Ok(Generator {
            distribution,
            seed: spec
                .seed
                .unwrap_or_else(|| generate::derive_seed(self.seed, seed_name)),
            sparsity,
            pruning: spec
                .pruning
                .as_ref()
                .map_or(Default::default(), |p| *p.get_ref()),
        })
    }

    /// The distribution of kind `kind` a tensor spec sets: its parameters,
    /// each defaulting to one matched to `default_dist` (docs/workload-format.md);
    /// a parameter of another kind, or an invalid value, is refused.
    fn distribution(
        &self,
        spec: &RawTensor,
        kind: DistKind,
        default_dist: Distribution,
        span: Option<Range<usize>>,
        ctx: &str,
        field: &str,
    ) -> Result<Distribution, InputError> {
        let get =
            |v: &Option<Spanned<f64>>, default: f64| v.as_ref().map_or(default, |x| *x.get_ref());
        let (dl, dh, dm, ds, db) = default_params(default_dist);
        let allowed: &[&str] = match kind {
            DistKind::Uniform => &["low", "high"],
            DistKind::Gaussian => &["mean", "std"],
            DistKind::Laplace => &["mean", "scale"],
            DistKind::Constant => &["value"],
        };
        for (name, v) in dist_params(spec) {
            if let Some(x) = v
                && !allowed.contains(&name)
            {
                return Err(self.err(
                    Some(x.span()),
                    ctx,
                    &format!("{field}.{name}"),
                    format!(
                        "does not apply to this distribution; valid: {}",
                        allowed.join(", ")
                    ),
                ));
            }
        }
        let d = match kind {
            DistKind::Uniform => Distribution::Uniform {
                low: get(&spec.low, dl),
                high: get(&spec.high, dh),
            },
            DistKind::Gaussian => Distribution::Gaussian {
                mean: get(&spec.mean, dm),
                std: get(&spec.std, ds),
            },
            DistKind::Laplace => Distribution::Laplace {
                mean: get(&spec.mean, dm),
                scale: get(&spec.scale, db),
            },
            DistKind::Constant => match &spec.value {
                Some(v) => Distribution::Constant {
                    value: *v.get_ref(),
                },
                None => {
                    return Err(self.err(
                        span,
                        ctx,
                        &format!("{field}.value"),
                        "a constant needs `value`",
                    ));
                }
            },
        };
        match distribution_problem(d) {
            Some(message) => Err(self.err(span, ctx, field, message)),
            None => Ok(d),
        }
    }

    /// An integer tensor of storage type `dtype` and shape `dims`, from a
    /// file or a generator. Float files are quantised with `quant` when given.
    #[allow(clippy::too_many_arguments)]
    fn int_tensor(
        &self,
        spec: &RawTensor,
        span: Option<Range<usize>>,
        ctx: &str,
        field: &str,
        seed_name: &str,
        dims: &[usize],
        zero: i32,
        dtype: IntType,
        quant: Option<&TensorQuant>,
    ) -> Result<Vec<i16>, InputError> {
        let dims64: Vec<u64> = dims.iter().map(|&d| d as u64).collect();
        let n = self.check_size(&dims64, span.clone(), ctx, field)?;
        if let Some(file) = &spec.file {
            let path = self.resolve(file.get_ref());
            let array =
                npy::read_npy_any(&path).map_err(|e| self.located(e, file.span(), ctx, field))?;
            if let (true, Some(q)) = (array.is_float(), quant) {
                npy::check_shape(&path, &array, dims)
                    .map_err(|e| self.located(e, file.span(), ctx, field))?;
                return Ok(array
                    .to_f64()
                    .into_iter()
                    .map(|x| q.quantize(x) as i16)
                    .collect());
            }
            return npy::read_ints(&path, dims, dtype)
                .map_err(|e| self.located(e, file.span(), ctx, field));
        }
        let (lo, hi) = dtype.range();
        let default = Distribution::Gaussian {
            mean: f64::from(zero),
            std: f64::from(hi - lo) / 8.0,
        };
        let default = if field == "data" {
            Distribution::Uniform {
                low: f64::from(lo),
                high: f64::from(hi),
            }
        } else {
            default
        };
        let g = self.generator(spec, span, ctx, field, seed_name, default)?;
        // Every supported type's range (and zero point) fits `i16`.
        Ok(generate::generate_ints(
            &g,
            n,
            zero as i16,
            (lo as i16, hi as i16),
        ))
    }

    /// A bias vector in accumulator units (`bits`-bit signed).
    fn bias(
        &self,
        spec: &RawTensor,
        span: Option<Range<usize>>,
        ctx: &str,
        seed_name: &str,
        n: usize,
        bits: u32,
    ) -> Result<Vec<i64>, InputError> {
        if let Some(file) = &spec.file {
            let path = self.resolve(file.get_ref());
            let values =
                npy::read_bias(&path, n).map_err(|e| self.located(e, file.span(), ctx, "bias"))?;
            // The reference accumulates exactly in i64: with |bias| < 2^62
            // and at most 2^28 products of at most 2^30 each, no sum
            // overflows. So a 63- or 64-bit accumulator takes biases of
            // 63 bits, as generated biases are (`bits - 1` capped at 62).
            let magnitude = (bits.max(1) - 1).min(62);
            let limit = 1i64 << magnitude;
            if let Some(v) = values.iter().find(|&&v| !(-limit..limit).contains(&v)) {
                return Err(self.err(
                    Some(file.span()),
                    ctx,
                    "bias",
                    format!(
                        "{} holds {v}, outside the {bits}-bit accumulator's bias range; valid: -2^{magnitude} to 2^{magnitude} - 1",
                        path.display()
                    ),
                ));
            }
            return Ok(values);
        }
        if spec.dist.is_none() {
            return Err(self.err(
                span,
                ctx,
                "bias",
                "give `file` or a generator `dist` (bias values are in accumulator units)",
            ));
        }
        let g = self.generator(
            spec,
            span,
            ctx,
            "bias",
            seed_name,
            Distribution::Constant { value: 0.0 },
        )?;
        let limit = (1i64 << (bits - 1).min(62)) - 1;
        Ok(generate::generate_ints(&g, n, 0i64, (-limit - 1, limit)))
    }

    /// Real values (batch-norm parameters): file or generator, `dist` required.
    fn reals(
        &self,
        spec: &Spanned<RawTensor>,
        ctx: &str,
        field: &str,
        seed_name: &str,
        n: usize,
    ) -> Result<Vec<f64>, InputError> {
        let s = spec.get_ref();
        if let Some(file) = &s.file {
            let path = self.resolve(file.get_ref());
            return npy::read_reals(&path, &[n])
                .map_err(|e| self.located(e, file.span(), ctx, field));
        }
        if s.dist.is_none() {
            return Err(self.err(
                Some(spec.span()),
                ctx,
                field,
                "give `file` or a generator `dist`",
            ));
        }
        let g = self.generator(
            s,
            Some(spec.span()),
            ctx,
            field,
            seed_name,
            Distribution::Constant { value: 0.0 },
        )?;
        Ok(generate::generate_reals(&g, n))
    }

    /// A file error, relocated to the workload line that named the file.
    fn located(&self, e: InputError, span: Range<usize>, ctx: &str, field: &str) -> InputError {
        self.err(
            Some(span),
            ctx,
            field,
            format!("{}: {}", e.file.display(), e.message),
        )
    }
}

struct Builder<'a> {
    cx: &'a Cx<'a>,
    numerics: &'a NumericsConfig,
    defaults: &'a super::format::RawDefaults,
    layers: Vec<Layer>,
    names: HashMap<String, usize>,
    input_shape: Shape,
    input_quant: TensorQuant,
    execution: reference::Execution,
    /// The float network of a `[float]` workload, run alongside.
    float: Option<float::FloatBuild>,
    /// Real weights and bias of the layer being built (`[float]` only).
    pending: std::cell::RefCell<float::FloatParams>,
    /// What the layers so far cost, against the limits.
    budget: Budget,
}

/// A layer's window as written: the `kernel` field (for error spans), the
/// kernel and the stride.
struct Window<'r> {
    spec: &'r Spanned<Pair>,
    kernel: [usize; 2],
    stride: [usize; 2],
}

impl Builder<'_> {
    fn add(&mut self, spanned: &Spanned<RawLayer>) -> Result<()> {
        let cx = self.cx;
        let raw = spanned.get_ref();
        let name = raw.name.get_ref().clone();
        let ctx = format!("layer `{name}`");
        self.check_name(raw, &name, &ctx)?;
        let op = *raw.op.get_ref();
        self.check_fields(raw, op, &ctx)?;

        let source = self.source(raw, &ctx)?;
        let (in_shape, in_quant) = match source {
            TensorSource::Input => (self.input_shape, self.input_quant),
            TensorSource::Layer(i) => (self.layers[i].output_shape, self.layers[i].output_quant),
        };

        let (op, out_shape, out_quant) = self.op(raw, op, &ctx, in_shape, in_quant)?;
        let mut layer = Layer {
            name: name.clone(),
            inputs: vec![source],
            input_shape: in_shape,
            input_quant: in_quant,
            output_shape: out_shape,
            output_quant: out_quant,
            op,
        };
        self.budget
            .charge(LayerCost::of(&layer))
            .map_err(|m| cx.err(Some(spanned.span()), &ctx, "", m))?;
        let index = self.layers.len();
        let explicit = self.explicit_output(raw, &ctx)?;
        let output = self.calibrate_and_run(&mut layer, explicit, &ctx)?;
        self.execution.push(output);
        self.names.insert(name, index);
        self.layers.push(layer);
        Ok(())
    }

    /// A layer's name must be new, non-empty and not `input`.
    fn check_name(&self, raw: &RawLayer, name: &str, ctx: &str) -> Result<()> {
        if name.is_empty() || name == "input" || self.names.contains_key(name) {
            return Err(self
                .cx
                .err(
                    Some(raw.name.span()),
                    ctx,
                    "name",
                    if name == "input" {
                        "`input` names the network input; choose another name".to_string()
                    } else if name.is_empty() {
                        "must not be empty".to_string()
                    } else {
                        "is used by an earlier layer; names must be unique".to_string()
                    },
                )
                .into());
        }
        Ok(())
    }

    /// Where the layer reads from: `input = "..."`, or the previous layer.
    fn source(&self, raw: &RawLayer, ctx: &str) -> Result<TensorSource> {
        Ok(match &raw.input {
            None => self
                .layers
                .len()
                .checked_sub(1)
                .map_or(TensorSource::Input, TensorSource::Layer),
            Some(s) if s.get_ref() == "input" => TensorSource::Input,
            Some(s) => match self.names.get(s.get_ref()) {
                Some(&i) => TensorSource::Layer(i),
                None => {
                    let mut valid: Vec<&str> = vec!["input"];
                    valid.extend(self.layers.iter().map(|l| l.name.as_str()));
                    return Err(self
                        .cx
                        .err(
                            Some(s.span()),
                            ctx,
                            "input",
                            format!(
                                "no earlier layer named `{}`; valid: {}",
                                s.get_ref(),
                                valid.join(", ")
                            ),
                        )
                        .into());
                }
            },
        })
    }

    /// The layer's operation, output shape and output quantisation.
    fn op(
        &self,
        raw: &RawLayer,
        op: OpKind,
        ctx: &str,
        in_shape: Shape,
        in_quant: TensorQuant,
    ) -> Result<(Op, Shape, TensorQuant)> {
        Ok(match op {
            OpKind::Conv2d | OpKind::DepthwiseConv2d => {
                let (conv, shape) = self.conv(raw, op, ctx, in_shape, &in_quant)?;
                (Op::Conv2d(conv), shape, in_quant)
            }
            OpKind::Fc => {
                let (fc, shape) = self.fc(raw, ctx, in_shape, &in_quant)?;
                (Op::FullyConnected(fc), shape, in_quant)
            }
            OpKind::MaxPool | OpKind::AvgPool => {
                let (pool, shape) = self.pool(raw, ctx, in_shape)?;
                let op = if op == OpKind::MaxPool {
                    Op::MaxPool(pool)
                } else {
                    Op::AvgPool(pool)
                };
                (op, shape, in_quant)
            }
            OpKind::GlobalAvgPool => (
                Op::GlobalAvgPool {
                    rounding: self.average_rounding(),
                },
                Shape::new(in_shape.channels, 1, 1),
                in_quant,
            ),
            OpKind::Flatten => (Op::Flatten, Shape::new(in_shape.len(), 1, 1), in_quant),
        })
    }

    /// Averages round half away from zero in affine mode (TFLite's integer
    /// pooling kernels) and by the network's rule in fixed point.
    fn average_rounding(&self) -> Rounding {
        match *self.numerics {
            NumericsConfig::Affine { .. } => Rounding::HalfAwayFromZero,
            NumericsConfig::Fixed { rounding, .. } => rounding,
        }
    }

    /// Fields that do not apply to the operator are errors, not silently ignored.
    fn check_fields(&self, raw: &RawLayer, op: OpKind, ctx: &str) -> Result<(), InputError> {
        const WEIGHTED: &[&str] = &[
            "activation",
            "weights",
            "weight_scale",
            "weight_zero_point",
            "weight_frac_len",
            "bias",
            "batch_norm",
            "output",
        ];
        let allowed: Vec<&str> = match op {
            OpKind::Conv2d => [
                &[
                    "in_channels",
                    "out_channels",
                    "kernel",
                    "stride",
                    "padding",
                    "groups",
                ][..],
                WEIGHTED,
            ]
            .concat(),
            OpKind::DepthwiseConv2d => [
                &["in_channels", "out_channels", "kernel", "stride", "padding"][..],
                WEIGHTED,
            ]
            .concat(),
            OpKind::Fc => [&["in_features", "out_features"][..], WEIGHTED].concat(),
            OpKind::MaxPool | OpKind::AvgPool => vec!["kernel", "stride", "padding", "ceil_mode"],
            OpKind::GlobalAvgPool | OpKind::Flatten => vec![],
        };
        for (field, span) in raw.set_fields() {
            if !allowed.contains(&field) {
                return Err(self.cx.err(
                    Some(span),
                    ctx,
                    field,
                    format!(
                        "does not apply to op `{}`; valid fields: {}",
                        op.name(),
                        if allowed.is_empty() {
                            "none besides name, op, input".to_string()
                        } else {
                            allowed.join(", ")
                        }
                    ),
                ));
            }
        }
        Ok(())
    }

    fn positive_count(
        &self,
        v: &Spanned<i64>,
        ctx: &str,
        field: &str,
    ) -> Result<usize, InputError> {
        let x = *v.get_ref();
        let max = self.cx.limits.max_tensor_elements;
        if x >= 1 && (x as u64) <= max {
            Ok(x as usize)
        } else {
            Err(self.cx.err(
                Some(v.span()),
                ctx,
                field,
                format!("is {x}; valid: 1 to {max} (the per-tensor limit)"),
            ))
        }
    }

    /// A layer's required `kernel` and its `stride` (default 1, or the
    /// kernel for a pooling window).
    fn window<'r>(
        &self,
        raw: &'r RawLayer,
        ctx: &str,
        pooling: bool,
    ) -> Result<Window<'r>, InputError> {
        let Some(kernel_spec) = &raw.kernel else {
            return Err(self.cx.err(
                Some(raw.op.span()),
                ctx,
                "kernel",
                "is required: an integer or [height, width]",
            ));
        };
        let kernel = self.pair(kernel_spec, ctx, "kernel")?;
        let stride = match &raw.stride {
            Some(s) => self.pair(s, ctx, "stride")?,
            None if pooling => kernel,
            None => [1, 1],
        };
        Ok(Window {
            spec: kernel_spec,
            kernel,
            stride,
        })
    }

    fn pair(&self, v: &Spanned<Pair>, ctx: &str, field: &str) -> Result<[usize; 2], InputError> {
        let Pair(h, w) = *v.get_ref();
        let max = MAX_DIMENSION as i64;
        if (1..=max).contains(&h) && (1..=max).contains(&w) {
            Ok([h as usize, w as usize])
        } else {
            Err(self.cx.err(
                Some(v.span()),
                ctx,
                field,
                format!("is [{h}, {w}]; valid: integers from 1 to {MAX_DIMENSION}"),
            ))
        }
    }

    fn padding(
        &self,
        raw: &RawLayer,
        ctx: &str,
        in_shape: Shape,
        kernel: [usize; 2],
        stride: [usize; 2],
    ) -> Result<Padding, InputError> {
        match raw
            .padding
            .as_ref()
            .map(|p| (p.get_ref().clone(), p.span()))
        {
            None | Some((PaddingSpec::Valid, _)) => Ok(Padding::default()),
            Some((PaddingSpec::Same, _)) => {
                let (top, bottom) = same_padding(in_shape.height, kernel[0], stride[0]);
                let (left, right) = same_padding(in_shape.width, kernel[1], stride[1]);
                Ok(Padding {
                    top,
                    left,
                    bottom,
                    right,
                })
            }
            Some((PaddingSpec::Explicit(p), span)) => {
                if p.iter().any(|&x| !(0..=MAX_DIMENSION as i64).contains(&x)) {
                    return Err(self.cx.err(
                        Some(span),
                        ctx,
                        "padding",
                        format!("is {p:?}; valid: integers from 0 to {MAX_DIMENSION}"),
                    ));
                }
                Ok(Padding {
                    top: p[0] as usize,
                    left: p[1] as usize,
                    bottom: p[2] as usize,
                    right: p[3] as usize,
                })
            }
        }
    }

    fn conv(
        &self,
        raw: &RawLayer,
        op: OpKind,
        ctx: &str,
        in_shape: Shape,
        in_quant: &TensorQuant,
    ) -> Result<(Conv2d, Shape)> {
        let cx = self.cx;
        let in_channels = in_shape.channels;
        let (out_channels, groups) = self.conv_channels(raw, op, ctx, in_shape)?;
        let Window {
            spec: kernel_spec,
            kernel,
            stride,
        } = self.window(raw, ctx, false)?;
        let padding = self.padding(raw, ctx, in_shape, kernel, stride)?;
        let out_shape = self.conv_output_shape(
            kernel_spec.span(),
            ctx,
            in_shape,
            out_channels,
            (kernel, stride, padding),
        )?;
        let dims = [out_channels, in_channels / groups, kernel[0], kernel[1]];
        self.budget
            .check_tensors(out_shape, &dims.map(|d| d as u64))
            .map_err(|m| cx.err(Some(kernel_spec.span()), ctx, "", m))?;
        let (weights, weight_quant) = self.weights(raw, ctx, &dims, out_channels)?;
        let weights = Array4::from_shape_vec((dims[0], dims[1], dims[2], dims[3]), weights)
            .map_err(|e| cx.err(None, ctx, "weights", e.to_string()))?;
        let epilogue = self.epilogue(raw, ctx, out_channels)?;
        let mut conv = Conv2d {
            kernel,
            stride,
            padding,
            groups,
            weights,
            weight_quant,
            epilogue,
        };
        self.fold_batch_norm(
            raw,
            ctx,
            in_quant,
            &mut conv.weight_quant,
            &mut conv.epilogue,
        )?;
        Ok((conv, out_shape))
    }

    /// A convolution's output channels and groups, checked against its
    /// input channels.
    fn conv_channels(
        &self,
        raw: &RawLayer,
        op: OpKind,
        ctx: &str,
        in_shape: Shape,
    ) -> Result<(usize, usize)> {
        let in_channels = in_shape.channels;
        if let Some(c) = &raw.in_channels
            && *c.get_ref() != in_channels as i64
        {
            return Err(self.cx.err(Some(c.span()), ctx, "in_channels", format!("is {}, but the layer's input has {in_channels} channels (shape {in_shape}); channel mismatch", c.get_ref())).into());
        }
        let out_channels = match (&raw.out_channels, op) {
            (Some(c), _) => self.positive_count(c, ctx, "out_channels")?,
            (None, OpKind::DepthwiseConv2d) => in_channels,
            (None, _) => {
                return Err(self
                    .cx
                    .err(
                        Some(raw.op.span()),
                        ctx,
                        "out_channels",
                        "is required for conv2d",
                    )
                    .into());
            }
        };
        let groups = match (op, &raw.groups) {
            (OpKind::DepthwiseConv2d, _) => in_channels,
            (_, None) => 1,
            (_, Some(g)) => self.positive_count(g, ctx, "groups")?,
        };
        if !in_channels.is_multiple_of(groups) || out_channels % groups != 0 {
            let span = raw
                .groups
                .as_ref()
                .map(|g| g.span())
                .or(raw.out_channels.as_ref().map(|c| c.span()));
            return Err(self.cx.err(span, ctx, if op == OpKind::DepthwiseConv2d { "out_channels" } else { "groups" }, format!("{groups} groups must divide both the {in_channels} input channels and the {out_channels} output channels")).into());
        }
        Ok((out_channels, groups))
    }

    /// A convolution's output shape; refuses a kernel larger than the
    /// padded input.
    fn conv_output_shape(
        &self,
        kernel_span: Range<usize>,
        ctx: &str,
        in_shape: Shape,
        out_channels: usize,
        (kernel, stride, padding): ([usize; 2], [usize; 2], Padding),
    ) -> Result<Shape> {
        let out_h = conv_output_len(
            in_shape.height,
            kernel[0],
            stride[0],
            padding.top,
            padding.bottom,
        );
        let out_w = conv_output_len(
            in_shape.width,
            kernel[1],
            stride[1],
            padding.left,
            padding.right,
        );
        let (Some(out_h), Some(out_w)) = (out_h, out_w) else {
            let ph = in_shape.height + padding.top + padding.bottom;
            let pw = in_shape.width + padding.left + padding.right;
            return Err(self.cx.err(Some(kernel_span), ctx, "kernel", format!("{}x{} is larger than the padded input {ph}x{pw} (input {in_shape}, padding {padding}); valid: a kernel of at most {ph}x{pw}, or more padding", kernel[0], kernel[1])).into());
        };
        Ok(Shape::new(out_channels, out_h, out_w))
    }

    fn fc(
        &self,
        raw: &RawLayer,
        ctx: &str,
        in_shape: Shape,
        in_quant: &TensorQuant,
    ) -> Result<(FullyConnected, Shape)> {
        let cx = self.cx;
        let in_features = in_shape.len();
        if let Some(f) = &raw.in_features
            && *f.get_ref() != in_features as i64
        {
            return Err(cx.err(Some(f.span()), ctx, "in_features", format!("is {}, but the layer's input has {in_features} values (shape {in_shape}, flattened channel-major); FC input size mismatch", f.get_ref())).into());
        }
        let Some(out) = &raw.out_features else {
            return Err(cx
                .err(
                    Some(raw.op.span()),
                    ctx,
                    "out_features",
                    "is required for fc",
                )
                .into());
        };
        let out_features = self.positive_count(out, ctx, "out_features")?;
        self.budget
            .check_tensors(
                Shape::new(out_features, 1, 1),
                &[out_features as u64, in_features as u64],
            )
            .map_err(|m| cx.err(Some(out.span()), ctx, "out_features", m))?;
        let (weights, weight_quant) =
            self.weights(raw, ctx, &[out_features, in_features], out_features)?;
        let weights = Array2::from_shape_vec((out_features, in_features), weights)
            .map_err(|e| cx.err(None, ctx, "weights", e.to_string()))?;
        let epilogue = self.epilogue(raw, ctx, out_features)?;
        let mut fc = FullyConnected {
            weights,
            weight_quant,
            epilogue,
        };
        self.fold_batch_norm(raw, ctx, in_quant, &mut fc.weight_quant, &mut fc.epilogue)?;
        Ok((fc, Shape::new(out_features, 1, 1)))
    }

    fn pool(&self, raw: &RawLayer, ctx: &str, in_shape: Shape) -> Result<(Pool, Shape)> {
        let cx = self.cx;
        let Window {
            spec: kernel_spec,
            kernel,
            stride,
        } = self.window(raw, ctx, true)?;
        let padding = self.padding(raw, ctx, in_shape, kernel, stride)?;
        if padding.top.max(padding.bottom) > kernel[0] / 2
            || padding.left.max(padding.right) > kernel[1] / 2
        {
            let span = raw.padding.as_ref().map(|p| p.span());
            return Err(cx.err(span, ctx, "padding", format!("{padding} is more than half the {}x{} window; valid: at most {} rows and {} columns, so every window covers input", kernel[0], kernel[1], kernel[0] / 2, kernel[1] / 2)).into());
        }
        let ceil_mode = raw.ceil_mode.as_ref().is_some_and(|c| *c.get_ref());
        let out_h = pool_output_len(
            in_shape.height,
            kernel[0],
            stride[0],
            padding.top,
            padding.bottom,
            ceil_mode,
        );
        let out_w = pool_output_len(
            in_shape.width,
            kernel[1],
            stride[1],
            padding.left,
            padding.right,
            ceil_mode,
        );
        let (Some(out_h), Some(out_w)) = (out_h, out_w) else {
            return Err(cx
                .err(
                    Some(kernel_spec.span()),
                    ctx,
                    "kernel",
                    format!(
                        "{}x{} is larger than the padded input {}x{}",
                        kernel[0],
                        kernel[1],
                        in_shape.height + padding.top + padding.bottom,
                        in_shape.width + padding.left + padding.right
                    ),
                )
                .into());
        };
        let out_shape = Shape::new(in_shape.channels, out_h, out_w);
        self.budget
            .check_tensors(out_shape, &[])
            .map_err(|m| cx.err(Some(kernel_spec.span()), ctx, "", m))?;
        Ok((
            Pool {
                kernel,
                stride,
                padding,
                ceil_mode,
                rounding: self.average_rounding(),
            },
            out_shape,
        ))
    }

    fn weights(
        &self,
        raw: &RawLayer,
        ctx: &str,
        dims: &[usize],
        out_channels: usize,
    ) -> Result<(Vec<i16>, WeightQuant), InputError> {
        if let (Some(_), NumericsConfig::Fixed { weight_bits, .. }) = (&self.float, self.numerics) {
            return self.float_weights(raw, ctx, dims, *weight_bits);
        }
        let cx = self.cx;
        let dtype = self.numerics.weight_dtype();
        let quant = match *self.numerics {
            NumericsConfig::Affine { .. } => self.affine_weight_quant(raw, ctx, out_channels)?,
            NumericsConfig::Fixed { weight_bits, .. } => {
                self.fixed_weight_quant(raw, ctx, weight_bits)?
            }
        };
        let layer_spec = raw
            .weights
            .as_ref()
            .map(|w| w.get_ref().clone())
            .unwrap_or_default();
        let spec = match &self.defaults.weights {
            Some(d) => layer_spec.over(d.get_ref()),
            None => layer_spec,
        };
        let span = raw
            .weights
            .as_ref()
            .map(|w| w.span())
            .or(Some(raw.name.span()));
        let name = raw.name.get_ref();
        let values = cx.int_tensor(
            &spec,
            span,
            ctx,
            "weights",
            &format!("{name}/weights"),
            dims,
            quant.zero(),
            dtype,
            None,
        )?;
        Ok((values, quant))
    }

    /// A layer's affine weight quantisation: `weight_scale` (one, or one
    /// per output channel) and `weight_zero_point`.
    fn affine_weight_quant(
        &self,
        raw: &RawLayer,
        ctx: &str,
        out_channels: usize,
    ) -> Result<WeightQuant, InputError> {
        let cx = self.cx;
        let dtype = self.numerics.weight_dtype();
        if let Some(f) = &raw.weight_frac_len {
            return Err(cx.err(
                Some(f.span()),
                ctx,
                "weight_frac_len",
                "does not apply to affine numerics; use weight_scale",
            ));
        }
        let zero_point = match &raw.weight_zero_point {
            Some(z) => cx.in_range(z, dtype.range(), ctx, "weight_zero_point")?,
            None => 0,
        };
        let scale = raw
            .weight_scale
            .as_ref()
            .or(self.defaults.weight_scale.as_ref());
        let scales = match scale.map(|s| (s.get_ref(), s.span())) {
            None => vec![1.0 / 128.0],
            Some((RawScale::PerTensor(x), span)) => vec![self.scale_value(*x, span, ctx)?],
            Some((RawScale::PerChannel(v), span)) => {
                if v.len() != out_channels {
                    return Err(cx.err(Some(span), ctx, "weight_scale", format!("has {} values; valid: one number, or {out_channels} (one per output channel)", v.len())));
                }
                v.iter()
                    .map(|&x| self.scale_value(x, span.clone(), ctx))
                    .collect::<Result<_, _>>()?
            }
        };
        Ok(WeightQuant::Affine {
            dtype,
            scales,
            zero_point,
        })
    }

    /// A layer's fixed-point weight format: `weight_frac_len`.
    fn fixed_weight_quant(
        &self,
        raw: &RawLayer,
        ctx: &str,
        weight_bits: u32,
    ) -> Result<WeightQuant, InputError> {
        let cx = self.cx;
        cx.refuse_fields(
            ctx,
            [
                ("weight_scale", raw.weight_scale.as_ref().map(|s| s.span())),
                (
                    "weight_zero_point",
                    raw.weight_zero_point.as_ref().map(|s| s.span()),
                ),
            ],
            "does not apply to dynamic fixed point; use weight_frac_len",
        )?;
        let fl = raw
            .weight_frac_len
            .as_ref()
            .or(self.defaults.weight_frac_len.as_ref());
        Ok(WeightQuant::Fixed {
            bits: weight_bits,
            frac_len: cx.frac_len(fl, weight_bits, ctx, "weight_frac_len")?,
        })
    }

    fn scale_value(&self, x: f64, span: Range<usize>, ctx: &str) -> Result<f32, InputError> {
        if x.is_finite() && x > 0.0 && (x as f32) > 0.0 && (x as f32).is_finite() {
            Ok(x as f32)
        } else {
            Err(self.cx.err(
                Some(span),
                ctx,
                "weight_scale",
                format!("contains {x}; valid: finite numbers > 0"),
            ))
        }
    }

    /// Bias and activation; the output stage is set once the output
    /// quantisation is known (`calibrate_and_run`).
    fn epilogue(
        &self,
        raw: &RawLayer,
        ctx: &str,
        out_channels: usize,
    ) -> Result<Epilogue, InputError> {
        let cx = self.cx;
        let bits = self.numerics.accumulator_bits();
        let bias = match (&raw.bias, &self.defaults.bias) {
            // Real biases become integers once the fractional lengths are known.
            _ if self.float.is_some() => {
                self.float_bias(raw, ctx, out_channels)?;
                vec![0; out_channels]
            }
            (None, None) => vec![0; out_channels],
            (layer, default) => {
                let layer_spec = layer
                    .as_ref()
                    .map(|b| b.get_ref().clone())
                    .unwrap_or_default();
                let spec = match default {
                    Some(d) => layer_spec.over(d.get_ref()),
                    None => layer_spec,
                };
                let span = layer.as_ref().or(default.as_ref()).map(|b| b.span());
                cx.bias(
                    &spec,
                    span,
                    ctx,
                    &format!("{}/bias", raw.name.get_ref()),
                    out_channels,
                    bits,
                )?
            }
        };
        let activation = raw
            .activation
            .as_ref()
            .or(self.defaults.activation.as_ref())
            .map_or(Activation::None, |a| *a.get_ref());
        Ok(Epilogue {
            bias,
            activation,
            // Replaced in `calibrate_and_run` once the output quantisation is known.
            output_stage: OutputStage {
                accumulator_bits: bits,
                requant: Requant::Shift {
                    shift: 0,
                    rounding: Rounding::Floor,
                },
                zero_point: 0,
                clamp_min: i32::from(i16::MIN),
                clamp_max: i32::from(i16::MAX),
            },
        })
    }

    /// Folds `y = s[c] * conv + t[c]` into per-channel weight scales and the bias.
    fn fold_batch_norm(
        &self,
        raw: &RawLayer,
        ctx: &str,
        in_quant: &TensorQuant,
        wq: &mut WeightQuant,
        epilogue: &mut Epilogue,
    ) -> Result<(), InputError> {
        let cx = self.cx;
        let Some(bn) = &raw.batch_norm else {
            return Ok(());
        };
        let (WeightQuant::Affine { scales, .. }, TensorQuant::Affine { scale: sx, .. }) =
            (wq, in_quant)
        else {
            return Err(cx.err(Some(bn.span()), ctx, "batch_norm", "needs affine numerics; in dynamic fixed point fold batch-norm into the weights before quantising"));
        };
        let n = epilogue.bias.len();
        let name = raw.name.get_ref();
        let s = cx.reals(
            &bn.get_ref().scale,
            ctx,
            "batch_norm.scale",
            &format!("{name}/bn_scale"),
            n,
        )?;
        let t = cx.reals(
            &bn.get_ref().shift,
            ctx,
            "batch_norm.shift",
            &format!("{name}/bn_shift"),
            n,
        )?;
        if let Some(bad) = s.iter().find(|x| !(x.is_finite() && **x > 0.0)) {
            return Err(cx.err(Some(bn.get_ref().scale.span()), ctx, "batch_norm.scale", format!("contains {bad}; valid: finite numbers > 0 (fold negative scales into the weights)")));
        }
        if let Some(bad) = t.iter().find(|x| !x.is_finite()) {
            return Err(cx.err(
                Some(bn.get_ref().shift.span()),
                ctx,
                "batch_norm.shift",
                format!("contains {bad}; valid: finite numbers"),
            ));
        }
        let per_tensor = scales.first().copied().unwrap_or(1.0);
        let limit = 1i64 << (self.numerics.accumulator_bits() - 1);
        let mut folded = Vec::with_capacity(n);
        for c in 0..n {
            let sw = scales.get(c).copied().unwrap_or(per_tensor);
            let new_scale = (f64::from(sw) * s[c]) as f32;
            if !(new_scale > 0.0 && new_scale.is_finite()) {
                return Err(cx.err(
                    Some(bn.span()),
                    ctx,
                    "batch_norm.scale",
                    format!(
                        "channel {c}: folded weight scale {new_scale} is not a positive float32"
                    ),
                ));
            }
            let shift_acc = (t[c] / (f64::from(*sx) * f64::from(new_scale))).round_ties_even();
            let b = epilogue.bias[c] as f64 + shift_acc;
            if b.is_nan() || b.abs() >= limit as f64 {
                return Err(cx.err(
                    Some(bn.get_ref().shift.span()),
                    ctx,
                    "batch_norm.shift",
                    format!("channel {c}: folded bias {b} does not fit the accumulator"),
                ));
            }
            epilogue.bias[c] = b as i64;
            folded.push(new_scale);
        }
        *scales = folded;
        Ok(())
    }

    /// The output quantisation the file gives, or `None` to calibrate.
    fn explicit_output(
        &self,
        raw: &RawLayer,
        ctx: &str,
    ) -> Result<Option<TensorQuant>, InputError> {
        let cx = self.cx;
        let Some(o) = &raw.output else {
            return Ok(None);
        };
        if self.float.is_some() {
            return Err(cx.err(
                Some(o.span()),
                ctx,
                "output",
                "is chosen by PELUSO's L2 rule in a [float] workload; remove it",
            ));
        }
        let quant = match *self.numerics {
            NumericsConfig::Affine {
                activation_dtype, ..
            } => self.affine_output(o, ctx, activation_dtype)?,
            NumericsConfig::Fixed {
                activation_bits, ..
            } => self.fixed_output(o, ctx, activation_bits)?,
        };
        Ok(Some(quant))
    }

    /// `output = { scale, zero_point }` in affine mode.
    fn affine_output(
        &self,
        o: &Spanned<RawOutput>,
        ctx: &str,
        activation_dtype: IntType,
    ) -> Result<TensorQuant, InputError> {
        let cx = self.cx;
        let o_ref = o.get_ref();
        if let Some(f) = &o_ref.frac_len {
            return Err(cx.err(
                Some(f.span()),
                ctx,
                "output.frac_len",
                "does not apply to affine numerics; use scale and zero_point",
            ));
        }
        let Some(scale) = &o_ref.scale else {
            return Err(cx.err(
                Some(o.span()),
                ctx,
                "output.scale",
                "is required when `output` is given (leave `output` out to calibrate)",
            ));
        };
        let scale = cx.positive(scale, ctx, "output.scale")?;
        let zero_point = match &o_ref.zero_point {
            Some(z) => cx.in_range(z, activation_dtype.range(), ctx, "output.zero_point")?,
            None => 0,
        };
        Ok(TensorQuant::Affine {
            dtype: activation_dtype,
            scale: scale as f32,
            zero_point,
        })
    }

    /// `output = { frac_len }` in dynamic fixed point.
    fn fixed_output(
        &self,
        o: &Spanned<RawOutput>,
        ctx: &str,
        activation_bits: u32,
    ) -> Result<TensorQuant, InputError> {
        let cx = self.cx;
        let o_ref = o.get_ref();
        cx.refuse_fields(
            ctx,
            [
                ("output.scale", o_ref.scale.as_ref().map(|s| s.span())),
                (
                    "output.zero_point",
                    o_ref.zero_point.as_ref().map(|s| s.span()),
                ),
            ],
            "does not apply to dynamic fixed point; use frac_len",
        )?;
        let Some(fl) = &o_ref.frac_len else {
            return Err(cx.err(
                Some(o.span()),
                ctx,
                "output.frac_len",
                "is required when `output` is given (leave `output` out to calibrate)",
            ));
        };
        Ok(TensorQuant::Fixed {
            bits: activation_bits,
            frac_len: cx.frac_len(Some(fl), activation_bits, ctx, "output.frac_len")?,
        })
    }

    /// Computes the layer on the default input. For a weighted layer, first
    /// fixes its output quantisation (the file's, or calibrated on the
    /// accumulators) and its output stage.
    fn calibrate_and_run(
        &mut self,
        layer: &mut Layer,
        explicit: Option<TensorQuant>,
        ctx: &str,
    ) -> Result<Activations> {
        let float_frac_len = self.float_forward(layer, ctx)?;
        let input = self.execution.tensor(layer.inputs[0]);
        let in_quant = layer.input_quant;
        let numerics = *self.numerics;
        let is_fc = matches!(layer.op, Op::FullyConnected(_));
        let (acc, epilogue, wq) = match &mut layer.op {
            Op::Conv2d(c) => (
                reference::conv_accumulate(c, in_quant.zero(), input),
                &mut c.epilogue,
                &c.weight_quant,
            ),
            Op::FullyConnected(f) => (
                reference::fc_accumulate(f, in_quant.zero(), input),
                &mut f.epilogue,
                &f.weight_quant,
            ),
            _ => return Ok(reference::execute_layer(layer, &[input])),
        };
        let out_quant = match (explicit, float_frac_len) {
            (Some(q), _) => q,
            (None, Some(frac_len)) => TensorQuant::Fixed {
                bits: in_quant.dtype().bits(),
                frac_len,
            },
            (None, None) => match numerics {
                NumericsConfig::Affine {
                    activation_dtype, ..
                } => calibrate::affine_min_max(
                    &acc,
                    &in_quant,
                    wq,
                    epilogue.activation,
                    activation_dtype,
                ),
                NumericsConfig::Fixed {
                    activation_bits,
                    rounding,
                    accumulator_bits,
                    ..
                } => calibrate::fixed_point_l2(
                    &acc,
                    &in_quant,
                    wq,
                    epilogue.activation,
                    activation_bits,
                    rounding,
                    accumulator_bits,
                ),
            },
        };
        let legacy_product = crate::numerics::tflite::uses_legacy_multiplier(is_fc, &in_quant, wq);
        epilogue.output_stage = output_stage(
            &numerics,
            &in_quant,
            wq,
            epilogue.bias.len(),
            epilogue.activation,
            &out_quant,
            legacy_product,
        )
        .map_err(|message| self.cx.err(None, ctx, "", message))?;
        let output = reference::requantize(epilogue, &acc);
        layer.output_quant = out_quant;
        Ok(output)
    }
}

/// The output stage from input, weight and output quantisation.
///
/// `legacy_product`: TFLite's per-tensor path (`GetQuantizedConvolutionMultipler`,
/// used by every fully connected layer and by uint8 convolutions with one
/// weight scale) forms `s_in * s_w` in float32 before widening to double; its
/// per-channel path (`PopulateConvolutionQuantizationParams`) is all double.
fn output_stage(
    numerics: &NumericsConfig,
    in_quant: &TensorQuant,
    wq: &WeightQuant,
    channels: usize,
    activation: Activation,
    out_quant: &TensorQuant,
    legacy_product: bool,
) -> Result<OutputStage, String> {
    let (clamp_min, clamp_max) = activation.clamp_range(out_quant);
    let requant = match (numerics, in_quant, wq, out_quant) {
        (
            NumericsConfig::Affine { requant, .. },
            TensorQuant::Affine { scale: sx, .. },
            WeightQuant::Affine { scales, .. },
            TensorQuant::Affine { scale: sy, .. },
        ) => {
            let count = if scales.len() > 1 { channels } else { 1 };
            let weight_scale = |c: usize| scales.get(c).or(scales.first()).copied().unwrap_or(1.0);
            match requant {
                RequantRule::Tflite => {
                    let effective = |c: usize| {
                        if legacy_product {
                            f64::from(*sx * weight_scale(c)) / f64::from(*sy)
                        } else {
                            f64::from(*sx) * f64::from(weight_scale(c)) / f64::from(*sy)
                        }
                    };
                    let (multipliers, shifts) = (0..count)
                        .map(|c| quantize_multiplier(effective(c)))
                        .unzip();
                    Requant::Tflite {
                        multipliers,
                        shifts,
                    }
                }
                // ONNX Runtime computes x_scale * w_scale / y_scale in float32.
                RequantRule::Float => Requant::Float {
                    scales: (0..count).map(|c| *sx * weight_scale(c) / *sy).collect(),
                },
            }
        }
        (
            NumericsConfig::Fixed { rounding, .. },
            TensorQuant::Fixed { frac_len: fx, .. },
            WeightQuant::Fixed { frac_len: fw, .. },
            TensorQuant::Fixed { frac_len: fy, .. },
        ) => Requant::Shift {
            shift: fx + fw - fy,
            rounding: *rounding,
        },
        _ => {
            return Err(
                "input, weight and output quantisation belong to different numeric modes"
                    .to_string(),
            );
        }
    };
    Ok(OutputStage {
        accumulator_bits: numerics.accumulator_bits(),
        requant,
        zero_point: out_quant.zero(),
        clamp_min,
        clamp_max,
    })
}

/// A tensor spec's distribution parameters, by name.
fn dist_params(spec: &RawTensor) -> [(&'static str, &Option<Spanned<f64>>); 6] {
    [
        ("low", &spec.low),
        ("high", &spec.high),
        ("mean", &spec.mean),
        ("std", &spec.std),
        ("scale", &spec.scale),
        ("value", &spec.value),
    ]
}

/// Defaults (low, high, mean, std, scale) for a distribution given in place
/// of `default_dist`: the same support, centre and spread.
fn default_params(default_dist: Distribution) -> (f64, f64, f64, f64, f64) {
    match default_dist {
        Distribution::Uniform { low, high } => (
            low,
            high,
            (low + high) / 2.0,
            (high - low) / 8.0,
            (high - low) / 16.0,
        ),
        Distribution::Gaussian { mean, std } => {
            (mean - 4.0 * std, mean + 4.0 * std, mean, std, std / 2.0)
        }
        Distribution::Laplace { mean, scale } => (
            mean - 8.0 * scale,
            mean + 8.0 * scale,
            mean,
            2.0 * scale,
            scale,
        ),
        Distribution::Constant { value } => (value, value, value, 0.0, 0.0),
    }
}

/// What is wrong with a distribution's parameters, if anything.
fn distribution_problem(d: Distribution) -> Option<String> {
    match d {
        Distribution::Uniform { low, high } => {
            (!low.is_finite() || !high.is_finite() || low > high)
                .then(|| format!("low {low} > high {high}; valid: low <= high"))
        }
        Distribution::Gaussian { mean, std } => {
            (!mean.is_finite() || !std.is_finite() || std < 0.0)
                .then(|| format!("std is {std}; valid: >= 0"))
        }
        Distribution::Laplace { mean, scale } => {
            (!mean.is_finite() || !scale.is_finite() || scale < 0.0)
                .then(|| format!("scale is {scale}; valid: >= 0"))
        }
        Distribution::Constant { value } => {
            (!value.is_finite()).then(|| "value must be finite".to_string())
        }
    }
}
