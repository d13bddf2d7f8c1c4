//! The energies of a search's states, computed off the search's path.
//!
//! ```text
//!   submit(state) ──► queue ──► worker thread(s): EnergyModel::energy_pj ──► slot: done
//!                       │                                                     │
//!   energy(state) ──────┴─ queued: taken and run here; running: waits; done: ─┘
//! ```
//!
//! The annealer needs a state's energy only when the state is acceptable
//! (its drop below lambda_max); the energies of the rejected ones (most of
//! them) are needed only for the records and the front after the search.
//! So every new state is submitted when the search first sees it, a worker
//! computes the energies in submission order beside the calibration
//! inference, and the search waits only for the energies it reads; a state
//! it asks about that no worker has started is computed at once by the
//! asking thread. Each energy is a pure function of its state (one engine
//! run), so which thread computes it, and when, changes nothing.

use std::collections::{HashMap, VecDeque};
use std::sync::{Condvar, Mutex, MutexGuard};

use super::energy::EnergyModel;
use crate::numerics::precision::PrecisionAssignment;

/// Where a state's energy is.
enum Slot {
    Queued,
    Running,
    /// The energy, and the wall time of its run in s.
    Done(Result<f64, String>, f64),
}

/// The slots and the queue of states no thread has started.
#[derive(Default)]
struct Board {
    slots: HashMap<Vec<bool>, Slot>,
    queue: VecDeque<Vec<bool>>,
    /// No more work will be submitted: workers stop once the queue is empty.
    closed: bool,
}

/// The energy jobs of one search (see the module docs).
pub struct EnergyJobs<'m> {
    model: &'m dyn EnergyModel,
    board: Mutex<Board>,
    changed: Condvar,
}

impl<'m> EnergyJobs<'m> {
    pub fn new(model: &'m dyn EnergyModel) -> Self {
        EnergyJobs {
            model,
            board: Mutex::new(Board::default()),
            changed: Condvar::new(),
        }
    }

    /// The board; a panic elsewhere while it was held (none is expected:
    /// model panics are caught) leaves it consistent, so poisoning is ignored.
    fn board(&self) -> MutexGuard<'_, Board> {
        self.board.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn wait<'g>(&self, board: MutexGuard<'g, Board>) -> MutexGuard<'g, Board> {
        self.changed.wait(board).unwrap_or_else(|p| p.into_inner())
    }

    /// Queues `state`'s energy unless it was submitted before; returns
    /// whether it is new.
    pub fn submit(&self, state: &[bool]) -> bool {
        let mut board = self.board();
        if board.slots.contains_key(state) {
            return false;
        }
        board.slots.insert(state.to_vec(), Slot::Queued);
        board.queue.push_back(state.to_vec());
        drop(board);
        self.changed.notify_all();
        true
    }

    /// The wall time in s of `state`'s energy run, once done.
    pub fn seconds(&self, state: &[bool]) -> Option<f64> {
        match self.board().slots.get(state) {
            Some(Slot::Done(_, s)) => Some(*s),
            _ => None,
        }
    }

    /// States submitted so far.
    pub fn submitted(&self) -> usize {
        self.board().slots.len()
    }

    /// `state`'s energy: computed here when no worker has started it (or it
    /// was never submitted), else waited for.
    pub fn energy(&self, state: &[bool]) -> Result<f64, String> {
        let mut board = self.board();
        loop {
            match board.slots.get(state) {
                Some(Slot::Done(r, _)) => return r.clone(),
                Some(Slot::Running) => board = self.wait(board),
                Some(Slot::Queued) | None => {
                    board.slots.insert(state.to_vec(), Slot::Running);
                    drop(board);
                    return self.run(state);
                }
            }
        }
    }

    /// A worker: runs queued states in submission order until the board is
    /// closed and the queue empty.
    pub fn work(&self) {
        while let Some(state) = self.next_queued() {
            // The result is kept on the board; whoever asks reads it there.
            let _ = self.run(&state);
        }
    }

    /// No more submissions: workers finish the queue (or, with `drop_queued`,
    /// only what they started) and stop. A dropped state is still computed
    /// by whoever asks for it.
    pub fn close(&self, drop_queued: bool) {
        let mut board = self.board();
        board.closed = true;
        if drop_queued {
            board.queue.clear();
        }
        drop(board);
        self.changed.notify_all();
    }

    /// The oldest state still queued, marked running; `None` once closed
    /// and empty.
    fn next_queued(&self) -> Option<Vec<bool>> {
        let mut board = self.board();
        loop {
            while let Some(state) = board.queue.pop_front() {
                if let Some(slot @ Slot::Queued) = board.slots.get_mut(&state) {
                    *slot = Slot::Running;
                    return Some(state);
                }
                // Taken by an asking thread meanwhile.
            }
            if board.closed {
                return None;
            }
            board = self.wait(board);
        }
    }

    /// Runs the model for `state` (marked running by the caller), records
    /// the result and wakes whoever waits for it.
    fn run(&self, state: &[bool]) -> Result<f64, String> {
        let started = std::time::Instant::now();
        let result = PrecisionAssignment::from_bits(state).and_then(|a| {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.model.energy_pj(&a)))
                .unwrap_or_else(|_| Err("the energy model panicked".to_string()))
        });
        self.board().slots.insert(
            state.to_vec(),
            Slot::Done(result.clone(), started.elapsed().as_secs_f64()),
        );
        self.changed.notify_all();
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Energy = number of set bits; counts its calls; fails on all-true.
    struct Counting(AtomicUsize);

    impl EnergyModel for Counting {
        fn energy_pj(&self, a: &PrecisionAssignment) -> Result<f64, String> {
            self.0.fetch_add(1, Ordering::SeqCst);
            let bits = a.to_bits();
            if bits.iter().all(|&b| b) {
                return Err("all eight".to_string());
            }
            Ok(bits.iter().filter(|&&b| b).count() as f64)
        }
    }

    fn states() -> Vec<Vec<bool>> {
        (0u32..8)
            .map(|m| (0..3).map(|k| m >> k & 1 == 1).collect())
            .collect()
    }

    #[test]
    fn each_state_runs_once_whoever_computes_it() {
        let model = Counting(AtomicUsize::new(0));
        let jobs = EnergyJobs::new(&model);
        std::thread::scope(|scope| {
            let worker = scope.spawn(|| jobs.work());
            for s in states() {
                assert!(jobs.submit(&s));
                assert!(!jobs.submit(&s));
            }
            // Asked for in reverse: some are taken from the queue here.
            for s in states().iter().rev() {
                let want = s.iter().filter(|&&b| b).count() as f64;
                match jobs.energy(s) {
                    Ok(e) => assert_eq!(e, want),
                    Err(e) => assert_eq!((e.as_str(), s.as_slice()), ("all eight", &[true; 3][..])),
                }
            }
            jobs.close(false);
            worker.join().expect("the worker ends once closed");
        });
        assert_eq!(model.0.load(Ordering::SeqCst), 8);
        assert_eq!(jobs.submitted(), 8);
        // Asked again: read from its slot, not run again.
        assert_eq!(jobs.energy(&[true, false, true]), Ok(2.0));
        assert_eq!(model.0.load(Ordering::SeqCst), 8);
    }

    #[test]
    fn a_worker_alone_finishes_the_queue_after_close() {
        let model = Counting(AtomicUsize::new(0));
        let jobs = EnergyJobs::new(&model);
        for s in states() {
            jobs.submit(&s);
        }
        jobs.close(false);
        jobs.work();
        assert_eq!(model.0.load(Ordering::SeqCst), 8);
        assert_eq!(jobs.energy(&[false, true, true]), Ok(2.0));
        assert_eq!(model.0.load(Ordering::SeqCst), 8);
        assert!(jobs.seconds(&[false, true, true]).is_some_and(|s| s >= 0.0));
        assert_eq!(jobs.seconds(&[false, true]), None);
    }
}
