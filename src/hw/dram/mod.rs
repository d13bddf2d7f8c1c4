//! Off-chip DRAM.
//!
//! ```text
//!   requests ──► [read queue | write queue] ──► channel (bytes/cycle) ──► data
//!                                              ▲
//!                              banked model: per-bank row buffer timing
//! ```
//!
//! Two timing models (`[dram] model`):
//! - `simple`: an access completes `latency_cycles` plus its transfer time
//!   after it is issued; the channel moves `bandwidth_bytes_per_cycle`;
//! - `banked`: each burst goes to a bank by address (row-interleaved); a row
//!   hit costs tCAS, an access to a closed bank tRCD + tCAS, a row miss
//!   tRP + tRCD + tCAS, before the burst's transfer on the channel.
//!
//! At most `read_queue_entries` reads (and `write_queue_entries` writes) are
//! in flight. Readers hold back while the read queue is full
//! ([`Dram::read_queue_full`] says until when): a read is sent only into a
//! free entry. Every writer holds back the same way while the write queue
//! is full ([`Dram::write_queue_full`]), so no write waits here either. The
//! array's output stage claims an entry ahead for a drain it commits
//! ([`Dram::claim_write_entry`]): claimed entries count as taken until the
//! write is sent (or the entry given back).

mod stepped;

use std::collections::VecDeque;

use serde::Serialize;

use crate::arch::{DramConfig, DramModel};
use crate::sim::{Cycle, RateServer};
use crate::units::{DataType, LevelAccesses};

pub use stepped::SteppedDram;

/// DRAM activity counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct DramStats {
    pub read_bytes: u64,
    pub write_bytes: u64,
    pub read_requests: u64,
    pub write_requests: u64,
    /// Banked model only: bursts that found their row open.
    pub row_hits: u64,
    /// Banked model only: bursts that had to close another row first.
    pub row_misses: u64,
    /// Banked model only: row activations (misses and accesses to closed banks).
    pub activates: u64,
    /// Cycles the channel was transferring data.
    pub busy_cycles: u64,
}

#[derive(Debug, Clone, Copy, Default)]
struct Bank {
    open_row: Option<u64>,
    ready: Cycle,
}

/// The DRAM device and its controller queues.
#[derive(Debug, Clone)]
pub struct Dram {
    config: DramConfig,
    channel: RateServer,
    banks: Vec<Bank>,
    reads_in_flight: VecDeque<Cycle>,
    writes_in_flight: VecDeque<Cycle>,
    /// Write-queue entries claimed ahead by a writer that sends its write
    /// (or gives the entry back) at a known later cycle: the array's output
    /// stage for a sub-pass that may spill ([`Dram::claim_write_entry`]).
    /// Each counts as taken until then.
    write_claims: Vec<Cycle>,
    stats: DramStats,
    accesses: LevelAccesses,
    /// Channel occupancy intervals since the last `take_busy_log` (kept only
    /// when `log_busy` is set, for traces).
    busy_log: Vec<(Cycle, Cycle)>,
    pub log_busy: bool,
}

impl Dram {
    pub fn new(config: &DramConfig) -> Self {
        Dram {
            config: config.clone(),
            channel: RateServer::new(u64::from(config.bandwidth_bytes_per_cycle)),
            banks: vec![Bank::default(); config.banked.banks as usize],
            reads_in_flight: VecDeque::new(),
            writes_in_flight: VecDeque::new(),
            write_claims: Vec::new(),
            stats: DramStats::default(),
            accesses: LevelAccesses::default(),
            busy_log: Vec::new(),
            log_busy: false,
        }
    }

    /// The channel's busy intervals since the last call.
    pub fn take_busy_log(&mut self) -> Vec<(Cycle, Cycle)> {
        std::mem::take(&mut self.busy_log)
    }

    fn transfer(&mut self, at: Cycle, bytes: u64) -> crate::sim::Grant {
        let g = self.channel.request(at, bytes);
        if self.log_busy {
            self.busy_log.push((g.start, g.end));
        }
        g
    }

    /// Reads `words` words of `data` (`bytes` bytes) at `addr`; returns the completion cycle.
    pub fn read_data(
        &mut self,
        at: Cycle,
        addr: u64,
        data: DataType,
        words: u64,
        bytes: u64,
    ) -> Cycle {
        self.accesses.read(data, words);
        self.read(at, addr, bytes)
    }

    /// Writes `words` words of `data` (`bytes` bytes) at `addr`; returns the completion cycle.
    pub fn write_data(
        &mut self,
        at: Cycle,
        addr: u64,
        data: DataType,
        words: u64,
        bytes: u64,
    ) -> Cycle {
        self.accesses.write(data, words);
        self.write(at, addr, bytes)
    }

    /// Words moved, per data type.
    pub fn accesses(&self) -> LevelAccesses {
        self.accesses
    }

    /// Reads `bytes` at `addr`, requested at `at`; returns the completion
    /// cycle. A request of no bytes is no request: done at `at`.
    pub fn read(&mut self, at: Cycle, addr: u64, bytes: u64) -> Cycle {
        if bytes == 0 {
            return at;
        }
        self.stats.read_bytes += bytes;
        self.stats.read_requests += 1;
        let depth = self.config.read_queue_entries as usize;
        let issue = Self::queue_slot(&mut self.reads_in_flight, depth, at);
        let done = self.access(issue, addr, bytes);
        self.reads_in_flight.push_back(done);
        done
    }

    /// Writes `bytes` at `addr`, requested at `at`; returns the completion
    /// cycle. A request of no bytes is no request: done at `at`.
    pub fn write(&mut self, at: Cycle, addr: u64, bytes: u64) -> Cycle {
        if bytes == 0 {
            return at;
        }
        self.stats.write_bytes += bytes;
        self.stats.write_requests += 1;
        let depth = self.config.write_queue_entries as usize;
        let issue = Self::queue_slot(&mut self.writes_in_flight, depth, at);
        let done = self.access(issue, addr, bytes);
        self.writes_in_flight.push_back(done);
        done
    }

    /// `None` when a read sent at `now` finds a free read-queue entry;
    /// otherwise the cycle the oldest read in flight completes, freeing one.
    pub fn read_queue_full(&mut self, now: Cycle) -> Option<Cycle> {
        let depth = self.config.read_queue_entries as usize;
        Self::queue_full(&mut self.reads_in_flight, &[], depth, now)
    }

    /// `None` when a write sent at `now` finds a free write-queue entry;
    /// otherwise the cycle the oldest write in flight completes, freeing one.
    /// Entries claimed ahead ([`Self::claim_write_entry`]) count as taken;
    /// when only claims fill the queue, the cycle the first is used or
    /// given back (the writer asks again then).
    pub fn write_queue_full(&mut self, now: Cycle) -> Option<Cycle> {
        let depth = self.config.write_queue_entries as usize;
        let claims = &self.write_claims;
        Self::queue_full(&mut self.writes_in_flight, claims, depth, now)
    }

    /// Claims a write-queue entry (one must be free: [`Self::write_queue_full`])
    /// for a write sent at `at`, or given back then if none is.
    pub fn claim_write_entry(&mut self, at: Cycle) {
        self.write_claims.push(at);
    }

    /// The entry claimed for `at` is used now (the write is sent next) or
    /// given back.
    pub fn release_write_entry(&mut self, at: Cycle) {
        if let Some(i) = self.write_claims.iter().position(|&c| c == at) {
            self.write_claims.swap_remove(i);
        }
    }

    fn queue_full(
        in_flight: &mut VecDeque<Cycle>,
        claims: &[Cycle],
        depth: usize,
        now: Cycle,
    ) -> Option<Cycle> {
        while in_flight.front().is_some_and(|&done| done <= now) {
            in_flight.pop_front();
        }
        if in_flight.len() + claims.len() < depth.max(1) {
            return None;
        }
        in_flight.iter().chain(claims).min().copied()
    }

    /// The cycle at which a new request can enter a queue of `depth`.
    fn queue_slot(in_flight: &mut VecDeque<Cycle>, depth: usize, at: Cycle) -> Cycle {
        // Requests that completed by `at` have left the queue.
        while in_flight.front().is_some_and(|&done| done <= at) {
            in_flight.pop_front();
        }
        let mut issue = at;
        while in_flight.len() >= depth.max(1) {
            if let Some(oldest) = in_flight.pop_front() {
                issue = issue.max(oldest);
            }
        }
        issue
    }

    fn access(&mut self, issue: Cycle, addr: u64, bytes: u64) -> Cycle {
        if bytes == 0 {
            return issue;
        }
        let done = match self.config.model {
            DramModel::Simple => {
                self.transfer(issue + u64::from(self.config.latency_cycles), bytes)
                    .end
            }
            DramModel::Banked => self.banked_access(issue, addr, bytes),
        };
        self.stats.busy_cycles = self.channel.busy_cycles();
        done
    }

    fn banked_access(&mut self, issue: Cycle, addr: u64, bytes: u64) -> Cycle {
        let b = self.config.banked.clone();
        let burst = u64::from(b.burst_bytes);
        let row_bytes = u64::from(b.row_bytes);
        let banks = self.banks.len().max(1) as u64;
        let first = addr / burst;
        let last = (addr + bytes - 1) / burst;
        let mut done = issue;
        for burst_index in first..=last {
            let burst_addr = burst_index * burst;
            let row_index = burst_addr / row_bytes;
            let bank_index = (row_index % banks) as usize;
            let row = row_index / banks;
            let bank = self.banks[bank_index];
            let command = issue.max(bank.ready);
            let data_at = match bank.open_row {
                Some(open) if open == row => {
                    self.stats.row_hits += 1;
                    command + u64::from(b.t_cas_cycles)
                }
                Some(_) => {
                    self.stats.row_misses += 1;
                    self.stats.activates += 1;
                    command + u64::from(b.t_rp_cycles + b.t_rcd_cycles + b.t_cas_cycles)
                }
                None => {
                    self.stats.activates += 1;
                    command + u64::from(b.t_rcd_cycles + b.t_cas_cycles)
                }
            };
            let grant = self.transfer(data_at, burst);
            // The bank takes its next column command once this burst's data flows.
            self.banks[bank_index] = Bank {
                open_row: Some(row),
                ready: grant.start,
            };
            done = done.max(grant.end);
        }
        done
    }

    pub fn stats(&self) -> DramStats {
        self.stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::BankedDramConfig;

    fn config(model: DramModel) -> DramConfig {
        DramConfig {
            model,
            bandwidth_bytes_per_cycle: 4,
            latency_cycles: 20,
            read_queue_entries: 2,
            write_queue_entries: 2,
            banked: BankedDramConfig {
                banks: 2,
                row_bytes: 64,
                burst_bytes: 16,
                t_rcd_cycles: 3,
                t_rp_cycles: 2,
                t_cas_cycles: 4,
            },
        }
    }

    #[test]
    fn simple_model_is_latency_plus_transfer_pipelined() {
        let mut d = Dram::new(&config(DramModel::Simple));
        // 40 bytes at 4 B/cycle: data from cycle 20 to 30.
        assert_eq!(d.read(Cycle(0), 0, 40), Cycle(30));
        // A second read overlaps its latency with the first transfer.
        assert_eq!(d.read(Cycle(0), 40, 8), Cycle(32));
        // The queue holds two: the third waits for the first (done at 30).
        assert_eq!(d.read(Cycle(0), 48, 4), Cycle(51));
        assert_eq!(d.stats().read_bytes, 52);
    }

    #[test]
    fn a_writer_sees_when_the_write_queue_has_an_entry() {
        let mut d = Dram::new(&config(DramModel::Simple));
        // Two writes fill the 2-entry queue: data 20-30 and 30-32.
        assert_eq!(d.write(Cycle(0), 0, 40), Cycle(30));
        assert_eq!(d.write(Cycle(0), 40, 8), Cycle(32));
        // Full until the first completes; reads are not affected.
        assert_eq!(d.write_queue_full(Cycle(0)), Some(Cycle(30)));
        assert_eq!(d.write_queue_full(Cycle(29)), Some(Cycle(30)));
        assert_eq!(d.read_queue_full(Cycle(0)), None);
        assert_eq!(d.write_queue_full(Cycle(30)), None);
        // Sent then, the third write is issued at once: data at 50 (the
        // channel is free from 32), done at 51.
        assert_eq!(d.write(Cycle(30), 48, 4), Cycle(51));
    }

    #[test]
    fn a_claimed_write_entry_counts_as_taken_until_used() {
        let mut d = Dram::new(&config(DramModel::Simple));
        // One write in flight (data 20-30) and one entry claimed for a
        // write at 12: the 2-entry queue is full; the first change is the
        // claim's use at 12 (the writer asks again then).
        assert_eq!(d.write(Cycle(0), 0, 40), Cycle(30));
        d.claim_write_entry(Cycle(12));
        assert_eq!(d.write_queue_full(Cycle(5)), Some(Cycle(12)));
        // At 12 the claimed entry is used (data 32-34, after the latency):
        // still full, until 30.
        d.release_write_entry(Cycle(12));
        assert_eq!(d.write(Cycle(12), 40, 8), Cycle(34));
        assert_eq!(d.write_queue_full(Cycle(12)), Some(Cycle(30)));
        assert_eq!(d.write_queue_full(Cycle(30)), None);
        // Two claims fill the queue once the writes are done; one given
        // back unused frees its entry at once.
        d.claim_write_entry(Cycle(40));
        d.claim_write_entry(Cycle(41));
        assert_eq!(d.write_queue_full(Cycle(35)), Some(Cycle(40)));
        d.release_write_entry(Cycle(41));
        assert_eq!(d.write_queue_full(Cycle(35)), None);
    }

    #[test]
    fn banked_model_counts_hits_misses_and_activates() {
        let mut d = Dram::new(&config(DramModel::Banked));
        // Two bursts in row 0 of bank 0: activate (3 + 4), then a hit.
        let t1 = d.read(Cycle(0), 0, 32);
        // Bank 0 row 1 (address 128 is row index 2 -> bank 0, row 1): a miss.
        let t2 = d.read(t1, 128, 16);
        let s = d.stats();
        assert_eq!((s.row_hits, s.row_misses, s.activates), (1, 1, 2));
        // First burst data at 7, 4 cycles on the channel: 7..11; the hit's
        // command is issued when the bank is ready (cycle 7): data at 11, 11..15.
        assert_eq!(t1, Cycle(15));
        // The miss: 15 + 2 + 3 + 4 = 24, transfer 24..28.
        assert_eq!(t2, Cycle(28));
    }
}
