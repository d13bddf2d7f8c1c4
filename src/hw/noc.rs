//! The array interconnect (SPEC section 1, EYERISS).
//!
//! ```text
//!          GLB
//!   input bus │ weight bus │ ▲ output bus        (each glb_bus_bytes_per_cycle)
//!   ┌─────────┼────────────┼─┼──────────────┐
//!   │  PE(0,0) PE(0,1) ... PE(0,C-1)          │  a bus transfer reaches every PE
//!   │     │ neighbour link (words/cycle)      │  that needs the word (multicast):
//!   │  PE(1,0) PE(1,1) ...                    │  one GLB read, many RF writes
//!   │     ...                                 │
//!   └─────────────────────────────────────────┘
//! ```
//!
//! EYERISS has separate networks for inputs, weights and partial sums; accsim
//! models one bus each of the configured width. Neighbouring rows are joined
//! by per-PE links that carry shared input words ("array moves").

use crate::arch::{Arch, InterconnectConfig};
use crate::sim::RateServer;

/// The buses and links of the array.
#[derive(Debug, Clone)]
pub struct Noc {
    pub input_bus: RateServer,
    pub weight_bus: RateServer,
    pub output_bus: RateServer,
    /// `links[r]` joins row `r` to row `r + 1` (one per row pair; the PEs of a
    /// row use their links in parallel, so the pair's rate is per PE).
    pub links: Vec<RateServer>,
}

impl Noc {
    pub fn new(arch: &Arch) -> Self {
        let InterconnectConfig {
            glb_bus_bytes_per_cycle,
            neighbor_words_per_cycle,
        } = arch.interconnect;
        let bus = || RateServer::new(u64::from(glb_bus_bytes_per_cycle));
        Noc {
            input_bus: bus(),
            weight_bus: bus(),
            output_bus: bus(),
            links: (0..arch.pe_array.rows.saturating_sub(1))
                .map(|_| RateServer::new(u64::from(neighbor_words_per_cycle)))
                .collect(),
        }
    }
}
