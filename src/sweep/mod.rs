//! Design-space sweeps (issue 6; docs/sweeps.md): [`spec`] (the sweep
//! file) -> [`space`] (points, keys, edited configs) -> [`runner`]
//! (parallel, resumable, sharded streams) -> [`output`] (sorted results,
//! Pareto fronts via [`front`], tables, [`plot`]s); [`merge`] joins shards.
//!
//! PELUSO's per-layer precision search is not a sweep: it lives in
//! [`crate::precision`] and shares only [`pareto`] with this module.

pub mod front;
pub mod lock;
pub mod merge;
pub mod output;
pub mod pareto;
pub mod plot;
pub mod record;
pub mod runner;
pub mod space;
pub mod spec;
