//! QOperator form: the `com.microsoft` contrib operators ONNX Runtime's
//! `quantize_static(quant_format=QOperator)` writes, each mapped onto the IR
//! layer the QDQ path builds for the same computation (ONNX Runtime fuses
//! the QDQ groups into these very kernels, docs/onnx.md):
//!
//! ```text
//!  QGemm (quantised output)                 => fc        (as DQ -> Gemm -> Q)
//!  QLinearAdd (equal shapes)                => add       (QLinearAdd rule, uint8 and int8)
//!  QLinearAdd, QLinearMul (B per channel)   => channel_add, channel_mul (channel_ops.rs)
//!  QLinearAveragePool                       => qlinear_avg_pool
//!  QLinearGlobalAveragePool (channels first) => qlinear_avg_pool (the whole plane)
//!  QLinearSoftmax (over the channels)       => softmax
//!  QLinearConcat (channels)                 => concat (float_ops.rs)
//!  QLinearLeakyRelu, QLinearSigmoid         => leaky_relu, sigmoid (float_ops.rs)
//! ```
//!
//! The contrib operators accsim does not import are refused with the reason
//! ([`refusal_reason`]).

use super::proto::NodeProto;
use super::{Act, Chain, Importer, Value, attr, attr_int, node_name};
use crate::error::InputError;
use crate::numerics::TensorQuant;
use crate::workload::ir::{Add, AddRule, Op, QLinearAvgPool};

/// The `com.microsoft` operators the importer understands.
pub(super) const SUPPORTED_MS: &[&str] = &[
    "QGemm",
    "QLinearAdd",
    "QLinearMul",
    "QLinearAveragePool",
    "QLinearConcat",
    "QLinearLeakyRelu",
    "QLinearSigmoid",
    "QLinearGlobalAveragePool",
    "QLinearSoftmax",
];

/// Why an operator the ONNX Runtime quantiser writes is not imported, for
/// the refusal's line (`domain` is empty for the default domain).
pub(super) fn refusal_reason(domain: &str, op: &str) -> Option<&'static str> {
    let ms = domain == "com.microsoft";
    match op {
        "DynamicQuantizeMatMul" if ms => Some(
            "ONNX Runtime's own fusion of DynamicQuantizeLinear -> MatMulInteger -> Cast -> Mul \
             -> Add, found only in a graph it optimised; valid: the model quantize_dynamic \
             wrote, which accsim imports",
        ),
        _ => None,
    }
}

impl<'a> Importer<'a> {
    /// Dispatches a `com.microsoft` node; `None` for an operator this
    /// module does not import.
    pub(super) fn contrib(
        &mut self,
        n: &NodeProto,
        op: &str,
    ) -> Option<Result<Value<'a>, InputError>> {
        Some(match op {
            "QGemm" => self.qgemm(n),
            "QLinearAdd" => match self.qlinear_channel(n, true) {
                Some(v) => v,
                None => self.qlinear_add(n),
            },
            "QLinearMul" => match self.qlinear_channel(n, false) {
                Some(v) => v,
                None => Err(self.err(
                    n,
                    "multiplies two activations; valid: B a per-channel constant (DenseNet's \
                     scale layer), as quantize_static writes it",
                )),
            },
            "QLinearAveragePool" => self.qlinear_pool(n, "AveragePool"),
            "QLinearGlobalAveragePool" => self.qlinear_pool(n, "GlobalAveragePool"),
            "QLinearSoftmax" => self.qlinear_softmax(n),
            "QLinearConcat" => self.qlinear_concat(n),
            "QLinearLeakyRelu" | "QLinearSigmoid" => self.qlinear_unary(n, op),
            _ => return None,
        })
    }

    /// A quantised activation at input `index`, read with the scale at `s`
    /// and the zero point at `z`, which must be the tensor's own.
    pub(super) fn quant_input(
        &mut self,
        n: &NodeProto,
        (index, s, z): (usize, usize, usize),
        what: &str,
    ) -> Result<Act, InputError> {
        let Value::Quant(x) = self.need(n, index, what)? else {
            return Err(self.err(
                n,
                format!("{what} must be a quantised (uint8/int8) activation"),
            ));
        };
        let q = self.quant_at(n, s, z, what)?;
        self.check_input_quant(n, &x, &q)?;
        Ok(x)
    }

    /// QGemm with a quantised output: ONNX Runtime's `DQ -> Gemm -> Q`
    /// fusion target, requantised with `alpha * a_scale * b_scale[n] /
    /// y_scale` (float32, that order; alpha must be 1).
    fn qgemm(&mut self, n: &NodeProto) -> Result<Value<'a>, InputError> {
        let alpha = attr(n, "alpha").and_then(|a| a.f).unwrap_or(1.0);
        let beta = attr(n, "beta").and_then(|a| a.f).unwrap_or(1.0);
        if attr_int(n, "transA", 0) != 0 || alpha != 1.0 || beta != 1.0 {
            return Err(self.err(
                n,
                format!(
                    "transA {}, alpha {alpha}, beta {beta}; valid: transA = 0, alpha = 1, beta = 1",
                    attr_int(n, "transA", 0)
                ),
            ));
        }
        if self.get(n, 7)?.is_none() {
            return Err(self.err(
                n,
                "has no y_scale, so its output is float; valid: y_scale and y_zero_point \
                 (a quantised output, as quantize_static writes it)",
            ));
        }
        let a = self.quant_input(n, (0, 1, 2), "A")?;
        let b = self.constant(n, 3, "B")?;
        let wq = self.qoperator_weights(n, &b, 4, 5)?;
        let yq = self.quant_at(n, 7, 8, "y")?;
        let w = self.fc_matrix(n, &b, attr_int(n, "transB", 0) == 1)?;
        let out = w.dim().0;
        let bias = self.bias(n, self.opt_constant(n, 6, "C")?.map(Value::Const), out)?;
        let Value::Weighted(p) = self.weighted_fc(n, a, w, wq, bias, Chain::Qdq)? else {
            return Err(self.err(n, "internal: not a weighted layer"));
        };
        self.finish_weighted(n, *p, yq)
    }

    /// QLinearAdd of two activations of one shape (no broadcasting): the
    /// kernel ONNX Runtime fuses uint8 QDQ Adds into; written directly it
    /// runs for int8 too (docs/onnx.md).
    fn qlinear_add(&mut self, n: &NodeProto) -> Result<Value<'a>, InputError> {
        let a = self.quant_input(n, (0, 1, 2), "A")?;
        let b = self.quant_input(n, (3, 4, 5), "B")?;
        let c = self.quant_at(n, 6, 7, "C")?;
        if a.shape != b.shape || a.rank != b.rank {
            return Err(self.err(
                n,
                format!(
                    "adds tensors of shapes {} and {}; accsim needs equal shapes (no broadcasting)",
                    a.shape, b.shape
                ),
            ));
        }
        self.check_same_type(n, &a.quant, &c, "C")?;
        let op = Op::Add(Add {
            rule: AddRule::QLinearAdd,
            input_quants: [a.quant, b.quant],
        });
        let out = self.push(n, node_name(n), vec![a, b], op, a.shape, c, a.rank)?;
        Ok(Value::Quant(out))
    }

    /// QLinearAveragePool / QLinearGlobalAveragePool (`op`: the float
    /// operator's name), channels first.
    fn qlinear_pool(&mut self, n: &NodeProto, op: &str) -> Result<Value<'a>, InputError> {
        if attr_int(n, "channels_last", 0) != 0 {
            return Err(self.err(
                n,
                "channels_last = 1 (an NHWC tensor); valid: channels_last = 0 (NCHW, as \
                 quantize_static writes it)",
            ));
        }
        let x = self.quant_input(n, (0, 1, 2), "X")?;
        let yq = self.quant_at(n, 3, 4, "Y")?;
        self.check_same_type(n, &x.quant, &yq, "Y")?;
        let (pool, count_include_pad, out_shape) = self.pool_window(n, op, &x)?;
        let layer = Op::QLinearAvgPool(QLinearAvgPool {
            pool,
            count_include_pad,
            unfused: false,
            uint8_kernel: false,
        });
        let out = self.push(n, node_name(n), vec![x], layer, out_shape, yq, 4)?;
        Ok(Value::Quant(out))
    }

    /// QLinearSoftmax over the channels; its `opset` attribute (which
    /// ONNX Runtime requires) decides the axis rules, as Softmax's opset does.
    fn qlinear_softmax(&mut self, n: &NodeProto) -> Result<Value<'a>, InputError> {
        let x = self.quant_input(n, (0, 1, 2), "X")?;
        let yq = self.quant_at(n, 3, 4, "Y")?;
        let Some(opset) = attr(n, "opset").and_then(|a| a.i) else {
            return Err(self.err(
                n,
                "has no `opset` attribute; valid: the opset of the Softmax it replaces \
                 (ONNX Runtime requires it)",
            ));
        };
        self.check_softmax_axis(n, &x, opset)?;
        self.check_same_type(n, &x.quant, &yq, "Y")?;
        let out = self.push(n, node_name(n), vec![x], Op::Softmax, x.shape, yq, x.rank)?;
        Ok(Value::Quant(out))
    }

    /// Refuses an output type other than the input's (ONNX Runtime's kernels
    /// take one type for both).
    pub(super) fn check_same_type(
        &self,
        n: &NodeProto,
        input: &TensorQuant,
        output: &TensorQuant,
        what: &str,
    ) -> Result<(), InputError> {
        if input.dtype() != output.dtype() {
            return Err(self.err(
                n,
                format!(
                    "{what}'s zero point is {} but the input is {}; valid: the input's type",
                    output.dtype().numpy_name(),
                    input.dtype().numpy_name()
                ),
            ));
        }
        Ok(())
    }
}
