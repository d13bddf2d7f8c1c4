//! Signed-digit recoding of fixed weights, and multiplication by shifts and
//! adds (SPEC section 3: every weight of the FFE is a hard-wired shift-add
//! scaler whose cost is its number of non-zero digits).
//!
//! A weight `w` becomes a list of digits `d_i = ±2^s_i` with `w = Σ d_i`;
//! the scaler computes `w · x = Σ ±(x << s_i)`, one adder input per digit.
//! Two encodings:
//!
//! - [`DigitEncoding::Csd`], canonical signed digit (the non-adjacent form,
//!   NAF): no two adjacent digits are non-zero, and no signed-digit form of
//!   `w` has fewer non-zero digits (Reitwiesner 1960). `7 = 8 - 1` costs two
//!   digits where binary needs three; an n-bit weight has at most
//!   `ceil((n + 1) / 2)` digits and about `n / 3` on average.
//! - [`DigitEncoding::Binary`], sign-magnitude binary: the set bits of `|w|`,
//!   all with the sign of `w` (a negative weight's scaler adds `-(x << s)`;
//!   the negation folds into the adder tree). Its cost is the Hamming weight
//!   of `|w|`, FIXYNN's plain count.
//!
//! Zero has no digits: a pruned weight costs nothing.

/// How a fixed weight is split into shifted copies of the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum DigitEncoding {
    /// Canonical signed digit (non-adjacent form): the fewest digits.
    #[default]
    Csd,
    /// Sign-magnitude binary: one digit per set bit of `|w|`.
    Binary,
}

impl DigitEncoding {
    pub fn name(self) -> &'static str {
        match self {
            DigitEncoding::Csd => "csd",
            DigitEncoding::Binary => "binary",
        }
    }
}

/// One non-zero digit: `±2^shift`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Digit {
    /// Left shift applied to the input, in bits.
    pub shift: u8,
    /// True for `-2^shift`.
    pub negative: bool,
}

impl Digit {
    /// The digit's value, `±2^shift`.
    pub fn value(self) -> i64 {
        let v = 1i64 << self.shift;
        if self.negative { -v } else { v }
    }
}

/// The non-zero digits of `w`, least significant first.
///
/// `w` is at most 63 bits wide in magnitude, which every weight type
/// accsim supports (int8, int16) satisfies with room to spare.
pub fn digits(w: i64, encoding: DigitEncoding) -> Vec<Digit> {
    let mut out = Vec::new();
    match encoding {
        DigitEncoding::Csd => {
            // Non-adjacent form: when n is odd, take the digit d = 2 - (n mod 4)
            // (+1 when n = 1 mod 4, -1 when n = 3 mod 4), so n - d is a
            // multiple of 4 and the next digit is zero.
            let mut n = i128::from(w);
            let mut shift = 0u8;
            while n != 0 {
                if n & 1 == 1 {
                    let d: i128 = 2 - n.rem_euclid(4);
                    out.push(Digit {
                        shift,
                        negative: d < 0,
                    });
                    n -= d;
                }
                n >>= 1;
                shift += 1;
            }
        }
        DigitEncoding::Binary => {
            let negative = w < 0;
            let mut m = w.unsigned_abs();
            let mut shift = 0u8;
            while m != 0 {
                if m & 1 == 1 {
                    out.push(Digit { shift, negative });
                }
                m >>= 1;
                shift += 1;
            }
        }
    }
    out
}

/// Number of non-zero digits of `w`: the cost of its scaler in adder inputs.
pub fn digit_count(w: i64, encoding: DigitEncoding) -> u32 {
    match encoding {
        DigitEncoding::Binary => w.unsigned_abs().count_ones(),
        // The non-zero NAF digits of n >= 0 sit where 3n and n differ
        // (shifted up one place): the closed form of `digits(..).len()`.
        // NAF(-n) = -NAF(n), so the magnitude decides.
        DigitEncoding::Csd => {
            let n = i128::from(w).unsigned_abs();
            ((3 * n) ^ n).count_ones()
        }
    }
}

/// The value the digits stand for.
pub fn value(digits: &[Digit]) -> i64 {
    digits.iter().map(|d| d.value()).sum()
}

/// `x · w` computed the way the scaler does it: the sum of `±(x << shift)`
/// over the digits of `w`. Exact for every `x` and `w` whose product fits
/// `i64` (8- and 16-bit operands always do).
#[inline]
pub fn shift_add(x: i64, digits: &[Digit]) -> i64 {
    let mut sum = 0i64;
    for d in digits {
        let term = x << d.shift;
        if d.negative {
            sum -= term;
        } else {
            sum += term;
        }
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_csd_digit_counts() {
        // (weight, CSD digits, binary digits)
        let known = [
            (0, 0, 0),
            (1, 1, 1),
            (2, 1, 1),
            (3, 2, 2),    // 4 - 1
            (7, 2, 3),    // 8 - 1
            (11, 3, 3),   // 16 - 4 - 1
            (15, 2, 4),   // 16 - 1
            (23, 3, 4),   // 32 - 8 - 1
            (85, 4, 4),   // 1010101: already non-adjacent
            (127, 2, 7),  // 128 - 1
            (-128, 1, 1), // -2^7
            (-127, 2, 7),
            (-7, 2, 3),
            (239, 3, 7), // 256 - 16 - 1 (DeepFreeze README's x * 239 example)
            (0x5555, 8, 8),
            (32767, 2, 15),
            (-32768, 1, 1),
        ];
        for (w, csd, bin) in known {
            assert_eq!(digit_count(w, DigitEncoding::Csd), csd, "csd {w}");
            assert_eq!(digits(w, DigitEncoding::Csd).len() as u32, csd, "csd {w}");
            assert_eq!(digit_count(w, DigitEncoding::Binary), bin, "binary {w}");
            assert_eq!(
                digits(w, DigitEncoding::Binary).len() as u32,
                bin,
                "bin {w}"
            );
        }
        // 7 = 8 - 1: digits +2^3 and -2^0, least significant first.
        assert_eq!(
            digits(7, DigitEncoding::Csd),
            vec![
                Digit {
                    shift: 0,
                    negative: true
                },
                Digit {
                    shift: 3,
                    negative: false
                }
            ]
        );
    }

    #[test]
    fn every_int8_and_int16_weight_round_trips_and_csd_is_minimal_non_adjacent() {
        for w in i64::from(i16::MIN)..=i64::from(i16::MAX) {
            let csd = digits(w, DigitEncoding::Csd);
            let bin = digits(w, DigitEncoding::Binary);
            assert_eq!(value(&csd), w);
            assert_eq!(value(&bin), w);
            assert!(csd.len() <= bin.len(), "{w}");
            assert_eq!(csd.len() as u32, digit_count(w, DigitEncoding::Csd));
            // Non-adjacent: shifts of consecutive digits differ by at least 2.
            assert!(csd.windows(2).all(|p| p[1].shift >= p[0].shift + 2), "{w}");
        }
        // Average CSD weight of 8-bit magnitudes is about a third of the bits.
        let total: u32 = (-128i64..128)
            .map(|w| digit_count(w, DigitEncoding::Csd))
            .sum();
        let mean = f64::from(total) / 256.0;
        assert!((2.5..3.2).contains(&mean), "{mean}");
    }

    #[test]
    fn shift_add_multiplies_exhaustively_for_int8() {
        for w in -128i64..128 {
            for enc in [DigitEncoding::Csd, DigitEncoding::Binary] {
                let d = digits(w, enc);
                for x in -256i64..256 {
                    assert_eq!(shift_add(x, &d), x * w, "{x} * {w} ({enc:?})");
                }
            }
        }
    }
}
