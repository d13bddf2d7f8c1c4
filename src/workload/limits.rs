//! Resource limits: work a loader refuses up front instead of running out of
//! memory or time (docs/workload-format.md, "Limits").
//!
//! Every loader (workload TOML, ONNX, SCALE-Sim CSV, .npy) checks the sizes a
//! user wrote against [`Limits`] *before* it allocates or computes anything
//! of that size, and says which limit a refused input hit. The loaders also
//! run the reference executor on the default input while loading, so a limit
//! on memory alone would not do: [`Limits::max_network_ops`] bounds the
//! arithmetic too.
//!
//! All sizes are computed in `u64` with checked arithmetic ([`product`]): a
//! product of user sizes that overflows is reported as exceeding the limit,
//! never wrapped. Because every layer of a loaded network has passed
//! [`Budget::charge`], the IR's own counters ([`super::Layer::macs`],
//! [`super::Network::macs`], weight counts) stay below
//! [`Limits::max_network_ops`] and [`Limits::max_network_elements`], far from
//! `u64::MAX`.

use std::io::Read;
use std::path::Path;

use super::ir::{Layer, Op, Shape};
use crate::error::InputError;

/// Largest extent of one spatial dimension, kernel, stride or padding.
pub const MAX_DIMENSION: u64 = 1 << 20;

/// Largest file accsim reads as text (workload TOML, SCALE-Sim CSV) [bytes].
/// Tensors belong in .npy files, so real text files are kilobytes.
pub const MAX_TEXT_FILE_BYTES: u64 = 16 << 20;

/// Reads a text file of at most [`MAX_TEXT_FILE_BYTES`]; `what` names it
/// in errors ("workload file"). Reads through a bounded reader, so a device
/// or a growing file cannot make it read without end.
pub fn read_text(path: &Path, what: &str) -> Result<String, InputError> {
    let bytes = read_bounded(path, MAX_TEXT_FILE_BYTES, what)?;
    String::from_utf8(bytes).map_err(|e| {
        InputError::new(
            path,
            format!(
                "cannot read the {what}: byte {} is not UTF-8; valid: UTF-8 text",
                e.utf8_error().valid_up_to()
            ),
        )
    })
}

/// Reads at most `max` bytes of a regular file; a larger file, or anything
/// that is not a regular file, is refused with the limit named.
pub fn read_bounded(path: &Path, max: u64, what: &str) -> Result<Vec<u8>, InputError> {
    let fail = |m: String| InputError::new(path, m);
    let file =
        std::fs::File::open(path).map_err(|e| fail(format!("cannot read the {what}: {e}")))?;
    let meta = file
        .metadata()
        .map_err(|e| fail(format!("cannot read the {what}: {e}")))?;
    if !meta.is_file() {
        return Err(fail(format!(
            "cannot read the {what}: not a regular file; valid: a file of at most {max} bytes"
        )));
    }
    let too_big = |size: u64| {
        fail(format!(
            "the {what} has {size} bytes, more than the limit of {max} bytes"
        ))
    };
    if meta.len() > max {
        return Err(too_big(meta.len()));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| fail(format!("cannot read the {what}: {e}")))?;
    if bytes.len() as u64 > max {
        return Err(too_big(bytes.len() as u64));
    }
    Ok(bytes)
}

/// What a loaded network may cost. [`Limits::DEFAULT`] is what the CLI and
/// the plain `load*` functions use; tests and fuzz targets may lower it
/// through [`super::LoadOptions`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest single tensor (input, activation, weights, a calibration set)
    /// [elements].
    pub max_tensor_elements: u64,
    /// Most tensor elements a network holds: every layer's output (the loader
    /// keeps them as the reference result) plus every weight [elements].
    pub max_network_elements: u64,
    /// Most operations of one inference: multiply-accumulates, plus one per
    /// element a pooling window or an add reads. A `[float]` workload counts
    /// its fitting runs too.
    pub max_network_ops: u64,
    /// Most layers in a network.
    pub max_layers: u64,
}

impl Limits {
    /// The limits in force unless a caller lowers them.
    ///
    /// - 2^28 elements per tensor (512 MiB as i16; VGG-16's largest weight
    ///   matrix has 2^26.6);
    /// - 2^30 elements in a network (2 GiB as i16);
    /// - 10^11 operations (175 times MobileNet v1 1.0 at 224x224, six times VGG-16);
    /// - 10 000 layers.
    pub const DEFAULT: Limits = Limits {
        max_tensor_elements: 1 << 28,
        max_network_elements: 1 << 30,
        max_network_ops: 100_000_000_000,
        max_layers: 10_000,
    };

    /// Checks one tensor of `dims` (an overflowing product is too large);
    /// returns its element count.
    pub fn tensor(&self, dims: &[u64]) -> Result<u64, String> {
        match product(dims) {
            Some(n) if n <= self.max_tensor_elements => Ok(n),
            Some(n) => Err(format!(
                "a tensor of {} = {n} elements is larger than the limit of {} elements per tensor",
                show_dims(dims),
                self.max_tensor_elements
            )),
            None => Err(format!(
                "a tensor of {} elements is larger than the limit of {} elements per tensor",
                show_dims(dims),
                self.max_tensor_elements
            )),
        }
    }

    /// Checks a layer count.
    pub fn layers(&self, n: usize) -> Result<(), String> {
        if n as u64 > self.max_layers {
            return Err(format!(
                "the network has {n} layers, more than the limit of {}",
                self.max_layers
            ));
        }
        Ok(())
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits::DEFAULT
    }
}

/// The product of `dims`, or `None` on overflow.
pub fn product(dims: &[u64]) -> Option<u64> {
    dims.iter().try_fold(1u64, |a, &d| a.checked_mul(d))
}

fn show_dims(dims: &[u64]) -> String {
    let parts: Vec<String> = dims.iter().map(u64::to_string).collect();
    parts.join("x")
}

/// What one layer costs, in the units of [`Limits`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LayerCost {
    /// Output elements plus weight elements.
    pub elements: u64,
    /// Operations of one inference.
    pub ops: u64,
}

impl LayerCost {
    /// The cost of a layer of the IR from its shapes; `None` if a product
    /// overflows `u64`.
    pub fn of(layer: &Layer) -> Option<LayerCost> {
        let out = shape_len(layer.output_shape)?;
        let (weights, ops) = match &layer.op {
            Op::Conv2d(c) => {
                let [kh, kw] = c.kernel;
                let w = c.weights.len() as u64;
                let o = layer.output_shape;
                // A float32 output stores two words per channel.
                let channels = if layer.output_quant == super::ir::FLOAT32_WORDS {
                    o.channels / 2
                } else {
                    o.channels
                };
                let positions = product(&[channels as u64, o.height as u64, o.width as u64])?;
                (
                    w,
                    product(&[
                        positions,
                        c.in_channels_per_group() as u64,
                        kh as u64,
                        kw as u64,
                    ])?,
                )
            }
            Op::FullyConnected(f) => {
                let w = f.weights.len() as u64;
                (w, w)
            }
            Op::MaxPool(p) | Op::AvgPool(p) => {
                (0, product(&[out, p.kernel[0] as u64, p.kernel[1] as u64])?)
            }
            Op::QLinearAvgPool(p) => (
                0,
                product(&[out, p.pool.kernel[0] as u64, p.pool.kernel[1] as u64])?,
            ),
            Op::GlobalAvgPool { .. } => (0, shape_len(layer.input_shape)?),
            Op::Add(_) => (0, out.checked_mul(2)?),
            // Three passes over the elements: maximum, sum, division.
            Op::Softmax => (0, out.checked_mul(3)?),
            Op::Flatten | Op::ChannelShuffle { .. } | Op::Concat(_) | Op::Lookup(_) => (0, out),
            // A square, two window updates, a power and a product per element.
            Op::Lrn(_) => (0, out.checked_mul(5)?),
            Op::Sum(s) => (0, out.checked_mul(s.input_quants.len() as u64)?),
            // A product and a sum (batch norm) or one operation per element.
            Op::Channel(_) => (0, out.checked_mul(2)?),
            // Its steps' operations per float32 element (two words each).
            Op::FloatChannel(f) => (0, (out / 2).checked_mul(f.operations())?),
            // A minimum and a maximum per element read; a division, a
            // rounding and an addition per element quantised.
            Op::DynamicRange => (0, shape_len(layer.input_shape)?.checked_mul(2)?),
            Op::DynamicQuantize => (0, out.checked_mul(3)?),
        };
        Some(LayerCost {
            elements: out.checked_add(weights)?,
            ops,
        })
    }
}

/// Elements of `shape`, or `None` on overflow.
pub fn shape_len(shape: Shape) -> Option<u64> {
    product(&[
        shape.channels as u64,
        shape.height as u64,
        shape.width as u64,
    ])
}

/// Running totals of a network being loaded, checked layer by layer.
#[derive(Debug, Clone)]
pub struct Budget {
    pub limits: Limits,
    elements: u64,
    ops: u64,
    /// How many times the loader evaluates each layer (1, or more for a
    /// `[float]` workload's fitting runs).
    runs: u64,
}

impl Budget {
    /// A budget that already holds the network input.
    pub fn new(limits: Limits, input: Shape) -> Result<Budget, String> {
        let dims = [
            input.channels as u64,
            input.height as u64,
            input.width as u64,
        ];
        let elements = limits.tensor(&dims)?;
        Ok(Budget {
            limits,
            elements,
            ops: 0,
            runs: 1,
        })
    }

    /// Counts each layer's operations `runs` times (a `[float]` workload
    /// also runs its float network on the fitting samples).
    pub fn with_runs(mut self, runs: u64) -> Budget {
        self.runs = runs.max(1);
        self
    }

    /// Checks a layer's output shape and weights against the per-tensor
    /// limit, before anything of that size is allocated.
    pub fn check_tensors(&self, output: Shape, weight_dims: &[u64]) -> Result<(), String> {
        self.limits.tensor(&[
            output.channels as u64,
            output.height as u64,
            output.width as u64,
        ])?;
        if !weight_dims.is_empty() {
            self.limits.tensor(weight_dims)?;
        }
        Ok(())
    }

    /// Adds a layer; refuses it if the network would exceed a limit. The
    /// message does not name the layer: the caller's error context does.
    pub fn charge(&mut self, cost: Option<LayerCost>) -> Result<(), String> {
        let cost = cost.ok_or_else(|| {
            format!(
                "the layer's size overflows a 64-bit count; the limits are {} operations and {} elements",
                self.limits.max_network_ops, self.limits.max_network_elements
            )
        })?;
        let ops = cost
            .ops
            .checked_mul(self.runs)
            .and_then(|o| o.checked_add(self.ops));
        match ops {
            Some(total) if total <= self.limits.max_network_ops => self.ops = total,
            _ => {
                return Err(format!(
                    "the layer needs {} operations (MACs and pooling reads){}; with the layers before it the network would need more than the limit of {} operations per inference",
                    cost.ops,
                    if self.runs > 1 {
                        format!(", run {} times to fit fractional lengths", self.runs)
                    } else {
                        String::new()
                    },
                    self.limits.max_network_ops
                ));
            }
        }
        match self.elements.checked_add(cost.elements) {
            Some(total) if total <= self.limits.max_network_elements => self.elements = total,
            _ => {
                return Err(format!(
                    "the layer holds {} elements (output and weights); with the tensors before it the network would hold more than the limit of {} elements",
                    cost.elements, self.limits.max_network_elements
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overflowing_products_are_refused_not_wrapped() {
        let l = Limits::DEFAULT;
        assert_eq!(product(&[1 << 40, 1 << 30]), None);
        let e = l.tensor(&[1 << 40, 1 << 30]).expect_err("overflow");
        assert!(e.contains("1099511627776x1073741824"), "{e}");
        assert_eq!(l.tensor(&[2, 3, 4]), Ok(24));
    }

    #[test]
    fn budget_sums_layers_and_names_the_limit() {
        let limits = Limits {
            max_network_ops: 100,
            max_network_elements: 50,
            ..Limits::DEFAULT
        };
        let mut b = Budget::new(limits, Shape::new(1, 2, 2)).expect("input fits");
        let cost = |elements, ops| Some(LayerCost { elements, ops });
        b.charge(cost(10, 60)).expect("fits");
        let e = b.charge(cost(10, 60)).expect_err("ops");
        assert!(
            e.contains("needs 60 operations") && e.contains("limit of 100 operations"),
            "{e}"
        );
        let e = b.charge(cost(40, 1)).expect_err("elements");
        assert!(e.contains("limit of 50 elements"), "{e}");
        let e = b.charge(None).expect_err("overflow");
        assert!(e.contains("overflows"), "{e}");
    }

    #[test]
    fn fitting_runs_multiply_the_operations() {
        let limits = Limits {
            max_network_ops: 100,
            ..Limits::DEFAULT
        };
        let mut b = Budget::new(limits, Shape::new(1, 1, 1))
            .expect("input fits")
            .with_runs(17);
        let e = b
            .charge(Some(LayerCost {
                elements: 1,
                ops: 10,
            }))
            .expect_err("170 > 100");
        assert!(e.contains("run 17 times"), "{e}");
    }
}
