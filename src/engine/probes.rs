//! The signals the engine traces, and the `Machine` methods that perform a
//! hardware request and record it in one place, so every traced change comes
//! from the event that also produced the report's counts.

use crate::hw::dram::DramStats;
use crate::sim::{Cycle, Grant};
use crate::trace::{Group, SignalId, Tracer};
use crate::units::DataType;

use super::Machine;
use super::stepper::Part;

/// Signal handles of the PE-array machine.
pub(crate) struct Probes {
    pub layer: SignalId,
    pub pass: SignalId,
    pub subpass: SignalId,
    pub step: SignalId,
    /// The layer's schedule (docs/traces.md): loop order (0 pass-major, 1
    /// weight-tile-major), its weight tiles, where weights and input rows
    /// are re-read from, and the (tile, pass) visit of the step issued.
    pub loop_order: SignalId,
    pub weight_tiles: SignalId,
    pub weights_from: SignalId,
    pub inputs_from: SignalId,
    pub weight_tile: SignalId,
    pub visit: SignalId,
    /// Why the PE array is not computing (`causes::Wait::trace_code`).
    pub stall_cause: SignalId,
    pub row_busy: Vec<SignalId>,
    pub row_active_pes: Vec<SignalId>,
    pub row_input_rf: Vec<SignalId>,
    pub row_psum_rf: Vec<SignalId>,
    pub pe_busy: Vec<SignalId>,
    pub mac_cycles: SignalId,
    /// MAC precision of the running layer: 0 = 16x16, 1 = 16x8, 2 = 8x16, 3 = 8x8.
    pub mac_mode: SignalId,
    pub input_bus: SignalId,
    pub weight_bus: SignalId,
    pub output_bus: SignalId,
    pub links: Vec<SignalId>,
    pub glb_read_busy: SignalId,
    pub glb_write_busy: SignalId,
    pub glb_read_words: SignalId,
    pub glb_write_words: SignalId,
    pub glb_reads: SignalId,
    pub glb_writes: SignalId,
    pub glb_used_bytes: SignalId,
    pub pool_busy: SignalId,
    pub dram_busy: SignalId,
    pub dram_read_bytes: SignalId,
    pub dram_write_bytes: SignalId,
    pub dram_row_hits: SignalId,
    pub dram_row_misses: SignalId,
}

impl Probes {
    pub fn define(t: &mut Tracer, rows: usize, cols: usize) -> Probes {
        use Group::*;
        let per_pe = t.per_pe();
        Probes {
            layer: t.signal(Controller, "controller", "layer", 16),
            pass: t.signal(Controller, "controller", "pass", 32),
            subpass: t.signal(Controller, "controller", "subpass", 16),
            step: t.signal(Controller, "controller", "step", 32),
            loop_order: t.signal(Controller, "controller", "loop_order", 1),
            weight_tiles: t.signal(Controller, "controller", "weight_tiles", 16),
            weights_from: t.signal(Controller, "controller", "weights_from", 2),
            inputs_from: t.signal(Controller, "controller", "inputs_from", 1),
            weight_tile: t.signal(Controller, "controller", "weight_tile", 16),
            visit: t.signal(Controller, "controller", "visit", 32),
            stall_cause: t.signal(Controller, "controller", "stall_cause", 4),
            row_busy: (0..rows)
                .map(|r| t.signal(Array, "array", format!("row{r}_busy"), 1))
                .collect(),
            row_active_pes: (0..rows)
                .map(|r| t.signal(Array, "array", format!("row{r}_active_pes"), 16))
                .collect(),
            row_input_rf: (0..rows)
                .map(|r| t.signal(Array, "array", format!("row{r}_input_rf_entries"), 16))
                .collect(),
            row_psum_rf: (0..rows)
                .map(|r| t.signal(Array, "array", format!("row{r}_psum_rf_entries"), 16))
                .collect(),
            pe_busy: if per_pe {
                (0..rows * cols)
                    .map(|p| {
                        t.signal(
                            Array,
                            "pes",
                            format!("pe_{}_{}_busy", p / cols, p % cols),
                            1,
                        )
                    })
                    .collect()
            } else {
                Vec::new()
            },
            mac_cycles: t.signal(Array, "array", "mac_cycles_per_op", 8),
            mac_mode: t.signal(Array, "array", "mac_mode", 2),
            input_bus: t.signal(Noc, "noc", "input_bus_busy", 1),
            weight_bus: t.signal(Noc, "noc", "weight_bus_busy", 1),
            output_bus: t.signal(Noc, "noc", "output_bus_busy", 1),
            links: (0..rows.saturating_sub(1))
                .map(|r| t.signal(Noc, "noc", format!("link{r}_{}_busy", r + 1), 1))
                .collect(),
            glb_read_busy: t.signal(Glb, "glb", "read_busy", 1),
            glb_write_busy: t.signal(Glb, "glb", "write_busy", 1),
            glb_read_words: t.signal(Glb, "glb", "read_words_total", 64),
            glb_write_words: t.signal(Glb, "glb", "write_words_total", 64),
            glb_reads: t.signal(Glb, "glb", "read_requests_total", 64),
            glb_writes: t.signal(Glb, "glb", "write_requests_total", 64),
            glb_used_bytes: t.signal(Glb, "glb", "used_bytes", 32),
            pool_busy: t.signal(Glb, "glb", "pooling_unit_busy", 1),
            dram_busy: t.signal(Dram, "dram", "channel_busy", 1),
            dram_read_bytes: t.signal(Dram, "dram", "read_bytes_total", 64),
            dram_write_bytes: t.signal(Dram, "dram", "write_bytes_total", 64),
            dram_row_hits: t.signal(Dram, "dram", "row_hits_total", 64),
            dram_row_misses: t.signal(Dram, "dram", "row_misses_total", 64),
        }
    }
}

/// Which bus of the array.
#[derive(Clone, Copy)]
pub(crate) enum Bus {
    Input,
    Weight,
    Output,
}

impl Machine {
    /// Writes trace changes that can no longer be preceded by new ones.
    pub(crate) fn trace_advance(&mut self, now: Cycle) -> crate::error::Result<()> {
        if let Some((t, p)) = &mut self.trace {
            if t.past_window(now) {
                // The window is over: write the rest and stop tracing.
                t.finish(now)?;
                self.trace = None;
                self.dram.log_busy = false;
                return Ok(());
            }
            t.set(p.glb_used_bytes, now, self.glb.space.used());
            t.advance(now)?;
        }
        Ok(())
    }

    pub(crate) fn trace_set(&mut self, pick: impl Fn(&Probes) -> SignalId, at: Cycle, value: u64) {
        if let Some((t, p)) = &mut self.trace {
            t.set(pick(p), at, value);
        }
    }

    pub(crate) fn trace_add(&mut self, pick: impl Fn(&Probes) -> SignalId, at: Cycle, delta: i64) {
        if let Some((t, p)) = &mut self.trace {
            t.add(pick(p), at, delta);
        }
    }

    pub(crate) fn trace_busy(
        &mut self,
        pick: impl Fn(&Probes) -> SignalId,
        start: Cycle,
        end: Cycle,
    ) {
        if let Some((t, p)) = &mut self.trace {
            t.busy(pick(p), start, end);
        }
    }

    /// True when not tracing, or when what ends by `end` is before the trace
    /// window (callers skip changes whose net effect by then is nil).
    pub(crate) fn trace_quiet_before(&self, end: Cycle) -> bool {
        self.trace.as_ref().is_none_or(|(t, _)| t.quiet_before(end))
    }

    /// True when tracing (callers skip work that only feeds the trace).
    pub(crate) fn tracing(&self) -> bool {
        self.trace.is_some()
    }

    pub(crate) fn glb_read(&mut self, at: Cycle, data: DataType, words: u64, bytes: u64) -> Grant {
        self.check_made_now("GLB read", at);
        let g = self.glb.read(at, data, words, bytes);
        if let Some(s) = &mut self.stepper {
            s.request(Part::Glb, at, self.glb.slots(bytes), g);
        }
        if let Some((t, p)) = &mut self.trace {
            t.busy(p.glb_read_busy, g.start, g.end);
            t.add(p.glb_read_words, at, words as i64);
            t.add(p.glb_reads, at, 1);
        }
        g
    }

    pub(crate) fn glb_write(&mut self, at: Cycle, data: DataType, words: u64, bytes: u64) -> Grant {
        self.check_made_now("GLB write", at);
        let g = self.glb.write(at, data, words, bytes);
        if let Some(s) = &mut self.stepper {
            s.request(Part::Glb, at, self.glb.slots(bytes), g);
        }
        if let Some((t, p)) = &mut self.trace {
            t.busy(p.glb_write_busy, g.start, g.end);
            t.add(p.glb_write_words, at, words as i64);
            t.add(p.glb_writes, at, 1);
        }
        g
    }

    fn trace_dram(&mut self, at: Cycle, before: DramStats) {
        if let Some((t, p)) = &mut self.trace {
            let after = self.dram.stats();
            for (s, e) in self.dram.take_busy_log() {
                t.busy(p.dram_busy, s, e);
            }
            t.add(
                p.dram_read_bytes,
                at,
                (after.read_bytes - before.read_bytes) as i64,
            );
            t.add(
                p.dram_write_bytes,
                at,
                (after.write_bytes - before.write_bytes) as i64,
            );
            t.add(
                p.dram_row_hits,
                at,
                (after.row_hits - before.row_hits) as i64,
            );
            t.add(
                p.dram_row_misses,
                at,
                (after.row_misses - before.row_misses) as i64,
            );
        }
    }

    /// `None` when a DRAM read sent now finds a free read-queue entry;
    /// else when the next one frees (readers hold back until then).
    pub(crate) fn dram_read_queue_full(&mut self) -> Option<Cycle> {
        self.dram.read_queue_full(self.clock)
    }

    /// `None` when a DRAM write sent now finds a free write-queue entry
    /// (entries the array's output stage claimed count as taken); else when
    /// the next one frees, or a claimed one is used or given back (every
    /// writer holds back until then).
    pub(crate) fn dram_write_queue_full(&mut self) -> Option<Cycle> {
        self.dram.write_queue_full(self.clock)
    }

    pub(crate) fn dram_read(
        &mut self,
        at: Cycle,
        addr: u64,
        data: DataType,
        words: u64,
        bytes: u64,
    ) -> Cycle {
        self.check_made_now("DRAM read", at);
        if self.dram.read_queue_full(at).is_some() {
            self.note_engine_bug(format!(
                "a DRAM read was sent at cycle {at} into a full read queue (the reader must hold back)"
            ));
        }
        let before = self.dram.stats();
        let done = self.dram.read_data(at, addr, data, words, bytes);
        if let Some(s) = &mut self.stepper {
            s.dram(false, at, addr, bytes, done);
        }
        self.trace_dram(at, before);
        done
    }

    pub(crate) fn dram_write(
        &mut self,
        at: Cycle,
        addr: u64,
        data: DataType,
        words: u64,
        bytes: u64,
    ) -> Cycle {
        self.check_made_now("DRAM write", at);
        if self.dram.write_queue_full(at).is_some() {
            self.note_engine_bug(format!(
                "a DRAM write was sent at cycle {at} into a full write queue (the writer must hold back)"
            ));
        }
        let before = self.dram.stats();
        let done = self.dram.write_data(at, addr, data, words, bytes);
        if let Some(s) = &mut self.stepper {
            s.dram(true, at, addr, bytes, done);
        }
        self.trace_dram(at, before);
        done
    }

    pub(crate) fn bus(&mut self, bus: Bus, at: Cycle, bytes: u64) -> Grant {
        let g = match bus {
            Bus::Input => self.noc.input_bus.request(at, bytes),
            Bus::Weight => self.noc.weight_bus.request(at, bytes),
            Bus::Output => self.noc.output_bus.request(at, bytes),
        };
        if let Some(s) = &mut self.stepper {
            let part = match bus {
                Bus::Input => Part::InputBus,
                Bus::Weight => Part::WeightBus,
                Bus::Output => Part::OutputBus,
            };
            s.request(part, at, bytes, g);
        }
        if let Some((t, p)) = &mut self.trace {
            let id = match bus {
                Bus::Input => p.input_bus,
                Bus::Weight => p.weight_bus,
                Bus::Output => p.output_bus,
            };
            t.busy(id, g.start, g.end);
        }
        g
    }

    /// Work of `bytes` on the GLB unit (`unit`, its closed form), from `at`.
    pub(crate) fn glb_unit_work(
        &mut self,
        unit: &mut crate::sim::RateServer,
        at: Cycle,
        bytes: u64,
    ) -> Grant {
        let g = unit.request(at, bytes);
        if let Some(s) = &mut self.stepper {
            s.request(Part::GlbUnit, at, bytes, g);
        }
        g
    }

    pub(crate) fn link(&mut self, index: usize, at: Cycle, words: u64) -> Grant {
        let g = self.noc.links[index].request(at, words);
        if let Some(s) = &mut self.stepper {
            s.request(Part::Link(index), at, words, g);
        }
        if let Some((t, p)) = &mut self.trace
            && let Some(&id) = p.links.get(index)
        {
            t.busy(id, g.start, g.end);
        }
        g
    }
}
