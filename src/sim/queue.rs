//! The event queue: a binary heap keyed by (cycle, phase, sequence number).

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use super::Cycle;

/// Named priorities for events that fall on the same cycle. Lower runs
/// first: data that arrives in a cycle is visible to work that starts in it,
/// and space freed in a cycle is visible to allocations in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Phase {
    /// Completions that free resources or deliver data.
    Complete = 0,
    /// Work that consumes data and resources.
    Start = 1,
}

struct Entry<E> {
    at: Cycle,
    phase: Phase,
    seq: u64,
    event: E,
}

impl<E> PartialEq for Entry<E> {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.phase, self.seq) == (other.at, other.phase, other.seq)
    }
}
impl<E> Eq for Entry<E> {}
impl<E> PartialOrd for Entry<E> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl<E> Ord for Entry<E> {
    /// Reversed: `BinaryHeap` is a max-heap and we want the earliest first.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at, other.phase, other.seq).cmp(&(self.at, self.phase, self.seq))
    }
}

/// Pending events, popped in (cycle, phase, FIFO) order.
pub struct EventQueue<E> {
    heap: BinaryHeap<Entry<E>>,
    next_seq: u64,
    now: Cycle,
    processed: u64,
}

impl<E> Default for EventQueue<E> {
    fn default() -> Self {
        EventQueue {
            heap: BinaryHeap::new(),
            next_seq: 0,
            now: Cycle::ZERO,
            processed: 0,
        }
    }
}

impl<E> EventQueue<E> {
    /// An empty queue at cycle `now`.
    pub fn starting_at(now: Cycle) -> Self {
        EventQueue {
            now,
            ..Default::default()
        }
    }

    /// Schedules `event` at `at` (never earlier than the current cycle).
    pub fn schedule(&mut self, at: Cycle, phase: Phase, event: E) {
        let at = at.max(self.now);
        self.heap.push(Entry {
            at,
            phase,
            seq: self.next_seq,
            event,
        });
        self.next_seq += 1;
    }

    /// The next event, advancing the current cycle to it.
    pub fn pop(&mut self) -> Option<(Cycle, E)> {
        let e = self.heap.pop()?;
        self.now = e.at;
        self.processed += 1;
        Some((e.at, e.event))
    }

    /// The cycle of the last event popped.
    pub fn now(&self) -> Cycle {
        self.now
    }

    /// Events popped so far.
    pub fn processed(&self) -> u64 {
        self.processed
    }

    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_by_cycle_then_phase_then_fifo() {
        let mut q = EventQueue::default();
        q.schedule(Cycle(5), Phase::Start, "c");
        q.schedule(Cycle(5), Phase::Complete, "b");
        q.schedule(Cycle(1), Phase::Start, "a");
        q.schedule(Cycle(5), Phase::Start, "d");
        q.schedule(Cycle(5), Phase::Complete, "b2");
        let order: Vec<&str> = std::iter::from_fn(|| q.pop().map(|(_, e)| e)).collect();
        assert_eq!(order, ["a", "b", "b2", "c", "d"]);
        assert_eq!(q.now(), Cycle(5));
        assert_eq!(q.processed(), 5);
    }

    #[test]
    fn never_schedules_into_the_past() {
        let mut q = EventQueue::starting_at(Cycle(10));
        q.schedule(Cycle(3), Phase::Start, ());
        assert_eq!(q.pop().map(|(t, _)| t), Some(Cycle(10)));
    }
}
