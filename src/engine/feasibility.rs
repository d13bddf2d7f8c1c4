//! What cannot be scheduled is refused before the first cycle: the least
//! GLB each layer needs to make progress, and the refusal when the
//! machine's GLB is smaller (docs/mapping.md, "What the GLB must hold").
//!
//! ```text
//!   layer + plan + numerics ──► needs: the parts that must sit in the GLB at once
//!                                 array layer: one pass's input rows (+ weight staging)
//!                                 GLB unit:    one output row's input rows, every operand
//!   needs vs GLB capacity   ──► Ok, or an InputError naming layer, tensor, bytes, capacity
//! ```
//!
//! Everything else in the GLB gives way when a layer needs the room:
//! tensors parked for later readers, rows of the layer's own input that the
//! current pass (output row) does not read, the next pass's prefetch, and
//! the layer's own output rows (they spill to DRAM). So a layer progresses
//! exactly when its parts fit: the bound is the engine's, not a guess.
//! `run_from` calls [`refuse`]; `accsim check` calls [`check`].

use crate::arch::{Arch, Backend, WeightStore};
use crate::error::{InputError, Result};
use crate::hw::glb_unit::GlbUnit;
use crate::mapping::schedule::{InputReuse, LoopOrder, ScheduleChoice};
use crate::mapping::{ArrayPlan, Dataflow, LayerPlan, dataflow_for};
use crate::workload::ir::{Layer, Network, Op, TensorSource};

use super::array::LOOKAHEAD_STEPS;
use super::widths::NumericsPlan;

/// One thing a layer must hold in the GLB.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    /// What it is, in words ("12 rows of tensor `conv1` (one pass) x 64 bytes").
    pub what: String,
    pub bytes: u64,
}

/// The least GLB a layer needs to make progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Need {
    /// Index of the layer in the network.
    pub layer: usize,
    pub name: String,
    /// The parts that must be in the GLB at the same time.
    pub parts: Vec<Part>,
}

impl Need {
    /// The sum of the parts [bytes].
    pub fn bytes(&self) -> u64 {
        self.parts.iter().map(|p| p.bytes).sum()
    }
}

/// Where the layers run from: the first layer on the PE array, and the GLB
/// bytes held for the whole run (an FFE system's next-frame slot).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Span {
    pub first: usize,
    pub reserved_bytes: u64,
    /// The tapped tensor's bytes (0 without an FFE): the slot reserved when
    /// two tapped frames fit the GLB (docs/ffe.md, "System").
    pub tap_bytes: u64,
}

/// The store each tensor lives in (flatten outputs are views of their
/// input's store): index 0 the network input, `i + 1` layer `i`'s output.
fn stores(network: &Network) -> Vec<usize> {
    let mut store_of = vec![0usize];
    for (i, layer) in network.layers.iter().enumerate() {
        let src = source_index(layer.inputs.first().copied().unwrap_or(TensorSource::Input));
        if matches!(layer.op, Op::Flatten) {
            store_of.push(store_of[src]);
        } else {
            store_of.push(i + 1);
        }
    }
    store_of
}

fn source_index(s: TensorSource) -> usize {
    match s {
        TensorSource::Input => 0,
        TensorSource::Layer(i) => i + 1,
    }
}

fn row_word(rows: u64) -> &'static str {
    if rows == 1 { "row" } else { "rows" }
}

/// The name of the tensor in store `k`.
fn tensor_name(network: &Network, k: usize) -> String {
    match k {
        0 => "input".to_string(),
        k => network.layers[k - 1].name.clone(),
    }
}

/// Weight (and bias) words of the largest step of `plan`: what one slot of
/// the programmable mode's staging buffer holds. The same sum as the
/// engine's per-step count, from the plan alone (no weight values).
fn max_step_weight_words(plan: &ArrayPlan, groups: usize, icg: usize, ocg: usize) -> u64 {
    crate::mapping::schedule::step_weight_words(plan, groups, icg, ocg)
        .iter()
        .flatten()
        .max()
        .copied()
        .unwrap_or(0)
}

/// What array layer `i` must hold: the input rows of its largest pass and,
/// with programmable weights, the staging buffer.
fn array_need(
    network: &Network,
    arch: &Arch,
    numerics: &NumericsPlan,
    i: usize,
    plan: &ArrayPlan,
    store: usize,
) -> Vec<Part> {
    let layer = &numerics.layers[i];
    let shape = match store {
        0 => network.input_shape,
        k => network.layers[k - 1].output_shape,
    };
    let row_bytes = (shape.channels * shape.width) as u64 * numerics.storage_bytes[store];
    let (kernel, stride, pad_top, groups, icg, ocg) = match &layer.op {
        Op::Conv2d(c) => (
            c.kernel[0],
            c.stride[0],
            c.padding.top,
            c.groups,
            c.in_channels_per_group(),
            c.out_channels() / c.groups.max(1),
        ),
        Op::FullyConnected(f) => (1, 1, 0, 1, f.in_features(), f.out_features()),
        _ => (1, 1, 0, 1, 1, 1),
    };
    let rows = crate::mapping::schedule::pass_rows(plan, kernel, stride, pad_top, shape.height)
        .iter()
        .map(|r| r.len() as u64)
        .max()
        .unwrap_or(0);
    let what = if plan.rows_are_positions {
        "the rows one pass reads"
    } else {
        "all of it: every pass reads the whole input"
    };
    let mut parts = vec![Part {
        what: format!(
            "{rows} {} of tensor `{}` ({what}, {row_bytes} bytes each)",
            row_word(rows),
            tensor_name(network, store)
        ),
        bytes: rows * row_bytes,
    }];
    if arch.pe_array.weight_store == WeightStore::Programmable {
        let step_bytes =
            max_step_weight_words(plan, groups, icg, ocg) * numerics.per_layer[i].weight_bytes;
        let slots = LOOKAHEAD_STEPS as u64 + 1;
        parts.push(Part {
            what: format!("the weight staging buffer ({slots} steps of {step_bytes} bytes)"),
            bytes: slots * step_bytes,
        });
    }
    parts
}

/// What GLB-unit layer `i` (pooling, addition) must hold: every distinct
/// operand's input rows of its largest output row.
fn glb_need(
    network: &Network,
    numerics: &NumericsPlan,
    i: usize,
    store_of: &[usize],
) -> Result<Vec<Part>> {
    let layer = &numerics.layers[i];
    let mut distinct: Vec<usize> = layer
        .inputs
        .iter()
        .map(|&s| store_of[source_index(s)])
        .collect();
    distinct.sort_unstable();
    distinct.dedup();
    let first =
        store_of[source_index(layer.inputs.first().copied().unwrap_or(TensorSource::Input))];
    let hw = |k: usize| match k {
        0 => network.input_shape,
        k => network.layers[k - 1].output_shape,
    };
    let first_shape = hw(first);
    let unit = GlbUnit::new(
        super::glb_ops::program(layer, [first_shape.height, first_shape.width])?,
        [first_shape.height, first_shape.width],
        layer.output_shape.width,
    );
    let row_bytes: Vec<u64> = distinct
        .iter()
        .map(|&k| (hw(k).channels * hw(k).width) as u64 * numerics.storage_bytes[k])
        .collect();
    // The step (output row, or input row of a streamed reduction) whose
    // window holds the most bytes.
    let widest = (0..unit.steps(layer.output_shape.height))
        .max_by_key(|&oy| {
            let rows = unit.input_rows(oy).len() as u64;
            (
                row_bytes.iter().map(|b| rows * b).sum::<u64>(),
                std::cmp::Reverse(oy),
            )
        })
        .unwrap_or(0);
    let rows = unit.input_rows(widest).len() as u64;
    Ok(distinct
        .iter()
        .zip(&row_bytes)
        .map(|(&k, &b)| Part {
            what: format!(
                "{rows} {} of tensor `{}` (the rows one output row reads, {b} bytes each)",
                row_word(rows),
                tensor_name(network, k)
            ),
            bytes: rows * b,
        })
        .collect())
}

/// The needs of layers `span.first..` (those that run on the PE array and
/// the GLB unit beside it), planned as `plans` (one per layer from `first`).
pub(crate) fn needs(
    network: &Network,
    arch: &Arch,
    numerics: &NumericsPlan,
    plans: &[LayerPlan],
    first: usize,
) -> Result<Vec<Need>> {
    let store_of = stores(network);
    let mut out = Vec::new();
    for (i, plan) in plans.iter().enumerate().map(|(k, p)| (k + first, p)) {
        let layer = &numerics.layers[i];
        let parts = match plan {
            LayerPlan::Reshape => continue,
            LayerPlan::Array(p) => {
                let src =
                    source_index(layer.inputs.first().copied().unwrap_or(TensorSource::Input));
                array_need(network, arch, numerics, i, p, store_of[src])
            }
            LayerPlan::Glb => glb_need(network, numerics, i, &store_of)?,
        };
        out.push(Need {
            layer: i,
            name: layer.name.clone(),
            parts,
        });
    }
    Ok(out)
}

/// The smallest GLB capacity that leaves `need` bytes for a layer: with an
/// FFE whose buffer holds two tapped frames, one slot stays reserved, and
/// a GLB of twice the tapped tensor or more has two slots.
fn least_capacity(arch: &Arch, span: &Span, need: u64) -> u64 {
    let two_slots_possible = span.tap_bytes > 0 && arch.system.buffer_frames >= 2;
    if !two_slots_possible || need < 2 * span.tap_bytes {
        need
    } else {
        need + span.tap_bytes
    }
}

/// The refusal of `need` on `arch` (one line: layer, parts, bytes, capacity,
/// what is valid).
fn refusal(arch: &Arch, span: &Span, need: &Need, layer: &Layer) -> InputError {
    let bytes = need.bytes();
    let least = least_capacity(arch, span, bytes);
    let parts: Vec<String> = need
        .parts
        .iter()
        .map(|p| format!("{} = {} bytes", p.what, p.bytes))
        .collect();
    let holds = if span.reserved_bytes > 0 {
        format!(
            "the {}-byte GLB leaves {} bytes beside the next frame's {}-byte slot",
            arch.glb.capacity_bytes,
            arch.glb.capacity_bytes - span.reserved_bytes,
            span.reserved_bytes
        )
    } else {
        format!("the GLB holds {} bytes", arch.glb.capacity_bytes)
    };
    InputError::new(
        &arch.path,
        format!(
            "layer `{}` (#{}, {}) cannot be scheduled: it needs {bytes} bytes of GLB at once, {}, and {holds}; valid: capacity_kib >= {} (a GLB of at least {least} bytes)",
            need.name,
            need.layer,
            layer.op.kind(),
            parts.join(" plus "),
            least as f64 / 1024.0
        ),
    )
    .context("[glb]")
    .field("capacity_kib")
}

/// Every layer of `needs` that does not fit the GLB left after `span`'s
/// reservation, as refusals in layer order.
pub(crate) fn refusals(
    network: &Network,
    arch: &Arch,
    needs: &[Need],
    span: &Span,
) -> Vec<InputError> {
    let room = arch.glb.capacity_bytes.saturating_sub(span.reserved_bytes);
    needs
        .iter()
        .filter(|n| n.bytes() > room)
        .map(|n| refusal(arch, span, n, &network.layers[n.layer]))
        .collect()
}

/// Refuses the run before its first cycle when a layer cannot progress.
pub(crate) fn refuse(
    network: &Network,
    arch: &Arch,
    numerics: &NumericsPlan,
    plans: &[LayerPlan],
    span: &Span,
) -> Result<()> {
    let needs = needs(network, arch, numerics, plans, span.first)?;
    match refusals(network, arch, &needs, span).into_iter().next() {
        Some(e) => Err(e.into()),
        None => Ok(()),
    }
}

/// What `accsim check` reports about a workload on an architecture.
#[derive(Debug, Clone)]
pub struct Schedule {
    /// The needs of the layers the PE array (and its GLB unit) runs; empty
    /// for a table-driven back-end.
    pub needs: Vec<Need>,
    /// Layers that cannot be scheduled, one refusal each.
    pub refusals: Vec<InputError>,
    /// GLB bytes the layers may use (the capacity less an FFE's slot).
    pub room_bytes: u64,
}

/// The schedule check of `network` on `arch` at the storage widths (and,
/// with an FFE, its default tap), as `accsim run` makes it.
pub fn check(network: &Network, arch: &Arch) -> Result<Schedule> {
    if arch.backend != Backend::PeArray {
        return Ok(Schedule {
            needs: Vec::new(),
            refusals: Vec::new(),
            room_bytes: 0,
        });
    }
    let span = match &arch.ffe {
        None => Span::default(),
        Some(cfg) => {
            let site = crate::mapping::ffe::FixedLayersSite {
                arch_file: &arch.path,
                line_column: cfg.fixed_layers_at,
            };
            let plan = crate::mapping::ffe::plan(network, cfg.fixed_layers, None, site)?;
            super::system::handoff_span(network, arch, plan.first_backend_layer())
        }
    };
    let numerics = super::widths::plan(network, None)
        .map_err(|message| InputError::new("--precision", message))?;
    let dataflow = dataflow_for(arch);
    let plans: Vec<LayerPlan> = numerics
        .layers
        .iter()
        .skip(span.first)
        .map(|layer| dataflow.plan(layer, arch))
        .collect::<Result<_, _>>()?;
    let needs = needs(network, arch, &numerics, &plans, span.first)?;
    let refusals = refusals(network, arch, &needs, &span);
    Ok(Schedule {
        needs,
        refusals,
        room_bytes: arch.glb.capacity_bytes.saturating_sub(span.reserved_bytes),
    })
}

/// One point of a layer's schedule space and the least GLB it holds at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub choice: ScheduleChoice,
    /// Input rows (one pass's; every row when a tile-major schedule keeps
    /// them) plus, with programmable weights, the staging buffer
    /// (pass-major) or the largest weight tile and the fetcher's lookahead.
    pub bytes: u64,
}

/// The schedule space of one array layer (docs/mapping.md, "The schedule space").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Space {
    pub layer: usize,
    pub name: String,
    pub candidates: Vec<Candidate>,
}

/// The schedule space of every array layer of `network` on `arch` (as
/// [`check`] plans them): pass-major, and for a convolution of more than
/// one pass the tile-major order at every tile count from 2 to the most
/// output channels a PE column has, keeping input rows in the GLB or
/// re-fetching them per tile. Empty for a table-driven back-end.
pub fn spaces(network: &Network, arch: &Arch) -> Result<Vec<Space>> {
    let s = check(network, arch)?;
    let numerics = super::widths::plan(network, None)
        .map_err(|message| InputError::new("--precision", message))?;
    let store_of = stores(network);
    let mut out = Vec::new();
    for need in &s.needs {
        let layer = &numerics.layers[need.layer];
        let Ok(LayerPlan::Array(plan)) = dataflow_for(arch).plan(layer, arch) else {
            continue;
        };
        let src = source_index(layer.inputs.first().copied().unwrap_or(TensorSource::Input));
        let mut candidates = vec![Candidate {
            choice: ScheduleChoice::PASS_MAJOR,
            bytes: need.bytes(),
        }];
        if let Op::Conv2d(c) = &layer.op
            && plan.passes() > 1
        {
            let input = Sizes::of(network, &numerics, store_of[src], &need.parts);
            for tiles in 2..=plan.max_lane_channels() {
                let buffer = tile_buffer_bytes(layer, arch, c, tiles, &numerics, need.layer)?;
                for (inputs, rows) in [
                    (InputReuse::Keep, input.all_bytes),
                    (InputReuse::Refetch, input.pass_bytes),
                ] {
                    let choice = ScheduleChoice {
                        order: LoopOrder::WeightTileMajor,
                        tiles,
                        inputs,
                    };
                    candidates.push(Candidate {
                        choice,
                        bytes: rows + buffer,
                    });
                }
            }
        }
        out.push(Space {
            layer: need.layer,
            name: need.name.clone(),
            candidates,
        });
    }
    Ok(out)
}

/// A layer input's bytes: all of it, and the rows of its largest pass
/// (the first part of the layer's need).
struct Sizes {
    all_bytes: u64,
    pass_bytes: u64,
}

impl Sizes {
    fn of(network: &Network, numerics: &NumericsPlan, store: usize, parts: &[Part]) -> Sizes {
        let shape = match store {
            0 => network.input_shape,
            k => network.layers[k - 1].output_shape,
        };
        Sizes {
            all_bytes: (shape.channels * shape.height * shape.width) as u64
                * numerics.storage_bytes[store],
            pass_bytes: parts.first().map_or(0, |p| p.bytes),
        }
    }
}

/// GLB bytes of the tile buffer of convolution `layer` cut into `tiles`
/// weight tiles (the largest tile plus the lookahead; 0 for fixed weights).
fn tile_buffer_bytes(
    layer: &Layer,
    arch: &Arch,
    c: &crate::workload::ir::Conv2d,
    tiles: usize,
    numerics: &NumericsPlan,
    i: usize,
) -> Result<u64> {
    if arch.pe_array.weight_store != WeightStore::Programmable {
        return Ok(0);
    }
    let LayerPlan::Array(plan) = crate::mapping::lu22::plan_tiled(layer, arch, tiles)? else {
        return Ok(0);
    };
    let (groups, icg) = (c.groups, c.in_channels_per_group());
    let ocg = c.out_channels() / groups.max(1);
    let per_step = crate::mapping::schedule::step_weight_words(&plan, groups, icg, ocg);
    let per_tile = crate::mapping::schedule::tile_weight_words(&plan, &per_step);
    let max_step = per_step.iter().flatten().max().copied().unwrap_or(0);
    let words = per_tile.iter().max().copied().unwrap_or(0) + max_step * LOOKAHEAD_STEPS as u64;
    Ok(words * numerics.per_layer[i].weight_bytes)
}
