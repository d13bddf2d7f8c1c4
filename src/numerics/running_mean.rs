//! A plane's float32 mean taken one element at a time, in the order ONNX
//! Runtime sums the whole plane ([`PlaneOrder`]), so that a unit that sees
//! the plane a row at a time (the GLB unit streaming a float32 chain's
//! mean, docs/onnx.md item 18) gets [`sequential_mean`] or
//! [`mlas_global_mean`] bit for bit, holding only a sum and four lanes.
//!
//! [`sequential_mean`]: super::ort::sequential_mean
//! [`mlas_global_mean`]: super::ort::mlas_global_mean

use super::ort::PlaneOrder;

/// The running state of one channel's mean over a plane of `count`
/// elements.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RunningMean {
    order: PlaneOrder,
    /// Elements in the plane.
    count: usize,
    /// Elements added so far.
    seen: usize,
    /// MLAS's four lanes (element `i` into lane `i % 4`, over the first
    /// `4 floor(count / 4)` elements).
    lanes: [f32; 4],
    /// The sequential sum, or MLAS's reduced lanes plus the elements after
    /// them.
    sum: f32,
}

impl RunningMean {
    /// The mean of a plane of `count` elements, none added yet.
    pub fn new(order: PlaneOrder, count: usize) -> Self {
        RunningMean {
            order,
            count,
            seen: 0,
            lanes: [0.0; 4],
            sum: 0.0,
        }
    }

    /// Elements MLAS sums in its four lanes.
    fn laned(&self) -> usize {
        self.count / 4 * 4
    }

    /// MLAS's reduction of the lanes, `(l0 + l2) + (l1 + l3)`.
    fn reduced(&self) -> f32 {
        let l = self.lanes;
        (l[0] + l[2]) + (l[1] + l[3])
    }

    /// Adds the plane's next element (row-major order).
    pub fn add(&mut self, v: f32) {
        match self.order {
            PlaneOrder::Sequential => self.sum += v,
            PlaneOrder::MlasGlobal if self.seen < self.laned() => self.lanes[self.seen % 4] += v,
            PlaneOrder::MlasGlobal => {
                if self.seen == self.laned() {
                    self.sum = self.reduced();
                }
                self.sum += v;
            }
        }
        self.seen += 1;
    }

    /// The mean of the elements added (the plane's, once all are).
    pub fn finish(&self) -> f32 {
        let sum = match self.order {
            PlaneOrder::MlasGlobal if self.seen <= self.laned() => self.reduced(),
            _ => self.sum,
        };
        sum / self.count.max(1) as f32
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::numerics::ort::{mlas_global_mean, sequential_mean};

    /// Values spread over six orders of magnitude, so that the order of the
    /// additions shows in the sum's last bits.
    fn values(n: usize, seed: u64) -> Vec<f32> {
        let mut s = seed;
        (0..n)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let m = (s >> 40) as f32 / (1u64 << 24) as f32;
                let e = ((s >> 8) % 7) as i32 - 3;
                m * 10f32.powi(e)
            })
            .collect()
    }

    #[test]
    fn a_running_mean_equals_the_whole_plane_mean_bit_for_bit_in_both_orders() {
        // 49 (ResNet-50's 7x7), 169 (SqueezeNet's 13x13), multiples of 4 and
        // planes smaller than the four lanes.
        for n in [0, 1, 3, 4, 5, 16, 49, 169, 196] {
            for seed in 0..20 {
                let v = values(n, seed);
                for (order, whole) in [
                    (PlaneOrder::Sequential, sequential_mean(&v)),
                    (PlaneOrder::MlasGlobal, mlas_global_mean(&v)),
                ] {
                    let mut m = RunningMean::new(order, n);
                    v.iter().for_each(|&x| m.add(x));
                    assert_eq!(m.finish().to_bits(), whole.to_bits(), "{order:?}, n {n}");
                }
            }
        }
    }

    #[test]
    fn the_two_orders_differ_on_these_values() {
        // The test above would pass for one order used twice: show that the
        // values tell the orders apart.
        let differ = (0..20)
            .filter(|&seed| {
                let v = values(169, seed);
                sequential_mean(&v).to_bits() != mlas_global_mean(&v).to_bits()
            })
            .count();
        assert!(differ > 0);
    }
}
