//! Loading a `[float]` workload: real weights, biases and calibration
//! inputs, quantised to dynamic fixed point with every fractional length
//! chosen by PELUSO's L2 rule (`workload::dfp`, docs/precision.md).
//!
//! The loader builds the integer network layer by layer as usual; alongside,
//! it runs the float network on the first `fl_samples` calibration inputs so
//! that each weighted layer's output fractional length is fitted to the real
//! outputs before the layer's output stage is fixed.

use std::ops::Range;

use ndarray::{Array2, Array3, Array4};
use rayon::prelude::*;
use toml::Spanned;

use super::{Builder, Cx, NumericsConfig};
use crate::error::{InputError, Result};
use crate::numerics::{Activation, TensorQuant, WeightQuant};
use crate::workload::dfp::{self, CalibrationSet};
use crate::workload::format::{OpKind, RawFloat, RawInput, RawLayer, RawTensor};
use crate::workload::generate::{self, Distribution, Generator};

/// Most calibration inputs a `[float]` workload may ask for (`samples`, and
/// `accsim precision --calib N`).
const MAX_CALIBRATION_SAMPLES: usize = 1_000_000;
use crate::workload::ir::{Activations, Conv2d, Layer, Op, Shape, TensorSource};
use crate::workload::npy;

/// PELUSO's calibration set size.
const DEFAULT_SAMPLES: usize = 2000;
/// Calibration inputs the output fractional lengths are fitted on, by default.
const DEFAULT_FL_SAMPLES: usize = 16;

/// The calibration inputs of a `[float]` workload, real and quantised.
pub(super) struct FloatInputs {
    /// The input quantisation chosen by the L2 rule.
    pub quant: TensorQuant,
    /// Every calibration input, real-valued.
    reals: Vec<Array3<f64>>,
    /// Labels and where they came from (for range errors).
    labels: Option<(Vec<i64>, Range<usize>)>,
    fl_samples: usize,
    centre_last_bias: bool,
}

impl FloatInputs {
    /// Calibration input 0, quantised: the workload's default input.
    pub fn default_input(&self) -> Activations {
        self.quantised(0)
    }

    /// How many calibration inputs the float network runs on while loading.
    pub fn fitting_samples(&self) -> usize {
        self.fl_samples
    }

    fn quantised(&self, s: usize) -> Activations {
        self.reals[s].mapv(|v| self.quant.quantize(v) as i16)
    }
}

/// The float network's activations while the integer network is built.
pub(super) struct FloatBuild {
    /// The first `fl_samples` calibration inputs.
    input: Vec<Array3<f64>>,
    /// Float outputs per built layer; dropped once no later layer reads them.
    outputs: Vec<Option<Vec<Array3<f64>>>>,
    /// Per layer: the index of the last layer that reads its output.
    last_reader: Vec<usize>,
    /// The last weighted layer, if its bias is to be centred.
    centre: Option<usize>,
}

impl FloatBuild {
    pub fn new(f: &FloatInputs, specs: &[&Spanned<RawLayer>]) -> Self {
        let last_weighted = specs.iter().rposition(|s| {
            matches!(
                *s.get_ref().op.get_ref(),
                OpKind::Conv2d | OpKind::DepthwiseConv2d | OpKind::Fc
            )
        });
        let mut index = std::collections::HashMap::new();
        let mut last_reader: Vec<usize> = (0..specs.len()).collect();
        for (s, spec) in specs.iter().enumerate() {
            let raw = spec.get_ref();
            let source = match &raw.input {
                None => s.checked_sub(1),
                Some(name) => index.get(name.get_ref().as_str()).copied(),
            };
            if let Some(j) = source {
                last_reader[j] = s;
            }
            index.insert(raw.name.get_ref().as_str(), s);
        }
        FloatBuild {
            input: f.reals[..f.fl_samples].to_vec(),
            outputs: Vec::new(),
            last_reader,
            centre: last_weighted.filter(|_| f.centre_last_bias),
        }
    }
}

/// Real weights and bias of the layer being built.
#[derive(Default)]
pub(super) struct FloatParams {
    weights: Option<Vec<f64>>,
    bias: Option<Vec<f64>>,
}

impl Cx<'_> {
    /// Validates `[float]` and `[input]` for a float workload, reads or
    /// generates the calibration inputs and chooses the input's fractional length.
    pub(super) fn float_inputs(
        &self,
        f: &Spanned<RawFloat>,
        input: &Spanned<RawInput>,
        numerics: &NumericsConfig,
        options: &super::LoadOptions,
    ) -> Result<FloatInputs, InputError> {
        let ctx = "[float]";
        let NumericsConfig::Fixed {
            activation_bits, ..
        } = *numerics
        else {
            return Err(self.err(
                Some(f.span()),
                ctx,
                "",
                "needs [numerics] mode = \"dynamic_fixed_point\" (PELUSO's flow); affine \
                 workloads give quantised weights",
            ));
        };
        let r = input.get_ref();
        for (field, span) in [
            ("frac_len", r.frac_len.as_ref().map(|x| x.span())),
            ("data", r.data.as_ref().map(|x| x.span())),
        ] {
            if let Some(span) = span {
                return Err(self.err(
                    Some(span),
                    "[input]",
                    field,
                    "does not apply to a [float] workload: the input fractional length is \
                     chosen by the L2 rule and the default input is calibration input 0 \
                     ([float] inputs); remove it",
                ));
            }
        }
        let shape = self.input_shape(r)?;
        let raw = f.get_ref();
        let requested = self.requested_samples(f, options)?;
        let reals = self.calibration_reals(raw, shape, requested)?;
        let frac_len = dfp::l2_frac_len(reals.iter().flat_map(|x| x.iter()), activation_bits);
        let labels = match &raw.labels {
            None => None,
            Some(file) => Some(self.float_labels(file, reals.len())?),
        };
        let fl_samples = self.fl_samples(raw, reals.len())?;
        Ok(FloatInputs {
            quant: TensorQuant::Fixed {
                bits: activation_bits,
                frac_len,
            },
            reals,
            labels,
            fl_samples,
            centre_last_bias: raw.centre_last_bias.as_ref().is_some_and(|c| *c.get_ref()),
        })
    }

    /// Calibration inputs asked for by `--calib` (which wins) or `[float]
    /// samples`, each 1 to [`MAX_CALIBRATION_SAMPLES`]; `None`: all of a
    /// file's, or [`DEFAULT_SAMPLES`] generated.
    fn requested_samples(
        &self,
        f: &Spanned<RawFloat>,
        options: &super::LoadOptions,
    ) -> Result<Option<usize>, InputError> {
        let requested = match (&options.calibration_samples, &f.get_ref().samples) {
            (Some(n), _) => {
                if !(1..=MAX_CALIBRATION_SAMPLES).contains(n) {
                    return Err(InputError::new(
                        "--calib",
                        format!(
                            "is {n}; valid: 1 to {MAX_CALIBRATION_SAMPLES} samples (the range \
                             of [float] samples), or a directory of inputs"
                        ),
                    ));
                }
                Some(*n)
            }
            (None, Some(s)) => {
                let n = *s.get_ref();
                if !(1..=MAX_CALIBRATION_SAMPLES as i64).contains(&n) {
                    return Err(self.err(
                        Some(s.span()),
                        "[float]",
                        "samples",
                        format!("is {n}; valid: 1 to {MAX_CALIBRATION_SAMPLES}"),
                    ));
                }
                Some(n as usize)
            }
            (None, None) => None,
        };
        if requested == Some(0) {
            return Err(self.err(
                Some(f.span()),
                "[float]",
                "samples",
                "is 0; valid: at least 1 calibration input",
            ));
        }
        Ok(requested)
    }

    /// The calibration inputs in real units, from `[float] inputs`' file or
    /// generator; every value finite.
    fn calibration_reals(
        &self,
        raw: &RawFloat,
        shape: Shape,
        requested: Option<usize>,
    ) -> Result<Vec<Array3<f64>>, InputError> {
        let spec = raw
            .inputs
            .as_ref()
            .map(|s| s.get_ref().clone())
            .unwrap_or_default();
        let spec_span = raw.inputs.as_ref().map(|s| s.span());
        let reals = match &spec.file {
            Some(file) => self.reals_from_file(file, shape, requested)?,
            None => self.generated_reals(&spec, spec_span.clone(), shape, requested)?,
        };
        if let Some((s, _)) = reals
            .iter()
            .enumerate()
            .find(|(_, x)| x.iter().any(|v| !v.is_finite()))
        {
            return Err(self.err(
                spec_span,
                "[float]",
                "inputs",
                format!("calibration input {s} holds a value that is not finite"),
            ));
        }
        Ok(reals)
    }

    /// The first `requested` (default: all) inputs of a float `.npy` file
    /// `[N, C, H, W]`.
    fn reals_from_file(
        &self,
        file: &Spanned<String>,
        shape: Shape,
        requested: Option<usize>,
    ) -> Result<Vec<Array3<f64>>, InputError> {
        let ctx = "[float]";
        let path = self.resolve(file.get_ref());
        let located = |e: InputError| self.located(e, file.span(), ctx, "inputs");
        let array = npy::read_npy_any(&path).map_err(located)?;
        let dims = array.shape().to_vec();
        if !array.is_float()
            || dims.len() != 4
            || dims[1..] != [shape.channels, shape.height, shape.width]
            || dims[0] == 0
        {
            return Err(self.err(
                Some(file.span()),
                ctx,
                "inputs",
                format!(
                    "{} holds {} {:?}; valid: float32 or float64 [N, {}, {}, {}] with N >= 1",
                    path.display(),
                    array.dtype_name(),
                    dims,
                    shape.channels,
                    shape.height,
                    shape.width
                ),
            ));
        }
        let n = requested.unwrap_or(dims[0]);
        if n > dims[0] {
            return Err(self.err(
                Some(file.span()),
                ctx,
                "samples",
                format!(
                    "asks for {n} calibration inputs; {} holds {}",
                    path.display(),
                    dims[0]
                ),
            ));
        }
        let values = array.to_f64();
        let per_sample = shape.len();
        Ok((0..n)
            .map(|s| {
                Array3::from_shape_vec(
                    shape.dims(),
                    values[s * per_sample..(s + 1) * per_sample].to_vec(),
                )
                .unwrap_or_else(|_| Array3::zeros(shape.dims()))
            })
            .collect())
    }

    /// `requested` (default [`DEFAULT_SAMPLES`]) inputs drawn by the
    /// generator `spec` (uniform in [-1, 1] unless it says otherwise).
    fn generated_reals(
        &self,
        spec: &RawTensor,
        spec_span: Option<Range<usize>>,
        shape: Shape,
        requested: Option<usize>,
    ) -> Result<Vec<Array3<f64>>, InputError> {
        let ctx = "[float]";
        let n = requested.unwrap_or(DEFAULT_SAMPLES);
        let per_sample = shape.len();
        self.check_size(
            &[n as u64, per_sample as u64],
            spec_span.clone(),
            ctx,
            "samples",
        )?;
        let uniform = Distribution::Uniform {
            low: -1.0,
            high: 1.0,
        };
        let g = self.generator(spec, spec_span, ctx, "inputs", "calibration", uniform)?;
        // Sample s has its own seed, so a smaller set is a prefix of a larger one.
        Ok((0..n)
            .into_par_iter()
            .map(|s| {
                let gs = Generator {
                    seed: generate::derive_seed(g.seed, &s.to_string()),
                    ..g
                };
                let v = generate::generate_reals(&gs, per_sample);
                Array3::from_shape_vec(shape.dims(), v)
                    .unwrap_or_else(|_| Array3::zeros(shape.dims()))
            })
            .collect())
    }

    /// `[float] labels`: an integer `.npy` file `[N]` with N at least the
    /// `samples` calibration inputs; its first `samples` values.
    fn float_labels(
        &self,
        file: &Spanned<String>,
        samples: usize,
    ) -> Result<(Vec<i64>, Range<usize>), InputError> {
        let ctx = "[float]";
        let path = self.resolve(file.get_ref());
        let located = |e: InputError| self.located(e, file.span(), ctx, "labels");
        let array = npy::read_npy_any(&path).map_err(located)?;
        match (array.to_i64(), array.shape()) {
            (Some(v), [n]) if *n >= samples => Ok((v[..samples].to_vec(), file.span())),
            _ => Err(self.err(
                Some(file.span()),
                ctx,
                "labels",
                format!(
                    "{} holds {} {:?}; valid: integers [N] with N >= {} (one class \
                     index per calibration input)",
                    path.display(),
                    array.dtype_name(),
                    array.shape(),
                    samples
                ),
            )),
        }
    }

    /// `[float] fl_samples`: 1 to `samples` (default [`DEFAULT_FL_SAMPLES`]
    /// or all when fewer).
    fn fl_samples(&self, raw: &RawFloat, samples: usize) -> Result<usize, InputError> {
        let Some(s) = &raw.fl_samples else {
            return Ok(DEFAULT_FL_SAMPLES.min(samples));
        };
        let n = *s.get_ref();
        if !(1..=samples as i64).contains(&n) {
            return Err(self.err(
                Some(s.span()),
                "[float]",
                "fl_samples",
                format!("is {n}; valid: 1 to {samples} (the calibration inputs)"),
            ));
        }
        Ok(n as usize)
    }

    /// The quantised calibration set, labels checked against the classes.
    pub(super) fn calibration_set(
        &self,
        f: FloatInputs,
        input_quant: &TensorQuant,
        layers: &[Layer],
    ) -> Result<CalibrationSet, InputError> {
        debug_assert_eq!(*input_quant, f.quant);
        let classes = layers.last().map_or(0, |l| l.output_shape.len());
        let labels = match &f.labels {
            None => None,
            Some((values, span)) => {
                if let Some((s, v)) = values
                    .iter()
                    .enumerate()
                    .find(|(_, v)| !(0..classes as i64).contains(*v))
                {
                    return Err(self.err(
                        Some(span.clone()),
                        "[float]",
                        "labels",
                        format!(
                            "label {s} is {v}; valid: 0 to {} (the last layer has {classes} outputs)",
                            classes.saturating_sub(1)
                        ),
                    ));
                }
                Some(values.iter().map(|&v| v as usize).collect())
            }
        };
        let inputs = (0..f.reals.len())
            .into_par_iter()
            .map(|s| f.quantised(s))
            .collect();
        Ok(CalibrationSet { inputs, labels })
    }
}

impl Builder<'_> {
    /// A layer's real weights (file or generator; default He-normal,
    /// `N(0, sqrt(2 / fan_in))`), their L2 fractional length and the
    /// quantised integers.
    pub(super) fn float_weights(
        &self,
        raw: &RawLayer,
        ctx: &str,
        dims: &[usize],
        bits: u32,
    ) -> Result<(Vec<i16>, WeightQuant), InputError> {
        let cx = self.cx;
        let fl = raw
            .weight_frac_len
            .as_ref()
            .or(self.defaults.weight_frac_len.as_ref());
        if let Some(f) = fl {
            return Err(cx.err(
                Some(f.span()),
                ctx,
                "weight_frac_len",
                "is chosen by PELUSO's L2 rule in a [float] workload; remove it",
            ));
        }
        let spec = self.merged(&raw.weights, &self.defaults.weights);
        let span = raw
            .weights
            .as_ref()
            .map(|w| w.span())
            .or(Some(raw.name.span()));
        let dims64: Vec<u64> = dims.iter().map(|&d| d as u64).collect();
        cx.check_size(&dims64, span.clone(), ctx, "weights")?;
        let fan_in: usize = dims[1..].iter().product();
        let values = self.reals_or_generate(
            &spec,
            span.clone(),
            ctx,
            "weights",
            &format!("{}/weights", raw.name.get_ref()),
            dims,
            Distribution::Gaussian {
                mean: 0.0,
                std: (2.0 / fan_in.max(1) as f64).sqrt(),
            },
        )?;
        let frac_len = dfp::l2_frac_len(values.iter(), bits);
        let quant = TensorQuant::Fixed { bits, frac_len };
        let ints = values.iter().map(|&v| quant.quantize(v) as i16).collect();
        self.pending.borrow_mut().weights = Some(values);
        Ok((ints, WeightQuant::Fixed { bits, frac_len }))
    }

    /// A layer's real bias (file or generator; default zeros), kept until
    /// the fractional lengths fix its integer value.
    pub(super) fn float_bias(&self, raw: &RawLayer, ctx: &str, n: usize) -> Result<(), InputError> {
        let values = match (&raw.bias, &self.defaults.bias) {
            (None, None) => vec![0.0; n],
            (layer, default) => {
                let spec = self.merged(layer, default);
                let span = layer.as_ref().or(default.as_ref()).map(|b| b.span());
                self.reals_or_generate(
                    &spec,
                    span,
                    ctx,
                    "bias",
                    &format!("{}/bias", raw.name.get_ref()),
                    &[n],
                    Distribution::Constant { value: 0.0 },
                )?
            }
        };
        self.pending.borrow_mut().bias = Some(values);
        Ok(())
    }

    fn merged(
        &self,
        layer: &Option<Spanned<RawTensor>>,
        default: &Option<Spanned<RawTensor>>,
    ) -> RawTensor {
        let layer_spec = layer
            .as_ref()
            .map(|t| t.get_ref().clone())
            .unwrap_or_default();
        match default {
            Some(d) => layer_spec.over(d.get_ref()),
            None => layer_spec,
        }
    }

    /// Real values from a .npy file (any numeric type) or a generator.
    #[allow(clippy::too_many_arguments)]
    fn reals_or_generate(
        &self,
        spec: &RawTensor,
        span: Option<Range<usize>>,
        ctx: &str,
        field: &str,
        seed_name: &str,
        dims: &[usize],
        default: Distribution,
    ) -> Result<Vec<f64>, InputError> {
        let cx = self.cx;
        let values = match &spec.file {
            Some(file) => {
                let path = cx.resolve(file.get_ref());
                npy::read_reals(&path, dims).map_err(|e| cx.located(e, file.span(), ctx, field))?
            }
            None => {
                let g = cx.generator(spec, span.clone(), ctx, field, seed_name, default)?;
                generate::generate_reals(&g, dims.iter().product())
            }
        };
        if values.iter().any(|v| !v.is_finite()) {
            return Err(cx.err(span, ctx, field, "holds a value that is not finite"));
        }
        Ok(values)
    }

    /// Runs the float network one layer further (on the fitting samples).
    /// For a weighted layer, also sets its integer bias from the real one
    /// and returns the output fractional length chosen by the L2 rule.
    pub(super) fn float_forward(&mut self, layer: &mut Layer, ctx: &str) -> Result<Option<i32>> {
        let Some(fb) = self.float.as_mut() else {
            return Ok(None);
        };
        let params = std::mem::take(&mut *self.pending.borrow_mut());
        let current = fb.outputs.len();
        let inputs: &[Array3<f64>] = match layer.inputs[0] {
            TensorSource::Input => &fb.input,
            TensorSource::Layer(i) => fb.outputs.get(i).and_then(|o| o.as_deref()).unwrap_or(&[]),
        };
        let step = FloatStep {
            cx: self.cx,
            ctx,
            in_frac: match layer.input_quant {
                TensorQuant::Fixed { frac_len, .. } => frac_len,
                TensorQuant::Affine { .. } => 0,
            },
            accumulator_bits: self.numerics.accumulator_bits(),
            centre: fb.centre == Some(current),
        };
        let (outputs, weighted) = step.outputs(layer, inputs, params)?;
        let frac_len = weighted.then(|| {
            dfp::l2_frac_len(
                outputs.iter().flat_map(|x| x.iter()),
                layer.output_quant.dtype().bits(),
            )
        });
        fb.outputs.push(Some(outputs));
        // Drop float tensors no later layer reads.
        for j in 0..current {
            if fb.last_reader.get(j).is_some_and(|&r| r <= current) {
                fb.outputs[j] = None;
            }
        }
        Ok(frac_len)
    }
}

/// One layer of the float network: what its output and integer bias need.
struct FloatStep<'a> {
    cx: &'a Cx<'a>,
    ctx: &'a str,
    /// The layer input's fractional length (0 for an affine input).
    in_frac: i32,
    accumulator_bits: u32,
    /// Whether this layer's bias is centred on its outputs' channel means.
    centre: bool,
}

impl FloatStep<'_> {
    /// The layer's float outputs on every fitting sample, and whether it is
    /// weighted (then its integer bias is set here).
    fn outputs(
        &self,
        layer: &mut Layer,
        inputs: &[Array3<f64>],
        params: FloatParams,
    ) -> Result<(Vec<Array3<f64>>, bool)> {
        let (cx, ctx) = (self.cx, self.ctx);
        let out_hw = (layer.output_shape.height, layer.output_shape.width);
        Ok(match &mut layer.op {
            Op::Conv2d(c) => (self.conv(c, inputs, params, out_hw)?, true),
            Op::FullyConnected(f) => {
                let mut bias_reals = params.bias.unwrap_or_default();
                let weight_reals = params.weights.unwrap_or_default();
                let none = Activation::None;
                let w = Array2::from_shape_vec(f.weights.dim(), weight_reals)
                    .map_err(|e| cx.err(None, ctx, "weights", e.to_string()))?;
                let pre = inputs
                    .par_iter()
                    .map(|x| dfp::fully_connected(x, w.view(), &bias_reals, none))
                    .collect();
                let outs = self.finish(pre, f.epilogue.activation, &mut bias_reals);
                f.epilogue.bias = self.integer_bias(&bias_reals, &f.weight_quant)?;
                (outs, true)
            }
            Op::MaxPool(p) => (
                inputs.par_iter().map(|x| dfp::pool(x, p, true)).collect(),
                false,
            ),
            Op::AvgPool(p) => (
                inputs.par_iter().map(|x| dfp::pool(x, p, false)).collect(),
                false,
            ),
            Op::GlobalAvgPool { .. } => {
                (inputs.par_iter().map(dfp::global_avg_pool).collect(), false)
            }
            Op::Flatten => {
                let n = layer.input_shape.len();
                let outs = inputs
                    .iter()
                    .map(|x| {
                        Array3::from_shape_vec((n, 1, 1), x.iter().copied().collect())
                            .unwrap_or_else(|_| Array3::zeros((n, 1, 1)))
                    })
                    .collect();
                (outs, false)
            }
            Op::Add(_)
            | Op::QLinearAvgPool(_)
            | Op::Softmax
            | Op::ChannelShuffle { .. }
            | Op::Concat(_)
            | Op::Lrn(_)
            | Op::Sum(_)
            | Op::Lookup(_)
            | Op::Channel(_)
            | Op::FloatChannel(_)
            | Op::DynamicRange
            | Op::DynamicQuantize => {
                return Err(cx.err(None, ctx, "op", format!("`{}` comes only from ONNX models (affine); a [float] workload cannot use it", layer.op.kind())).into());
            }
        })
    }

    /// A convolution's float outputs; sets its integer bias.
    fn conv(
        &self,
        c: &mut Conv2d,
        inputs: &[Array3<f64>],
        params: FloatParams,
        out_hw: (usize, usize),
    ) -> Result<Vec<Array3<f64>>> {
        let mut bias_reals = params.bias.unwrap_or_default();
        let weight_reals = params.weights.unwrap_or_default();
        let w = Array4::from_shape_vec(c.weights.dim(), weight_reals)
            .map_err(|e| self.cx.err(None, self.ctx, "weights", e.to_string()))?;
        let (stride, padding, groups) = (c.stride, c.padding, c.groups);
        let pre = inputs
            .par_iter()
            .map(|x| {
                let none = Activation::None;
                dfp::conv2d(
                    x,
                    w.view(),
                    &bias_reals,
                    stride,
                    padding,
                    groups,
                    none,
                    out_hw,
                )
            })
            .collect();
        let outs = self.finish(pre, c.epilogue.activation, &mut bias_reals);
        c.epilogue.bias = self.integer_bias(&bias_reals, &c.weight_quant)?;
        Ok(outs)
    }

    /// Integer bias: round_half_even(b * 2^(FL_in + FL_w)), checked to fit.
    fn integer_bias(&self, reals: &[f64], wq: &WeightQuant) -> Result<Vec<i64>, InputError> {
        let acc_frac = self.in_frac
            + match wq {
                WeightQuant::Fixed { frac_len, .. } => *frac_len,
                WeightQuant::Affine { .. } => 0,
            };
        let bits = self.accumulator_bits;
        let limit = 2f64.powi(bits as i32 - 1);
        reals
            .iter()
            .map(|&b| {
                let q = (b * 2f64.powi(acc_frac)).round_ties_even();
                if q.abs() >= limit {
                    Err(self.cx.err(None, self.ctx, "bias", format!("{b} in accumulator units (2^-{acc_frac}) does not fit the {bits}-bit accumulator")))
                } else {
                    Ok(q as i64)
                }
            })
            .collect()
    }

    /// Applies the activation to pre-activation outputs; when centring, each
    /// channel's mean over the fitting samples is first moved out of the bias.
    fn finish(
        &self,
        mut pre: Vec<Array3<f64>>,
        act: Activation,
        bias: &mut [f64],
    ) -> Vec<Array3<f64>> {
        if self.centre {
            for (c, b) in bias.iter_mut().enumerate() {
                let (sum, n) = pre.iter().fold((0.0, 0usize), |(s, n), x| {
                    let plane = x.index_axis(ndarray::Axis(0), c);
                    (s + plane.sum(), n + plane.len())
                });
                let mean = sum / n.max(1) as f64;
                *b -= mean;
                for x in pre.iter_mut() {
                    x.index_axis_mut(ndarray::Axis(0), c)
                        .mapv_inplace(|v| v - mean);
                }
            }
        }
        for x in pre.iter_mut() {
            x.mapv_inplace(|v| dfp::activate(v, act));
        }
        pre
    }
}
