//! Components that advance cycle by cycle, and the two ways to run them.
//!
//! A [`Component`] owns its state and changes it one cycle at a time
//! ([`Component::tick`]). It also knows, from that state, the first cycle in
//! which ticking would do something another part of the machine can see (a
//! request completing): [`Component::next_change`]. Until then every tick
//! only counts down, so [`Component::skip`] can do a stretch of ticks at once.
//!
//! - [`Timing::Cycle`] ticks every component every cycle: plain, slow, the
//!   definition of the machine;
//! - [`Timing::Event`] jumps from change to change, skipping the cycles in
//!   which nothing visible happens. The two give the same results exactly;
//!   the tests of each component and of the engine prove it.
//!
//! [`Fifo`] is the component every shared resource is built from (bank
//! ports, buses, links, the DRAM channel): requests wait in arrival order
//! and the head is served `units_per_cycle` units per cycle.

use std::collections::VecDeque;

use super::{Cycle, Grant};

/// How a machine's components are advanced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Timing {
    /// Every component, every cycle.
    Cycle,
    /// From one visible change to the next.
    #[default]
    Event,
}

/// A part of the machine with its own state, advanced one cycle at a time.
pub trait Component {
    /// Does the work of cycle `now`.
    fn tick(&mut self, now: Cycle);
    /// The first cycle at or after `now` whose tick changes what the rest of
    /// the machine can observe; `None` when the component is idle.
    fn next_change(&self, now: Cycle) -> Option<Cycle>;
    /// Does the ticks of cycles `now..to`, none of which is a change
    /// (`to <= next_change(now)`), at once.
    fn skip(&mut self, now: Cycle, to: Cycle);
}

/// A request a [`Fifo`] has finished: its token and when it was served
/// (it completes at `grant.end`, the cycle after its last unit).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Served<T> {
    pub token: T,
    pub grant: Grant,
}

#[derive(Debug, Clone)]
struct Pending<T> {
    token: T,
    /// The first cycle the request may be served in.
    not_before: Cycle,
    remaining: u64,
    started: Option<Cycle>,
}

/// A first-come-first-served server of `units_per_cycle` units (bytes,
/// words, bank-port slots) per cycle.
///
/// ```text
///   submit ──► [ queue, arrival order ] ──► head: up to units_per_cycle
///                                               units served per cycle ──► served
/// ```
///
/// Each cycle the server hands its units to the head request; a request
/// that finishes with units to spare passes them to the next one in the same
/// cycle. A head that may not start yet (`not_before`) holds the queue
/// behind it, as an in-order controller does.
#[derive(Debug, Clone)]
pub struct Fifo<T> {
    units_per_cycle: u64,
    queue: VecDeque<Pending<T>>,
    served: Vec<Served<T>>,
    busy_units: u64,
    requests: u64,
}

impl<T> Fifo<T> {
    /// A server of `units_per_cycle` (at least 1).
    pub fn new(units_per_cycle: u64) -> Self {
        Fifo {
            units_per_cycle: units_per_cycle.max(1),
            queue: VecDeque::new(),
            served: Vec::new(),
            busy_units: 0,
            requests: 0,
        }
    }

    /// Queues a request of `units` units to be served from `not_before` on.
    /// A request of no units takes no turn: it is served at once, at
    /// `not_before`.
    pub fn submit(&mut self, not_before: Cycle, units: u64, token: T) {
        if units == 0 {
            self.served.push(Served {
                token,
                grant: Grant {
                    start: not_before,
                    end: not_before,
                },
            });
            return;
        }
        self.requests += 1;
        self.queue.push_back(Pending {
            token,
            not_before,
            remaining: units,
            started: None,
        });
    }

    /// The requests finished so far, oldest first; they leave the server.
    pub fn take_served(&mut self) -> std::vec::Drain<'_, Served<T>> {
        self.served.drain(..)
    }

    /// Requests queued or being served.
    pub fn outstanding(&self) -> usize {
        self.queue.len()
    }

    pub fn units_per_cycle(&self) -> u64 {
        self.units_per_cycle
    }

    /// Units served so far.
    pub fn busy_units(&self) -> u64 {
        self.busy_units
    }

    /// Requests of at least one unit submitted so far.
    pub fn requests(&self) -> u64 {
        self.requests
    }

    /// Finishes the head request, served last in cycle `last`.
    fn finish_head(&mut self, last: Cycle) {
        if let Some(p) = self.queue.pop_front() {
            self.served.push(Served {
                token: p.token,
                grant: Grant {
                    start: p.started.unwrap_or(last),
                    end: last + 1,
                },
            });
        }
    }
}

impl<T> Component for Fifo<T> {
    fn tick(&mut self, now: Cycle) {
        let mut budget = self.units_per_cycle;
        while let Some(head) = self.queue.front_mut() {
            if head.not_before > now {
                break;
            }
            if budget == 0 {
                break;
            }
            let take = budget.min(head.remaining);
            head.remaining -= take;
            head.started.get_or_insert(now);
            budget -= take;
            self.busy_units += take;
            if head.remaining == 0 {
                self.finish_head(now);
            }
        }
    }

    fn next_change(&self, now: Cycle) -> Option<Cycle> {
        let head = self.queue.front()?;
        let from = head.not_before.max(now);
        // The head finishes in the tick of its last unit.
        let cycles = head.remaining.div_ceil(self.units_per_cycle).max(1);
        Some(from + (cycles - 1))
    }

    fn skip(&mut self, now: Cycle, to: Cycle) {
        // Only the head is served before the next change, whole cycles of it.
        if let Some(head) = self.queue.front_mut() {
            let from = head.not_before.max(now);
            let cycles = to.since(from);
            if cycles > 0 {
                let units = cycles * self.units_per_cycle;
                debug_assert!(units < head.remaining, "skipped past a change");
                head.remaining -= units;
                head.started.get_or_insert(from);
                self.busy_units += units;
            }
        }
    }
}

/// Advances `parts` from `now` to the first cycle in which one of them
/// changes, doing the ticks on the way (all of them under
/// [`Timing::Cycle`], only the last under [`Timing::Event`]); returns the
/// cycle after that tick, or `None` when every part is idle.
pub fn advance(timing: Timing, now: Cycle, parts: &mut [&mut dyn Component]) -> Option<Cycle> {
    let change = parts.iter().filter_map(|p| p.next_change(now)).min()?;
    match timing {
        Timing::Cycle => {
            for t in now.get()..=change.get() {
                for p in parts.iter_mut() {
                    p.tick(Cycle(t));
                }
            }
        }
        Timing::Event => {
            for p in parts.iter_mut() {
                p.skip(now, change);
                p.tick(change);
            }
        }
    }
    Some(change + 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::RateServer;
    use proptest::prelude::*;

    /// Runs `fifo` to idle one way, collecting what it served.
    /// A request with units is seen served at its grant's end.
    fn drain(fifo: &mut Fifo<usize>, timing: Timing, mut now: Cycle) -> Vec<Served<usize>> {
        let mut out = Vec::new();
        while let Some(next) = advance(timing, now, &mut [fifo as &mut dyn Component]) {
            for s in fifo.take_served() {
                assert!(s.grant.start == s.grant.end || s.grant.end == next);
                out.push(s);
            }
            now = next;
        }
        out
    }

    #[test]
    fn a_fifo_shares_a_partly_used_cycle_and_waits_for_its_start() {
        let mut f = Fifo::new(8);
        f.submit(Cycle(0), 20, 0); // cycles 0, 1, 2 (4 bytes of cycle 2)
        f.submit(Cycle(0), 4, 1); // the other 4 bytes of cycle 2
        f.submit(Cycle(10), 8, 2); // after an idle gap, from cycle 10
        f.submit(Cycle(0), 0, 3); // no units: served at once, taking no turn
        for timing in [Timing::Cycle, Timing::Event] {
            let served = drain(&mut f.clone(), timing, Cycle(0));
            let grants: Vec<(usize, u64, u64)> = served
                .iter()
                .map(|s| (s.token, s.grant.start.get(), s.grant.end.get()))
                .collect();
            assert_eq!(grants, [(3, 0, 0), (0, 0, 3), (1, 2, 3), (2, 10, 11)]);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(500))]
        /// Stepped every cycle, skipped from change to change, and the
        /// closed form of `RateServer` serve every request alike.
        #[test]
        fn stepping_skipping_and_the_closed_form_agree(
            rate in 1u64..40,
            requests in prop::collection::vec((0u64..60, 0u64..200), 1..40),
        ) {
            let mut calendar = RateServer::new(rate);
            let mut fifo = Fifo::new(rate);
            // Requests are queued in the order they are made; each may start
            // no earlier than its own cycle, which need not grow (a request
            // made for later holds those behind it).
            let mut want = Vec::new();
            for (k, &(at, units)) in requests.iter().enumerate() {
                let at = at * 3;
                fifo.submit(Cycle(at), units, k);
                want.push((k, calendar.request(Cycle(at), units)));
            }
            // Requests of no units were served as they came.
            let at_once: Vec<Served<usize>> = fifo.take_served().collect();
            let mut stepped = at_once.clone();
            stepped.extend(drain(&mut fifo.clone(), Timing::Cycle, Cycle(0)));
            let mut skipped = at_once;
            skipped.extend(drain(&mut fifo, Timing::Event, Cycle(0)));
            prop_assert_eq!(&stepped, &skipped);
            let mut got: Vec<(usize, Grant)> = stepped.iter().map(|s| (s.token, s.grant)).collect();
            got.sort_unstable_by_key(|g| g.0);
            prop_assert_eq!(got, want);
        }
    }
}
