//! The float32 operators of a dynamic model beyond `dynamic.rs`'s MaxPool,
//! Concat, plane means and Softmax (docs/onnx.md, item 20):
//!
//! - a windowed `AveragePool` on a float32 tensor: one `qlinear_avg_pool`
//!   layer whose input and output are float32 words (nothing is
//!   requantised; ONNX Runtime's float kernel, `ort_float::FloatAverage`);
//! - `BatchNormalization`, `Mul` or `Add` by a per-channel constant, and
//!   `Relu` on a float32 tensor: a `float_channel` layer; each such node
//!   that directly follows one (the only reader of its result) adds its
//!   step to it, so DenseNet's `BatchNormalization -> Mul -> Add -> Relu`
//!   is one pass;
//! - the first `Reshape` of ShuffleNet's channel shuffle on a float32
//!   tensor (`shuffle.rs` does the rest; its layer moves both words of each
//!   element).

use super::proto::NodeProto;
use super::{Act, Importer, Value, attr_int, node_name};
use crate::error::InputError;
use crate::numerics::ort_float::{
    ChannelStep, FloatChannel, NCHWC_BLOCK, float_batch_norm_constants,
};
use crate::workload::ir::{FLOAT32_WORDS, Op, QLinearAvgPool, Shape, TensorSource};

/// The `[C, H, W]` a float32 tensor of words `[2C, H, W]` stands for.
fn logical(a: &Act) -> Act {
    Act {
        shape: Shape::new(a.shape.channels / 2, a.shape.height, a.shape.width),
        ..*a
    }
}

impl<'a> Importer<'a> {
    /// `AveragePool` on a float32 tensor: the whole plane with no pads is a
    /// plane mean (`float_chain.rs`); any other window a float32
    /// `qlinear_avg_pool` layer.
    pub(super) fn float_avg_pool(&mut self, n: &NodeProto) -> Result<Value<'a>, InputError> {
        let v = self.need(n, 0, "X")?;
        let act = self.float_act(n, v)?;
        let (pool, count_include_pad, out) = self.pool_window(n, "AveragePool", &logical(&act))?;
        let s = logical(&act).shape;
        if pool.kernel == [s.height, s.width] && pool.padding.is_zero() {
            return self.chain_pool(n, "AveragePool", Value::Float(act));
        }
        if pool.ceil_mode {
            return Err(self.err(
                n,
                "ceil_mode 1 on a float32 AveragePool is not supported; valid: ceil_mode 0",
            ));
        }
        let op = Op::QLinearAvgPool(QLinearAvgPool {
            pool,
            count_include_pad,
            unfused: false,
            uint8_kernel: false,
        });
        let shape = Shape::new(2 * out.channels, out.height, out.width);
        let a = self.push(n, node_name(n), vec![act], op, shape, FLOAT32_WORDS, 4)?;
        Ok(Value::Float(a))
    }

    /// `LRN` on a float32 tensor: an `lrn` layer on float32 words (item 16's
    /// kernel without the quantisation; `powf` where ONNX Runtime uses
    /// Eigen's `pow`: not bit-exact, docs/onnx.md item 20).
    pub(super) fn float_lrn(&mut self, n: &NodeProto) -> Result<Value<'a>, InputError> {
        let v = self.need(n, 0, "X")?;
        let act = self.float_act(n, v)?;
        if act.rank != 4 {
            return Err(self.err(n, "LRN needs a 4-D [1, C, H, W] input"));
        }
        let op = Op::Lrn(self.lrn_params(n)?);
        let a = self.push(n, node_name(n), vec![act], op, act.shape, FLOAT32_WORDS, 4)?;
        Ok(Value::Float(a))
    }

    /// Whether `op` (on a float32 tensor) is `BatchNormalization`, `Mul` /
    /// `Add` by a constant or `Relu` (module docs).
    pub(super) fn is_float_channel(&self, n: &NodeProto, op: &str) -> bool {
        let constant = matches!(self.get(n, 1), Ok(Some(Value::Const(_))));
        match op {
            "BatchNormalization" | "Relu" => true,
            "Mul" | "Add" => constant && n.input.len() == 2,
            _ => false,
        }
    }

    /// One per-channel step on a float32 tensor: joined to the
    /// `float_channel` layer it reads, or a new one.
    pub(super) fn float_channel(
        &mut self,
        n: &NodeProto,
        op: &str,
    ) -> Result<Value<'a>, InputError> {
        let v = self.need(n, 0, "X")?;
        let act = self.float_act(n, v)?;
        let c = act.shape.channels / 2;
        let step = match op {
            "BatchNormalization" => self.float_batch_norm(n, &act)?,
            "Relu" => ChannelStep::Relu,
            _ => {
                let values = self.channel_constant(n, c)?;
                if op == "Mul" {
                    ChannelStep::Mul(values)
                } else {
                    ChannelStep::Add(values)
                }
            }
        };
        // The step joins the float_channel layer just made, when this node
        // is that layer's only reader.
        if let TensorSource::Layer(i) = act.source
            && i + 1 == self.layers.len()
            && n.input.first().is_some_and(|x| self.single_use(x))
            && let Op::FloatChannel(f) = &mut self.layers[i].op
        {
            f.steps.push(step);
            return Ok(Value::Float(act));
        }
        let op = Op::FloatChannel(FloatChannel { steps: vec![step] });
        let a = self.push(
            n,
            node_name(n),
            vec![act],
            op,
            act.shape,
            FLOAT32_WORDS,
            act.rank,
        )?;
        Ok(Value::Float(a))
    }

    /// BatchNormalization's parameters, folded as ONNX Runtime does.
    fn float_batch_norm(&self, n: &NodeProto, act: &Act) -> Result<ChannelStep, InputError> {
        let c = act.shape.channels / 2;
        // ONNX Runtime runs it in NCHWc form after a pool it runs so.
        let pool = match act.source {
            TensorSource::Layer(i) => {
                matches!(self.layers[i].op, Op::MaxPool(_) | Op::QLinearAvgPool(_))
            }
            TensorSource::Input => false,
        };
        let nchwc = pool && c.is_multiple_of(NCHWC_BLOCK);
        if attr_int(n, "training_mode", 0) != 0 || n.output.len() > 1 {
            return Err(self.err(
                n,
                "is in training mode (running statistics as outputs); valid: inference, \
                 training_mode = 0 and one output",
            ));
        }
        let mut p = Vec::with_capacity(4);
        for (index, what) in [(1, "scale"), (2, "B"), (3, "input_mean"), (4, "input_var")] {
            p.push(self.channel_floats(n, index, what, c)?);
        }
        let epsilon = super::attr(n, "epsilon").and_then(|a| a.f).unwrap_or(1e-5);
        if !(epsilon.is_finite() && epsilon >= 0.0) {
            return Err(self.err(n, format!("epsilon {epsilon}; valid: a finite value >= 0")));
        }
        let (scale, bias) =
            float_batch_norm_constants([&p[0], &p[1], &p[2], &p[3]], epsilon, nchwc);
        Ok(ChannelStep::BatchNorm { scale, bias })
    }

    /// A Mul's or Add's constant operand: one float32 value per channel
    /// (`[C]`, `[C, 1, 1]`, `[1, C, 1, 1]`) or one for all.
    fn channel_constant(&self, n: &NodeProto, c: usize) -> Result<Vec<f32>, InputError> {
        if let Ok(Value::Const(t)) = self.peek(n, 1, "B")
            && t.is_float()
            && t.len() == 1
        {
            return Ok(vec![t.floats()[0]; c]);
        }
        self.channel_floats(n, 1, "B", c)
    }

    /// `v`, the value of dynamic node `n`: a pending dynamic layer that no
    /// node reads (the graph output: DenseNet ends in a 1x1 convolution)
    /// is pushed now, as its float32 tensor.
    pub(super) fn dynamic_graph_output(
        &mut self,
        n: &NodeProto,
        v: Value<'a>,
    ) -> Result<Value<'a>, InputError> {
        let read = n
            .output
            .first()
            .is_none_or(|o| self.reader_ops.contains_key(o));
        match v {
            Value::Weighted(w) if !read && matches!(w.chain, super::Chain::Dynamic(_)) => {
                Ok(Value::Float(self.float_act(n, Value::Weighted(w))?))
            }
            v => Ok(v),
        }
    }

    /// Whether `n` (a Reshape of a float32 tensor) starts a channel
    /// shuffle: `[1, C, H, W]` to `[1, g, C/g, H, W]`.
    pub(super) fn float_shuffle_reshape(&self, n: &NodeProto) -> bool {
        let Ok(Some(v)) = self.get(n, 0) else {
            return false;
        };
        let s = match v {
            Value::Float(a) if a.rank == 4 => logical(a).shape,
            Value::Weighted(w) if w.rank == 4 => w.out_shape,
            _ => return false,
        };
        let onnx = [1, s.channels as i64, s.height as i64, s.width as i64];
        matches!(
            self.reshape_dims(n, &onnx).as_deref(),
            Ok(&[1, g, per, h, w]) if g > 0 && per > 0 && g * per == onnx[1] && [h, w] == [onnx[2], onnx[3]]
        )
    }

    /// The shuffle's first Reshape: the float32 tensor, grouped.
    pub(super) fn float_shuffle_start(&mut self, n: &NodeProto) -> Result<Value<'a>, InputError> {
        let v = self.need(n, 0, "data")?;
        let act = self.float_act(n, v)?;
        let s = logical(&act).shape;
        let onnx = [1, s.channels as i64, s.height as i64, s.width as i64];
        let groups = match self.reshape_dims(n, &onnx)?.as_slice() {
            &[1, g, ..] if g > 0 => g as usize,
            d => {
                return Err(self.err(
                    n,
                    format!("internal: not a channel shuffle's reshape {d:?}"),
                ));
            }
        };
        Ok(Value::Shuffle {
            act,
            groups,
            transposed: false,
            dequantised: false,
        })
    }
}
