//! The float32 power ONNX Runtime's CPU LRN takes (`y = x * scale^-beta`,
//! `core/providers/cpu/nn/lrn.cc`): Eigen's `ArrayBase::pow(scalar)` over
//! the flattened tensor, compiled for SSE2 without fused multiply-adds
//! (docs/onnx.md, the LRN item; scripts/ort_lrn_probe.py reproduces
//! ONNX Runtime's outputs with it bit for bit).
//!
//! Every whole packet of four elements, counted from element 0, takes the
//! packet path ([`packet_pow`]); the last `N mod 4` take the C library's
//! `powf` ([`lrn_power`]). The packet path for a non-integer exponent `y`
//! computes `x^y = 2^(y log2 x)` in float32 steps, each rounded once:
//!
//! 1. `x = m 2^e` with `m` in `[sqrt(1/2), sqrt(2))`;
//! 2. `log2 m` as a double word `(hi, lo)`: a degree-8 polynomial in
//!    `t = m - 1` by Horner's rule, then its last two coefficients and the
//!    final product by `t` in double-word arithmetic;
//! 3. `f = y e + y log2 m` in double words (Dekker products: with no fused
//!    multiply-add each factor is split into halves by Veltkamp's
//!    2^12 + 1);
//! 4. `f = n + r` with `n` an integer (rounded half away from zero, twice)
//!    and `|r| <= 1/2`;
//! 5. `2^r = exp(hi) (1 + lo)` with `(hi, lo) = ln2 * r` exact, `exp` by
//!    Eigen's float `pexp` (range reduction by ln 2 in two parts, a degree-6
//!    polynomial);
//! 6. `2^r 2^n` by multiplying by powers of two (one when `|n| <= 126`,
//!    four otherwise, so that the product under- or overflows only once);
//! 7. `x <= 0`, `x = 0`, infinite `x` and `x = 1` set as Eigen does
//!    (`handle_nonint_nonint_errors`).
//!
//! An integer exponent in `[-3, 7]` is repeated squaring of `x` (of `1 / x`
//! when negative); other integer exponents take step 1-6 on `|x|` with
//! Eigen's `generic_pow` rules for signs, zeros and infinities.

/// Elements per packet (SSE2: four float32 lanes).
pub const PACKET_ELEMENTS: usize = 4;

/// The power of element `flat` of a tensor of `total` elements, as ONNX
/// Runtime's LRN computes it: the packet path for whole packets, `powf`
/// for the tail.
pub fn lrn_power(x: f32, exponent: f32, flat: usize, total: usize) -> f32 {
    if flat >= total - total % PACKET_ELEMENTS {
        x.powf(exponent)
    } else {
        packet_pow(x, exponent)
    }
}

/// Eigen's packet `pow(x, y)` for a scalar exponent (`unary_pow_impl`).
pub fn packet_pow(x: f32, y: f32) -> f32 {
    if y.is_finite() && y.round() == y {
        if (-3.0..=7.0).contains(&y) {
            return int_pow(x, y as i32);
        }
        return generic_int_pow(x, y);
    }
    non_integer_pow(x, y)
}

/// Step 7 around steps 1-6 for a non-integer (or non-finite) exponent,
/// in Eigen's order of overrides.
fn non_integer_pow(x: f32, y: f32) -> f32 {
    let mut p = pow_positive(x, y);
    if x <= 0.0 {
        p = f32::from_bits(u32::MAX);
    }
    if x == 0.0 || (x.abs() <= 1.0 && y.is_infinite()) {
        p = if y < 0.0 { f32::INFINITY } else { 0.0 };
    }
    if x.abs() == f32::INFINITY || (x.abs() >= 1.0 && y.is_infinite()) {
        p = if y > 0.0 { f32::INFINITY } else { 0.0 };
    }
    if y.is_nan() {
        p = f32::from_bits(u32::MAX);
    }
    if x.abs() == 1.0 && (y.is_infinite() || x >= 0.0) {
        p = 1.0;
    }
    p
}

/// Repeated squaring (`unary_pow::int_pow`).
fn int_pow(x: f32, n: i32) -> f32 {
    if n == 0 {
        return 1.0;
    }
    let mut base = if n < 0 { 1.0 / x } else { x };
    let mut acc = 1.0f32;
    let mut m = n.unsigned_abs();
    while m > 1 {
        if m % 2 == 1 {
            acc *= base;
        }
        base *= base;
        m /= 2;
    }
    acc * base
}

/// Eigen's `generic_pow` for an integer exponent outside `[-3, 7]`.
fn generic_int_pow(x: f32, y: f32) -> f32 {
    let odd = (y * 0.5).round() != y * 0.5;
    let mut p = pow_positive(x.abs(), y);
    if x == 0.0 {
        p = if y < 0.0 { f32::INFINITY } else { 0.0 };
    }
    if x.is_sign_negative() && odd {
        p = -p;
    }
    // The smallest exponent whose power of (1 + epsilon) overflows.
    let huge = 128.0 * std::f32::consts::LN_2 / f32::EPSILON;
    if y.abs() >= huge {
        let negative = y < 0.0;
        p = if (negative && x == 0.0) || (negative != (x.abs() > 1.0)) {
            f32::INFINITY
        } else {
            0.0
        };
        if x == -1.0 {
            p = 1.0;
        }
    }
    if x.is_infinite() {
        let positive = if y < 0.0 { 0.0 } else { f32::INFINITY };
        p = if x < 0.0 && odd { -positive } else { positive };
    }
    if x.is_nan() {
        p = f32::NAN;
    }
    if x == 1.0 { 1.0 } else { p }
}

/// Steps 1-6 (`generic_pow_impl`); meaningful for positive finite `x`.
fn pow_positive(x: f32, y: f32) -> f32 {
    let (mut m, mut e) = frexp(x);
    if m < f32::from_bits(SQRT_HALF_BITS) {
        m *= 2.0;
        e -= 1.0;
    }
    let log2_m = log2_double_word(m);
    let f1 = two_prod(e, y);
    let f2 = log2_m.times(y);
    let f = f1.plus(f2);
    let (n, r) = split_integer(f.hi);
    let (n_r, r) = split_integer(r + f.lo);
    let n = n + n_r;
    ldexp(exp2_small(r), n)
}

/// `sqrt(1/2)` as Eigen's float constant.
const SQRT_HALF_BITS: u32 = 0x3f35_04f3;

/// A double-word float32 number `hi + lo`, `|lo| <= ulp(hi) / 2`.
#[derive(Debug, Clone, Copy, PartialEq)]
struct DoubleWord {
    hi: f32,
    lo: f32,
}

/// `x + y` as `(s, error)` exactly, for `|x| >= |y|`.
fn fast_two_sum(x: f32, y: f32) -> DoubleWord {
    let hi = x + y;
    DoubleWord {
        hi,
        lo: y - (hi - x),
    }
}

/// Veltkamp's split of `x` into halves of its significand.
fn split(x: f32) -> (f32, f32) {
    let gamma = 4097.0 * x;
    let hi = (x - gamma) + gamma;
    (hi, x - hi)
}

/// Dekker's exact product `x * y = hi + lo` (no fused multiply-add: the
/// four partial products each rounded, then added).
fn two_prod(x: f32, y: f32) -> DoubleWord {
    let (xh, xl) = split(x);
    let (yh, yl) = split(y);
    let hi = x * y;
    let mut lo = xh * yh + -hi;
    lo += xh * yl;
    lo += xl * yh;
    lo += xl * yl;
    DoubleWord { hi, lo }
}

impl DoubleWord {
    /// This plus `y` (`|self| >= |y|`).
    fn plus(self, y: DoubleWord) -> DoubleWord {
        let r = fast_two_sum(self.hi, y.hi);
        fast_two_sum(r.hi, (y.lo + r.lo) + self.lo)
    }

    /// This times the float `y`.
    fn times(self, y: f32) -> DoubleWord {
        let c = two_prod(self.hi, y);
        let t = fast_two_sum(c.hi, self.lo * y);
        fast_two_sum(t.hi, t.lo + c.lo)
    }
}

/// `x = m 2^e`, `m` in `[1/2, 1)` (`pfrexp_generic`; zero and non-finite
/// `x` give `(x, 0)`).
fn frexp(x: f32) -> (f32, f32) {
    let denormal = x.abs() < f32::MIN_POSITIVE;
    let normal = if denormal { x * 16_777_216.0 } else { x };
    let biased = ((normal.abs().to_bits() >> 23) as f32) + if denormal { -150.0 } else { -126.0 };
    if x == 0.0 || normal.abs().to_bits() >> 23 == 255 {
        return (x, 0.0);
    }
    let m = f32::from_bits((normal.to_bits() & 0x807f_ffff) | 0.5f32.to_bits());
    (m, biased)
}

/// The log2 polynomial's coefficients, highest degree first (float32).
const LOG2_POLY: [u32; 9] = [
    0x3dc6_ad9d,
    0xbe2d_0520,
    0x3e30_22f6,
    0xbe37_3785,
    0x3e51_f988,
    0xbe76_3cec,
    0x3e93_c02c,
    0xbeb8_aa48,
    0x3ef6_3840,
];
/// Its two lowest coefficients as double words `(hi, lo)` (bit patterns).
const LOG2_C1: (u32, u32) = (0xbf38_aa3b, 0xb1ae_22c6);
const LOG2_C0: (u32, u32) = (0x3fb8_aa3b, 0x32ac_c477);

/// `log2 m` for `m` in `[sqrt(1/2), sqrt(2))` as a double word.
fn log2_double_word(m: f32) -> DoubleWord {
    let t = m - 1.0;
    let p = LOG2_POLY[1..]
        .iter()
        .fold(f32::from_bits(LOG2_POLY[0]), |p, &c| {
            p * t + f32::from_bits(c)
        });
    let word = |(hi, lo): (u32, u32)| DoubleWord {
        hi: f32::from_bits(hi),
        lo: f32::from_bits(lo),
    };
    let q = word(LOG2_C1).plus(two_prod(t, p));
    let q = word(LOG2_C0).plus(q.times(t));
    q.times(t)
}

/// `x = n + r`, `n` rounded half away from zero (`pround`).
fn split_integer(x: f32) -> (f32, f32) {
    let n = x.round();
    (n, x - n)
}

/// `2^r` for `|r| <= 1/2` (`generic_exp2`): `exp(hi) (1 + lo)` with
/// `hi + lo = ln2 r` exactly.
fn exp2_small(r: f32) -> f32 {
    let p = two_prod(f32::from_bits(LN_2_BITS), r);
    exp_small(p.hi) * (1.0 + p.lo)
}

/// ln 2 as Eigen's float constant.
const LN_2_BITS: u32 = 0x3f31_7218;

/// Eigen's `pexp_float` constants (bit patterns of its float literals):
/// log2(e), ln 2 in two parts, and the polynomial's p2..p6.
const EXP_LOG2E: u32 = 0x3fb8_aa3b;
const EXP_LN2_HI: u32 = 0xbf31_8000;
const EXP_LN2_LO: u32 = 0x395e_8083;
const EXP_POLY: [u32; 5] = [
    0x3eff_fffc,
    0x3e2a_aa47,
    0x3d2a_adcc,
    0x3c09_1de6,
    0x3ab4_2872,
];

/// Eigen's `pexp_float` for `|x| <= 87` (the only range [`exp2_small`]
/// gives it).
fn exp_small(x: f32) -> f32 {
    let c = |bits: u32| f32::from_bits(bits);
    let [p2, p3, p4, p5, p6] = EXP_POLY.map(c);
    let m = (x * c(EXP_LOG2E) + 0.5).floor();
    let r = m * c(EXP_LN2_HI) + x;
    let r = m * c(EXP_LN2_LO) + r;
    let r2 = r * r;
    let even = r2 * p6 + p4;
    let odd = r2 * p5 + p3;
    let even = r2 * even + p2;
    let y = r2 * (r * odd + even) + (r + 1.0);
    ldexp_fast(y, m).max(x)
}

/// `a 2^n` for an integer `n` whose power of two is a normal float
/// (`pldexp_fast`: the biased exponent clamped to `[0, 255]`).
fn ldexp_fast(a: f32, n: f32) -> f32 {
    let biased = (n + 127.0).clamp(0.0, 255.0) as u32;
    a * f32::from_bits(biased << 23)
}

/// `a 2^n` for any integer `n` (`pldexp`): `|n| <= 126` by one power of
/// two, otherwise by four, `n` clamped to `[-278, 278]`.
fn ldexp(a: f32, n: f32) -> f32 {
    if n.abs() <= 126.0 {
        return ldexp_fast(a, n);
    }
    let e = n.clamp(-278.0, 278.0) as i32;
    let b = e >> 2;
    let two_to = |k: i32| f32::from_bits(((k + 127) as u32) << 23);
    a * two_to(b) * two_to(b) * two_to(b) * two_to(e - 3 * b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    // Eigen's literals verbatim, longer than a float32 needs.
    #[allow(clippy::excessive_precision)]
    fn the_constants_are_eigens_decimal_literals_rounded_to_float32() {
        // Eigen writes them as double literals; each is a float32 exactly.
        let poly: [f64; 9] = [
            9.7010828554630279541015625e-02,
            -1.6896486282348632812500000e-01,
            1.7200836539268493652343750e-01,
            -1.7892272770404815673828125e-01,
            2.0505344867706298828125000e-01,
            -2.4046677350997924804687500e-01,
            2.8857553005218505859375000e-01,
            -3.6067414283752441406250000e-01,
            4.8089790344238281250000000e-01,
        ];
        for (&bits, &v) in LOG2_POLY.iter().zip(&poly) {
            assert_eq!(f32::from_bits(bits) as f64, v);
        }
        let k_c0 = 1.442695041742110273474963832995854318141937255859375f64;
        let k_c1 = -7.2134751588268664068692714863573201000690460205078125e-01f64;
        for ((hi, lo), k) in [(LOG2_C0, k_c0), (LOG2_C1, k_c1)] {
            let h = k as f32;
            assert_eq!(hi, h.to_bits());
            assert_eq!(lo, ((k - h as f64) as f32).to_bits());
        }
        assert_eq!(
            SQRT_HALF_BITS,
            (std::f64::consts::FRAC_1_SQRT_2 as f32).to_bits()
        );
        assert_eq!(LN_2_BITS, (std::f64::consts::LN_2 as f32).to_bits());
    }

    #[test]
    fn two_prod_is_exact() {
        for (x, y) in [
            (1.1f32, 3.3f32),
            (-7.25e-3, 1.0e7),
            (0.75, -0.75),
            (1.0e-20, 3.0e-9),
        ] {
            let p = two_prod(x, y);
            assert_eq!(p.hi as f64 + p.lo as f64, x as f64 * y as f64);
        }
    }

    #[test]
    fn special_values_follow_eigen() {
        let b = -0.75;
        assert_eq!(packet_pow(1.0, b), 1.0);
        assert_eq!(packet_pow(0.0, b), f32::INFINITY);
        assert_eq!(packet_pow(f32::INFINITY, b), 0.0);
        assert_eq!(packet_pow(-2.0, b).to_bits(), u32::MAX);
        // Exact powers of two: 16^-0.75 = 1/8, 2^-24 ^ -0.75 = 2^18.
        assert_eq!(packet_pow(16.0, b), 0.125);
        assert_eq!(packet_pow(2f32.powi(-24), b), 262_144.0);
        // Integer exponents: repeated squaring of the rounded 1/3 (so not
        // the float nearest 1/9), then generic_pow.
        let third = 1.0f32 / 3.0;
        assert_eq!(packet_pow(3.0, -2.0), third * third);
        assert_ne!(third * third, 1.0 / 9.0);
        assert_eq!(packet_pow(0.0, -4.0), f32::INFINITY);
        assert_eq!(packet_pow(2.0, -4.0), 0.0625);
        // Underflow through the four-factor ldexp: (2^100)^-2.5 = 2^-250.
        assert_eq!(packet_pow(2f32.powi(100), -2.5), 0.0);
        assert_eq!(packet_pow(2f32.powi(-100), -1.5), f32::INFINITY);
    }

    #[test]
    fn the_tail_of_a_tensor_takes_powf() {
        // 10 elements: 0..8 in whole packets, 8 and 9 the tail.
        let x = 2.273_161f32;
        assert_eq!(lrn_power(x, -0.75, 9, 10), x.powf(-0.75));
        assert_eq!(lrn_power(x, -0.75, 7, 10), packet_pow(x, -0.75));
        assert_eq!(lrn_power(x, -0.75, 0, 3), x.powf(-0.75));
    }
}
