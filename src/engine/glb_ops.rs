//! Layers that run on data in the GLB (SPEC section 1: "pooling runs on data
//! in the GLB"): max, average and global average pooling, ONNX's
//! requantising average pool, and element-wise additions (residuals).
//!
//! ```text
//!   DRAM ──(rows not in the GLB)──► GLB ──► GLB unit ──► GLB (or DRAM)
//! ```
//!
//! The GLB unit reads every in-input element of every window (every element
//! of both operands for an addition) from the GLB, with no line buffer, and
//! writes one word per output; it consumes `bank_width_bytes` bytes per
//! cycle, one bank port's worth (accsim choice, docs/arch-format.md). It
//! works an output row at a time; the input rows the next output row needs
//! are fetched from DRAM while it works. Its arithmetic is the shared
//! operator arithmetic of `reference`, applied to the data in the stores.

use std::ops::Range;

use crate::error::{InputError, Result};
use crate::reference;
use crate::sim::{Cycle, RateServer};
use crate::units::DataType;
use crate::workload::ir::{Layer, Op, Pool};

use super::array::free_all_rows;
use super::storage::{Parked, TensorStore};
use super::{LayerTiming, Machine};

fn window(layer: &Layer) -> Option<&Pool> {
    match &layer.op {
        Op::MaxPool(p) | Op::AvgPool(p) => Some(p),
        Op::QLinearAvgPool(q) => Some(&q.pool),
        _ => None,
    }
}

/// Input rows `[start, end)` output row `oy` reads (clipped to the input).
fn input_rows(layer: &Layer, oy: usize, height: usize) -> Range<usize> {
    match (&layer.op, window(layer)) {
        (_, Some(p)) => {
            let lo = (oy * p.stride[0]).saturating_sub(p.padding.top);
            let hi = (oy * p.stride[0] + p.kernel[0]).saturating_sub(p.padding.top);
            lo.min(height)..hi.min(height)
        }
        (Op::Add(_), None) => oy.min(height)..(oy + 1).min(height),
        _ => 0..height,
    }
}

/// In-input elements read per channel for output row `oy`.
fn reads_per_channel(layer: &Layer, oy: usize, input: &TensorStore) -> u64 {
    let (h, w) = (input.shape.height, input.shape.width);
    let rows = input_rows(layer, oy, h).len() as u64;
    match window(layer) {
        Some(p) => (0..layer.output_shape.width)
            .map(|ox| {
                let lo = (ox * p.stride[1]).saturating_sub(p.padding.left).min(w);
                let hi = (ox * p.stride[1] + p.kernel[1])
                    .saturating_sub(p.padding.left)
                    .min(w);
                (hi - lo) as u64 * rows
            })
            .sum(),
        None => w as u64 * rows,
    }
}

fn cannot_tile(m: &Machine, layer: &Layer, bytes: u64) -> crate::error::Error {
    InputError::new(
        &m.arch.path,
        format!(
            "layer `{}` cannot be tiled: an input row of {bytes} bytes does not fit the {} free bytes of GLB; valid: a larger [glb] capacity_kib",
            layer.name,
            m.glb.space.available()
        ),
    )
    .context("[glb]")
    .field("capacity_kib")
    .into()
}

/// Runs a GLB-side layer. `inputs` holds each distinct input tensor once;
/// `operand_of[i]` is the index in `inputs` of the operator's `i`-th operand
/// (so `x + x` reads one tensor for both).
pub(super) fn run(
    m: &mut Machine,
    layer: &Layer,
    inputs: &mut [&mut TensorStore],
    operand_of: &[usize],
    output: &mut TensorStore,
    parked: &mut Parked<'_>,
    layer_start: Cycle,
) -> Result<LayerTiming> {
    let out_rows = output.shape.height;
    let start = layer_start;
    let mut unit = RateServer::new(u64::from(m.arch.glb.bank_width_bytes));

    // Per operand: when each row arrives in the GLB, and which output row uses it last.
    let mut ready: Vec<Vec<Option<Cycle>>> = Vec::new();
    let mut last_use: Vec<Vec<usize>> = Vec::new();
    let mut start = start;
    for input in inputs.iter_mut() {
        let height = input.shape.height;
        let mut first_use = vec![usize::MAX; height];
        let mut last = vec![0usize; height];
        for oy in 0..out_rows {
            for y in input_rows(layer, oy, height) {
                first_use[y] = first_use[y].min(oy);
                last[y] = oy;
            }
        }
        // Room for the rows of two output rows when some input is in DRAM.
        if !input.in_glb.iter().all(|&r| r) {
            let window_rows = (0..out_rows)
                .map(|oy| input_rows(layer, oy, height).len())
                .max()
                .unwrap_or(0) as u64;
            start = super::storage::evict_rows(
                m,
                input,
                2 * window_rows * input.row_bytes(),
                |y| first_use[y],
                start,
            );
        }
        ready.push(
            (0..height)
                .map(|y| input.in_glb[y].then_some(start))
                .collect(),
        );
        last_use.push(last);
    }
    let last_reader: Vec<bool> = inputs.iter().map(|i| i.readers_left <= 1).collect();

    // The whole output, by the shared operator arithmetic, from the data the
    // unit reads.
    let operands: Vec<&crate::workload::Activations> =
        operand_of.iter().map(|&k| &inputs[k].data).collect();
    let values = reference::execute_layer(layer, &operands);

    let mut t = start;
    let mut first_compute = None;
    let mut last_compute = start;
    let mut compute = 0u64;
    let mut end = start;
    let mut spilled_rows = 0;
    for oy in 0..out_rows {
        m.trace_advance(t)?;
        m.trace_set(|p| p.step, t, oy as u64);
        let mut data_ready = t;
        let mut reads = 0u64;
        let mut read_bytes = 0u64;
        for (k, input) in inputs.iter_mut().enumerate() {
            let height = input.shape.height;
            // This output row's rows, and the next one's (fetched ahead).
            let wanted = input_rows(layer, oy, height);
            let ahead = if oy + 1 < out_rows {
                input_rows(layer, oy + 1, height)
            } else {
                0..0
            };
            for y in wanted.clone().chain(ahead) {
                if ready[k][y].is_some() {
                    continue;
                }
                if !m.glb.space.try_take(input.row_bytes()) {
                    // The unit works one output row at a time: the rows it
                    // needs can come only from tensors parked for later layers.
                    parked.make_room(m, input.row_bytes(), t);
                    if !m.glb.space.try_take(input.row_bytes()) {
                        return Err(cannot_tile(m, layer, input.row_bytes()));
                    }
                }
                let done = m.dram_read(
                    t,
                    input.dram_address(0, y, 0),
                    DataType::Input,
                    input.row_words(),
                    input.row_bytes(),
                );
                let written =
                    m.glb_write(done, DataType::Input, input.row_words(), input.row_bytes());
                input.in_glb[y] = true;
                ready[k][y] = Some(written.end);
            }
            data_ready = data_ready.max(wanted.filter_map(|y| ready[k][y]).max().unwrap_or(t));
            let words = reads_per_channel(layer, oy, input) * input.shape.channels as u64;
            reads += words;
            read_bytes += words * input.word_bytes;
        }
        let glb = m.glb_read(data_ready, DataType::Input, reads, read_bytes);
        let work = unit.request(glb.start, read_bytes);
        m.trace_busy(|p| p.pool_busy, work.start, work.end);
        let done = work.end.max(glb.end);
        first_compute.get_or_insert(work.start);
        compute += work.end.since(work.start);
        last_compute = last_compute.max(done);

        // The output row: into the GLB if it has room, else through it to DRAM.
        for c in 0..output.shape.channels {
            for x in 0..output.shape.width {
                output.data[[c, oy, x]] = values[[c, oy, x]];
            }
        }
        let (words, bytes) = (output.row_words(), output.row_bytes());
        if m.glb.space.try_take(bytes) {
            output.in_glb[oy] = true;
            end = end.max(m.glb_write(done, DataType::Output, words, bytes).end);
        } else {
            if output.dram_base.is_none() {
                output.dram_base = Some(m.allocator.allocate(output.bytes()));
            }
            let w = m.glb_write(done, DataType::Output, words, bytes);
            let r = m.glb_read(w.end, DataType::Output, words, bytes);
            end = end.max(m.dram_write(
                r.end,
                output.dram_address(0, oy, 0),
                DataType::Output,
                words,
                bytes,
            ));
            output.in_dram[oy] = true;
            spilled_rows += 1;
        }
        // Input rows no later output row needs.
        for (k, input) in inputs.iter_mut().enumerate() {
            if !last_reader[k] {
                continue;
            }
            for y in input_rows(layer, oy, input.shape.height) {
                if last_use[k][y] == oy && input.in_glb[y] {
                    input.in_glb[y] = false;
                    m.glb.space.give_back(input.row_bytes());
                }
            }
        }
        t = done;
        m.events += 1;
    }
    for (k, input) in inputs.iter_mut().enumerate() {
        if last_reader[k] {
            free_all_rows(m, input);
        }
    }
    let first = first_compute.unwrap_or(start);
    Ok(LayerTiming {
        start: layer_start,
        end: end.max(last_compute),
        first_compute: first,
        last_compute,
        compute: compute.min(last_compute.since(first)),
        spilled_rows,
    })
}
