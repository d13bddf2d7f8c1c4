//! The discrete-event kernel. It knows nothing about hardware.
//!
//! - [`Cycle`]: simulated time, in cycles of the accelerator clock;
//! - [`EventQueue`]: events ordered by (cycle, phase, issue order);
//! - [`RateServer`]: a FIFO resource that serves a bounded number of units
//!   (accesses, bytes) per cycle: ports, buses, links, the DRAM channel;
//! - [`Capacity`]: a bounded store (bytes, entries) with peak tracking;
//! - [`Clock`]: cycles of one clock domain to time and to another domain;
//! - [`Component`], [`Fifo`], [`advance`]: parts that change cycle by cycle,
//!   run every cycle ([`Timing::Cycle`]) or from change to change
//!   ([`Timing::Event`]).
//!
//! Ordering contract: events run in increasing cycle; at equal cycles, in
//! increasing [`Phase`]; at equal cycle and phase, in the order they were
//! scheduled (FIFO). A resource grants requests in the order they are made,
//! and requests are made by event handlers in event order, so a run is fully
//! deterministic. Time advances from event to event: an idle stretch costs
//! nothing to simulate.

mod clock;
mod queue;
mod server;
mod stepped;

pub use clock::Clock;
pub use queue::{EventQueue, Phase};
pub use server::{Capacity, Grant, RateServer};
pub use stepped::{Component, Fifo, Served, Timing, advance};

/// A point in simulated time, or a duration, in accelerator clock cycles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, serde::Serialize)]
pub struct Cycle(pub u64);

impl Cycle {
    pub const ZERO: Cycle = Cycle(0);

    pub fn get(self) -> u64 {
        self.0
    }

    /// `self - earlier`, or zero if `earlier` is later.
    pub fn since(self, earlier: Cycle) -> u64 {
        self.0.saturating_sub(earlier.0)
    }
}

impl std::ops::Add<u64> for Cycle {
    type Output = Cycle;
    fn add(self, rhs: u64) -> Cycle {
        Cycle(self.0.saturating_add(rhs))
    }
}

impl std::fmt::Display for Cycle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}
