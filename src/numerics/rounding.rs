//! Rounding rules for dividing integers by powers of two.
//!
//! Hardware drops low bits with a shifter; how it treats the dropped bits is
//! a design choice that changes results by one LSB. accsim makes the rule an
//! explicit, named parameter (docs/numerics.md lists them) instead of letting
//! each engine pick its own.

use serde::{Deserialize, Serialize};

/// How a right shift by `s` bits rounds `x / 2^s` to an integer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Rounding {
    /// Round to nearest, ties towards +infinity: `(x + 2^(s-1)) >> s`.
    /// One adder in hardware; the default for dynamic fixed point.
    #[default]
    HalfUp,
    /// Round to nearest, ties to the even neighbour (IEEE default, ONNX).
    HalfEven,
    /// Round to nearest, ties away from zero (C `round`, TFLite pooling).
    HalfAwayFromZero,
    /// Truncate towards -infinity: a bare arithmetic shift, no adder.
    Floor,
}

impl Rounding {
    /// Name used in workload files and reports.
    pub fn name(self) -> &'static str {
        match self {
            Rounding::HalfUp => "half_up",
            Rounding::HalfEven => "half_even",
            Rounding::HalfAwayFromZero => "half_away_from_zero",
            Rounding::Floor => "floor",
        }
    }
}

/// `x / 2^shift` rounded by `rule`. `shift` may be 0 (exact) up to 62.
///
/// Works on the full `i64` range: the rounding increment is added only after
/// the shift, so no intermediate overflows.
pub fn shift_right_rounded(x: i64, shift: u32, rule: Rounding) -> i64 {
    if shift == 0 {
        return x;
    }
    let shift = shift.min(62);
    let floor = x >> shift;
    let remainder = x - (floor << shift); // in [0, 2^shift)
    let half = 1i64 << (shift - 1);
    let round_up = match rule {
        Rounding::Floor => false,
        Rounding::HalfUp => remainder >= half,
        Rounding::HalfEven => remainder > half || (remainder == half && floor & 1 == 1),
        Rounding::HalfAwayFromZero => remainder > half || (remainder == half && x >= 0),
    };
    floor + i64::from(round_up)
}

/// `numerator / denominator` (denominator > 0) rounded by `rule`.
pub fn divide_rounded(numerator: i64, denominator: i64, rule: Rounding) -> i64 {
    debug_assert!(denominator > 0);
    let floor = numerator.div_euclid(denominator);
    let remainder = numerator.rem_euclid(denominator); // in [0, denominator)
    let twice = 2 * remainder;
    let round_up = match rule {
        Rounding::Floor => false,
        Rounding::HalfUp => twice >= denominator,
        Rounding::HalfEven => twice > denominator || (twice == denominator && floor & 1 == 1),
        Rounding::HalfAwayFromZero => {
            twice > denominator || (twice == denominator && numerator >= 0)
        }
    };
    floor + i64::from(round_up)
}

/// Rounds a float to the nearest integer, ties to even (IEEE 754
/// roundTiesToEven, as ONNX QuantizeLinear and QLinearConv specify).
pub fn round_half_even_f64(x: f64) -> f64 {
    x.round_ties_even()
}

/// Clamps `x` to the range `[lo, hi]` of a signed integer of `bits` bits.
pub fn saturate_to_bits(x: i64, bits: u32) -> i64 {
    let bits = bits.clamp(2, 64);
    if bits == 64 {
        return x;
    }
    let hi = (1i64 << (bits - 1)) - 1;
    let lo = -(1i64 << (bits - 1));
    x.clamp(lo, hi)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ties_follow_each_rule() {
        // 5/2 = 2.5, -5/2 = -2.5, 3/2 = 1.5, -3/2 = -1.5
        let cases = [
            (Rounding::HalfUp, [3, -2, 2, -1]),
            (Rounding::HalfEven, [2, -2, 2, -2]),
            (Rounding::HalfAwayFromZero, [3, -3, 2, -2]),
            (Rounding::Floor, [2, -3, 1, -2]),
        ];
        for (rule, expect) in cases {
            let got = [5, -5, 3, -3].map(|x| shift_right_rounded(x, 1, rule));
            assert_eq!(got, expect, "{rule:?}");
            let got = [5, -5, 3, -3].map(|x| divide_rounded(x, 2, rule));
            assert_eq!(got, expect, "{rule:?} divide");
        }
    }

    #[test]
    fn non_ties_round_to_nearest() {
        for rule in [
            Rounding::HalfUp,
            Rounding::HalfEven,
            Rounding::HalfAwayFromZero,
        ] {
            assert_eq!(shift_right_rounded(7, 2, rule), 2); // 1.75
            assert_eq!(shift_right_rounded(-7, 2, rule), -2); // -1.75
            assert_eq!(shift_right_rounded(5, 2, rule), 1); // 1.25
            assert_eq!(shift_right_rounded(-5, 2, rule), -1);
            assert_eq!(divide_rounded(10, 3, rule), 3);
            assert_eq!(divide_rounded(-10, 3, rule), -3);
        }
    }

    #[test]
    fn extremes_do_not_overflow() {
        assert_eq!(shift_right_rounded(i64::MAX, 1, Rounding::HalfUp), 1 << 62);
        assert_eq!(
            shift_right_rounded(i64::MIN, 1, Rounding::HalfUp),
            -(1 << 62)
        );
        assert_eq!(saturate_to_bits(1 << 40, 32), i64::from(i32::MAX));
        assert_eq!(saturate_to_bits(-(1 << 40), 32), i64::from(i32::MIN));
        assert_eq!(saturate_to_bits(-32768, 16), -32768);
        assert_eq!(saturate_to_bits(40000, 16), 32767);
    }
}
