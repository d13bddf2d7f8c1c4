//! Layers on the table-driven NVDLA back-end (SPEC section 3, `hw::nvdla`).
//!
//! Nothing is simulated: each layer's cycles and energy come from the
//! published table through the utilisation model, and its output values
//! come from the reference executor (reports tag these layers
//! `nvdla_table`). Layers run one after another, like on the PE array.

use crate::arch::NvdlaConfig;
use crate::error::{Error, Result};
use crate::hw::nvdla::{self, NvdlaWork};
use crate::reference;
use crate::sim::Cycle;
use crate::workload::ir::{Activations, Layer, Network, Op, TensorSource};

use super::stats::{CycleBreakdown, LayerStats};

/// Layers `first..` as the table model sees them.
#[derive(Debug, Clone)]
pub(crate) struct NvdlaRun {
    pub layers: Vec<LayerStats>,
    pub energy_pj: Vec<f64>,
    pub outputs: Vec<Activations>,
    pub total_cycles: u64,
}

/// The model's view of a layer.
pub(crate) fn work(layer: &Layer) -> NvdlaWork {
    let out = layer.output_shape;
    match &layer.op {
        Op::Conv2d(c) => NvdlaWork::Conv {
            positions: (out.height * out.width) as u64,
            taps: (c.kernel[0] * c.kernel[1]) as u64,
            groups: c.groups as u64,
            in_per_group: c.in_channels_per_group() as u64,
            out_per_group: (c.out_channels() / c.groups.max(1)) as u64,
        },
        Op::FullyConnected(f) => NvdlaWork::Conv {
            positions: 1,
            taps: 1,
            groups: 1,
            in_per_group: f.in_features() as u64,
            out_per_group: f.out_features() as u64,
        },
        Op::Flatten => NvdlaWork::Reshape,
        // Pooling, and any element-wise operator, streams its input through
        // the planar / single data processors.
        _ => NvdlaWork::Pool {
            input_elements: layer.input_shape.len() as u64,
        },
    }
}

/// Runs layers `first..` of `network`; `input` is what layer `first` reads.
/// Values: the reference's outputs when given (default input), else the
/// reference executor's, computed here.
pub(crate) fn run(
    network: &Network,
    cfg: &NvdlaConfig,
    first: usize,
    input: &Activations,
    reference: Option<&[Activations]>,
) -> Result<NvdlaRun> {
    let n = network.layers.len();
    // Tensors by source index (0: network input, i + 1: layer i).
    let mut tensors: Vec<Option<Activations>> = vec![None; n + 1];
    tensors[first] = Some(input.clone());
    let mut now = Cycle::ZERO;
    let mut run = NvdlaRun {
        layers: Vec::with_capacity(n - first),
        energy_pj: Vec::with_capacity(n - first),
        outputs: Vec::with_capacity(n - first),
        total_cycles: 0,
    };
    for (i, layer) in network.layers.iter().enumerate().skip(first) {
        let output = match reference.and_then(|r| r.get(i)) {
            Some(r) => r.clone(),
            None => {
                let inputs: Vec<&Activations> = layer
                    .inputs
                    .iter()
                    .map(|s| {
                        let idx = match s {
                            TensorSource::Input => 0,
                            TensorSource::Layer(j) => j + 1,
                        };
                        tensors
                            .get(idx)
                            .and_then(Option::as_ref)
                            .ok_or_else(|| Error::Internal {
                                context: format!("layer `{}`", layer.name),
                                message: "NVDLA back-end: input tensor not available".to_string(),
                            })
                    })
                    .collect::<Result<_>>()?;
                reference::execute_layer(layer, &inputs)
            }
        };
        let macs = layer.macs();
        let l = nvdla::layer(cfg, work(layer), macs);
        let end = now + l.cycles;
        run.layers.push(LayerStats {
            start: now,
            end,
            cycles: CycleBreakdown {
                total: l.cycles,
                compute: l.cycles,
                ..Default::default()
            },
            macs,
            pe_busy_cycles: macs,
            pes: u64::from(cfg.macs),
            ..Default::default()
        });
        run.energy_pj.push(l.energy_pj);
        now = end;
        tensors[i + 1] = Some(output.clone());
        run.outputs.push(output);
    }
    run.total_cycles = now.get();
    Ok(run)
}
