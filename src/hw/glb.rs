//! The global buffer (GLB): on-chip SRAM shared by activations and weights.
//!
//! ```text
//!   DRAM fills ─┐                    ┌─► input / weight buses (to the array)
//!               ├─► [ banks x ports ]┤
//!   outputs  ───┘                    └─► DRAM write-back, pooling unit
//! ```
//!
//! Capacity is one pool of bytes; what occupies it (input rows, output rows,
//! staged weights) is tracked by the engine. Bandwidth: `banks` SRAM banks of
//! `ports_per_bank` ports, each moving `bank_width_bytes` per cycle. accsim
//! assumes word-interleaved banks and streaming accesses, so a request of `b`
//! bytes occupies `ceil(b / bank_width_bytes)` bank-port slots, served
//! `banks x ports_per_bank` per cycle.

use crate::arch::GlbConfig;
use crate::sim::{Capacity, Cycle, Grant, RateServer};
use crate::units::{DataType, LevelAccesses};

/// The GLB: capacity, ports, counters.
#[derive(Debug, Clone)]
pub struct Glb {
    pub space: Capacity,
    ports: RateServer,
    bank_width_bytes: u64,
    accesses: LevelAccesses,
    read_requests: u64,
    write_requests: u64,
}

impl Glb {
    pub fn new(config: &GlbConfig) -> Self {
        Glb {
            space: Capacity::new(config.capacity_bytes),
            ports: RateServer::new(u64::from(config.banks) * u64::from(config.ports_per_bank)),
            bank_width_bytes: u64::from(config.bank_width_bytes.max(1)),
            accesses: LevelAccesses::default(),
            read_requests: 0,
            write_requests: 0,
        }
    }

    /// Bank-port slots a request of `bytes` occupies.
    pub fn slots(&self, bytes: u64) -> u64 {
        bytes.div_ceil(self.bank_width_bytes)
    }

    /// Reads `words` words (`bytes` bytes) of `data`, requested at `at`.
    pub fn read(&mut self, at: Cycle, data: DataType, words: u64, bytes: u64) -> Grant {
        self.accesses.read(data, words);
        self.read_requests += 1;
        let slots = self.slots(bytes);
        self.ports.request(at, slots)
    }

    /// Writes `words` words (`bytes` bytes) of `data`, requested at `at`.
    pub fn write(&mut self, at: Cycle, data: DataType, words: u64, bytes: u64) -> Grant {
        self.accesses.write(data, words);
        self.write_requests += 1;
        let slots = self.slots(bytes);
        self.ports.request(at, slots)
    }

    pub fn accesses(&self) -> LevelAccesses {
        self.accesses
    }

    /// Read and write requests served so far.
    pub fn requests(&self) -> (u64, u64) {
        (self.read_requests, self.write_requests)
    }

    /// Bank-port slots used so far (for utilisation and traces).
    pub fn busy_slots(&self) -> u64 {
        self.ports.busy_units()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_occupy_bank_slots() {
        let mut g = Glb::new(&GlbConfig {
            capacity_bytes: 1024,
            banks: 2,
            bank_width_bytes: 8,
            ports_per_bank: 1,
            divider_latency_cycles: 12,
        });
        // 20 bytes = 3 slots at 2 per cycle: cycles 0 and 1.
        assert_eq!(
            g.read(Cycle(0), DataType::Input, 20, 20),
            Grant {
                start: Cycle(0),
                end: Cycle(2)
            }
        );
        assert_eq!(
            g.write(Cycle(0), DataType::Output, 1, 1),
            Grant {
                start: Cycle(1),
                end: Cycle(2)
            }
        );
        let a = g.accesses();
        assert_eq!((a.by_type.input.read, a.by_type.output.write), (20, 1));
        assert_eq!(g.busy_slots(), 4);
    }
}
