//! Back-end area (docs/arch-format.md, `[area]`; a first model, to be
//! refined by a later issue).
//!
//! - PE array: per PE a MAC unit, its register files (input RF entries x 8
//!   bits, psum RF entries x 32 bits) and a weight store of
//!   `weight_scratchpad_entries` x 8 bits of SRAM (both weight modes: a
//!   fixed LUT is counted like the scratchpad it replaces), plus the GLB's
//!   bits of SRAM; unit areas are 16 nm values scaled by
//!   `(technology_nm / 16)^2`. Buses, control and DRAM interface are not
//!   counted.
//! - NVDLA: the table's area.

use crate::arch::{Arch, Backend};

/// Area of the PE-array back-end [mm^2].
pub fn pe_array_mm2(arch: &Arch) -> f64 {
    let a = &arch.area;
    let p = &arch.pe_array;
    let pes = f64::from(p.rows * p.cols);
    let rf_bits = f64::from(p.input_rf_entries) * 8.0 + f64::from(p.psum_rf_entries) * 32.0;
    let store_bits = f64::from(p.weight_scratchpad_entries) * 8.0;
    let pe_um2 = a.mac_um2 + rf_bits * a.register_um2_per_bit + store_bits * a.sram_um2_per_bit;
    let glb_um2 = arch.glb.capacity_bytes as f64 * 8.0 * a.sram_um2_per_bit;
    (pes * pe_um2 + glb_um2) * a.scale() * 1e-6
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
        // this model leaves out control and buses, so it lands below.
        assert!((4.0..12.25).contains(&mm2), "{mm2}");
    }
}
