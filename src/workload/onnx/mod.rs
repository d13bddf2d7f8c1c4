//! ONNX import: a quantised ONNX model (QDQ or QOperator form) into the IR.
//!
//! The graph is read with prost from the field-number-exact subset of
//! onnx.proto in `proto/onnx_subset.proto` (no tract, no system protoc), then
//! evaluated symbolically node by node in topological order. Every tensor
//! name is bound to a [`Value`]: a constant, a quantised activation held by
//! an IR tensor, its dequantised (float) view, or a partly built layer that
//! waits for the `QuantizeLinear` that ends it. The patterns folded into
//! single IR layers (docs/onnx.md lists them):
//!
//! ```text
//!  DQ(x) ─┐
//!  DQ(w) ─┼─ Conv / Gemm / MatMul [─ Add(DQ bias)] [─ Relu | Clip] ─ Q   => conv2d / fc
//!  DQ(b) ─┘
//!  QLinearConv / QLinearMatMul [─ Relu | Clip (on integers)]             => conv2d / fc
//!  ConvInteger / MatMulInteger ─ Cast ─ Mul [─ Add] [─ Relu | Clip] ─ Q  => conv2d / fc
//!  DQ ─ MaxPool ─ Q (same quantisation), MaxPool on integers             => max_pool
//!  DQ ─ AveragePool | GlobalAveragePool ─ Q                              => qlinear_avg_pool
//!  DQ(a), DQ(b) ─ Add ─ Q                                                => add
//!  DQ(a), DQ(b) ─ Sum [─ Relu] ─ Q                                       => add (float32)
//!  com.microsoft QGemm, QLinearAdd, QLinear(Global)AveragePool,
//!  QLinearSoftmax (QOperator form, `contrib`)                             => fc, add, pools, softmax
//!  DQ ─ Softmax (over the channels) ─ Q                                  => softmax
//!  Flatten / Reshape to [1, N]                                           => flatten
//!  Reshape [1,g,C/g,H,W] ─ Transpose [0,2,1,3,4] ─ Reshape [1,C,H,W]      => channel_shuffle
//! ```
//!
//! The arithmetic of each folded layer is the one ONNX Runtime uses for that
//! pattern (docs/onnx.md, "What ONNX Runtime computes"), so accsim's outputs
//! are bit-identical to ONNX Runtime's. Unsupported operators are reported
//! all at once, one line per operator type with its count and first node.
//!
//! Loading reads each initializer in place ([`tensor::Tensor`] borrows it
//! from the decoded model) and converts weights once, into the IR's arrays;
//! a pending layer moves from node to node, never copied; the model is not
//! run (docs/onnx.md, "Loading speed and memory").

mod proto {
    #![allow(clippy::all, clippy::pedantic, missing_docs)]
    include!(concat!(env!("OUT_DIR"), "/onnx.rs"));
}
mod channel_ops;
mod contrib;
mod dynamic;
mod dynamic_float;
mod float_chain;
mod float_ops;
mod shuffle;
mod tensor;

use std::collections::{HashMap, HashSet};
use std::path::Path;

use ndarray::{Array2, Array3, Array4};
use prost::Message;

use self::proto::tensor_proto::DataType;
use self::proto::{AttributeProto, GraphProto, ModelProto, NodeProto};
use self::tensor::Tensor;
use super::generate::{self, Distribution, Generator};
use super::ir::{
    Add, AddRule, Conv2d, Epilogue, FullyConnected, Layer, Network, Numerics, Op, Padding, Pool,
    QLinearAvgPool, RequantRule, Shape, TensorSource, conv_output_len, pool_output_len,
};
use super::limits::{Budget, LayerCost, Limits, MAX_DIMENSION};
use super::load::{LoadOptions, Workload};
use crate::error::{InputError, Result};
use crate::numerics::{
    Activation, IntType, OutputStage, Requant, Rounding, TensorQuant, WeightQuant,
};

/// Operators the importer understands (default domain unless noted).
const SUPPORTED: &[&str] = &[
    "QuantizeLinear",
    "DequantizeLinear",
    "Conv",
    "Gemm",
    "MatMul",
    "QLinearConv",
    "QLinearMatMul",
    "ConvInteger",
    "MatMulInteger",
    "Cast",
    "Mul",
    "Add",
    "BatchNormalization",
    "Sum",
    "Concat",
    "LRN",
    "LeakyRelu",
    "Sigmoid",
    "Relu",
    "Clip",
    "MaxPool",
    "AveragePool",
    "GlobalAveragePool",
    "Softmax",
    "Flatten",
    "Reshape",
    "Transpose",
    "Identity",
    "Constant",
    "DynamicQuantizeLinear",
];

/// Largest ONNX file accsim reads [bytes]: protobuf's own 2 GiB limit.
pub const MAX_ONNX_FILE_BYTES: u64 = 2 << 30;

/// Loads an ONNX model file. The file's bytes are let go once decoded,
/// before the layers are built, so they and the IR's weights are never all
/// held at once.
pub fn load_file(path: &Path) -> Result<Workload> {
    let bytes = super::limits::read_bounded(path, MAX_ONNX_FILE_BYTES, "ONNX model")?;
    check_nodes(&bytes, path)?;
    let model = decode(&bytes, path)?;
    drop(bytes);
    import(&model, path, &LoadOptions::default())
}

/// Loads an ONNX model from its serialised bytes; `path` names it in errors.
pub fn load_bytes(bytes: &[u8], path: &Path) -> Result<Workload> {
    load_bytes_with(bytes, path, &LoadOptions::default())
}

/// [`load_bytes`] with options (of which ONNX import uses the limits).
pub fn load_bytes_with(bytes: &[u8], path: &Path, options: &LoadOptions) -> Result<Workload> {
    check_nodes(bytes, path)?;
    import(&decode(bytes, path)?, path, options)
}

/// Refuses unsupported operators from the nodes alone, before the
/// initializers are decoded. Bytes that do not decode are left to
/// [`decode`], which says so.
fn check_nodes(bytes: &[u8], path: &Path) -> Result<(), InputError> {
    match proto::ModelNodes::decode(bytes) {
        Ok(m) => check_operators(m.graph.as_ref().map_or(&[], |g| &g.node[..]), path),
        Err(_) => Ok(()),
    }
}

fn decode(bytes: &[u8], path: &Path) -> Result<ModelProto, InputError> {
    ModelProto::decode(bytes).map_err(|e| {
        InputError::new(
            path,
            format!("not a valid ONNX model (protobuf decoding failed: {e})"),
        )
    })
}

/// Builds the network. The model is not run: an ONNX model has no
/// calibration, so its reference outputs are left to whoever needs them
/// ([`Workload::reference_outputs`], `accsim run`), and `accsim check` or a
/// run on another input never computes them.
fn import(model: &ModelProto, path: &Path, options: &LoadOptions) -> Result<Workload> {
    let Some(graph) = model.graph.as_ref() else {
        return Err(InputError::new(path, "the ONNX model has no graph").into());
    };
    let mut im = Importer::new(path, graph, options.limits)?;
    im.opset = default_opset(model);
    for node in &graph.node {
        im.node(node)?;
    }
    let network = im.finish(model)?;
    let default_input = default_input(&network);
    Ok(Workload {
        network,
        path: path.to_path_buf(),
        default_input,
        default_outputs: Vec::new(),
        calibration: None,
    })
}

/// The default input of an imported model (ONNX files carry none): uniform
/// over the input type's range, seeded from the graph name, as a workload
/// file's default `data = { dist = "uniform" }`.
///
/// A float32 input (a dynamic model's) is uniform over `[0, 1]` in steps of
/// 1/255 (an 8-bit image scaled to `[0, 1]`), stored as words.
fn default_input(net: &Network) -> Array3<i16> {
    if net.input_quant == crate::workload::ir::FLOAT32_WORDS {
        let s = net.input_shape;
        let bytes = default_input_of(
            net,
            Shape::new(s.channels / 2, s.height, s.width),
            (0, 255),
            0,
        );
        return crate::reference::dynamic::words(&bytes.mapv(|v| f32::from(v) / 255.0));
    }
    let (lo, hi) = net.input_quant.range();
    default_input_of(net, net.input_shape, (lo, hi), net.input_quant.zero())
}

/// Uniform integers over `[lo, hi]` of `shape`, seeded by the graph name.
fn default_input_of(net: &Network, shape: Shape, (lo, hi): (i32, i32), zero: i32) -> Array3<i16> {
    let g = Generator {
        distribution: Distribution::Uniform {
            low: f64::from(lo),
            high: f64::from(hi),
        },
        seed: generate::derive_seed(0, &format!("{}/input", net.name)),
        sparsity: None,
        pruning: Default::default(),
    };
    let n = shape.len();
    let values: Vec<i16> = generate::generate_ints(&g, n, zero as i16, (lo as i16, hi as i16));
    Array3::from_shape_vec(shape.dims(), values).unwrap_or_else(|_| Array3::zeros(shape.dims()))
}

fn node_label(n: &NodeProto) -> String {
    let name = n.name.as_deref().unwrap_or("");
    let op = n.op_type.as_deref().unwrap_or("?");
    if name.is_empty() {
        let out = n.output.first().map(String::as_str).unwrap_or("?");
        format!("node ({op}) producing `{out}`")
    } else {
        format!("node `{name}` ({op})")
    }
}

/// Every operator type accsim cannot import, at once: one line per type
/// (in the order of first appearance) with its node count and first node.
fn check_operators(nodes: &[NodeProto], path: &Path) -> Result<(), InputError> {
    // (operator, nodes, first node, why), by first appearance.
    let mut bad: Vec<(String, usize, &NodeProto, Option<&str>)> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for n in nodes {
        let op = n.op_type.as_deref().unwrap_or("");
        let domain = n.domain.as_deref().unwrap_or("");
        if matches!(domain, "" | "ai.onnx") && SUPPORTED.contains(&op)
            || domain == "com.microsoft" && contrib::SUPPORTED_MS.contains(&op)
        {
            continue;
        }
        let key = if domain.is_empty() {
            op.to_string()
        } else {
            format!("{domain}.{op}")
        };
        match index.get(&key) {
            Some(&k) => bad[k].1 += 1,
            None => {
                index.insert(key.clone(), bad.len());
                let domain = if domain == "ai.onnx" { "" } else { domain };
                bad.push((key, 1, n, contrib::refusal_reason(domain, op)));
            }
        }
    }
    if bad.is_empty() {
        return Ok(());
    }
    let nodes: usize = bad.iter().map(|b| b.1).sum();
    let mut message = format!(
        "{} operator type{} accsim does not import ({nodes} node{}):",
        bad.len(),
        if bad.len() == 1 { "" } else { "s" },
        if nodes == 1 { "" } else { "s" },
    );
    for (op, count, first, why) in &bad {
        let at = node_label(first).replacen(
            &format!(" ({})", first.op_type.as_deref().unwrap_or("?")),
            "",
            1,
        );
        if *count == 1 {
            message.push_str(&format!("\n  {op}: 1 node, {at}"));
        } else {
            message.push_str(&format!("\n  {op}: {count} nodes, the first {at}"));
        }
        if let Some(why) = why {
            message.push_str(&format!(" ({why})"));
        }
    }
    message.push_str(&format!(
        "\n  valid: {}, and in the com.microsoft domain (QOperator form) {}",
        SUPPORTED.join(", "),
        contrib::SUPPORTED_MS.join(", ")
    ));
    Err(InputError::new(path, message))
}

/// A quantised activation held by an IR tensor.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Act {
    source: TensorSource,
    shape: Shape,
    quant: TensorQuant,
    /// ONNX rank: 4 (`[1, C, H, W]`) or 2 (`[1, N]`, held as `N x 1 x 1`).
    rank: usize,
}

/// A dequantised constant (weights, bias).
#[derive(Debug, Clone)]
struct DqConst<'a> {
    q: Tensor<'a>,
    scales: Vec<f32>,
    zero_points: Vec<i64>,
    axis: Option<usize>,
}

/// Geometry of a pending convolution.
#[derive(Debug, Clone, Copy)]
struct ConvGeom {
    kernel: [usize; 2],
    stride: [usize; 2],
    padding: Padding,
    groups: usize,
}

/// How a pending weighted layer will be requantised.
#[derive(Debug, Clone, PartialEq)]
enum Chain {
    /// QDQ Conv/Gemm/MatMul: ONNX Runtime fuses the group into
    /// QLinearConv / QGemm / QLinearMatMul, `f32(acc) * (sx * sw / sy)`.
    Qdq,
    /// ConvInteger / MatMulInteger, then Cast, Mul, Add in float32.
    Integer {
        cast: bool,
        scales: Option<Vec<f32>>,
        offsets: Option<Vec<f32>>,
    },
    /// `quantize_dynamic`'s ConvInteger / MatMulInteger of a run-time
    /// quantised input, then Cast, Mul, Add, Relu in float32: a float32
    /// output (`dynamic`).
    Dynamic(Box<dynamic::DynChain>),
}

/// The IR operation of a conv (`geom` given) or an FC layer (its weights
/// `[out, in, 1, 1]` viewed as `[out, in]`).
fn weighted_op(
    geom: Option<ConvGeom>,
    weights: Array4<i16>,
    weight_quant: WeightQuant,
    epilogue: Epilogue,
) -> Result<Op, ndarray::ShapeError> {
    Ok(match geom {
        Some(g) => Op::Conv2d(Conv2d {
            kernel: g.kernel,
            stride: g.stride,
            padding: g.padding,
            groups: g.groups,
            weights,
            weight_quant,
            epilogue,
        }),
        None => {
            let (out, k, _, _) = weights.dim();
            Op::FullyConnected(FullyConnected {
                weights: weights.into_shape_with_order((out, k))?,
                weight_quant,
                epilogue,
            })
        }
    })
}

/// A conv or FC layer waiting for its `QuantizeLinear`.
#[derive(Debug, Clone)]
struct Weighted {
    node: String,
    input: Act,
    geom: Option<ConvGeom>,
    /// `[out, in/groups, kh, kw]` (conv) or `[out, in, 1, 1]` (fc).
    weights: Array4<i16>,
    weight_quant: WeightQuant,
    bias: Vec<i64>,
    chain: Chain,
    /// Float clamps from Relu / Clip between the sums and the QuantizeLinear.
    lo: Option<f32>,
    hi: Option<f32>,
    out_shape: Shape,
    rank: usize,
    /// A QDQ `Conv`: whether its input's DequantizeLinear is read by more
    /// than one node (`None` for the other weighted operators), for
    /// [`Importer::unfused_int8_group`].
    shared_input: Option<bool>,
    /// The bias DequantizeLinear's scales (empty without one).
    bias_scales: Vec<f32>,
}

#[derive(Debug, Clone)]
enum PoolKind {
    Max(Pool),
    Avg(QLinearAvgPool),
}

#[derive(Debug, Clone)]
enum Value<'a> {
    Const(Tensor<'a>),
    DqConst(DqConst<'a>),
    Quant(Act),
    Dequant(Act),
    /// The float graph input, before its QuantizeLinear.
    FloatInput,
    /// A `[1, C, H, W]` activation reshaped to `[1, groups, C / groups, H,
    /// W]` (`transposed`: then its two channel axes swapped), on the way to
    /// a channel shuffle; `dequantised`: behind a DequantizeLinear.
    Shuffle {
        act: Act,
        groups: usize,
        transposed: bool,
        dequantised: bool,
    },
    Weighted(Box<Weighted>),
    /// `shared_input`: for a QDQ AveragePool, whether its input's
    /// DequantizeLinear is read by more than one node (docs/onnx.md item 6).
    Pool {
        node: String,
        input: Act,
        kind: PoolKind,
        out_shape: Shape,
        shared_input: Option<bool>,
    },
    /// `DQ(a), DQ(b) -> Add | Sum` waiting for its QuantizeLinear. `sum`:
    /// a `Sum`, which ONNX Runtime never fuses (float32 in every type);
    /// `relu`: a Relu read the sum (a no-op only when the QuantizeLinear's
    /// zero point is the type's minimum, which is checked there).
    Add {
        node: String,
        a: Act,
        b: Act,
        sum: bool,
        relu: bool,
    },
    /// A Softmax over the channels of a dequantised activation, waiting for
    /// its QuantizeLinear. `paired_input`: the activation came from a
    /// `QuantizeLinear -> DequantizeLinear` pair.
    Softmax {
        node: String,
        /// The Softmax node as messages name it.
        label: String,
        input: Act,
        paired_input: bool,
    },
    /// `DQ.. -> Concat` (channels) waiting for its QuantizeLinear.
    Concat {
        node: String,
        inputs: Vec<Act>,
        shape: Shape,
    },
    /// `DQ -> LRN [-> MaxPool]` waiting for its QuantizeLinear (`float_ops`).
    Lrn {
        node: String,
        input: Act,
        lrn: super::ir::Lrn,
        pools: Vec<float_ops::LrnPool>,
    },
    /// `DQ -> LeakyRelu | Sigmoid` waiting for its QuantizeLinear.
    Unary {
        node: String,
        input: Act,
        op: super::ir::Lookup,
    },
    /// `DQ.. -> Sum [-> Relu]` of three or more inputs waiting for its
    /// QuantizeLinear; `relu` as in `Add`.
    Sum {
        node: String,
        inputs: Vec<Act>,
        relu: bool,
    },
    /// A float32 chain waiting for its QuantizeLinear, or for a reader
    /// that needs it as float32 (`float_chain`).
    Chain(Box<float_chain::ChainParts>),
    /// `DQ -> BatchNormalization`, or `DQ(a), DQ(constant) -> Mul | Add`,
    /// waiting for its QuantizeLinear (`channel_ops`).
    Channel {
        node: String,
        input: Act,
        op: super::ir::ChannelOp,
    },
    /// A float32 tensor carried in the machine (`ir::FLOAT32_WORDS`; the
    /// act's shape is the stored `[2C, H, W]`).
    Float(Act),
    /// A run-time value of a dynamically quantised model (`dynamic`).
    Dynamic(dynamic::DynValue),
}

struct Importer<'a> {
    path: &'a Path,
    values: HashMap<String, Value<'a>>,
    /// How many node inputs and graph outputs read each name.
    uses: HashMap<String, usize>,
    layers: Vec<Layer>,
    /// The tensor name each layer's output is bound to.
    layer_names: Vec<String>,
    input_shape: Shape,
    input_quant: TensorQuant,
    input_name: String,
    /// ONNX rank of the graph input: 4 (`[1, C, H, W]`) or 2 (`[1, N]`).
    input_rank: usize,
    /// Names given to layers, and the next suffix to try for each base name.
    names: HashSet<String>,
    next_suffix: HashMap<String, usize>,
    /// What the layers so far cost, against the limits.
    budget: Budget,
    /// The model's default-domain opset (Softmax's axis rules changed at 13).
    opset: i64,
    /// Each node output's producing operator and first input.
    producers: HashMap<String, (String, String)>,
    /// Names some DequantizeLinear reads.
    dequantized: HashSet<String>,
    /// The operator types that read each name, in node order.
    reader_ops: HashMap<String, Vec<String>>,
}

/// Attribute lookup.
fn attr<'n>(n: &'n NodeProto, name: &str) -> Option<&'n AttributeProto> {
    n.attribute.iter().find(|a| a.name.as_deref() == Some(name))
}

fn attr_int(n: &NodeProto, name: &str, default: i64) -> i64 {
    attr(n, name).and_then(|a| a.i).unwrap_or(default)
}

fn attr_ints(n: &NodeProto, name: &str) -> Option<Vec<i64>> {
    attr(n, name).map(|a| a.ints.clone())
}

fn attr_str(n: &NodeProto, name: &str) -> Option<String> {
    attr(n, name)
        .and_then(|a| a.s.as_ref())
        .map(|s| String::from_utf8_lossy(s).into_owned())
}

fn int_type(t: DataType) -> Option<IntType> {
    match t {
        DataType::Uint8 => Some(IntType::Uint8),
        DataType::Int8 => Some(IntType::Int8),
        _ => None,
    }
}

impl<'a> Importer<'a> {
    fn new(path: &'a Path, graph: &'a GraphProto, limits: Limits) -> Result<Self> {
        let mut values = HashMap::new();
        for init in &graph.initializer {
            let name = init.name.clone().unwrap_or_default();
            let t = tensor::decode(init).map_err(|m| {
                InputError::new(path, format!("initializer `{name}` {m}")).field("initializer")
            })?;
            values.insert(name, Value::Const(t));
        }
        let mut uses: HashMap<String, usize> = HashMap::new();
        let mut reader_ops: HashMap<String, Vec<String>> = HashMap::new();
        for n in &graph.node {
            for i in n.input.iter().filter(|i| !i.is_empty()) {
                *uses.entry(i.clone()).or_default() += 1;
                let op = n.op_type.clone().unwrap_or_default();
                reader_ops.entry(i.clone()).or_default().push(op);
            }
        }
        for o in &graph.output {
            *uses.entry(o.name.clone().unwrap_or_default()).or_default() += 1;
        }
        let mut producers = HashMap::new();
        let mut dequantized = HashSet::new();
        for n in &graph.node {
            let op = n.op_type.clone().unwrap_or_default();
            let first = n.input.first().cloned().unwrap_or_default();
            if op == "DequantizeLinear" {
                dequantized.insert(first.clone());
            }
            if let Some(out) = n.output.first() {
                producers.insert(out.clone(), (op, first));
            }
        }
        let inputs: Vec<_> = graph
            .input
            .iter()
            .filter(|i| !values.contains_key(i.name.as_deref().unwrap_or("")))
            .collect();
        let [input] = inputs.as_slice() else {
            return Err(InputError::new(
                path,
                format!(
                    "the graph has {} inputs besides initializers; accsim imports models with exactly one input",
                    inputs.len()
                ),
            )
            .into());
        };
        let input_name = input.name.clone().unwrap_or_default();
        let fail =
            |m: String| InputError::new(path, m).context(format!("graph input `{input_name}`"));
        let Some(proto::type_proto::Value::TensorType(tt)) =
            input.r#type.as_ref().and_then(|t| t.value.as_ref())
        else {
            return Err(fail("is not a tensor".to_string()).into());
        };
        let dims = input_dims(tt.shape.as_ref(), &input_name).map_err(fail)?;
        let shape = match dims.as_slice() {
            [1, c, h, w] | [c, h, w] if *c > 0 && *h > 0 && *w > 0 => {
                Shape::new(*c as usize, *h as usize, *w as usize)
            }
            [1, n] | [n] if *n > 0 => Shape::new(*n as usize, 1, 1),
            _ => {
                return Err(fail(format!(
                    "has shape {dims:?}; valid: [1, C, H, W] or [1, N] (batch 1)"
                ))
                .into());
            }
        };
        // Every dimension is positive here; the product is checked before
        // anything multiplies it.
        let budget = Budget::new(limits, shape).map_err(|m| fail(m).field("shape"))?;
        let rank = if shape.height == 1 && shape.width == 1 && dims.len() <= 2 {
            2
        } else {
            4
        };
        let elem = DataType::try_from(tt.elem_type.unwrap_or(0)).unwrap_or(DataType::Undefined);
        let (value, input_quant) = match elem {
            DataType::Float => (
                Value::FloatInput,
                TensorQuant::Affine {
                    dtype: IntType::Uint8,
                    scale: 1.0,
                    zero_point: 0,
                },
            ),
            t => match int_type(t) {
                Some(dtype) => {
                    let quant = input_quant_from_consumers(graph, &input_name, &values, dtype);
                    let act = Act {
                        source: TensorSource::Input,
                        shape,
                        quant,
                        rank,
                    };
                    (Value::Quant(act), quant)
                }
                None => {
                    return Err(fail(format!(
                        "has element type {}; valid: float (followed by QuantizeLinear), uint8 or int8",
                        tensor::type_name(tt.elem_type.unwrap_or(0))
                    ))
                    .into());
                }
            },
        };
        values.insert(input_name.clone(), value);
        Ok(Importer {
            path,
            values,
            uses,
            layers: Vec::new(),
            layer_names: Vec::new(),
            input_shape: shape,
            input_quant,
            input_name,
            input_rank: rank,
            names: HashSet::new(),
            next_suffix: HashMap::new(),
            budget,
            opset: LATEST_OPSET,
            producers,
            dequantized,
            reader_ops,
        })
    }

    fn err(&self, n: &NodeProto, message: impl Into<String>) -> InputError {
        InputError::new(self.path, message).context(node_label(n))
    }

    fn get(&self, n: &NodeProto, index: usize) -> Result<Option<&Value<'a>>, InputError> {
        match n.input.get(index).filter(|s| !s.is_empty()) {
            None => Ok(None),
            Some(name) => self.values.get(name).map(Some).ok_or_else(|| {
                self.err(
                    n,
                    format!(
                        "input `{name}` is not produced by any earlier node, initializer or graph input \
                         (the nodes must be in topological order)"
                    ),
                )
            }),
        }
    }

    /// Input `index`. A pending layer (a conv or fc waiting for its
    /// QuantizeLinear, a pool, an Add) read only here is moved out of the
    /// table, not copied: it holds the layer's weights, and a copy left
    /// behind would keep them twice.
    fn need(&mut self, n: &NodeProto, index: usize, what: &str) -> Result<Value<'a>, InputError> {
        let pending = matches!(
            self.get(n, index)?,
            Some(
                Value::Weighted(_)
                    | Value::Pool { .. }
                    | Value::Add { .. }
                    | Value::Softmax { .. }
                    | Value::Concat { .. }
                    | Value::Lrn { .. }
                    | Value::Sum { .. }
                    | Value::Unary { .. }
                    | Value::Chain(_)
                    | Value::Channel { .. }
            )
        );
        let name = n.input.get(index).map(String::as_str).unwrap_or("");
        if pending
            && self.single_use(name)
            && let Some(v) = self.values.remove(name)
        {
            return Ok(v);
        }
        self.peek(n, index, what)
    }

    /// Input `index`, copied.
    fn peek(&self, n: &NodeProto, index: usize, what: &str) -> Result<Value<'a>, InputError> {
        self.get(n, index)?
            .cloned()
            .ok_or_else(|| self.err(n, format!("input {index} ({what}) is missing")))
    }

    fn constant(&self, n: &NodeProto, index: usize, what: &str) -> Result<Tensor<'a>, InputError> {
        match self.peek(n, index, what)? {
            Value::Const(t) => Ok(t),
            _ => Err(self.err(
                n,
                format!(
                    "input {index} ({what}) must be a constant (an initializer or Constant node)"
                ),
            )),
        }
    }

    fn opt_constant(
        &self,
        n: &NodeProto,
        index: usize,
        what: &str,
    ) -> Result<Option<Tensor<'a>>, InputError> {
        match self.get(n, index)? {
            None => Ok(None),
            Some(_) => self.constant(n, index, what).map(Some),
        }
    }

    fn scale(&self, n: &NodeProto, index: usize, what: &str) -> Result<f32, InputError> {
        let t = self.constant(n, index, what)?;
        match t.scalar_f32() {
            Some(s) if t.is_float() && s.is_finite() && s > 0.0 => Ok(s),
            _ => Err(self.err(
                n,
                format!("{what} must be one positive finite float32 (a per-tensor scale); got shape {:?}", t.dims),
            )),
        }
    }

    /// A zero-point input: its value and storage type (default uint8 0).
    fn zero_point(
        &self,
        n: &NodeProto,
        index: usize,
        what: &str,
    ) -> Result<(i32, IntType), InputError> {
        match self.opt_constant(n, index, what)? {
            None => Ok((0, IntType::Uint8)),
            Some(t) => {
                let Some(dtype) = int_type(t.dtype) else {
                    return Err(self.err(
                        n,
                        format!(
                            "{what} has type {}; valid: uint8 or int8",
                            tensor::type_name(t.dtype as i32)
                        ),
                    ));
                };
                match t.scalar_i64() {
                    Some(z) => Ok((z as i32, dtype)),
                    None => Err(self.err(
                        n,
                        format!(
                            "{what} must be one value (per-tensor); got shape {:?}",
                            t.dims
                        ),
                    )),
                }
            }
        }
    }

    fn quant_at(
        &self,
        n: &NodeProto,
        s: usize,
        z: usize,
        what: &str,
    ) -> Result<TensorQuant, InputError> {
        let scale = self.scale(n, s, &format!("{what} scale"))?;
        let (zero_point, dtype) = self.zero_point(n, z, &format!("{what} zero point"))?;
        Ok(TensorQuant::Affine {
            dtype,
            scale,
            zero_point,
        })
    }

    fn bind(&mut self, n: &NodeProto, v: Value<'a>) {
        if let Some(out) = n.output.first() {
            self.values.insert(out.clone(), v);
        }
    }

    fn single_use(&self, name: &str) -> bool {
        self.uses.get(name).copied().unwrap_or(0) <= 1
    }

    /// Whether ONNX Runtime runs the int8 QDQ group that ends in the
    /// QuantizeLinear `q_node` unfused, in float32 (docs/onnx.md, item 6):
    /// its int8-to-uint8 rewrite skips a `Q -> DQ` pair whose
    /// DequantizeLinear output is read by more than one node (or a `Q` that
    /// is a graph output, with no DequantizeLinear), and a group with a
    /// rewritten pair on one side and a skipped one on the other has mixed
    /// types, which no fused kernel takes. `shared_input`: the group's
    /// input pair is shared (`None`: not a group this applies to).
    fn unfused_int8_group(
        &self,
        q_node: &NodeProto,
        shared_input: Option<bool>,
        q: &TensorQuant,
    ) -> bool {
        let (Some(shared_in), Some(out)) = (shared_input, q_node.output.first()) else {
            return false;
        };
        if q.dtype() != IntType::Int8 {
            return false;
        }
        shared_in != self.output_pair_shared(out)
    }

    /// Whether the `Q -> DQ` pair of the QuantizeLinear output `out` is
    /// read by other than one node (a graph output `Q` has no
    /// DequantizeLinear: shared), which ONNX Runtime's int8-to-uint8
    /// rewrite skips.
    fn output_pair_shared(&self, out: &str) -> bool {
        let dq_readers: usize = self
            .producers
            .iter()
            .filter(|(_, (op, first))| op == "DequantizeLinear" && first == out)
            .map(|(name, _)| self.uses.get(name).copied().unwrap_or(0))
            .sum();
        dq_readers != 1
    }

    fn node(&mut self, n: &'a NodeProto) -> Result<(), InputError> {
        let op = n.op_type.clone().unwrap_or_default();
        if n.domain.as_deref() == Some("com.microsoft") {
            let v = match self.contrib(n, &op) {
                Some(v) => v?,
                None => return Err(self.err(n, "is not supported")),
            };
            self.bind(n, v);
            return Ok(());
        }
        if let Some(v) = self.dynamic_node(n, &op) {
            let v = self.dynamic_graph_output(n, v?)?;
            self.bind(n, v);
            return Ok(());
        }
        let v = match op.as_str() {
            "Constant" => {
                let t = attr(n, "value")
                    .and_then(|a| a.t.as_ref())
                    .ok_or_else(|| self.err(n, "has no `value` tensor attribute; valid: value"))?;
                Value::Const(tensor::decode(t).map_err(|m| self.err(n, format!("value {m}")))?)
            }
            "Identity" => self.need(n, 0, "input")?,
            "QuantizeLinear" => self.quantize(n)?,
            "DequantizeLinear" => self.dequantize(n)?,
            "Conv" => self.conv(n)?,
            "Gemm" | "MatMul" => self.gemm(n, &op)?,
            "QLinearConv" => self.qlinear_conv(n)?,
            "QLinearMatMul" => self.qlinear_matmul(n)?,
            "ConvInteger" | "MatMulInteger" => self.integer(n, &op)?,
            "Cast" => self.cast(n)?,
            "Mul" => match self.channel_arith(n, false) {
                Some(v) => v?,
                None => self.mul(n)?,
            },
            "Add" => match self.channel_arith(n, true) {
                Some(v) => v?,
                None => self.add(n)?,
            },
            "BatchNormalization" => self.batch_norm(n)?,
            "Sum" => {
                let v = self.sum(n)?;
                self.materialise_shared(n, v)?
            }
            "Concat" => self.concat(n)?,
            "LRN" => self.lrn(n)?,
            "LeakyRelu" | "Sigmoid" => self.unary(n, &op)?,
            "Relu" | "Clip" => {
                let v = self.clamp(n, &op)?;
                self.materialise_shared(n, v)?
            }
            "MaxPool" | "AveragePool" | "GlobalAveragePool" => self.pool(n, &op)?,
            "Softmax" => self.softmax(n)?,
            "Reshape" => self.reshape(n)?,
            "Transpose" => self.transpose(n)?,
            "Flatten" => self.flatten(n, &op)?,
            _ => return Err(self.err(n, "is not supported")),
        };
        self.bind(n, v);
        Ok(())
    }

    fn quantize(&mut self, n: &NodeProto) -> Result<Value<'a>, InputError> {
        let x = self.need(n, 0, "x")?;
        if let Value::Const(t) = &x {
            return Err(self.quantised_constant(n, t));
        }
        let q = self.quant_at(n, 1, 2, "y")?;
        let x = match self.finish_chain(n, x, q)? {
            Ok(v) => return Ok(v),
            Err(x) => x,
        };
        let x = match self.finish_float_op(n, x, q)? {
            Ok(v) => return Ok(v),
            Err(x) => x,
        };
        match x {
            Value::FloatInput => {
                self.input_quant = q;
                Ok(Value::Quant(Act {
                    source: TensorSource::Input,
                    shape: self.input_shape,
                    quant: q,
                    rank: self.input_rank,
                }))
            }
            Value::Dequant(a) if a.quant == q => Ok(Value::Quant(a)),
            Value::Shuffle {
                act,
                groups,
                transposed,
                dequantised: true,
            } if act.quant == q => Ok(Value::Shuffle {
                act,
                groups,
                transposed,
                dequantised: false,
            }),
            Value::Dequant(a) => Err(self.err(
                n,
                format!(
                    "requantises a tensor of quantisation {:?} to {q:?} with no operator in between; \
                     accsim needs the same scale and zero point",
                    a.quant
                ),
            )),
            Value::Weighted(w) => self.finish_weighted(n, *w, q),
            Value::Channel { node, input, op } => self.finish_channel(n, node, input, op, q),
            Value::Pool {
                node,
                input,
                kind,
                out_shape,
                shared_input,
            } => self.finish_pool(n, node, input, (kind, out_shape, shared_input), q),
            Value::Add {
                node,
                a,
                b,
                sum,
                relu,
            } => self.finish_add(n, node, (a, b), (sum, relu), q),
            Value::Softmax {
                node,
                label,
                input,
                paired_input,
            } => {
                self.check_softmax_fused(n, &label, (&input, paired_input), &q)?;
                let shape = input.shape;
                Ok(Value::Quant(self.push(
                    n,
                    node,
                    vec![input],
                    Op::Softmax,
                    shape,
                    q,
                    input.rank,
                )?))
            }
            _ => Err(self.err(
                n,
                "quantises a value accsim cannot fold: valid producers are the float graph input, \
                 Conv/Gemm/MatMul on dequantised operands, the float chain after ConvInteger/MatMulInteger, \
                 pools, Add and Softmax on dequantised tensors",
            )),
        }
    }

    /// The refusal of a QuantizeLinear of a constant: accsim does not
    /// quantise weights itself.
    fn quantised_constant(&self, n: &NodeProto, t: &tensor::Tensor<'a>) -> InputError {
        self.err(
            n,
            format!(
                "quantises the constant `{}` ({} {:?}) inside the graph; accsim does not quantise \
             constants: valid weights are int8/uint8 initializers read through DequantizeLinear, \
             as ONNX Runtime's quantiser writes them by default (float weights behind a \
             QuantizeLinear -> DequantizeLinear pair come from its AddQDQPairToWeight option)",
                n.input.first().map(String::as_str).unwrap_or(""),
                tensor::type_name(t.dtype as i32),
                t.dims
            ),
        )
    }

    /// `DQ -> MaxPool | AveragePool -> Q`: a max pool keeps its input's
    /// quantisation; an average pool is a QLinearAveragePool, or ONNX
    /// Runtime's unfused int8 float pool.
    fn finish_pool(
        &mut self,
        n: &NodeProto,
        node: String,
        input: Act,
        (kind, out_shape, shared_input): (PoolKind, Shape, Option<bool>),
        q: TensorQuant,
    ) -> Result<Value<'a>, InputError> {
        let op = match kind {
            PoolKind::Max(p) => {
                if input.quant != q {
                    return Err(self.err(
                        n,
                        "a QDQ MaxPool must quantise its output with its input's scale and zero point",
                    ));
                }
                Op::MaxPool(p)
            }
            PoolKind::Avg(mut p) => {
                p.unfused = self.unfused_int8_group(n, shared_input, &q);
                // Both pairs rewritten to uint8: the fused kernel runs on
                // uint8 with the zero points moved by 128 (docs/onnx.md, item 4).
                p.uint8_kernel = q.dtype() == IntType::Int8
                    && shared_input == Some(false)
                    && !n.output.first().is_none_or(|o| self.output_pair_shared(o));
                Op::QLinearAvgPool(p)
            }
        };
        Ok(Value::Quant(self.push(
            n,
            node,
            vec![input],
            op,
            out_shape,
            q,
            input.rank,
        )?))
    }

    /// `DQ(a), DQ(b) -> Add | Sum (-> Relu) -> Q`.
    fn finish_add(
        &mut self,
        n: &NodeProto,
        node: String,
        (a, b): (Act, Act),
        (sum, relu): (bool, bool),
        q: TensorQuant,
    ) -> Result<Value<'a>, InputError> {
        if relu && q.zero() != q.range().0 {
            return Err(self.err(
                n,
                format!(
                    "a Relu between the {} and this QuantizeLinear clamps at zero point {}; \
                     valid: a zero point of {} (the type's minimum, where the Relu changes \
                     nothing and ONNX Runtime drops it)",
                    if sum { "Sum" } else { "Add" },
                    q.zero(),
                    q.range().0
                ),
            ));
        }
        // ONNX Runtime fuses uint8 QDQ Adds into QLinearAdd and runs
        // int8 ones, and every Sum, unfused, in float (docs/onnx.md).
        let rule = if q.dtype() == IntType::Uint8 && !sum {
            AddRule::QLinearAdd
        } else {
            AddRule::Float
        };
        let op = Op::Add(Add {
            rule,
            input_quants: [a.quant, b.quant],
        });
        Ok(Value::Quant(self.push(
            n,
            node,
            vec![a, b],
            op,
            a.shape,
            q,
            a.rank,
        )?))
    }

    /// Appends a layer; returns the activation it produces. Refuses a layer
    /// that would take the network past its [`Limits`].
    #[allow(clippy::too_many_arguments)]
    fn push(
        &mut self,
        n: &NodeProto,
        name: String,
        inputs: Vec<Act>,
        op: Op,
        out_shape: Shape,
        out_quant: TensorQuant,
        rank: usize,
    ) -> Result<Act, InputError> {
        let Some(&first) = inputs.first() else {
            return Err(self.err(n, "has no input"));
        };
        self.budget
            .limits
            .layers(self.layers.len() + 1)
            .and_then(|()| self.budget.check_tensors(out_shape, &[]))
            .map_err(|m| self.err(n, m))?;
        // The first free name of `name`, `name_2`, `name_3`, ...; the
        // suffix counter keeps many equal names linear, not quadratic.
        let mut unique = name.clone();
        if self.names.contains(&unique) {
            let mut k = self.next_suffix.get(&name).copied().unwrap_or(2);
            loop {
                unique = format!("{name}_{k}");
                k += 1;
                if !self.names.contains(&unique) {
                    break;
                }
            }
            self.next_suffix.insert(name, k);
        }
        self.names.insert(unique.clone());
        let layer = Layer {
            name: unique,
            inputs: inputs.iter().map(|a| a.source).collect(),
            input_shape: first.shape,
            input_quant: first.quant,
            output_shape: out_shape,
            output_quant: out_quant,
            op,
        };
        self.budget
            .charge(LayerCost::of(&layer))
            .map_err(|m| self.err(n, m))?;
        self.layers.push(layer);
        self.layer_names
            .push(n.output.first().cloned().unwrap_or_default());
        Ok(Act {
            source: TensorSource::Layer(self.layers.len() - 1),
            shape: out_shape,
            quant: out_quant,
            rank,
        })
    }

    fn dequantize(&mut self, n: &NodeProto) -> Result<Value<'a>, InputError> {
        let x = self.need(n, 0, "x")?;
        match x {
            Value::Const(q) => {
                let s = self.constant(n, 1, "x_scale")?;
                let z = self.opt_constant(n, 2, "x_zero_point")?;
                if !s.is_float() || s.floats().iter().any(|v| !(v.is_finite() && *v > 0.0)) {
                    return Err(self.err(n, "x_scale must hold positive finite float32 values"));
                }
                let per_axis = s.len() > 1 || s.dims.len() == 1 && s.len() > 1;
                let rank = q.dims.len() as i64;
                let axis = attr_int(n, "axis", 1);
                let axis = if axis < 0 { axis + rank } else { axis };
                if per_axis && !(0..rank).contains(&axis) {
                    return Err(
                        self.err(n, format!("axis {axis} is outside the rank-{rank} tensor"))
                    );
                }
                if per_axis && q.dims.get(axis as usize) != Some(&s.len()) {
                    return Err(self.err(
                        n,
                        format!(
                            "has {} scales but the constant's axis {axis} has {:?} elements",
                            s.len(),
                            q.dims.get(axis as usize)
                        ),
                    ));
                }
                let zero_points = match z {
                    None => vec![0; s.len()],
                    Some(z) if z.len() == s.len() && !z.is_float() => z.ints(),
                    Some(z) => {
                        return Err(self.err(
                            n,
                            format!(
                                "x_zero_point has {} values; valid: as many as x_scale ({})",
                                z.len(),
                                s.len()
                            ),
                        ));
                    }
                };
                Ok(Value::DqConst(DqConst {
                    q,
                    scales: s.floats(),
                    zero_points,
                    axis: per_axis.then_some(axis as usize),
                }))
            }
            Value::Shuffle {
                act,
                groups,
                transposed,
                dequantised: false,
            } if self.quant_at(n, 1, 2, "x")? == act.quant => Ok(Value::Shuffle {
                act,
                groups,
                transposed,
                dequantised: true,
            }),
            Value::Quant(a) => {
                let q = self.quant_at(n, 1, 2, "x")?;
                if q != a.quant {
                    return Err(self.err(
                        n,
                        format!(
                            "dequantises with {q:?}, but the tensor was quantised with {:?}; \
                             accsim needs one quantisation per tensor",
                            a.quant
                        ),
                    ));
                }
                Ok(Value::Dequant(a))
            }
            _ => Err(self.err(
                n,
                "dequantises something that is neither a constant nor a quantised activation",
            )),
        }
    }

    /// Weights of a conv / fc from a DequantizeLinear'd constant.
    fn weights(
        &self,
        n: &NodeProto,
        w: &DqConst,
        channel_axis: usize,
    ) -> Result<WeightQuant, InputError> {
        let Some(dtype) = int_type(w.q.dtype) else {
            return Err(self.err(
                n,
                format!(
                    "weights have type {}; valid: int8 or uint8",
                    tensor::type_name(w.q.dtype as i32)
                ),
            ));
        };
        if w.axis.is_some_and(|a| a != channel_axis) {
            return Err(self.err(
                n,
                format!(
                    "weights are quantised along axis {:?}; valid: per tensor, or per output channel (axis {channel_axis})",
                    w.axis
                ),
            ));
        }
        let zp = w.zero_points.first().copied().unwrap_or(0);
        if w.zero_points.iter().any(|&z| z != zp) {
            return Err(self.err(
                n,
                "weight zero points differ between channels; accsim holds one weight zero point per layer",
            ));
        }
        Ok(WeightQuant::Affine {
            dtype,
            scales: w.scales.clone(),
            zero_point: zp as i32,
        })
    }

    /// An int32 bias from a DequantizeLinear'd constant (its integers are
    /// used as they are, as ONNX Runtime's fused kernels do).
    fn bias(
        &self,
        n: &NodeProto,
        b: Option<Value<'a>>,
        out: usize,
    ) -> Result<Vec<i64>, InputError> {
        match b {
            None => Ok(vec![0; out]),
            Some(Value::DqConst(d)) if d.q.dtype == DataType::Int32 && d.q.len() == out => {
                if d.zero_points.iter().any(|&z| z != 0) {
                    return Err(self.err(n, "the bias zero point must be 0"));
                }
                Ok(d.q.ints())
            }
            Some(Value::Const(t)) if t.dtype == DataType::Int32 && t.len() == out => Ok(t.ints()),
            Some(_) => Err(self.err(
                n,
                format!(
                    "the bias must be {out} int32 values, dequantised with DequantizeLinear (scale x_scale * w_scale), \
                     as the ONNX Runtime quantiser writes it; float biases are not supported"
                ),
            )),
        }
    }

    fn dequant_act(&self, n: &NodeProto, v: Value<'a>, what: &str) -> Result<Act, InputError> {
        match v {
            Value::Dequant(a) => Ok(a),
            _ => Err(self.err(
                n,
                format!("{what} must be a DequantizeLinear of a quantised activation (QDQ form)"),
            )),
        }
    }

    fn conv_geom(
        &self,
        n: &NodeProto,
        input: Shape,
        kernel: [usize; 2],
        groups_check: Option<(usize, usize)>,
    ) -> Result<(ConvGeom, Shape), InputError> {
        if let Some(d) = attr_ints(n, "dilations")
            && d.iter().any(|&v| v != 1)
        {
            return Err(self.err(
                n,
                format!("dilations {d:?} are not supported; valid: [1, 1]"),
            ));
        }
        if let Some(k) = attr_ints(n, "kernel_shape")
            && k.iter().map(|&v| v as usize).collect::<Vec<_>>() != kernel
        {
            return Err(self.err(
                n,
                format!("kernel_shape {k:?} disagrees with the weights ({kernel:?})"),
            ));
        }
        let stride = self.stride(n)?;
        let padding = self.pads(n, input, kernel, stride)?;
        let groups = attr_int(n, "group", 1);
        if groups < 1 {
            return Err(self.err(n, format!("group is {groups}; valid: at least 1")));
        }
        let groups = groups as usize;
        if let Some((in_per_group, out)) = groups_check
            && (in_per_group * groups != input.channels || out % groups != 0)
        {
            return Err(self.err(
                n,
                format!(
                    "weights of {in_per_group} input channels per group x {groups} groups do not match the input's {} channels \
                     (or {out} output channels are not divisible by {groups})",
                    input.channels
                ),
            ));
        }
        let oh = conv_output_len(
            input.height,
            kernel[0],
            stride[0],
            padding.top,
            padding.bottom,
        );
        let ow = conv_output_len(
            input.width,
            kernel[1],
            stride[1],
            padding.left,
            padding.right,
        );
        let (Some(oh), Some(ow)) = (oh, ow) else {
            return Err(self.err(
                n,
                format!(
                    "the {}x{} kernel is larger than the padded input {}x{} (input {input}, pads {padding}); valid: a kernel of at most the padded input",
                    kernel[0],
                    kernel[1],
                    input.height + padding.top + padding.bottom,
                    input.width + padding.left + padding.right
                ),
            ));
        };
        Ok((
            ConvGeom {
                kernel,
                stride,
                padding,
                groups,
            },
            Shape::new(0, oh, ow),
        ))
    }

    fn stride(&self, n: &NodeProto) -> Result<[usize; 2], InputError> {
        match attr_ints(n, "strides").as_deref() {
            None | Some([]) => Ok([1, 1]),
            Some(&[a, b]) if a >= 1 && b >= 1 => Ok([a as usize, b as usize]),
            Some(s) => Err(self.err(n, format!("strides {s:?}; valid: two integers >= 1"))),
        }
    }

    fn pads(
        &self,
        n: &NodeProto,
        input: Shape,
        kernel: [usize; 2],
        stride: [usize; 2],
    ) -> Result<Padding, InputError> {
        let auto = attr_str(n, "auto_pad").unwrap_or_else(|| "NOTSET".to_string());
        let same = |len: usize, k: usize, s: usize, upper: bool| {
            let out = len.div_ceil(s);
            let total = ((out.saturating_sub(1)) * s + k).saturating_sub(len);
            if upper {
                (total / 2, total - total / 2)
            } else {
                (total - total / 2, total / 2)
            }
        };
        match auto.as_str() {
            "NOTSET" => match attr_ints(n, "pads").as_deref() {
                None | Some([]) => Ok(Padding::default()),
                Some(&[t, l, b, r])
                    if [t, l, b, r]
                        .iter()
                        .all(|&p| (0..=MAX_DIMENSION as i64).contains(&p)) =>
                {
                    Ok(Padding {
                        top: t as usize,
                        left: l as usize,
                        bottom: b as usize,
                        right: r as usize,
                    })
                }
                Some(p) => Err(self.err(
                    n,
                    format!("pads {p:?}; valid: [top, left, bottom, right], each >= 0"),
                )),
            },
            "VALID" => Ok(Padding::default()),
            "SAME_UPPER" | "SAME_LOWER" => {
                let upper = auto == "SAME_UPPER";
                let (top, bottom) = same(input.height, kernel[0], stride[0], upper);
                let (left, right) = same(input.width, kernel[1], stride[1], upper);
                Ok(Padding {
                    top,
                    left,
                    bottom,
                    right,
                })
            }
            other => Err(self.err(
                n,
                format!("auto_pad `{other}`; valid: NOTSET, VALID, SAME_UPPER, SAME_LOWER"),
            )),
        }
    }

    fn conv(&mut self, n: &NodeProto) -> Result<Value<'a>, InputError> {
        let x = self.need(n, 0, "X")?;
        let x = self.dequant_act(n, x, "X")?;
        let Value::DqConst(w) = self.need(n, 1, "W")? else {
            return Err(self.err(
                n,
                "W must be a DequantizeLinear of int8/uint8 constant weights",
            ));
        };
        let b = self.get(n, 2)?.cloned();
        let bias_scales = match &b {
            Some(Value::DqConst(d)) => d.scales.clone(),
            _ => Vec::new(),
        };
        let shared = n.input.first().is_some_and(|i| !self.single_use(i));
        match self.weighted_conv(n, x, &w.q, self.weights(n, &w, 0)?, b, Chain::Qdq)? {
            Value::Weighted(mut p) => {
                p.shared_input = Some(shared);
                p.bias_scales = bias_scales;
                Ok(Value::Weighted(p))
            }
            v => Ok(v),
        }
    }

    /// Builds a pending conv from integer weights `[out, in/g, kh, kw]`.
    fn weighted_conv(
        &self,
        n: &NodeProto,
        x: Act,
        w: &Tensor,
        weight_quant: WeightQuant,
        b: Option<Value<'a>>,
        chain: Chain,
    ) -> Result<Value<'a>, InputError> {
        if x.rank != 4 {
            return Err(self.err(n, "the input must be a 4-D [1, C, H, W] tensor"));
        }
        let [out, icg, kh, kw] = w.dims[..] else {
            return Err(self.err(
                n,
                format!(
                    "weights have shape {:?}; valid: [out, in/groups, kh, kw]",
                    w.dims
                ),
            ));
        };
        let (geom, s) = self.conv_geom(n, x.shape, [kh, kw], Some((icg, out)))?;
        if let WeightQuant::Affine { scales, .. } = &weight_quant
            && scales.len() != 1
            && scales.len() != out
        {
            return Err(self.err(
                n,
                format!("{} weight scales for {out} output channels", scales.len()),
            ));
        }
        let weights = Array4::from_shape_vec((out, icg, kh, kw), w.to_i16())
            .map_err(|e| self.err(n, format!("weights: {e}")))?;
        let bias = self.bias(n, b, out)?;
        Ok(Value::Weighted(Box::new(Weighted {
            node: node_name(n),
            input: x,
            geom: Some(geom),
            weights,
            weight_quant,
            bias,
            chain,
            lo: None,
            hi: None,
            out_shape: Shape::new(out, s.height, s.width),
            rank: 4,
            shared_input: None,
            bias_scales: Vec::new(),
        })))
    }

    /// Builds a pending FC layer from `[out, in]` integer weights.
    fn weighted_fc(
        &self,
        n: &NodeProto,
        x: Act,
        w: Array2<i16>,
        weight_quant: WeightQuant,
        bias: Vec<i64>,
        chain: Chain,
    ) -> Result<Value<'a>, InputError> {
        let (out, k) = w.dim();
        if x.rank != 2 || x.shape.len() != k {
            return Err(self.err(
                n,
                format!(
                    "the input must be a [1, {k}] tensor; it is {} ({} values)",
                    x.shape,
                    x.shape.len()
                ),
            ));
        }
        if let WeightQuant::Affine { scales, .. } = &weight_quant
            && scales.len() != 1
            && scales.len() != out
        {
            return Err(self.err(
                n,
                format!("{} weight scales for {out} outputs", scales.len()),
            ));
        }
        let weights = w
            .into_shape_with_order((out, k, 1, 1))
            .map_err(|e| self.err(n, format!("weights: {e}")))?;
        Ok(Value::Weighted(Box::new(Weighted {
            node: node_name(n),
            input: x,
            geom: None,
            weights,
            weight_quant,
            bias,
            chain,
            lo: None,
            hi: None,
            out_shape: Shape::new(out, 1, 1),
            rank: 2,
            shared_input: None,
            bias_scales: Vec::new(),
        })))
    }

    /// `[K, N]` (or `[N, K]` with `transposed`) integers as `[N, K]`.
    fn fc_matrix(
        &self,
        n: &NodeProto,
        t: &Tensor,
        transposed: bool,
    ) -> Result<Array2<i16>, InputError> {
        let [r, c] = t.dims[..] else {
            return Err(self.err(
                n,
                format!("the weight matrix has shape {:?}; valid: 2-D", t.dims),
            ));
        };
        let values = t.to_i16();
        let (shape, values) = if transposed {
            ((r, c), values)
        } else {
            ((c, r), transpose(&values, r, c))
        };
        Array2::from_shape_vec(shape, values).map_err(|e| self.err(n, format!("weights: {e}")))
    }

    fn gemm(&mut self, n: &NodeProto, op: &str) -> Result<Value<'a>, InputError> {
        let a = self.need(n, 0, "A")?;
        let a = self.dequant_act(n, a, "A")?;
        let Value::DqConst(b) = self.need(n, 1, "B")? else {
            return Err(self.err(
                n,
                "B must be a DequantizeLinear of int8/uint8 constant weights",
            ));
        };
        let trans_b = op == "Gemm" && attr_int(n, "transB", 0) == 1;
        if op == "Gemm" {
            let alpha = attr(n, "alpha").and_then(|a| a.f).unwrap_or(1.0);
            let beta = attr(n, "beta").and_then(|a| a.f).unwrap_or(1.0);
            if attr_int(n, "transA", 0) != 0 || alpha != 1.0 || beta != 1.0 {
                return Err(self.err(n, "only transA = 0, alpha = 1, beta = 1 are supported"));
            }
        }
        // The output-channel axis of B: 1 for [K, N], 0 for [N, K].
        let wq = self.weights(n, &b, if trans_b { 0 } else { 1 })?;
        let w = self.fc_matrix(n, &b.q, trans_b)?;
        let bias = self.bias(n, self.get(n, 2)?.cloned(), w.dim().0)?;
        self.weighted_fc(n, a, w, wq, bias, Chain::Qdq)
    }

    fn qlinear_conv(&mut self, n: &NodeProto) -> Result<Value<'a>, InputError> {
        let Value::Quant(x) = self.need(n, 0, "x")? else {
            return Err(self.err(n, "x must be a quantised (uint8/int8) activation"));
        };
        let xq = self.quant_at(n, 1, 2, "x")?;
        self.check_input_quant(n, &x, &xq)?;
        let w = self.constant(n, 3, "w")?;
        let wq = self.qoperator_weights(n, &w, 4, 5)?;
        let yq = self.quant_at(n, 6, 7, "y")?;
        let b = self.opt_constant(n, 8, "B")?.map(Value::Const);
        let Value::Weighted(p) = self.weighted_conv(n, x, &w, wq, b, Chain::Qdq)? else {
            return Err(self.err(n, "internal: not a weighted layer"));
        };
        self.finish_weighted(n, *p, yq)
    }

    fn qlinear_matmul(&mut self, n: &NodeProto) -> Result<Value<'a>, InputError> {
        let Value::Quant(a) = self.need(n, 0, "a")? else {
            return Err(self.err(n, "a must be a quantised (uint8/int8) activation"));
        };
        let aq = self.quant_at(n, 1, 2, "a")?;
        self.check_input_quant(n, &a, &aq)?;
        let b = self.constant(n, 3, "b")?;
        let wq = self.qoperator_weights(n, &b, 4, 5)?;
        let yq = self.quant_at(n, 6, 7, "y")?;
        let w = self.fc_matrix(n, &b, false)?;
        let out = w.dim().0;
        let Value::Weighted(p) = self.weighted_fc(n, a, w, wq, vec![0; out], Chain::Qdq)? else {
            return Err(self.err(n, "internal: not a weighted layer"));
        };
        self.finish_weighted(n, *p, yq)
    }

    /// Weight quantisation of a QOperator node: scale (one or per output
    /// channel) at `s`, zero point at `z`.
    fn qoperator_weights(
        &self,
        n: &NodeProto,
        w: &Tensor,
        s: usize,
        z: usize,
    ) -> Result<WeightQuant, InputError> {
        let Some(dtype) = int_type(w.dtype) else {
            return Err(self.err(
                n,
                format!(
                    "weights have type {}; valid: int8 or uint8",
                    tensor::type_name(w.dtype as i32)
                ),
            ));
        };
        let scales = self.constant(n, s, "weight scale")?;
        if !scales.is_float() || scales.floats().iter().any(|v| !(v.is_finite() && *v > 0.0)) {
            return Err(self.err(n, "weight scales must be positive finite float32 values"));
        }
        let zp = match self.opt_constant(n, z, "weight zero point")? {
            None => 0,
            Some(t) => {
                let first = t.ints().first().copied().unwrap_or(0);
                if t.ints().iter().any(|&v| v != first) {
                    return Err(self.err(
                        n,
                        "weight zero points differ between channels; accsim holds one per layer",
                    ));
                }
                first as i32
            }
        };
        Ok(WeightQuant::Affine {
            dtype,
            scales: scales.floats(),
            zero_point: zp,
        })
    }

    fn check_input_quant(&self, n: &NodeProto, x: &Act, q: &TensorQuant) -> Result<(), InputError> {
        if x.quant != *q {
            return Err(self.err(
                n,
                format!(
                    "reads its input with quantisation {q:?}, but the tensor holds {:?}; accsim needs one quantisation per tensor",
                    x.quant
                ),
            ));
        }
        Ok(())
    }

    fn integer(&mut self, n: &NodeProto, op: &str) -> Result<Value<'a>, InputError> {
        let Value::Quant(x) = self.need(n, 0, "x")? else {
            return Err(self.err(
                n,
                "the first input must be a quantised (uint8/int8) activation",
            ));
        };
        let (xz, _) = self.zero_point(n, 2, "x zero point")?;
        if xz != x.quant.zero() {
            return Err(self.err(
                n,
                format!(
                    "x zero point {xz} differs from the tensor's zero point {}",
                    x.quant.zero()
                ),
            ));
        }
        let chain = Chain::Integer {
            cast: false,
            scales: None,
            offsets: None,
        };
        self.integer_weighted(n, op, x, chain)
    }

    /// The weights of a `ConvInteger` / `MatMulInteger` reading `x`: a
    /// pending layer requantised by `chain`.
    fn integer_weighted(
        &mut self,
        n: &NodeProto,
        op: &str,
        x: Act,
        chain: Chain,
    ) -> Result<Value<'a>, InputError> {
        let w = self.constant(n, 1, "w")?;
        let Some(dtype) = int_type(w.dtype) else {
            return Err(self.err(n, "weights must be int8 or uint8"));
        };
        let wz = match self.opt_constant(n, 3, "w zero point")? {
            None => 0,
            Some(t) => t
                .scalar_i64()
                .ok_or_else(|| self.err(n, "the weight zero point must be one value"))?
                as i32,
        };
        let wq = WeightQuant::Affine {
            dtype,
            scales: vec![1.0],
            zero_point: wz,
        };
        if op == "ConvInteger" {
            self.weighted_conv(n, x, &w, wq, None, chain)
        } else {
            let m = self.fc_matrix(n, &w, false)?;
            let out = m.dim().0;
            self.weighted_fc(n, x, m, wq, vec![0; out], chain)
        }
    }

    fn cast(&mut self, n: &NodeProto) -> Result<Value<'a>, InputError> {
        let to = attr_int(n, "to", 0);
        match self.need(n, 0, "input")? {
            Value::Weighted(mut w) if to == DataType::Float as i64 => match &mut w.chain {
                Chain::Integer {
                    cast, scales: None, ..
                } if !*cast => {
                    *cast = true;
                    Ok(Value::Weighted(w))
                }
                _ => Err(self.err(n, "Cast must directly follow ConvInteger / MatMulInteger")),
            },
            _ => Err(self.err(
                n,
                "only Cast(to = FLOAT) of a ConvInteger / MatMulInteger result is supported",
            )),
        }
    }

    /// Per-channel float values of a constant broadcast against the output.
    fn channel_values(
        &self,
        n: &NodeProto,
        t: &Tensor,
        w: &Weighted,
    ) -> Result<Vec<f32>, InputError> {
        let c = w.out_shape.channels;
        if t.len() == 1 {
            return Ok(t.as_f32());
        }
        let ok = if w.rank == 4 {
            matches!(t.dims[..], [1, ch, 1, 1] | [ch, 1, 1] if ch == c)
        } else {
            matches!(t.dims[..], [1, ch] | [ch] if ch == c)
        };
        if !ok || t.len() != c {
            return Err(self.err(
                n,
                format!(
                    "the constant has shape {:?}; valid: one value or one per output channel",
                    t.dims
                ),
            ));
        }
        Ok(t.as_f32())
    }

    fn mul(&mut self, n: &NodeProto) -> Result<Value<'a>, InputError> {
        let (v, c) = match (self.need(n, 0, "A")?, self.need(n, 1, "B")?) {
            (Value::Weighted(w), Value::Const(t)) | (Value::Const(t), Value::Weighted(w)) => (w, t),
            _ => {
                return Err(self.err(
                    n,
                    "Mul is supported only as the scale of a Cast ConvInteger / MatMulInteger result by a constant",
                ));
            }
        };
        let vals = self.channel_values(n, &c, &v)?;
        let mut w = v;
        match &mut w.chain {
            Chain::Integer {
                cast: true,
                scales: scales @ None,
                offsets: None,
            } if w.lo.is_none() && w.hi.is_none() => {
                *scales = Some(vals);
                Ok(Value::Weighted(w))
            }
            _ => Err(self.err(
                n,
                "Mul must directly follow the Cast after ConvInteger / MatMulInteger",
            )),
        }
    }

    fn add(&mut self, n: &NodeProto) -> Result<Value<'a>, InputError> {
        let a = self.need(n, 0, "A")?;
        let b = self.need(n, 1, "B")?;
        match (a, b) {
            (Value::Dequant(a), Value::Dequant(b)) => {
                if a.shape != b.shape || a.rank != b.rank {
                    return Err(self.err(
                        n,
                        format!("adds tensors of shapes {} and {}; accsim needs equal shapes (no broadcasting)", a.shape, b.shape),
                    ));
                }
                Ok(Value::Add {
                    node: node_name(n),
                    a,
                    b,
                    sum: false,
                    relu: false,
                })
            }
            (Value::Weighted(mut w), other) | (other, Value::Weighted(mut w)) => {
                if w.lo.is_some() || w.hi.is_some() {
                    return Err(self.err(n, "an Add after Relu/Clip cannot be folded"));
                }
                let offsets = match &other {
                    Value::Const(t) => Some(self.channel_values(n, t, &w)?),
                    _ => None,
                };
                let unbiased = w.bias.iter().all(|&b| b == 0);
                let channels = w.out_shape.channels;
                match (&mut w.chain, other) {
                    (Chain::Qdq, Value::DqConst(d)) if unbiased => {
                        w.bias = self.bias(n, Some(Value::DqConst(d)), channels)?;
                        Ok(Value::Weighted(w))
                    }
                    (
                        Chain::Integer {
                            cast: true,
                            scales: Some(_),
                            offsets: slot @ None,
                        },
                        Value::Const(_),
                    ) => {
                        *slot = offsets;
                        Ok(Value::Weighted(w))
                    }
                    _ => Err(self.err(
                        n,
                        "Add after Conv/Gemm/MatMul must add a DequantizeLinear'd int32 bias (QDQ) or, after \
                         ConvInteger/MatMulInteger -> Cast -> Mul, a float constant",
                    )),
                }
            }
            _ => Err(self.err(
                n,
                "Add is supported between two dequantised activations (a residual add, QDQ form) or as a bias",
            )),
        }
    }

    /// `Sum` of two dequantised activations: an Add that ONNX Runtime runs
    /// in float32 (`Q(DQ(a) + DQ(b))`) whatever the type; one input is
    /// that input.
    fn sum(&mut self, n: &NodeProto) -> Result<Value<'a>, InputError> {
        let count = n.input.iter().filter(|i| !i.is_empty()).count();
        if count == 1 {
            return self.need(n, 0, "data_0");
        }
        if let Some(v) = self.chain_sum(n)? {
            return Ok(v);
        }
        if count >= 3 {
            return self.sum_n(n);
        }
        let both = (self.get(n, 0)?, self.get(n, 1)?);
        if !matches!(both, (Some(Value::Dequant(_)), Some(Value::Dequant(_)))) {
            return Err(self.err(
                n,
                "Sum is supported between two dequantised activations (QDQ form)",
            ));
        }
        match self.add(n)? {
            Value::Add { node, a, b, .. } => Ok(Value::Add {
                node,
                a,
                b,
                sum: true,
                relu: false,
            }),
            _ => Err(self.err(
                n,
                "Sum is supported between two dequantised activations (QDQ form)",
            )),
        }
    }

    /// `op` reads the float32 result of the Add or Sum `node` with no
    /// QuantizeLinear between: ONNX Runtime runs that chain in float32
    /// (ResNet-50's last block in QDQ form, every residual in QOperator form).
    fn float_chain(&self, n: &NodeProto, op: &str, node: &str, sum: bool) -> InputError {
        let what = if sum { "Sum" } else { "Add" };
        self.err(
            n,
            format!(
                "{op} reads the float32 result of the {what} `{node}` (through at most a Relu) \
                 with no QuantizeLinear between; ONNX Runtime runs such a chain unfused, in \
                 float32, which accsim does not model; valid: a QuantizeLinear (and \
                 DequantizeLinear) right after the {what} or its Relu"
            ),
        )
    }

    fn clamp(&mut self, n: &NodeProto, op: &str) -> Result<Value<'a>, InputError> {
        let x = self.need(n, 0, "input")?;
        if op == "Relu"
            && let Some(v) = self.chain_relu(&x)
        {
            return Ok(v);
        }
        if let Value::Sum {
            node,
            inputs,
            relu: false,
        } = x
        {
            if op == "Relu" {
                return Ok(Value::Sum {
                    node,
                    inputs,
                    relu: true,
                });
            }
            return Err(self.err(n, "Clip after a Sum is not supported; valid: Relu"));
        }
        if let Value::Add { relu: false, .. } = &x
            && op == "Relu"
        {
            let Value::Add {
                node, a, b, sum, ..
            } = x
            else {
                return Err(self.err(n, "internal: not an Add"));
            };
            return Ok(Value::Add {
                node,
                a,
                b,
                sum,
                relu: true,
            });
        }
        let (lo, hi) = if op == "Relu" {
            (Some(0.0f32), None)
        } else {
            let get = |i: usize, attr_name: &str| -> Result<Option<f32>, InputError> {
                if let Some(t) = self.opt_constant(n, i, attr_name)? {
                    return t
                        .scalar_f32()
                        .map(Some)
                        .ok_or_else(|| self.err(n, format!("{attr_name} must be one value")));
                }
                Ok(attr(n, attr_name).and_then(|a| a.f))
            };
            (get(1, "min")?, get(2, "max")?)
        };
        match x {
            Value::Weighted(mut w) => {
                w.lo = match (w.lo, lo) {
                    (Some(a), Some(b)) => Some(a.max(b)),
                    (a, b) => a.or(b),
                };
                w.hi = match (w.hi, hi) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
                Ok(Value::Weighted(w))
            }
            Value::Quant(a) => {
                // On integers: narrow the clamp of the conv / fc that made them.
                let input_name = n.input.first().cloned().unwrap_or_default();
                let TensorSource::Layer(i) = a.source else {
                    return Err(self.err(n, format!("{op} on the network input is not supported")));
                };
                if !self.single_use(&input_name) || self.layer_names.get(i) != Some(&input_name) {
                    return Err(self.err(n, format!("{op} on integers must be the only reader of a QLinearConv / QLinearMatMul output")));
                }
                let layer = &mut self.layers[i];
                let zero = a.quant.zero();
                let stage = match &mut layer.op {
                    Op::Conv2d(c) => &mut c.epilogue,
                    Op::FullyConnected(f) => &mut f.epilogue,
                    _ => {
                        return Err(self.err(n, format!("{op} on integers must follow QLinearConv / QLinearMatMul")));
                    }
                };
                let (qmin, qmax) = a.quant.range();
                let out = &mut stage.output_stage;
                if let Some(l) = lo {
                    out.clamp_min = out.clamp_min.max(l.ceil() as i32).clamp(qmin, qmax);
                }
                if let Some(h) = hi {
                    out.clamp_max = out.clamp_max.min(h.floor() as i32).clamp(qmin, qmax);
                }
                // ONNX Clip is Min(max, Max(input, min)): with min > max
                // every output is max.
                out.clamp_min = out.clamp_min.min(out.clamp_max);
                if op == "Relu" && zero == 0 {
                    stage.activation = Activation::Relu;
                }
                Ok(Value::Quant(a))
            }
            _ => Err(self.err(
                n,
                format!("{op} is supported between Conv/Gemm/MatMul and QuantizeLinear, or on a QLinearConv / QLinearMatMul output"),
            )),
        }
    }

    fn pool(&mut self, n: &NodeProto, op: &str) -> Result<Value<'a>, InputError> {
        let x = self.need(n, 0, "X")?;
        let (act, quantised) = match x {
            Value::Quant(a) if op == "MaxPool" => (a, true),
            Value::Dequant(a) => (a, false),
            v @ (Value::Add { .. } | Value::Sum { .. } | Value::Chain(_) | Value::Float(_))
                if op != "MaxPool" =>
            {
                return self.chain_pool(n, op, v);
            }
            Value::Add { node, sum, .. } => return Err(self.float_chain(n, op, &node, sum)),
            v @ Value::Lrn { .. } if op == "MaxPool" => return self.lrn_pool(n, v),
            _ => {
                return Err(self.err(
                    n,
                    format!(
                        "{op} needs a dequantised activation (QDQ form){}",
                        if op == "MaxPool" { " or integers" } else { "" }
                    ),
                ));
            }
        };
        let (pool, include_pad, out_shape) = self.pool_window(n, op, &act)?;
        if quantised {
            return Ok(Value::Quant(self.push(
                n,
                node_name(n),
                vec![act],
                Op::MaxPool(pool),
                out_shape,
                act.quant,
                4,
            )?));
        }
        let kind = if op == "MaxPool" {
            PoolKind::Max(pool)
        } else {
            PoolKind::Avg(QLinearAvgPool {
                pool,
                count_include_pad: include_pad,
                unfused: false,
                uint8_kernel: false,
            })
        };
        let shared_input =
            (op == "AveragePool").then(|| n.input.first().is_some_and(|i| !self.single_use(i)));
        Ok(Value::Pool {
            node: node_name(n),
            input: act,
            kind,
            out_shape,
            shared_input,
        })
    }

    /// The window of a pooling node (`op`: MaxPool, AveragePool or
    /// GlobalAveragePool, or their QLinear forms) on `act`: the pool, its
    /// `count_include_pad`, and the output shape.
    fn pool_window(
        &self,
        n: &NodeProto,
        op: &str,
        act: &Act,
    ) -> Result<(Pool, bool, Shape), InputError> {
        if act.rank != 4 {
            return Err(self.err(n, "pooling needs a 4-D [1, C, H, W] input"));
        }
        let s = act.shape;
        let (kernel, stride, padding, ceil, include_pad) = if op == "GlobalAveragePool" {
            (
                [s.height, s.width],
                [1, 1],
                Padding::default(),
                false,
                false,
            )
        } else {
            let k = match attr_ints(n, "kernel_shape").as_deref() {
                Some(&[a, b]) if a >= 1 && b >= 1 => [a as usize, b as usize],
                other => {
                    return Err(self.err(
                        n,
                        format!("kernel_shape {other:?}; valid: two integers >= 1"),
                    ));
                }
            };
            if let Some(d) = attr_ints(n, "dilations")
                && d.iter().any(|&v| v != 1)
            {
                return Err(self.err(
                    n,
                    format!("dilations {d:?} are not supported; valid: [1, 1]"),
                ));
            }
            let stride = self.stride(n)?;
            let padding = self.pads(n, s, k, stride)?;
            (
                k,
                stride,
                padding,
                attr_int(n, "ceil_mode", 0) == 1,
                attr_int(n, "count_include_pad", 0) == 1,
            )
        };
        let oh = pool_output_len(
            s.height,
            kernel[0],
            stride[0],
            padding.top,
            padding.bottom,
            ceil,
        );
        let ow = pool_output_len(
            s.width,
            kernel[1],
            stride[1],
            padding.left,
            padding.right,
            ceil,
        );
        let (Some(oh), Some(ow)) = (oh, ow) else {
            return Err(self.err(
                n,
                format!(
                    "the {}x{} window is larger than the padded input {}x{} (input {s}, pads {padding}); valid: a window of at most the padded input",
                    kernel[0],
                    kernel[1],
                    s.height + padding.top + padding.bottom,
                    s.width + padding.left + padding.right
                ),
            ));
        };
        if padding.top.max(padding.bottom) >= kernel[0]
            || padding.left.max(padding.right) >= kernel[1]
        {
            return Err(self.err(
                n,
                format!(
                    "pads ({padding}) must each be smaller than the {}x{} window",
                    kernel[0], kernel[1]
                ),
            ));
        }
        let pool = Pool {
            kernel,
            stride,
            padding,
            ceil_mode: ceil,
            rounding: Rounding::HalfEven,
        };
        Ok((pool, include_pad, Shape::new(s.channels, oh, ow)))
    }

    /// `DequantizeLinear -> Softmax`: a Softmax over the channels (the
    /// classifier's `[1, N]` scores, or each position of a `[1, C, H, W]`
    /// tensor), waiting for its QuantizeLinear.
    fn softmax(&mut self, n: &NodeProto) -> Result<Value<'a>, InputError> {
        let x = self.need(n, 0, "input")?;
        let Value::Dequant(a) = x else {
            return Err(self.err(
                n,
                "Softmax needs a dequantised activation: valid is DequantizeLinear -> Softmax -> \
                 QuantizeLinear (QDQ form), which ONNX Runtime runs as QLinearSoftmax",
            ));
        };
        self.check_softmax_axis(n, &a, self.opset)?;
        let out = n.output.first().map(String::as_str).unwrap_or("");
        if !self.single_use(out) {
            return Err(self.err(
                n,
                "the Softmax output has more than one reader; valid: one QuantizeLinear reads it \
                 (ONNX Runtime fuses DequantizeLinear -> Softmax -> QuantizeLinear only then)",
            ));
        }
        Ok(Value::Softmax {
            node: node_name(n),
            label: node_label(n),
            input: a,
            paired_input: self.reads_quantize_pair(n),
        })
    }

    /// Refuses a Softmax (or QLinearSoftmax) that does not reduce over the
    /// channels of `a`; `opset` decides the default axis and whether the
    /// tensor is flattened from the axis (before 13).
    fn check_softmax_axis(&self, n: &NodeProto, a: &Act, opset: i64) -> Result<(), InputError> {
        let rank = a.rank as i64;
        let legacy = opset < 13;
        let given = attr_int(n, "axis", if legacy { 1 } else { -1 });
        let axis = if given < 0 { given + rank } else { given };
        let s = a.shape;
        let plane = s.height * s.width;
        // What the Softmax reduces: from opset 13 the one axis, before it
        // every axis from `axis` on (the tensor flattened there).
        let over_channels = match (rank, axis) {
            (2, 1) => true,
            (2, 0) => legacy,
            (4, 1) => !legacy || plane == 1,
            (4, 0) => legacy && plane == 1,
            _ => false,
        };
        if !over_channels {
            let dims = if rank == 2 {
                format!("[1, {}]", s.channels)
            } else {
                format!("[1, {}, {}, {}]", s.channels, s.height, s.width)
            };
            return Err(self.err(
                n,
                format!(
                    "axis {given} of the {dims} input (opset {}) does not reduce over the channels; \
                     accsim computes Softmax over the channels: valid: axis 1 or -1 of a [1, N] tensor, \
                     axis 1 of a [1, C, H, W] tensor (before opset 13 only when H = W = 1)",
                    opset
                ),
            ));
        }
        Ok(())
    }

    /// Whether the Softmax's input DequantizeLinear reads a QuantizeLinear's
    /// output (a Q -> DQ pair, which ONNX Runtime's int8-to-uint8 rewrite
    /// converts).
    fn reads_quantize_pair(&self, n: &NodeProto) -> bool {
        let Some((op, dq_input)) = n.input.first().and_then(|x| self.producers.get(x)) else {
            return false;
        };
        op == "DequantizeLinear"
            && self
                .producers
                .get(dq_input)
                .is_some_and(|(p, _)| p == "QuantizeLinear")
    }

    /// Refuses a QDQ Softmax that ONNX Runtime (1.32, x86-64 without
    /// AVX-512 VNNI) runs unfused, in float32: input and output types that
    /// differ, and an int8 Softmax with a QuantizeLinear -> DequantizeLinear
    /// pair on one side only (ONNX Runtime rewrites int8 pairs to uint8,
    /// and the two sides' types then differ). docs/onnx.md.
    fn check_softmax_fused(
        &self,
        n: &NodeProto,
        softmax: &str,
        (input, paired_input): (&Act, bool),
        q: &TensorQuant,
    ) -> Result<(), InputError> {
        let err = |m: String| InputError::new(self.path, m).context(softmax.to_string());
        let (from, to) = (input.quant.dtype(), q.dtype());
        if from != to {
            return Err(err(format!(
                "has {} input and its QuantizeLinear writes {}; valid: a QuantizeLinear to {}, the \
                     input's type (ONNX Runtime fuses DequantizeLinear -> Softmax -> QuantizeLinear into \
                     QLinearSoftmax only then)",
                from.numpy_name(),
                to.numpy_name(),
                from.numpy_name()
            )));
        }
        let out = n.output.first().map(String::as_str).unwrap_or("");
        let paired_output = self.dequantized.contains(out);
        if from == IntType::Int8 && paired_input != paired_output {
            let side = |paired: bool| {
                if paired {
                    "a QuantizeLinear -> DequantizeLinear pair"
                } else {
                    "no pair"
                }
            };
            return Err(err(format!(
                "an int8 Softmax with {} before it and {} after it: ONNX Runtime (x86-64 without \
                     AVX-512 VNNI) rewrites int8 Q -> DQ pairs to uint8, so the two sides' types differ \
                     and it runs this Softmax unfused, in float32, which accsim does not model; valid: \
                     pairs on both sides (as quantize_static writes: a DequantizeLinear after the \
                     Softmax's QuantizeLinear) or uint8 activations",
                side(paired_input),
                side(paired_output)
            )));
        }
        Ok(())
    }

    fn flatten(&mut self, n: &NodeProto, op: &str) -> Result<Value<'a>, InputError> {
        let x = self.need(n, 0, "data")?;
        if let Value::Chain(_) = x {
            return self.chain_reshape(n, x);
        }
        let (a, dequantised) = match x {
            Value::Quant(a) => (a, false),
            Value::Dequant(a) => (a, true),
            _ => {
                return Err(self.err(
                    n,
                    format!("{op} needs a quantised or dequantised activation"),
                ));
            }
        };
        let total = a.shape.len() as i64;
        // The ONNX rank of the result: 2 for `[1, N]`; 4 for a Reshape of
        // a `[N, 1, 1]` tensor to `[1, N, 1, 1]` (SqueezeNet's scores after
        // its Softmax), which moves nothing.
        let target = if op == "Flatten" {
            (attr_int(n, "axis", 1) == 1).then_some(2)
        } else {
            let onnx_dims: Vec<i64> = if a.rank == 4 {
                vec![
                    1,
                    a.shape.channels as i64,
                    a.shape.height as i64,
                    a.shape.width as i64,
                ]
            } else {
                vec![1, total]
            };
            let dims = self.reshape_dims(n, &onnx_dims)?;
            let plane = a.shape.height == 1 && a.shape.width == 1;
            match dims.as_slice() {
                [1, n] if *n == total => Some(2),
                [1, n, 1, 1] if *n == total && plane => Some(4),
                _ => None,
            }
        };
        let Some(target) = target else {
            return Err(self.err(
                n,
                format!(
                    "only flattening to [1, {total}] (Flatten axis 1, or Reshape to [1, -1]) is supported, \
                     and a Reshape of [1, {total}] to [1, {total}, 1, 1]"
                ),
            ));
        };
        let out = if a.rank == 2 || target == 4 {
            a
        } else {
            self.push(
                n,
                node_name(n),
                vec![a],
                Op::Flatten,
                Shape::new(a.shape.len(), 1, 1),
                a.quant,
                2,
            )?
        };
        let out = Act {
            rank: target,
            ..out
        };
        Ok(if dequantised {
            Value::Dequant(out)
        } else {
            Value::Quant(out)
        })
    }

    /// Ends a weighted layer with its output quantisation `q`.
    /// The output stage's rule of a weighted layer ending in the
    /// QuantizeLinear `n` of quantisation `q`.
    fn weighted_requant(
        &self,
        n: &NodeProto,
        w: &Weighted,
        q: &TensorQuant,
    ) -> Result<Requant, InputError> {
        Ok(match (&w.chain, &w.input.quant, &w.weight_quant, q) {
            (
                Chain::Qdq,
                TensorQuant::Affine { scale: sx, .. },
                WeightQuant::Affine { scales, .. },
                TensorQuant::Affine { scale: sy, .. },
            ) if w.input.quant.dtype() == IntType::Int8
                && !w
                    .geom
                    .is_some_and(|g| g.groups > 1 && w.weights.dim().1 == 1)
                && self.unfused_int8_group(n, w.shared_input, q) =>
            {
                // ONNX Runtime runs this group as a float Conv (docs/onnx.md,
                // item 6). Not a depthwise one: MLAS's depthwise kernel sums
                // in an order not found (it keeps the exact integer sums).
                Requant::FloatSum {
                    input_scale: *sx,
                    weight_scales: scales.clone(),
                    bias_scales: if w.bias_scales.is_empty() {
                        scales.iter().map(|sw| *sx * *sw).collect()
                    } else {
                        w.bias_scales.clone()
                    },
                    output_scale: *sy,
                }
            }
            (
                Chain::Qdq,
                TensorQuant::Affine { scale: sx, .. },
                WeightQuant::Affine { scales, .. },
                TensorQuant::Affine { scale: sy, .. },
            ) => Requant::Float {
                // ONNX Runtime: x_scale * w_scale / y_scale in float32, in that order.
                scales: scales.iter().map(|sw| *sx * *sw / *sy).collect(),
            },
            (
                Chain::Integer {
                    cast: true,
                    scales: Some(scales),
                    offsets,
                },
                _,
                _,
                TensorQuant::Affine { scale: sy, .. },
            ) => Requant::FloatChain {
                scales: scales.clone(),
                offsets: offsets.clone().unwrap_or_else(|| vec![0.0]),
                output_scale: *sy,
            },
            (Chain::Integer { .. }, ..) => {
                return Err(self.err(
                    n,
                    "ConvInteger / MatMulInteger must be followed by Cast(to = FLOAT) and Mul(scale) before QuantizeLinear",
                ));
            }
            _ => return Err(self.err(n, "mixed quantisation modes")),
        })
    }

    fn finish_weighted(
        &mut self,
        n: &NodeProto,
        w: Weighted,
        q: TensorQuant,
    ) -> Result<Value<'a>, InputError> {
        let (qmin, qmax) = q.range();
        let mut clamp_min = qmin;
        let mut clamp_max = qmax;
        if let Some(lo) = w.lo {
            clamp_min = clamp_min.max(q.quantize(f64::from(lo)));
        }
        if let Some(hi) = w.hi {
            clamp_max = clamp_max.min(q.quantize(f64::from(hi)));
        }
        let activation = match (w.lo, w.hi) {
            (Some(0.0), None) => Activation::Relu,
            (Some(l), Some(h)) if l == 0.0 && h == 6.0 => Activation::Relu6,
            _ => Activation::None,
        };
        let requant = self.weighted_requant(n, &w, &q)?;
        let epilogue = Epilogue {
            bias: w.bias,
            activation,
            output_stage: OutputStage {
                accumulator_bits: 32,
                requant,
                zero_point: q.zero(),
                // ONNX Clip is Min(max, Max(input, min)): with min > max
                // every output is max.
                clamp_min: clamp_min.min(clamp_max),
                clamp_max,
            },
        };
        let op = weighted_op(w.geom, w.weights, w.weight_quant, epilogue)
            .map_err(|e| self.err(n, format!("weights: {e}")))?;
        Ok(Value::Quant(self.push(
            n,
            w.node,
            vec![w.input],
            op,
            w.out_shape,
            q,
            w.rank,
        )?))
    }

    fn finish(self, model: &ModelProto) -> Result<Network> {
        let path = self.path;
        let graph = model.graph.as_ref();
        let outputs: Vec<String> = graph
            .map(|g| {
                g.output
                    .iter()
                    .map(|o| o.name.clone().unwrap_or_default())
                    .collect()
            })
            .unwrap_or_default();
        let [out] = outputs.as_slice() else {
            return Err(InputError::new(
                path,
                format!(
                    "the graph has {} outputs; accsim imports models with exactly one output",
                    outputs.len()
                ),
            )
            .into());
        };
        let act = match self.values.get(out) {
            Some(Value::Quant(a)) | Some(Value::Dequant(a)) | Some(Value::Float(a)) => *a,
            _ => {
                return Err(InputError::new(
                    path,
                    format!("the graph output `{out}` is not a quantised activation (or its DequantizeLinear)"),
                )
                .context(format!("graph output `{out}`"))
                .into());
            }
        };
        if self.layers.is_empty() || act.source != TensorSource::Layer(self.layers.len() - 1) {
            return Err(InputError::new(
                path,
                format!("the graph output `{out}` must be the result of the last operator (accsim's network output is its last layer)"),
            )
            .into());
        }
        let name = graph
            .and_then(|g| g.name.clone())
            .filter(|s| !s.is_empty())
            .or_else(|| path.file_stem().map(|s| s.to_string_lossy().into_owned()))
            .unwrap_or_else(|| "onnx".to_string());
        let producer = model.producer_name.clone().unwrap_or_default();
        let _ = &self.input_name;
        Ok(Network {
            name,
            description: format!(
                "imported from ONNX{} ({} layers)",
                if producer.is_empty() {
                    String::new()
                } else {
                    format!(" (producer: {producer})")
                },
                self.layers.len()
            ),
            variant: None,
            numerics: Numerics::Affine {
                requant: RequantRule::Float,
            },
            input_shape: self.input_shape,
            input_quant: self.input_quant,
            layers: self.layers,
        })
    }
}

/// The graph input's dimensions. A symbolic batch (the first of four or
/// two) is one inference; any other symbolic or unknown dimension is
/// refused, naming it: accsim simulates one fixed shape.
fn input_dims(shape: Option<&proto::TensorShapeProto>, input: &str) -> Result<Vec<i64>, String> {
    use proto::tensor_shape_proto::dimension::Value as Dim;
    let Some(shape) = shape else {
        return Ok(Vec::new());
    };
    let rank = shape.dim.len();
    let names: &[&str] = match rank {
        4 => &["N", "C", "H", "W"],
        3 => &["C", "H", "W"],
        2 => &["N", "features"],
        _ => &[],
    };
    let mut dims = Vec::with_capacity(rank);
    for (i, d) in shape.dim.iter().enumerate() {
        let param = match &d.value {
            Some(Dim::DimValue(v)) => {
                dims.push(*v);
                continue;
            }
            _ if i == 0 && (rank == 4 || rank == 2) => {
                dims.push(1); // a symbolic batch: one inference
                continue;
            }
            Some(Dim::DimParam(p)) => p.as_str(),
            None => "",
        };
        let which = names
            .get(i)
            .map_or(format!("dimension {i}"), |n| format!("dimension {i} ({n})"));
        return Err(if param.is_empty() {
            format!(
                "{which} has no size; valid: a fixed size for every dimension but the batch \
                 (fix it with `python -m onnxruntime.tools.make_dynamic_shape_fixed --input_name {input} \
                 --input_shape 1,C,H,W model.onnx fixed.onnx`)"
            )
        } else {
            format!(
                "{which} is symbolic (`{param}`); valid: a fixed size for every dimension but the batch \
                 (fix it with `python -m onnxruntime.tools.make_dynamic_shape_fixed --dim_param {param} \
                 --dim_value SIZE model.onnx fixed.onnx`)"
            )
        });
    }
    Ok(dims)
}

/// The newest default-domain opset accsim knows the operators of: a model
/// that names none is read as this.
const LATEST_OPSET: i64 = 21;

/// The model's default-domain (`""` or `ai.onnx`) opset version.
fn default_opset(model: &ModelProto) -> i64 {
    model
        .opset_import
        .iter()
        .find(|o| matches!(o.domain.as_deref().unwrap_or(""), "" | "ai.onnx"))
        .and_then(|o| o.version)
        .unwrap_or(LATEST_OPSET)
}

fn node_name(n: &NodeProto) -> String {
    match n.name.as_deref() {
        Some(s) if !s.is_empty() => s.to_string(),
        _ => n
            .output
            .first()
            .cloned()
            .unwrap_or_else(|| "layer".to_string()),
    }
}

/// The quantisation of an integer graph input, from the first node that
/// states it (DequantizeLinear, QLinearConv, QLinearMatMul: scale and zero
/// point; ConvInteger / MatMulInteger: zero point only). A graph that never
/// states it (a bare MaxPool) gets scale 1 and zero point 0.
fn input_quant_from_consumers(
    graph: &GraphProto,
    input: &str,
    values: &HashMap<String, Value<'_>>,
    dtype: IntType,
) -> TensorQuant {
    let scalar = |name: Option<&String>| -> Option<&Tensor<'_>> {
        match values.get(name?) {
            Some(Value::Const(t)) if t.len() == 1 => Some(t),
            _ => None,
        }
    };
    for n in &graph.node {
        if n.input.first().map(String::as_str) != Some(input) {
            continue;
        }
        let (s, z) = match n.op_type.as_deref() {
            Some("DequantizeLinear" | "QLinearConv" | "QLinearMatMul") => {
                (n.input.get(1), n.input.get(2))
            }
            Some("ConvInteger" | "MatMulInteger") => (None, n.input.get(2)),
            _ => continue,
        };
        let scale = scalar(s).and_then(Tensor::scalar_f32).unwrap_or(1.0);
        let zero_point = scalar(z).and_then(Tensor::scalar_i64).unwrap_or(0) as i32;
        return TensorQuant::Affine {
            dtype,
            scale,
            zero_point,
        };
    }
    TensorQuant::Affine {
        dtype,
        scale: 1.0,
        zero_point: 0,
    }
}

/// The `cols x rows` transpose of a row-major `rows x cols` matrix, in
/// 32 x 32 tiles so that both sides stay in cache (a strided walk over
/// VGG-19's 25088 x 4096 MatMul weights took a second).
fn transpose(values: &[i16], rows: usize, cols: usize) -> Vec<i16> {
    const TILE: usize = 32;
    let mut out = vec![0; values.len()];
    for r0 in (0..rows).step_by(TILE) {
        for c0 in (0..cols).step_by(TILE) {
            for r in r0..(r0 + TILE).min(rows) {
                for c in c0..(c0 + TILE).min(cols) {
                    out[c * rows + r] = values[r * cols + c];
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_tiled_transpose_is_the_transpose() {
        // Sizes that leave partial tiles on both axes.
        for (rows, cols) in [(1, 1), (3, 70), (70, 45), (64, 32)] {
            let values: Vec<i16> = (0..rows * cols).map(|v| (v * 7 % 509) as i16).collect();
            let t = super::transpose(&values, rows, cols);
            for r in 0..rows {
                for c in 0..cols {
                    assert_eq!(
                        t[c * rows + r],
                        values[r * cols + c],
                        "{rows}x{cols} at {r},{c}"
                    );
                }
            }
        }
    }
}
