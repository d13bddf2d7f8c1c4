//! How each layer computes on the PE array: its MAC mode (SPEC section 2),
//! which operands the PEs reduce to their high byte, and the width at which
//! every tensor is stored and moved.
//!
//! Without a precision assignment, a layer's mode follows its operands'
//! storage types (8-bit types: 8 bits; 16-bit: 16). With one
//! (docs/precision.md), the layers run at the assigned modes: weights reduced
//! once, 8-bit inputs reduced as the PEs read them, the output layer's output
//! reduced when the assignment says 8 bits.
//!
//! A tensor is stored at the widest width any reader needs. A weighted layer
//! needs its mode's input width; a max pool or flatten needs what its own
//! output needs (both commute with taking the high byte); any other reader
//! (average pools, additions) needs the full type. "8-bit data moves half the
//! bits of 16-bit data": bytes on buses and in memories follow these widths.

use crate::arch::MacDatapath;
use crate::numerics::mac::{MacMode, Width};
use crate::numerics::precision::PrecisionAssignment;
use crate::reference::precision::{PrecisionNetwork, weighted_layers};
use crate::workload::ir::{Layer, Network, Op, TensorSource};

/// What one layer does numerically on the array.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LayerNumerics {
    /// MAC mode of a weighted layer (`None` for the others).
    pub mode: Option<MacMode>,
    /// The PEs use the high byte of each input word.
    pub reduce_input: bool,
    /// The output stage keeps the high byte of each output word.
    pub reduce_output: bool,
    /// Bytes per weight moved (programmable weights).
    pub weight_bytes: u64,
    /// The PEs run the layer in their float32 mode (`engine::float_mode`).
    pub float32: bool,
}

impl LayerNumerics {
    /// What the PEs' MACs run (`None` for layers without MACs).
    pub fn datapath(&self) -> Option<MacDatapath> {
        self.mode.map(|m| {
            if self.float32 {
                MacDatapath::Float32
            } else {
                MacDatapath::Integer(m)
            }
        })
    }
}

/// Whether the PEs run `layer` in their float32 mode.
fn runs_float32(layer: &Layer) -> bool {
    matches!(&layer.op, Op::Conv2d(c) if c.epilogue.output_stage.requant.is_float_sum())
}

/// The layers to run and their numerics.
pub(crate) struct NumericsPlan {
    /// The network's layers, weights reduced where the assignment says so.
    pub layers: Vec<Layer>,
    pub per_layer: Vec<LayerNumerics>,
    /// Bytes per word of each tensor: index 0 the network input, `i + 1` layer `i`'s output.
    pub storage_bytes: Vec<u64>,
}

fn width_of_bits(bits: u32) -> Width {
    if bits <= 8 { Width::W8 } else { Width::W16 }
}

fn bytes(w: Width) -> u64 {
    u64::from(w.bits() / 8)
}

fn index(s: TensorSource) -> usize {
    match s {
        TensorSource::Input => 0,
        TensorSource::Layer(i) => i + 1,
    }
}

/// The numerics of `network`, at `assignment` when given.
pub(crate) fn plan(
    network: &Network,
    assignment: Option<&PrecisionAssignment>,
) -> Result<NumericsPlan, String> {
    let (layers, per_layer) = match assignment {
        None => (network.layers.clone(), stored_numerics(network)),
        Some(a) => assigned_numerics(network, a)?,
    };
    let storage_bytes = storage_bytes(network, &layers, &per_layer);
    Ok(NumericsPlan {
        layers,
        per_layer,
        storage_bytes,
    })
}

/// Each layer at the widths its stored quantisation gives.
fn stored_numerics(network: &Network) -> Vec<LayerNumerics> {
    network
        .layers
        .iter()
        .map(|l| {
            let mode = l.weight_quant().map(|wq| {
                MacMode::new(
                    width_of_bits(l.input_quant.dtype().bits()),
                    width_of_bits(wq.dtype().bits()),
                )
            });
            LayerNumerics {
                mode,
                reduce_input: false,
                reduce_output: false,
                weight_bytes: l.weight_quant().map_or(1, |q| q.dtype().bytes()),
                float32: runs_float32(l),
            }
        })
        .collect()
}

/// The layers with their weights reduced as `a` says, and their numerics.
fn assigned_numerics(
    network: &Network,
    a: &PrecisionAssignment,
) -> Result<(Vec<Layer>, Vec<LayerNumerics>), String> {
    let p = PrecisionNetwork::new(network, a)?;
    let weighted = weighted_layers(network);
    let output_layer = weighted.last().copied();
    let per_layer = (0..network.layers.len())
        .map(|i| {
            let mode = p.mode(i);
            LayerNumerics {
                mode,
                reduce_input: mode.is_some_and(|m| m.input == Width::W8),
                reduce_output: Some(i) == output_layer && a.output() == Width::W8,
                weight_bytes: mode.map_or(2, |m| bytes(m.weight)),
                float32: runs_float32(&p.layers()[i]),
            }
        })
        .collect();
    Ok((p.layers().to_vec(), per_layer))
}

/// Bytes per word of each tensor (index 0 the network input, `i + 1` layer
/// `i`'s output), from the readers backwards.
fn storage_bytes(network: &Network, layers: &[Layer], per_layer: &[LayerNumerics]) -> Vec<u64> {
    let n = network.layers.len();
    let full = |t: usize| -> u64 {
        if t == 0 {
            network.input_quant.dtype().bytes()
        } else {
            network.layers[t - 1].output_quant.dtype().bytes()
        }
    };
    let mut need: Vec<Option<u64>> = vec![None; n + 1];
    for i in (0..n).rev() {
        let layer = &layers[i];
        let own = i + 1;
        // Layer i's own output: a reduced output layer stores high bytes.
        let own_bytes = if per_layer[i].reduce_output {
            1
        } else {
            need[own].unwrap_or_else(|| full(own))
        };
        need[own] = Some(own_bytes.min(full(own)));
        for &s in &layer.inputs {
            let t = index(s);
            let wanted = match (&layer.op, per_layer[i].mode) {
                (_, Some(mode)) => bytes(mode.input),
                (Op::MaxPool(_) | Op::Flatten, None) => own_bytes,
                _ => full(t),
            };
            need[t] = Some(need[t].map_or(wanted, |w| w.max(wanted)));
        }
    }
    // Every reader of a tensor stored at 8 bits either reduces it itself (an
    // 8-bit-input layer) or passes the reduction on (max pool, flatten), or
    // reads the reduced output layer's output, so the store may keep full
    // words: the values read are the same.
    (0..=n)
        .map(|t| need[t].unwrap_or_else(|| full(t)).clamp(1, full(t).max(1)))
        .collect()
}
