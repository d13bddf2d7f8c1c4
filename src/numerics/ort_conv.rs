//! The float32 convolution ONNX Runtime runs for an int8 QDQ group it
//! leaves unfused (docs/onnx.md, item 6): `DequantizeLinear` on both
//! operands, a float `Conv` (MLAS SGEMM over im2col, one thread), the
//! dequantised bias, then `QuantizeLinear`.
//!
//! The sum of one output is `((b0 + b1) + ...) + bias`, where block `bj`
//! accumulates the products of im2col elements `j * stride_k ..` (input
//! channel, kernel row, kernel column) from 0 by fused multiply-adds, and
//! `stride_k` is MLAS's K-blocking for the layer's `N` output positions
//! ([`mlas_stride_k`]). This module is the machine's side (the PE's float32
//! mode, `engine::array`); the reference computes the same rule with its
//! own code (`reference::float_conv`).

/// MLAS's SGEMM K-blocking (`MlasConvOperation`, `MlasSgemmOperation`):
/// `stride_k` 128 and `stride_n` 128; when `N` is smaller than `K`,
/// `stride_k` doubles (and `stride_n` halves) while `stride_n > 16` and
/// `stride_n / 2 >= N`. When `N >= K` MLAS halves `stride_k` while it
/// stays at least `K`, which leaves one block for `K <= 128` and blocks
/// of 128 otherwise: the same blocks as this loop gives.
pub fn mlas_stride_k(positions: usize) -> usize {
    let (mut stride_n, mut stride_k) = (128usize, 128usize);
    while stride_n > 16 && stride_n / 2 >= positions {
        stride_k *= 2;
        stride_n /= 2;
    }
    stride_k
}

/// One output's float32 partial sums in a PE's float mode: the sum of the
/// finished K-blocks and the block being accumulated.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct FloatPsum {
    total: f32,
    block: f32,
    block_index: usize,
}

impl FloatPsum {
    /// Adds the product of the dequantised input `x` and weight `w` of
    /// im2col element `k` (elements arrive in increasing `k`): a new
    /// K-block first adds the finished one to the total.
    #[inline]
    pub fn fma(&mut self, k: usize, stride_k: usize, x: f32, w: f32) {
        let b = k / stride_k.max(1);
        if b != self.block_index {
            self.total += self.block;
            self.block = 0.0;
            self.block_index = b;
        }
        self.block = x.mul_add(w, self.block);
    }

    /// The sum of every block (before the bias).
    pub fn sum(&self) -> f32 {
        self.total + self.block
    }
}

/// The dequantisation and quantisation of one unfused convolution:
/// `f32(x - zx) * sx`, `f32(w - zw) * sw[o]`, the bias `f32(b) * sb[o]`.
#[derive(Debug, Clone, PartialEq)]
pub struct FloatConvScales {
    pub input_scale: f32,
    pub weight_scales: Vec<f32>,
    pub bias_scales: Vec<f32>,
}

impl FloatConvScales {
    fn pick(v: &[f32], o: usize) -> f32 {
        v.get(o).or_else(|| v.first()).copied().unwrap_or(1.0)
    }

    /// The dequantised centred input `x - zx`.
    #[inline]
    pub fn input(&self, centred: i16) -> f32 {
        f32::from(centred) * self.input_scale
    }

    /// The dequantised centred weight `w - zw` of output channel `o`.
    #[inline]
    pub fn weight(&self, o: usize, centred: i16) -> f32 {
        f32::from(centred) * Self::pick(&self.weight_scales, o)
    }

    /// The dequantised bias of output channel `o`.
    pub fn bias(&self, o: usize, bias: i64) -> f32 {
        bias as f32 * Self::pick(&self.bias_scales, o)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mlas_blocks_follow_the_output_positions() {
        // docs/onnx.md item 6: 7x7 -> 256, 5x5 -> 512, 3x3 -> 1024; N >= 64 -> 128.
        assert_eq!(mlas_stride_k(49), 256);
        assert_eq!(mlas_stride_k(25), 512);
        assert_eq!(mlas_stride_k(9), 1024);
        assert_eq!(mlas_stride_k(1), 1024);
        assert_eq!(mlas_stride_k(64), 256);
        assert_eq!(mlas_stride_k(65), 128);
        assert_eq!(mlas_stride_k(169), 128);
    }

    #[test]
    fn blocks_are_summed_from_zero_and_added_in_order() {
        // 2^24 + 1 is lost when added to 2^24 but kept inside a block of 1s.
        let big = 16_777_216.0f32;
        let mut p = FloatPsum::default();
        p.fma(0, 2, big, 1.0);
        p.fma(1, 2, 1.0, 1.0);
        p.fma(2, 2, 1.0, 1.0);
        p.fma(3, 2, 1.0, 1.0);
        // Block 0: 2^24 + 1 rounds to 2^24; block 1: 2; total 2^24 + 2.
        assert_eq!(p.sum(), big + 2.0);
        let mut q = FloatPsum::default();
        for k in 0..4 {
            q.fma(k, 4, if k == 0 { big } else { 1.0 }, 1.0);
        }
        // One block: every +1 is lost.
        assert_eq!(q.sum(), big);
    }
}
