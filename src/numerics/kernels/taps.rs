//! One output plane of a stride-1 convolution channel from its kernel taps
//! (depthwise and other small groups), vectorised over output positions.

/// `out[oy * ow + ox] = bias + sum_t taps[t] * x[offsets[t] + oy * pw + ox]`
/// for every row `oy < out.len() / ow` and column `ox < ow`, exactly, given
/// `max_abs_x` at least `|x|` over `x` (the caller's bound).
///
/// Taps go in pairs ([`tap_pairs`]), one `vpmaddwd` per 8 positions per
/// pair: a pair's sum always fits `i32` (two `-2^15` taps are never
/// paired). Consecutive pairs form blocks whose `max_abs_x * sum|w|` fits
/// `i32` ([`tap_blocks`]); a block sums in `i32` registers and is widened
/// to `i64` once, so every block sum is exact and so is the total. Each
/// row is covered by vectors of 16 outputs, the last one ending at `ow`
/// (overlapping its neighbour: the outputs are stored, not added, so
/// computing some twice changes nothing). Rows shorter than 16, CPUs
/// without AVX2 and offsets that would read past `x` take the plain loop.
pub fn taps_plane(
    out: &mut [i64],
    x: &[i16],
    plane: &PlaneShape,
    taps: &[(usize, i16)],
    bias: i64,
) {
    // SAFETY: out is valid for out.len() writes.
    unsafe { taps_plane_raw(out.as_mut_ptr(), out.len(), x, plane, taps, bias) }
}

/// [`taps_plane`] into memory not yet initialised: on return every
/// element of `out` is (so a caller may take the buffer as `i64`s).
pub fn taps_plane_uninit(
    out: &mut [std::mem::MaybeUninit<i64>],
    x: &[i16],
    plane: &PlaneShape,
    taps: &[(usize, i16)],
    bias: i64,
) {
    // SAFETY: out is valid for out.len() writes; `taps_plane_raw` writes
    // every element (it never reads them).
    unsafe { taps_plane_raw(out.as_mut_ptr().cast(), out.len(), x, plane, taps, bias) }
}

/// [`taps_plane`] through a pointer: writes (never reads) each of the
/// `len` elements at `out` exactly once or more.
///
/// # Safety
/// `out` is valid for `len` writes of `i64`.
unsafe fn taps_plane_raw(
    out: *mut i64,
    len: usize,
    x: &[i16],
    plane: &PlaneShape,
    taps: &[(usize, i16)],
    bias: i64,
) {
    let (pw, ow) = (plane.pw, plane.ow);
    let rows = len.checked_div(ow).unwrap_or(0);
    let last = (rows.max(1) - 1) * pw + ow;
    let inside = rows > 0 && ow <= pw && taps.iter().all(|&(o, _)| o + last <= x.len());
    #[cfg(target_arch = "x86_64")]
    if inside && ow >= LANES && len == rows * ow && std::arch::is_x86_feature_detected!("avx2") {
        let pairs = tap_pairs(taps);
        let blocks = tap_blocks(&pairs, plane.max_abs_x);
        let geometry = (pw, ow, rows);
        // SAFETY: the CPU supports AVX2 (and AVX-512 VL/VNNI where
        // `has_avx512_vnni` says so); every offset + (rows - 1) pw + ow is
        // inside x, and out holds rows x ow.
        unsafe {
            if super::has_avx512_vnni() {
                taps_plane_vnni(out, geometry, x, &pairs, &blocks, bias);
            } else {
                taps_plane_avx2(out, geometry, x, &pairs, &blocks, bias);
            }
        }
        return;
    }
    let _ = inside; // read by the AVX2 dispatch on x86-64 only
    for i in 0..len {
        let (oy, ox) = (i / ow.max(1), i % ow.max(1));
        let v = taps.iter().fold(bias, |acc, &(off, w)| {
            let v = x.get(off + oy * pw + ox).copied().unwrap_or(0);
            acc + i64::from(w) * i64::from(v)
        });
        // SAFETY: i < len.
        unsafe { out.add(i).write(v) };
    }
}

/// [`taps_plane_uninit`] with the taps given as kernel rows: each
/// `(offset, weights)` a row of consecutive taps, `weights[kx]` at
/// `offset + kx` (a depthwise 3x3 kernel is three rows of three). The
/// same exact sums, by the even/odd kernel ([`RowPlan`]) where it
/// applies, else by [`taps_plane_uninit`] on the taps one by one.
pub fn taps_rows_uninit(
    out: &mut [std::mem::MaybeUninit<i64>],
    x: &[i16],
    plane: &PlaneShape,
    rows: &[(usize, &[i16])],
    bias: i64,
) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2")
        && let Some(plan) = RowPlan::new(out.len(), x.len(), plane, rows)
    {
        // SAFETY: AVX2 checked just above (VNNI by `has_avx512_vnni`);
        // `RowPlan::new` checked every read against x.len() and that out
        // holds its rows x ow outputs.
        unsafe {
            let out = out.as_mut_ptr().cast::<i64>();
            if super::has_avx512_vnni() {
                rows_plane_vnni(out, x, &plan, bias);
            } else {
                rows_plane_avx2(out, x, &plan, bias);
            }
        }
        return;
    }
    let taps: Vec<(usize, i16)> = rows
        .iter()
        .flat_map(|&(o, w)| w.iter().enumerate().map(move |(kx, &v)| (o + kx, v)))
        .collect();
    taps_plane_uninit(out, x, plane, &taps, bias);
}

/// One load of the even/odd kernel: 16 inputs from `offset` (plus the
/// output position), read as 8 `i32` lanes `(x[2j], x[2j + 1])`, times
/// the packed pair `even` into the even outputs' sums and `odd` into the
/// odd ones'.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RowLoad {
    pub offset: usize,
    pub even: i32,
    pub odd: i32,
}

/// The even/odd kernel's plan for one output plane: for each kernel row
/// of `kw` taps `w` at offset `o`, output `2j` is `sum_kx w[kx] x[o + 2j
/// + kx]` and output `2j + 1` is `sum_kx w[kx] x[o + 2j + 1 + kx]`; with
/// the loads `L_m = (x[o + 2m + 2j], x[o + 2m + 2j + 1])`, the even sum is
/// `sum_m L_m . (w[2m], w[2m + 1])` and the odd one
/// `sum_m L_m . (w[2m - 1], w[2m])` (weights outside `0..kw` zero): `kw / 2 + 1` loads and two
/// `vpmaddwd` each per row and 16 outputs, no shuffles (the pairing
/// kernel, [`taps_plane`], unpacks two loads per pair). Rows go in blocks
/// whose `max_abs_x * sum|w|` fits `i32` (the block's sums are then exact
/// from wrapping `i32` arithmetic), each block widened to `i64` once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RowPlan {
    pub loads: Vec<RowLoad>,
    /// The ends of the blocks, indices into `loads`.
    pub blocks: Vec<usize>,
    pub pw: usize,
    pub ow: usize,
    pub rows: usize,
}

impl RowPlan {
    /// The plan, or `None` where the kernel does not apply: rows of
    /// different lengths, outputs not whole rows of at least 16, a kernel
    /// row whose own sum could leave `i32`, or a load past `x_len`.
    pub fn new(
        len: usize,
        x_len: usize,
        plane: &PlaneShape,
        rows: &[(usize, &[i16])],
    ) -> Option<RowPlan> {
        let (pw, ow) = (plane.pw, plane.ow);
        let out_rows = len.checked_div(ow)?;
        let kw = rows.first().map_or(0, |r| r.1.len());
        if ow < LANES || ow > pw || out_rows == 0 || out_rows * ow != len || kw == 0 {
            return None;
        }
        let fits = |sum_abs: i64| plane.max_abs_x.saturating_mul(sum_abs) <= i64::from(i32::MAX);
        let tap = |w: &[i16], i: isize| usize::try_from(i).ok().and_then(|i| w.get(i)).copied();
        let pack = |a: Option<i16>, b: Option<i16>| {
            (u32::from(a.unwrap_or(0) as u16) | u32::from(b.unwrap_or(0) as u16) << 16) as i32
        };
        let span = (out_rows - 1) * pw + ow;
        let (mut loads, mut blocks, mut sum) = (Vec::new(), Vec::new(), 0i64);
        for &(offset, w) in rows {
            let row_abs: i64 = w.iter().map(|&v| i64::from(v).abs()).sum();
            if w.len() != kw || !fits(row_abs) {
                return None;
            }
            if !fits(sum + row_abs) {
                blocks.push(loads.len());
                sum = 0;
            }
            sum += row_abs;
            for m in 0..=kw / 2 {
                let m2 = 2 * m as isize;
                let load = RowLoad {
                    offset: offset + 2 * m,
                    even: pack(tap(w, m2), tap(w, m2 + 1)),
                    odd: pack(tap(w, m2 - 1), tap(w, m2)),
                };
                if load.even == 0 && load.odd == 0 {
                    continue;
                }
                if load.offset + span > x_len {
                    return None;
                }
                loads.push(load);
            }
        }
        blocks.push(loads.len());
        blocks.retain(|&b| b > 0);
        blocks.dedup();
        Some(RowPlan {
            loads,
            blocks,
            pw,
            ow,
            rows: out_rows,
        })
    }
}

/// # Safety
/// AVX2; `out` valid for `plan.rows x plan.ow` writes; every load's
/// offset + `(rows - 1) pw + ow` at most `x.len()` (`RowPlan::new`).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn rows_plane_avx2(out: *mut i64, x: &[i16], plan: &RowPlan, bias: i64) {
    // SAFETY: the caller's bounds, passed on.
    unsafe { rows_plane_body(out, x, plan, bias) }
}

/// [`rows_plane_avx2`] with `vpdpwssd` (the same wrapping sums), the even
/// and odd sums interleaved and widened on 512 bits
/// ([`even_odd_to_i64`]); a plan of one block of 6 loads (a 3x3 kernel
/// whose whole sum fits `i32`) keeps its weights in registers
/// ([`rows_plane_fixed`]).
///
/// # Safety
/// AVX2, AVX-512 F, VL and VNNI; the bounds of [`rows_plane_avx2`].
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,avx512f,avx512vl,avx512vnni")]
unsafe fn rows_plane_vnni(out: *mut i64, x: &[i16], plan: &RowPlan, bias: i64) {
    // SAFETY: the caller's bounds, passed on.
    unsafe {
        match (plan.blocks.len(), plan.loads.len(), plan.ow >= 2 * LANES) {
            (1, 6, true) => rows_plane_fixed::<6, 2>(out, x, plan, bias),
            (1, 6, false) => rows_plane_fixed::<6, 1>(out, x, plan, bias),
            (_, _, true) => rows_plane_zmm::<2>(out, x, plan, bias),
            (_, _, false) => rows_plane_zmm::<1>(out, x, plan, bias),
        }
    }
}

/// Outputs `0..8` and `8..16` of a 16-output step in `i64` from its even
/// and odd `i32` sums (outputs `2j` and `2j + 1`): one `vpermt2d` and one
/// `vpmovsxdq` per 8 outputs.
///
/// # Safety
/// AVX-512 F and VL.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn even_odd_to_i64(
    even: std::arch::x86_64::__m256i,
    odd: std::arch::x86_64::__m256i,
) -> [std::arch::x86_64::__m512i; 2] {
    use std::arch::x86_64::*;
    // SAFETY: AVX-512 F and VL, the caller's.
    unsafe {
        let first = _mm256_setr_epi32(0, 8, 1, 9, 2, 10, 3, 11);
        let second = _mm256_setr_epi32(4, 12, 5, 13, 6, 14, 7, 15);
        [
            _mm512_cvtepi32_epi64(_mm256_permutex2var_epi32(even, first, odd)),
            _mm512_cvtepi32_epi64(_mm256_permutex2var_epi32(even, second, odd)),
        ]
    }
}

/// [`rows_plane_steps`] on VNNI with the sums widened on 512 bits, any
/// plan: `V` vectors of 16 outputs per step.
///
/// # Safety
/// As [`rows_plane_vnni`]; `ow >= 16 V`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,avx512f,avx512vl,avx512vnni")]
unsafe fn rows_plane_zmm<const V: usize>(out: *mut i64, x: &[i16], plan: &RowPlan, bias: i64) {
    use std::arch::x86_64::*;
    let (xp, pw, ow) = (x.as_ptr(), plan.pw, plan.ow);
    let step = V * LANES;
    // SAFETY: the intrinsics need AVX2, AVX-512 F/VL and VNNI, the
    // caller's; the pointer bounds are stated at each access.
    unsafe {
        let bias = _mm512_set1_epi64(bias);
        for oy in 0..plan.rows {
            for start in step_starts(ow, step) {
                let base = oy * pw + start;
                let mut wide = [[bias; 2]; V];
                let mut l0 = 0;
                for &l1 in &plan.blocks {
                    let mut even = [_mm256_setzero_si256(); V];
                    let mut odd = [_mm256_setzero_si256(); V];
                    for load in &plan.loads[l0..l1] {
                        let (we, wo) = (_mm256_set1_epi32(load.even), _mm256_set1_epi32(load.odd));
                        for v in 0..V {
                            // offset + base + 16 v + 16 <= offset + (rows - 1) pw + ow <= x.len().
                            let at = load.offset + base + LANES * v;
                            let l = _mm256_loadu_si256(xp.add(at) as *const __m256i);
                            even[v] = _mm256_dpwssd_epi32(even[v], l, we);
                            odd[v] = _mm256_dpwssd_epi32(odd[v], l, wo);
                        }
                    }
                    for v in 0..V {
                        let [a, b] = even_odd_to_i64(even[v], odd[v]);
                        wide[v] = [
                            _mm512_add_epi64(wide[v][0], a),
                            _mm512_add_epi64(wide[v][1], b),
                        ];
                    }
                    l0 = l1;
                }
                for (v, halves) in wide.iter().enumerate() {
                    for (q, half) in halves.iter().enumerate() {
                        // oy ow + start + 16 v + 8 q + 8 <= (oy + 1) ow <= rows ow.
                        let at = oy * ow + start + LANES * v + 8 * q;
                        _mm512_storeu_si512(out.add(at) as *mut _, *half);
                    }
                }
            }
        }
    }
}

/// [`rows_plane_zmm`] for a plan of one block of `L` loads: the `2 L`
/// packed weights broadcast once per plane and kept in registers (a 3x3
/// kernel: 12, beside 4 `V` sums), the sums widened once per step.
///
/// # Safety
/// As [`rows_plane_zmm`]; `plan.loads.len() == L`, one block.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,avx512f,avx512vl,avx512vnni")]
unsafe fn rows_plane_fixed<const L: usize, const V: usize>(
    out: *mut i64,
    x: &[i16],
    plan: &RowPlan,
    bias: i64,
) {
    use std::arch::x86_64::*;
    let (xp, pw, ow) = (x.as_ptr(), plan.pw, plan.ow);
    let step = V * LANES;
    let offsets: [usize; L] = std::array::from_fn(|l| plan.loads[l].offset);
    // SAFETY: the intrinsics need AVX2, AVX-512 F/VL and VNNI, the
    // caller's; the pointer bounds are stated at each access.
    unsafe {
        let even_w: [__m256i; L] = std::array::from_fn(|l| _mm256_set1_epi32(plan.loads[l].even));
        let odd_w: [__m256i; L] = std::array::from_fn(|l| _mm256_set1_epi32(plan.loads[l].odd));
        let bias = _mm512_set1_epi64(bias);
        for oy in 0..plan.rows {
            for start in step_starts(ow, step) {
                let base = xp.add(oy * pw + start);
                let mut even = [_mm256_setzero_si256(); V];
                let mut odd = [_mm256_setzero_si256(); V];
                for l in 0..L {
                    for v in 0..V {
                        // offset + oy pw + start + 16 v + 16 <= offset + (rows - 1) pw + ow <= x.len().
                        let at = base.add(offsets[l] + LANES * v);
                        let x = _mm256_loadu_si256(at as *const __m256i);
                        even[v] = _mm256_dpwssd_epi32(even[v], x, even_w[l]);
                        odd[v] = _mm256_dpwssd_epi32(odd[v], x, odd_w[l]);
                    }
                }
                for v in 0..V {
                    let [a, b] = even_odd_to_i64(even[v], odd[v]);
                    // oy ow + start + 16 v + 16 <= (oy + 1) ow <= rows ow.
                    let at = out.add(oy * ow + start + LANES * v);
                    _mm512_storeu_si512(at as *mut _, _mm512_add_epi64(a, bias));
                    _mm512_storeu_si512(at.add(8) as *mut _, _mm512_add_epi64(b, bias));
                }
            }
        }
    }
}

/// The starts of the steps of `step` outputs covering a row of `ow`
/// (`ow >= step`): `0, step, 2 step, ...`, the last one `ow - step`
/// (overlapping its neighbour where `step` does not divide `ow`).
fn step_starts(ow: usize, step: usize) -> impl Iterator<Item = usize> {
    let n = ow.div_ceil(step);
    (0..n).map(move |i| (i * step).min(ow - step))
}

/// Two vectors of 16 outputs per step where rows are at least 32 long
/// (four independent `i32` chains), else one.
///
/// # Safety
/// As [`rows_plane_avx2`].
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn rows_plane_body(out: *mut i64, x: &[i16], plan: &RowPlan, bias: i64) {
    // SAFETY: the caller's bounds, passed on.
    unsafe {
        if plan.ow >= 2 * LANES {
            rows_plane_steps::<2>(out, x, plan, bias);
        } else {
            rows_plane_steps::<1>(out, x, plan, bias);
        }
    }
}

/// [`rows_plane_body`] with `V` vectors of 16 outputs per step, each row
/// covered by steps of `16 V` outputs, the last one ending at `ow`
/// (overlapping: outputs are stored, not added).
///
/// # Safety
/// As [`rows_plane_body`]; `ow >= 16 V`.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn rows_plane_steps<const V: usize>(out: *mut i64, x: &[i16], plan: &RowPlan, bias: i64) {
    use std::arch::x86_64::*;
    let (xp, pw, ow) = (x.as_ptr(), plan.pw, plan.ow);
    let step = V * LANES;
    // SAFETY: the intrinsics need AVX2, the caller's; the pointer bounds
    // are stated at each access.
    unsafe {
        let bias = _mm256_set1_epi64x(bias);
        for oy in 0..plan.rows {
            let mut ox = 0;
            loop {
                let start = ox.min(ow - step);
                let base = oy * pw + start;
                let mut wide = [[bias; 4]; V];
                let mut l0 = 0;
                for &l1 in &plan.blocks {
                    let mut even = [_mm256_setzero_si256(); V];
                    let mut odd = [_mm256_setzero_si256(); V];
                    for load in &plan.loads[l0..l1] {
                        let (we, wo) = (_mm256_set1_epi32(load.even), _mm256_set1_epi32(load.odd));
                        for v in 0..V {
                            // offset + base + 16 v + 16 <= offset + (rows - 1) pw + ow <= x.len().
                            let at = load.offset + base + LANES * v;
                            let l = _mm256_loadu_si256(xp.add(at) as *const __m256i);
                            even[v] = _mm256_add_epi32(even[v], _mm256_madd_epi16(l, we));
                            odd[v] = _mm256_add_epi32(odd[v], _mm256_madd_epi16(l, wo));
                        }
                    }
                    for v in 0..V {
                        // Outputs 0-3 | 8-11 and 4-7 | 12-15 of the step's vector.
                        let lo = _mm256_unpacklo_epi32(even[v], odd[v]);
                        let hi = _mm256_unpackhi_epi32(even[v], odd[v]);
                        super::widen_add(&mut wide[v], lo, hi);
                    }
                    l0 = l1;
                }
                for (v, vector) in wide.iter().enumerate() {
                    for (q, part) in vector.iter().enumerate() {
                        // oy ow + start + 16 v + 4 q + 4 <= (oy + 1) ow <= rows ow.
                        let at = oy * ow + start + LANES * v + 4 * q;
                        _mm256_storeu_si256(out.add(at) as *mut __m256i, *part);
                    }
                }
                if start + step >= ow {
                    break;
                }
                ox += step;
            }
        }
    }
}

/// The geometry and input bound of [`taps_plane`]: the input's row length
/// `pw`, the output's row length `ow` (at most `pw`) and `max_abs_x`, at
/// least every `|x|` the taps read.
#[derive(Debug, Clone, Copy)]
pub struct PlaneShape {
    pub pw: usize,
    pub ow: usize,
    pub max_abs_x: i64,
}

/// Outputs per AVX2 vector step.
const LANES: usize = 16;

/// A pair of taps: the two offsets and the weights packed for `vpmaddwd`
/// (first low), and the pair's `|w_a| + |w_b|`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TapPair {
    pub a: usize,
    pub b: usize,
    pub packed: i32,
    pub sum_abs: i64,
}

/// Taps in pairs: consecutive taps paired, zero taps dropped, a `-2^15`
/// tap never paired with another (their pair sum could reach `2^31`), an
/// odd one out paired with a zero weight.
pub(crate) fn tap_pairs(taps: &[(usize, i16)]) -> Vec<TapPair> {
    let pair = |a: usize, b: usize, wa: i16, wb: i16| TapPair {
        a,
        b,
        packed: (u32::from(wa as u16) | u32::from(wb as u16) << 16) as i32,
        sum_abs: i64::from(wa).abs() + i64::from(wb).abs(),
    };
    let mut out = Vec::with_capacity(taps.len().div_ceil(2));
    let mut pending: Option<(usize, i16)> = None;
    for &(o, w) in taps {
        if w == 0 {
            continue;
        }
        match pending.take() {
            Some((po, pw)) if !(pw == i16::MIN && w == i16::MIN) => out.push(pair(po, o, pw, w)),
            Some((po, pw)) => {
                out.push(pair(po, po, pw, 0));
                pending = Some((o, w));
            }
            None => pending = Some((o, w)),
        }
    }
    if let Some((po, pw)) = pending {
        out.push(pair(po, po, pw, 0));
    }
    out
}

/// The ends of blocks of consecutive pairs, greedily as long as
/// `max_abs_x * sum|w|` over the block fits `i32`; a pair alone always
/// forms a block (its own sum fits `i32`, [`tap_pairs`]).
pub(crate) fn tap_blocks(pairs: &[TapPair], max_abs_x: i64) -> Vec<usize> {
    let mut ends = Vec::new();
    let mut sum = 0i64;
    for (i, p) in pairs.iter().enumerate() {
        let with = sum.saturating_add(p.sum_abs);
        if i > 0 && max_abs_x.saturating_mul(with) > i64::from(i32::MAX) {
            ends.push(i);
            sum = p.sum_abs;
        } else {
            sum = with;
        }
    }
    if !pairs.is_empty() {
        ends.push(pairs.len());
    }
    ends
}

/// # Safety
/// AVX2; `ow >= 16`, `out` valid for `rows x ow` writes, and every pair's
/// offsets + `(rows - 1) pw + ow` at most `x.len()`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn taps_plane_avx2(
    out: *mut i64,
    (pw, ow, rows): (usize, usize, usize),
    x: &[i16],
    pairs: &[TapPair],
    blocks: &[usize],
    bias: i64,
) {
    // SAFETY: the caller's bounds, passed on.
    unsafe { taps_plane_body::<false>(out, (pw, ow, rows), x, pairs, blocks, bias) }
}

/// [`taps_plane_avx2`] with each `vpmaddwd` + `vpaddd` fused into one
/// `vpdpwssd` (AVX-512 VNNI on 256-bit registers): the same wrapping `i32`
/// sums, so the same blocks and results.
///
/// # Safety
/// AVX2, AVX-512 VL and VNNI; the bounds of [`taps_plane_avx2`].
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,avx512f,avx512vl,avx512vnni")]
unsafe fn taps_plane_vnni(
    out: *mut i64,
    (pw, ow, rows): (usize, usize, usize),
    x: &[i16],
    pairs: &[TapPair],
    blocks: &[usize],
    bias: i64,
) {
    // SAFETY: the caller's bounds, passed on.
    unsafe { taps_plane_body::<true>(out, (pw, ow, rows), x, pairs, blocks, bias) }
}

/// The body of [`taps_plane_avx2`] (`VNNI` false) and
/// [`taps_plane_vnni`], inlined into each: two vectors of 16 outputs per
/// step where rows are at least 32 long (four independent `i32` chains
/// instead of two, so the adds' latency overlaps), else one.
///
/// # Safety
/// As theirs; `VNNI` only where the CPU has AVX-512 VL and VNNI.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn taps_plane_body<const VNNI: bool>(
    out: *mut i64,
    geometry: (usize, usize, usize),
    x: &[i16],
    pairs: &[TapPair],
    blocks: &[usize],
    bias: i64,
) {
    // SAFETY: the caller's bounds, passed on.
    unsafe {
        if geometry.1 >= 2 * LANES {
            taps_plane_steps::<VNNI, 2>(out, geometry, x, pairs, blocks, bias);
        } else {
            taps_plane_steps::<VNNI, 1>(out, geometry, x, pairs, blocks, bias);
        }
    }
}

/// [`taps_plane_body`] with `V` vectors of 16 outputs per step: each row
/// covered by steps of `16 V` outputs, the last one ending at `ow`.
///
/// # Safety
/// As [`taps_plane_body`]; `ow >= 16 V`.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn taps_plane_steps<const VNNI: bool, const V: usize>(
    out: *mut i64,
    (pw, ow, rows): (usize, usize, usize),
    x: &[i16],
    pairs: &[TapPair],
    blocks: &[usize],
    bias: i64,
) {
    use std::arch::x86_64::*;
    let xp = x.as_ptr();
    let step = V * LANES;
    // SAFETY: the intrinsics need AVX2 (and VNNI, only under `VNNI`), the
    // caller's; the pointer bounds are stated at each access.
    unsafe {
        let bias = _mm256_set1_epi64x(bias);
        for oy in 0..rows {
            let mut ox = 0;
            loop {
                let start = ox.min(ow - step);
                let base = oy * pw + start;
                // Per vector, outputs 0-3, 4-7, 8-11, 12-15 in i64.
                let mut wide = [[bias; 4]; V];
                let mut p0 = 0;
                for &p1 in blocks {
                    // The madd halves in i32: lo = 0-3 | 8-11, hi = 4-7 | 12-15.
                    let mut lo = [_mm256_setzero_si256(); V];
                    let mut hi = [_mm256_setzero_si256(); V];
                    for p in &pairs[p0..p1] {
                        let w = _mm256_set1_epi32(p.packed);
                        for v in 0..V {
                            // a, b + base + 16 v + 16 <= a, b + (rows - 1) pw + ow <= x.len().
                            let at = base + LANES * v;
                            let va = _mm256_loadu_si256(xp.add(p.a + at) as *const __m256i);
                            let vb = _mm256_loadu_si256(xp.add(p.b + at) as *const __m256i);
                            let (ab_lo, ab_hi) =
                                (_mm256_unpacklo_epi16(va, vb), _mm256_unpackhi_epi16(va, vb));
                            if VNNI {
                                lo[v] = _mm256_dpwssd_epi32(lo[v], ab_lo, w);
                                hi[v] = _mm256_dpwssd_epi32(hi[v], ab_hi, w);
                            } else {
                                lo[v] = _mm256_add_epi32(lo[v], _mm256_madd_epi16(ab_lo, w));
                                hi[v] = _mm256_add_epi32(hi[v], _mm256_madd_epi16(ab_hi, w));
                            }
                        }
                    }
                    for v in 0..V {
                        super::widen_add(&mut wide[v], lo[v], hi[v]);
                    }
                    p0 = p1;
                }
                for (v, vector) in wide.iter().enumerate() {
                    for (q, part) in vector.iter().enumerate() {
                        // oy ow + start + 16 v + 4 q + 4 <= (oy + 1) ow <= rows ow.
                        let at = oy * ow + start + LANES * v + 4 * q;
                        _mm256_storeu_si256(out.add(at) as *mut __m256i, *part);
                    }
                }
                if start + step >= ow {
                    break;
                }
                ox += step;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use proptest::prelude::*;

    fn operand() -> impl Strategy<Value = i16> {
        prop_oneof![
            Just(i16::MIN),
            Just(i16::MAX),
            Just(0i16),
            any::<i16>(),
            (-128i16..=127),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]
        /// The plane equals the plain `i64` loop for random shapes, taps
        /// and extreme operands (two `-2^15` taps on `-2^15` inputs
        /// included), whatever blocks the bound allows, and for a bound
        /// that is loose (larger than max |x|) as well as tight.
        #[test]
        fn plane_equals_the_plain_loop(
            (ow, pad, rows) in (1usize..40, 0usize..4, 1usize..5),
            taps in proptest::collection::vec(operand(), 0..12),
            x in proptest::collection::vec(operand(), 400),
            seed in any::<u64>(),
            small in any::<bool>(),
            loose in 0i64..3,
            bias in -(1i64 << 40)..(1i64 << 40),
        ) {
            let pw = ow + pad;
            let x: Vec<i16> = if small { x.iter().map(|&v| v >> 9).collect() } else { x };
            let span = (rows - 1) * pw + ow;
            let room = x.len() - span;
            let taps: Vec<(usize, i16)> = taps
                .iter()
                .enumerate()
                .map(|(t, &w)| ((seed as usize).wrapping_mul(t + 3) % (room + 1), w))
                .collect();
            let max_abs_x = x.iter().map(|&v| i64::from(v).abs()).max().unwrap_or(0) + loose;
            let mut got = vec![7i64; rows * ow];
            let shape = PlaneShape { pw, ow, max_abs_x };
            taps_plane(&mut got, &x, &shape, &taps, bias);
            let mut want = vec![0i64; rows * ow];
            for oy in 0..rows {
                for ox in 0..ow {
                    want[oy * ow + ox] = bias + taps
                        .iter()
                        .map(|&(o, w)| i64::from(w) * i64::from(x[o + oy * pw + ox]))
                        .sum::<i64>();
                }
            }
            prop_assert_eq!(&got, &want);
            let mut fresh = Vec::with_capacity(rows * ow);
            taps_plane_uninit(&mut fresh.spare_capacity_mut()[..rows * ow], &x, &shape, &taps, bias);
            // SAFETY: taps_plane_uninit wrote all rows * ow elements.
            unsafe { fresh.set_len(rows * ow) };
            prop_assert_eq!(&fresh, &want);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]
        /// Kernel rows ([`taps_rows_uninit`]: the even/odd kernel where it
        /// applies, the pairing kernel where not) equal the plain loop for
        /// random row counts and lengths (even and odd), extreme operands
        /// (`-2^15` rows against `-2^15` inputs, whose row sums leave `i32`),
        /// loose and tight bounds, planes 16 to 47 wide and narrower.
        #[test]
        fn rows_equal_the_plain_loop(
            (ow, pad, rows, kw) in (1usize..48, 0usize..4, 1usize..5, 1usize..7),
            weights in proptest::collection::vec(operand(), 0..18),
            x in proptest::collection::vec(operand(), 700),
            seed in any::<u64>(),
            small in any::<bool>(),
            loose in 0i64..3,
            bias in -(1i64 << 40)..(1i64 << 40),
        ) {
            let pw = ow + pad + kw - 1;
            let x: Vec<i16> = if small { x.iter().map(|&v| v >> 9).collect() } else { x };
            let span = (rows - 1) * pw + ow + kw - 1;
            prop_assume!(span <= x.len());
            let room = x.len() - span;
            let kernel_rows: Vec<(usize, &[i16])> = weights
                .chunks_exact(kw)
                .enumerate()
                .map(|(r, w)| ((seed as usize).wrapping_mul(r + 5) % (room + 1), w))
                .collect();
            let max_abs_x = x.iter().map(|&v| i64::from(v).abs()).max().unwrap_or(0) + loose;
            let shape = PlaneShape { pw, ow, max_abs_x };
            let mut got = Vec::with_capacity(rows * ow);
            taps_rows_uninit(&mut got.spare_capacity_mut()[..rows * ow], &x, &shape, &kernel_rows, bias);
            // SAFETY: taps_rows_uninit wrote all rows * ow elements.
            unsafe { got.set_len(rows * ow) };
            let mut want = vec![0i64; rows * ow];
            for oy in 0..rows {
                for ox in 0..ow {
                    want[oy * ow + ox] = bias + kernel_rows
                        .iter()
                        .flat_map(|&(o, w)| w.iter().enumerate().map(move |(kx, &v)| (o + kx, v)))
                        .map(|(o, w)| i64::from(w) * i64::from(x[o + oy * pw + ox]))
                        .sum::<i64>();
                }
            }
            prop_assert_eq!(&got, &want);
        }
    }

    /// A 3x3 kernel on 16-bit inputs: three rows of two loads each (the
    /// even pairs `(w0, w1), (w2, 0)`, the odd `(0, w0), (w1, w2)`), one
    /// block while `max|x| * sum|w|` fits `i32`, a block per row when only
    /// rows fit, no plan when a row alone does not.
    #[test]
    fn row_plan_pairs_and_blocks() {
        let w = [1000i16, -2000, 3000];
        let rows: Vec<(usize, &[i16])> = (0..3).map(|r| (r * 20, &w[..])).collect();
        let shape = |max_abs_x| PlaneShape {
            pw: 20,
            ow: 18,
            max_abs_x,
        };
        let plan = RowPlan::new(18 * 4, 200, &shape(32767), &rows).expect("a plan");
        let pack = |a: i16, b: i16| (u32::from(a as u16) | u32::from(b as u16) << 16) as i32;
        assert_eq!(plan.loads.len(), 6);
        assert_eq!(
            plan.loads[..2],
            [
                RowLoad {
                    offset: 0,
                    even: pack(1000, -2000),
                    odd: pack(0, 1000)
                },
                RowLoad {
                    offset: 2,
                    even: pack(3000, 0),
                    odd: pack(-2000, 3000)
                },
            ]
        );
        assert_eq!((plan.loads[4].offset, plan.loads[5].offset), (40, 42));
        // 18,000 x 32,767 fits i32: one block.
        assert_eq!(plan.blocks, vec![6]);
        // 6,000 x 300,000 fits, 12,000 x 300,000 does not: a block per row.
        assert_eq!(
            RowPlan::new(72, 200, &shape(300_000), &rows)
                .expect("a plan")
                .blocks,
            vec![2, 4, 6]
        );
        // 6,000 x 400,000 does not fit: the pairing kernel instead.
        assert_eq!(RowPlan::new(72, 200, &shape(400_000), &rows), None);
        // Outputs narrower than 16, or reads past x: no plan.
        assert_eq!(
            RowPlan::new(
                15 * 4,
                200,
                &PlaneShape {
                    pw: 20,
                    ow: 15,
                    max_abs_x: 1
                },
                &rows
            ),
            None
        );
        assert_eq!(RowPlan::new(18 * 4, 100, &shape(1), &rows), None);
    }

    /// A 3x3 kernel whose whole sum fits `i32` (one block of 6 loads: the
    /// kernel with its weights in registers on VNNI) on planes 16 to 70
    /// wide, every output against the plain loop, with inputs of both signs
    /// at the bound (`max|x| * sum|w|` just inside `i32`).
    #[test]
    fn three_by_three_single_block_equals_the_plain_loop() {
        let w = [-21000i16, 7, 13000, 1, -1, 0, 30000, -2, 30000];
        let sum_abs: i64 = w.iter().map(|&v| i64::from(v).abs()).sum();
        let max_abs_x = i64::from(i32::MAX) / sum_abs;
        assert_eq!(max_abs_x, 22842);
        for ow in [16usize, 17, 31, 32, 33, 56, 70] {
            let (pw, rows) = (ow + 2, 5);
            let x: Vec<i16> = (0..(rows + 2) * pw)
                .map(|i| match i % 7 {
                    0 => -(max_abs_x as i16),
                    3 => max_abs_x as i16,
                    _ => (i as i16).wrapping_mul(97) % (max_abs_x as i16),
                })
                .collect();
            let kernel_rows: Vec<(usize, &[i16])> =
                (0..3).map(|r| (r * pw, &w[3 * r..3 * r + 3])).collect();
            let shape = PlaneShape { pw, ow, max_abs_x };
            let plan = RowPlan::new(rows * ow, x.len(), &shape, &kernel_rows).expect("a plan");
            assert_eq!((plan.loads.len(), plan.blocks.len()), (6, 1));
            let mut got = Vec::with_capacity(rows * ow);
            taps_rows_uninit(
                &mut got.spare_capacity_mut()[..rows * ow],
                &x,
                &shape,
                &kernel_rows,
                -5,
            );
            // SAFETY: taps_rows_uninit wrote all rows * ow elements.
            unsafe { got.set_len(rows * ow) };
            for (i, &g) in got.iter().enumerate() {
                let (oy, ox) = (i / ow, i % ow);
                let want: i64 = -5
                    + (0..9)
                        .map(|t| i64::from(w[t]) * i64::from(x[(oy + t / 3) * pw + ox + t % 3]))
                        .sum::<i64>();
                assert_eq!(g, want, "ow {ow}, output {i}");
            }
        }
    }

    #[test]
    fn blocks_follow_the_bound() {
        let taps: Vec<(usize, i16)> = (0..9).map(|t| (t, 1000)).collect();
        let pairs = tap_pairs(&taps);
        assert_eq!(pairs.len(), 5);
        // 9 taps of 1000 against inputs below 2^15: sum 9,000 x 32,767 fits.
        assert_eq!(tap_blocks(&pairs, 32767), vec![5]);
        // Against 2^20 (not an i16, a loose bound): 2,000 x 2^20 per pair
        // = 2.1e9 fits alone, two pairs do not.
        assert_eq!(tap_blocks(&pairs, 1 << 20), vec![1, 2, 3, 4, 5]);
        // Two -2^15 taps are not paired.
        let taps = [(0, i16::MIN), (1, i16::MIN)];
        let pairs = tap_pairs(&taps);
        assert_eq!(pairs.len(), 2);
        assert_eq!((pairs[0].a, pairs[0].b, pairs[0].sum_abs), (0, 0, 32768));
    }
}
