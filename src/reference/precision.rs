//! The reference executor at a per-layer precision (SPEC section 2, PELUSO).
//!
//! A precision assignment is a transformation of a 16-bit dynamic
//! fixed-point network, not a second arithmetic: weighted layer `k` with
//! 8-bit weights computes with its weights reduced to their high bytes
//! (`mac::reduce`, done once here), with an 8-bit input it reads its input
//! tensor reduced the same way, and an 8-bit output reduces the last weighted
//! layer's output. Everything else (exact sums, bias, the output stage with
//! the layer's unchanged shift) is the ordinary reference executor
//! (`execute_layer`), so "bit-exact at a precision" has the same single
//! meaning as without one. docs/precision.md states the rules.

use crate::numerics::mac::{MacCounts, MacMode, Width, reduce};
use crate::numerics::precision::PrecisionAssignment;
use crate::numerics::{TensorQuant, WeightQuant};
use crate::workload::ir::{Activations, Layer, Network, Numerics, Op, TensorSource};

use super::{Execution, execute_layer, execute_layer_batch, zero_operand_macs};

/// Indices (into `network.layers`) of the weighted layers, conv and fc, in
/// order: precision index `k` refers to `weighted_layers(net)[k]`.
pub fn weighted_layers(network: &Network) -> Vec<usize> {
    network
        .layers
        .iter()
        .enumerate()
        .filter(|(_, l)| matches!(l.op, Op::Conv2d(_) | Op::FullyConnected(_)))
        .map(|(i, _)| i)
        .collect()
}

/// Why a network cannot run at per-layer precision, or why an assignment
/// does not fit it. The caller names the file or flag.
pub fn check_network(network: &Network) -> Result<(), String> {
    if !matches!(network.numerics, Numerics::DynamicFixedPoint { .. }) {
        return Err(format!(
            "network `{}` uses affine numerics; per-layer precision needs 16-bit dynamic \
             fixed point (PELUSO's 8-bit modes are the high bytes of 16-bit words)",
            network.name
        ));
    }
    let sixteen = |q: &TensorQuant| matches!(q, TensorQuant::Fixed { bits: 16, .. });
    if !sixteen(&network.input_quant) {
        return Err(format!(
            "network `{}` has an 8-bit input; per-layer precision needs activation_bits = 16",
            network.name
        ));
    }
    for l in &network.layers {
        if let Some(wq) = l.weight_quant()
            && (!matches!(wq, WeightQuant::Fixed { bits: 16, .. }) || !sixteen(&l.input_quant))
        {
            return Err(format!(
                "layer `{}` is not 16-bit; per-layer precision needs activation_bits = 16 \
                     and weight_bits = 16",
                l.name
            ));
        }
    }
    if weighted_layers(network).is_empty() {
        return Err(format!(
            "network `{}` has no conv or fc layer to assign a precision to",
            network.name
        ));
    }
    Ok(())
}

/// True when every layer reads only the previous layer's output (the first
/// layer the network input): the networks whose runs can resume from a
/// cached intermediate tensor.
pub fn is_chain(network: &Network) -> bool {
    network.layers.iter().enumerate().all(|(i, l)| {
        let want = if i == 0 {
            TensorSource::Input
        } else {
            TensorSource::Layer(i - 1)
        };
        l.inputs.len() == 1 && l.inputs[0] == want
    })
}

/// A tensor with every element reduced to `width` (a copy; `W16` is the identity).
pub fn reduce_tensor(tensor: &Activations, width: Width) -> Activations {
    tensor.mapv(|x| reduce(x, width))
}

/// Index of the largest element of the flattened tensor; the first one on ties.
/// Comparing stored integers is comparing reals: one tensor has one scale.
pub fn top1(tensor: &Activations) -> usize {
    let mut best = (0usize, i16::MIN);
    for (i, &v) in tensor.iter().enumerate() {
        if i == 0 || v > best.1 {
            best = (i, v);
        }
    }
    best.0
}

/// A network prepared to run at one precision assignment: reduced weights
/// computed once, so running many inputs costs what the plain reference costs
/// plus one pass over each reduced input map.
#[derive(Debug, Clone)]
pub struct PrecisionNetwork {
    assignment: PrecisionAssignment,
    /// The network's layers, weights reduced where assigned.
    layers: Vec<Layer>,
    /// Per layer: the MAC mode of a weighted layer, `None` for the others.
    modes: Vec<Option<MacMode>>,
    /// The last weighted layer, whose output has the output width.
    output_layer: usize,
}

impl PrecisionNetwork {
    /// Prepares `network` at `assignment`. Fails (with a message naming what
    /// is wrong and what is valid) for a network that is not 16-bit dynamic
    /// fixed point or an assignment of the wrong length.
    pub fn new(network: &Network, assignment: &PrecisionAssignment) -> Result<Self, String> {
        check_network(network)?;
        let weighted = weighted_layers(network);
        if assignment.layer_count() != weighted.len() {
            return Err(format!(
                "the assignment `{assignment}` has {} layer precisions; network `{}` has {} \
                 weighted layers",
                assignment.layer_count(),
                network.name,
                weighted.len()
            ));
        }
        let mut layers = network.layers.clone();
        let mut modes = vec![None; layers.len()];
        for (k, &i) in weighted.iter().enumerate() {
            let mode = assignment.layers()[k];
            modes[i] = Some(mode);
            match &mut layers[i].op {
                Op::Conv2d(c) => c.weights.mapv_inplace(|w| reduce(w, mode.weight)),
                Op::FullyConnected(f) => f.weights.mapv_inplace(|w| reduce(w, mode.weight)),
                _ => {}
            }
        }
        Ok(PrecisionNetwork {
            assignment: assignment.clone(),
            layers,
            modes,
            output_layer: weighted[weighted.len() - 1],
        })
    }

    pub fn assignment(&self) -> &PrecisionAssignment {
        &self.assignment
    }

    /// The layers as computed (weights reduced where assigned): what an
    /// engine at this precision must match, layer by layer.
    pub fn layers(&self) -> &[Layer] {
        &self.layers
    }

    /// The MAC mode of layer `i` (an index into the network's layers), or
    /// `None` for a layer without MACs.
    pub fn mode(&self, i: usize) -> Option<MacMode> {
        self.modes.get(i).copied().flatten()
    }

    /// Runs the network on `input` at this precision.
    pub fn run(&self, input: Activations) -> Execution {
        self.run_inner(input, None)
    }

    /// Runs the network and counts, per weighted layer, the MACs whose
    /// operands (in the bytes used) are non-zero and zero.
    pub fn run_counting(&self, input: Activations) -> (Execution, Vec<MacCounts>) {
        let mut counts = Vec::new();
        let e = self.run_inner(input, Some(&mut counts));
        (e, counts)
    }

    fn run_inner(&self, input: Activations, mut counts: Option<&mut Vec<MacCounts>>) -> Execution {
        let mut e = Execution::new(input);
        for (i, layer) in self.layers.iter().enumerate() {
            let inputs: Vec<&Activations> = layer.inputs.iter().map(|&s| e.tensor(s)).collect();
            let out = self.layer_output(i, &inputs, counts.as_deref_mut());
            e.push(out);
        }
        e
    }

    /// Layer `i` at this precision: the reduced input of a weighted layer,
    /// the plain reference, the reduced output of the output layer.
    fn layer_output(
        &self,
        i: usize,
        inputs: &[&Activations],
        counts: Option<&mut Vec<MacCounts>>,
    ) -> Activations {
        let layer = &self.layers[i];
        let mut out = match self.modes[i] {
            Some(mode) => {
                let reduced;
                let x = if mode.input == Width::W8 {
                    reduced = reduce_tensor(inputs[0], Width::W8);
                    &reduced
                } else {
                    inputs[0]
                };
                if let Some(c) = counts {
                    let zero = zero_operand_macs(layer, x);
                    c.push(MacCounts {
                        nonzero: layer.macs() - zero,
                        zero,
                    });
                }
                execute_layer(layer, &[x])
            }
            None => execute_layer(layer, inputs),
        };
        if i == self.output_layer && self.assignment.output() == Width::W8 {
            out.mapv_inplace(|x| reduce(x, Width::W8));
        }
        out
    }

    /// Runs layers `range` of a chain network ([`is_chain`]) on the tensor
    /// the first of them reads, returning the last one's output: the same
    /// values [`Self::run`] computes for those layers. Lets a caller resume
    /// from a tensor cached for an earlier, shared prefix of assignments.
    pub fn run_range(&self, range: std::ops::Range<usize>, input: &Activations) -> Activations {
        let mut range = range;
        let Some(first) = range.next() else {
            return input.clone();
        };
        let mut x = self.layer_output(first, &[input], None);
        for i in range {
            x = self.layer_output(i, &[&x], None);
        }
        x
    }

    /// [`Self::run_range`] on each of `inputs`, in order, as a batch: each
    /// convolution and fully connected layer is one matrix product over all
    /// the samples ([`execute_layer_batch`]); the values are those
    /// [`Self::run_range`] computes sample by sample.
    pub fn run_range_batch(
        &self,
        range: std::ops::Range<usize>,
        inputs: &[Activations],
    ) -> Vec<Activations> {
        let mut range = range;
        let Some(first) = range.next() else {
            return inputs.to_vec();
        };
        let refs: Vec<&Activations> = inputs.iter().collect();
        let mut xs = self.layer_output_batch(first, &refs);
        for i in range {
            let refs: Vec<&Activations> = xs.iter().collect();
            xs = self.layer_output_batch(i, &refs);
        }
        xs
    }

    /// [`Self::layer_output`] of a single-input layer on a batch.
    fn layer_output_batch(&self, i: usize, inputs: &[&Activations]) -> Vec<Activations> {
        let layer = &self.layers[i];
        let mut outs = match self.modes[i] {
            Some(mode) if mode.input == Width::W8 => {
                use rayon::prelude::*;
                let reduced: Vec<Activations> = inputs
                    .par_iter()
                    .map(|x| reduce_tensor(x, Width::W8))
                    .collect();
                let refs: Vec<&Activations> = reduced.iter().collect();
                execute_layer_batch(layer, &refs)
            }
            _ => execute_layer_batch(layer, inputs),
        };
        if i == self.output_layer && self.assignment.output() == Width::W8 {
            use rayon::prelude::*;
            outs.par_iter_mut()
                .for_each(|out| out.mapv_inplace(|x| reduce(x, Width::W8)));
        }
        outs
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reference;
    use crate::workload::load_str;
    use std::path::Path;

    const NET: &str = r#"
[network]
name = "t"
description = "t"
seed = 3
[numerics]
mode = "dynamic_fixed_point"
[input]
shape = [2, 6, 6]
frac_len = 12
data = { dist = "gaussian", std = 3000 }
[defaults]
activation = "relu"
weights = { dist = "gaussian", std = 3000 }
weight_frac_len = 15
[[layer]]
name = "c"
op = "conv2d"
out_channels = 3
kernel = 3
padding = 1
bias = { dist = "gaussian", std = 100000 }
[[layer]]
name = "p"
op = "max_pool"
kernel = 2
[[layer]]
name = "f"
op = "fc"
out_features = 4
activation = "none"
"#;

    fn net() -> crate::workload::Workload {
        match load_str(NET, Path::new("t.toml"), None) {
            Ok(w) => w,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn all_16_bit_is_the_plain_reference() {
        let w = net();
        let p = PrecisionNetwork::new(&w.network, &PrecisionAssignment::full(2))
            .expect("16-bit network");
        let e = p.run(w.default_input.clone());
        assert_eq!(e.outputs(), &w.default_outputs[..]);
    }

    #[test]
    fn reduced_layers_use_high_bytes_and_the_same_output_stage() {
        let w = net();
        let a = PrecisionAssignment::new(vec![MacMode::I8_W16, MacMode::HALF], Width::W8);
        let p = PrecisionNetwork::new(&w.network, &a).expect("valid");
        let (e, counts) = p.run_counting(w.default_input.clone());
        // Layer by layer, by hand: reduce the operands, run the plain reference.
        let x = reduce_tensor(&w.default_input, Width::W8);
        let conv = reference::execute_layer(&w.network.layers[0], &[&x]);
        assert_eq!(e.outputs()[0], conv);
        let pooled = reference::execute_layer(&w.network.layers[1], &[&conv]);
        let mut fc = w.network.layers[2].clone();
        if let Op::FullyConnected(f) = &mut fc.op {
            f.weights.mapv_inplace(|v| v & !0xFF);
        }
        let out = reference::execute_layer(&fc, &[&reduce_tensor(&pooled, Width::W8)]);
        assert_eq!(e.outputs()[2], reduce_tensor(&out, Width::W8));
        assert!(e.outputs()[2].iter().all(|v| v & 0xFF == 0));
        assert_eq!(counts.len(), 2);
        assert_eq!(
            counts[0].nonzero + counts[0].zero,
            w.network.layers[0].macs()
        );
        // Inputs in [0, 255] become zero at 8 bits: more zero operands.
        let (_, full) = PrecisionNetwork::new(&w.network, &PrecisionAssignment::full(2))
            .expect("valid")
            .run_counting(w.default_input.clone());
        assert!(counts[0].zero > full[0].zero);
    }

    #[test]
    fn wrong_lengths_and_networks_are_refused() {
        let w = net();
        let e = PrecisionNetwork::new(&w.network, &PrecisionAssignment::full(3));
        assert!(e.is_err_and(|m| m.contains("3 layer precisions") && m.contains("2 weighted")));
        let eight = NET.replace(
            "mode = \"dynamic_fixed_point\"",
            "mode = \"dynamic_fixed_point\"\nweight_bits = 8",
        );
        let eight = eight.replace(
            "std = 3000 }\nweight_frac_len = 15",
            "std = 30 }\nweight_frac_len = 7",
        );
        let w8 = load_str(&eight, Path::new("t8.toml"), None).expect("8-bit weights load");
        assert!(check_network(&w8.network).is_err_and(|m| m.contains("weight_bits = 16")));
    }

    #[test]
    fn top1_takes_the_first_maximum() {
        let t = Activations::from_shape_vec((4, 1, 1), vec![-5, 7, 7, 2]).expect("shape");
        assert_eq!(top1(&t), 1);
        let t = Activations::from_shape_vec((2, 1, 1), vec![i16::MIN, i16::MIN]).expect("shape");
        assert_eq!(top1(&t), 0);
    }
}
