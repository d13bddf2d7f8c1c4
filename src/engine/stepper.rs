//! The cycle-by-cycle stepper (`accsim run --engine cycle`).
//!
//! ```text
//!   controller ──request (cycle sent, units)──► closed form ──► completion the controller uses
//!        │                                                              ▲ must equal
//!        └──── same request, reaching the twin at the cycle sent ──► stepped twin ──ticked every cycle──► completion
//! ```
//!
//! Every shared resource has a stepped twin built from `sim::Component`s:
//! the GLB's bank ports, the input, weight and output buses, each
//! neighbour link and the GLB unit are [`Fifo`]s, the DRAM is a
//! [`SteppedDram`] and the PEs' datapaths are a [`PeArray`]. Each request the
//! controller makes goes to the twin too, reaching it at the cycle it is
//! sent (a transfer that follows another down a path, such as the bus
//! behind a GLB read, is sent when its data starts to flow), behind
//! whatever reached the twin earlier; the stepper ticks every twin every
//! cycle, one cycle after another. A closed form that served requests in
//! the order they were made rather than the order they arrive (a
//! reservation for a later cycle) shows here as a different completion. When a twin finishes a request, the cycle must be the one the
//! event scheduler was given by the resource's closed form; a step the PE
//! array starts must find it idle (lock-step), and it must finish when the
//! scheduler said; the psum RFs must never hold more entries than they
//! have (a sub-pass holds its entries from its first step until the output
//! bus has taken its sums). Any difference stops the run with an internal error
//! naming the resource, the request and both cycles: the default scheduler
//! is then not an exact shortcut of the machine any more.

use std::collections::{BTreeMap, HashMap, VecDeque};

use crate::arch::Arch;
use crate::hw::dram::SteppedDram;
use crate::hw::pe::PeArray;
use crate::sim::{Component, Cycle, Fifo, Grant, Served};

/// A resource with a stepped twin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Part {
    Glb,
    InputBus,
    WeightBus,
    OutputBus,
    Link(usize),
    GlbUnit,
    Dram,
}

impl Part {
    fn name(self) -> String {
        match self {
            Part::Glb => "GLB bank ports".into(),
            Part::InputBus => "input bus".into(),
            Part::WeightBus => "weight bus".into(),
            Part::OutputBus => "output bus".into(),
            Part::Link(r) => format!("neighbour link {r}-{}", r + 1),
            Part::GlbUnit => "GLB unit".into(),
            Part::Dram => "DRAM".into(),
        }
    }
}

/// What the event scheduler said about a request.
#[derive(Debug, Clone, Copy)]
struct Promise {
    part: Part,
    made: Cycle,
    units: u64,
    /// The first cycle of service (`None`: only the completion is known).
    start: Option<Cycle>,
    end: Cycle,
}

/// A request on its way to a twin: it reaches it at the cycle it is sent.
#[derive(Debug, Clone, Copy)]
enum Arrival {
    Fifo {
        part: Part,
        units: u64,
        id: u64,
    },
    Dram {
        write: bool,
        addr: u64,
        bytes: u64,
        id: u64,
    },
}

/// A lock-step PE-array step the scheduler placed.
#[derive(Debug, Clone)]
struct PeStep {
    start: Cycle,
    end: Cycle,
    work: Vec<(usize, u64)>,
}

/// The stepped twins and the promises they must keep.
pub(crate) struct Stepper {
    clock: Cycle,
    glb: Fifo<u64>,
    input_bus: Fifo<u64>,
    weight_bus: Fifo<u64>,
    output_bus: Fifo<u64>,
    links: Vec<Fifo<u64>>,
    glb_unit: Fifo<u64>,
    dram: SteppedDram<u64>,
    pes: PeArray,
    /// Psum-RF entries each PE holds, and the changes to come by cycle.
    psum_held: i64,
    psum_changes: BTreeMap<Cycle, i64>,
    psum_capacity: i64,
    pe_steps: VecDeque<PeStep>,
    pe_running: Option<PeStep>,
    promises: HashMap<u64, Promise>,
    /// Requests sent for a later cycle, by the cycle they reach their twin
    /// (in the order they were made, within a cycle).
    arrivals: BTreeMap<Cycle, Vec<Arrival>>,
    next_id: u64,
    /// Component-cycles stepped (components x cycles).
    pub ticks: u64,
    requests_checked: u64,
    pe_steps_checked: u64,
    broken: Option<String>,
}

impl Stepper {
    pub fn new(arch: &Arch) -> Self {
        let bus = || Fifo::new(u64::from(arch.interconnect.glb_bus_bytes_per_cycle));
        Stepper {
            clock: Cycle::ZERO,
            glb: Fifo::new(u64::from(arch.glb.banks) * u64::from(arch.glb.ports_per_bank)),
            input_bus: bus(),
            weight_bus: bus(),
            output_bus: bus(),
            links: (0..arch.pe_array.rows.saturating_sub(1))
                .map(|_| Fifo::new(u64::from(arch.interconnect.neighbor_words_per_cycle)))
                .collect(),
            glb_unit: Fifo::new(u64::from(arch.glb.bank_width_bytes)),
            dram: SteppedDram::new(&arch.dram),
            pes: PeArray::new((arch.pe_array.rows * arch.pe_array.cols) as usize),
            psum_held: 0,
            psum_changes: BTreeMap::new(),
            psum_capacity: i64::from(arch.pe_array.psum_rf_entries),
            pe_steps: VecDeque::new(),
            pe_running: None,
            promises: HashMap::new(),
            arrivals: BTreeMap::new(),
            next_id: 0,
            ticks: 0,
            requests_checked: 0,
            pe_steps_checked: 0,
            broken: None,
        }
    }

    fn fifo(&mut self, part: Part) -> Option<&mut Fifo<u64>> {
        match part {
            Part::Glb => Some(&mut self.glb),
            Part::InputBus => Some(&mut self.input_bus),
            Part::WeightBus => Some(&mut self.weight_bus),
            Part::OutputBus => Some(&mut self.output_bus),
            Part::Link(r) => self.links.get_mut(r),
            Part::GlbUnit => Some(&mut self.glb_unit),
            Part::Dram => None,
        }
    }

    fn promise(&mut self, promise: Promise) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        if promise.made > promise.end || promise.start.is_some_and(|s| s < promise.made) {
            self.fail(format!(
                "{} request #{id} of {} units made at cycle {} was granted cycles {:?}..{}, before it was made",
                promise.part.name(),
                promise.units,
                promise.made,
                promise.start,
                promise.end
            ));
        }
        self.promises.insert(id, promise);
        id
    }

    /// A request of `units` to a FIFO resource, sent at `at` (now or, for
    /// a transfer that follows an earlier one down a path, later), which the
    /// closed form granted `grant`. It reaches its twin at `at`, behind
    /// whatever reached it earlier: a closed form that served requests in
    /// the order they were made rather than the order they arrive would be
    /// caught here.
    pub fn request(&mut self, part: Part, at: Cycle, units: u64, grant: Grant) {
        if units == 0 {
            return;
        }
        let made = at.max(self.clock);
        let id = self.promise(Promise {
            part,
            made,
            units,
            start: Some(grant.start),
            end: grant.end,
        });
        self.send(made, Arrival::Fifo { part, units, id });
    }

    /// A DRAM read or write of `bytes` at `addr`, sent at `at`, which the
    /// closed form completes at `done`.
    pub fn dram(&mut self, write: bool, at: Cycle, addr: u64, bytes: u64, done: Cycle) {
        if bytes == 0 {
            return;
        }
        let made = at.max(self.clock);
        let id = self.promise(Promise {
            part: Part::Dram,
            made,
            units: bytes,
            start: None,
            end: done,
        });
        self.send(
            made,
            Arrival::Dram {
                write,
                addr,
                bytes,
                id,
            },
        );
    }

    fn send(&mut self, at: Cycle, arrival: Arrival) {
        self.arrivals.entry(at).or_default().push(arrival);
    }

    /// The requests that reach their twins in cycle `now`.
    fn deliver_arrivals(&mut self, now: Cycle) {
        let Some(arrivals) = self.arrivals.remove(&now) else {
            return;
        };
        for a in arrivals {
            match a {
                Arrival::Fifo { part, units, id } => {
                    if let Some(f) = self.fifo(part) {
                        f.submit(now, units, id);
                    }
                }
                Arrival::Dram {
                    write: true,
                    addr,
                    bytes,
                    id,
                } => self.dram.write(now, addr, bytes, id),
                Arrival::Dram {
                    addr, bytes, id, ..
                } => self.dram.read(now, addr, bytes, id),
            }
        }
    }

    /// A PE-array step the scheduler starts at `start` and ends at `end`,
    /// with each computing PE's MAC cycles.
    pub fn pe_step(&mut self, start: Cycle, end: Cycle, work: Vec<(usize, u64)>) {
        if end > start {
            self.pe_steps.push_back(PeStep { start, end, work });
        }
    }

    /// The psum RFs take (`entries > 0`) or free entries at `at` (not
    /// before now).
    pub fn psum_entries(&mut self, at: Cycle, entries: i64) {
        if at < self.clock {
            self.fail(format!(
                "psum-RF entries changed at cycle {at}, before the controller's cycle {}",
                self.clock
            ));
        }
        *self.psum_changes.entry(at.max(self.clock)).or_default() += entries;
    }

    /// The psum RFs' entries at `now`: never more than they have.
    fn tick_psums(&mut self, now: Cycle) {
        if let Some(change) = self.psum_changes.remove(&now) {
            self.psum_held += change;
            if self.psum_held > self.psum_capacity || self.psum_held < 0 {
                self.fail(format!(
                    "each PE's psum RF holds {} entries at cycle {now}; it has {}",
                    self.psum_held, self.psum_capacity
                ));
            }
        }
    }

    fn fail(&mut self, message: String) {
        self.broken.get_or_insert(message);
    }

    /// Ticks every twin, every cycle, up to (not including) `to`.
    pub fn run_to(&mut self, to: Cycle) -> Result<(), String> {
        while self.clock < to {
            self.tick();
            self.clock = self.clock + 1;
        }
        match self.broken.take() {
            Some(m) => Err(m),
            None => Ok(()),
        }
    }

    fn tick(&mut self) {
        let now = self.clock;
        self.deliver_arrivals(now);
        self.tick_psums(now);
        self.start_pe_step(now);
        let mut served: Vec<(Part, Served<u64>)> = Vec::new();
        let parts = [
            Part::Glb,
            Part::InputBus,
            Part::WeightBus,
            Part::OutputBus,
            Part::GlbUnit,
        ];
        for part in parts
            .into_iter()
            .chain((0..self.links.len()).map(Part::Link))
        {
            if let Some(f) = self.fifo(part) {
                f.tick(now);
                served.extend(f.take_served().map(|s| (part, s)));
            }
            self.ticks += 1;
        }
        self.dram.tick(now);
        served.extend(self.dram.take_served().map(|s| (Part::Dram, s)));
        self.pes.tick(now);
        self.ticks += 2;
        for (part, s) in served {
            self.keep(part, s);
        }
        if self.pes.take_finished()
            && let Some(step) = self.pe_running.take()
        {
            self.pe_steps_checked += 1;
            if step.end != now + 1 {
                self.fail(format!(
                    "the PE array finished a step at cycle {}; the event scheduler placed it at {}..{}",
                    now + 1,
                    step.start,
                    step.end
                ));
            }
        }
    }

    fn start_pe_step(&mut self, now: Cycle) {
        let Some(next) = self.pe_steps.front() else {
            return;
        };
        if next.start > now {
            return;
        }
        if next.start < now || !self.pes.idle() {
            let (start, end) = (next.start, next.end);
            self.fail(format!(
                "a PE-array step placed at cycles {start}..{end} could not start: the array was still busy at cycle {} (lock-step broken)",
                now
            ));
            self.pe_steps.pop_front();
            return;
        }
        if let Some(step) = self.pe_steps.pop_front() {
            self.pes.start(step.work.iter().copied());
            self.pe_running = Some(step);
        }
    }

    /// Checks a twin's completion against the scheduler's promise.
    fn keep(&mut self, part: Part, s: Served<u64>) {
        let Some(p) = self.promises.remove(&s.token) else {
            return;
        };
        self.requests_checked += 1;
        let start_ok = p.start.is_none_or(|start| start == s.grant.start);
        if !start_ok || p.end != s.grant.end {
            self.fail(format!(
                "{} request #{} of {} units made at cycle {}: served at cycles {}..{} stepped, the event scheduler said {}..{}",
                part.name(),
                s.token,
                p.units,
                p.made,
                s.grant.start,
                s.grant.end,
                p.start.map_or("?".to_string(), |c| c.to_string()),
                p.end
            ));
        }
    }

    /// Steps until every twin is idle and every promise is kept.
    pub fn finish(&mut self) -> Result<(), String> {
        let last = self
            .promises
            .values()
            .map(|p| p.end)
            .chain(self.pe_steps.iter().map(|s| s.end))
            .chain(self.pe_running.iter().map(|s| s.end))
            .chain(self.psum_changes.keys().copied())
            .max()
            .unwrap_or(self.clock);
        self.run_to(last.max(self.clock) + 1)?;
        if self.psum_held != 0 {
            return Err(format!(
                "the psum RFs still hold {} entries when the run ends",
                self.psum_held
            ));
        }
        if self.dram.reads_kept_waiting() > 0 {
            return Err(format!(
                "{} DRAM reads reached a full read queue and waited in its front end: a reader did not hold back",
                self.dram.reads_kept_waiting()
            ));
        }
        if self.dram.writes_kept_waiting() > 0 {
            return Err(format!(
                "{} DRAM writes reached a full write queue and waited in its front end: a writer did not hold back",
                self.dram.writes_kept_waiting()
            ));
        }
        if let Some((id, p)) = self.promises.iter().min_by_key(|(id, _)| **id) {
            return Err(format!(
                "{} request #{id} of {} units made at cycle {} was never served stepped (the event scheduler said cycle {})",
                p.part.name(),
                p.units,
                p.made,
                p.end
            ));
        }
        Ok(())
    }

    /// Requests whose stepped completion was compared.
    pub fn requests_checked(&self) -> u64 {
        self.requests_checked
    }

    /// PE-array steps the stepped array ran to their end.
    pub fn pe_steps_checked(&self) -> u64 {
        self.pe_steps_checked
    }

    /// Units each twin served, to compare with the closed forms' counters:
    /// (GLB slots, DRAM row hits, misses, activates).
    pub fn totals(&self) -> (u64, u64, u64, u64) {
        let d = self.dram.stats();
        (self.glb.busy_units(), d.row_hits, d.row_misses, d.activates)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stepper() -> Stepper {
        let arch = crate::arch::load("lu22_fixed").unwrap_or_else(|e| panic!("{e}"));
        Stepper::new(&arch)
    }

    fn grant(start: u64, end: u64) -> Grant {
        Grant {
            start: Cycle(start),
            end: Cycle(end),
        }
    }

    #[test]
    fn kept_promises_pass_and_broken_ones_name_the_resource_and_both_cycles() {
        // The input bus moves 8 bytes per cycle: 20 bytes from cycle 3 take 3..6.
        let mut s = stepper();
        s.run_to(Cycle(2)).unwrap_or_else(|e| panic!("{e}"));
        s.request(Part::InputBus, Cycle(3), 20, grant(3, 6));
        assert_eq!(s.finish(), Ok(()));
        assert_eq!((s.requests_checked(), s.pe_steps_checked()), (1, 0));

        let mut s = stepper();
        s.request(Part::OutputBus, Cycle(0), 20, grant(0, 2));
        assert_eq!(
            s.finish(),
            Err("output bus request #0 of 20 units made at cycle 0: served at cycles 0..3 stepped, the event scheduler said 0..2".to_string())
        );
    }

    #[test]
    fn a_grant_before_its_request_is_reported() {
        let mut s = stepper();
        s.run_to(Cycle(10)).unwrap_or_else(|e| panic!("{e}"));
        s.request(Part::Glb, Cycle(4), 1, grant(4, 5));
        let e = s.run_to(Cycle(11)).err().unwrap_or_default();
        assert!(
            e.starts_with("GLB bank ports request #0 of 1 units made at cycle 10 was granted"),
            "{e}"
        );
    }

    #[test]
    fn a_reservation_served_before_an_earlier_arrival_is_caught() {
        // A calendar took a request for cycle 10 first, then one made later
        // for cycle 5, and served them in that order: 10..11, then 11..12.
        // On the ports (one slot per cycle on a 1-bank, 1-port GLB) the
        // second arrives first and is served at 5..6.
        let mut arch = crate::arch::load("lu22_fixed").unwrap_or_else(|e| panic!("{e}"));
        (arch.glb.banks, arch.glb.ports_per_bank) = (1, 1);
        let mut s = Stepper::new(&arch);
        s.request(Part::Glb, Cycle(10), 1, grant(10, 11));
        s.request(Part::Glb, Cycle(5), 1, grant(11, 12));
        assert_eq!(
            s.finish().err().unwrap_or_default(),
            "GLB bank ports request #1 of 1 units made at cycle 5: served at cycles 5..6 stepped, the event scheduler said 11..12"
        );
    }

    #[test]
    fn the_pe_array_keeps_lock_step() {
        // PE 0 computes 5 cycles, PE 3 two: the step is 7..12.
        let mut s = stepper();
        s.pe_step(Cycle(7), Cycle(12), vec![(0, 5), (3, 2)]);
        assert_eq!(s.finish(), Ok(()));
        assert_eq!(s.pe_steps_checked(), 1);
        // A step placed while the last one still runs breaks lock-step.
        let mut s = stepper();
        s.pe_step(Cycle(0), Cycle(5), vec![(0, 5)]);
        s.pe_step(Cycle(3), Cycle(4), vec![(1, 1)]);
        let e = s.finish().err().unwrap_or_default();
        assert!(
            e.contains("could not start: the array was still busy at cycle 3"),
            "{e}"
        );
        // A step placed shorter than its slowest PE.
        let mut s = stepper();
        s.pe_step(Cycle(0), Cycle(4), vec![(0, 5)]);
        let e = s.finish().err().unwrap_or_default();
        assert_eq!(
            e,
            "the PE array finished a step at cycle 5; the event scheduler placed it at 0..4"
        );
    }

    #[test]
    fn the_psum_rfs_never_hold_more_than_they_have() {
        // lu22: 24 entries per PE; two sub-passes of 12 overlap, a third does not fit.
        let mut s = stepper();
        s.psum_entries(Cycle(0), 12);
        s.psum_entries(Cycle(5), 12);
        s.psum_entries(Cycle(8), -12);
        s.psum_entries(Cycle(8), 12);
        s.psum_entries(Cycle(9), -24);
        assert_eq!(s.finish(), Ok(()));
        let mut s = stepper();
        s.psum_entries(Cycle(0), 20);
        s.psum_entries(Cycle(3), 8);
        assert_eq!(
            s.finish().err().unwrap_or_default(),
            "each PE's psum RF holds 28 entries at cycle 3; it has 24"
        );
    }
}
