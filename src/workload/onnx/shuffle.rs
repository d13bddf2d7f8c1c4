//! ShuffleNet's channel shuffle: `Reshape` of `[1, C, H, W]` to `[1, g,
//! C/g, H, W]`, `Transpose` with `perm = [0, 2, 1, 3, 4]`, `Reshape` back to
//! `[1, C, H, W]`, on integers or between DequantizeLinear and
//! QuantizeLinear with one quantisation (ONNX Runtime drops those pairs and
//! moves the integers): one `channel_shuffle` layer, a permutation on the
//! GLB unit. Any other Transpose is refused.

use super::proto::NodeProto;
use super::{Act, Importer, Value, attr_int, attr_ints, node_name};
use crate::error::InputError;
use crate::workload::ir::{FLOAT32_WORDS, Op};

/// What the refusals say is valid.
const VALID: &str = "valid: ShuffleNet's channel shuffle, Reshape of [1, C, H, W] to [1, g, C/g, \
                     H, W], Transpose with perm [0, 2, 1, 3, 4], Reshape back to [1, C, H, W]";

impl<'a> Importer<'a> {
    /// A Reshape: a step of a channel shuffle, or a flatten.
    pub(super) fn reshape(&mut self, n: &NodeProto) -> Result<Value<'a>, InputError> {
        let x = self.peek(n, 0, "data")?;
        if let Value::Chain(_) = x {
            let v = self.need(n, 0, "data")?;
            return self.chain_reshape(n, v);
        }
        let (act, dequantised, shuffle) = match x {
            Value::Shuffle {
                act,
                groups,
                transposed,
                dequantised,
            } => (act, dequantised, Some((groups, transposed))),
            Value::Quant(a) if a.rank == 4 => (a, false, None),
            Value::Dequant(a) if a.rank == 4 => (a, true, None),
            _ => return self.flatten(n, "Reshape"),
        };
        let s = act.shape;
        // A float32 tensor's words are two per channel.
        let float = act.quant == FLOAT32_WORDS;
        let channels = if float { s.channels / 2 } else { s.channels };
        let onnx = [1, channels as i64, s.height as i64, s.width as i64];
        let dims = self.reshape_dims(n, &onnx)?;
        let wrap = |a: Act| {
            if float {
                Value::Float(a)
            } else if dequantised {
                Value::Dequant(a)
            } else {
                Value::Quant(a)
            }
        };
        match (shuffle, dims.as_slice()) {
            (None, &[1, g, per, h, w])
                if g > 0
                    && per > 0
                    && g.checked_mul(per) == Some(onnx[1])
                    && [h, w] == [onnx[2], onnx[3]] =>
            {
                Ok(Value::Shuffle {
                    act,
                    groups: g as usize,
                    transposed: false,
                    dequantised,
                })
            }
            (None, _) => self.flatten(n, "Reshape"),
            (Some((_, false)), d) if d == onnx => Ok(wrap(act)),
            (Some((groups, true)), d) if d == onnx => {
                let op = Op::ChannelShuffle { groups };
                let out = self.push(n, node_name(n), vec![act], op, s, act.quant, 4)?;
                Ok(wrap(out))
            }
            (Some(_), d) => Err(self.err(
                n,
                format!("reshapes a grouped [1, g, C/g, H, W] tensor to {d:?}; {VALID}"),
            )),
        }
    }

    /// The target dimensions of a Reshape of a tensor of `onnx` dimensions
    /// (0 copies the input's dimension unless `allowzero`, -1 is inferred).
    pub(super) fn reshape_dims(&self, n: &NodeProto, onnx: &[i64]) -> Result<Vec<i64>, InputError> {
        let mut dims = self.constant(n, 1, "shape")?.ints();
        if attr_int(n, "allowzero", 0) == 0 {
            for (i, d) in dims.iter_mut().enumerate() {
                if *d == 0 {
                    *d = onnx.get(i).copied().unwrap_or(0);
                }
            }
        }
        if let Some(i) = dims.iter().position(|&d| d == -1) {
            let rest: i64 = dims
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .fold(1i64, |p, (_, d)| p.saturating_mul(*d));
            let total: i64 = onnx.iter().product();
            if rest > 0 {
                dims[i] = total / rest;
            }
        }
        Ok(dims)
    }

    /// A Transpose: only the swap of a channel shuffle's two channel axes.
    pub(super) fn transpose(&mut self, n: &NodeProto) -> Result<Value<'a>, InputError> {
        let perm = attr_ints(n, "perm").unwrap_or_default();
        match self.peek(n, 0, "data")? {
            Value::Shuffle {
                act,
                groups,
                transposed: false,
                dequantised,
            } if perm == [0, 2, 1, 3, 4] => Ok(Value::Shuffle {
                act,
                groups,
                transposed: true,
                dequantised,
            }),
            _ => Err(self.err(n, format!("Transpose with perm {perm:?}; {VALID}"))),
        }
    }
}
