//! Hardware components: each owns its resources and counts every datum that
//! enters or leaves it. They know nothing of layers or mappings: the engine
//! drives them with requests (cycle, data type, words, bytes).
//!
//! - [`dram::Dram`]: off-chip memory, simple or banked timing;
//! - [`glb::Glb`]: the global buffer: capacity, bank ports, counters;
//! - [`glb_unit::GlbUnit`]: the pooling and element-wise datapath beside the
//!   GLB, computing from the rows the GLB holds;
//! - [`noc::Noc`]: the input, weight and output buses and the neighbour links;
//! - [`pe`]: per-PE register-file, weight-store and MAC counters;
//! - [`ffe`]: the fixed-weight feature extractor's stages: line buffers,
//!   shift-register windows, shift-add datapaths (SPEC section 3);
//! - [`nvdla`]: the table-driven NVDLA back-end (SPEC section 3).

pub mod dram;
pub mod ffe;
pub mod glb;
pub mod glb_unit;
pub mod noc;
pub mod nvdla;
pub mod pe;
