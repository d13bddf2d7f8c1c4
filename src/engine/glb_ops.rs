//! Layers that run on data in the GLB (SPEC section 1: "pooling runs on data
//! in the GLB"): max, average and global average pooling.
//!
//! ```text
//!   DRAM ──(rows not in the GLB)──► GLB ──► pooling unit ──► GLB (or DRAM)
//! ```
//!
//! The pooling unit reads every in-input element of every window from the
//! GLB (no line buffer) and writes one word per output; it consumes
//! `bank_width_bytes` bytes per cycle, one bank port's worth (accsim choice,
//! docs/arch-format.md). It works an output row at a time; the input rows
//! the next output row needs are fetched from DRAM while it works.

use crate::error::Result;
use crate::reference;
use crate::sim::{Cycle, RateServer};
use crate::units::DataType;
use crate::workload::ir::{Layer, Op};

use super::array::free_all_rows;
use super::storage::TensorStore;
use super::{LayerTiming, Machine};

/// Window rows `[start, end)` of output row `oy` (clipped to the input).
fn input_rows(layer: &Layer, oy: usize, height: usize) -> std::ops::Range<usize> {
    match &layer.op {
        Op::MaxPool(p) | Op::AvgPool(p) => {
            let lo = (oy * p.stride[0]).saturating_sub(p.padding.top);
            let hi = (oy * p.stride[0] + p.kernel[0]).saturating_sub(p.padding.top);
            lo.min(height)..hi.min(height)
        }
        _ => 0..height,
    }
}

pub(super) fn run(
    m: &mut Machine,
    layer: &Layer,
    input: &mut TensorStore,
    output: &mut TensorStore,
    start: Cycle,
) -> Result<LayerTiming> {
    let out_rows = output.shape.height;
    let height = input.shape.height;
    let last_reader = input.readers_left <= 1;
    let mut unit = RateServer::new(u64::from(m.arch.glb.bank_width_bytes));
    let mut first_use = vec![usize::MAX; height];
    for oy in (0..out_rows).rev() {
        for y in input_rows(layer, oy, height) {
            first_use[y] = oy;
        }
    }
    // Room for the rows of two output rows when some input is in DRAM.
    let window_rows = (0..out_rows)
        .map(|oy| input_rows(layer, oy, height).len())
        .max()
        .unwrap_or(0) as u64;
    let start = if input.in_glb.iter().all(|&r| r) {
        start
    } else {
        super::storage::evict_rows(
            m,
            input,
            2 * window_rows * input.row_bytes(),
            |y| first_use[y],
            start,
        )
    };
    // Each input row's arrival in the GLB.
    let mut ready: Vec<Option<Cycle>> = (0..height)
        .map(|y| input.in_glb[y].then_some(start))
        .collect();
    let mut last_use = vec![0usize; height];
    for oy in 0..out_rows {
        for y in input_rows(layer, oy, height) {
            last_use[y] = oy;
        }
    }
    // The whole output, computed by the shared pooling arithmetic from the
    // values in the store (the data the unit reads).
    let values = match &layer.op {
        Op::MaxPool(p) => reference::max_pool(p, &input.data),
        Op::AvgPool(p) => reference::avg_pool(p, &input.data),
        Op::GlobalAvgPool { rounding } => reference::global_avg_pool(*rounding, &input.data),
        _ => input.data.clone(),
    };
    let fetch = |m: &mut Machine,
                 input: &mut TensorStore,
                 ready: &mut Vec<Option<Cycle>>,
                 rows: std::ops::Range<usize>,
                 at: Cycle|
     -> Result<()> {
        for y in rows {
            if ready[y].is_some() {
                continue;
            }
            if !m.glb.space.try_take(input.row_bytes()) {
                return Err(crate::error::InputError::new(
                    &m.arch.path,
                    format!("layer `{}` cannot be tiled: an input row of {} bytes does not fit the {} free bytes of GLB; valid: a larger [glb] capacity_kib", layer.name, input.row_bytes(), m.glb.space.available()),
                )
                .context("[glb]")
                .field("capacity_kib")
                .into());
            }
            let done = m.dram_read(
                at,
                input.dram_address(0, y, 0),
                DataType::Input,
                input.row_words(),
                input.row_bytes(),
            );
            let written = m
                .glb
                .write(done, DataType::Input, input.row_words(), input.row_bytes());
            input.in_glb[y] = true;
            ready[y] = Some(written.end);
        }
        Ok(())
    };
    let mut t = start;
    let mut first_compute = None;
    let mut last_compute = start;
    let mut compute = 0u64;
    let mut end = start;
    let mut spilled_rows = 0;
    let wb = input.word_bytes;
    for oy in 0..out_rows {
        m.trace_advance(t)?;
        m.trace_set(|p| p.step, t, oy as u64);
        let rows = input_rows(layer, oy, height);
        fetch(m, input, &mut ready, rows.clone(), t)?;
        // Fetch ahead for the next output row while this one computes.
        if oy + 1 < out_rows {
            fetch(m, input, &mut ready, input_rows(layer, oy + 1, height), t)?;
        }
        let data_ready = rows.clone().filter_map(|y| ready[y]).max().unwrap_or(t);
        // In-input window elements of the row's outputs, all channels.
        let reads = window_reads(layer, oy, input) * input.shape.channels as u64;
        let glb = m
            .glb
            .read(data_ready.max(t), DataType::Input, reads, reads * wb);
        let work = unit.request(glb.start, reads * wb);
        m.trace_busy(|p| p.pool_busy, work.start, work.end);
        let done = work.end.max(glb.end);
        first_compute.get_or_insert(work.start);
        compute += work.end.since(work.start);
        last_compute = last_compute.max(done);
        // The output row.
        for c in 0..output.shape.channels {
            for x in 0..output.shape.width {
                output.data[[c, oy, x]] = values[[c, oy, x]];
            }
        }
        let words = output.row_words();
        let bytes = output.row_bytes();
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
        if last_reader {
            for y in rows {
                if last_use[y] == oy && input.in_glb[y] {
                    input.in_glb[y] = false;
                    m.glb.space.give_back(input.row_bytes());
                }
            }
        }
        t = done;
        m.events += 1;
    }
    if last_reader {
        free_all_rows(m, input);
    }
    let first = first_compute.unwrap_or(start);
    Ok(LayerTiming {
        start,
        end: end.max(last_compute),
        first_compute: first,
        last_compute,
        compute: compute.min(last_compute.since(first)),
        spilled_rows,
    })
}

/// In-input elements read per channel for output row `oy`.
fn window_reads(layer: &Layer, oy: usize, input: &TensorStore) -> u64 {
    let (h, w) = (input.shape.height, input.shape.width);
    match &layer.op {
        Op::MaxPool(p) | Op::AvgPool(p) => {
            let rows = input_rows(layer, oy, h).len() as u64;
            let out_w = layer.output_shape.width;
            (0..out_w)
                .map(|ox| {
                    let lo = (ox * p.stride[1]).saturating_sub(p.padding.left).min(w);
                    let hi = (ox * p.stride[1] + p.kernel[1])
                        .saturating_sub(p.padding.left)
                        .min(w);
                    (hi - lo) as u64 * rows
                })
                .sum()
        }
        _ => (h * w) as u64,
    }
}
