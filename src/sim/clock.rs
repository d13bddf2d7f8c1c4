//! Clock domains: converting cycles of one clock to time and to cycles of
//! another. The FFE and its back-end run on different clocks (SPEC
//! section 3: FIXYNN's FFE at 810 MHz; the back-end at its own rate).
//!
//! A hand-over from one domain to another happens at the receiving clock's
//! first edge at or after the sender's time (no synchroniser delay is
//! modelled). Times are `f64` seconds: IEEE arithmetic in a fixed order is
//! deterministic, so reports stay byte-identical.

/// A clock of `mhz` megahertz.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Clock {
    pub mhz: f64,
}

impl Clock {
    pub fn new(mhz: f64) -> Self {
        Clock { mhz }
    }

    /// Duration of `cycles` cycles [s].
    pub fn seconds(&self, cycles: u64) -> f64 {
        cycles as f64 / (self.mhz * 1e6)
    }

    /// The first cycle edge at or after `seconds`.
    pub fn cycle_at(&self, seconds: f64) -> u64 {
        let c = seconds * self.mhz * 1e6;
        // Guard against 1e-9-scale rounding pushing an exact edge up one cycle.
        let r = c.round();
        if (c - r).abs() < 1e-6 {
            r.max(0.0) as u64
        } else {
            c.ceil().max(0.0) as u64
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Clock;

    #[test]
    fn converts_between_domains() {
        let ffe = Clock::new(810.0);
        let be = Clock::new(200.0);
        // 405 FFE cycles = 0.5 us = 100 back-end cycles exactly.
        assert_eq!(be.cycle_at(ffe.seconds(405)), 100);
        // One more FFE cycle lands inside back-end cycle 100: edge 101.
        assert_eq!(be.cycle_at(ffe.seconds(406)), 101);
        assert_eq!(ffe.cycle_at(0.0), 0);
    }
}
