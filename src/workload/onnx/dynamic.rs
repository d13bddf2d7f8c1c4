//! Dynamic quantisation (`quantize_dynamic`; docs/onnx.md, item 20):
//! `DynamicQuantizeLinear` becomes a `dynamic_range` layer (the float32
//! tensor's run-time scale and zero point) and a `dynamic_quantize` layer
//! (its uint8 values); `ConvInteger` / `MatMulInteger` -> `Cast` ->
//! `Mul(x_scale * w_scale)` -> `Add(bias)` [-> `Relu`] a convolution or
//! matrix product that reads the quantised tensor and its range and writes
//! float32 (`Requant::DynamicFloat`); `MaxPool`, `Flatten` and `Softmax`
//! between them run on float32 tensors (`ir::FLOAT32_WORDS`).

use super::proto::NodeProto;
use super::{Act, Chain, Importer, Value, Weighted, attr_int, node_name, weighted_op};
use crate::error::InputError;
use crate::numerics::{Activation, OutputStage, Requant, WeightQuant};
use crate::workload::ir::{DYNAMIC_UINT8, Epilogue, FLOAT32_WORDS, Op, Shape, TensorSource};

/// The run-time values of a dynamic model that are not tensors of their own.
#[derive(Debug, Clone)]
pub(super) enum DynValue {
    /// `DynamicQuantizeLinear`'s scale output: held by the `dynamic_range`
    /// tensor `range`.
    Scale(Act),
    /// Its zero point output, held by the same tensor.
    ZeroPoint(Act),
    /// `Mul(x_scale, w_scale)`: the float epilogue's multiplier.
    Multiplier { range: Act, weight_scale: f32 },
    /// A float32 `[1, C, H, W]` tensor flattened to `[1, C H W]`, waiting
    /// for its `DynamicQuantizeLinear` (which commutes with the reshape:
    /// the range is the same; the importer flattens the uint8 values).
    Flattened(Act),
}

/// The float epilogue of a pending dynamic convolution or matrix product.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct DynChain {
    /// The `dynamic_range` tensor of the layer's input.
    range: Act,
    cast: bool,
    weight_scale: Option<f32>,
    offsets: Option<Vec<f32>>,
    relu: bool,
}

/// The `[2, 1, 1]` float32 tensor of a `dynamic_range` layer, as words.
const RANGE_SHAPE: Shape = Shape {
    channels: 4,
    height: 1,
    width: 1,
};

impl<'a> Importer<'a> {
    /// Handles `n` when it belongs to a dynamic model's pattern; `None`
    /// leaves it to the other importers.
    pub(super) fn dynamic_node(
        &mut self,
        n: &NodeProto,
        op: &str,
    ) -> Option<Result<Value<'a>, InputError>> {
        // A pending layer read by several nodes is pushed once, here.
        let shared = n.input.iter().any(|i| {
            !self.single_use(i)
                && matches!(self.values.get(i), Some(Value::Weighted(w)) if matches!(w.chain, Chain::Dynamic(_)))
        });
        if shared && let Err(e) = self.materialise_inputs(n) {
            return Some(Err(e));
        }
        let first = self.get(n, 0).ok().flatten();
        let second = self.get(n, 1).ok().flatten();
        let pending = |v: Option<&Value>| matches!(v, Some(Value::Weighted(w)) if matches!(w.chain, Chain::Dynamic(_)));
        let float = |v: Option<&Value>| {
            pending(v) || matches!(v, Some(Value::Float(_) | Value::Dynamic(_)))
        };
        let dynamic_input = matches!(first, Some(Value::Quant(a)) if a.quant == DYNAMIC_UINT8);
        let is_dyn =
            matches!(first, Some(Value::Dynamic(_))) || matches!(second, Some(Value::Dynamic(_)));
        let is_const = matches!(first, Some(Value::Const(_)));
        // A float32 chain's result (a mean) read by a float32 operator.
        let chain = matches!(first, Some(Value::Chain(_)));
        Some(match op {
            "DynamicQuantizeLinear" => self.dynamic_quantize_linear(n),
            "ConvInteger" | "MatMulInteger" if dynamic_input => self.dynamic_integer(n, op),
            "Mul" if is_dyn || pending(first) || pending(second) => self.dynamic_mul(n),
            "Cast" | "Add" | "Relu" if pending(first) || pending(second) => {
                self.dynamic_epilogue(n, op)
            }
            "MaxPool" if float(first) => self.float_max_pool(n),
            "AveragePool" if float(first) => self.float_avg_pool(n),
            "LRN" if float(first) => self.float_lrn(n),
            "Reshape" if float(first) && self.float_shuffle_reshape(n) => {
                self.float_shuffle_start(n)
            }
            "Flatten" | "Reshape" if float(first) => self.float_flatten(n),
            "Reshape" if is_const => self.reshape_constant(n),
            "Softmax" if float(first) || chain => self.float_softmax(n),
            "Concat" if float(first) || chain => self.float_concat(n),
            "AveragePool" | "GlobalAveragePool" if pending(first) => {
                let v = self.need(n, 0, "X").and_then(|v| self.float_act(n, v));
                v.and_then(|a| self.chain_pool(n, op, Value::Float(a)))
            }
            _ if float(first) && !pending(first) && self.is_float_channel(n, op) => {
                self.float_channel(n, op)
            }
            // Any other reader (a Sum of residuals) takes the float32 tensor.
            _ if (0..n.input.len()).any(|i| pending(self.get(n, i).ok().flatten())) => {
                return self.materialise_inputs(n).err().map(Err);
            }
            _ => return None,
        })
    }

    /// Pushes every pending dynamic layer `n` reads, leaving its float32
    /// tensor in its place for the other importers.
    fn materialise_inputs(&mut self, n: &NodeProto) -> Result<(), InputError> {
        for name in n.input.iter().filter(|i| !i.is_empty()) {
            let pending = matches!(
                self.values.get(name),
                Some(Value::Weighted(w)) if matches!(w.chain, Chain::Dynamic(_))
            );
            // Only a pending layer leaves the table (any other input, such
            // as a float32 tensor a DynamicQuantizeLinear also reads, stays).
            if !pending {
                continue;
            }
            if let Some(Value::Weighted(w)) = self.values.remove(name) {
                let a = self.push_dynamic(n, *w)?;
                self.values.insert(name.clone(), Value::Float(a));
            }
        }
        Ok(())
    }

    /// The float32 tensor `v` stands for: a float32 tensor, or a pending
    /// dynamic layer, pushed now.
    pub(super) fn float_act(&mut self, n: &NodeProto, v: Value<'a>) -> Result<Act, InputError> {
        match v {
            Value::Float(a) => Ok(a),
            Value::Weighted(w) if matches!(w.chain, Chain::Dynamic(_)) => self.push_dynamic(n, *w),
            v @ Value::Chain(_) => self.float_operand(n, v),
            _ => Err(self.err(n, "needs a float32 tensor")),
        }
    }

    fn dynamic_quantize_linear(&mut self, n: &NodeProto) -> Result<Value<'a>, InputError> {
        let (act, flattened) = match self.need(n, 0, "x")? {
            Value::FloatInput => (self.float_graph_input(), false),
            Value::Dynamic(DynValue::Flattened(a)) => (a, true),
            v => (self.float_act(n, v)?, false),
        };
        let name = node_name(n);
        let range = self.push(
            n,
            format!("{name}_range"),
            vec![act],
            Op::DynamicRange,
            RANGE_SHAPE,
            FLOAT32_WORDS,
            2,
        )?;
        let s = act.shape;
        let shape = Shape::new(s.channels / 2, s.height, s.width);
        let mut q = self.push(
            n,
            name.clone(),
            vec![act, range],
            Op::DynamicQuantize,
            shape,
            DYNAMIC_UINT8,
            act.rank,
        )?;
        if flattened {
            let flat = Shape::new(shape.len(), 1, 1);
            q = self.push(
                n,
                format!("{name}_flatten"),
                vec![q],
                Op::Flatten,
                flat,
                DYNAMIC_UINT8,
                2,
            )?;
        }
        for (k, v) in [(1, DynValue::Scale(range)), (2, DynValue::ZeroPoint(range))] {
            if let Some(out) = n.output.get(k).filter(|o| !o.is_empty()) {
                self.values.insert(out.clone(), Value::Dynamic(v));
            }
        }
        Ok(Value::Quant(q))
    }

    /// The float graph input read by a `DynamicQuantizeLinear`: the network
    /// input becomes float32 words (`[2C, H, W]`).
    fn float_graph_input(&mut self) -> Act {
        let s = self.input_shape;
        if self.input_quant != FLOAT32_WORDS {
            self.input_quant = FLOAT32_WORDS;
            self.input_shape = Shape::new(2 * s.channels, s.height, s.width);
        }
        Act {
            source: TensorSource::Input,
            shape: self.input_shape,
            quant: FLOAT32_WORDS,
            rank: self.input_rank,
        }
    }

    fn dynamic_integer(&mut self, n: &NodeProto, op: &str) -> Result<Value<'a>, InputError> {
        let Value::Quant(x) = self.need(n, 0, "x")? else {
            return Err(self.err(n, "internal: not a quantised input"));
        };
        let range = match self.need(n, 2, "x zero point")? {
            Value::Dynamic(DynValue::ZeroPoint(r)) => r,
            _ => {
                return Err(self.err(
                    n,
                    "the x zero point must be the DynamicQuantizeLinear's that quantised x",
                ));
            }
        };
        if !self.reads_range(x, range) {
            return Err(self.err(
                n,
                "x and its zero point come from different DynamicQuantizeLinears",
            ));
        }
        let chain = Chain::Dynamic(Box::new(DynChain {
            range,
            cast: false,
            weight_scale: None,
            offsets: None,
            relu: false,
        }));
        self.integer_weighted(n, op, x, chain)
    }

    /// Whether the quantised tensor `x` was made with the range `range`.
    fn reads_range(&self, x: Act, range: Act) -> bool {
        let TensorSource::Layer(mut i) = x.source else {
            return false;
        };
        if matches!(self.layers[i].op, Op::Flatten) {
            match self.layers[i].inputs.first() {
                Some(TensorSource::Layer(j)) => i = *j,
                _ => return false,
            }
        }
        self.layers[i].inputs.get(1) == Some(&range.source)
    }

    fn dynamic_mul(&mut self, n: &NodeProto) -> Result<Value<'a>, InputError> {
        let a = self.need(n, 0, "A")?;
        let b = self.need(n, 1, "B")?;
        match (a, b) {
            (Value::Dynamic(DynValue::Scale(range)), Value::Const(t))
            | (Value::Const(t), Value::Dynamic(DynValue::Scale(range))) => match t.scalar_f32() {
                Some(s) if t.is_float() && s.is_finite() && s > 0.0 => {
                    Ok(Value::Dynamic(DynValue::Multiplier {
                        range,
                        weight_scale: s,
                    }))
                }
                _ => Err(self.err(
                    n,
                    format!("the weight scale must be one positive float32 (per tensor, as ConvInteger takes); got shape {:?}", t.dims),
                )),
            },
            (Value::Weighted(mut w), Value::Dynamic(DynValue::Multiplier { range, weight_scale }))
            | (Value::Dynamic(DynValue::Multiplier { range, weight_scale }), Value::Weighted(mut w)) => {
                match &mut w.chain {
                    Chain::Dynamic(c) if c.cast && c.weight_scale.is_none() && c.range == range => {
                        c.weight_scale = Some(weight_scale);
                        Ok(Value::Weighted(w))
                    }
                    _ => Err(self.err(
                        n,
                        "Mul by x_scale * w_scale must directly follow the Cast after ConvInteger / MatMulInteger, with x's own scale",
                    )),
                }
            }
            _ => Err(self.err(
                n,
                "valid in a dynamic model: Mul(x_scale, w_scale) of a DynamicQuantizeLinear's scale, or Mul of the Cast ConvInteger / MatMulInteger result by it",
            )),
        }
    }

    /// `Cast(to = FLOAT)`, `Add(bias)` and `Relu` after a dynamic
    /// `ConvInteger` / `MatMulInteger`, in that order.
    fn dynamic_epilogue(&mut self, n: &NodeProto, op: &str) -> Result<Value<'a>, InputError> {
        let (v, other) = match op {
            "Add" => match (self.need(n, 0, "A")?, self.need(n, 1, "B")?) {
                (w @ Value::Weighted(_), o) | (o, w @ Value::Weighted(_)) => (w, Some(o)),
                _ => return Err(self.err(n, "internal: no pending layer")),
            },
            _ => (self.need(n, 0, "input")?, None),
        };
        let Value::Weighted(mut w) = v else {
            return Err(self.err(n, "internal: no pending layer"));
        };
        let offsets = match &other {
            Some(Value::Const(t)) => Some(self.channel_values(n, t, &w)?),
            _ => None,
        };
        let float = super::DataType::Float as i64;
        let Chain::Dynamic(c) = &mut w.chain else {
            return Err(self.err(n, "internal: not a dynamic layer"));
        };
        let ok = match op {
            "Cast" if !c.cast && attr_int(n, "to", 0) == float => {
                c.cast = true;
                true
            }
            "Add" if c.weight_scale.is_some() && c.offsets.is_none() && !c.relu => {
                c.offsets = offsets;
                c.offsets.is_some()
            }
            "Relu" if c.weight_scale.is_some() && !c.relu => {
                c.relu = true;
                true
            }
            _ => false,
        };
        if !ok {
            return Err(self.err(
                n,
                "valid after a dynamic ConvInteger / MatMulInteger: Cast(to = FLOAT), Mul(x_scale * w_scale), Add(a float constant), Relu, in that order",
            ));
        }
        Ok(Value::Weighted(w))
    }

    /// The pending dynamic layer `w` as an IR layer: it reads its
    /// quantised input and that input's range, and writes float32.
    fn push_dynamic(&mut self, n: &NodeProto, w: Weighted) -> Result<Act, InputError> {
        let Chain::Dynamic(c) = w.chain else {
            return Err(self.err(n, "internal: not a dynamic layer"));
        };
        let Some(weight_scale) = c.weight_scale else {
            return Err(self.err(
                n,
                "a dynamic ConvInteger / MatMulInteger is read before its Cast and Mul(x_scale * w_scale)",
            ));
        };
        let requant = Requant::DynamicFloat {
            weight_scale,
            input_scale: None,
            offsets: c.offsets.unwrap_or_else(|| vec![0.0]),
            relu: c.relu,
        };
        let (min, max) = (i32::from(i16::MIN), i32::from(i16::MAX));
        let epilogue = Epilogue {
            bias: w.bias,
            activation: if c.relu {
                Activation::Relu
            } else {
                Activation::None
            },
            output_stage: OutputStage {
                accumulator_bits: 32,
                requant,
                zero_point: 0,
                clamp_min: min,
                clamp_max: max,
            },
        };
        let weight_quant = match w.weight_quant {
            WeightQuant::Affine {
                dtype, zero_point, ..
            } => WeightQuant::Affine {
                dtype,
                scales: vec![weight_scale],
                zero_point,
            },
            other => other,
        };
        let op = weighted_op(w.geom, w.weights, weight_quant, epilogue)
            .map_err(|e| self.err(n, format!("weights: {e}")))?;
        let s = w.out_shape;
        let shape = Shape::new(2 * s.channels, s.height, s.width);
        self.push(
            n,
            w.node,
            vec![w.input, c.range],
            op,
            shape,
            FLOAT32_WORDS,
            w.rank,
        )
    }

    fn float_max_pool(&mut self, n: &NodeProto) -> Result<Value<'a>, InputError> {
        let v = self.need(n, 0, "X")?;
        let act = self.float_act(n, v)?;
        let s = act.shape;
        let logical = Act {
            shape: Shape::new(s.channels / 2, s.height, s.width),
            ..act
        };
        let (pool, _, out) = self.pool_window(n, "MaxPool", &logical)?;
        let shape = Shape::new(2 * out.channels, out.height, out.width);
        let a = self.push(
            n,
            node_name(n),
            vec![act],
            Op::MaxPool(pool),
            shape,
            FLOAT32_WORDS,
            4,
        )?;
        Ok(Value::Float(a))
    }

    /// `Flatten` (axis 1) or `Reshape` to `[1, N]` of a float32 tensor.
    fn float_flatten(&mut self, n: &NodeProto) -> Result<Value<'a>, InputError> {
        let v = self.need(n, 0, "data")?;
        let act = self.float_act(n, v)?;
        let s = act.shape;
        let total = (s.len() / 2) as i64;
        let flat = if n.op_type.as_deref() == Some("Reshape") {
            let onnx = [1, (s.channels / 2) as i64, s.height as i64, s.width as i64];
            let dims = self.reshape_dims(n, &onnx)?;
            matches!(dims[..], [1, m] | [1, m, 1, 1] if m == total || m == -1)
        } else {
            attr_int(n, "axis", 1) == 1
        };
        if !flat {
            return Err(self.err(
                n,
                format!("valid on a float32 tensor: Flatten (axis 1) or Reshape to [1, {total}]"),
            ));
        }
        if s.height * s.width == 1 {
            return Ok(Value::Float(Act { rank: 2, ..act }));
        }
        Ok(Value::Dynamic(DynValue::Flattened(act)))
    }

    /// `Reshape` of a constant (the quantiser's bias `[C]` to `[C, 1, 1]`).
    fn reshape_constant(&mut self, n: &NodeProto) -> Result<Value<'a>, InputError> {
        let Value::Const(mut t) = self.need(n, 0, "data")? else {
            return Err(self.err(n, "internal: not a constant"));
        };
        let len = t.len();
        // ONNX's rules (a 0 copies the dimension, one -1 is inferred), as
        // for activations; the products are checked (fuzz_regressions.rs).
        let from: Vec<i64> = t.dims.iter().map(|&d| d as i64).collect();
        let dims = self.reshape_dims(n, &from)?;
        let new: Option<Vec<usize>> = dims
            .iter()
            .map(|&d| usize::try_from(d).ok().filter(|&d| d > 0))
            .collect();
        let count = new
            .as_ref()
            .and_then(|d| d.iter().try_fold(1usize, |p, &x| p.checked_mul(x)));
        match new {
            Some(d) if count == Some(len) => {
                t.dims = d;
                Ok(Value::Const(t))
            }
            _ => Err(self.err(
                n,
                format!("cannot reshape a constant of {len} values to {dims:?}"),
            )),
        }
    }

    /// `Concat` (channels) of float32 tensors: the words of each input's
    /// channels one after the other, copied (the `concat` layer copies an
    /// input whose quantisation is the output's).
    fn float_concat(&mut self, n: &NodeProto) -> Result<Value<'a>, InputError> {
        let mut inputs = Vec::with_capacity(n.input.len());
        for i in 0..n.input.len() {
            let v = self.need(n, i, "input")?;
            inputs.push(self.float_act(n, v)?);
        }
        let shape = self.concat_shape(n, &inputs)?;
        let quants = vec![FLOAT32_WORDS; inputs.len()];
        let rank = inputs.first().map_or(4, |a| a.rank);
        let op = Op::Concat(crate::workload::ir::Concat {
            input_quants: quants,
        });
        let a = self.push(n, node_name(n), inputs, op, shape, FLOAT32_WORDS, rank)?;
        Ok(Value::Float(a))
    }

    /// ONNX Runtime's float32 Softmax (MLAS) over the channels of `[1, N]`.
    fn float_softmax(&mut self, n: &NodeProto) -> Result<Value<'a>, InputError> {
        let v = self.need(n, 0, "input")?;
        let act = self.float_act(n, v)?;
        let logical = Act {
            shape: Shape::new(act.shape.channels / 2, act.shape.height, act.shape.width),
            ..act
        };
        self.check_softmax_axis(n, &logical, self.opset)?;
        let a = self.push(
            n,
            node_name(n),
            vec![act],
            Op::Softmax,
            act.shape,
            FLOAT32_WORDS,
            act.rank,
        )?;
        Ok(Value::Float(a))
    }
}
