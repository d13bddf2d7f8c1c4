//! Resources: rate-limited FIFO servers and bounded stores.

use super::Cycle;

/// When a request was served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grant {
    /// First cycle in which the request occupied the resource.
    pub start: Cycle,
    /// The cycle after the last unit was served: the request is complete at `end`.
    pub end: Cycle,
}

/// A resource that serves at most `units_per_cycle` units (accesses, bytes,
/// words) per cycle, first come first served. A request of `n` units made at
/// cycle `t` starts when the resource has served everything granted before
/// it (and not before `t`), and occupies it for `n / units_per_cycle` cycles,
/// sharing a partially used cycle with the request before it.
#[derive(Debug, Clone)]
pub struct RateServer {
    units_per_cycle: u64,
    /// The next free unit slot, counted as `cycle * units_per_cycle + unit`.
    next_free_slot: u128,
    busy_units: u64,
    requests: u64,
}

impl RateServer {
    /// A server of `units_per_cycle` (at least 1).
    pub fn new(units_per_cycle: u64) -> Self {
        RateServer {
            units_per_cycle: units_per_cycle.max(1),
            next_free_slot: 0,
            busy_units: 0,
            requests: 0,
        }
    }

    /// Serves `units` units, no earlier than `at`. Zero units complete at
    /// once without occupying the resource.
    #[inline]
    pub fn request(&mut self, at: Cycle, units: u64) -> Grant {
        if units == 0 {
            return Grant { start: at, end: at };
        }
        let rate = u128::from(self.units_per_cycle);
        let start_slot = self.next_free_slot.max(u128::from(at.0) * rate);
        let end_slot = start_slot + u128::from(units);
        self.next_free_slot = end_slot;
        self.busy_units += units;
        self.requests += 1;
        Grant {
            start: slot_cycle(start_slot, self.units_per_cycle),
            end: slot_cycle(end_slot + rate - 1, self.units_per_cycle),
        }
    }

    /// The first cycle with free capacity.
    pub fn free_at(&self) -> Cycle {
        slot_cycle(self.next_free_slot, self.units_per_cycle)
    }

    pub fn units_per_cycle(&self) -> u64 {
        self.units_per_cycle
    }

    /// Units served so far.
    pub fn busy_units(&self) -> u64 {
        self.busy_units
    }

    /// Cycles of full occupancy equivalent to the units served.
    pub fn busy_cycles(&self) -> u64 {
        self.busy_units.div_ceil(self.units_per_cycle)
    }

    pub fn requests(&self) -> u64 {
        self.requests
    }
}

/// The cycle of unit slot `slot` at `rate` units per cycle (`slot / rate`,
/// saturating at `u64::MAX`). Slots below 2^64 (every simulated run) divide
/// in 64 bits: a 128-bit division is a library call, twice per request.
fn slot_cycle(slot: u128, rate: u64) -> Cycle {
    let cycle = match u64::try_from(slot) {
        // A power-of-two rate (the usual bus width) divides by a shift.
        Ok(s) if rate.is_power_of_two() => u128::from(s >> rate.trailing_zeros()),
        Ok(s) => u128::from(s / rate),
        Err(_) => slot / u128::from(rate),
    };
    Cycle(u64::try_from(cycle).unwrap_or(u64::MAX))
}

/// A store that holds at most `capacity` units (bytes, entries).
#[derive(Debug, Clone)]
pub struct Capacity {
    capacity: u64,
    used: u64,
    peak: u64,
}

impl Capacity {
    pub fn new(capacity: u64) -> Self {
        Capacity {
            capacity,
            used: 0,
            peak: 0,
        }
    }

    /// Takes `units` if they fit; false (and nothing taken) otherwise.
    pub fn try_take(&mut self, units: u64) -> bool {
        if units > self.available() {
            return false;
        }
        self.used += units;
        self.peak = self.peak.max(self.used);
        true
    }

    /// Returns `units` (saturating at empty).
    pub fn give_back(&mut self, units: u64) {
        self.used = self.used.saturating_sub(units);
    }

    pub fn available(&self) -> u64 {
        self.capacity - self.used
    }

    pub fn used(&self) -> u64 {
        self.used
    }

    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    /// The most held at once since the last [`Capacity::reset_peak`].
    pub fn peak(&self) -> u64 {
        self.peak
    }

    /// Starts a new peak measurement from the current occupancy.
    pub fn reset_peak(&mut self) {
        self.peak = self.used;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_server_packs_partial_cycles_fifo() {
        let mut bus = RateServer::new(8);
        // 20 bytes at 8 B/cycle from cycle 0: cycles 0, 1, 2 (half used).
        assert_eq!(
            bus.request(Cycle(0), 20),
            Grant {
                start: Cycle(0),
                end: Cycle(3)
            }
        );
        // The next 4 bytes share cycle 2.
        assert_eq!(
            bus.request(Cycle(0), 4),
            Grant {
                start: Cycle(2),
                end: Cycle(3)
            }
        );
        // A request after an idle gap starts at its own time.
        assert_eq!(
            bus.request(Cycle(10), 8),
            Grant {
                start: Cycle(10),
                end: Cycle(11)
            }
        );
        assert_eq!(bus.busy_units(), 32);
        assert_eq!(bus.busy_cycles(), 4);
        assert_eq!(
            bus.request(Cycle(0), 0),
            Grant {
                start: Cycle(0),
                end: Cycle(0)
            }
        );
        assert_eq!(bus.requests(), 3);
    }

    #[test]
    fn rate_server_divides_slots_at_any_rate_and_beyond_64_bits_the_same() {
        // Cycle 2^62 at 8 units per cycle is slot 2^65: the 128-bit path.
        let mut bus = RateServer::new(8);
        let at = Cycle(1 << 62);
        assert_eq!(
            bus.request(at, 9),
            Grant {
                start: at,
                end: Cycle((1 << 62) + 2)
            }
        );
        assert_eq!(bus.free_at(), Cycle((1 << 62) + 1));
        // A rate that is not a power of two: slots 15..22, cycles 5..8.
        let mut bus = RateServer::new(3);
        assert_eq!(
            bus.request(Cycle(5), 7),
            Grant {
                start: Cycle(5),
                end: Cycle(8)
            }
        );
        assert_eq!(bus.free_at(), Cycle(7));
        // Just below 2^64 slots: the 64-bit path, the same arithmetic.
        let mut bus = RateServer::new(4);
        let at = Cycle((1 << 62) - 1);
        assert_eq!(
            bus.request(at, 3),
            Grant {
                start: at,
                end: Cycle(1 << 62)
            }
        );
    }

    #[test]
    fn capacity_refuses_what_does_not_fit() {
        let mut c = Capacity::new(100);
        assert!(c.try_take(60));
        assert!(!c.try_take(50));
        assert_eq!(c.used(), 60);
        c.give_back(30);
        assert!(c.try_take(50));
        assert_eq!((c.used(), c.peak(), c.available()), (80, 80, 20));
    }
}
