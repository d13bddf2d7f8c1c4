//! PELUSO's variable-latency multi-precision MAC (SPEC section 2), bit by bit.
//!
//! ```text
//!   I (16 bit) ──split──► I^H (signed byte), I^L (unsigned byte) ──┐  sign-extend H / zero-extend L
//!   W (16 bit) ──split──► W^H (signed byte), W^L (unsigned byte) ──┤  per cycle (signed-I, signed-W)
//!                                                                  ▼
//!                                  9x9 signed multiplier (18-bit product)
//!                                                                  ▼
//!               accumulator, 2N+16 = 48 bits, saturating ◄── shifter (<< K between steps,
//!                                                                  │    << d to align reduced results)
//!                                                                  ▼
//!               + bias ──► output stage: programmable shift (radix point) + range check
//!                          (`requant::ChannelRequant`, the one output stage every engine uses)
//! ```
//!
//! A dot product `r` of inputs `I` and weights `W` runs PELUSO's Algorithm 1:
//! all `I^H * W^H` products, `r <<= K`, all `I^H * W^L` (returns here for I 8-bit
//! x W 16-bit), all `I^L * W^H`, `r <<= K`, all `I^L * W^L` (16x16). The I 16-bit x
//! W 8-bit mode swaps roles (`HH`, shift, `LH`); 8x8 returns after `HH`. The
//! number of multiply steps is the latency per MAC: 4 / 2 / 2 / 1 cycles.
//!
//! # What a reduced precision computes
//! The 8-bit view of a 16-bit word `x` is its high byte `x^H = x >> 8` (floor),
//! a value with fractional length `FL - 8`. Algorithm 1 in a reduced mode
//! returns `r` in units of `2^-(FL_I' + FL_W')`; the shifter then aligns it by
//! `d = 8 x (number of 8-bit operands)` bits, so the accumulator always holds
//! full-precision units `2^-(FL_I + FL_W)`, and bias and output stage are the
//! same for every precision. In closed form, the aligned result is
//! `sum reduce(I) * reduce(W)` where `reduce(x) = x` (16 bit) or
//! `x & !0xFF` (8 bit: the low byte cleared, i.e. `x` floored to a multiple of
//! 256). That closed form is [`product`] / [`dot_fast`]; [`dot_bit_level`] is
//! the decomposition; the tests prove them equal (exhaustively over 8-bit
//! operand pairs, by property tests over 16-bit operands).
//!
//! # Why the fast path is exact
//! Every partial sum of Algorithm 1 over at most [`MAX_EXACT_TERMS`] = 2^16
//! products stays below 2^47 in magnitude (each aligned product is at most
//! 2^30; before the last shift the partial sums are below 2^39), so the 16
//! guard bits never saturate before the bias is added, and the bit-level
//! result equals `saturate_48(exact sum + bias)`. Longer dot products take the
//! bit-level path in [`dot_fast`].

use super::rounding::saturate_to_bits;

/// Operand word length N (bits).
pub const WORD_BITS: u32 = 16;
/// Byte length K (bits): the shift between Algorithm 1's steps.
pub const BYTE_BITS: u32 = 8;
/// Guard bits of the accumulator.
pub const GUARD_BITS: u32 = 16;
/// Accumulator width: 2N + 16 = 48 bits.
pub const ACCUMULATOR_BITS: u32 = 2 * WORD_BITS + GUARD_BITS;
/// Longest dot product whose partial sums provably never saturate the 48-bit
/// accumulator (see the module docs): 2^16 products.
pub const MAX_EXACT_TERMS: usize = 1 << 16;

pub use crate::units::{MacCounts, MacMode, Width};

/// What a width means for Algorithm 1.
impl Width {
    /// Bits the accumulator result is aligned by for an operand of this width.
    pub fn alignment_bits(self) -> u32 {
        WORD_BITS - self.bits()
    }
}

/// What a mode means for Algorithm 1.
impl MacMode {
    /// Bits the Algorithm-1 result is shifted left by to reach accumulator
    /// (full-precision) units: 0, 8 or 16.
    pub fn alignment_bits(self) -> u32 {
        self.input.alignment_bits() + self.weight.alignment_bits()
    }

    /// The multiply and shift steps of Algorithm 1 in this mode.
    pub fn schedule(self) -> &'static [Step] {
        use Byte::{High, Low};
        use Step::{Multiply, Shift};
        match (self.input, self.weight) {
            (Width::W16, Width::W16) => &[
                Multiply(High, High),
                Shift,
                Multiply(High, Low),
                Multiply(Low, High),
                Shift,
                Multiply(Low, Low),
            ],
            (Width::W8, Width::W16) => &[Multiply(High, High), Shift, Multiply(High, Low)],
            (Width::W16, Width::W8) => &[Multiply(High, High), Shift, Multiply(Low, High)],
            (Width::W8, Width::W8) => &[Multiply(High, High)],
        }
    }

    /// Multiplier cycles per MAC: the multiply steps of the schedule
    /// (4 / 2 / 2 / 1); `arch::mac::MacConfig` defaults to these.
    pub fn multiply_steps(self) -> u32 {
        self.schedule()
            .iter()
            .filter(|s| matches!(s, Step::Multiply(..)))
            .count() as u32
    }
}

/// Which byte of an operand a multiply step reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Byte {
    /// Signed high byte: the multiplier's 9th bit is its sign extension.
    High,
    /// Unsigned low byte: the 9th bit is 0.
    Low,
}

/// One step of Algorithm 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// `r += sum over i of I_i^(input byte) * W_i^(weight byte)`.
    Multiply(Byte, Byte),
    /// `r <<= K`.
    Shift,
}

/// The two bytes of a 16-bit operand: `x = high * 256 + low`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bytes {
    /// Signed high byte, -128..=127.
    pub high: i8,
    /// Unsigned low byte, 0..=255.
    pub low: u8,
}

/// Splits a 16-bit word into its signed high and unsigned low byte.
#[inline]
pub fn split(x: i16) -> Bytes {
    Bytes {
        high: (x >> 8) as i8,
        low: (x & 0xFF) as u8,
    }
}

impl Bytes {
    /// The byte pattern a multiply step feeds the multiplier, and its
    /// signed-control bit (true for the high byte).
    #[inline]
    pub fn select(self, byte: Byte) -> (u8, bool) {
        match byte {
            Byte::High => (self.high as u8, true),
            Byte::Low => (self.low, false),
        }
    }
}

/// The 9x9 signed multiplier. Each 8-bit pattern becomes a 9-bit two's
/// complement operand whose 9th bit is the pattern's bit 7 when its
/// signed-control is set (sign extension of a high byte) and 0 otherwise
/// (a low byte). The product of two 9-bit operands fits 18 bits.
#[inline]
pub fn multiply_9x9(a: u8, a_signed: bool, b: u8, b_signed: bool) -> i32 {
    fn nine_bit(byte: u8, signed: bool) -> i32 {
        let bit8 = u16::from(signed && byte & 0x80 != 0);
        let pattern = u16::from(byte) | (bit8 << 8); // a 9-bit two's complement word
        // Bit 8 carries weight -2^8.
        i32::from(pattern & 0xFF) - i32::from(pattern >> 8) * 256
    }
    nine_bit(a, a_signed) * nine_bit(b, b_signed)
}

/// The saturating accumulator: `bits` wide (48 by default), clamping on
/// overflow and underflow of every addition and shift.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Accumulator {
    value: i64,
    bits: u32,
    saturations: u32,
}

impl Accumulator {
    /// An accumulator of `bits` bits (2..=62), holding 0.
    pub fn new(bits: u32) -> Self {
        Accumulator {
            value: 0,
            bits: bits.clamp(2, 62),
            saturations: 0,
        }
    }

    /// The held value.
    pub fn value(&self) -> i64 {
        self.value
    }

    /// How many additions or shifts saturated.
    pub fn saturations(&self) -> u32 {
        self.saturations
    }

    fn store(&mut self, exact: i64) {
        let clamped = saturate_to_bits(exact, self.bits);
        self.saturations += u32::from(clamped != exact);
        self.value = clamped;
    }

    /// `acc += x`, saturating.
    #[inline]
    pub fn add(&mut self, x: i64) {
        self.store(self.value.saturating_add(x));
    }

    /// `acc <<= k`, saturating (the between-step shifter).
    #[inline]
    pub fn shift_left(&mut self, k: u32) {
        let k = k.min(62);
        let exact = self
            .value
            .checked_mul(1i64 << k)
            .unwrap_or(if self.value < 0 { i64::MIN } else { i64::MAX });
        self.store(exact);
    }
}

/// The result of one dot product on the bit-level MAC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BitLevelDot {
    /// Algorithm 1's `r`, in units of `2^-(FL_I' + FL_W')` (reduced
    /// operands have `FL - 8`).
    pub raw: i64,
    /// `r` aligned to full-precision units and plus the bias, saturated: the
    /// value the output stage receives.
    pub accumulator: i64,
    /// Multiplier cycles: products x multiply steps of the mode.
    pub multiply_cycles: u64,
    /// Additions or shifts that saturated.
    pub saturations: u32,
}

/// PELUSO's Algorithm 1 on the bit-level datapath: byte selection, 9x9
/// multiplier, saturating accumulator, shifter; then alignment to
/// full-precision units and the bias. `inputs` and `weights` are the 16-bit
/// words (a reduced mode reads only the bytes its schedule names).
///
/// This is the specification; an engine's inner loop calls [`product`] or
/// [`dot_fast`], proven equal to it.
pub fn dot_bit_level(
    inputs: &[i16],
    weights: &[i16],
    mode: MacMode,
    bias: i64,
    accumulator_bits: u32,
) -> BitLevelDot {
    let n = inputs.len().min(weights.len());
    let mut acc = Accumulator::new(accumulator_bits);
    let mut multiply_cycles = 0u64;
    for step in mode.schedule() {
        match *step {
            Step::Multiply(ib, wb) => {
                for (&i, &w) in inputs[..n].iter().zip(&weights[..n]) {
                    let (a, a_signed) = split(i).select(ib);
                    let (b, b_signed) = split(w).select(wb);
                    acc.add(i64::from(multiply_9x9(a, a_signed, b, b_signed)));
                }
                multiply_cycles += n as u64;
            }
            Step::Shift => acc.shift_left(BYTE_BITS),
        }
    }
    let raw = acc.value();
    acc.shift_left(mode.alignment_bits());
    acc.add(bias);
    BitLevelDot {
        raw,
        accumulator: acc.value(),
        multiply_cycles,
        saturations: acc.saturations(),
    }
}

/// The operand a MAC of width `width` uses, as a 16-bit word in full-precision
/// units: `x` itself, or its high byte in place (`x & !0xFF`, i.e. `x` floored
/// to a multiple of 256). Reduce each tensor once; then any plain integer MAC
/// computes the aligned result of the reduced mode.
#[inline]
pub fn reduce(x: i16, width: Width) -> i16 {
    match width {
        Width::W16 => x,
        Width::W8 => x & !0xFF,
    }
}

/// The aligned product a MAC of `mode` adds to the accumulator:
/// `reduce(i) * reduce(w)`, at most 2^30 in magnitude.
#[inline]
pub fn product(input: i16, weight: i16, mode: MacMode) -> i32 {
    i32::from(reduce(input, mode.input)) * i32::from(reduce(weight, mode.weight))
}

/// True when a MAC of `mode` on these operands has a zero operand in the
/// bytes it uses (zero-skipping gates it): the reduced input or weight is 0.
#[inline]
pub fn is_zero_operand(input: i16, weight: i16, mode: MacMode) -> bool {
    reduce(input, mode.input) == 0 || reduce(weight, mode.weight) == 0
}

/// The accumulator value of a dot product in `mode` plus `bias`, saturated
/// to `accumulator_bits`: equal to [`dot_bit_level`]'s `accumulator`. Up to
/// [`MAX_EXACT_TERMS`] products it is the closed form (exact sum, one
/// saturation); longer dot products fall back to the bit-level datapath.
pub fn dot_fast(
    inputs: &[i16],
    weights: &[i16],
    mode: MacMode,
    bias: i64,
    accumulator_bits: u32,
) -> i64 {
    let n = inputs.len().min(weights.len());
    if n > MAX_EXACT_TERMS || accumulator_bits < ACCUMULATOR_BITS {
        return dot_bit_level(inputs, weights, mode, bias, accumulator_bits).accumulator;
    }
    let sum: i64 = inputs[..n]
        .iter()
        .zip(&weights[..n])
        .map(|(&i, &w)| i64::from(product(i, w, mode)))
        .sum();
    saturate_to_bits(sum.saturating_add(bias), accumulator_bits.min(62))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn all_bytes() -> impl Iterator<Item = u8> {
        0..=255u8
    }

    #[test]
    fn multiplier_is_exact_for_every_byte_pair_and_sign_control() {
        // 65,536 pairs x 4 sign-control combinations: the 9x9 multiplier
        // equals the product of the bytes read as signed (high) or unsigned (low).
        for a in all_bytes() {
            for b in all_bytes() {
                for (sa, sb) in [(true, true), (true, false), (false, true), (false, false)] {
                    let va = if sa { i32::from(a as i8) } else { i32::from(a) };
                    let vb = if sb { i32::from(b as i8) } else { i32::from(b) };
                    let p = multiply_9x9(a, sa, b, sb);
                    assert_eq!(p, va * vb, "{a} {sa} {b} {sb}");
                    assert!((-(1 << 17)..(1 << 17)).contains(&p), "18-bit product");
                }
            }
        }
    }

    #[test]
    fn split_recombines() {
        for x in i16::MIN..=i16::MAX {
            let b = split(x);
            assert_eq!(i32::from(b.high) * 256 + i32::from(b.low), i32::from(x));
        }
    }

    /// Every 8-bit operand pair (the high bytes; any low bytes) in every mode
    /// that reads only high bytes of an operand: the decomposition equals the
    /// closed form.
    #[test]
    fn exhaustive_over_all_8_bit_operand_pairs() {
        for hi_i in -128i16..=127 {
            for hi_w in -128i16..=127 {
                // Low bytes chosen from the pair so every value of each is exercised.
                let li = ((hi_i * 37 + hi_w * 11) & 0xFF) as u16;
                let lw = ((hi_w * 53 - hi_i * 7) & 0xFF) as u16;
                let i = ((hi_i as u16) << 8 | li) as i16;
                let w = ((hi_w as u16) << 8 | lw) as i16;
                let (ii, ww) = (i64::from(i), i64::from(w));
                let (hi, hw) = (i64::from(hi_i), i64::from(hi_w));
                let cases = [
                    (MacMode::HALF, hi * hw),
                    (MacMode::I8_W16, hi * ww),
                    (MacMode::I16_W8, ii * hw),
                    (MacMode::FULL, ii * ww),
                ];
                for (mode, raw) in cases {
                    let d = dot_bit_level(&[i], &[w], mode, 0, ACCUMULATOR_BITS);
                    assert_eq!(d.raw, raw, "{mode} {i} {w}");
                    assert_eq!(d.accumulator, raw << mode.alignment_bits());
                    assert_eq!(d.accumulator, i64::from(product(i, w, mode)));
                    assert_eq!(d.saturations, 0);
                    assert_eq!(d.multiply_cycles, u64::from(mode.multiply_steps()));
                }
            }
        }
    }

    #[test]
    fn zero_operands_are_judged_on_the_bytes_used() {
        // 0x00FF has a zero high byte: zero at 8 bits, non-zero at 16.
        assert!(is_zero_operand(0x00FF, 1000, MacMode::I8_W16));
        assert!(!is_zero_operand(0x00FF, 1000, MacMode::FULL));
        assert!(is_zero_operand(1000, 0x00FF, MacMode::I16_W8));
        // -1 has high byte -1: not zero at 8 bits.
        assert!(!is_zero_operand(-1, -1, MacMode::HALF));
        assert_eq!(reduce(-1, Width::W8), -256);
        assert_eq!(reduce(0x1234, Width::W8), 0x1200);
    }

    #[test]
    fn accumulator_saturates_both_ways() {
        let max = (1i64 << 47) - 1;
        let mut a = Accumulator::new(ACCUMULATOR_BITS);
        a.add(max);
        a.add(1);
        assert_eq!((a.value(), a.saturations()), (max, 1));
        a.add(-max);
        assert_eq!(a.value(), 0);
        a.add(-max - 1);
        a.add(-1);
        assert_eq!((a.value(), a.saturations()), (-max - 1, 2));
        let mut s = Accumulator::new(ACCUMULATOR_BITS);
        s.add(1 << 40);
        s.shift_left(8);
        assert_eq!((s.value(), s.saturations()), (max, 1));
        let mut n = Accumulator::new(ACCUMULATOR_BITS);
        n.add(-(1 << 40));
        n.shift_left(16);
        assert_eq!(n.value(), -max - 1);
    }

    #[test]
    fn long_dot_products_saturate_in_the_bit_level_path() {
        // 2^17 + 1 products of (-2^15)(-2^15) = 2^30 exceed 2^47: the bit-level
        // path saturates during the HH step and stays saturated.
        let n = MAX_EXACT_TERMS * 2 + 1;
        let x = vec![i16::MIN; n];
        let d = dot_bit_level(&x, &x, MacMode::FULL, 0, ACCUMULATOR_BITS);
        assert_eq!(d.accumulator, (1i64 << 47) - 1);
        assert!(d.saturations > 0);
        assert_eq!(
            dot_fast(&x, &x, MacMode::FULL, 0, ACCUMULATOR_BITS),
            d.accumulator
        );
        // A negative bias cannot pull back what saturated.
        let d = dot_bit_level(&x, &x, MacMode::FULL, -(1 << 46), ACCUMULATOR_BITS);
        assert_eq!(d.accumulator, (1i64 << 47) - 1 - (1 << 46));
        // At the proven bound the fast path is the closed form and exact.
        let x = vec![i16::MIN; MAX_EXACT_TERMS];
        let exact = (MAX_EXACT_TERMS as i64) << 30;
        let d = dot_bit_level(&x, &x, MacMode::FULL, 0, ACCUMULATOR_BITS);
        assert_eq!((d.accumulator, d.saturations), (exact, 0));
        assert_eq!(dot_fast(&x, &x, MacMode::FULL, 0, ACCUMULATOR_BITS), exact);
        // The bias saturates at the end.
        assert_eq!(
            dot_fast(&x, &x, MacMode::FULL, 1 << 46, ACCUMULATOR_BITS),
            (1i64 << 47) - 1
        );
    }

    #[test]
    fn modes_parse_and_print() {
        for mode in MacMode::ALL {
            assert_eq!(mode.to_string().parse::<MacMode>(), Ok(mode));
        }
        assert_eq!("16x8".parse::<MacMode>(), Ok(MacMode::I16_W8));
        assert!("16x4".parse::<MacMode>().is_err());
    }

    fn mode() -> impl Strategy<Value = MacMode> {
        (0usize..4).prop_map(|k| MacMode::ALL[k])
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// One 16-bit product: the decomposition's raw result is the closed
        /// form of each precision (full = exact product; reduced = from the
        /// high bytes), and aligned it is reduce(i) * reduce(w).
        #[test]
        fn single_product_matches_closed_form(i in any::<i16>(), w in any::<i16>(), mode in mode()) {
            let d = dot_bit_level(&[i], &[w], mode, 0, ACCUMULATOR_BITS);
            let hi = i64::from(i >> 8);
            let hw = i64::from(w >> 8);
            let (ii, ww) = (i64::from(i), i64::from(w));
            let raw = match (mode.input, mode.weight) {
                (Width::W16, Width::W16) => ii * ww,
                (Width::W8, Width::W16) => hi * ww,
                (Width::W16, Width::W8) => ii * hw,
                (Width::W8, Width::W8) => hi * hw,
            };
            prop_assert_eq!(d.raw, raw);
            prop_assert_eq!(d.accumulator, i64::from(product(i, w, mode)));
        }

        /// Dot products with a bias: the fast path equals the bit-level path.
        #[test]
        fn dot_fast_equals_bit_level(
            pairs in proptest::collection::vec((any::<i16>(), any::<i16>()), 0..300),
            bias in -(1i64 << 47)..(1i64 << 47),
            mode in mode(),
        ) {
            let (i, w): (Vec<i16>, Vec<i16>) = pairs.into_iter().unzip();
            let bit = dot_bit_level(&i, &w, mode, bias, ACCUMULATOR_BITS);
            prop_assert_eq!(dot_fast(&i, &w, mode, bias, ACCUMULATOR_BITS), bit.accumulator);
            prop_assert_eq!(bit.multiply_cycles, i.len() as u64 * u64::from(mode.multiply_steps()));
        }
    }
}
