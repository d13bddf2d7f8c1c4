//! Back-end area (docs/arch-format.md, `[area]`), the model sweeps compare
//! designs by (issue 6). Every unit area is a 16 nm value from a named
//! source, scaled to `technology_nm` by `(technology_nm / 16)^2`.
//!
//! - PE array, per PE:
//!   - a MAC (`mac_um2`; PELUSO's multi-precision MAC, SPEC section 2);
//!   - its register files: input RF entries x 8 bits + psum RF entries x
//!     32 bits, at `register_um2_per_bit`;
//!   - its weight store: `weight_scratchpad_entries` x 8 bits of small SRAM
//!     at `scratchpad_um2_per_bit`, in both weight modes (a fixed LUT is
//!     counted as the scratchpad it replaces: LU22 sizes its LUT for the
//!     transferred layers, which the architecture alone does not know);
//!   - its share of the interconnect: a latch on each of the three GLB
//!     buses (inputs, weights, outputs: EYERISS's three networks, each
//!     `glb_bus_bytes_per_cycle` wide) and one on its neighbour link
//!     (`neighbor_words_per_cycle` 16-bit words), at `register_um2_per_bit`
//!     (wires are taken to route over the cells: accsim choice);
//! - the GLB: `capacity_kib` x 8192 bits at `sram_um2_per_bit` (at 16 nm,
//!   0.866e-3 mm^2 per KiB by default);
//! - NVDLA: the table's area (SPEC section 3); the FFE's own model is
//!   [`super::ffe`].
//!
//! Control and the DRAM interface are not counted.

use serde::Serialize;

use crate::arch::{Arch, Backend};

/// The PE array's area by part [mm^2].
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct PeArrayArea {
    pub macs_mm2: f64,
    pub register_files_mm2: f64,
    pub weight_stores_mm2: f64,
    pub interconnect_mm2: f64,
    pub glb_mm2: f64,
    pub total_mm2: f64,
}

/// Bits of bus and link latches per PE.
pub fn interconnect_bits_per_pe(arch: &Arch) -> f64 {
    let ic = &arch.interconnect;
    3.0 * f64::from(ic.glb_bus_bytes_per_cycle) * 8.0
        + f64::from(ic.neighbor_words_per_cycle) * 16.0
}

/// The PE array's area, part by part.
pub fn pe_array_area(arch: &Arch) -> PeArrayArea {
    let a = &arch.area;
    let p = &arch.pe_array;
    let mm2 = a.scale() * 1e-6;
    let pes = f64::from(p.rows) * f64::from(p.cols);
    let rf_bits = f64::from(p.input_rf_entries) * 8.0 + f64::from(p.psum_rf_entries) * 32.0;
    let store_bits = f64::from(p.weight_scratchpad_entries) * 8.0;
    let macs_mm2 = pes * a.mac_um2 * mm2;
    let register_files_mm2 = pes * rf_bits * a.register_um2_per_bit * mm2;
    let weight_stores_mm2 = pes * store_bits * a.scratchpad_um2_per_bit * mm2;
    let interconnect_mm2 = pes * interconnect_bits_per_pe(arch) * a.register_um2_per_bit * mm2;
    let glb_mm2 = arch.glb.capacity_bytes as f64 * 8.0 * a.sram_um2_per_bit * mm2;
    PeArrayArea {
        macs_mm2,
        register_files_mm2,
        weight_stores_mm2,
        interconnect_mm2,
        glb_mm2,
        total_mm2: macs_mm2 + register_files_mm2 + weight_stores_mm2 + interconnect_mm2 + glb_mm2,
    }
}

/// Area of the PE-array back-end [mm^2].
pub fn pe_array_mm2(arch: &Arch) -> f64 {
    pe_array_area(arch).total_mm2
}

/// Area of the back-end [mm^2].
pub fn backend_mm2(arch: &Arch) -> f64 {
    match &arch.backend {
        Backend::PeArray => pe_array_mm2(arch),
        Backend::Nvdla(n) => n.area_mm2,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn lu22_area_is_eyeriss_sized() {
        let a = crate::arch::load("lu22_fixed").unwrap_or_else(|e| panic!("{e}"));
        let mm2 = super::pe_array_mm2(&a);
        // EYERISS: 12.25 mm^2 core at 65 nm for 168 PEs and 108 KB of GLB;
        // this model leaves out control, so it lands a little below.
        assert!((8.0..12.25).contains(&mm2), "{mm2}");
    }

    #[test]
    fn parts_add_up_and_scale_with_the_array() {
        let mut a = crate::arch::load("lu22_programmable").unwrap_or_else(|e| panic!("{e}"));
        let p = super::pe_array_area(&a);
        let sum = p.macs_mm2
            + p.register_files_mm2
            + p.weight_stores_mm2
            + p.interconnect_mm2
            + p.glb_mm2;
        assert!((sum - p.total_mm2).abs() < 1e-12);
        a.pe_array.rows *= 2;
        let q = super::pe_array_area(&a);
        assert!((q.macs_mm2 - 2.0 * p.macs_mm2).abs() < 1e-12);
        assert_eq!(q.glb_mm2, p.glb_mm2);
    }
}
