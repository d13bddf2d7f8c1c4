//! Cost models, applied to measured counters after a run: a change of units
//! or of the energy table never needs a new simulation.

pub mod energy;
