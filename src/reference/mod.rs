//! The reference executor: the plainest correct integer implementation of
//! every operator, the yardstick every simulated engine is compared against.
//!
//! Each weighted layer is computed in two visible steps, the same two steps
//! the hardware has: [`conv_accumulate`] / [`fc_accumulate`] produce the exact
//! sums (bias included) and [`requantize`] applies the output stage of
//! `numerics::requant`. Accumulation is exact (no wrap-around); the output
//! stage saturates the sum to the accumulator width once, which equals a
//! per-addition saturating accumulator whenever no partial sum leaves the
//! range (docs/numerics.md, "Accumulators").

mod conv;
pub mod dynamic;
pub mod dynamic_float;
mod float_conv;
mod ort_ops;
mod pool;
pub mod precision;

use ndarray::Array3;

pub use conv::{
    conv_accumulate, conv_accumulate_batch, conv_output_batch, fc_accumulate, fc_accumulate_batch,
    zero_operand_macs,
};
pub use ort_ops::{
    add, channel, channel_shuffle, concat, float_chain, lookup, lrn, qlinear_avg_pool, softmax, sum,
};
pub use pool::{avg_pool, global_avg_pool, max_pool};

use crate::workload::ir::{Activations, Epilogue, FLOAT32_WORDS, Layer, Network, Op, TensorSource};

/// The tensors of one inference: the input and every layer's output so far.
#[derive(Debug, Clone)]
pub struct Execution {
    input: Activations,
    outputs: Vec<Activations>,
}

impl Execution {
    /// An execution that has computed nothing yet.
    pub fn new(input: Activations) -> Self {
        Execution {
            input,
            outputs: Vec::new(),
        }
    }

    /// Resumes from already computed layer outputs (a prefix of the network).
    pub fn from_parts(input: Activations, outputs: Vec<Activations>) -> Self {
        Execution { input, outputs }
    }

    /// A computed tensor.
    ///
    /// # Panics
    /// If `source` names a layer not computed yet; the IR guarantees layers
    /// only read earlier tensors, so callers stepping in order never do.
    pub fn tensor(&self, source: TensorSource) -> &Activations {
        match source {
            TensorSource::Input => &self.input,
            TensorSource::Layer(i) => &self.outputs[i],
        }
    }

    /// Number of layers computed.
    pub fn computed(&self) -> usize {
        self.outputs.len()
    }

    /// Records the next layer's output.
    pub fn push(&mut self, output: Activations) {
        self.outputs.push(output);
    }

    /// Computes the remaining layers of `network`.
    pub fn finish(&mut self, network: &Network) {
        while self.outputs.len() < network.layers.len() {
            let layer = &network.layers[self.outputs.len()];
            let inputs: Vec<&Activations> = layer.inputs.iter().map(|&s| self.tensor(s)).collect();
            let out = execute_layer(layer, &inputs);
            self.outputs.push(out);
        }
    }

    pub fn input(&self) -> &Activations {
        &self.input
    }

    pub fn outputs(&self) -> &[Activations] {
        &self.outputs
    }

    pub fn into_parts(self) -> (Activations, Vec<Activations>) {
        (self.input, self.outputs)
    }
}

/// Runs the whole network on `input`.
pub fn run(network: &Network, input: Activations) -> Execution {
    let mut e = Execution::new(input);
    e.finish(network);
    e
}

/// Computes one layer from its input tensors.
///
/// A layer reading a run-time quantised tensor (`ir::DYNAMIC_UINT8`) takes
/// its scale and zero point from its last input, the tensor's
/// `dynamic_range` ([`dynamic::resolve`]); float32 inputs
/// (`ir::FLOAT32_WORDS`) take the float forms of MaxPool and Softmax.
pub fn execute_layer(layer: &Layer, inputs: &[&Activations]) -> Activations {
    let input = inputs[0];
    let layer = &*dynamic::resolve(layer, inputs.get(1).copied());
    let zero = layer.input_quant.zero();
    let float_input = layer.input_quant == FLOAT32_WORDS;
    match &layer.op {
        Op::Conv2d(c) if is_dynamic(&c.epilogue) => {
            dynamic::requantize_float(&c.epilogue, &conv_accumulate(c, zero, input))
        }
        Op::FullyConnected(f) if is_dynamic(&f.epilogue) => {
            dynamic::requantize_float(&f.epilogue, &fc_accumulate(f, zero, input))
        }
        Op::Conv2d(c) if c.epilogue.output_stage.requant.is_float_sum() => {
            float_conv::float_conv(c, zero, input)
        }
        Op::Conv2d(c) => requantize(&c.epilogue, &conv_accumulate(c, zero, input)),
        Op::FullyConnected(f) => requantize(&f.epilogue, &fc_accumulate(f, zero, input)),
        Op::MaxPool(p) if float_input => pool::float_max_pool(p, input),
        Op::Softmax if float_input => dynamic::float_softmax(input),
        Op::QLinearAvgPool(q) if float_input => {
            let out = [layer.output_shape.height, layer.output_shape.width];
            dynamic_float::float_avg_pool(q, input, out)
        }
        Op::FloatChannel(f) => dynamic_float::float_channel(f, input),
        Op::Lrn(l) if float_input => dynamic_float::float_lrn(l, input),
        Op::ChannelShuffle { groups } if float_input => {
            dynamic_float::float_shuffle(*groups, input)
        }
        Op::DynamicRange => dynamic::dynamic_range(input),
        Op::DynamicQuantize => {
            dynamic::dynamic_quantize(input, inputs.get(1).copied().unwrap_or(input))
        }
        Op::MaxPool(p) => max_pool(p, input),
        Op::AvgPool(p) => avg_pool(p, input),
        Op::GlobalAvgPool { rounding } => global_avg_pool(*rounding, input),
        Op::Flatten => {
            let n = input.len();
            let flat: Vec<i16> = input.iter().copied().collect();
            Array3::from_shape_vec((n, 1, 1), flat).unwrap_or_else(|_| Array3::zeros((n, 1, 1)))
        }
        // The IR guarantees two inputs of one shape (the ONNX importer checks).
        Op::Add(a) => add(
            a,
            &layer.output_quant,
            input,
            inputs.get(1).copied().unwrap_or(input),
        ),
        Op::QLinearAvgPool(p) => {
            qlinear_avg_pool(p, &layer.input_quant, &layer.output_quant, input)
        }
        Op::Softmax => softmax(&layer.input_quant, &layer.output_quant, input),
        Op::ChannelShuffle { groups } => channel_shuffle(*groups, input),
        Op::Concat(c) => concat(c, &layer.output_quant, inputs),
        Op::Lrn(l) => lrn(l, &layer.input_quant, &layer.output_quant, input),
        Op::Sum(s) if s.is_chain() => float_chain(s, layer, inputs),
        Op::Sum(s) => sum(s, &layer.output_quant, inputs),
        Op::Lookup(l) => lookup(&l.table(&layer.input_quant, &layer.output_quant), input),
        Op::Channel(c) => channel(&c.kernel(&layer.input_quant, &layer.output_quant), input),
    }
}

/// A weighted layer with a float32 output (`Requant::DynamicFloat`).
pub fn is_dynamic(epilogue: &Epilogue) -> bool {
    matches!(
        epilogue.output_stage.requant,
        crate::numerics::Requant::DynamicFloat { .. }
    )
}

/// One single-input layer on each of `inputs`, in order: the outputs
/// [`execute_layer`] computes one by one, with convolutions and fully
/// connected layers run as one matrix product over the whole batch
/// ([`conv_accumulate_batch`], [`fc_accumulate_batch`]) and the other
/// layers on several threads (each sample's output is the same whichever
/// thread computes it).
pub fn execute_layer_batch(layer: &Layer, inputs: &[&Activations]) -> Vec<Activations> {
    let zero = layer.input_quant.zero();
    match &layer.op {
        Op::Conv2d(c) if !c.epilogue.output_stage.requant.is_float_sum() => {
            conv_output_batch(c, zero, inputs)
        }
        Op::FullyConnected(f) => fc_accumulate_batch(f, zero, inputs)
            .iter()
            .map(|acc| requantize(&f.epilogue, acc))
            .collect(),
        _ => {
            use rayon::prelude::*;
            inputs
                .par_iter()
                .map(|x| execute_layer(layer, &[x]))
                .collect()
        }
    }
}

/// Applies the output stage, channel by channel, to exact accumulators.
pub fn requantize(epilogue: &Epilogue, acc: &Array3<i64>) -> Activations {
    let (c, h, w) = acc.dim();
    let plane = (h * w).max(1);
    let acc = acc.as_standard_layout();
    let sums = acc.as_slice().unwrap_or(&[]);
    let mut out = vec![0i16; sums.len()];
    for (ch, (src, dst)) in sums.chunks(plane).zip(out.chunks_mut(plane)).enumerate() {
        epilogue.output_stage.channel(ch).apply_slice(src, dst);
    }
    Array3::from_shape_vec((c, h, w), out).unwrap_or_else(|_| Array3::zeros((c, h, w)))
}

/// Bytes-in-order checksum (CRC-32, as Python's `zlib.crc32`) of a tensor
/// stored in `dtype`: one byte per element for 8-bit types, two
/// little-endian bytes for int16.
pub fn checksum(values: &Activations, dtype: crate::numerics::IntType) -> u32 {
    let mut h = crc32fast::Hasher::new();
    match dtype.bits() {
        8 => {
            let bytes: Vec<u8> = values.iter().map(|&v| v as u8).collect();
            h.update(&bytes);
        }
        _ => {
            let bytes: Vec<u8> = values.iter().flat_map(|&v| v.to_le_bytes()).collect();
            h.update(&bytes);
        }
    }
    h.finalize()
}
