//! Architecture configurations: raw TOML to a validated [`Arch`].
//!
//! Specs only, no behaviour: the hardware components (`hw/`) take their
//! parameters from here, and the cost model applies the energy tables to the
//! counters after a run. docs/arch-format.md documents every field with its
//! default and source (SPEC section 1: LU22 / EYERISS; the FIXYNN sections
//! of SPEC section 3 live in [`ffe`]).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::error::{InputError, Result};
pub mod mac;
pub use mac::{MacConfig, MacDatapath, PerMode, ZeroSkipping};

mod ffe;
pub use ffe::{
    AccumulatorWidth, AreaConfig, Backend, Digits, FfeAreaConfig, FfeConfig, FfeEnergyConfig,
    NVDLA_TABLE, NvdlaConfig, NvdlaName, NvdlaRow, NvdlaUtilisation, STREAM_FRAMES_MAX,
    SystemConfig,
};

/// Where a PE keeps its weights (SPEC section 1; the comparison of LU22).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WeightStore {
    /// Weights fixed at design time in a per-PE look-up table: never moved.
    Fixed,
    /// Weights streamed DRAM -> GLB -> array -> a per-PE SRAM scratchpad.
    Programmable,
}

impl WeightStore {
    pub fn name(self) -> &'static str {
        match self {
            WeightStore::Fixed => "fixed",
            WeightStore::Programmable => "programmable",
        }
    }
}

/// DRAM timing model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DramModel {
    /// A fixed latency plus a bandwidth limit.
    Simple,
    /// Banks with row buffers: row hits, misses and activates (LPDDR4-class).
    Banked,
}

/// A validated architecture.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Arch {
    pub name: String,
    pub description: String,
    /// The file it came from.
    #[serde(skip)]
    pub path: PathBuf,
    pub clock_mhz: f64,
    pub pe_array: PeArrayConfig,
    pub interconnect: InterconnectConfig,
    pub glb: GlbConfig,
    pub dram: DramConfig,
    pub energy: EnergyConfig,
    /// The fixed-weight feature extractor in front of the back-end (SPEC 3).
    pub ffe: Option<FfeConfig>,
    /// What runs the layers the FFE does not (the PE array unless `[backend]` says otherwise).
    pub backend: Backend,
    pub system: SystemConfig,
    /// The PE-array area model.
    pub area: AreaConfig,
    /// The PEs' multi-precision MAC: cycles and energy per precision,
    /// zero-skipping (SPEC section 2).
    pub mac: MacConfig,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PeArrayConfig {
    pub rows: u32,
    pub cols: u32,
    /// Input register file per PE [entries].
    pub input_rf_entries: u32,
    /// Partial-sum register file per PE [entries].
    pub psum_rf_entries: u32,
    pub weight_store: WeightStore,
    /// Weight scratchpad per PE in programmable mode [entries].
    pub weight_scratchpad_entries: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InterconnectConfig {
    /// GLB-to-PE broadcast bus width [bytes/cycle].
    pub glb_bus_bytes_per_cycle: u32,
    /// PE-to-PE neighbour link bandwidth [words/cycle].
    pub neighbor_words_per_cycle: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GlbConfig {
    pub capacity_bytes: u64,
    pub banks: u32,
    /// Width of one bank's port [bytes].
    pub bank_width_bytes: u32,
    /// Ports per bank (1 = single-port SRAM).
    pub ports_per_bank: u32,
    /// Latency of the GLB unit's pipelined float32 divider (Softmax), in
    /// cycles; it accepts one division per cycle.
    pub divider_latency_cycles: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DramConfig {
    pub model: DramModel,
    /// Sustained transfer rate [bytes/cycle of the accelerator clock].
    pub bandwidth_bytes_per_cycle: u32,
    /// Latency of an access in the simple model [cycles].
    pub latency_cycles: u32,
    pub read_queue_entries: u32,
    pub write_queue_entries: u32,
    pub banked: BankedDramConfig,
}

/// LPDDR4-class bank timing (used when `model = "banked"`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BankedDramConfig {
    pub banks: u32,
    /// Row (page) size [bytes].
    pub row_bytes: u32,
    /// Bytes moved by one burst.
    pub burst_bytes: u32,
    /// Activate to read/write [cycles].
    pub t_rcd_cycles: u32,
    /// Precharge [cycles].
    pub t_rp_cycles: u32,
    /// Read command to data [cycles].
    pub t_cas_cycles: u32,
}

/// Normalised energy per access (one 16-bit MAC at 65 nm = 1; EYERISS, LU22).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EnergyConfig {
    pub dram: f64,
    pub glb: f64,
    pub array: f64,
    pub rf: f64,
    pub mac: f64,
    /// A weight read from a fixed-weight look-up table.
    pub lut: f64,
    /// Picojoules per normalised unit (the energy of the reference MAC).
    pub pj_per_unit: f64,
}

// ---- raw file ---------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawArchFile {
    arch: RawArchMeta,
    // Required unless `[backend] kind = "nvdla"` (checked in `load_str`).
    #[serde(default)]
    pe_array: Option<Spanned<RawPeArray>>,
    #[serde(default)]
    interconnect: Option<Spanned<RawInterconnect>>,
    #[serde(default)]
    glb: Option<Spanned<RawGlb>>,
    #[serde(default)]
    dram: Option<Spanned<RawDram>>,
    #[serde(default)]
    energy: Option<Spanned<RawEnergy>>,
    #[serde(default)]
    ffe: Option<ffe::RawFfe>,
    #[serde(default)]
    backend: Option<Spanned<ffe::RawBackend>>,
    #[serde(default)]
    system: Option<Spanned<ffe::RawSystem>>,
    #[serde(default)]
    area: Option<Spanned<ffe::RawArea>>,
    #[serde(default)]
    mac: Option<Spanned<RawMac>>,
}

/// `[mac]`: the PEs' multi-precision MAC (SPEC section 2). Every key is
/// optional; see [`resolve_mac`] for the defaults.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMac {
    #[serde(default)]
    cycles: Option<PerMode<u32>>,
    #[serde(default)]
    energy_pj: Option<PerMode<f64>>,
    #[serde(default)]
    zero_energy_ratio: Option<f64>,
    #[serde(default)]
    zero_skipping: Option<ZeroSkipping>,
    #[serde(default)]
    area_um2: Option<f64>,
    #[serde(default)]
    float32_cycles: Option<u32>,
    #[serde(default)]
    float32_energy_pj: Option<f64>,
}

/// The MAC of an architecture. Cycles default to PELUSO's 4 / 2 / 2 / 1
/// (16x16 / 16x8 / 8x16 / 8x8). Energies, when the file gives none, follow the
/// file's own technology: a 16x16 MAC costs `[energy] mac` normalised units
/// (`mac x pj_per_unit` pJ) and the other modes keep PELUSO's ratios
/// (1 : 1/2 : 1/2 : 1/4), so energies of every level stay in one node. A file
/// modelling PELUSO's 28 nm MAC gives `energy_pj` explicitly.
fn resolve_mac(raw: Option<&RawMac>, energy: &EnergyConfig) -> MacConfig {
    let peluso = MacConfig::default();
    let full_pj = energy.mac * energy.pj_per_unit;
    let derived = PerMode {
        full: full_pj,
        i16_w8: full_pj * peluso.energy_pj.i16_w8 / peluso.energy_pj.full,
        i8_w16: full_pj * peluso.energy_pj.i8_w16 / peluso.energy_pj.full,
        half: full_pj * peluso.energy_pj.half / peluso.energy_pj.full,
    };
    MacConfig {
        cycles: raw.and_then(|m| m.cycles).unwrap_or(peluso.cycles),
        energy_pj: raw.and_then(|m| m.energy_pj).unwrap_or(derived),
        zero_energy_ratio: raw
            .and_then(|m| m.zero_energy_ratio)
            .unwrap_or(peluso.zero_energy_ratio),
        zero_skipping: raw
            .and_then(|m| m.zero_skipping)
            .unwrap_or(peluso.zero_skipping),
        area_um2: raw.and_then(|m| m.area_um2).unwrap_or(peluso.area_um2),
        float32_cycles: raw.and_then(|m| m.float32_cycles),
        float32_energy_pj: raw.and_then(|m| m.float32_energy_pj),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawArchMeta {
    name: String,
    description: String,
    #[serde(default)]
    clock_mhz: Option<Spanned<f64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPeArray {
    rows: Spanned<i64>,
    cols: Spanned<i64>,
    #[serde(default)]
    input_rf_entries: Option<Spanned<i64>>,
    #[serde(default)]
    psum_rf_entries: Option<Spanned<i64>>,
    weight_store: WeightStore,
    #[serde(default)]
    weight_scratchpad_entries: Option<Spanned<i64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInterconnect {
    #[serde(default)]
    glb_bus_bytes_per_cycle: Option<Spanned<i64>>,
    #[serde(default)]
    neighbor_words_per_cycle: Option<Spanned<i64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGlb {
    capacity_kib: Spanned<f64>,
    #[serde(default)]
    banks: Option<Spanned<i64>>,
    #[serde(default)]
    bank_width_bytes: Option<Spanned<i64>>,
    #[serde(default)]
    ports_per_bank: Option<Spanned<i64>>,
    #[serde(default)]
    divider_latency_cycles: Option<Spanned<i64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDram {
    #[serde(default)]
    model: Option<DramModel>,
    #[serde(default)]
    bandwidth_bytes_per_cycle: Option<Spanned<i64>>,
    #[serde(default)]
    latency_cycles: Option<Spanned<i64>>,
    #[serde(default)]
    read_queue_entries: Option<Spanned<i64>>,
    #[serde(default)]
    write_queue_entries: Option<Spanned<i64>>,
    #[serde(default)]
    banked: Option<Spanned<RawBankedDram>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBankedDram {
    #[serde(default)]
    banks: Option<Spanned<i64>>,
    #[serde(default)]
    row_bytes: Option<Spanned<i64>>,
    #[serde(default)]
    burst_bytes: Option<Spanned<i64>>,
    #[serde(default)]
    t_rcd_cycles: Option<Spanned<i64>>,
    #[serde(default)]
    t_rp_cycles: Option<Spanned<i64>>,
    #[serde(default)]
    t_cas_cycles: Option<Spanned<i64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEnergy {
    #[serde(default)]
    dram: Option<Spanned<f64>>,
    #[serde(default)]
    glb: Option<Spanned<f64>>,
    #[serde(default)]
    array: Option<Spanned<f64>>,
    #[serde(default)]
    rf: Option<Spanned<f64>>,
    #[serde(default)]
    mac: Option<Spanned<f64>>,
    #[serde(default)]
    lut: Option<Spanned<f64>>,
    #[serde(default)]
    pj_per_unit: Option<Spanned<f64>>,
}

/// Most processing elements in an array (`rows * cols`): a 256x256 array,
/// the size of the largest published systolic arrays. The engine keeps
/// per-PE counters and simulates per-PE activity, so a larger array costs
/// memory and time even on a tiny layer (docs/arch-format.md, "Limits").
pub const MAX_PES: u64 = 1 << 16;

/// Largest architecture file accsim reads [bytes].
pub const MAX_ARCH_FILE_BYTES: u64 = 1 << 20;

/// Reads and validates an architecture file.
pub fn load_file(path: &Path) -> Result<Arch> {
    let text = read_text(path)?;
    load_str(&text, path)
}

/// The file's text, refusing anything but a regular file of at most
/// [`MAX_ARCH_FILE_BYTES`] (arch depends on nothing but `error`, so this
/// does not borrow the workload loaders' reader).
fn read_text(path: &Path) -> Result<String, InputError> {
    use std::io::Read;
    let fail = |m: String| InputError::new(path, format!("cannot read the architecture file: {m}"));
    let file = std::fs::File::open(path).map_err(|e| fail(e.to_string()))?;
    let meta = file.metadata().map_err(|e| fail(e.to_string()))?;
    if !meta.is_file() {
        return Err(fail("not a regular file".to_string()));
    }
    let mut text = String::new();
    file.take(MAX_ARCH_FILE_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(|e| fail(e.to_string()))?;
    if text.len() as u64 > MAX_ARCH_FILE_BYTES {
        return Err(fail(format!(
            "larger than the limit of {MAX_ARCH_FILE_BYTES} bytes"
        )));
    }
    Ok(text)
}

/// Resolves a name (`lu22_fixed`) or path and loads it.
pub fn load(name_or_path: &str) -> Result<Arch> {
    let path = crate::home::resolve(name_or_path, "arch_configs", "--arch")?;
    load_file(&path)
}

/// Validates an architecture given as text; `path` names it in errors.
pub fn load_str(text: &str, path: &Path) -> Result<Arch> {
    let raw: RawArchFile =
        toml::from_str(text).map_err(|e| crate::error::from_toml(path, text, &e, &|_| None))?;
    let v = Validator { path, text };

    let backend = ffe::backend(&v, raw.backend.as_ref())?;
    let clock_mhz = clock_mhz(&v, raw.arch.clock_mhz.as_ref(), &backend)?;
    // The PE-array sections describe the back-end; an NVDLA system needs none.
    let fallback;
    let (raw_pe, raw_glb, raw_dram) = match (&raw.pe_array, &raw.glb, &raw.dram, &backend) {
        (Some(p), Some(g), Some(d), _) => (p.get_ref(), g.get_ref(), d.get_ref()),
        (_, _, _, Backend::Nvdla(_)) => {
            fallback = lu22_sections();
            (&fallback.0, &fallback.1, &fallback.2)
        }
        (p, g, _, _) => {
            let missing = if p.is_none() {
                "pe_array"
            } else if g.is_none() {
                "glb"
            } else {
                "dram"
            };
            return Err(InputError::new(
                path,
                format!(
                    "missing section [{missing}]; valid: required unless [backend] kind = \"nvdla\""
                ),
            )
            .into());
        }
    };
    let pe_array = pe_array(&v, raw_pe)?;
    let interconnect = interconnect(&v, raw.interconnect.as_ref().map(|s| s.get_ref()))?;
    let glb = glb(&v, raw_glb)?;
    let dram = dram(&v, raw_dram)?;
    let energy = energy(&v, raw.energy.as_ref().map(|s| s.get_ref()))?;

    let mac = resolve_mac(raw.mac.as_ref().map(|m| m.get_ref()), &energy);
    if let Err(message) = mac.validate() {
        let span = raw.mac.as_ref().map(|m| m.span());
        return Err(v.err(span, "[mac]", "", message).into());
    }

    let ffe = raw.ffe.as_ref().map(|f| ffe::ffe(&v, f)).transpose()?;
    let system = ffe::system(&v, raw.system.as_ref())?;
    // LU22's machine is EYERISS's 65 nm; FFE systems are FIXYNN's 16 nm.
    let default_nm = if ffe.is_some() { 16.0 } else { 65.0 };
    let area = ffe::area(&v, raw.area.as_ref(), default_nm)?;

    Ok(Arch {
        name: raw.arch.name,
        description: raw.arch.description,
        path: path.to_path_buf(),
        clock_mhz,
        pe_array,
        interconnect,
        glb,
        dram,
        energy,
        ffe,
        backend,
        system,
        area,
        mac,
    })
}

/// `[arch] clock_mhz`: required range 0.001-1e6 MHz, default 200; an
/// NVDLA back-end's clock follows from its table and may not be given.
fn clock_mhz(
    v: &Validator,
    clock: Option<&Spanned<f64>>,
    backend: &Backend,
) -> Result<f64, InputError> {
    match (clock, backend) {
        (Some(c), Backend::Nvdla(_)) => Err(v.err(
            Some(c.span()),
            "[arch]",
            "clock_mhz",
            "does not apply to an NVDLA back-end, whose clock follows from its table \
             (peak TOPS / (2 x MACs)); remove it"
                .to_string(),
        )),
        (None, Backend::Nvdla(n)) => Ok(n.clock_mhz),
        (Some(c), _) => v.real(c, "[arch]", "clock_mhz", 1e-3, 1e6),
        (None, _) => Ok(200.0),
    }
}

/// `[pe_array]`: at most [`MAX_PES`] PEs.
fn pe_array(v: &Validator, pe: &RawPeArray) -> Result<PeArrayConfig, InputError> {
    let ctx = "[pe_array]";
    let pe_array = PeArrayConfig {
        rows: v.int(&pe.rows, ctx, "rows", 1, 4096)?,
        cols: v.int(&pe.cols, ctx, "cols", 1, 4096)?,
        input_rf_entries: v.opt_int(
            &pe.input_rf_entries,
            ctx,
            "input_rf_entries",
            1,
            1 << 20,
            12,
        )?,
        psum_rf_entries: v.opt_int(&pe.psum_rf_entries, ctx, "psum_rf_entries", 1, 1 << 20, 24)?,
        weight_store: pe.weight_store,
        weight_scratchpad_entries: v.opt_int(
            &pe.weight_scratchpad_entries,
            ctx,
            "weight_scratchpad_entries",
            1,
            1 << 24,
            224,
        )?,
    };
    let pes = u64::from(pe_array.rows) * u64::from(pe_array.cols);
    if pes > MAX_PES {
        return Err(v.err(
            Some(pe.cols.span()),
            ctx,
            "cols",
            format!(
                "a {}x{} array has {pes} PEs, more than the limit of {MAX_PES} (rows x cols); valid: rows x cols <= {MAX_PES}",
                pe_array.rows, pe_array.cols
            ),
        ));
    }
    Ok(pe_array)
}

/// `[interconnect]` (optional, every key defaulted).
fn interconnect(
    v: &Validator,
    ic: Option<&RawInterconnect>,
) -> Result<InterconnectConfig, InputError> {
    let ctx = "[interconnect]";
    Ok(InterconnectConfig {
        glb_bus_bytes_per_cycle: v.opt_int(
            &ic.and_then(|i| i.glb_bus_bytes_per_cycle.clone()),
            ctx,
            "glb_bus_bytes_per_cycle",
            1,
            1 << 16,
            8,
        )?,
        neighbor_words_per_cycle: v.opt_int(
            &ic.and_then(|i| i.neighbor_words_per_cycle.clone()),
            ctx,
            "neighbor_words_per_cycle",
            1,
            1 << 16,
            1,
        )?,
    })
}

/// `[glb]`: `capacity_kib` required (fractions allowed), the rest defaulted.
fn glb(v: &Validator, g: &RawGlb) -> Result<GlbConfig, InputError> {
    let ctx = "[glb]";
    let capacity_kib = v.real(
        &g.capacity_kib,
        ctx,
        "capacity_kib",
        1.0 / 1024.0,
        (1u64 << 30) as f64,
    )?;
    Ok(GlbConfig {
        capacity_bytes: (capacity_kib * 1024.0).round() as u64,
        banks: v.opt_int(&g.banks, ctx, "banks", 1, 4096, 27)?,
        bank_width_bytes: v.opt_int(&g.bank_width_bytes, ctx, "bank_width_bytes", 1, 1024, 8)?,
        ports_per_bank: v.opt_int(&g.ports_per_bank, ctx, "ports_per_bank", 1, 8, 1)?,
        divider_latency_cycles: v.opt_int(
            &g.divider_latency_cycles,
            ctx,
            "divider_latency_cycles",
            1,
            1024,
            12,
        )?,
    })
}

/// `[dram]` and its `[dram.banked]` timing (used when `model = "banked"`).
fn dram(v: &Validator, d: &RawDram) -> Result<DramConfig, InputError> {
    let ctx = "[dram]";
    Ok(DramConfig {
        model: d.model.unwrap_or(DramModel::Simple),
        bandwidth_bytes_per_cycle: v.opt_int(
            &d.bandwidth_bytes_per_cycle,
            ctx,
            "bandwidth_bytes_per_cycle",
            1,
            1 << 16,
            4,
        )?,
        latency_cycles: v.opt_int(&d.latency_cycles, ctx, "latency_cycles", 0, 1 << 20, 20)?,
        read_queue_entries: v.opt_int(
            &d.read_queue_entries,
            ctx,
            "read_queue_entries",
            1,
            1 << 16,
            16,
        )?,
        write_queue_entries: v.opt_int(
            &d.write_queue_entries,
            ctx,
            "write_queue_entries",
            1,
            1 << 16,
            16,
        )?,
        banked: banked_dram(v, d.banked.as_ref().map(|s| s.get_ref()))?,
    })
}

/// `[dram.banked]`: bank count, row and burst sizes (the burst divides the
/// row) and the row-buffer timings in cycles.
fn banked_dram(v: &Validator, b: Option<&RawBankedDram>) -> Result<BankedDramConfig, InputError> {
    let ctx = "[dram.banked]";
    let field = |f: fn(&RawBankedDram) -> &Option<Spanned<i64>>| b.and_then(|x| f(x).clone());
    let banked = BankedDramConfig {
        banks: v.opt_int(&field(|x| &x.banks), ctx, "banks", 1, 1024, 8)?,
        row_bytes: v.opt_int(
            &field(|x| &x.row_bytes),
            ctx,
            "row_bytes",
            16,
            1 << 20,
            2048,
        )?,
        burst_bytes: v.opt_int(&field(|x| &x.burst_bytes), ctx, "burst_bytes", 1, 4096, 32)?,
        t_rcd_cycles: v.opt_int(
            &field(|x| &x.t_rcd_cycles),
            ctx,
            "t_rcd_cycles",
            0,
            1 << 16,
            4,
        )?,
        t_rp_cycles: v.opt_int(
            &field(|x| &x.t_rp_cycles),
            ctx,
            "t_rp_cycles",
            0,
            1 << 16,
            4,
        )?,
        t_cas_cycles: v.opt_int(
            &field(|x| &x.t_cas_cycles),
            ctx,
            "t_cas_cycles",
            0,
            1 << 16,
            4,
        )?,
    };
    if !banked.row_bytes.is_multiple_of(banked.burst_bytes) {
        let span = b.and_then(|x| x.burst_bytes.as_ref().map(|s| s.span()));
        return Err(v.err(
            span,
            ctx,
            "burst_bytes",
            format!(
                "{} does not divide row_bytes {}; valid: a divisor of the row size",
                banked.burst_bytes, banked.row_bytes
            ),
        ));
    }
    Ok(banked)
}

/// `[energy]`: costs per access or operation in 16-bit-MAC units (each
/// 0-1e9, defaulted) and `pj_per_unit`.
fn energy(v: &Validator, e: Option<&RawEnergy>) -> Result<EnergyConfig, InputError> {
    let ctx = "[energy]";
    let cost = |f: Option<&Spanned<f64>>, field: &str, default: f64| -> Result<f64, InputError> {
        match f {
            Some(x) => v.real(x, ctx, field, 0.0, 1e9),
            None => Ok(default),
        }
    };
    Ok(EnergyConfig {
        dram: cost(e.and_then(|x| x.dram.as_ref()), "dram", 200.0)?,
        glb: cost(e.and_then(|x| x.glb.as_ref()), "glb", 6.0)?,
        array: cost(e.and_then(|x| x.array.as_ref()), "array", 2.0)?,
        rf: cost(e.and_then(|x| x.rf.as_ref()), "rf", 1.0)?,
        mac: cost(e.and_then(|x| x.mac.as_ref()), "mac", 1.0)?,
        lut: cost(e.and_then(|x| x.lut.as_ref()), "lut", 1.0)?,
        pj_per_unit: cost(e.and_then(|x| x.pj_per_unit.as_ref()), "pj_per_unit", 1.6)?,
    })
}

/// Stand-ins for the PE-array sections of an NVDLA system (never used to
/// simulate anything): LU22's values, so an `Arch` is always complete.
fn lu22_sections() -> (RawPeArray, RawGlb, RawDram) {
    (
        RawPeArray {
            rows: Spanned::new(0..0, 13),
            cols: Spanned::new(0..0, 12),
            input_rf_entries: None,
            psum_rf_entries: None,
            weight_store: WeightStore::Programmable,
            weight_scratchpad_entries: None,
        },
        RawGlb {
            capacity_kib: Spanned::new(0..0, 108.0),
            banks: None,
            bank_width_bytes: None,
            ports_per_bank: None,
            divider_latency_cycles: None,
        },
        RawDram {
            model: None,
            bandwidth_bytes_per_cycle: None,
            latency_cycles: None,
            read_queue_entries: None,
            write_queue_entries: None,
            banked: None,
        },
    )
}

struct Validator<'a> {
    path: &'a Path,
    text: &'a str,
}

impl Validator<'_> {
    fn err(
        &self,
        span: Option<std::ops::Range<usize>>,
        ctx: &str,
        field: &str,
        message: String,
    ) -> InputError {
        let e = InputError::new(self.path, message)
            .at(self.text, span)
            .context(ctx);
        if field.is_empty() { e } else { e.field(field) }
    }

    fn int(
        &self,
        v: &Spanned<i64>,
        ctx: &str,
        field: &str,
        lo: i64,
        hi: i64,
    ) -> Result<u32, InputError> {
        let x = *v.get_ref();
        if (lo..=hi).contains(&x) {
            Ok(x as u32)
        } else {
            Err(self.err(
                Some(v.span()),
                ctx,
                field,
                format!("is {x}; valid: {lo} to {hi}"),
            ))
        }
    }

    fn opt_int(
        &self,
        v: &Option<Spanned<i64>>,
        ctx: &str,
        field: &str,
        lo: i64,
        hi: i64,
        default: u32,
    ) -> Result<u32, InputError> {
        match v {
            Some(x) => self.int(x, ctx, field, lo, hi),
            None => Ok(default),
        }
    }

    fn real(
        &self,
        v: &Spanned<f64>,
        ctx: &str,
        field: &str,
        lo: f64,
        hi: f64,
    ) -> Result<f64, InputError> {
        let x = *v.get_ref();
        if x.is_finite() && (lo..=hi).contains(&x) {
            Ok(x)
        } else {
            Err(self.err(
                Some(v.span()),
                ctx,
                field,
                format!(
                    "is {}; valid: {} to {}",
                    crate::error::number(x),
                    crate::error::number(lo),
                    crate::error::number(hi)
                ),
            ))
        }
    }
}
