//! The float32 operators ONNX Runtime runs between DequantizeLinear and
//! QuantizeLinear that accsim folds into one IR layer each, and their
//! QOperator form:
//!
//! ```text
//!  DQ(a), DQ(b), .. ─ Concat (channels) ─ Q      => concat (ONNX Runtime: QLinearConcat)
//!  com.microsoft.QLinearConcat (channels)          => concat
//!  DQ ─ LRN [─ MaxPool] ─ Q                        => lrn [, max_pool on the integers]
//!  DQ(a), DQ(b), DQ(c), .. ─ Sum [─ Relu] ─ Q      => sum (float32, input order)
//!  DQ ─ LeakyRelu | Sigmoid ─ Q                     => leaky_relu | sigmoid (a table)
//!  com.microsoft.QLinearLeakyRelu | QLinearSigmoid  => leaky_relu | sigmoid
//! ```
//!
//! A MaxPool between the LRN and its QuantizeLinear (AlexNet's and
//! GoogLeNet's `LRN -> MaxPool`, which the quantiser leaves unquantised)
//! becomes an integer max pool after the LRN: quantisation is monotonic, so
//! it commutes with the maximum, and ONNX Runtime moves the QuantizeLinear
//! up itself (docs/onnx.md). Max pools of max pools chain the same way. A
//! float LRN result read through two QuantizeLinears of different scales
//! (GoogLeNet's QOperator form: the pooled LRN quantised, and pooled again
//! and quantised at another scale) becomes two `lrn` layers, one per
//! quantisation: the LRN is computed twice, each bit-exact.

use super::proto::NodeProto;
use super::{Act, Importer, Value, attr, attr_int, node_name};
use crate::error::InputError;
use crate::numerics::TensorQuant;
use crate::workload::ir::{Concat, Lookup, Lrn, Op, Pool, Shape, Sum};

/// A float MaxPool waiting after an LRN: its node name, window and output shape.
pub(super) type LrnPool = (String, Pool, Shape);

impl<'a> Importer<'a> {
    /// The channel axis of a Concat (or QLinearConcat) of rank-`rank`
    /// tensors; refuses any other axis.
    fn concat_axis(&self, n: &NodeProto, rank: usize) -> Result<(), InputError> {
        let axis = attr_int(n, "axis", i64::MAX);
        let channel = match rank {
            2 => axis == 1 || axis == -1,
            _ => axis == 1 || axis == -3,
        };
        if channel {
            return Ok(());
        }
        Err(self.err(
            n,
            format!(
                "concatenates along axis {}; accsim concatenates channels: valid: axis 1 ({})",
                if axis == i64::MAX {
                    "(none)".to_string()
                } else {
                    axis.to_string()
                },
                if rank == 2 {
                    "or -1 of [1, N]"
                } else {
                    "or -3 of [1, C, H, W]"
                }
            ),
        ))
    }

    /// The output shape of a channel concatenation of `inputs`; refuses
    /// inputs whose height, width or rank differ.
    pub(super) fn concat_shape(&self, n: &NodeProto, inputs: &[Act]) -> Result<Shape, InputError> {
        let Some(first) = inputs.first() else {
            return Err(self.err(n, "has no input"));
        };
        for a in inputs {
            if (a.shape.height, a.shape.width, a.rank)
                != (first.shape.height, first.shape.width, first.rank)
            {
                return Err(self.err(
                    n,
                    format!(
                        "concatenates tensors of shapes {} and {}; valid: equal height and width (and rank)",
                        first.shape, a.shape
                    ),
                ));
            }
        }
        self.concat_axis(n, first.rank)?;
        let channels = inputs.iter().map(|a| a.shape.channels).sum();
        Ok(Shape::new(channels, first.shape.height, first.shape.width))
    }

    /// Every input of `n` as a dequantised activation (`what` names the
    /// operator in the refusal).
    fn dequantised_inputs(&mut self, n: &NodeProto, what: &str) -> Result<Vec<Act>, InputError> {
        let count = n.input.len();
        let mut inputs = Vec::with_capacity(count);
        for i in 0..count {
            match self.need(n, i, "input")? {
                Value::Dequant(a) => inputs.push(a),
                Value::Add { node, sum, .. } => return Err(self.float_chain(n, what, &node, sum)),
                _ => {
                    return Err(self.err(
                        n,
                        format!(
                            "input {i} is not a DequantizeLinear of a quantised activation; valid: \
                             {what} of dequantised activations, followed by a QuantizeLinear (QDQ form)"
                        ),
                    ));
                }
            }
        }
        Ok(inputs)
    }

    /// `DQ.. -> Concat` along the channels, waiting for its QuantizeLinear.
    pub(super) fn concat(&mut self, n: &NodeProto) -> Result<Value<'a>, InputError> {
        let inputs = self.dequantised_inputs(n, "Concat")?;
        let shape = self.concat_shape(n, &inputs)?;
        Ok(Value::Concat {
            node: node_name(n),
            inputs,
            shape,
        })
    }

    /// `com.microsoft.QLinearConcat`: `Y_scale, Y_zero_point`, then a
    /// `(X, X_scale, X_zero_point)` triple per input.
    pub(super) fn qlinear_concat(&mut self, n: &NodeProto) -> Result<Value<'a>, InputError> {
        let count = n.input.len();
        if count < 5 || !(count - 2).is_multiple_of(3) {
            return Err(self.err(
                n,
                format!(
                    "has {count} inputs; valid: Y_scale, Y_zero_point, then (X, X_scale, X_zero_point) per input"
                ),
            ));
        }
        let yq = self.quant_at(n, 0, 1, "Y")?;
        let mut inputs = Vec::with_capacity((count - 2) / 3);
        for k in (2..count).step_by(3) {
            let x = self.quant_input(n, (k, k + 1, k + 2), &format!("input {}", (k - 2) / 3))?;
            self.check_same_type(n, &x.quant, &yq, "Y")?;
            inputs.push(x);
        }
        let shape = self.concat_shape(n, &inputs)?;
        self.push_concat(n, node_name(n), inputs, shape, yq)
    }

    fn push_concat(
        &mut self,
        n: &NodeProto,
        node: String,
        inputs: Vec<Act>,
        shape: Shape,
        q: TensorQuant,
    ) -> Result<Value<'a>, InputError> {
        let rank = inputs.first().map_or(4, |a| a.rank);
        let op = Op::Concat(Concat {
            input_quants: inputs.iter().map(|a| a.quant).collect(),
        });
        Ok(Value::Quant(
            self.push(n, node, inputs, op, shape, q, rank)?,
        ))
    }

    /// `DQ -> LRN` over the channels, waiting for its QuantizeLinear.
    pub(super) fn lrn(&mut self, n: &NodeProto) -> Result<Value<'a>, InputError> {
        let Value::Dequant(input) = self.need(n, 0, "X")? else {
            return Err(self.err(
                n,
                "LRN needs a dequantised activation: valid is DequantizeLinear -> LRN -> \
                 QuantizeLinear (QDQ form; ONNX Runtime runs LRN in float32)",
            ));
        };
        if input.rank != 4 {
            return Err(self.err(n, "LRN needs a 4-D [1, C, H, W] input"));
        }
        let lrn = self.lrn_params(n)?;
        Ok(Value::Lrn {
            node: node_name(n),
            input,
            lrn,
            pools: Vec::new(),
        })
    }

    /// An LRN node's attributes, checked against ONNX Runtime's limits.
    pub(super) fn lrn_params(&self, n: &NodeProto) -> Result<Lrn, InputError> {
        let float = |name: &str, default: f32| attr(n, name).and_then(|a| a.f).unwrap_or(default);
        let size = attr_int(n, "size", 0);
        let lrn = Lrn {
            size: size.max(0) as usize,
            alpha: float("alpha", 1e-4),
            beta: float("beta", 0.75),
            bias: float("bias", 1.0),
        };
        let alpha_ok = lrn.alpha > 0.0 && lrn.alpha.is_finite();
        if size < 1 || size % 2 == 0 || !(alpha_ok && lrn.beta > 0.0 && lrn.bias.is_finite()) {
            return Err(self.err(
                n,
                format!(
                    "size {size}, alpha {}, beta {}, bias {}; valid: an odd size >= 1, finite \
                     alpha > 0, beta > 0, finite bias (ONNX Runtime's limits)",
                    lrn.alpha, lrn.beta, lrn.bias
                ),
            ));
        }
        Ok(lrn)
    }

    /// A float MaxPool of a pending LRN (or of a max pool after it): an
    /// integer max pool after the LRN.
    pub(super) fn lrn_pool(
        &mut self,
        n: &NodeProto,
        v: Value<'a>,
    ) -> Result<Value<'a>, InputError> {
        let Value::Lrn {
            node,
            input,
            lrn,
            mut pools,
        } = v
        else {
            return Err(self.err(
                n,
                "MaxPool needs a dequantised activation (QDQ form) or integers",
            ));
        };
        let pooled = pools
            .last()
            .map_or(input, |&(_, _, shape)| Act { shape, ..input });
        let (window, _, out_shape) = self.pool_window(n, "MaxPool", &pooled)?;
        pools.push((node_name(n), window, out_shape));
        Ok(Value::Lrn {
            node,
            input,
            lrn,
            pools,
        })
    }

    /// The activation `op` (LeakyRelu or Sigmoid) of node `n`.
    fn lookup_op(&self, n: &NodeProto, op: &str) -> Result<Lookup, InputError> {
        match op {
            "Sigmoid" | "QLinearSigmoid" => Ok(Lookup::Sigmoid),
            _ => {
                let alpha = attr(n, "alpha").and_then(|a| a.f).unwrap_or(0.01);
                if !alpha.is_finite() {
                    return Err(self.err(n, format!("alpha {alpha}; valid: a finite number")));
                }
                Ok(Lookup::LeakyRelu { alpha })
            }
        }
    }

    /// `DQ -> LeakyRelu | Sigmoid`, waiting for its QuantizeLinear.
    pub(super) fn unary(&mut self, n: &NodeProto, op: &str) -> Result<Value<'a>, InputError> {
        let Value::Dequant(input) = self.need(n, 0, "X")? else {
            return Err(self.err(
                n,
                format!(
                    "{op} needs a dequantised activation: valid is DequantizeLinear -> {op} -> \
                     QuantizeLinear (QDQ form), which ONNX Runtime runs as QLinear{op}"
                ),
            ));
        };
        Ok(Value::Unary {
            node: node_name(n),
            input,
            op: self.lookup_op(n, op)?,
        })
    }

    /// `com.microsoft.QLinearLeakyRelu` / `QLinearSigmoid`: `X, X_scale,
    /// X_zero_point, Y_scale, Y_zero_point`.
    pub(super) fn qlinear_unary(
        &mut self,
        n: &NodeProto,
        op: &str,
    ) -> Result<Value<'a>, InputError> {
        let x = self.quant_input(n, (0, 1, 2), "X")?;
        let yq = self.quant_at(n, 3, 4, "Y")?;
        self.check_same_type(n, &x.quant, &yq, "Y")?;
        let lookup = Op::Lookup(self.lookup_op(n, op)?);
        Ok(Value::Quant(self.push(
            n,
            node_name(n),
            vec![x],
            lookup,
            x.shape,
            yq,
            x.rank,
        )?))
    }

    /// `DQ(a), DQ(b), DQ(c), .. -> Sum` of three or more inputs of one
    /// shape, waiting for its QuantizeLinear.
    pub(super) fn sum_n(&mut self, n: &NodeProto) -> Result<Value<'a>, InputError> {
        let inputs = self.dequantised_inputs(n, "Sum")?;
        let Some(first) = inputs.first().copied() else {
            return Err(self.err(n, "has no input"));
        };
        if let Some(a) = inputs
            .iter()
            .find(|a| (a.shape, a.rank) != (first.shape, first.rank))
        {
            return Err(self.err(
                n,
                format!(
                    "sums tensors of shapes {} and {}; accsim needs equal shapes (no broadcasting)",
                    first.shape, a.shape
                ),
            ));
        }
        Ok(Value::Sum {
            node: node_name(n),
            inputs,
            relu: false,
        })
    }

    /// The QuantizeLinear `n` (quantisation `q`) ending a pending Concat,
    /// LRN or Sum; `None` for any other value (handed back).
    pub(super) fn finish_float_op(
        &mut self,
        n: &NodeProto,
        v: Value<'a>,
        q: TensorQuant,
    ) -> Result<Result<Value<'a>, Value<'a>>, InputError> {
        Ok(Ok(match v {
            Value::Concat {
                node,
                inputs,
                shape,
            } => {
                if let Some(a) = inputs.iter().find(|a| a.quant.dtype() != q.dtype()) {
                    self.check_same_type(n, &a.quant, &q, "y")?;
                }
                self.push_concat(n, node, inputs, shape, q)?
            }
            Value::Lrn {
                node,
                input,
                lrn,
                pools,
            } => {
                let mut out = self.push(n, node, vec![input], Op::Lrn(lrn), input.shape, q, 4)?;
                for (pool_node, window, shape) in pools {
                    out = self.push(n, pool_node, vec![out], Op::MaxPool(window), shape, q, 4)?;
                }
                Value::Quant(out)
            }
            Value::Unary { node, input, op } => {
                let op = Op::Lookup(op);
                Value::Quant(self.push(n, node, vec![input], op, input.shape, q, input.rank)?)
            }
            Value::Sum { node, inputs, relu } => {
                if relu && q.zero() != q.range().0 {
                    return Err(self.err(
                        n,
                        format!(
                            "a Relu between the Sum and this QuantizeLinear clamps at zero point {}; \
                             valid: a zero point of {} (the type's minimum, where the Relu changes \
                             nothing and ONNX Runtime drops it)",
                            q.zero(),
                            q.range().0
                        ),
                    ));
                }
                let Some(&first) = inputs.first() else {
                    return Err(self.err(n, "has no input"));
                };
                let op = Op::Sum(Sum {
                    input_quants: inputs.iter().map(|a| a.quant).collect(),
                    relu: false,
                    plane_average: None,
                    float_output: false,
                });
                Value::Quant(self.push(n, node, inputs, op, first.shape, q, first.rank)?)
            }
            other => return Ok(Err(other)),
        }))
    }
}
