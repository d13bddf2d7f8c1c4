//! The FIXYNN sections of an architecture file (SPEC section 3):
//! `[ffe]` (with `[ffe.area]` and `[ffe.energy]`), `[backend]`, `[system]`,
//! and `[area]` (the PE-array area model). Specs only: what they mean and
//! where every default comes from is in docs/arch-format.md and docs/ffe.md.
//!
//! Sources of the defaults, by the short names used in the docs:
//! - **DEEPFREEZE**: `model_ppa.py` of ARM-software/DeepFreeze, the FIXYNN
//!   authors' 16 nm PPA model (810 MHz; area per bit-product of a fixed
//!   scalar 2.05e-7 mm^2, per SRAM and register bit 1.62e-6 mm^2; power per
//!   bit-product 5.79e-8 W, per register bit 4.0e-7 W);
//! - **HOROWITZ**: M. Horowitz, "Computing's energy problem", ISSCC 2014
//!   (45 nm, 0.9 V), scaled to 16 nm, 0.8 V by C V^2 (docs/ffe.md);
//! - **PELUSO**, **FIXYNN**, **SPEC** as in SPEC.md.

use serde::{Deserialize, Serialize};
use toml::Spanned;

use super::Validator;
use crate::error::InputError;

/// How fixed weights become adder-tree inputs (`numerics::csd` implements
/// both; the arch names the choice without depending on it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Digits {
    /// Canonical signed digit: the fewest non-zero digits.
    #[default]
    Csd,
    /// Sign-magnitude binary: the Hamming weight of the magnitude.
    Binary,
}

impl Digits {
    pub fn name(self) -> &'static str {
        match self {
            Digits::Csd => "csd",
            Digits::Binary => "binary",
        }
    }
}

/// How wide the FFE's adder trees and accumulators are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccumulatorWidth {
    /// Per output channel, just wide enough for every partial sum the fixed
    /// weights can produce (FIXYNN's optimised intermediate precision).
    Derived,
    /// The workload's accumulator width (32 bits for affine int8).
    Fixed,
}

/// The fixed-weight feature extractor.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FfeConfig {
    /// FIXYNN layers fixed in hardware: the first conv counts one, each
    /// depthwise-separable block (dw + pw) one, pooling belongs to the
    /// layer before it.
    pub fixed_layers: u32,
    /// Where `fixed_layers` is written (1-based line, column), so a
    /// mismatch with a workload found at run time can point at it.
    #[serde(skip)]
    pub fixed_layers_at: Option<(usize, usize)>,
    /// FFE clock [MHz] (FIXYNN: 810 MHz at 16 nm).
    pub clock_mhz: f64,
    pub digits: Digits,
    pub accumulator: AccumulatorWidth,
    /// Pipeline registers between a window and its output pixel [cycles].
    pub datapath_latency_cycles: u32,
    pub area: FfeAreaConfig,
    pub energy: FfeEnergyConfig,
}

/// FFE area per unit of hardware (16 nm).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FfeAreaConfig {
    /// One full-adder bit of a scaler/adder tree [um^2].
    pub adder_um2_per_bit: f64,
    /// One flip-flop bit [um^2].
    pub register_um2_per_bit: f64,
    /// One line-buffer SRAM bit, periphery included [um^2].
    pub sram_um2_per_bit: f64,
    /// Width of the batch-norm scale multiplier's coefficient [bits].
    pub bn_scale_bits: u32,
}

/// FFE energy per unit of activity (16 nm).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FfeEnergyConfig {
    /// One full-adder bit operation [pJ].
    pub adder_pj_per_bit: f64,
    /// One flip-flop bit clocked for one cycle [pJ].
    pub register_pj_per_bit: f64,
    pub sram_read_pj_per_bit: f64,
    pub sram_write_pj_per_bit: f64,
    /// Scales the datapath's switching energy (1 = the activity at which
    /// `adder_pj_per_bit` was characterised).
    pub activity_factor: f64,
    /// Static power while the FFE is powered [mW/mm^2] (0: not modelled).
    pub leakage_mw_per_mm2: f64,
}

/// The published NVDLA configurations of SPEC section 3.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum NvdlaName {
    A,
    B,
    C,
    D,
    E,
    F,
}

/// One row of SPEC section 3's NVDLA table (FIXYNN, 16 nm), plus the
/// atomic channel sizes accsim assumes for its utilisation model.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NvdlaRow {
    pub name: NvdlaName,
    pub macs: u32,
    pub buffer_kib: u32,
    pub area_mm2: f64,
    pub tops: f64,
    pub tops_per_w: f64,
    /// Input channels per MAC cell (NVDLA's "atomic-C"; accsim choice).
    pub atomic_c: u32,
    /// MAC cells, one output channel each ("atomic-K"; accsim choice).
    pub atomic_k: u32,
}

/// SPEC section 3's table. Atomic sizes: NVDLA organises its MACs as
/// atomic-K cells of atomic-C multipliers (nv_small 8 x 8 for 64 MACs);
/// accsim splits each size as evenly as powers of two allow, C first.
pub const NVDLA_TABLE: [NvdlaRow; 6] = [
    NvdlaRow {
        name: NvdlaName::A,
        macs: 64,
        buffer_kib: 128,
        area_mm2: 0.55,
        tops: 0.056,
        tops_per_w: 2.0,
        atomic_c: 8,
        atomic_k: 8,
    },
    NvdlaRow {
        name: NvdlaName::B,
        macs: 128,
        buffer_kib: 256,
        area_mm2: 0.84,
        tops: 0.156,
        tops_per_w: 3.8,
        atomic_c: 16,
        atomic_k: 8,
    },
    NvdlaRow {
        name: NvdlaName::C,
        macs: 256,
        buffer_kib: 256,
        area_mm2: 1.00,
        tops: 0.358,
        tops_per_w: 5.6,
        atomic_c: 16,
        atomic_k: 16,
    },
    NvdlaRow {
        name: NvdlaName::D,
        macs: 512,
        buffer_kib: 256,
        area_mm2: 1.40,
        tops: 0.728,
        tops_per_w: 6.8,
        atomic_c: 32,
        atomic_k: 16,
    },
    NvdlaRow {
        name: NvdlaName::E,
        macs: 1024,
        buffer_kib: 256,
        area_mm2: 1.80,
        tops: 1.166,
        tops_per_w: 6.3,
        atomic_c: 32,
        atomic_k: 32,
    },
    NvdlaRow {
        name: NvdlaName::F,
        macs: 2048,
        buffer_kib: 512,
        area_mm2: 3.30,
        tops: 2.095,
        tops_per_w: 5.4,
        atomic_c: 64,
        atomic_k: 32,
    },
];

/// How NVDLA layer cycles are derived from MACs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NvdlaUtilisation {
    /// Channels are processed in atoms of `atomic_c` inputs x `atomic_k`
    /// outputs; partial atoms waste MACs, a depthwise layer uses one input
    /// lane of each cell (docs/ffe.md).
    Atomic,
    /// Every MAC busy on every cycle (the assumption of DEEPFREEZE's model).
    Peak,
}

/// The table-driven NVDLA back-end.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NvdlaConfig {
    pub name: NvdlaName,
    pub macs: u32,
    pub buffer_kib: u32,
    pub area_mm2: f64,
    pub tops: f64,
    pub tops_per_w: f64,
    pub atomic_c: u32,
    pub atomic_k: u32,
    pub utilisation: NvdlaUtilisation,
    /// Clock implied by the table: peak TOPS / (2 x MACs) [MHz].
    pub clock_mhz: f64,
}

impl NvdlaConfig {
    /// Power while computing, from the table: TOPS / (TOPS/W) [W].
    pub fn power_w(&self) -> f64 {
        self.tops / self.tops_per_w
    }
}

/// What runs the layers after the FFE.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Backend {
    /// The cycle-level PE array of SPEC section 1 (`[pe_array]`, `[glb]`, `[dram]`).
    PeArray,
    /// The table-driven NVDLA model (SPEC section 3).
    Nvdla(NvdlaConfig),
}

impl Backend {
    pub fn name(&self) -> &'static str {
        match self {
            Backend::PeArray => "pe_array",
            Backend::Nvdla(_) => "nvdla",
        }
    }
}

/// Most frames a simulated stream may hold (`[system] stream_frames`, and
/// `accsim run --frames`).
pub const STREAM_FRAMES_MAX: u32 = 1 << 16;

/// Frame streaming through FFE -> buffer -> back-end.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SystemConfig {
    /// Frames simulated back to back to measure the steady state.
    pub stream_frames: u32,
    /// Most tapped frames the buffer between FFE and back-end holds (2 =
    /// double buffering), when they fit.
    pub buffer_frames: u32,
}

impl Default for SystemConfig {
    fn default() -> Self {
        SystemConfig {
            stream_frames: 4,
            buffer_frames: 2,
        }
    }
}

/// The PE-array area model: 16 nm unit areas, scaled to `technology_nm`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AreaConfig {
    pub technology_nm: f64,
    /// One PE's MAC unit at 16 nm [um^2].
    pub mac_um2: f64,
    /// One register-file bit at 16 nm [um^2].
    pub register_um2_per_bit: f64,
    /// One bit of a large SRAM (the GLB) at 16 nm [um^2].
    pub sram_um2_per_bit: f64,
    /// One bit of a PE's small weight SRAM (scratchpad, or the fixed-weight
    /// LUT that replaces it) at 16 nm, periphery included [um^2].
    pub scratchpad_um2_per_bit: f64,
}

impl AreaConfig {
    /// Area scale from 16 nm to the configured node (constant-field scaling).
    pub fn scale(&self) -> f64 {
        (self.technology_nm / 16.0).powi(2)
    }
}

// ---- raw file ---------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFfe {
    fixed_layers: Spanned<i64>,
    #[serde(default)]
    clock_mhz: Option<Spanned<f64>>,
    #[serde(default)]
    digits: Option<Digits>,
    #[serde(default)]
    accumulator: Option<AccumulatorWidth>,
    #[serde(default)]
    datapath_latency_cycles: Option<Spanned<i64>>,
    #[serde(default)]
    area: Option<RawFfeArea>,
    #[serde(default)]
    energy: Option<RawFfeEnergy>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawFfeArea {
    #[serde(default)]
    adder_um2_per_bit: Option<Spanned<f64>>,
    #[serde(default)]
    register_um2_per_bit: Option<Spanned<f64>>,
    #[serde(default)]
    sram_um2_per_bit: Option<Spanned<f64>>,
    #[serde(default)]
    bn_scale_bits: Option<Spanned<i64>>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawFfeEnergy {
    #[serde(default)]
    adder_pj_per_bit: Option<Spanned<f64>>,
    #[serde(default)]
    register_pj_per_bit: Option<Spanned<f64>>,
    #[serde(default)]
    sram_read_pj_per_bit: Option<Spanned<f64>>,
    #[serde(default)]
    sram_write_pj_per_bit: Option<Spanned<f64>>,
    #[serde(default)]
    activity_factor: Option<Spanned<f64>>,
    #[serde(default)]
    leakage_mw_per_mm2: Option<Spanned<f64>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum RawBackendKind {
    PeArray,
    Nvdla,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBackend {
    kind: RawBackendKind,
    #[serde(default)]
    nvdla: Option<Spanned<String>>,
    #[serde(default)]
    utilisation: Option<NvdlaUtilisation>,
    #[serde(default)]
    atomic_c: Option<Spanned<i64>>,
    #[serde(default)]
    atomic_k: Option<Spanned<i64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSystem {
    #[serde(default)]
    stream_frames: Option<Spanned<i64>>,
    #[serde(default)]
    buffer_frames: Option<Spanned<i64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawArea {
    #[serde(default)]
    technology_nm: Option<Spanned<f64>>,
    #[serde(default)]
    mac_um2: Option<Spanned<f64>>,
    #[serde(default)]
    register_um2_per_bit: Option<Spanned<f64>>,
    #[serde(default)]
    sram_um2_per_bit: Option<Spanned<f64>>,
    #[serde(default)]
    scratchpad_um2_per_bit: Option<Spanned<f64>>,
}

/// DEEPFREEZE: 2.05e-7 mm^2 per weight bit x activation bit of a fixed
/// scalar, read as the area of one full-adder bit (an 8-bit scalar of h
/// digits is about h adder rows of a few more than 8 bits).
pub const DEFAULT_ADDER_UM2_PER_BIT: f64 = 0.205;
/// DEEPFREEZE `fixed_base_reg_area`: 1.62e-6 mm^2 per register bit.
pub const DEFAULT_REGISTER_UM2_PER_BIT: f64 = 1.62;
/// Line-buffer SRAM per bit: DEEPFREEZE's `fixed_base_sram_area` (1.62)
/// calibrated to FIXYNN's three FFE areas by least squares of the relative
/// errors, all else fixed (docs/ffe.md, "Calibration").
pub const DEFAULT_SRAM_UM2_PER_BIT: f64 = 1.70;
/// DEEPFREEZE: 5.79e-8 W per bit-product at 810 MHz = 7.15e-5 pJ per cycle.
pub const DEFAULT_ADDER_PJ_PER_BIT: f64 = 5.79e-8 / 810e6 * 1e12;
/// DEEPFREEZE: 4.0e-7 W per register bit at 810 MHz = 4.94e-4 pJ per cycle.
pub const DEFAULT_REGISTER_PJ_PER_BIT: f64 = 4.0e-7 / 810e6 * 1e12;
/// HOROWITZ: an 8 KB SRAM reads 64 bits for 10 pJ at 45 nm, 0.9 V:
/// 0.156 pJ/bit, x (16/45) x (0.8/0.9)^2 at 16 nm, 0.8 V.
pub const DEFAULT_SRAM_PJ_PER_BIT: f64 = 10.0 / 64.0 * (16.0 / 45.0) * (0.8 / 0.9) * (0.8 / 0.9);

pub(super) fn ffe(v: &Validator, raw: &RawFfe) -> Result<FfeConfig, InputError> {
    let ctx = "[ffe]";
    Ok(FfeConfig {
        fixed_layers: v.int(&raw.fixed_layers, ctx, "fixed_layers", 1, 4096)?,
        fixed_layers_at: Some(crate::error::line_column(
            v.text,
            raw.fixed_layers.span().start,
        )),
        clock_mhz: real_or(
            v,
            raw.clock_mhz.clone(),
            ctx,
            "clock_mhz",
            (1e-3, 1e6),
            810.0,
        )?,
        digits: raw.digits.unwrap_or_default(),
        accumulator: raw.accumulator.unwrap_or(AccumulatorWidth::Derived),
        datapath_latency_cycles: v.opt_int(
            &raw.datapath_latency_cycles,
            ctx,
            "datapath_latency_cycles",
            1,
            64,
            2,
        )?,
        area: ffe_area(v, raw.area.as_ref())?,
        energy: ffe_energy(v, raw.energy.as_ref())?,
    })
}

/// An optional `f64` field with its default when absent.
fn real_or(
    v: &Validator,
    f: Option<Spanned<f64>>,
    ctx: &str,
    name: &str,
    (lo, hi): (f64, f64),
    default: f64,
) -> Result<f64, InputError> {
    match f {
        Some(x) => v.real(&x, ctx, name, lo, hi),
        None => Ok(default),
    }
}

/// `[ffe.area]`: per-bit area of adders, registers and line-buffer SRAM.
fn ffe_area(v: &Validator, area: Option<&RawFfeArea>) -> Result<FfeAreaConfig, InputError> {
    let actx = "[ffe.area]";
    let a = |f: fn(&RawFfeArea) -> &Option<Spanned<f64>>| area.and_then(|r| f(r).clone());
    Ok(FfeAreaConfig {
        adder_um2_per_bit: real_or(
            v,
            a(|r| &r.adder_um2_per_bit),
            actx,
            "adder_um2_per_bit",
            (0.0, 1e6),
            DEFAULT_ADDER_UM2_PER_BIT,
        )?,
        register_um2_per_bit: real_or(
            v,
            a(|r| &r.register_um2_per_bit),
            actx,
            "register_um2_per_bit",
            (0.0, 1e6),
            DEFAULT_REGISTER_UM2_PER_BIT,
        )?,
        sram_um2_per_bit: real_or(
            v,
            a(|r| &r.sram_um2_per_bit),
            actx,
            "sram_um2_per_bit",
            (0.0, 1e6),
            DEFAULT_SRAM_UM2_PER_BIT,
        )?,
        bn_scale_bits: v.opt_int(
            &area.and_then(|r| r.bn_scale_bits.clone()),
            actx,
            "bn_scale_bits",
            0,
            64,
            16,
        )?,
    })
}

/// `[ffe.energy]`: per-bit energy, activity and leakage.
fn ffe_energy(v: &Validator, energy: Option<&RawFfeEnergy>) -> Result<FfeEnergyConfig, InputError> {
    let ectx = "[ffe.energy]";
    let e = |f: fn(&RawFfeEnergy) -> &Option<Spanned<f64>>| energy.and_then(|r| f(r).clone());
    Ok(FfeEnergyConfig {
        adder_pj_per_bit: real_or(
            v,
            e(|r| &r.adder_pj_per_bit),
            ectx,
            "adder_pj_per_bit",
            (0.0, 1e6),
            DEFAULT_ADDER_PJ_PER_BIT,
        )?,
        register_pj_per_bit: real_or(
            v,
            e(|r| &r.register_pj_per_bit),
            ectx,
            "register_pj_per_bit",
            (0.0, 1e6),
            DEFAULT_REGISTER_PJ_PER_BIT,
        )?,
        sram_read_pj_per_bit: real_or(
            v,
            e(|r| &r.sram_read_pj_per_bit),
            ectx,
            "sram_read_pj_per_bit",
            (0.0, 1e6),
            DEFAULT_SRAM_PJ_PER_BIT,
        )?,
        sram_write_pj_per_bit: real_or(
            v,
            e(|r| &r.sram_write_pj_per_bit),
            ectx,
            "sram_write_pj_per_bit",
            (0.0, 1e6),
            DEFAULT_SRAM_PJ_PER_BIT,
        )?,
        activity_factor: real_or(
            v,
            e(|r| &r.activity_factor),
            ectx,
            "activity_factor",
            (0.0, 1e3),
            1.0,
        )?,
        leakage_mw_per_mm2: real_or(
            v,
            e(|r| &r.leakage_mw_per_mm2),
            ectx,
            "leakage_mw_per_mm2",
            (0.0, 1e6),
            0.0,
        )?,
    })
}

pub(super) fn backend(
    v: &Validator,
    raw: Option<&Spanned<RawBackend>>,
) -> Result<Backend, InputError> {
    let Some(raw) = raw else {
        return Ok(Backend::PeArray);
    };
    let ctx = "[backend]";
    let r = raw.get_ref();
    let nvdla_only = |present: bool, field: &str, span| -> Result<(), InputError> {
        if present && r.kind == RawBackendKind::PeArray {
            Err(v.err(
                span,
                ctx,
                field,
                "applies only to kind = \"nvdla\"; remove it or set kind = \"nvdla\"".to_string(),
            ))
        } else {
            Ok(())
        }
    };
    nvdla_only(
        r.nvdla.is_some(),
        "nvdla",
        r.nvdla.as_ref().map(|s| s.span()),
    )?;
    nvdla_only(
        r.atomic_c.is_some(),
        "atomic_c",
        r.atomic_c.as_ref().map(|s| s.span()),
    )?;
    nvdla_only(
        r.atomic_k.is_some(),
        "atomic_k",
        r.atomic_k.as_ref().map(|s| s.span()),
    )?;
    match r.kind {
        RawBackendKind::PeArray => Ok(Backend::PeArray),
        RawBackendKind::Nvdla => nvdla(v, raw),
    }
}

/// `kind = "nvdla"`: one of the six NVDLA configurations of SPEC section 3,
/// with its atomic C x K split.
fn nvdla(v: &Validator, raw: &Spanned<RawBackend>) -> Result<Backend, InputError> {
    let ctx = "[backend]";
    let r = raw.get_ref();
    let Some(name) = &r.nvdla else {
        return Err(v.err(
            Some(raw.span()),
            ctx,
            "nvdla",
            "is missing; valid: one of \"A\", \"B\", \"C\", \"D\", \"E\", \"F\" (SPEC section 3)"
                .to_string(),
        ));
    };
    let row = NVDLA_TABLE
        .iter()
        .find(|row| format!("{:?}", row.name) == *name.get_ref())
        .ok_or_else(|| {
            v.err(
                Some(name.span()),
                ctx,
                "nvdla",
                format!(
                    "is \"{}\"; valid: one of \"A\", \"B\", \"C\", \"D\", \"E\", \"F\" (SPEC section 3)",
                    name.get_ref()
                ),
            )
        })?;
    let atomic_c = v.opt_int(&r.atomic_c, ctx, "atomic_c", 1, 4096, row.atomic_c)?;
    let atomic_k = v.opt_int(&r.atomic_k, ctx, "atomic_k", 1, 4096, row.atomic_k)?;
    if atomic_c * atomic_k != row.macs {
        let span = r
            .atomic_k
            .as_ref()
            .or(r.atomic_c.as_ref())
            .map(|s| s.span());
        return Err(v.err(
            span,
            ctx,
            if r.atomic_k.is_some() {
                "atomic_k"
            } else {
                "atomic_c"
            },
            format!(
                "atomic_c x atomic_k is {atomic_c} x {atomic_k} = {}; valid: a product of {} (the MACs of NVDLA {:?})",
                atomic_c * atomic_k,
                row.macs,
                row.name
            ),
        ));
    }
    Ok(Backend::Nvdla(NvdlaConfig {
        name: row.name,
        macs: row.macs,
        buffer_kib: row.buffer_kib,
        area_mm2: row.area_mm2,
        tops: row.tops,
        tops_per_w: row.tops_per_w,
        atomic_c,
        atomic_k,
        utilisation: r.utilisation.unwrap_or(NvdlaUtilisation::Atomic),
        clock_mhz: row.tops * 1e12 / (2.0 * f64::from(row.macs)) / 1e6,
    }))
}

pub(super) fn system(
    v: &Validator,
    raw: Option<&Spanned<RawSystem>>,
) -> Result<SystemConfig, InputError> {
    let d = SystemConfig::default();
    let Some(raw) = raw else {
        return Ok(d);
    };
    let r = raw.get_ref();
    Ok(SystemConfig {
        stream_frames: v.opt_int(
            &r.stream_frames,
            "[system]",
            "stream_frames",
            1,
            i64::from(STREAM_FRAMES_MAX),
            d.stream_frames,
        )?,
        buffer_frames: v.opt_int(
            &r.buffer_frames,
            "[system]",
            "buffer_frames",
            1,
            2,
            d.buffer_frames,
        )?,
    })
}

/// PELUSO: the multi-precision MAC is 1443 um^2 at 28 nm; x (16/28)^2.
pub const DEFAULT_MAC_UM2: f64 = 1443.0 * (16.0 / 28.0) * (16.0 / 28.0);
/// A large (GLB-class) SRAM bit at 16 nm: 0.074 um^2 high-density 6T cell
/// (TSMC 16FF+, IEDM 2013) over a 70 % array efficiency (accsim choice).
pub const DEFAULT_GLB_SRAM_UM2_PER_BIT: f64 = 0.074 / 0.7;
/// A PE's small weight SRAM per bit at 16 nm, periphery included
/// (calibrated): the value that makes LU22's 156-PE machine at 65 nm as
/// large as EYERISS's 12.25 mm^2 core pro rata (x 156/168 PEs), all other
/// unit areas fixed, so it also absorbs per-PE control. It lies between a
/// 16FF+ 6T cell array (0.106) and DEEPFREEZE's small-buffer figure (1.62).
pub const DEFAULT_SCRATCHPAD_UM2_PER_BIT: f64 = 0.90;

pub(super) fn area(
    v: &Validator,
    raw: Option<&Spanned<RawArea>>,
    default_nm: f64,
) -> Result<AreaConfig, InputError> {
    let r = raw.map(|s| s.get_ref());
    let ctx = "[area]";
    let real = |f: Option<&Spanned<f64>>, name: &str, lo: f64, hi: f64, d: f64| match f {
        Some(x) => v.real(x, ctx, name, lo, hi),
        None => Ok(d),
    };
    Ok(AreaConfig {
        technology_nm: real(
            r.and_then(|r| r.technology_nm.as_ref()),
            "technology_nm",
            1.0,
            1000.0,
            default_nm,
        )?,
        mac_um2: real(
            r.and_then(|r| r.mac_um2.as_ref()),
            "mac_um2",
            0.0,
            1e9,
            DEFAULT_MAC_UM2,
        )?,
        register_um2_per_bit: real(
            r.and_then(|r| r.register_um2_per_bit.as_ref()),
            "register_um2_per_bit",
            0.0,
            1e6,
            DEFAULT_REGISTER_UM2_PER_BIT,
        )?,
        sram_um2_per_bit: real(
            r.and_then(|r| r.sram_um2_per_bit.as_ref()),
            "sram_um2_per_bit",
            0.0,
            1e6,
            DEFAULT_GLB_SRAM_UM2_PER_BIT,
        )?,
        scratchpad_um2_per_bit: real(
            r.and_then(|r| r.scratchpad_um2_per_bit.as_ref()),
            "scratchpad_um2_per_bit",
            0.0,
            1e6,
            DEFAULT_SCRATCHPAD_UM2_PER_BIT,
        )?,
    })
}
