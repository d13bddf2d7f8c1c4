//! The multiply-accumulate inner loops shared by the reference executor and
//! the simulated PEs, compiled twice: once for the portable x86-64 baseline
//! (SSE2, which has no 32-bit vector multiply) and once with AVX2, chosen at
//! run time on CPUs that have it. Both compile the same Rust loop, so the
//! results are identical; only the speed differs. Other targets use the
//! portable loop.

use std::ops::{AddAssign, Mul};

mod taps;
pub use taps::{PlaneShape, taps_plane, taps_plane_uninit, taps_rows_uninit};

/// An accumulator the kernels work on: `i32`, `i64` or `f64` (the callers
/// pick one whose sums are exact).
pub trait Lane: Copy + AddAssign + Mul<Output = Self> + From<i16> {}
impl<A: Copy + AddAssign + Mul<Output = A> + From<i16>> Lane for A {}

/// `acc[i] += w * x[i]` over the common length.
pub fn axpy<A: Lane>(acc: &mut [A], w: A, x: &[i16]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2, checked just above.
        unsafe { axpy_avx2(acc, w, x) };
        return;
    }
    axpy_portable(acc, w, x);
}

#[inline(always)]
fn axpy_portable<A: Lane>(acc: &mut [A], w: A, x: &[i16]) {
    for (a, &v) in acc.iter_mut().zip(x) {
        *a += w * A::from(v);
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn axpy_avx2<A: Lane>(acc: &mut [A], w: A, x: &[i16]) {
    axpy_portable(acc, w, x);
}

/// `zero + sum(w[i] * x[i])` over the common length.
pub fn dot<A: Lane>(zero: A, w: &[i16], x: &[i16]) -> A {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2, checked just above.
        return unsafe { dot_avx2(zero, w, x) };
    }
    dot_portable(zero, w, x)
}

#[inline(always)]
fn dot_portable<A: Lane>(zero: A, w: &[i16], x: &[i16]) -> A {
    let mut s = zero;
    for (&a, &b) in w.iter().zip(x) {
        s += A::from(a) * A::from(b);
    }
    s
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn dot_avx2<A: Lane>(zero: A, w: &[i16], x: &[i16]) -> A {
    dot_portable(zero, w, x)
}

/// Positions a [`PairPanel`] pads its width to: one AVX2 tile.
pub const PANEL_TILE: usize = 16;

/// The operand matrix of an integer matrix product, `k` rows by `width`
/// columns, stored for `vpmaddwd`: rows in pairs, the two entries of a pair
/// adjacent (`data[((t / 2) * stride + j) * 2 + t % 2]`), the stride padded
/// to a multiple of [`PANEL_TILE`] and an odd last row paired with zeros.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PairPanel {
    k: usize,
    width: usize,
    stride: usize,
    data: Vec<i16>,
}

impl PairPanel {
    /// A zero panel of `k` rows and `width` columns.
    pub fn zeros(k: usize, width: usize) -> Self {
        let stride = width.div_ceil(PANEL_TILE) * PANEL_TILE;
        PairPanel {
            k,
            width,
            stride,
            data: vec![0; k.div_ceil(2) * stride * 2],
        }
    }

    /// Rows (the sum's length).
    pub fn k(&self) -> usize {
        self.k
    }

    /// Columns (the outputs per weight row).
    pub fn width(&self) -> usize {
        self.width
    }

    /// The padded row length of [`gemm_pairs`]'s output.
    pub fn stride(&self) -> usize {
        self.stride
    }

    /// Writes row `t` from `values` (one per column, at most `width`).
    pub fn set_row(&mut self, t: usize, values: impl Iterator<Item = i16>) {
        let base = (t / 2) * self.stride * 2 + t % 2;
        for (j, v) in values.take(self.width).enumerate() {
            self.data[base + 2 * j] = v;
        }
    }

    /// Entry (row `t`, column `j`).
    pub fn get(&self, t: usize, j: usize) -> i16 {
        self.data[((t / 2) * self.stride + j) * 2 + t % 2]
    }

    /// Makes this the panel of `k` rows and `width` columns, reusing its
    /// buffer, every pair of rows written by `pair(q, dst)`: rows `2q` and
    /// `2q + 1` interleaved (`dst[2j]` is row `2q`'s column `j`, `dst[2j + 1]`
    /// row `2q + 1`'s; for an odd `k` the last pair's second row must be
    /// zeros), `dst` being `2 * width` long. Nothing is zero-filled first:
    /// `pair` must write all of `dst`; the padding columns up to the stride
    /// are zeroed here. Pairs are filled on several threads when the panel
    /// is large; the panel is the same whichever thread fills a pair.
    pub fn refill(&mut self, k: usize, width: usize, pair: impl Fn(usize, &mut [i16]) + Sync) {
        let stride = width.div_ceil(PANEL_TILE) * PANEL_TILE;
        self.k = k;
        self.width = width;
        self.stride = stride;
        // No clear: every entry is written below.
        self.data.resize(k.div_ceil(2) * stride * 2, 0);
        let fill = |(q, dst): (usize, &mut [i16])| {
            let (cols, pad) = dst.split_at_mut(2 * width);
            pair(q, cols);
            pad.fill(0);
        };
        let chunk = (stride * 2).max(1);
        if k * width >= PARALLEL_FILL_ELEMENTS {
            use rayon::prelude::*;
            self.data.par_chunks_mut(chunk).enumerate().for_each(fill);
        } else {
            self.data.chunks_mut(chunk).enumerate().for_each(fill);
        }
    }
}

/// Panel entries from which [`PairPanel::refill`] splits the work over
/// threads.
const PARALLEL_FILL_ELEMENTS: usize = 1 << 16;

/// Weight rows of a matrix product, packed once as `i32` pairs for
/// [`PairWeights::gemm`], with the largest sums of their positive and
/// negative parts over aligned blocks of each power-of-two length that
/// bound its blocks ([`PairWeights::block_pairs_in`]): one packing serves
/// a whole batch of inputs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PairWeights {
    pairs: usize,
    rows: usize,
    /// `rows * pairs` pairs (`w[2q]` low, `w[2q + 1]` high; odd rows pad with 0).
    packed: Vec<i32>,
    /// Per level `l` (blocks of `2^l` pairs starting at multiples of
    /// `2^l`, the last one possibly shorter; the top level is one block
    /// of every pair), the largest sum of `max(w, 0)` over any block of
    /// any row.
    level_pos: Vec<i64>,
    /// The same for `max(-w, 0)`.
    level_neg: Vec<i64>,
}

impl PairWeights {
    /// `w` as rows of `k` (a trailing partial row is ignored).
    pub fn new(w: &[i16], k: usize) -> Self {
        let pairs = k.div_ceil(2);
        let rows = w.len().checked_div(k).unwrap_or(0);
        let levels = pairs.next_power_of_two().trailing_zeros() as usize + 1;
        let (packed, level_pos, level_neg) = pack_pairs(w, k, rows, levels);
        PairWeights {
            pairs,
            rows,
            packed,
            level_pos,
            level_neg,
        }
    }

    /// Rows (outputs per panel column).
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// [`Self::block_pairs_in`] for a panel whose entries are at most
    /// `max_abs_x` in magnitude (`-max_abs_x..=max_abs_x`).
    pub fn block_pairs(&self, max_abs_x: i64) -> Option<usize> {
        self.block_pairs_in(-max_abs_x, max_abs_x)
    }

    /// The longest block of pairs whose sums provably fit `i32` against a
    /// panel whose entries lie in `lo..=hi` (widened to include 0, the
    /// padding): the largest `b` (a power of two, or all the pairs) such
    /// that for every block of `b` pairs of every row, with `P` the sum of
    /// its positive weights and `N` that of its negative weights'
    /// magnitudes, the block's sum range lies in `i32`. Bounded with the
    /// largest `P` and the largest `N` over the blocks (`[P lo - N hi,
    /// P hi - N lo]` with each at its largest: exact for non-negative
    /// inputs, after a ReLU, where only `P hi` and `N hi` matter, and about
    /// half of `sum|w| max|x|` there, so blocks are about twice as long as a
    /// bound on magnitudes allows); single pairs are checked one by one.
    /// `None` when even one pair does not fit: the caller then sums in a
    /// wider type.
    pub fn block_pairs_in(&self, lo: i64, hi: i64) -> Option<usize> {
        let (lo, hi) = (lo.min(0), hi.max(0));
        let pairs = self.pairs;
        if pairs == 0 || (lo == 0 && hi == 0) || self.rows == 0 {
            return Some(pairs.max(1));
        }
        let fits = |p: i64, n: i64| {
            let top = p.saturating_mul(hi).saturating_sub(n.saturating_mul(lo));
            let bottom = p.saturating_mul(lo).saturating_sub(n.saturating_mul(hi));
            top <= i64::from(i32::MAX) && bottom >= i64::from(i32::MIN)
        };
        let top = self.level_pos.len() - 1;
        for l in (1..=top).rev() {
            if fits(self.level_pos[l], self.level_neg[l]) {
                return Some(if l == top { pairs } else { 1 << l });
            }
        }
        let single = self.packed.iter().all(|&pair| {
            let (a, b) = (i64::from(pair as i16), i64::from((pair >> 16) as i16));
            fits(a.max(0) + b.max(0), (-a).max(0) + (-b).max(0))
        });
        single.then_some(1)
    }

    /// [`gemm_pairs`] for rows `rows` of these weights: `out` holds
    /// `rows.len()` rows of the panel's stride.
    pub fn gemm(
        &self,
        rows: std::ops::Range<usize>,
        panel: &PairPanel,
        block_pairs: usize,
        out: &mut [i64],
    ) {
        let pairs = self.pairs;
        let end = rows.end.min(self.rows);
        let start = rows.start.min(end);
        let packed = &self.packed[start * pairs..end * pairs];
        let block = block_pairs.max(1);
        let n = end - start;
        // The tiles' bounds: every row of `out` has its weights, every pair
        // its panel row (always so for a panel of this `k`).
        let shaped = pairs > 0
            && out.len() == n * panel.stride
            && panel.data.len() >= pairs * panel.stride * 2;
        #[cfg(target_arch = "x86_64")]
        if shaped && has_avx512_vnni() {
            // SAFETY: the CPU supports AVX-512 F, BW and VNNI, checked just above.
            unsafe { gemm_pairs_vnni(packed, pairs, panel, block, out) };
            return;
        }
        #[cfg(target_arch = "x86_64")]
        if shaped && std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2, checked just above.
            unsafe { gemm_pairs_avx2(packed, pairs, panel, block, out) };
            return;
        }
        let _ = shaped; // read by the AVX2 dispatch on x86-64 only
        gemm_pairs_portable(packed, pairs, panel, block, out);
    }

    /// [`Self::gemm`] over every row, split over threads in groups of 4
    /// rows when `rows x k x width` is at least `parallel_min_macs`.
    pub fn gemm_all(
        &self,
        panel: &PairPanel,
        block_pairs: usize,
        parallel_min_macs: usize,
        out: &mut [i64],
    ) {
        let stride = panel.stride.max(1);
        if self.rows * panel.k * panel.width >= parallel_min_macs && self.rows > 4 {
            use rayon::prelude::*;
            out.par_chunks_mut(4 * stride)
                .enumerate()
                .for_each(|(i, o)| {
                    let r0 = 4 * i;
                    self.gemm(r0..r0 + o.len() / stride, panel, block_pairs, o);
                });
        } else {
            self.gemm(0..self.rows, panel, block_pairs, out);
        }
    }
}

/// Packed pairs and the per-level largest positive and negative block sums
/// of [`PairWeights::new`], compiled for AVX-512 or AVX2 where the CPU has
/// them (the same integer loops: the same results).
fn pack_pairs(w: &[i16], k: usize, rows: usize, levels: usize) -> (Vec<i32>, Vec<i64>, Vec<i64>) {
    #[cfg(target_arch = "x86_64")]
    if has_avx512_vnni() {
        // SAFETY: the CPU has AVX-512 F and VL, checked just above.
        return unsafe { pack_pairs_avx512(w, k, rows, levels) };
    }
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2, checked just above.
        return unsafe { pack_pairs_avx2(w, k, rows, levels) };
    }
    pack_pairs_body(w, k, rows, levels)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,avx512f,avx512vl")]
fn pack_pairs_avx512(
    w: &[i16],
    k: usize,
    rows: usize,
    levels: usize,
) -> (Vec<i32>, Vec<i64>, Vec<i64>) {
    pack_pairs_body(w, k, rows, levels)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn pack_pairs_avx2(
    w: &[i16],
    k: usize,
    rows: usize,
    levels: usize,
) -> (Vec<i32>, Vec<i64>, Vec<i64>) {
    pack_pairs_body(w, k, rows, levels)
}

#[inline(always)]
fn pack_pairs_body(
    w: &[i16],
    k: usize,
    rows: usize,
    levels: usize,
) -> (Vec<i32>, Vec<i64>, Vec<i64>) {
    let pairs = k.div_ceil(2);
    let mut packed = vec![0i32; rows * pairs];
    let (mut level_pos, mut level_neg) = (vec![0i64; levels], vec![0i64; levels]);
    // Per pair of the row (then per block, level by level): positive and
    // negative sums; the halves are summed into the other buffer.
    let (mut pos, mut neg) = (vec![0i64; pairs], vec![0i64; pairs]);
    let (mut pos2, mut neg2) = (vec![0i64; pairs], vec![0i64; pairs]);
    for (row, dst) in w
        .chunks_exact(k.max(1))
        .take(rows)
        .zip(packed.chunks_exact_mut(pairs.max(1)))
    {
        let (even, odd) = row.split_at(2 * (k / 2));
        for (((d, pair), p), n) in dst
            .iter_mut()
            .zip(even.chunks_exact(2))
            .zip(&mut pos)
            .zip(&mut neg)
        {
            let (a, b) = (pair[0], pair[1]);
            *d = (u32::from(a as u16) | u32::from(b as u16) << 16) as i32;
            let (a, b) = (i64::from(a), i64::from(b));
            *p = a.max(0) + b.max(0);
            *n = (-a).max(0) + (-b).max(0);
        }
        if let (Some(&a), Some(d)) = (odd.first(), dst.last_mut()) {
            *d = i32::from(a as u16);
            let a = i64::from(a);
            (pos[pairs - 1], neg[pairs - 1]) = (a.max(0), (-a).max(0));
        }
        let mut len = pairs;
        for l in 0..levels {
            level_pos[l] = level_pos[l].max(pos[..len].iter().copied().max().unwrap_or(0));
            level_neg[l] = level_neg[l].max(neg[..len].iter().copied().max().unwrap_or(0));
            halve(&pos[..len], &mut pos2);
            halve(&neg[..len], &mut neg2);
            std::mem::swap(&mut pos, &mut pos2);
            std::mem::swap(&mut neg, &mut neg2);
            len = len.div_ceil(2);
        }
        pos.resize(pairs, 0);
        neg.resize(pairs, 0);
    }
    (packed, level_pos, level_neg)
}

/// `out[j] = v[2j] + v[2j + 1]` (the last alone when `v` is odd).
#[inline(always)]
fn halve(v: &[i64], out: &mut [i64]) {
    for (o, p) in out.iter_mut().zip(v.chunks_exact(2)) {
        *o = p[0] + p[1];
    }
    if v.len() % 2 == 1 {
        out[v.len() / 2] = v[v.len() - 1];
    }
}

/// The longest block of weight pairs whose partial sums provably fit `i32`
/// ([`PairWeights::block_pairs`] for `w` as rows of `k`).
pub fn pair_block_len(w: &[i16], k: usize, max_abs_x: i64) -> Option<usize> {
    PairWeights::new(w, k).block_pairs(max_abs_x)
}

/// `out[r * stride + j] += sum_t w[r * k + t] * panel(t, j)` for every row
/// `r` of `w` and column `j < stride` of the panel, exactly, given a
/// `block_pairs` from [`pair_block_len`] for this `w` and a panel whose
/// entries are at most the `max_abs_x` it was given.
///
/// Each block of `block_pairs` weight pairs is summed in wrapping `i32`
/// (`vpmaddwd` and `vpaddd` under AVX2): the arithmetic is exact modulo
/// 2^32, and the bound puts the true block sum inside `i32`, so the block
/// sum is exact; blocks are then added in `i64`. The portable loop computes
/// the same blocks, so both paths give the exact sums.
pub fn gemm_pairs(w: &[i16], k: usize, panel: &PairPanel, block_pairs: usize, out: &mut [i64]) {
    let weights = PairWeights::new(w, k);
    weights.gemm(0..weights.rows, panel, block_pairs, out);
}

/// `vpmaddwd` on one pair: `lo(a) * lo(b) + hi(a) * hi(b)`, wrapping.
#[inline(always)]
fn madd(pair: i32, a0: i16, a1: i16) -> i32 {
    let (w0, w1) = (pair as i16, (pair >> 16) as i16);
    (i32::from(w0) * i32::from(a0)).wrapping_add(i32::from(w1) * i32::from(a1))
}

fn gemm_pairs_portable(
    packed: &[i32],
    pairs: usize,
    panel: &PairPanel,
    block: usize,
    out: &mut [i64],
) {
    let stride = panel.stride;
    for (wrow, orow) in packed
        .chunks_exact(pairs.max(1))
        .zip(out.chunks_exact_mut(stride))
    {
        let mut acc = vec![0i32; stride];
        for (b, wblock) in wrow.chunks(block).enumerate() {
            acc.iter_mut().for_each(|a| *a = 0);
            for (i, &pair) in wblock.iter().enumerate() {
                let q = b * block + i;
                let src = &panel.data[q * stride * 2..(q + 1) * stride * 2];
                for (a, x) in acc.iter_mut().zip(src.chunks_exact(2)) {
                    *a = a.wrapping_add(madd(pair, x[0], x[1]));
                }
            }
            for (o, &a) in orow.iter_mut().zip(&acc) {
                *o += i64::from(a);
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn gemm_pairs_avx2(packed: &[i32], pairs: usize, panel: &PairPanel, block: usize, out: &mut [i64]) {
    let stride = panel.stride;
    let rows = out.len() / stride.max(1);
    let mut tiles = |r0: usize, j0: usize| {
        if r0 + 4 <= rows {
            // SAFETY: rows r0..r0 + 4 <= rows, columns j0..j0 + 16 <= stride,
            // pairs < `pairs`: every pointer stays inside the slices checked above.
            unsafe { tile_avx2::<4>(packed, pairs, panel, block, out, r0, j0) };
        } else {
            for r in r0..rows {
                // SAFETY: as above, one row.
                unsafe { tile_avx2::<1>(packed, pairs, panel, block, out, r, j0) };
            }
        }
    };
    // Keep the smaller operand in cache and stream the larger once: a
    // panel wider than the weights (a convolution) goes column strip by
    // column strip, each strip re-read from L1 by every group of 4 rows;
    // weights larger than the panel (a batched fully connected layer)
    // go 4 rows at a time, re-read by every column strip.
    if rows > stride {
        for r0 in (0..rows).step_by(4) {
            for j0 in (0..stride).step_by(PANEL_TILE) {
                tiles(r0, j0);
            }
        }
    } else {
        for j0 in (0..stride).step_by(PANEL_TILE) {
            for r0 in (0..rows).step_by(4) {
                tiles(r0, j0);
            }
        }
    }
}

/// `R` weight rows by 16 columns, blocks of `block` pairs in `i32`, widened
/// into `out`'s `i64`s after each block.
///
/// # Safety
/// AVX2; rows `r0..r0 + R` of `out` and `packed`, columns `j0..j0 + 16`
/// within the panel's stride.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn tile_avx2<const R: usize>(
    packed: &[i32],
    pairs: usize,
    panel: &PairPanel,
    block: usize,
    out: &mut [i64],
    r0: usize,
    j0: usize,
) {
    use std::arch::x86_64::*;
    let stride = panel.stride;
    let cols = panel.data.as_ptr();
    let mut q0 = 0;
    while q0 < pairs {
        let q1 = (q0 + block).min(pairs);
        let mut acc = [[_mm256_setzero_si256(); 2]; R];
        for q in q0..q1 {
            // SAFETY: q < pairs and j0 + 16 <= stride (the caller's bounds).
            let (c0, c1) = unsafe {
                let c = cols.add((q * stride + j0) * 2);
                (
                    _mm256_loadu_si256(c as *const __m256i),
                    _mm256_loadu_si256(c.add(16) as *const __m256i),
                )
            };
            for (i, a) in acc.iter_mut().enumerate() {
                // SAFETY: row r0 + i < rows and q < pairs (the caller's bounds).
                let w = _mm256_set1_epi32(unsafe { *packed.get_unchecked((r0 + i) * pairs + q) });
                a[0] = _mm256_add_epi32(a[0], _mm256_madd_epi16(c0, w));
                a[1] = _mm256_add_epi32(a[1], _mm256_madd_epi16(c1, w));
            }
        }
        for (i, a) in acc.iter().enumerate() {
            for (h, &v) in a.iter().enumerate() {
                let lo = _mm256_cvtepi32_epi64(_mm256_castsi256_si128(v));
                let hi = _mm256_cvtepi32_epi64(_mm256_extracti128_si256::<1>(v));
                // SAFETY: row r0 + i < rows, columns j0 + 8h .. + 8 <= stride.
                unsafe {
                    let o = out.as_mut_ptr().add((r0 + i) * stride + j0 + 8 * h);
                    let o0 = o as *mut __m256i;
                    let o1 = o.add(4) as *mut __m256i;
                    _mm256_storeu_si256(o0, _mm256_add_epi64(_mm256_loadu_si256(o0), lo));
                    _mm256_storeu_si256(o1, _mm256_add_epi64(_mm256_loadu_si256(o1), hi));
                }
            }
        }
        q0 = q1;
    }
}

/// Whether the CPU has AVX-512 F, BW and VNNI (`vpdpwssd`: a pair's
/// products added to an `i32` accumulator, wrapping, in one instruction),
/// unless `ACCSIM_NO_AVX512` is set (to measure the AVX2 path on the same
/// machine). Detected once.
#[cfg(target_arch = "x86_64")]
fn has_avx512_vnni() -> bool {
    static HAS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *HAS.get_or_init(|| {
        std::env::var_os("ACCSIM_NO_AVX512").is_none()
            && std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512bw")
            && std::arch::is_x86_feature_detected!("avx512vnni")
    })
}

/// [`gemm_pairs_avx2`] on AVX-512 VNNI: tiles of 8 weight rows (then 4,
/// then 1) by 16 columns, one `vpdpwssd` per row and pair on a 512-bit
/// register of 16 columns. `vpdpwssd` is `vpaddd(acc, vpmaddwd(a, b))`
/// exactly (both wrap modulo 2^32), so the blocks and sums are those of
/// the AVX2 path.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
fn gemm_pairs_vnni(packed: &[i32], pairs: usize, panel: &PairPanel, block: usize, out: &mut [i64]) {
    let stride = panel.stride;
    let rows = out.len() / stride.max(1);
    let tiles = |out: &mut [i64], r0: usize, j0: usize| {
        let mut r = r0;
        // SAFETY (all three): rows r..r + R <= rows and r0 + 8 bounds them,
        // columns j0..j0 + 16 <= stride, pairs < `pairs`: every pointer
        // stays inside the slices `gemm` checked.
        while r + 8 <= rows.min(r0 + 8) {
            unsafe { tile_vnni::<8>(packed, pairs, panel, block, out, r, j0) };
            r += 8;
        }
        while r + 4 <= rows.min(r0 + 8) {
            unsafe { tile_vnni::<4>(packed, pairs, panel, block, out, r, j0) };
            r += 4;
        }
        while r < rows.min(r0 + 8) {
            unsafe { tile_vnni::<1>(packed, pairs, panel, block, out, r, j0) };
            r += 1;
        }
    };
    // The loop order of `gemm_pairs_avx2`, in groups of 8 rows.
    if rows > stride {
        for r0 in (0..rows).step_by(8) {
            for j0 in (0..stride).step_by(PANEL_TILE) {
                tiles(out, r0, j0);
            }
        }
    } else {
        for j0 in (0..stride).step_by(PANEL_TILE) {
            for r0 in (0..rows).step_by(8) {
                tiles(out, r0, j0);
            }
        }
    }
}

/// `R` weight rows by 16 columns on AVX-512 VNNI, blocks of `block` pairs
/// in `i32`, widened after each block into `i64` sums kept in registers and
/// added to `out` once.
///
/// # Safety
/// AVX-512 F, BW, VNNI; rows `r0..r0 + R` of `out` and `packed`, columns
/// `j0..j0 + 16` within the panel's stride.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
unsafe fn tile_vnni<const R: usize>(
    packed: &[i32],
    pairs: usize,
    panel: &PairPanel,
    block: usize,
    out: &mut [i64],
    r0: usize,
    j0: usize,
) {
    use std::arch::x86_64::*;
    let stride = panel.stride;
    let cols = panel.data.as_ptr();
    // The tile's `i64` sums (columns j0..j0 + 8 and j0 + 8..j0 + 16 per
    // row) stay in registers across blocks: 3R + 2 of the 32 zmm.
    let mut wide = [[_mm512_setzero_si512(); 2]; R];
    let mut q0 = 0;
    while q0 < pairs {
        let q1 = (q0 + block).min(pairs);
        let mut acc = [_mm512_setzero_si512(); R];
        for q in q0..q1 {
            // SAFETY: q < pairs and j0 + 16 <= stride (the caller's bounds).
            let c = unsafe { _mm512_loadu_si512(cols.add((q * stride + j0) * 2) as *const _) };
            for (i, a) in acc.iter_mut().enumerate() {
                // SAFETY: row r0 + i < rows and q < pairs (the caller's bounds).
                let w = _mm512_set1_epi32(unsafe { *packed.get_unchecked((r0 + i) * pairs + q) });
                *a = _mm512_dpwssd_epi32(*a, c, w);
            }
        }
        for (wide, &v) in wide.iter_mut().zip(&acc) {
            let lo = _mm512_cvtepi32_epi64(_mm512_castsi512_si256(v));
            let hi = _mm512_cvtepi32_epi64(_mm512_extracti64x4_epi64::<1>(v));
            wide[0] = _mm512_add_epi64(wide[0], lo);
            wide[1] = _mm512_add_epi64(wide[1], hi);
        }
        q0 = q1;
    }
    for (i, wide) in wide.iter().enumerate() {
        // SAFETY: row r0 + i < rows, columns j0 .. j0 + 16 <= stride.
        unsafe {
            let o = out.as_mut_ptr().add((r0 + i) * stride + j0);
            let o0 = o as *mut __m512i;
            let o1 = o.add(8) as *mut __m512i;
            _mm512_storeu_si512(
                o0 as *mut _,
                _mm512_add_epi64(_mm512_loadu_si512(o0 as *const _), wide[0]),
            );
            _mm512_storeu_si512(
                o1 as *mut _,
                _mm512_add_epi64(_mm512_loadu_si512(o1 as *const _), wide[1]),
            );
        }
    }
}

/// `sum(w[i] * x[i])` over the common length, exactly, given a `block_pairs`
/// from [`pair_block_len`] for `w` (as one row) and `x`'s largest magnitude:
/// blocks of pairs in wrapping `i32` (`vpmaddwd` under AVX2), `i64` across
/// blocks, as [`gemm_pairs`] does.
pub fn dot_pairs(w: &[i16], x: &[i16], block_pairs: usize) -> i64 {
    let n = w.len().min(x.len());
    let (w, x) = (&w[..n], &x[..n]);
    #[cfg(target_arch = "x86_64")]
    if block_pairs >= 8 && std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2, checked just above.
        return unsafe { dot_pairs_avx2(w, x, block_pairs) };
    }
    dot_pairs_portable(w, x, block_pairs.max(1))
}

fn dot_pairs_portable(w: &[i16], x: &[i16], block_pairs: usize) -> i64 {
    let mut total = 0i64;
    for (wb, xb) in w.chunks(2 * block_pairs).zip(x.chunks(2 * block_pairs)) {
        let mut acc = 0i32;
        for (a, b) in wb.iter().zip(xb) {
            acc = acc.wrapping_add(i32::from(*a) * i32::from(*b));
        }
        total += i64::from(acc);
    }
    total
}

/// Vectors of 8 pairs, `block_pairs / 8` of them per `i32` block (inside one
/// proven block: a power of two, or the whole row); the tail in `i64`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn dot_pairs_avx2(w: &[i16], x: &[i16], block_pairs: usize) -> i64 {
    use std::arch::x86_64::*;
    let vectors = w.len() / 16;
    let per_block = (block_pairs / 8).max(1);
    let mut wide = _mm256_setzero_si256();
    let mut v0 = 0;
    while v0 < vectors {
        let v1 = (v0 + per_block).min(vectors);
        let mut acc = _mm256_setzero_si256();
        for v in v0..v1 {
            // SAFETY: v < vectors = len / 16: 16 elements from 16 v are in bounds.
            let (a, b) = unsafe {
                (
                    _mm256_loadu_si256(w.as_ptr().add(16 * v) as *const __m256i),
                    _mm256_loadu_si256(x.as_ptr().add(16 * v) as *const __m256i),
                )
            };
            acc = _mm256_add_epi32(acc, _mm256_madd_epi16(a, b));
        }
        wide = _mm256_add_epi64(wide, _mm256_cvtepi32_epi64(_mm256_castsi256_si128(acc)));
        wide = _mm256_add_epi64(
            wide,
            _mm256_cvtepi32_epi64(_mm256_extracti128_si256::<1>(acc)),
        );
        v0 = v1;
    }
    let mut lanes = [0i64; 4];
    // SAFETY: 4 i64 fit `lanes`.
    unsafe { _mm256_storeu_si256(lanes.as_mut_ptr() as *mut __m256i, wide) };
    let tail: i64 = w[16 * vectors..]
        .iter()
        .zip(&x[16 * vectors..])
        .map(|(&a, &b)| i64::from(a) * i64::from(b))
        .sum();
    lanes.iter().sum::<i64>() + tail
}

/// `out[r] = sum_t w[r * k + t] * x[t]` for every row `r < out.len()` of
/// `w` (rows of `k`), exactly, for any 16-bit operands: a matrix-vector
/// product whose rows go in groups of 4 sharing each load of `x`.
///
/// Blocks of pairs sum in wrapping `i32` (`vpmaddwd` under AVX2) and are
/// widened to `i64`; a block is exact when its true sum fits `i32`. When
/// `x` bounds the blocks (`2^15 sum|x|` over one) to at least 8 pairs, `x`
/// is used as is; otherwise it is split into bytes, `x = 256 hi + lo` with
/// `hi` in [-128, 127] and `lo` in [0, 255], and both products summed in
/// blocks of 128 pairs, which no 16-bit weights can overflow
/// (`128 x 2 x 2^15 x 255 < 2^31`); the sum is `256 S(hi) + S(lo)`.
pub fn gemv_exact(w: &[i16], k: usize, x: &[i16], out: &mut [i64]) {
    GemvInput::new(&x[..k.min(x.len())]).product(w, out);
}

/// The largest `sum|x|` over 16 entries (8 pairs) whose products with
/// 16-bit weights provably fit `i32` (`2^15 (2^16 - 1) <= i32::MAX`).
const NO_PAIR_BLOCK_OF_8: i64 = (1 << 16) - 1;

/// The input vector of [`gemv_exact`], prepared once for any number of
/// weight rows: its `i32` block (bounded by 16-bit weights) or, where that
/// is shorter than 8 pairs, its byte split. A layer's rows, split over
/// threads, share one preparation instead of repeating it per group.
#[derive(Debug, Clone)]
pub struct GemvInput {
    /// The input divided by `2^shift` (exactly).
    x: Vec<i16>,
    shift: u32,
    /// Pairs per `i32` block against any 16-bit weights, when at least 8.
    block: Option<usize>,
    /// The byte split `x = 256 hi + lo` when `block` is `None`.
    hi: Vec<i16>,
    lo: Vec<i16>,
}

impl GemvInput {
    /// `x` prepared: divided by `2^s` when every entry is a multiple of it
    /// (PELUSO's 8-bit modes keep the high byte: `s >= 8`, and the quotients
    /// allow long blocks), its block bound and, if needed, its byte split.
    pub fn new(x: &[i16]) -> Self {
        let k = x.len();
        let shift = x
            .iter()
            .fold(0u16, |acc, &v| acc | v as u16)
            .trailing_zeros()
            .min(15);
        let x: Vec<i16> = x.iter().map(|&v| v >> shift).collect();
        // A block of 8 or more pairs needs every aligned 16 entries' sum|x|
        // within 2^16 - 1 ([`PairWeights::block_pairs_in`] against weights
        // of magnitude up to 2^15), so a larger total rules one out without
        // the block search (which packs `x` and sums it level by level): the
        // same decision, one pass over `x`.
        let sum_abs: i64 = x.iter().map(|&v| i64::from(v).abs()).sum();
        let block = if sum_abs > NO_PAIR_BLOCK_OF_8 * k.div_ceil(16) as i64 {
            None
        } else {
            pair_block_len(&x, k, 1 << 15).filter(|&b| b >= 8)
        };
        let (hi, lo) = match block {
            Some(_) => (Vec::new(), Vec::new()),
            None => x.iter().map(|&v| (v >> 8, v & 0xFF)).unzip(),
        };
        GemvInput {
            x,
            shift,
            block,
            hi,
            lo,
        }
    }

    /// `out[r] = sum_t w[r * k + t] * x[t]` for every row `r < out.len()`
    /// of `w` (rows of `k = x.len()`), exactly ([`gemv_exact`]).
    pub fn product(&self, w: &[i16], out: &mut [i64]) {
        let k = self.x.len();
        let rows = out.len().min(w.len().checked_div(k).unwrap_or(0));
        let out = &mut out[..rows];
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") && k > 0 {
            // SAFETY: the CPU supports AVX2, checked just above.
            unsafe { gemv_avx2(w, self, out) };
            out.iter_mut().for_each(|o| *o <<= self.shift);
            return;
        }
        for (o, row) in out.iter_mut().zip(w.chunks_exact(k.max(1))) {
            *o = dot_portable(0i64, row, &self.x) << self.shift;
        }
    }
}

/// [`GemvInput::product`] under AVX2: rows in groups of 4 sharing each
/// load of the input.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn gemv_avx2(w: &[i16], input: &GemvInput, out: &mut [i64]) {
    let (x, k) = (&input.x[..], input.x.len());
    let (hi, lo) = (&input.hi[..], &input.lo[..]);
    let vectors = k / 16;
    let mut r = 0;
    // Groups of 8 rows on 512-bit VNNI where the blocks allow whole
    // 32-element vectors; the rest (and other CPUs) below.
    let zmm_block = match input.block {
        Some(b) => b / 16,
        None => ZMM_SPLIT_BLOCK_VECTORS,
    };
    if has_avx512_vnni() && zmm_block > 0 {
        while r + 8 <= out.len() {
            let rows: [&[i16]; 8] = std::array::from_fn(|i| &w[(r + i) * k..(r + i + 1) * k]);
            // SAFETY: the CPU has AVX-512 F, BW and VNNI, checked just above.
            let sums = unsafe {
                match input.block {
                    Some(_) => rows_dot_zmm::<8, 1>(rows, [x], zmm_block),
                    None => rows_dot_zmm::<8, 2>(rows, [hi, lo], zmm_block),
                }
            };
            for (i, (o, s)) in out[r..r + 8].iter_mut().zip(sums).enumerate() {
                let tail: i64 = rows[i][32 * (k / 32)..]
                    .iter()
                    .zip(&x[32 * (k / 32)..])
                    .map(|(&a, &b)| i64::from(a) * i64::from(b))
                    .sum();
                *o = s + tail;
            }
            r += 8;
        }
    }
    while r < out.len() {
        let n = if r + 4 <= out.len() { 4 } else { 1 };
        let row = |i: usize| &w[(r + i) * k..(r + i + 1) * k];
        let sums: [i64; 4] = match (input.block, n) {
            (Some(b), 4) => rows_dot::<4, 1>([row(0), row(1), row(2), row(3)], [x], b / 8)[0],
            (Some(b), _) => pad4(rows_dot::<1, 1>([row(0)], [x], b / 8)[0]),
            (None, 4) => {
                let [h, l] = rows_dot::<4, 2>([row(0), row(1), row(2), row(3)], [hi, lo], 16);
                std::array::from_fn(|i| 256 * h[i] + l[i])
            }
            (None, _) => {
                let [h, l] = rows_dot::<1, 2>([row(0)], [hi, lo], 16);
                pad4([256 * h[0] + l[0]])
            }
        };
        for (i, o) in out[r..r + n].iter_mut().enumerate() {
            let tail: i64 = row(i)[16 * vectors..]
                .iter()
                .zip(&x[16 * vectors..])
                .map(|(&a, &b)| i64::from(a) * i64::from(b))
                .sum();
            *o = sums[i] + tail;
        }
        r += n;
    }
}

fn pad4<const R: usize>(v: [i64; R]) -> [i64; 4] {
    std::array::from_fn(|i| v.get(i).copied().unwrap_or(0))
}

/// Per part `p` and row `i`, `sum(rows[i][t] * parts[p][t])` over the whole
/// 16-element vectors, in `i32` blocks of `block_vectors` vectors widened to
/// `i64`: exact when every block's true sum fits `i32` (the caller's bound).
/// On AVX-512 VNNI each `vpmaddwd` + `vpaddd` is one `vpdpwssd` (the same
/// wrapping sums).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn rows_dot<const R: usize, const P: usize>(
    rows: [&[i16]; R],
    parts: [&[i16]; P],
    block_vectors: usize,
) -> [[i64; R]; P] {
    if has_avx512_vnni() {
        // SAFETY: the CPU has AVX-512 VL and VNNI, checked just above.
        unsafe { rows_dot_vnni(rows, parts, block_vectors) }
    } else {
        // SAFETY: AVX2 (this function's).
        unsafe { rows_dot_body::<R, P, false>(rows, parts, block_vectors) }
    }
}

/// [`rows_dot`] on AVX-512 VNNI.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,avx512f,avx512vl,avx512vnni")]
fn rows_dot_vnni<const R: usize, const P: usize>(
    rows: [&[i16]; R],
    parts: [&[i16]; P],
    block_vectors: usize,
) -> [[i64; R]; P] {
    // SAFETY: AVX2, VL and VNNI (this function's).
    unsafe { rows_dot_body::<R, P, true>(rows, parts, block_vectors) }
}

/// The body of [`rows_dot`], inlined into each target's function.
///
/// # Safety
/// AVX2; AVX-512 VL and VNNI too when `VNNI`.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn rows_dot_body<const R: usize, const P: usize, const VNNI: bool>(
    rows: [&[i16]; R],
    parts: [&[i16]; P],
    block_vectors: usize,
) -> [[i64; R]; P] {
    use std::arch::x86_64::*;
    let len = rows
        .iter()
        .chain(parts.iter())
        .map(|v| v.len())
        .min()
        .unwrap_or(0);
    let vectors = len / 16;
    let block = block_vectors.max(1);
    let mut out = [[0i64; R]; P];
    // SAFETY: the features are the caller's; every load reads 16 elements
    // at 16 v with v < vectors = len / 16, inside every slice.
    unsafe {
        let mut wide = [[_mm256_setzero_si256(); R]; P];
        let mut v0 = 0;
        while v0 < vectors {
            let v1 = (v0 + block).min(vectors);
            let mut acc = [[_mm256_setzero_si256(); R]; P];
            for v in v0..v1 {
                let mut xs = [_mm256_setzero_si256(); P];
                for (x, part) in xs.iter_mut().zip(parts) {
                    *x = _mm256_loadu_si256(part.as_ptr().add(16 * v) as *const __m256i);
                }
                for (i, row) in rows.iter().enumerate() {
                    let wv = _mm256_loadu_si256(row.as_ptr().add(16 * v) as *const __m256i);
                    for p in 0..P {
                        acc[p][i] = if VNNI {
                            _mm256_dpwssd_epi32(acc[p][i], wv, xs[p])
                        } else {
                            _mm256_add_epi32(acc[p][i], _mm256_madd_epi16(wv, xs[p]))
                        };
                    }
                }
            }
            for p in 0..P {
                for i in 0..R {
                    let a = acc[p][i];
                    let lo = _mm256_cvtepi32_epi64(_mm256_castsi256_si128(a));
                    let hi = _mm256_cvtepi32_epi64(_mm256_extracti128_si256::<1>(a));
                    wide[p][i] = _mm256_add_epi64(wide[p][i], _mm256_add_epi64(lo, hi));
                }
            }
            v0 = v1;
        }
        for p in 0..P {
            for i in 0..R {
                let mut lanes = [0i64; 4];
                _mm256_storeu_si256(lanes.as_mut_ptr() as *mut __m256i, wide[p][i]);
                out[p][i] = lanes.iter().sum();
            }
        }
    }
    out
}

/// 32-element vectors per `i32` block of the byte split: each `i32` lane
/// sums one pair per vector, and 128 pairs of a byte (at most 255 in
/// magnitude) times 16-bit weights cannot overflow it (`128 x 2 x 2^15 x
/// 255 < 2^31`, see [`gemv_exact`]).
const ZMM_SPLIT_BLOCK_VECTORS: usize = 128;

/// Per row `i`, `sum(rows[i][t] * x[t])` over the whole 32-element vectors
/// on 512-bit registers (one `vpdpwssd` per row and part per vector, the
/// input's loads shared by the `R` rows), where `x` is `parts[0]` (`P` = 1)
/// or `256 parts[0] + parts[1]` (`P` = 2, the byte split). Blocks of
/// `block_vectors` vectors sum in `i32` and are widened (parts combined) into
/// `i64` sums kept in registers: exact when every block's true sum fits
/// `i32` (the caller's bound).
///
/// # Safety
/// AVX-512 F, BW and VNNI.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
unsafe fn rows_dot_zmm<const R: usize, const P: usize>(
    rows: [&[i16]; R],
    parts: [&[i16]; P],
    block_vectors: usize,
) -> [i64; R] {
    use std::arch::x86_64::*;
    let len = rows
        .iter()
        .chain(parts.iter())
        .map(|v| v.len())
        .min()
        .unwrap_or(0);
    let vectors = len / 32;
    let block = block_vectors.max(1);
    let widen = |a: __m512i| {
        _mm512_add_epi64(
            _mm512_cvtepi32_epi64(_mm512_castsi512_si256(a)),
            _mm512_cvtepi32_epi64(_mm512_extracti64x4_epi64::<1>(a)),
        )
    };
    let mut wide = [_mm512_setzero_si512(); R];
    let mut v0 = 0;
    while v0 < vectors {
        let v1 = (v0 + block).min(vectors);
        let mut acc = [[_mm512_setzero_si512(); R]; P];
        for v in v0..v1 {
            // SAFETY (both loads): 32 v + 32 <= len, inside every slice.
            let xs: [__m512i; P] = std::array::from_fn(|p| unsafe {
                _mm512_loadu_si512(parts[p].as_ptr().add(32 * v) as *const _)
            });
            for (i, row) in rows.iter().enumerate() {
                let wv = unsafe { _mm512_loadu_si512(row.as_ptr().add(32 * v) as *const _) };
                for p in 0..P {
                    acc[p][i] = _mm512_dpwssd_epi32(acc[p][i], wv, xs[p]);
                }
            }
        }
        for (i, w) in wide.iter_mut().enumerate() {
            let mut t = widen(acc[0][i]);
            if P == 2 {
                t = _mm512_add_epi64(_mm512_slli_epi64::<8>(t), widen(acc[P - 1][i]));
            }
            *w = _mm512_add_epi64(*w, t);
        }
        v0 = v1;
    }
    std::array::from_fn(|i| {
        let mut lanes = [0i64; 8];
        // SAFETY: 8 i64 lanes into an 8-element array.
        unsafe { _mm512_storeu_si512(lanes.as_mut_ptr() as *mut _, wide[i]) };
        lanes.iter().sum()
    })
}

/// `wide[0..4] += ` the i64 of outputs 0-3, 4-7, 8-11, 12-15 held as madd
/// halves `lo` (0-3 | 8-11) and `hi` (4-7 | 12-15).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn widen_add(
    wide: &mut [std::arch::x86_64::__m256i; 4],
    lo: std::arch::x86_64::__m256i,
    hi: std::arch::x86_64::__m256i,
) {
    use std::arch::x86_64::*;
    let parts = [
        _mm256_castsi256_si128(lo),
        _mm256_castsi256_si128(hi),
        _mm256_extracti128_si256::<1>(lo),
        _mm256_extracti128_si256::<1>(hi),
    ];
    for (w, p) in wide.iter_mut().zip(parts) {
        *w = _mm256_add_epi64(*w, _mm256_cvtepi32_epi64(p));
    }
}

/// `acc[i] += w0[i] * x0 + w1[i] * x1` over the common length, exactly: two
/// inputs of a PE's piece at once. Each pair sum `w0 x0 + w1 x1` fits `i32`
/// unless both inputs are -2^15 (then it can reach 2^31), so under AVX2
/// one `vpmaddwd` per 8 outputs computes it exactly, widened to `i64` at
/// once; the (-2^15, -2^15) pair and CPUs without AVX2 take the plain loop.
pub fn axpy2_i64(acc: &mut [i64], w0: &[i16], w1: &[i16], x0: i16, x1: i16) {
    let n = acc.len().min(w0.len()).min(w1.len());
    let (acc, w0, w1) = (&mut acc[..n], &w0[..n], &w1[..n]);
    #[cfg(target_arch = "x86_64")]
    if !(x0 == i16::MIN && x1 == i16::MIN) && std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2, checked just above.
        unsafe { axpy2_i64_avx2(acc, w0, w1, x0, x1) };
        return;
    }
    axpy2_i64_portable(acc, w0, w1, x0, x1);
}

fn axpy2_i64_portable(acc: &mut [i64], w0: &[i16], w1: &[i16], x0: i16, x1: i16) {
    for ((a, &p), &q) in acc.iter_mut().zip(w0).zip(w1) {
        *a += i64::from(p) * i64::from(x0) + i64::from(q) * i64::from(x1);
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn axpy2_i64_avx2(acc: &mut [i64], w0: &[i16], w1: &[i16], x0: i16, x1: i16) {
    use std::arch::x86_64::*;
    let pair = _mm256_set1_epi32((u32::from(x0 as u16) | u32::from(x1 as u16) << 16) as i32);
    let n = acc.len();
    let mut i = 0;
    while i + 16 <= n {
        // SAFETY: i + 16 <= n, the common length of the three slices.
        unsafe {
            let a = _mm256_loadu_si256(w0.as_ptr().add(i) as *const __m256i);
            let b = _mm256_loadu_si256(w1.as_ptr().add(i) as *const __m256i);
            // Per 128-bit lane: outputs 0-3 / 8-11 (lo) and 4-7 / 12-15 (hi).
            let lo = _mm256_madd_epi16(_mm256_unpacklo_epi16(a, b), pair);
            let hi = _mm256_madd_epi16(_mm256_unpackhi_epi16(a, b), pair);
            let parts = [
                (0, _mm256_castsi256_si128(lo)),
                (4, _mm256_castsi256_si128(hi)),
                (8, _mm256_extracti128_si256::<1>(lo)),
                (12, _mm256_extracti128_si256::<1>(hi)),
            ];
            for (off, v) in parts {
                let o = acc.as_mut_ptr().add(i + off) as *mut __m256i;
                _mm256_storeu_si256(
                    o,
                    _mm256_add_epi64(_mm256_loadu_si256(o), _mm256_cvtepi32_epi64(v)),
                );
            }
        }
        i += 16;
    }
    axpy2_i64_portable(&mut acc[i..], &w0[i..], &w1[i..], x0, x1);
}

#[cfg(test)]
mod tests {
    use super::*;

    use proptest::prelude::*;

    /// The plain loop: exact `i64` sums.
    fn plain(w: &[i16], k: usize, panel: &PairPanel) -> Vec<i64> {
        let mut out = vec![0i64; w.len() / k.max(1) * panel.stride()];
        for (r, row) in w.chunks_exact(k.max(1)).enumerate() {
            for j in 0..panel.width() {
                out[r * panel.stride() + j] = (0..k)
                    .map(|t| i64::from(row[t]) * i64::from(panel.get(t, j)))
                    .sum();
            }
        }
        out
    }

    /// Operands at the extremes of `bits`-bit signed values, or random.
    fn operand(bits: u32) -> impl Strategy<Value = i16> {
        let max = (1i32 << (bits - 1)) - 1;
        let min = -(1i32 << (bits - 1));
        prop_oneof![
            Just(min as i16),
            Just(max as i16),
            Just(0i16),
            (min..=max).prop_map(|v| v as i16),
        ]
    }

    fn case() -> impl Strategy<Value = (usize, usize, Vec<i16>, Vec<i16>)> {
        (2u32..=16, 2u32..=16, 1usize..40, 1usize..7, 1usize..40).prop_flat_map(
            |(xb, wb, k, rows, width)| {
                (
                    Just(k),
                    Just(width),
                    proptest::collection::vec(operand(wb), rows * k),
                    proptest::collection::vec(operand(xb), k * width),
                )
            },
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]
        /// Blocked `i32` sums, dispatched and portable, equal the plain
        /// `i64` loop for random widths, lengths and extreme values; where
        /// no block fits `i32` the caller's fallback applies (None).
        #[test]
        fn blocked_sums_equal_the_plain_loop((k, width, w, x) in case()) {
            let mut panel = PairPanel::zeros(k, width);
            for t in 0..k {
                panel.set_row(t, x[t * width..(t + 1) * width].iter().copied());
            }
            let max_x = x.iter().map(|&v| i64::from(v).abs()).max().unwrap_or(0);
            let want = plain(&w, k, &panel);
            match pair_block_len(&w, k, max_x) {
                Some(b) => {
                    let mut fast = vec![0i64; want.len()];
                    gemm_pairs(&w, k, &panel, b, &mut fast);
                    prop_assert_eq!(&fast, &want);
                    let mut port = vec![0i64; want.len()];
                    gemm_pairs_portable(&PairWeights::new(&w, k).packed, k.div_ceil(2), &panel, b, &mut port);
                    prop_assert_eq!(&port, &want);
                    for (r, row) in w.chunks_exact(k).enumerate() {
                        let col: Vec<i16> = (0..k).map(|t| panel.get(t, 0)).collect();
                        let want = want[r * panel.stride()];
                        prop_assert_eq!(dot_pairs(row, &col, b), want);
                        prop_assert_eq!(dot_pairs_portable(row, &col, b), want);
                    }
                }
                None => {
                    // Only operands whose single pair can leave i32 refuse
                    // (pairs are taken within each row of k weights).
                    let worst = w.chunks_exact(k).flat_map(|row| row.chunks(2)).map(|p| p.iter().map(|&v| i64::from(v).abs()).sum::<i64>()).max().unwrap_or(0);
                    prop_assert!(max_x * worst > i64::from(i32::MAX));
                }
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]
        /// Blocks bounded by the panel's signed range
        /// (`block_pairs_in`): inputs as drawn, non-negative (after a
        /// ReLU) or non-positive, extremes included, sum exactly; the
        /// blocks are never shorter than the magnitude bound's.
        #[test]
        fn range_bounded_blocks_equal_the_plain_loop((k, width, w, x) in case(), sign in 0u8..3) {
            let x: Vec<i16> = x
                .iter()
                .map(|&v| match sign {
                    1 => v.saturating_abs(),
                    2 => -v.saturating_abs(),
                    _ => v,
                })
                .collect();
            let mut panel = PairPanel::zeros(k, width);
            for t in 0..k {
                panel.set_row(t, x[t * width..(t + 1) * width].iter().copied());
            }
            let lo = x.iter().map(|&v| i64::from(v)).min().unwrap_or(0).min(0);
            let hi = x.iter().map(|&v| i64::from(v)).max().unwrap_or(0).max(0);
            let weights = PairWeights::new(&w, k);
            let want = plain(&w, k, &panel);
            let by_magnitude = weights.block_pairs(lo.abs().max(hi));
            match weights.block_pairs_in(lo, hi) {
                Some(b) => {
                    prop_assert!(by_magnitude.is_none_or(|m| m <= b));
                    let mut fast = vec![0i64; want.len()];
                    weights.gemm(0..weights.rows(), &panel, b, &mut fast);
                    prop_assert_eq!(&fast, &want);
                    let mut port = vec![0i64; want.len()];
                    gemm_pairs_portable(&weights.packed, k.div_ceil(2), &panel, b, &mut port);
                    prop_assert_eq!(&port, &want);
                }
                None => {
                    // Only a single pair whose range leaves i32 refuses.
                    prop_assert!(by_magnitude.is_none());
                    let out = w.chunks_exact(k).flat_map(|row| row.chunks(2)).any(|p| {
                        let pos: i64 = p.iter().map(|&v| i64::from(v).max(0)).sum();
                        let neg: i64 = p.iter().map(|&v| (-i64::from(v)).max(0)).sum();
                        pos * hi - neg * lo > i64::from(i32::MAX)
                            || pos * lo - neg * hi < i64::from(i32::MIN)
                    });
                    prop_assert!(out);
                }
            }
        }
    }

    /// Weights of both signs against non-negative inputs: the signed
    /// bound allows blocks twice as long as `max|x| sum|w|` does, and the
    /// sums stay exact with each block near `i32::MAX`.
    #[test]
    fn non_negative_inputs_allow_twice_the_block() {
        let k = 256;
        let w: Vec<i16> = (0..k)
            .map(|t| if t % 2 == 0 { 1000 } else { -1000 })
            .collect();
        let weights = PairWeights::new(&w, k);
        assert_eq!(weights.block_pairs(32767), Some(32));
        assert_eq!(weights.block_pairs_in(0, 32767), Some(64));
        let mut panel = PairPanel::zeros(k, 1);
        for t in 0..k {
            panel.set_row(t, std::iter::once(if t % 2 == 0 { 32767 } else { 0 }));
        }
        let mut out = vec![0i64; panel.stride()];
        weights.gemm(0..1, &panel, 64, &mut out);
        // 128 positive products of 1000 x 32767; each block of 64 pairs
        // sums 2,097,088,000 (i32::MAX is 2,147,483,647).
        assert_eq!(out[0], 128 * 1000 * 32767);
    }

    proptest! {
        /// Two inputs at once equal the plain loop, extremes included.
        #[test]
        fn pair_axpy_equals_the_plain_loop(
            w0 in proptest::collection::vec(operand(16), 0..40),
            w1 in proptest::collection::vec(operand(16), 40),
            x0 in operand(16),
            x1 in operand(16),
        ) {
            let n = w0.len();
            let mut fast: Vec<i64> = (0..n as i64).map(|i| i * 1_000_003 - 7).collect();
            let mut plain = fast.clone();
            axpy2_i64(&mut fast, &w0, &w1[..n], x0, x1);
            for (o, a) in plain.iter_mut().enumerate() {
                *a += i64::from(w0[o]) * i64::from(x0) + i64::from(w1[o]) * i64::from(x1);
            }
            prop_assert_eq!(fast, plain);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]
        /// The matrix-vector product equals the plain loop, for inputs that
        /// bound long blocks and for full-scale ones (the byte split), with
        /// up to 11 low bits zero (divided by their power of two first).
        #[test]
        fn gemv_equals_the_plain_loop(
            (k, rows) in (1usize..300, 1usize..20),
            bits in 2u32..=16,
            zeros in 0u32..12,
            seed in any::<u64>(),
        ) {
            let mut state = seed | 1;
            let mut next = |b: u32| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                match state % 7 {
                    0 => i16::MIN,
                    1 => i16::MAX,
                    _ => ((state >> 20) as i16) >> (16 - b),
                }
            };
            let w: Vec<i16> = (0..rows * k).map(|_| next(16)).collect();
            let x: Vec<i16> = (0..k).map(|_| next(bits) & (-1i16 << zeros)).collect();
            let mut got = vec![7i64; rows];
            gemv_exact(&w, k, &x, &mut got);
            for (r, &g) in got.iter().enumerate() {
                prop_assert_eq!(g, dot_portable(0i64, &w[r * k..(r + 1) * k], &x));
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]
        /// Skipping the block search when `sum|x|` exceeds 8-pair blocks'
        /// bound ([`GemvInput::new`]) decides as the search does: the same
        /// block or byte split, for sparse and dense inputs of any width
        /// around the bound.
        #[test]
        fn the_sum_test_keeps_the_block_decision(
            k in 1usize..400,
            bits in 1u32..=16,
            dense in 0u32..=8,
            seed in any::<u64>(),
        ) {
            let mut state = seed | 1;
            let x: Vec<i16> = (0..k)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    if state % 8 >= u64::from(dense) {
                        0
                    } else {
                        ((state >> 20) as i16) >> (16 - bits)
                    }
                })
                .collect();
            let input = GemvInput::new(&x);
            let searched = pair_block_len(&input.x, k, 1 << 15).filter(|&b| b >= 8);
            prop_assert_eq!(input.block, searched);
        }
    }

    #[test]
    fn byte_split_blocks_hold_the_extremes() {
        // The most negative weights against inputs whose low byte is 255:
        // every i32 lane's block of 128 pairs is at its bound, in two and a
        // bit blocks, for 8-row groups and the rows after them.
        let k = 32 * 260 + 5;
        let rows = 11;
        let w = vec![i16::MIN; rows * k];
        for x in [-32513i16, 32767, i16::MIN] {
            let x = vec![x; k];
            let mut got = vec![0i64; rows];
            gemv_exact(&w, k, &x, &mut got);
            let want = dot_portable(0i64, &w[..k], &x);
            assert_eq!(want, -32768 * i64::from(x[0]) * k as i64);
            assert!(got.iter().all(|&g| g == want), "{got:?} {want}");
        }
    }

    #[test]
    fn full_16_bit_extremes_sum_exactly_in_short_blocks() {
        // -32768 * -32768 twice is 2^31: vpmaddwd wraps it, the block of one
        // pair is refused, so callers fall back; 2^15 - 1 operands fit one pair.
        let w = vec![i16::MIN; 6];
        assert_eq!(pair_block_len(&w, 6, 32768), None);
        // (2^15 - 1) * 2 (2^15 - 1) < 2^31: one pair fits, two do not.
        let w = vec![i16::MAX; 6];
        let x = [i16::MAX; 6 * 3];
        let max_x = i64::from(i16::MAX);
        assert_eq!(pair_block_len(&w, 6, max_x), Some(1));
        let w = vec![16383i16; 64];
        assert_eq!(pair_block_len(&w, 64, max_x), Some(2));
        let mut panel = PairPanel::zeros(64, 3);
        for t in 0..64 {
            panel.set_row(t, x.iter().copied().take(3));
        }
        let mut out = vec![0i64; panel.stride()];
        gemm_pairs(&w, 64, &panel, 2, &mut out);
        assert_eq!(out[0], 64 * 16383 * 32767);
        assert_eq!(out[2], 64 * 16383 * 32767);
        assert_eq!(out[3], 0);
    }

    #[test]
    fn dispatched_and_portable_loops_agree() {
        let x: Vec<i16> = (0..1000).map(|i| ((i * 7919) % 511 - 255) as i16).collect();
        let w: Vec<i16> = (0..1000)
            .map(|i| ((i * 104_729) % 255 - 127) as i16)
            .collect();
        let mut fast = vec![3i32; 1000];
        let mut plain = fast.clone();
        axpy(&mut fast, -77, &x);
        axpy_portable(&mut plain, -77, &x);
        assert_eq!(fast, plain);
        assert_eq!(fast[10], 3 - 77 * i32::from(x[10]));
        let expected: i64 = w
            .iter()
            .zip(&x)
            .map(|(&a, &b)| i64::from(a) * i64::from(b))
            .sum();
        assert_eq!(i64::from(dot(0i32, &w, &x)), expected);
        assert_eq!(dot(0i64, &w, &x), expected);
        assert_eq!(dot(0.0f64, &w, &x), expected as f64);
    }
}
