//! The line buffer in front of a k x k stage: k + 1 single-port SRAM banks
//! (SPEC section 3, FIXYNN).
//!
//! ```text
//!              write port (one pixel = C words per cycle)
//!   in ───────────────┬──────────┬──────────┬──────────┐
//!                     ▼          ▼          ▼          ▼
//!                 ┌────────┐ ┌────────┐ ┌────────┐ ┌────────┐
//!                 │ bank 0 │ │ bank 1 │ │ bank 2 │ │ bank 3 │   k + 1 = 4 banks
//!                 │ row r  │ │row r+1 │ │row r+2 │ │row r+3 │   (k = 3), W words
//!                 └───┬────┘ └───┬────┘ └───┬────┘ └───┬────┘   of C x bits each
//!                     └──────────┴────┬─────┴──────────┘
//!                                     ▼   read port: column x of the k rows
//!                         1 x k x C column ──► shift-register window
//! ```
//!
//! Input row `r` (counted over the rows the stage stores, across frames)
//! lives in bank `r mod (k + 1)`: after the last pixel of a row the banks
//! rotate and the next row overwrites the oldest. Each cycle at most one
//! bank is written (the incoming row) and the k others can be read (the
//! complete rows of the current window), so one port per bank suffices.
//! [`LineBuffer`] enforces that: a second access to a bank in one cycle is
//! a [`PortConflict`], which the controller reports as a simulator fault.

/// A bank was accessed twice in one cycle (a single port allows one access).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortConflict {
    pub bank: usize,
    pub cycle: u64,
}

/// What the line buffer did, in words (one word = one channel of one pixel)
/// and in SRAM accesses (one access = one pixel's C words in one bank).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LineBufferStats {
    /// Bank reads (one pixel of one row each).
    pub read_accesses: u64,
    pub write_accesses: u64,
    /// Data words (channel values) read and written.
    pub read_words: u64,
    pub write_words: u64,
    /// Rows completed (each completion rotates the banks).
    pub rotations: u64,
}

/// k + 1 banks of `width` pixels x `lanes` channels.
#[derive(Debug, Clone)]
pub struct LineBuffer {
    banks: usize,
    width: usize,
    lanes: usize,
    /// Values `[bank][x][lane]`, when the run simulates values.
    data: Option<Vec<i16>>,
    /// The stored row each bank holds.
    holds: Vec<Option<u64>>,
    /// Cycle + 1 of each bank's last access (0: never).
    last_access: Vec<u64>,
    pub stats: LineBufferStats,
}

impl LineBuffer {
    /// `banks` banks (kernel height + 1) of `width` pixels of `lanes`
    /// channels; `with_data` keeps the values (a timing-only run does not).
    pub fn new(banks: usize, width: usize, lanes: usize, with_data: bool) -> Self {
        LineBuffer {
            banks,
            width,
            lanes,
            data: with_data.then(|| vec![0; banks * width * lanes]),
            holds: vec![None; banks],
            last_access: vec![0; banks],
            stats: LineBufferStats::default(),
        }
    }

    pub fn banks(&self) -> usize {
        self.banks
    }

    /// Bank of stored row `row`.
    pub fn bank_of(&self, row: u64) -> usize {
        (row % self.banks as u64) as usize
    }

    /// Capacity in data words.
    pub fn capacity_words(&self) -> u64 {
        (self.banks * self.width * self.lanes) as u64
    }

    fn port(&mut self, bank: usize, cycle: u64) -> Result<(), PortConflict> {
        if self.last_access[bank] == cycle + 1 {
            return Err(PortConflict { bank, cycle });
        }
        self.last_access[bank] = cycle + 1;
        Ok(())
    }

    /// Writes pixel `x` of stored row `row` (its values, when simulated).
    pub fn write(
        &mut self,
        cycle: u64,
        row: u64,
        x: usize,
        pixel: Option<&[i16]>,
    ) -> Result<(), PortConflict> {
        let bank = self.bank_of(row);
        self.port(bank, cycle)?;
        self.holds[bank] = Some(row);
        if let (Some(data), Some(p)) = (self.data.as_mut(), pixel) {
            let at = (bank * self.width + x) * self.lanes;
            data[at..at + self.lanes].copy_from_slice(&p[..self.lanes]);
        }
        self.stats.write_accesses += 1;
        self.stats.write_words += self.lanes as u64;
        if x + 1 == self.width {
            self.stats.rotations += 1;
        }
        Ok(())
    }

    /// Reads pixel `x` of stored row `row` into `out` (when simulated).
    /// The row must be in its bank (the controller only reads complete,
    /// unreleased rows); otherwise the read is a simulator fault too.
    pub fn read(
        &mut self,
        cycle: u64,
        row: u64,
        x: usize,
        out: Option<&mut [i16]>,
    ) -> Result<(), PortConflict> {
        let bank = self.bank_of(row);
        self.port(bank, cycle)?;
        if self.holds[bank] != Some(row) {
            return Err(PortConflict { bank, cycle });
        }
        if let (Some(data), Some(out)) = (self.data.as_ref(), out) {
            let at = (bank * self.width + x) * self.lanes;
            out[..self.lanes].copy_from_slice(&data[at..at + self.lanes]);
        }
        self.stats.read_accesses += 1;
        self.stats.read_words += self.lanes as u64;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_rotate_through_the_banks_and_ports_are_single() {
        let mut lb = LineBuffer::new(4, 2, 3, true);
        for row in 0..5u64 {
            for x in 0..2 {
                let v = [row as i16, x as i16, 7];
                assert!(lb.write(row * 10 + x as u64, row, x, Some(&v)).is_ok());
            }
        }
        // Row 4 overwrote row 0 in bank 0.
        assert_eq!(lb.bank_of(4), 0);
        let mut out = [0i16; 3];
        assert!(lb.read(100, 4, 1, Some(&mut out)).is_ok());
        assert_eq!(out, [4, 1, 7]);
        assert!(lb.read(101, 0, 1, None).is_err(), "row 0 is gone");
        // Two accesses of one bank in one cycle.
        assert!(lb.read(200, 1, 0, None).is_ok());
        assert_eq!(
            lb.write(200, 5, 0, None),
            Err(PortConflict {
                bank: 1,
                cycle: 200
            })
        );
        assert_eq!(lb.stats.write_accesses, 10);
        assert_eq!(lb.stats.write_words, 30);
        assert_eq!(lb.stats.rotations, 5);
        assert_eq!(lb.stats.read_accesses, 2);
    }
}
