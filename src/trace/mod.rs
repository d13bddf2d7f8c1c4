//! Cycle traces: what the hardware did, as a Value Change Dump (VCD) for
//! GTKWave or Surfer, and waveform-like plots (docs/traces.md).
//!
//! The engine pushes changes to a [`Tracer`] from the same events that
//! produce the report's counts (the `Machine` methods that perform a request
//! also record it), never reconstructed afterwards. Three kinds of signal:
//! - **levels** (layer index, RF occupancy, PEs busy in a row): set or moved
//!   by a delta at a cycle;
//! - **busy lanes** (bus, port, channel activity): intervals, coalesced;
//! - **counters** (words read, bytes moved, row hits): cumulative, so the
//!   activity inside any window is the difference of two values.
//!
//! Changes can be scheduled a little into the future (a transfer's end is
//! known when it starts), so they wait in a small time-ordered buffer and are
//! written once the simulation has passed them: the file streams, and one
//! time unit is one clock cycle.

pub mod plot;
pub mod read;

use std::io::Write;
use std::path::{Path, PathBuf};

use vcd::{IdCode, TimescaleUnit};

use crate::atomic::AtomicFile;
use crate::error::{Error, InputError, Result};
use crate::sim::Cycle;

/// Groups of signals a user can pick (`--trace-signals`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Group {
    Controller,
    Array,
    Noc,
    Glb,
    Dram,
    Ffe,
}

impl Group {
    pub const ALL: [Group; 6] = [
        Group::Controller,
        Group::Array,
        Group::Noc,
        Group::Glb,
        Group::Dram,
        Group::Ffe,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Group::Controller => "controller",
            Group::Array => "array",
            Group::Noc => "noc",
            Group::Glb => "glb",
            Group::Dram => "dram",
            Group::Ffe => "ffe",
        }
    }

    fn parse(s: &str) -> Option<Group> {
        Group::ALL.into_iter().find(|g| g.name() == s)
    }
}

/// What to record.
#[derive(Debug, Clone)]
pub struct TraceOptions {
    pub path: PathBuf,
    /// Record only changes in `[start, end)` (cycles).
    pub window: Option<(u64, u64)>,
    /// Record only while one of these layers (indices) runs.
    pub layers: Option<Vec<usize>>,
    pub groups: Vec<Group>,
    /// One busy lane per PE, besides the per-row ones.
    pub per_pe: bool,
}

impl TraceOptions {
    /// Parses `START:END`.
    pub fn parse_window(s: &str) -> Result<(u64, u64), InputError> {
        let bad = || {
            InputError::new(
                "--trace-window",
                format!("`{s}` is not START:END in cycles with START < END; valid: e.g. 0:100000"),
            )
        };
        let (a, b) = s.split_once(':').ok_or_else(bad)?;
        let a: u64 = a.trim().parse().map_err(|_| bad())?;
        let b: u64 = b.trim().parse().map_err(|_| bad())?;
        if a >= b {
            return Err(bad());
        }
        Ok((a, b))
    }

    /// Parses a comma-separated list of groups.
    pub fn parse_groups(s: &str) -> Result<Vec<Group>, InputError> {
        s.split(',')
            .map(|g| {
                Group::parse(g.trim()).ok_or_else(|| {
                    InputError::new(
                        "--trace-signals",
                        format!(
                            "unknown signal group `{}`; valid: {}",
                            g.trim(),
                            Group::ALL.map(Group::name).join(", ")
                        ),
                    )
                })
            })
            .collect()
    }

    /// Parses a comma-separated list of layer indices.
    pub fn parse_layers(s: &str) -> Result<Vec<usize>, InputError> {
        s.split(',')
            .map(|x| x.trim().parse().map_err(|_| InputError::new("--trace-layers", format!("`{}` is not a layer index; valid: a comma-separated list of indices such as 0,2,5", x.trim()))))
            .collect()
    }
}

/// A signal handle: an index into the tracer's table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SignalId(u32);

struct SignalDef {
    scope: &'static str,
    name: String,
    width: u32,
    group: Group,
    code: Option<IdCode>,
    /// Value as of the last change written (or pending application).
    value: u64,
    written: Option<u64>,
    /// Busy lanes: the open run `[start, end)` not yet emitted.
    run: Option<(Cycle, Cycle)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Change {
    Set(u64),
    Add(i64),
}

/// Cycles covered by the calendar queue's buckets.
const RING: u64 = 4096;

/// Records signal changes and writes them as VCD.
pub struct Tracer {
    options: TraceOptions,
    signals: Vec<SignalDef>,
    /// Changes not yet written: a calendar queue. Changes within
    /// [`RING`] cycles of `base` sit in per-cycle buckets in arrival order;
    /// later ones wait in `far` (in arrival order) until they come near.
    ring: Vec<Vec<(SignalId, Change)>>,
    ring_len: usize,
    far: Vec<(Cycle, SignalId, Change)>,
    /// Every pending change is at or after `base`.
    base: u64,
    /// One VCD line being formatted (reused).
    line: Vec<u8>,
    /// The VCD being written (until [`Tracer::finish`] commits it).
    out: Option<AtomicFile>,
    /// Each signal's VCD identifier, formatted once.
    codes: Vec<String>,
    last_time: Option<u64>,
    /// Busy lanes with an open run (so [`Tracer::advance`] visits only them).
    open_runs: Vec<SignalId>,
    /// Intervals during which the layer filter records (`None` end: open).
    layer_intervals: Vec<(Cycle, Option<Cycle>)>,
    /// The last change applied was recorded (so values on file are current).
    recording: bool,
    changes_written: u64,
    pub clock_mhz: f64,
}

impl Tracer {
    /// A tracer writing to `options.path` (created on [`Tracer::begin`]).
    pub fn new(options: TraceOptions, clock_mhz: f64) -> Self {
        Tracer {
            options,
            signals: Vec::new(),
            ring: (0..RING).map(|_| Vec::new()).collect(),
            ring_len: 0,
            far: Vec::new(),
            base: 0,
            line: Vec::with_capacity(96),
            out: None,
            codes: Vec::new(),
            last_time: None,
            open_runs: Vec::new(),
            layer_intervals: Vec::new(),
            recording: false,
            changes_written: 0,
            clock_mhz,
        }
    }

    /// Declares a signal (before [`Tracer::begin`]). Signals of groups not
    /// selected are accepted and ignored, so callers need not check.
    pub fn signal(
        &mut self,
        group: Group,
        scope: &'static str,
        name: impl Into<String>,
        width: u32,
    ) -> SignalId {
        self.signals.push(SignalDef {
            scope,
            name: name.into(),
            width: width.clamp(1, 64),
            group,
            code: None,
            value: 0,
            written: None,
            run: None,
        });
        SignalId(self.signals.len() as u32 - 1)
    }

    pub fn wants(&self, group: Group) -> bool {
        self.options.groups.contains(&group)
    }

    pub fn per_pe(&self) -> bool {
        self.options.per_pe
    }

    /// Writes the VCD header. The file is written under a temporary name
    /// and appears at its path on [`Tracer::finish`] ([`crate::atomic`]).
    pub fn begin(&mut self) -> Result<()> {
        let path = self.options.path.clone();
        let fail = |e: std::io::Error| Error::Output {
            path: path.clone(),
            message: e.to_string(),
        };
        let mut file = AtomicFile::create(&path)?;
        let mut w = vcd::Writer::new(Vec::new());
        w.comment(&format!(
            "accsim {}: one time unit is one cycle of the {} MHz accelerator clock",
            env!("CARGO_PKG_VERSION"),
            self.clock_mhz
        ))
        .map_err(fail)?;
        w.timescale(1, TimescaleUnit::NS).map_err(fail)?;
        w.add_module("accsim").map_err(fail)?;
        let mut scopes: Vec<&'static str> = Vec::new();
        for s in &self.signals {
            if self.options.groups.contains(&s.group) && !scopes.contains(&s.scope) {
                scopes.push(s.scope);
            }
        }
        for scope in scopes {
            w.add_module(scope).map_err(fail)?;
            for s in self
                .signals
                .iter_mut()
                .filter(|s| s.scope == scope && self.options.groups.contains(&s.group))
            {
                s.code = Some(w.add_wire(s.width, &s.name).map_err(fail)?);
            }
            w.upscope().map_err(fail)?;
        }
        w.upscope().map_err(fail)?;
        w.enddefinitions().map_err(fail)?;
        file.write_all(w.writer()).map_err(fail)?;
        self.codes = self
            .signals
            .iter()
            .map(|s| s.code.map(|c| c.to_string()).unwrap_or_default())
            .collect();
        self.out = Some(file);
        Ok(())
    }

    fn traced(&self, id: SignalId) -> bool {
        self.signals[id.0 as usize].code.is_some()
    }

    fn push(&mut self, id: SignalId, at: Cycle, change: Change) {
        if let Some((start, end)) = self.options.window {
            if at.0 >= end {
                return;
            }
            if at.0 < start {
                // Before the window only the value at its start matters. Each
                // signal gets either only additions (which commute) or only
                // settings in time order, so applying now gives that value.
                let s = &mut self.signals[id.0 as usize];
                s.value = match change {
                    Change::Set(v) => v,
                    Change::Add(d) => s.value.saturating_add_signed(d),
                };
                return;
            }
        }
        self.enqueue(at, id, change);
    }

    /// True when everything ending at or before `end` is before the window,
    /// so it cannot show in the trace: callers may skip changes whose net
    /// effect by `end` is nil (a level raised and lowered again, a busy run).
    pub fn quiet_before(&self, end: Cycle) -> bool {
        self.options.window.is_some_and(|(start, _)| end.0 <= start)
    }

    /// True once `now` is past the window: nothing more will be recorded.
    pub fn past_window(&self, now: Cycle) -> bool {
        self.options.window.is_some_and(|(_, end)| now.0 >= end)
    }

    /// Sets a level signal to `value` at `at`.
    pub fn set(&mut self, id: SignalId, at: Cycle, value: u64) {
        if self.traced(id) {
            self.push(id, at, Change::Set(value));
        }
    }

    /// Moves a level (or counter) signal by `delta` at `at`.
    pub fn add(&mut self, id: SignalId, at: Cycle, delta: i64) {
        if self.traced(id) && delta != 0 {
            self.push(id, at, Change::Add(delta));
        }
    }

    /// Marks a busy lane active during `[start, end)`. Intervals of one lane
    /// arrive in non-decreasing start order (true of FIFO resources) and
    /// never start before the current horizon; overlapping or touching
    /// intervals merge into one run.
    pub fn busy(&mut self, id: SignalId, start: Cycle, end: Cycle) {
        // A run over before the window leaves the lane idle at its start
        // (a run still open then is one that started earlier and ends later).
        if end <= start || !self.traced(id) || self.quiet_before(end) {
            return;
        }
        let i = id.0 as usize;
        match self.signals[i].run {
            Some((s, e)) if start <= e => self.signals[i].run = Some((s, e.max(end))),
            Some((_, e)) => {
                self.push(id, e, Change::Set(0));
                self.push(id, start, Change::Set(1));
                self.signals[i].run = Some((start, end));
            }
            None => {
                self.push(id, start, Change::Set(1));
                self.signals[i].run = Some((start, end));
                self.open_runs.push(id);
            }
        }
    }

    /// The layer filter: layer `index` starts at `at` (layers start in order).
    pub fn layer_starts(&mut self, index: usize, at: Cycle) {
        let Some(layers) = &self.options.layers else {
            return;
        };
        let active = layers.contains(&index);
        if let Some((_, end @ None)) = self.layer_intervals.last_mut()
            && !active
        {
            *end = Some(at);
        }
        if active
            && self
                .layer_intervals
                .last()
                .is_none_or(|(_, end)| end.is_some())
        {
            self.layer_intervals.push((at, None));
        }
    }

    fn in_filters(&self, at: Cycle) -> bool {
        let in_window = self
            .options
            .window
            .is_none_or(|(a, b)| (a..b).contains(&at.0));
        let in_layers = self.options.layers.is_none()
            || self
                .layer_intervals
                .iter()
                .any(|&(s, e)| at >= s && e.is_none_or(|e| at < e));
        in_window && in_layers
    }

    /// Writes every change before `horizon`; the simulation schedules
    /// nothing before its current cycle, so those changes are final.
    pub fn advance(&mut self, horizon: Cycle) -> Result<()> {
        let mut open = std::mem::take(&mut self.open_runs);
        open.retain(|&id| match self.signals[id.0 as usize].run {
            Some((_, e)) if e < horizon => {
                self.signals[id.0 as usize].run = None;
                self.push(id, e, Change::Set(0));
                false
            }
            _ => true,
        });
        self.open_runs = open;
        // Drain the buckets in cycle order; within a cycle, in arrival order
        // (the order the events made the changes).
        while self.base < horizon.0 {
            if self.ring_len == 0 {
                // Nothing near: jump to the horizon or the first far change.
                let next_far = self
                    .far
                    .iter()
                    .map(|&(at, ..)| at.0)
                    .min()
                    .unwrap_or(u64::MAX);
                self.base = horizon.0.min(next_far);
                self.pull_far();
                continue;
            }
            let limit = horizon.0.min(self.base + RING);
            while self.base < limit {
                let slot = (self.base % RING) as usize;
                if !self.ring[slot].is_empty() {
                    let changes = std::mem::take(&mut self.ring[slot]);
                    self.ring_len -= changes.len();
                    for &(id, change) in &changes {
                        self.apply(Cycle(self.base), id, change)?;
                    }
                    let mut changes = changes;
                    changes.clear();
                    self.ring[slot] = changes;
                }
                self.base += 1;
                if self.ring_len == 0 {
                    break;
                }
            }
            self.pull_far();
        }
        Ok(())
    }

    /// Queues a change at `at` (never before `base`).
    fn enqueue(&mut self, at: Cycle, id: SignalId, change: Change) {
        let at = Cycle(at.0.max(self.base));
        if at.0 < self.base + RING {
            self.ring[(at.0 % RING) as usize].push((id, change));
            self.ring_len += 1;
        } else {
            self.far.push((at, id, change));
        }
    }

    /// Moves far changes that are now within the ring into their buckets,
    /// keeping their arrival order.
    fn pull_far(&mut self) {
        if self.far.iter().all(|&(at, ..)| at.0 >= self.base + RING) {
            return;
        }
        let far = std::mem::take(&mut self.far);
        for (at, id, change) in far {
            self.enqueue(at, id, change);
        }
    }

    fn apply(&mut self, at: Cycle, id: SignalId, change: Change) -> Result<()> {
        let record =
            (self.options.window.is_none() && self.options.layers.is_none()) || self.in_filters(at);
        if record && !self.recording {
            // (Re)entering the recorded span: dump every value as it was just
            // before the span, at the span's start minus one cycle (VCD holds
            // one value per signal and time, so changes made at the start
            // itself stay distinguishable: counters' deltas stay exact).
            let span_start = self.options.window.map_or(0, |(a, _)| a).max(
                self.layer_intervals
                    .iter()
                    .filter(|(s, _)| *s <= at)
                    .map(|(s, _)| s.0)
                    .max()
                    .unwrap_or(0),
            );
            self.write_time(span_start.min(at.0).saturating_sub(1))?;
            for i in 0..self.signals.len() {
                let v = self.signals[i].value;
                self.write_value(SignalId(i as u32), v)?;
            }
        }
        self.recording = record;
        let s = &mut self.signals[id.0 as usize];
        s.value = match change {
            Change::Set(v) => v,
            Change::Add(d) => s.value.saturating_add_signed(d),
        };
        let value = s.value;
        if record && s.written != Some(value) {
            if self.last_time != Some(at.0) {
                self.write_time(at.0)?;
            }
            self.write_value(id, value)?;
        }
        Ok(())
    }

    fn write_time(&mut self, t: u64) -> Result<()> {
        if self.last_time.is_some_and(|last| last >= t) {
            return Ok(());
        }
        self.last_time = Some(t);
        let Some(w) = &mut self.out else {
            return Ok(());
        };
        let mut digits = itoa::Buffer::new();
        let line = &mut self.line;
        line.clear();
        line.push(b'#');
        line.extend_from_slice(digits.format(t).as_bytes());
        line.push(b'\n');
        w.write_all(line).map_err(|e| Error::Output {
            path: self.options.path.clone(),
            message: e.to_string(),
        })
    }

    fn write_value(&mut self, id: SignalId, value: u64) -> Result<()> {
        let s = &mut self.signals[id.0 as usize];
        if s.code.is_none() || s.written == Some(value) {
            return Ok(());
        }
        s.written = Some(value);
        self.changes_written += 1;
        let width = s.width;
        let Some(w) = &mut self.out else {
            return Ok(());
        };
        // Value lines go straight to the VCD stream: the writer's own vector
        // routine formats bit by bit, which dominated traced runs. Leading
        // zeros are implied in VCD vectors.
        let id = self.codes[id.0 as usize].as_bytes();
        let line = &mut self.line;
        line.clear();
        if width == 1 {
            line.push(if value == 0 { b'0' } else { b'1' });
        } else {
            line.push(b'b');
            let bits = (64 - value.leading_zeros()).max(1);
            line.extend(
                (0..bits)
                    .rev()
                    .map(|i| if (value >> i) & 1 == 1 { b'1' } else { b'0' }),
            );
            line.push(b' ');
        }
        line.extend_from_slice(id);
        line.push(b'\n');
        w.write_all(line).map_err(|e| Error::Output {
            path: self.options.path.clone(),
            message: e.to_string(),
        })
    }

    /// Closes open busy runs, writes everything left, marks the end time and
    /// puts the file in place (flushed to disk, renamed from its temporary). Returns the number of value changes written.
    pub fn finish(&mut self, end: Cycle) -> Result<u64> {
        self.advance(Cycle(u64::MAX))?;
        // The recorded span ends at the run's end, the window's end, or the
        // end of the last recorded layer, whichever is first.
        let layers_end = match (&self.options.layers, self.layer_intervals.last()) {
            (Some(_), Some(&(_, Some(e)))) => e.0,
            _ => u64::MAX,
        };
        let end_time = end
            .0
            .min(self.options.window.map_or(u64::MAX, |(_, b)| b))
            .min(layers_end);
        if self.last_time.is_some_and(|t| t < end_time) {
            self.write_time(end_time)?;
        }
        if let Some(file) = self.out.take() {
            file.commit()?;
        }
        Ok(self.changes_written)
    }

    pub fn path(&self) -> &Path {
        &self.options.path
    }
}
