//! Cost models, applied to measured counters after a run: a change of units
//! or of the energy table never needs a new simulation.
//!
//! - [`energy`]: the PE array's normalised access costs (SPEC section 1);
//! - [`ffe`]: FFE area and energy from its hardware inventory and activity;
//! - [`area`]: back-end area (PE array model, NVDLA table).

pub mod area;
pub mod energy;
pub mod ffe;
