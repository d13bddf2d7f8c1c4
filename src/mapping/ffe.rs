//! Which layers the FFE holds and how each becomes a pipeline stage
//! (SPEC section 3, docs/ffe.md). Plain data, no timing.
//!
//! FIXYNN counts "fixed layers" as the first convolution plus
//! depthwise-separable blocks: a depthwise convolution and the 1x1
//! convolution right after it are one layer. accsim generalises that to
//! any prefix of convolutions and max-pooling: every convolution starts a
//! new fixed layer except a 1x1 convolution that directly follows a
//! depthwise one (its pointwise half), and a max-pooling layer belongs to
//! the fixed layer before it. Every IR layer of the prefix becomes one
//! stage; a stage needs a line buffer unless its window is a single pixel
//! (1x1, no padding), which is how a pointwise layer takes the depthwise
//! layer's pixels directly, with no buffer.

use std::path::Path;

use crate::error::InputError;
use crate::workload::ir::{Layer, Network, Op, Shape, TensorSource};

/// What a stage computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StageKind {
    /// A convolution (regular, grouped or depthwise) through shift-add scalers.
    Conv,
    /// Max pooling through comparators.
    MaxPool,
}

/// One pipeline stage: one IR layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StagePlan {
    /// Index of the layer in the network.
    pub layer: usize,
    /// The FIXYNN layer (1-based) it belongs to.
    pub fixed_layer: u32,
    pub kind: StageKind,
    pub input: Shape,
    pub output: Shape,
    /// `[height, width]`.
    pub kernel: [usize; 2],
    /// `[vertical, horizontal]`.
    pub stride: [usize; 2],
    pub pad_top: usize,
    pub pad_left: usize,
    /// True when the stage buffers input rows (`kernel[0] + 1` banks).
    pub line_buffer: bool,
}

/// The FFE of an architecture applied to a network.
#[derive(Debug, Clone, PartialEq)]
pub struct FfePlan {
    /// Fixed layers built in hardware (N).
    pub fixed_layers: u32,
    /// Fixed layers the task uses (M <= N): activations are tapped after it.
    pub tap: u32,
    /// Every stage of the hardware (N fixed layers), in pipeline order.
    pub stages: Vec<StagePlan>,
    /// How many of `stages` run (those of the first `tap` fixed layers).
    pub active: usize,
}

impl FfePlan {
    /// The stages that run.
    pub fn active_stages(&self) -> &[StagePlan] {
        &self.stages[..self.active]
    }

    /// Index of the first layer the back-end runs.
    pub fn first_backend_layer(&self) -> usize {
        self.active
    }
}

/// Where a mismatch between the arch's `[ffe]` and the workload is reported.
#[derive(Debug, Clone, Copy)]
pub struct FixedLayersSite<'a> {
    pub arch_file: &'a Path,
    pub line_column: Option<(usize, usize)>,
}

/// Plans the FFE: `fixed_layers` FIXYNN layers of `network`, of which the
/// first `tap` run. Errors name the arch file's `fixed_layers` (or the
/// `--ffe-tap` option) and what would be valid.
pub fn plan(
    network: &Network,
    fixed_layers: u32,
    tap: Option<u32>,
    site: FixedLayersSite,
) -> Result<FfePlan, InputError> {
    let err = |message: String| {
        let mut e = InputError::new(site.arch_file, message)
            .context("[ffe]")
            .field("fixed_layers");
        e.line_column = site.line_column;
        e
    };
    let (stages, count, stop) = fixable_stages(network, fixed_layers);
    if count < fixed_layers {
        return Err(err(format!(
            "is {fixed_layers}, but workload `{}` has {count} fixable layer(s){}; valid: 1 to {count}",
            network.name,
            stop.map(|s| format!(" ({s})")).unwrap_or_default()
        )));
    }
    let tap = tap.unwrap_or(fixed_layers);
    if tap == 0 || tap > fixed_layers {
        let mut e = InputError::new(
            "--ffe-tap",
            format!("is {tap}; valid: 1 to {fixed_layers} (the arch's fixed_layers)"),
        );
        e.field = Some("ffe_tap".to_string());
        return Err(e);
    }
    let active = stages.iter().take_while(|s| s.fixed_layer <= tap).count();
    only_the_tap_leaves(network, active).map_err(err)?;
    Ok(FfePlan {
        fixed_layers,
        tap,
        stages,
        active,
    })
}

/// The stages of the first `fixed_layers` FIXYNN layers of `network` (a
/// pointwise convolution after a depthwise one joins its layer), the
/// number of layers found, and why the search stopped early, if it did.
fn fixable_stages(network: &Network, fixed_layers: u32) -> (Vec<StagePlan>, u32, Option<String>) {
    let mut stages = Vec::new();
    let mut count = 0u32;
    for (i, layer) in network.layers.iter().enumerate() {
        let expected = if i == 0 {
            TensorSource::Input
        } else {
            TensorSource::Layer(i - 1)
        };
        let chained = layer.inputs.len() == 1 && layer.inputs[0] == expected;
        let (kind, starts_layer) = match &layer.op {
            Op::Conv2d(c) => {
                let pointwise_of_dw = c.kernel == [1, 1]
                    && c.padding.is_zero()
                    && i > 0
                    && matches!(&network.layers[i - 1].op, Op::Conv2d(p) if p.is_depthwise());
                (StageKind::Conv, !pointwise_of_dw || count == 0)
            }
            Op::MaxPool(_) => (StageKind::MaxPool, count == 0),
            _ => {
                let stop = format!(
                    "layer `{}` ({}) cannot be fixed: the FFE holds convolutions and max pooling",
                    layer.name,
                    layer.op.kind()
                );
                return (stages, count, Some(stop));
            }
        };
        if !chained {
            let stop = format!(
                "layer `{}` does not read the layer before it: the FFE is a single pipeline",
                layer.name
            );
            return (stages, count, Some(stop));
        }
        if starts_layer {
            if count == fixed_layers {
                break;
            }
            count += 1;
        }
        stages.push(stage(i, count, kind, layer));
    }
    (stages, count, None)
}

/// Only the tapped tensor (of layer `active - 1`) leaves the FFE: no
/// later layer may read another, nor the network input.
fn only_the_tap_leaves(network: &Network, active: usize) -> Result<(), String> {
    for (i, layer) in network.layers.iter().enumerate().skip(active) {
        for src in &layer.inputs {
            if let TensorSource::Layer(j) = src
                && *j + 1 < active
            {
                return Err(format!(
                    "layer `{}` reads `{}`, inside the FFE; only the tapped output (of `{}`) leaves it",
                    network.layers[i].name,
                    network.layers[*j].name,
                    network.layers[active - 1].name
                ));
            }
            if *src == TensorSource::Input && active > 0 {
                return Err(format!(
                    "layer `{}` reads the network input, which only the FFE sees",
                    network.layers[i].name
                ));
            }
        }
    }
    Ok(())
}

fn stage(index: usize, fixed_layer: u32, kind: StageKind, layer: &Layer) -> StagePlan {
    let (kernel, stride, pad_top, pad_left) = match &layer.op {
        Op::Conv2d(c) => (c.kernel, c.stride, c.padding.top, c.padding.left),
        Op::MaxPool(p) => (p.kernel, p.stride, p.padding.top, p.padding.left),
        _ => ([1, 1], [1, 1], 0, 0),
    };
    let single_pixel = kernel == [1, 1] && pad_top == 0 && pad_left == 0 && {
        // No trailing padding either: the output grid is the strided input.
        let out = layer.output_shape;
        let inp = layer.input_shape;
        (out.height - 1) * stride[0] < inp.height && (out.width - 1) * stride[1] < inp.width
    };
    StagePlan {
        layer: index,
        fixed_layer,
        kind,
        input: layer.input_shape,
        output: layer.output_shape,
        kernel,
        stride,
        pad_top,
        pad_left,
        line_buffer: !single_pixel,
    }
}
