//! accsim: a cycle-level, bit-exact simulator of CNN inference accelerators.
//!
//! ```text
//!   workloads/*.toml ──► workload ──► Network (IR) ──┐
//!                        (load, generate,             │      ┌────────────┐
//!                         calibrate)                  ├────► │   run      │──► Report ──► report::{text,json,csv}
//!   arch_configs/*.toml ► arch ──────► Arch ──────────┘      │ (engines,  │
//!                                                            │  reference │──► dump (.npy + manifest)
//!   numerics: quantisation, rounding, TFLite arithmetic,     │  check)    │
//!             the output stage, shared by everyone ─────────►└────────────┘
//! ```
//!
//! Dependency rules (a module uses only what is listed):
//! - `error`, `numerics`, `home` use nothing else; `atomic` (every output
//!   file written under a temporary name and renamed) uses only `error`;
//! - `workload` uses `numerics` (and `reference` to calibrate while loading);
//! - `reference` uses `workload::ir` and `numerics`;
//! - `arch` uses nothing but `error` and `home`;
//! - `report` is plain serde data; `run` joins everything; `dump` writes files;
//! - `sweep` (design-space sweeps) runs `run` over edited configs;
//! - `precision` (PELUSO's per-layer precision search) uses `numerics`,
//!   `reference`, `workload` and `sweep::pareto`, and takes energies through its
//!   `EnergyModel` trait, which the engine implements.
//!
//! Nothing in the library prints or exits; the `accsim` binary's `cli`
//! module is the only place that does.

pub mod arch;
pub mod atomic;
pub mod cost;
pub mod dump;
pub mod engine;
pub mod error;
pub mod home;
pub mod hw;
pub mod mapping;
pub mod numerics;
pub mod precision;
pub mod reference;
pub mod report;
pub mod run;
pub mod sim;
pub mod sweep;
pub mod trace;
pub mod units;
pub mod workload;

pub use error::{Error, InputError, Result};
