//! The workload intermediate representation: a quantised network as plain data.
//!
//! A [`Network`] is an input specification plus layers in topological order.
//! Each layer names its input tensors ([`TensorSource`]), so a layer may read
//! any earlier tensor: the list is already a DAG, and operators with two
//! inputs (residual adds) only need a new [`Op`] variant.
//!
//! Tensors are channel-major `[channels, height, width]` (ONNX / PyTorch order
//! without the batch dimension) and every quantised value is held as `i16`,
//! whatever its storage type (uint8, int8, int16): [`TensorQuant`] says which.

use ndarray::{Array2, Array3, Array4};
use serde::Serialize;

use crate::numerics::ort_channel::ChannelKernel;
use crate::numerics::{Activation, OutputStage, Rounding, TensorQuant, WeightQuant};

/// An activation tensor: channel-major values and their quantisation.
pub type Activations = Array3<i16>;

/// `[channels, height, width]` of an activation tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct Shape {
    pub channels: usize,
    pub height: usize,
    pub width: usize,
}

impl Shape {
    pub fn new(channels: usize, height: usize, width: usize) -> Self {
        Shape {
            channels,
            height,
            width,
        }
    }

    /// Number of elements. Exact for every shape of a loaded network: the
    /// loaders check each tensor against
    /// [`super::limits::Limits::max_tensor_elements`] with checked
    /// arithmetic first ([`super::limits::shape_len`] is the checked form).
    pub fn len(&self) -> usize {
        self.channels * self.height * self.width
    }

    /// True when any dimension is zero.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `[channels, height, width]`, as ndarray wants it.
    pub fn dims(&self) -> (usize, usize, usize) {
        (self.channels, self.height, self.width)
    }
}

impl std::fmt::Display for Shape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}x{}x{}", self.channels, self.height, self.width)
    }
}

/// Zero padding around the spatial dimensions, in elements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
pub struct Padding {
    pub top: usize,
    pub left: usize,
    pub bottom: usize,
    pub right: usize,
}

impl Padding {
    pub fn is_zero(&self) -> bool {
        *self == Padding::default()
    }
}

/// `top 1, left 1, bottom 2, right 2` (`none` when zero): the workload
/// file's order, for messages.
impl std::fmt::Display for Padding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.is_zero() {
            return write!(f, "none");
        }
        write!(
            f,
            "top {}, left {}, bottom {}, right {}",
            self.top, self.left, self.bottom, self.right
        )
    }
}

/// Where a layer's input comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TensorSource {
    /// The network input.
    Input,
    /// The output of the layer at this index (always an earlier layer).
    Layer(usize),
}

/// How the network's numbers work (docs/numerics.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum Numerics {
    /// Affine int8 with TFLite integer requantisation or ONNX float requantisation.
    Affine { requant: RequantRule },
    /// PELUSO dynamic fixed point: shifts with a stated rounding rule.
    DynamicFixedPoint { rounding: Rounding },
}

/// The two affine requantisation rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequantRule {
    /// Integer multiplier and shift, exactly as TFLite's reference kernels.
    Tflite,
    /// Float32 scale, round half to even, as ONNX QLinearConv / ONNX Runtime.
    Float,
}

/// A quantised network.
#[derive(Debug, Clone)]
pub struct Network {
    pub name: String,
    pub description: String,
    /// The variant selected from the workload file, if any.
    pub variant: Option<String>,
    pub numerics: Numerics,
    pub input_shape: Shape,
    pub input_quant: TensorQuant,
    pub layers: Vec<Layer>,
}

impl Network {
    /// Total multiply-accumulates of one inference (saturating; exact for a
    /// loaded network, whose total the loaders bound by
    /// [`super::limits::Limits::max_network_ops`]).
    pub fn macs(&self) -> u64 {
        self.layers
            .iter()
            .fold(0u64, |a, l| a.saturating_add(l.macs()))
    }

    /// Total weights (saturating; bounded for a loaded network by
    /// [`super::limits::Limits::max_network_elements`]).
    pub fn weight_count(&self) -> u64 {
        self.layers
            .iter()
            .fold(0u64, |a, l| a.saturating_add(l.weight_count()))
    }

    /// Shape and quantisation of a tensor.
    pub fn tensor(&self, source: TensorSource) -> (Shape, TensorQuant) {
        match source {
            TensorSource::Input => (self.input_shape, self.input_quant),
            TensorSource::Layer(i) => {
                let l = &self.layers[i];
                (l.output_shape, l.output_quant)
            }
        }
    }
}

/// One layer.
#[derive(Debug, Clone)]
pub struct Layer {
    pub name: String,
    /// The tensors the operator reads, in operator order.
    pub inputs: Vec<TensorSource>,
    /// Shape of the (first) input.
    pub input_shape: Shape,
    pub input_quant: TensorQuant,
    pub output_shape: Shape,
    pub output_quant: TensorQuant,
    pub op: Op,
}

/// The operator of a layer.
#[derive(Debug, Clone)]
pub enum Op {
    Conv2d(Conv2d),
    FullyConnected(FullyConnected),
    MaxPool(Pool),
    AvgPool(Pool),
    /// Mean over each channel's whole plane, rounded by `rounding`.
    GlobalAvgPool {
        rounding: Rounding,
    },
    Flatten,
    /// Element-wise sum of two tensors of the same shape (a residual
    /// connection), requantised to the layer's output quantisation.
    Add(Add),
    /// Average pooling that requantises to a new scale, as ONNX Runtime's
    /// QLinearAveragePool / QLinearGlobalAveragePool do (docs/onnx.md).
    QLinearAvgPool(QLinearAvgPool),
    /// Softmax over the channels at each position, as ONNX Runtime's
    /// QLinearSoftmax computes it from the layer's input and output
    /// quantisation (docs/numerics.md, "Softmax"): a classifier's
    /// `[N, 1, 1]` scores give one distribution of `N`.
    Softmax,
    /// ShuffleNet's channel shuffle (ONNX `Reshape` to `[1, g, C/g, H, W]`,
    /// `Transpose` of the two channel axes, `Reshape` back): output channel
    /// `k` is input channel `(k % groups) * (C / groups) + k / groups`. A
    /// permutation: no arithmetic, the quantisation is the input's.
    ChannelShuffle {
        groups: usize,
    },
    /// Concatenation along the channels (ONNX `Concat` on axis 1 between
    /// DequantizeLinear and QuantizeLinear, `com.microsoft.QLinearConcat`):
    /// the inputs' channels in input order, each input copied when its
    /// quantisation is the output's and requantised otherwise, as ONNX
    /// Runtime's QLinearConcat (docs/onnx.md).
    Concat(Concat),
    /// Local response normalisation across channels (ONNX `LRN` between
    /// DequantizeLinear and QuantizeLinear), in float32 as ONNX Runtime's
    /// kernel computes it (docs/onnx.md, item 16).
    Lrn(Lrn),
    /// Element-wise sum of three or more tensors of one shape in float32,
    /// in input order, quantised once (ONNX `Sum` between DequantizeLinear
    /// and QuantizeLinear, which ONNX Runtime runs unfused).
    Sum(Sum),
    /// An element-wise activation between DequantizeLinear and
    /// QuantizeLinear (or its `com.microsoft.QLinear*` form), computed as
    /// ONNX Runtime's QLinearLookupBase does: a 256-entry table of the
    /// input byte (docs/onnx.md, item 17).
    Lookup(Lookup),
    /// A per-channel operation on one quantised tensor: BatchNormalization
    /// between DequantizeLinear and QuantizeLinear, or a Mul or Add by a
    /// per-channel constant (DenseNet-121's batch norms after a Concat and
    /// its scale layer; docs/onnx.md, item 19).
    Channel(ChannelOp),
    /// The range of a float32 tensor ([`FLOAT32_WORDS`]) as ONNX Runtime's
    /// `DynamicQuantizeLinear` takes it (`numerics::ort_dynamic`): its
    /// minimum and maximum widened to include 0, reduced over the whole
    /// tensor; the output is a float32 `[2, 1, 1]` tensor holding the
    /// uint8 scale and zero point that follow (docs/onnx.md, item 20).
    DynamicRange,
    /// `DynamicQuantizeLinear`'s values: the float32 tensor (`inputs[0]`)
    /// quantised to uint8 with the scale and zero point of its
    /// [`Op::DynamicRange`] (`inputs[1]`). The output's quantisation is
    /// [`DYNAMIC_UINT8`]: known only at run time.
    DynamicQuantize,
    /// Float32 per-channel operations on one float32 tensor, in order
    /// (BatchNormalization, Mul and Add by per-channel constants, Relu;
    /// `numerics::ort_float::FloatChannel`): what a dynamic model leaves
    /// in float32 between its quantised layers (docs/onnx.md, item 20).
    FloatChannel(crate::numerics::ort_float::FloatChannel),
}

/// The quantisation of a tensor quantised at run time ([`Op::DynamicQuantize`]):
/// uint8 whose scale and zero point are the values of a
/// [`Op::DynamicRange`] tensor, which every layer reading it also reads
/// (its last input). Scale 0 marks it: no static quantisation has one.
pub const DYNAMIC_UINT8: TensorQuant = TensorQuant::Affine {
    dtype: crate::numerics::IntType::Uint8,
    scale: 0.0,
    zero_point: 0,
};

/// The operation of an [`Op::Channel`] layer.
#[derive(Debug, Clone, PartialEq)]
pub enum ChannelOp {
    /// BatchNormalization (inference) in float32, as ONNX Runtime's kernel:
    /// its four parameters (one per channel each, dequantised when the
    /// quantiser stored them quantised) and `epsilon`.
    BatchNorm {
        scale: Vec<f32>,
        bias: Vec<f32>,
        mean: Vec<f32>,
        var: Vec<f32>,
        epsilon: f32,
    },
    /// A Mul (`add` false) or an Add by a per-channel constant: its stored
    /// integers (one per channel, or one for all) and quantisation; `fused`:
    /// ONNX Runtime's QLinearMul / QLinearAdd kernel, else the unfused
    /// float32 `Q(DQ(a) op DQ(b))`.
    Arith {
        add: bool,
        fused: bool,
        operand: Vec<i32>,
        operand_quant: TensorQuant,
    },
}

impl ChannelOp {
    /// The kernel for the layer's input and output quantisation
    /// (`numerics::ort_channel`).
    pub fn kernel(&self, input: &TensorQuant, output: &TensorQuant) -> ChannelKernel {
        match self {
            ChannelOp::BatchNorm {
                scale,
                bias,
                mean,
                var,
                epsilon,
            } => ChannelKernel::batch_norm([scale, bias, mean, var], *epsilon, input, output),
            ChannelOp::Arith {
                add,
                fused,
                operand,
                operand_quant: b,
            } => match (add, fused) {
                (false, true) => ChannelKernel::qlinear_mul(operand, b, input, output),
                (true, true) => ChannelKernel::qlinear_add(operand, b, input, output),
                (add, false) => ChannelKernel::float(*add, operand, b, input, output),
            },
        }
    }
}

/// The activation of an [`Op::Lookup`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Lookup {
    /// `v >= 0 ? v : alpha * v` (ONNX `LeakyRelu`).
    LeakyRelu { alpha: f32 },
    /// MLAS's logistic (ONNX `Sigmoid`).
    Sigmoid,
}

impl Lookup {
    /// The layer's 256-entry table, indexed by the stored input byte
    /// (`numerics::ort::activation_table`).
    pub fn table(&self, input: &TensorQuant, output: &TensorQuant) -> Box<[i16; 256]> {
        use crate::numerics::ort::{activation_table, logistic};
        match *self {
            Lookup::LeakyRelu { alpha } => {
                activation_table(|v| if v >= 0.0 { v } else { alpha * v }, input, output)
            }
            Lookup::Sigmoid => activation_table(logistic, input, output),
        }
    }
}

/// The quantisation of each input of an [`Op::Concat`], in
/// `Layer::inputs` order.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Concat {
    pub input_quants: Vec<TensorQuant>,
}

/// LRN's attributes (ONNX names): `size` channels per window, centred
/// (`(size - 1) / 2` before), `y = x * (bias + alpha / size * sum x^2)^-beta`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Lrn {
    pub size: usize,
    pub alpha: f32,
    pub beta: f32,
    pub bias: f32,
}

/// An element-wise float32 chain between quantised tensors (ONNX `Sum` of
/// dequantised inputs, as ONNX Runtime runs it unfused): the inputs
/// dequantised (or read as float32), added in input order, optionally
/// through a `Relu` and a global average pool, then quantised to the
/// layer's output quantisation or kept as float32 ([`FLOAT32_WORDS`]).
/// A plain sum (no float operand, no Relu, no pool, a quantised output)
/// is the n-ary `Sum` of docs/onnx.md item 13; the rest is item 18.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Sum {
    /// The quantisation of each input, in `Layer::inputs` order
    /// ([`FLOAT32_WORDS`] for a float32 input).
    pub input_quants: Vec<TensorQuant>,
    /// `max(v, 0)` after the sum.
    #[serde(skip_serializing_if = "is_false")]
    pub relu: bool,
    /// Then the mean of each channel's plane (the output is `[C, 1, 1]`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plane_average: Option<PlaneAverage>,
    /// The output is float32 words ([`FLOAT32_WORDS`], the layer's
    /// `output_quant`), not quantised.
    #[serde(skip_serializing_if = "is_false")]
    pub float_output: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// How ONNX Runtime sums a float32 plane for its mean (docs/onnx.md, item
/// 18; measured): the two pooling operators take different kernels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PlaneAverage {
    /// `AveragePool` whose window is the whole plane: one float32 sum in
    /// row-major order, divided by the count.
    AveragePool,
    /// `GlobalAveragePool` (MLAS's global kernel): four lanes, element `i`
    /// into lane `i % 4` for the first `4 floor(n / 4)` elements, the lanes
    /// reduced as `(l0 + l2) + (l1 + l3)`, the rest added in order, then
    /// divided by the count.
    GlobalAveragePool,
}

/// The storage of a float32 tensor carried between layers: each element's
/// 32 bits as two 16-bit words, channel `2c` the high half and `2c + 1` the
/// low half of channel `c` (so a `[C, H, W]` float32 tensor is stored as
/// `[2C, H, W]` words: 4 bytes per element in the GLB and DRAM). Only the
/// float32 chains of [`Op::Sum`] read and write it.
pub const FLOAT32_WORDS: TensorQuant = TensorQuant::Affine {
    dtype: crate::numerics::IntType::Int16,
    scale: 1.0,
    zero_point: 0,
};

impl Sum {
    /// A chain beyond the plain quantised n-ary sum: a float32 operand, a
    /// Relu, a pool, or a float32 output.
    pub fn is_chain(&self) -> bool {
        self.relu
            || self.plane_average.is_some()
            || self.float_output
            || self.input_quants.contains(&FLOAT32_WORDS)
    }
}

/// The input channel of output channel `k` of a channel shuffle of
/// `channels` in `groups` ([`Op::ChannelShuffle`]: `[g, C/g]` transposed to
/// `[C/g, g]`).
pub fn shuffled_channel(k: usize, channels: usize, groups: usize) -> usize {
    let groups = groups.max(1);
    (k % groups) * (channels / groups) + k / groups
}

/// How an [`Op::Add`] computes its sum: the two rules ONNX Runtime uses
/// (docs/numerics.md, "Add").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AddRule {
    /// ONNX Runtime's fused QLinearAdd kernel (x86-64, AVX2): scale ratios
    /// and fused multiply-adds in float32. Spelt `qlinear_add` in dumps, as
    /// in docs/numerics.md (not serde's `q_linear_add`).
    #[serde(rename = "qlinear_add")]
    QLinearAdd,
    /// DequantizeLinear both inputs, add, QuantizeLinear, all in float32
    /// (what ONNX Runtime computes when it leaves a QDQ Add unfused).
    Float,
}

/// A residual add. Both inputs are read through the layer's `inputs[0]`
/// and `inputs[1]`; their quantisation is in `input_quants`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Add {
    pub rule: AddRule,
    /// Quantisation of the two inputs, in `Layer::inputs` order.
    pub input_quants: [TensorQuant; 2],
}

/// Average pooling with requantisation (affine only): the input and output
/// quantisation are the layer's `input_quant` and `output_quant`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct QLinearAvgPool {
    /// Window geometry; a global average pool has the input's height and width as kernel.
    pub pool: Pool,
    /// Divide by the whole window (ONNX `count_include_pad = 1`) instead of
    /// the elements inside the input.
    pub count_include_pad: bool,
    /// ONNX Runtime leaves the group unfused and runs it in float32: an int8
    /// QDQ `AveragePool` whose `Q -> DQ` pair is shared on one side only,
    /// which its int8-to-uint8 rewrite skips (docs/onnx.md, item 6). The
    /// float average is quantised by QuantizeLinear (rounded, then the zero
    /// point added), every window by the float path.
    #[serde(skip_serializing_if = "is_false")]
    pub unfused: bool,
    /// An int8 QDQ `AveragePool` both of whose `Q -> DQ` pairs ONNX
    /// Runtime rewrites to uint8: its fused kernel adds the uint8 zero
    /// point (`zy + 128`) in float32 before rounding, which rounds a
    /// float average differently from `zy` (docs/onnx.md, item 4).
    #[serde(skip_serializing_if = "is_false")]
    pub uint8_kernel: bool,
}

impl Op {
    /// Short operator name used in reports and files.
    pub fn kind(&self) -> &'static str {
        match self {
            Op::Conv2d(c) if c.is_depthwise() => "depthwise_conv2d",
            Op::Conv2d(_) => "conv2d",
            Op::FullyConnected(_) => "fc",
            Op::MaxPool(_) => "max_pool",
            Op::AvgPool(_) => "avg_pool",
            Op::GlobalAvgPool { .. } => "global_avg_pool",
            Op::Flatten => "flatten",
            Op::Add(_) => "add",
            Op::QLinearAvgPool(_) => "qlinear_avg_pool",
            Op::Softmax => "softmax",
            Op::ChannelShuffle { .. } => "channel_shuffle",
            Op::Concat(_) => "concat",
            Op::Lrn(_) => "lrn",
            Op::Sum(s) if s.is_chain() => "float_chain",
            Op::Sum(_) => "sum",
            Op::Lookup(Lookup::LeakyRelu { .. }) => "leaky_relu",
            Op::Lookup(Lookup::Sigmoid) => "sigmoid",
            Op::Channel(ChannelOp::BatchNorm { .. }) => "batch_norm",
            Op::Channel(ChannelOp::Arith { add: false, .. }) => "channel_mul",
            Op::Channel(ChannelOp::Arith { add: true, .. }) => "channel_add",
            Op::FloatChannel(_) => "float_channel",
            Op::DynamicRange => "dynamic_range",
            Op::DynamicQuantize => "dynamic_quantize",
        }
    }
}

/// What a weighted layer does after its sums: bias, then the output stage.
#[derive(Debug, Clone)]
pub struct Epilogue {
    /// Added to the accumulator, one per output channel, in accumulator units
    /// (`input_scale * weight_scale` or `2^-(FL_in + FL_w)`).
    pub bias: Vec<i64>,
    /// The activation fused into the output stage's clamp (kept for reports).
    pub activation: Activation,
    pub output_stage: OutputStage,
}

/// 2-D convolution, grouped when `groups > 1` (depthwise when
/// `groups == in_channels == out_channels`).
#[derive(Debug, Clone)]
pub struct Conv2d {
    /// `[height, width]`.
    pub kernel: [usize; 2],
    /// `[vertical, horizontal]`.
    pub stride: [usize; 2],
    pub padding: Padding,
    pub groups: usize,
    /// `[out_channels, in_channels / groups, kernel_h, kernel_w]`.
    pub weights: Array4<i16>,
    pub weight_quant: WeightQuant,
    pub epilogue: Epilogue,
}

impl Conv2d {
    pub fn out_channels(&self) -> usize {
        self.weights.dim().0
    }

    pub fn in_channels_per_group(&self) -> usize {
        self.weights.dim().1
    }

    pub fn in_channels(&self) -> usize {
        self.in_channels_per_group() * self.groups
    }

    pub fn is_depthwise(&self) -> bool {
        self.groups > 1 && self.in_channels_per_group() == 1
    }
}

/// Fully connected layer over the flattened (channel-major) input.
#[derive(Debug, Clone)]
pub struct FullyConnected {
    /// `[out_features, in_features]`.
    pub weights: Array2<i16>,
    pub weight_quant: WeightQuant,
    pub epilogue: Epilogue,
}

impl FullyConnected {
    pub fn in_features(&self) -> usize {
        self.weights.dim().1
    }

    pub fn out_features(&self) -> usize {
        self.weights.dim().0
    }
}

/// Max or average pooling window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Pool {
    pub kernel: [usize; 2],
    pub stride: [usize; 2],
    pub padding: Padding,
    /// Output size rounds up (Caffe / PyTorch `ceil_mode`).
    pub ceil_mode: bool,
    /// Rounding of the average (unused by max pooling).
    pub rounding: Rounding,
}

impl Layer {
    /// Multiply-accumulates of this layer, counting every window position
    /// including those over padding (the convention of every published count).
    ///
    /// Computed in `u64`, saturating: every loader refuses a network whose
    /// operations exceed [`super::limits::Limits::max_network_ops`] (10^11 by
    /// default) with checked arithmetic, so for a loaded network this is
    /// exact; a hand-built IR that overflows reads `u64::MAX`, never a
    /// wrapped count.
    pub fn macs(&self) -> u64 {
        let out = self.output_shape;
        let product = |dims: &[usize]| dims.iter().fold(1u64, |a, &d| a.saturating_mul(d as u64));
        match &self.op {
            Op::Conv2d(c) => {
                let [kh, kw] = c.kernel;
                // A float32 output stores two words per channel.
                let channels = if self.output_quant == FLOAT32_WORDS {
                    out.channels / 2
                } else {
                    out.channels
                };
                product(&[
                    channels,
                    out.height,
                    out.width,
                    c.in_channels_per_group(),
                    kh,
                    kw,
                ])
            }
            Op::FullyConnected(f) => product(&[f.in_features(), f.out_features()]),
            Op::MaxPool(_)
            | Op::AvgPool(_)
            | Op::GlobalAvgPool { .. }
            | Op::Flatten
            | Op::Add(_)
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
            | Op::DynamicQuantize => 0,
        }
    }

    /// Number of weights.
    pub fn weight_count(&self) -> u64 {
        match &self.op {
            Op::Conv2d(c) => c.weights.len() as u64,
            Op::FullyConnected(f) => f.weights.len() as u64,
            _ => 0,
        }
    }

    /// The epilogue of a weighted layer.
    pub fn epilogue(&self) -> Option<&Epilogue> {
        match &self.op {
            Op::Conv2d(c) => Some(&c.epilogue),
            Op::FullyConnected(f) => Some(&f.epilogue),
            _ => None,
        }
    }

    /// The weight quantisation of a weighted layer.
    pub fn weight_quant(&self) -> Option<&WeightQuant> {
        match &self.op {
            Op::Conv2d(c) => Some(&c.weight_quant),
            Op::FullyConnected(f) => Some(&f.weight_quant),
            _ => None,
        }
    }
}

/// Output length of a convolution along one dimension, or `None` when the
/// kernel does not fit the padded input.
pub fn conv_output_len(
    input: usize,
    kernel: usize,
    stride: usize,
    pad_before: usize,
    pad_after: usize,
) -> Option<usize> {
    let padded = input + pad_before + pad_after;
    if kernel == 0 || stride == 0 || kernel > padded {
        return None;
    }
    Some((padded - kernel) / stride + 1)
}

/// Output length of a pooling window along one dimension. With `ceil_mode`
/// the last, partial window is kept if it starts inside the input or the
/// leading padding (the PyTorch / Caffe rule).
pub fn pool_output_len(
    input: usize,
    kernel: usize,
    stride: usize,
    pad_before: usize,
    pad_after: usize,
    ceil_mode: bool,
) -> Option<usize> {
    let padded = input + pad_before + pad_after;
    if kernel == 0 || stride == 0 || kernel > padded {
        return None;
    }
    if !ceil_mode {
        return Some((padded - kernel) / stride + 1);
    }
    let mut out = (padded - kernel).div_ceil(stride) + 1;
    if (out - 1) * stride >= input + pad_before {
        out -= 1;
    }
    Some(out)
}

/// TensorFlow / ONNX `SAME_UPPER` padding along one dimension:
/// output `ceil(input / stride)`, the odd element of padding at the end.
pub fn same_padding(input: usize, kernel: usize, stride: usize) -> (usize, usize) {
    let stride = stride.max(1);
    let out = input.div_ceil(stride);
    let total = ((out.saturating_sub(1)) * stride + kernel).saturating_sub(input);
    (total / 2, total - total / 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conv_lengths() {
        assert_eq!(conv_output_len(25, 3, 1, 1, 1), Some(25));
        assert_eq!(conv_output_len(224, 3, 2, 0, 1), Some(112));
        assert_eq!(conv_output_len(40, 8, 4, 0, 0), Some(9));
        assert_eq!(conv_output_len(2, 5, 1, 1, 1), None);
    }

    #[test]
    fn pool_lengths_with_ceil() {
        assert_eq!(pool_output_len(25, 2, 2, 0, 0, true), Some(13));
        assert_eq!(pool_output_len(25, 2, 2, 0, 0, false), Some(12));
        assert_eq!(pool_output_len(13, 2, 2, 0, 0, true), Some(7));
        // CIFAR-10 quick: 32 -> 16 -> 8 -> 4 with 3x3 stride 2 ceil.
        assert_eq!(pool_output_len(32, 3, 2, 0, 0, true), Some(16));
        assert_eq!(pool_output_len(16, 3, 2, 0, 0, true), Some(8));
        assert_eq!(pool_output_len(8, 3, 2, 0, 0, true), Some(4));
        // The PyTorch rule drops a window that would start in the trailing padding.
        assert_eq!(pool_output_len(4, 2, 2, 1, 1, true), Some(3));
    }

    #[test]
    fn same_padding_matches_tensorflow() {
        assert_eq!(same_padding(224, 3, 2), (0, 1));
        assert_eq!(same_padding(25, 3, 1), (1, 1));
        assert_eq!(same_padding(32, 5, 1), (2, 2));
        assert_eq!(same_padding(7, 1, 1), (0, 0));
    }
}
