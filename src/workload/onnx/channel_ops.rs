//! Per-channel operations on one quantised tensor (DenseNet-121: the batch
//! norms after a Concat, which no convolution precedes to fold them into,
//! and its scale layer, a Mul and an Add by `[C, 1, 1]` constants), in both
//! forms, each one `channel` layer (docs/onnx.md, item 19):
//!
//! ```text
//!  DQ ─ BatchNormalization (float32 parameters or DQ'd constants) ─ Q  => batch_norm
//!  DQ(a), DQ(b: per-channel constant) ─ Mul ─ Q                        => channel_mul
//!  DQ(a), DQ(b: per-channel constant) ─ Add ─ Q                        => channel_add
//!  com.microsoft.QLinearMul (B a per-channel constant)                 => channel_mul
//!  com.microsoft.QLinearAdd (B a per-channel constant)                 => channel_add
//! ```
//!
//! ONNX Runtime runs the BatchNormalization in float32 between the
//! DequantizeLinear and the QuantizeLinear; it fuses a uint8 QDQ Mul or Add
//! into QLinearMul / QLinearAdd and leaves an int8 one unfused, in float32
//! (the rule `numerics::ort_channel` follows either way).

use super::proto::NodeProto;
use super::tensor::Tensor;
use super::{Act, Importer, Value, attr, attr_int, int_type, node_name};
use crate::error::InputError;
use crate::numerics::{IntType, TensorQuant};
use crate::workload::ir::{ChannelOp, Op};

impl<'a> Importer<'a> {
    /// `DQ -> BatchNormalization` (inference), waiting for its
    /// QuantizeLinear.
    pub(super) fn batch_norm(&mut self, n: &NodeProto) -> Result<Value<'a>, InputError> {
        if attr_int(n, "training_mode", 0) != 0 || n.output.len() > 1 {
            return Err(self.err(
                n,
                "is in training mode (running statistics as outputs); valid: inference, \
                 training_mode = 0 and one output",
            ));
        }
        let Value::Dequant(input) = self.need(n, 0, "X")? else {
            return Err(self.err(
                n,
                "BatchNormalization needs a dequantised activation: valid is DequantizeLinear -> \
                 BatchNormalization -> QuantizeLinear (a batch norm after a Conv is folded into \
                 it by ONNX Runtime's quant_pre_process before quantising)",
            ));
        };
        let c = input.shape.channels;
        let mut params = Vec::with_capacity(4);
        for (index, what) in [(1, "scale"), (2, "B"), (3, "input_mean"), (4, "input_var")] {
            params.push(self.channel_floats(n, index, what, c)?);
        }
        let epsilon = attr(n, "epsilon").and_then(|a| a.f).unwrap_or(1e-5);
        if !(epsilon.is_finite() && epsilon >= 0.0) {
            return Err(self.err(n, format!("epsilon {epsilon}; valid: a finite value >= 0")));
        }
        let [scale, bias, mean, var]: [Vec<f32>; 4] = params
            .try_into()
            .map_err(|_| self.err(n, "internal: four parameters"))?;
        Ok(Value::Channel {
            node: node_name(n),
            input,
            op: ChannelOp::BatchNorm {
                scale,
                bias,
                mean,
                var,
                epsilon,
            },
        })
    }

    /// Input `index` of `n` as `channels` float32 values: a float constant,
    /// or a dequantised one (`f32(q - z) * s`, as DequantizeLinear computes).
    pub(super) fn channel_floats(
        &self,
        n: &NodeProto,
        index: usize,
        what: &str,
        channels: usize,
    ) -> Result<Vec<f32>, InputError> {
        let values = match self.peek(n, index, what)? {
            Value::Const(t) if t.is_float() => t.floats(),
            Value::DqConst(d) => {
                let at = |i: usize| if d.axis.is_some() { i } else { 0 };
                let q = d.q.ints();
                q.iter()
                    .enumerate()
                    .map(|(i, &q)| {
                        let (s, z) = (d.scales[at(i)], d.zero_points[at(i)]);
                        (q - z) as i32 as f32 * s
                    })
                    .collect()
            }
            _ => {
                return Err(self.err(
                    n,
                    format!(
                        "{what} must be a float constant or a dequantised constant (one value \
                         per channel)"
                    ),
                ));
            }
        };
        if values.len() != channels {
            return Err(self.err(
                n,
                format!(
                    "{what} has {} values; valid: one per channel ({channels})",
                    values.len()
                ),
            ));
        }
        Ok(values)
    }

    /// `DQ(a), DQ(b) -> Mul | Add` where `b` is a per-channel constant:
    /// waiting for its QuantizeLinear; `None` when neither operand is a
    /// dequantised constant (the caller's other patterns).
    pub(super) fn channel_arith(
        &mut self,
        n: &NodeProto,
        add: bool,
    ) -> Option<Result<Value<'a>, InputError>> {
        let (a, b) = (self.peek(n, 0, "A").ok()?, self.peek(n, 1, "B").ok()?);
        let (input, d) = match (a, b) {
            (Value::Dequant(x), Value::DqConst(d)) | (Value::DqConst(d), Value::Dequant(x)) => {
                (x, d)
            }
            _ => return None,
        };
        let operand = self.dq_operand(n, &input, &d.q, (&d.scales, &d.zero_points));
        Some(operand.map(|(operand, operand_quant)| Value::Channel {
            node: node_name(n),
            input,
            op: ChannelOp::Arith {
                add,
                fused: false,
                operand,
                operand_quant,
            },
        }))
    }

    /// A dequantised per-channel constant's stored integers and
    /// quantisation (one scale and zero point: QLinearMul and QLinearAdd
    /// take one of each).
    fn dq_operand(
        &self,
        n: &NodeProto,
        input: &Act,
        q: &Tensor<'a>,
        (scales, zero_points): (&[f32], &[i64]),
    ) -> Result<(Vec<i32>, TensorQuant), InputError> {
        let (&[scale], &[zero_point]) = (scales, zero_points) else {
            return Err(self.err(
                n,
                format!(
                    "the constant has {} scales; valid: one scale and zero point (per tensor)",
                    scales.len()
                ),
            ));
        };
        let Some(dtype) = int_type(q.dtype) else {
            return Err(self.err(
                n,
                "the constant must be uint8 or int8 behind its DequantizeLinear",
            ));
        };
        let quant = TensorQuant::Affine {
            dtype,
            scale,
            zero_point: zero_point as i32,
        };
        Ok((self.channel_operand(n, input, q, dtype)?, quant))
    }

    /// The stored integers of a per-channel operand of `input`: shape
    /// `[C, 1, 1]` or `[1, C, 1, 1]` (`[C]` or `[1, C]` for a `[1, C]`
    /// input), or one value; of the input's type.
    fn channel_operand(
        &self,
        n: &NodeProto,
        input: &Act,
        t: &Tensor<'a>,
        dtype: IntType,
    ) -> Result<Vec<i32>, InputError> {
        let c = input.shape.channels;
        let per_channel = if input.rank == 4 {
            matches!(t.dims[..], [ch, 1, 1] | [1, ch, 1, 1] if ch == c)
        } else {
            matches!(t.dims[..], [ch] | [1, ch] if ch == c)
        };
        if !(per_channel || t.len() == 1) {
            let shapes = if input.rank == 4 {
                format!("[{c}, 1, 1] or [1, {c}, 1, 1] for the [1, C, H, W] input")
            } else {
                format!("[{c}] or [1, {c}] for the [1, N] input")
            };
            return Err(self.err(
                n,
                format!(
                    "the constant operand has shape {:?}; valid: one value per channel ({shapes}) \
                     or one value",
                    t.dims
                ),
            ));
        }
        if dtype != input.quant.dtype() {
            return Err(self.err(
                n,
                format!(
                    "the constant operand is {} but the activation is {}; valid: one type for both",
                    dtype.numpy_name(),
                    input.quant.dtype().numpy_name()
                ),
            ));
        }
        Ok(t.ints().into_iter().map(|v| v as i32).collect())
    }

    /// `com.microsoft.QLinearMul` / `QLinearAdd` whose B is a per-channel
    /// constant (`A, A_scale, A_zero_point, B, B_scale, B_zero_point,
    /// C_scale, C_zero_point`); `None` when B is not a constant.
    pub(super) fn qlinear_channel(
        &mut self,
        n: &NodeProto,
        add: bool,
    ) -> Option<Result<Value<'a>, InputError>> {
        let Ok(Value::Const(b)) = self.peek(n, 3, "B") else {
            return None;
        };
        Some(self.push_qlinear_channel(n, add, &b))
    }

    /// [`Self::qlinear_channel`]'s layer, B being the constant `b`.
    fn push_qlinear_channel(
        &mut self,
        n: &NodeProto,
        add: bool,
        b: &Tensor<'a>,
    ) -> Result<Value<'a>, InputError> {
        let a = self.quant_input(n, (0, 1, 2), "A")?;
        let bq = self.quant_at(n, 4, 5, "B")?;
        let cq = self.quant_at(n, 6, 7, "C")?;
        self.check_same_type(n, &a.quant, &cq, "C")?;
        let operand = self.channel_operand(n, &a, b, bq.dtype())?;
        let op = Op::Channel(ChannelOp::Arith {
            add,
            fused: true,
            operand,
            operand_quant: bq,
        });
        Ok(Value::Quant(self.push(
            n,
            node_name(n),
            vec![a],
            op,
            a.shape,
            cq,
            a.rank,
        )?))
    }

    /// The QuantizeLinear `n` (quantisation `q`) ending a pending
    /// per-channel operation. ONNX Runtime fuses a uint8 Mul or Add into
    /// QLinearMul / QLinearAdd and runs an int8 one in float32.
    pub(super) fn finish_channel(
        &mut self,
        n: &NodeProto,
        node: String,
        input: Act,
        mut op: ChannelOp,
        q: TensorQuant,
    ) -> Result<Value<'a>, InputError> {
        if let ChannelOp::Arith { fused, .. } = &mut op {
            self.check_same_type(n, &input.quant, &q, "y")?;
            *fused = q.dtype() == IntType::Uint8;
        }
        let out = self.push(
            n,
            node,
            vec![input],
            Op::Channel(op),
            input.shape,
            q,
            input.rank,
        )?;
        Ok(Value::Quant(out))
    }
}
