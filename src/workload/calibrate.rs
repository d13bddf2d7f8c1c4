//! Choosing a layer's output quantisation from its accumulators.
//!
//! Used when a workload file leaves a layer's `output` out. Both rules look at
//! the exact accumulator values of the layer on the network's default input:
//! - affine: min/max calibration (the ONNX Runtime quantiser's `MinMax`): the
//!   real range, widened to contain 0 and narrowed by the activation, is mapped
//!   onto the integer range;
//! - dynamic fixed point: PELUSO's rule, the fractional length that minimises
//!   the L2 error between the exact (post-activation) values and their
//!   quantised versions.

use ndarray::Array3;

use crate::numerics::{
    Activation, IntType, OutputStage, Requant, Rounding, TensorQuant, WeightQuant,
};

/// Real value of one accumulator unit, per output channel.
fn accumulator_scale(in_quant: &TensorQuant, wq: &WeightQuant, channel: usize) -> f64 {
    match (in_quant, wq) {
        (TensorQuant::Affine { scale, .. }, WeightQuant::Affine { .. }) => {
            f64::from(*scale) * f64::from(wq.scale(channel).unwrap_or(1.0))
        }
        (TensorQuant::Fixed { frac_len: fx, .. }, WeightQuant::Fixed { frac_len: fw, .. }) => {
            2f64.powi(-(fx + fw))
        }
        _ => 1.0,
    }
}

/// Min/max calibration of an affine output of type `dtype`.
pub fn affine_min_max(
    acc: &Array3<i64>,
    in_quant: &TensorQuant,
    wq: &WeightQuant,
    activation: Activation,
    dtype: IntType,
) -> TensorQuant {
    let (mut lo, mut hi) = (0.0f64, 0.0f64);
    for (c, plane) in acc.outer_iter().enumerate() {
        let s = accumulator_scale(in_quant, wq, c);
        for &a in plane {
            let r = a as f64 * s;
            lo = lo.min(r);
            hi = hi.max(r);
        }
    }
    match activation {
        Activation::None => {}
        Activation::Relu => lo = 0.0,
        Activation::Relu6 => {
            lo = 0.0;
            hi = hi.min(6.0);
        }
    }
    let (qmin, qmax) = dtype.range();
    let mut scale = ((hi - lo) / f64::from(qmax - qmin)) as f32;
    if !(scale > 0.0 && scale.is_finite()) {
        // An all-zero output: keep the accumulator's own scale.
        scale = (accumulator_scale(in_quant, wq, 0) as f32).max(f32::MIN_POSITIVE);
    }
    let zero_point = (f64::from(qmin) - lo / f64::from(scale))
        .round_ties_even()
        .clamp(f64::from(qmin), f64::from(qmax)) as i32;
    TensorQuant::Affine {
        dtype,
        scale,
        zero_point,
    }
}

/// PELUSO's fractional-length search for a `bits`-bit fixed-point output.
///
/// Candidates run from `bits - 1` (all fraction) down to 0, and further
/// down only as far as needed to hold the largest value without saturating.
/// The smallest L2 error wins; ties keep the larger fractional length.
pub fn fixed_point_l2(
    acc: &Array3<i64>,
    in_quant: &TensorQuant,
    wq: &WeightQuant,
    activation: Activation,
    bits: u32,
    rounding: Rounding,
    accumulator_bits: u32,
) -> TensorQuant {
    let acc_frac = match (in_quant, wq) {
        (TensorQuant::Fixed { frac_len: fx, .. }, WeightQuant::Fixed { frac_len: fw, .. }) => {
            fx + fw
        }
        _ => 0,
    };
    let limit = (1i64 << (accumulator_bits.min(63) - 1)) - 1;
    // Exact post-activation targets, in accumulator units.
    let six = 6.0 * 2f64.powi(acc_frac);
    let target = |a: i64| -> f64 {
        let a = a.clamp(-limit - 1, limit) as f64;
        match activation {
            Activation::None => a,
            Activation::Relu => a.max(0.0),
            Activation::Relu6 => a.clamp(0.0, six),
        }
    };
    let max_abs = acc.iter().map(|&a| target(a).abs()).fold(0.0f64, f64::max);
    let top = bits as i32 - 1;
    if max_abs == 0.0 {
        return TensorQuant::Fixed {
            bits,
            frac_len: top,
        };
    }
    // Largest FL with max_abs * 2^(FL - acc_frac) <= 2^(bits-1) - 1.
    let qmax = f64::from((1u32 << (bits - 1)) - 1);
    let fits = (qmax / max_abs).log2().floor() as i32 + acc_frac;
    let bottom = fits.clamp(-32, 0);
    let mut best = (f64::INFINITY, top);
    for frac_len in (bottom..=top).rev() {
        let quant = TensorQuant::Fixed { bits, frac_len };
        let (clamp_min, clamp_max) = activation.clamp_range(&quant);
        let shift = acc_frac - frac_len;
        let stage = OutputStage {
            accumulator_bits,
            requant: Requant::Shift { shift, rounding },
            zero_point: 0,
            clamp_min,
            clamp_max,
        }
        .channel(0);
        let step = 2f64.powi(shift);
        let error: f64 = acc
            .iter()
            .map(|&a| {
                let e = target(a) - f64::from(stage.apply(a)) * step;
                e * e
            })
            .sum();
        if error < best.0 {
            best = (error, frac_len);
        }
    }
    TensorQuant::Fixed {
        bits,
        frac_len: best.1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn min_max_maps_the_range() {
        // One accumulator unit is 0.5 * 2^-6 = 2^-7 (exact in binary).
        let acc = Array3::from_shape_vec((1, 1, 3), vec![-128, 0, 384]).unwrap_or_default();
        let inq = TensorQuant::Affine {
            dtype: IntType::Uint8,
            scale: 0.5,
            zero_point: 0,
        };
        let wq = WeightQuant::Affine {
            dtype: IntType::Int8,
            scales: vec![1.0 / 64.0],
            zero_point: 0,
        };
        // Real range [-1, 3]: scale 4/255, zero point round(0 - (-1)/(4/255)) = 64 (63.75).
        let q = affine_min_max(&acc, &inq, &wq, Activation::None, IntType::Uint8);
        assert_eq!(
            q,
            TensorQuant::Affine {
                dtype: IntType::Uint8,
                scale: (4.0f64 / 255.0) as f32,
                zero_point: 64
            }
        );
        // ReLU drops the negative part: [0, 3], zero point at qmin.
        let q = affine_min_max(&acc, &inq, &wq, Activation::Relu, IntType::Int8);
        assert_eq!(
            q,
            TensorQuant::Affine {
                dtype: IntType::Int8,
                scale: (3.0f64 / 255.0) as f32,
                zero_point: -128
            }
        );
    }

    #[test]
    fn l2_search_picks_the_tightest_fit() {
        // Inputs FL 4, weights FL 4: accumulator FL 8. Values up to 5.0 (1280/256)
        // need 3 integer bits plus sign: an 8-bit output gets FL 4 (max 7.9375).
        let acc = Array3::from_shape_vec((1, 1, 4), vec![1280, -640, 64, 3]).unwrap_or_default();
        let inq = TensorQuant::Fixed {
            bits: 8,
            frac_len: 4,
        };
        let wq = WeightQuant::Fixed {
            bits: 8,
            frac_len: 4,
        };
        let q = fixed_point_l2(&acc, &inq, &wq, Activation::None, 8, Rounding::HalfUp, 32);
        assert_eq!(
            q,
            TensorQuant::Fixed {
                bits: 8,
                frac_len: 4
            }
        );
        // Large values force a negative fractional length.
        let acc = Array3::from_shape_vec((1, 1, 2), vec![1 << 20, 5]).unwrap_or_default();
        let q = fixed_point_l2(&acc, &inq, &wq, Activation::None, 8, Rounding::HalfUp, 32);
        assert_eq!(
            q,
            TensorQuant::Fixed {
                bits: 8,
                frac_len: -6
            }
        );
    }
}
