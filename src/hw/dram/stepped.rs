//! DRAM as a component that advances cycle by cycle (`sim::Component`).
//!
//! ```text
//!   submit ──► front end (in order) ──► read queue  ┐             ┌─► bank row buffers
//!                                  └──► write queue ┴─► bursts ───┤
//!                                       (entries)       in order  └─► channel (bytes/cycle) ──► served
//! ```
//!
//! The same device as [`super::Dram`]'s closed form, run as hardware runs:
//! - the front end takes requests in the order they came; a request enters
//!   its read or write queue when the queue has an entry (else it waits for
//!   the queue's oldest request to complete, and so do all behind it);
//! - a request is cut into bursts (banked model) or is one transfer (simple
//!   model); the bursts go to the channel in order. When a burst reaches the
//!   head of the channel its bank command is issued, no earlier than its
//!   request entered the queue and the bank took its last command: a row hit
//!   costs tCAS, a closed bank tRCD + tCAS, a row miss tRP + tRCD + tCAS (the
//!   simple model: `latency_cycles`); then the channel moves the burst, and
//!   the bank is ready for its next command as the burst's data starts to
//!   flow;
//! - a request completes with its last burst.
//!
//! Tests prove the component, stepped or skipped, serves every request
//! exactly as the closed form grants it.

use std::collections::VecDeque;

use crate::arch::{DramConfig, DramModel};
use crate::sim::{Component, Cycle, Grant, Served};

use super::DramStats;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Read,
    Write,
}

#[derive(Debug, Clone)]
struct Request<T> {
    token: T,
    kind: Kind,
    at: Cycle,
    addr: u64,
    bytes: u64,
}

/// A burst in the channel's order.
#[derive(Debug, Clone)]
struct Burst {
    /// Index into `in_service`.
    request: u64,
    addr: u64,
    /// When the request entered its queue.
    issue: Cycle,
    /// Data start, once the burst's bank command is issued (at the head).
    data_at: Option<Cycle>,
    remaining: u64,
    started: Option<Cycle>,
    last_of_request: bool,
}

#[derive(Debug, Clone, Copy, Default)]
struct Bank {
    open_row: Option<u64>,
    ready: Cycle,
}

/// A queue entry: the completion of a request that entered it, once known.
type Entry = Option<Cycle>;

/// The DRAM device, stepped.
#[derive(Debug, Clone)]
pub struct SteppedDram<T> {
    config: DramConfig,
    front: VecDeque<Request<T>>,
    /// Reads that found the read queue full and waited in the front end
    /// (a reader that holds back never causes one).
    reads_kept_waiting: u64,
    /// Writes that found the write queue full and waited in the front end
    /// (every writer holds back, so none does).
    writes_kept_waiting: u64,
    reads: VecDeque<(u64, Entry)>,
    writes: VecDeque<(u64, Entry)>,
    bursts: VecDeque<Burst>,
    /// Requests whose bursts are in the channel: id -> (token, first start).
    in_service: VecDeque<(u64, T, Option<Cycle>)>,
    next_id: u64,
    banks: Vec<Bank>,
    served: Vec<Served<T>>,
    stats: DramStats,
    busy_units: u64,
}

impl<T> SteppedDram<T> {
    pub fn new(config: &DramConfig) -> Self {
        SteppedDram {
            config: config.clone(),
            front: VecDeque::new(),
            reads_kept_waiting: 0,
            writes_kept_waiting: 0,
            reads: VecDeque::new(),
            writes: VecDeque::new(),
            bursts: VecDeque::new(),
            in_service: VecDeque::new(),
            next_id: 0,
            banks: vec![Bank::default(); config.banked.banks as usize],
            served: Vec::new(),
            stats: DramStats::default(),
            busy_units: 0,
        }
    }

    /// Queues a read of `bytes` at `addr`, submitted at `at`.
    pub fn read(&mut self, at: Cycle, addr: u64, bytes: u64, token: T) {
        self.stats.read_bytes += bytes;
        self.stats.read_requests += u64::from(bytes > 0);
        self.submit(Kind::Read, at, addr, bytes, token);
    }

    /// Queues a write of `bytes` at `addr`, submitted at `at`.
    pub fn write(&mut self, at: Cycle, addr: u64, bytes: u64, token: T) {
        self.stats.write_bytes += bytes;
        self.stats.write_requests += u64::from(bytes > 0);
        self.submit(Kind::Write, at, addr, bytes, token);
    }

    fn submit(&mut self, kind: Kind, at: Cycle, addr: u64, bytes: u64, token: T) {
        if bytes == 0 {
            // No request: nothing queues, nothing moves.
            self.served.push(Served {
                token,
                grant: Grant { start: at, end: at },
            });
            return;
        }
        self.front.push_back(Request {
            token,
            kind,
            at,
            addr,
            bytes,
        });
    }

    /// Requests completed so far, in completion order; they leave the device.
    pub fn take_served(&mut self) -> std::vec::Drain<'_, Served<T>> {
        self.served.drain(..)
    }

    /// Reads that waited in the front end for a read-queue entry.
    pub fn reads_kept_waiting(&self) -> u64 {
        self.reads_kept_waiting
    }

    /// Writes that waited in the front end for a write-queue entry.
    pub fn writes_kept_waiting(&self) -> u64 {
        self.writes_kept_waiting
    }

    pub fn stats(&self) -> DramStats {
        let mut s = self.stats;
        s.busy_cycles = self
            .busy_units
            .div_ceil(u64::from(self.config.bandwidth_bytes_per_cycle.max(1)));
        s
    }

    fn rate(&self) -> u64 {
        u64::from(self.config.bandwidth_bytes_per_cycle.max(1))
    }

    /// Moves requests from the front end into their queues while they have
    /// an entry.
    fn admit(&mut self, now: Cycle) {
        while let Some(request) = self.front.front() {
            if request.at > now {
                return;
            }
            let (queue, depth) = match request.kind {
                Kind::Read => (&mut self.reads, self.config.read_queue_entries),
                Kind::Write => (&mut self.writes, self.config.write_queue_entries),
            };
            // Requests that completed by the time this one came have left.
            while queue
                .front()
                .is_some_and(|&(_, done)| done.is_some_and(|d| d <= request.at))
            {
                queue.pop_front();
            }
            let mut issue = request.at;
            if queue.len() >= depth.max(1) as usize {
                match queue.front() {
                    Some(&(_, Some(done))) => {
                        issue = issue.max(done);
                        queue.pop_front();
                    }
                    // The oldest is still in service: everything waits.
                    _ => return,
                }
            }
            let Some(r) = self.front.pop_front() else {
                return;
            };
            if issue > r.at {
                match r.kind {
                    Kind::Read => self.reads_kept_waiting += 1,
                    Kind::Write => self.writes_kept_waiting += 1,
                }
            }
            let id = self.next_id;
            self.next_id += 1;
            let queue = match r.kind {
                Kind::Read => &mut self.reads,
                Kind::Write => &mut self.writes,
            };
            queue.push_back((id, None));
            self.in_service.push_back((id, r.token, None));
            self.cut(id, issue, r.addr, r.bytes);
        }
    }

    /// Whether `r` finds a queue entry without waiting for a request still
    /// in service.
    fn admissible(&self, r: &Request<T>) -> bool {
        let (queue, depth) = match r.kind {
            Kind::Read => (&self.reads, self.config.read_queue_entries),
            Kind::Write => (&self.writes, self.config.write_queue_entries),
        };
        let left = queue
            .iter()
            .skip_while(|&&(_, done)| done.is_some_and(|d| d <= r.at))
            .count();
        let gone = queue.len() - left;
        left < depth.max(1) as usize || queue.get(gone).is_some_and(|e| e.1.is_some())
    }

    /// The bursts of request `id`.
    fn cut(&mut self, id: u64, issue: Cycle, addr: u64, bytes: u64) {
        let mut push = |addr, bytes, last| {
            self.bursts.push_back(Burst {
                request: id,
                addr,
                issue,
                data_at: None,
                remaining: bytes,
                started: None,
                last_of_request: last,
            })
        };
        match self.config.model {
            DramModel::Simple => push(addr, bytes, true),
            DramModel::Banked => {
                let burst = u64::from(self.config.banked.burst_bytes.max(1));
                let (first, last) = (addr / burst, (addr + bytes - 1) / burst);
                for b in first..=last {
                    push(b * burst, burst, b == last);
                }
            }
        }
    }

    /// The bank of the burst at `addr` (rows interleave over the banks) and
    /// its row within the bank.
    fn bank_of(&self, addr: u64) -> (usize, u64) {
        let row_index = addr / u64::from(self.config.banked.row_bytes.max(1));
        let banks = self.banks.len().max(1) as u64;
        ((row_index % banks) as usize, row_index / banks)
    }

    /// Issues the head burst's bank command when it has none yet.
    fn command_head(&mut self) {
        let Some(head) = self.bursts.front() else {
            return;
        };
        if head.data_at.is_some() {
            return;
        }
        let (issue, addr) = (head.issue, head.addr);
        let data_at = match self.config.model {
            DramModel::Simple => issue + u64::from(self.config.latency_cycles),
            DramModel::Banked => {
                let b = &self.config.banked;
                let (index, row) = self.bank_of(addr);
                let bank = &mut self.banks[index];
                let command = issue.max(bank.ready);
                let latency = match bank.open_row {
                    Some(open) if open == row => {
                        self.stats.row_hits += 1;
                        b.t_cas_cycles
                    }
                    Some(_) => {
                        self.stats.row_misses += 1;
                        self.stats.activates += 1;
                        b.t_rp_cycles + b.t_rcd_cycles + b.t_cas_cycles
                    }
                    None => {
                        self.stats.activates += 1;
                        b.t_rcd_cycles + b.t_cas_cycles
                    }
                };
                bank.open_row = Some(row);
                command + u64::from(latency)
            }
        };
        if let Some(head) = self.bursts.front_mut() {
            head.data_at = Some(data_at);
        }
    }

    /// The head burst finished in cycle `last`.
    fn finish_burst(&mut self, last: Cycle) {
        let Some(b) = self.bursts.pop_front() else {
            return;
        };
        if !b.last_of_request {
            return;
        }
        let Some(pos) = self.in_service.iter().position(|e| e.0 == b.request) else {
            return;
        };
        let Some((id, token, start)) = self.in_service.remove(pos) else {
            return;
        };
        let end = last + 1;
        for queue in [&mut self.reads, &mut self.writes] {
            if let Some(entry) = queue.iter_mut().find(|e| e.0 == id) {
                entry.1 = Some(end);
            }
        }
        self.served.push(Served {
            token,
            grant: Grant {
                start: start.unwrap_or(last),
                end,
            },
        });
    }

    /// The head burst starts flowing in cycle `now`.
    fn start_head(&mut self, now: Cycle) {
        let Some(head) = self.bursts.front_mut() else {
            return;
        };
        if head.started.is_some() {
            return;
        }
        head.started = Some(now);
        let request = head.request;
        let addr = head.addr;
        if let DramModel::Banked = self.config.model {
            let (index, _) = self.bank_of(addr);
            self.banks[index].ready = now;
        }
        if let Some(e) = self.in_service.iter_mut().find(|e| e.0 == request) {
            e.2.get_or_insert(now);
        }
    }
}

impl<T> Component for SteppedDram<T> {
    fn tick(&mut self, now: Cycle) {
        let mut budget = self.rate();
        loop {
            self.admit(now);
            self.command_head();
            let Some(head) = self.bursts.front() else {
                return;
            };
            if head.data_at.is_some_and(|d| d > now) || budget == 0 {
                return;
            }
            self.start_head(now);
            let Some(head) = self.bursts.front_mut() else {
                return;
            };
            let take = budget.min(head.remaining);
            head.remaining -= take;
            budget -= take;
            self.busy_units += take;
            if head.remaining > 0 {
                return;
            }
            self.finish_burst(now);
        }
    }

    fn next_change(&self, now: Cycle) -> Option<Cycle> {
        // Admissions and bank commands happen inside ticks: a request that
        // can enter its queue, or a head burst without its command, is a
        // change at its time; otherwise the head burst's last cycle is.
        let admission = self
            .front
            .front()
            .filter(|r| self.admissible(r))
            .map(|r| r.at.max(now));
        let burst = self.bursts.front().map(|head| match head.data_at {
            None => now,
            Some(data_at) => {
                let cycles = head.remaining.div_ceil(self.rate()).max(1);
                data_at.max(now) + (cycles - 1)
            }
        });
        admission.into_iter().chain(burst).min()
    }

    fn skip(&mut self, now: Cycle, to: Cycle) {
        let rate = self.rate();
        let Some(head) = self.bursts.front() else {
            return;
        };
        let Some(data_at) = head.data_at else {
            return;
        };
        let from = data_at.max(now);
        let cycles = to.since(from);
        if cycles == 0 {
            return;
        }
        self.start_head(from);
        if let Some(head) = self.bursts.front_mut() {
            let units = cycles * rate;
            debug_assert!(units < head.remaining, "skipped past a change");
            head.remaining -= units;
            self.busy_units += units;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::BankedDramConfig;
    use crate::hw::dram::Dram;
    use crate::sim::{Timing, advance};
    use proptest::prelude::*;

    fn config(model: DramModel, rate: u32, depth: u32, banks: u32) -> DramConfig {
        DramConfig {
            model,
            bandwidth_bytes_per_cycle: rate,
            latency_cycles: 20,
            read_queue_entries: depth,
            write_queue_entries: depth,
            banked: BankedDramConfig {
                banks,
                row_bytes: 64,
                burst_bytes: 16,
                t_rcd_cycles: 3,
                t_rp_cycles: 2,
                t_cas_cycles: 4,
            },
        }
    }

    /// Runs `d` to idle: (token, completion, cycle the completion was seen).
    fn drain(d: &mut SteppedDram<usize>, timing: Timing) -> Vec<(usize, Cycle, Cycle)> {
        let mut now = Cycle::ZERO;
        let mut out = Vec::new();
        while let Some(next) = advance(timing, now, &mut [d as &mut dyn Component]) {
            out.extend(d.take_served().map(|s| (s.token, s.grant.end, next)));
            now = next;
        }
        out.sort_unstable();
        out
    }

    fn ends(served: &[(usize, Cycle, Cycle)]) -> Vec<(usize, Cycle)> {
        served.iter().map(|&(k, end, _)| (k, end)).collect()
    }

    #[test]
    fn the_closed_form_examples_hold_stepped() {
        // docs of `Dram`: 40 bytes at 4 B/cycle after 20 cycles of latency,
        // a pipelined second read, a third that waits for a queue entry.
        let mut d = SteppedDram::new(&config(DramModel::Simple, 4, 2, 2));
        d.read(Cycle(0), 0, 40, 0);
        d.read(Cycle(0), 40, 8, 1);
        d.read(Cycle(0), 48, 4, 2);
        for timing in [Timing::Cycle, Timing::Event] {
            let got = drain(&mut d.clone(), timing);
            assert_eq!(
                got,
                [
                    (0, Cycle(30), Cycle(30)),
                    (1, Cycle(32), Cycle(32)),
                    (2, Cycle(51), Cycle(51))
                ]
            );
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]
        /// Stepped, skipped and the closed form complete every request at
        /// the same cycle and count the same row hits, misses and activates.
        #[test]
        fn stepped_skipped_and_closed_form_agree(
            banked in any::<bool>(),
            rate in 1u32..20,
            depth in 1u32..5,
            banks in 1u32..5,
            requests in prop::collection::vec(
                (0u64..40, any::<bool>(), 0u64..512, 0u64..100), 1..30),
        ) {
            let model = if banked { DramModel::Banked } else { DramModel::Simple };
            let config = config(model, rate, depth, banks);
            let mut closed = Dram::new(&config);
            let mut stepped = SteppedDram::new(&config);
            // In the order made; a request's own cycle need not grow.
            let mut want = Vec::new();
            for (k, &(at, write, addr, bytes)) in requests.iter().enumerate() {
                let at = at * 5;
                let done = if write {
                    stepped.write(Cycle(at), addr, bytes, k);
                    closed.write(Cycle(at), addr, bytes)
                } else {
                    stepped.read(Cycle(at), addr, bytes, k);
                    closed.read(Cycle(at), addr, bytes)
                };
                want.push((k, done));
            }
            // Requests of no bytes are done as they are made.
            let at_once: Vec<(usize, Cycle, Cycle)> = stepped
                .take_served()
                .map(|s| (s.token, s.grant.end, s.grant.end))
                .collect();
            let mut by_cycle = drain(&mut stepped.clone(), Timing::Cycle);
            let by_event = drain(&mut stepped.clone(), Timing::Event);
            prop_assert_eq!(&by_cycle, &by_event);
            // A request is seen complete at its completion cycle.
            for &(k, end, seen) in &by_cycle {
                prop_assert_eq!(seen, end, "request {}", k);
            }
            by_cycle.extend(at_once);
            by_cycle.sort_unstable();
            prop_assert_eq!(ends(&by_cycle), want);
            let mut s = stepped.clone();
            drain(&mut s, Timing::Event);
            let (a, b) = (s.stats(), closed.stats());
            prop_assert_eq!(
                (a.row_hits, a.row_misses, a.activates, a.read_bytes, a.write_bytes),
                (b.row_hits, b.row_misses, b.activates, b.read_bytes, b.write_bytes)
            );
        }
    }
}
