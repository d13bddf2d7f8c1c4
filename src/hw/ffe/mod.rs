//! The fixed-weight feature extractor's hardware (SPEC section 3, FIXYNN):
//! one pipeline stage per fixed layer, all running concurrently.
//!
//! ```text
//!  sensor ──► stage 0 ──► stage 1 ──► stage 2 ──► ... ──► stage M ──► buffer ──► back-end
//!  (1 px/cycle) conv1      dw1         pw1 (no line       (tap)     (GLB or NVDLA
//!                                      buffer: fed by dw1)            buffer)
//!        each arrow: pixel + valid ──►, ◄── ready (back-pressure)
//! ```
//!
//! - [`line_buffer`]: k + 1 single-port SRAM banks, rotating per row;
//! - [`datapath`]: shift-add scalers from CSD digits, adder trees, BN/ReLU/Q,
//!   max-pool comparators;
//! - [`stage`]: a stage's writer, shift-register window, reader and output
//!   pipeline, with its counters.
//!
//! The components know nothing about layers: the engine builds each stage
//! from the mapping's plan (`mapping::ffe`) and clocks them (`engine::ffe`).

pub mod datapath;
pub mod line_buffer;
pub mod stage;

pub use datapath::{PixelOps, ShiftAddArray};
pub use line_buffer::{LineBuffer, LineBufferStats, PortConflict};
pub use stage::{Dims, Pixel, Stage, StageFunction, StageInventory, StageSpec, StageStats};
