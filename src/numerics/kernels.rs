//! The multiply-accumulate inner loops shared by the reference executor and
//! the simulated PEs, compiled twice: once for the portable x86-64 baseline
//! (SSE2, which has no 32-bit vector multiply) and once with AVX2, chosen at
//! run time on CPUs that have it. Both compile the same Rust loop, so the
//! results are identical; only the speed differs. Other targets use the
//! portable loop.

use std::ops::{AddAssign, Mul};

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

#[cfg(test)]
mod tests {
    use super::*;

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
