//! Shift-add scalers multiply exactly (SPEC section 3): properties over
//! random weights, inputs and small convolution windows.

use accsim::arch::AccumulatorWidth;
use accsim::hw::ffe::ShiftAddArray;
use accsim::numerics::csd::{DigitEncoding, digit_count, digits, shift_add, value};
use ndarray::Array4;
use proptest::prelude::*;

fn encoding() -> impl Strategy<Value = DigitEncoding> {
    prop_oneof![Just(DigitEncoding::Csd), Just(DigitEncoding::Binary)]
}

proptest! {
    #[test]
    fn shift_add_equals_multiply(w in any::<i16>(), x in -(1i64 << 40)..(1i64 << 40), enc in encoding()) {
        let d = digits(i64::from(w), enc);
        prop_assert_eq!(value(&d), i64::from(w));
        prop_assert_eq!(shift_add(x, &d), x * i64::from(w));
    }

    #[test]
    fn csd_never_has_more_digits_than_binary(w in any::<i32>()) {
        let w = i64::from(w);
        let csd = digit_count(w, DigitEncoding::Csd);
        prop_assert!(csd <= digit_count(w, DigitEncoding::Binary));
        prop_assert_eq!(csd as usize, digits(w, DigitEncoding::Csd).len());
        // At most one non-zero digit per two bit positions (+1).
        let bits = 64 - w.unsigned_abs().leading_zeros();
        prop_assert!(csd <= bits.div_ceil(2) + 1);
    }

    #[test]
    fn adder_trees_equal_the_centred_dot_product(
        weights in proptest::collection::vec(-128i16..128, 2 * 3 * 2 * 2),
        window in proptest::collection::vec(0i16..256, 2 * 2 * 3),
        bias in proptest::collection::vec(-100_000i64..100_000, 2),
        wz in -5i32..5,
        xz in 0i32..256,
        enc in encoding(),
    ) {
        // 2 outputs, 3 inputs, 2x2 kernel; window [ky][kx][c].
        let w = Array4::from_shape_vec((2, 3, 2, 2), weights).unwrap_or_else(|e| panic!("{e}"));
        let a = ShiftAddArray::new(w.view(), 1, 3, wz, xz, (0, 255), &bias, enc, AccumulatorWidth::Derived, 32);
        let mut acc = [0i64; 2];
        a.compute(&window, &mut acc);
        for o in 0..2 {
            let mut want = bias[o];
            for c in 0..3 {
                for ky in 0..2 {
                    for kx in 0..2 {
                        let x = i64::from(window[(ky * 2 + kx) * 3 + c]) - i64::from(xz);
                        want += x * (i64::from(w[[o, c, ky, kx]]) - i64::from(wz));
                    }
                }
            }
            prop_assert_eq!(acc[o], want);
            // The derived width holds the result.
            let bits = a.acc_bits[o];
            prop_assert!(acc[o].unsigned_abs() < 1u64 << (bits - 1));
        }
    }
}
