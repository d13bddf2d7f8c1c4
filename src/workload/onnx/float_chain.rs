//! Float32 chains between quantised tensors (docs/onnx.md, item 18): the
//! element-wise float operators ONNX Runtime runs unfused after
//! DequantizeLinear, with no QuantizeLinear between them:
//!
//! ```text
//!  DQ(a), DQ(b) ─ Sum ─ Relu ─ AveragePool (whole plane) [─ Reshape] ─ Q   => sum (float chain)
//!  DQ(a), DQ(b) ─ Sum ─ Relu ─┬─ Q                                          => sum (float32 out),
//!                             └─ Sum(DQ(c), ·) ─ Relu ─ ...                     sum (quantise) ...
//! ```
//!
//! The first is ResNet-50's and ShuffleNet's last block in QDQ form; the
//! second is every residual of their QOperator form, where the float32
//! result of `Relu(Sum(..))` is read both through a QuantizeLinear (by the
//! next convolution) and directly, unquantised, by the next `Sum`. Such a
//! tensor is carried in the machine as float32 (`ir::FLOAT32_WORDS`: two
//! 16-bit words per element, 4 bytes), written once by the layer that
//! computes it and read by each of its readers.

use super::proto::NodeProto;
use super::{Act, Importer, Value, node_name};
use crate::error::InputError;
use crate::numerics::TensorQuant;
use crate::workload::ir::{FLOAT32_WORDS, Op, PlaneAverage, Shape, Sum};

/// A float32 chain's parts: its node, operands, Relu and plane mean.
#[derive(Debug, Clone)]
pub(super) struct ChainParts {
    node: String,
    inputs: Vec<Act>,
    relu: bool,
    plane: Option<PlaneAverage>,
    rank: usize,
}

/// The `[C, H, W]` shape `a` stands for (a float32 tensor is stored as
/// `[2C, H, W]` words).
fn real_shape(a: &Act) -> Shape {
    if a.quant == FLOAT32_WORDS {
        Shape::new(a.shape.channels / 2, a.shape.height, a.shape.width)
    } else {
        a.shape
    }
}

impl<'a> Importer<'a> {
    /// The float32 chain of a pending value: an Add or Sum of dequantised
    /// tensors (with its Relu) or a chain; `None` for any other value.
    fn chain_parts(v: &Value<'a>) -> Option<ChainParts> {
        Some(match v {
            Value::Add {
                node, a, b, relu, ..
            } => ChainParts {
                node: node.clone(),
                inputs: vec![*a, *b],
                relu: *relu,
                plane: None,
                rank: a.rank,
            },
            Value::Sum { node, inputs, relu } => ChainParts {
                node: node.clone(),
                inputs: inputs.clone(),
                relu: *relu,
                plane: None,
                rank: inputs.first()?.rank,
            },
            Value::Chain(parts) => ChainParts {
                node: parts.node.clone(),
                inputs: parts.inputs.clone(),
                relu: parts.relu,
                plane: parts.plane,
                rank: parts.rank,
            },
            _ => return None,
        })
    }

    /// Pushes the chain's layer: quantised to `q`, or float32 (`None`).
    fn push_chain(
        &mut self,
        n: &NodeProto,
        parts: ChainParts,
        q: Option<TensorQuant>,
    ) -> Result<Act, InputError> {
        let Some(first) = parts.inputs.first() else {
            return Err(self.err(n, "has no input"));
        };
        let shape = real_shape(first);
        if let Some(a) = parts.inputs.iter().find(|a| real_shape(a) != shape) {
            return Err(self.err(
                n,
                format!(
                    "sums tensors of shapes {shape} and {}; accsim needs equal shapes (no broadcasting)",
                    real_shape(a)
                ),
            ));
        }
        let (h, w) = match parts.plane {
            Some(_) => (1, 1),
            None => (shape.height, shape.width),
        };
        let (out_quant, channels) = match q {
            Some(q) => (q, shape.channels),
            None => (FLOAT32_WORDS, 2 * shape.channels),
        };
        let op = Op::Sum(Sum {
            input_quants: parts.inputs.iter().map(|a| a.quant).collect(),
            relu: parts.relu,
            plane_average: parts.plane,
            float_output: q.is_none(),
        });
        let out = Shape::new(channels, h, w);
        self.push(n, parts.node, parts.inputs, op, out, out_quant, parts.rank)
    }

    /// `v` as a float32 tensor: pushes a pending chain's layer with a
    /// float32 output; a float32 tensor or a dequantised one as it is.
    pub(super) fn float_operand(&mut self, n: &NodeProto, v: Value<'a>) -> Result<Act, InputError> {
        match v {
            Value::Float(a) | Value::Dequant(a) => Ok(a),
            v => match Self::chain_parts(&v) {
                Some(parts) => self.push_chain(n, parts, None),
                None => Err(self.err(
                    n,
                    "Sum is supported between dequantised activations and float32 results of \
                     Sum/Relu chains",
                )),
            },
        }
    }

    /// A `Sum` with a float32 operand (a materialised chain result or a
    /// pending chain): a new chain of its operands; `None` when every
    /// operand is dequantised (the plain sums of item 13).
    pub(super) fn chain_sum(&mut self, n: &NodeProto) -> Result<Option<Value<'a>>, InputError> {
        let count = n.input.len();
        let mut any_float = false;
        for i in 0..count {
            let v = self.get(n, i)?;
            any_float |= matches!(v, Some(Value::Float(_) | Value::Chain(_)))
                || v.is_some_and(|v| Self::chain_parts(v).is_some());
        }
        if !any_float {
            return Ok(None);
        }
        let mut inputs = Vec::with_capacity(count);
        for i in 0..count {
            let v = self.need(n, i, "data")?;
            inputs.push(self.float_operand(n, v)?);
        }
        let rank = inputs.first().map_or(4, |a| a.rank);
        Ok(Some(Value::Chain(Box::new(ChainParts {
            node: node_name(n),
            inputs,
            relu: false,
            plane: None,
            rank,
        }))))
    }

    /// `Relu` of a pending chain with no Relu or mean yet.
    pub(super) fn chain_relu(&self, v: &Value<'a>) -> Option<Value<'a>> {
        match v {
            Value::Chain(parts) if !parts.relu && parts.plane.is_none() => {
                Some(Value::Chain(Box::new(ChainParts {
                    node: parts.node.clone(),
                    inputs: parts.inputs.clone(),
                    relu: true,
                    plane: None,
                    rank: parts.rank,
                })))
            }
            _ => None,
        }
    }

    /// An AveragePool or GlobalAveragePool of a float32 chain or tensor:
    /// the chain's mean over the whole plane, the only window accsim
    /// averages in float32.
    pub(super) fn chain_pool(
        &mut self,
        n: &NodeProto,
        op: &str,
        v: Value<'a>,
    ) -> Result<Value<'a>, InputError> {
        let mut parts = match v {
            Value::Float(a) => ChainParts {
                node: node_name(n),
                inputs: vec![a],
                relu: false,
                plane: None,
                rank: a.rank,
            },
            v => match Self::chain_parts(&v) {
                Some(p) => p,
                None => return Err(self.err(n, format!("{op} needs a float32 chain"))),
            },
        };
        let what = parts.node.clone();
        let first = parts.inputs.first().copied();
        let Some(first) = first else {
            return Err(self.err(n, "has no input"));
        };
        let shape = real_shape(&first);
        let order = if op == "GlobalAveragePool" {
            PlaneAverage::GlobalAveragePool
        } else {
            let act = Act { shape, ..first };
            let (pool, _, _) = self.pool_window(n, op, &act)?;
            if pool.kernel != [shape.height, shape.width] || !pool.padding.is_zero() {
                return Err(self.err(
                    n,
                    format!(
                        "{op} reads the float32 result of `{what}` with no QuantizeLinear between; \
                         accsim averages a float32 chain over the whole plane only; valid: a {}x{} \
                         window with no pads, GlobalAveragePool, or a QuantizeLinear before the pool",
                        shape.height, shape.width
                    ),
                ));
            }
            PlaneAverage::AveragePool
        };
        if parts.plane.is_some() {
            return Err(self.err(
                n,
                format!("{op} of a pooled float32 chain is not supported"),
            ));
        }
        parts.plane = Some(order);
        Ok(Value::Chain(Box::new(parts)))
    }

    /// A Reshape (or Flatten) of a chain's `[1, C, 1, 1]` mean to `[1, C]`.
    pub(super) fn chain_reshape(
        &mut self,
        n: &NodeProto,
        v: Value<'a>,
    ) -> Result<Value<'a>, InputError> {
        let Value::Chain(mut parts) = v else {
            return Err(self.err(n, "internal: not a float32 chain"));
        };
        let channels = parts.inputs.first().map_or(0, |a| real_shape(a).channels) as i64;
        let dims = match n.op_type.as_deref() {
            Some("Flatten") => vec![1, channels],
            _ => {
                let mut d = self.constant(n, 1, "shape")?.ints();
                if let Some(i) = d.iter().position(|&x| x == -1) {
                    d[i] = channels;
                }
                d
            }
        };
        if parts.plane.is_none() || dims != [1, channels] {
            return Err(self.err(
                n,
                format!(
                    "reshapes a float32 chain to {dims:?}; valid: [1, {channels}] after the chain's \
                     average over the whole plane"
                ),
            ));
        }
        parts.rank = 2;
        Ok(Value::Chain(parts))
    }

    /// The QuantizeLinear `n` (quantisation `q`) of a float32 chain or
    /// tensor; `Err(v)` hands any other value back.
    pub(super) fn finish_chain(
        &mut self,
        n: &NodeProto,
        v: Value<'a>,
        q: TensorQuant,
    ) -> Result<Result<Value<'a>, Value<'a>>, InputError> {
        let parts = match v {
            Value::Float(a) => ChainParts {
                node: node_name(n),
                inputs: vec![a],
                relu: false,
                plane: None,
                rank: a.rank,
            },
            Value::Chain(parts) => *parts,
            other => return Ok(Err(other)),
        };
        Ok(Ok(Value::Quant(self.push_chain(n, parts, Some(q))?)))
    }

    /// After a Sum or Relu: a pending chain that is read more than once,
    /// and not only through QuantizeLinears, becomes a float32 tensor, so
    /// that each reader reads it rather than computing it again.
    pub(super) fn materialise_shared(
        &mut self,
        n: &NodeProto,
        v: Value<'a>,
    ) -> Result<Value<'a>, InputError> {
        let out = n.output.first().cloned().unwrap_or_default();
        let readers = self.reader_ops.get(&out).map_or(&[][..], Vec::as_slice);
        let shared = readers.len() > 1 && readers.iter().any(|r| r != "QuantizeLinear");
        if !shared {
            return Ok(v);
        }
        match Self::chain_parts(&v) {
            Some(parts) if parts.plane.is_none() => {
                Ok(Value::Float(self.push_chain(n, parts, None)?))
            }
            _ => Ok(v),
        }
    }
}
