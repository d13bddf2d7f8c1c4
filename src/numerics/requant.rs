//! The output stage of a convolution or FC layer: from the wide accumulator
//! back to a narrow activation.
//!
//! ```text
//!  acc (exact sum + bias) --saturate(acc bits)--> requantise --+zero point--> clamp(activation, dtype) --> q
//! ```
//!
//! The three requantisers are the three rules of docs/numerics.md: TFLite's
//! integer multiplier, ONNX's float scale, and PELUSO's shift. Every engine
//! calls [`ChannelRequant::apply`]; none re-implements it.

use serde::Serialize;

use super::rounding::{Rounding, saturate_to_bits, shift_right_rounded};
use super::tflite::multiply_by_quantized_multiplier;

/// How the accumulator is scaled to the output's quantisation.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "rule", rename_all = "snake_case")]
pub enum Requant {
    /// TFLite reference kernels: `MultiplyByQuantizedMultiplier(acc, m, s)`,
    /// one `(multiplier, shift)` per output channel (or one for all).
    Tflite {
        multipliers: Vec<i32>,
        shifts: Vec<i32>,
    },
    /// ONNX QLinearConv as ONNX Runtime computes it: `f32(acc) * scale` in
    /// float32, rounded half to even. One scale per channel (or one for all).
    Float { scales: Vec<f32> },
    /// Dynamic fixed point: `acc / 2^shift` rounded by `rounding` (a left
    /// shift when `shift < 0`).
    Shift { shift: i32, rounding: Rounding },
    /// ONNX `ConvInteger`/`MatMulInteger` -> `Cast` -> `Mul` -> `Add` ->
    /// `QuantizeLinear`, one float32 operation per node as ONNX Runtime runs
    /// them: `v = f32(acc) * scales[c] + offsets[c]`, then `v / output_scale`
    /// rounded half to even. One scale and offset per channel (or one for all).
    FloatChain {
        scales: Vec<f32>,
        offsets: Vec<f32>,
        output_scale: f32,
    },
    /// `quantize_dynamic`'s `ConvInteger`/`MatMulInteger` -> `Cast` -> `Mul`
    /// -> `Add` [-> `Relu`]: a float32 output, `f32(acc) * (x_scale *
    /// weight_scale) + offsets[c]`, then `max(v, 0)` when `relu`
    /// (`numerics::ort_dynamic`). `input_scale` is the input's run-time
    /// scale, known only when the layer runs (`None` in the IR: the
    /// executors set it from the layer's `dynamic_range` tensor); the
    /// output is two words per element ([`ChannelRequant::apply_float`]).
    DynamicFloat {
        weight_scale: f32,
        input_scale: Option<f32>,
        offsets: Vec<f32>,
        relu: bool,
    },
    /// The float32 convolution ONNX Runtime runs for an int8 QDQ group it
    /// leaves unfused (docs/onnx.md, item 6; `numerics::ort_conv`): the
    /// dequantised products summed in float32 in MLAS's K-blocks, the
    /// dequantised bias added, then `QuantizeLinear`: `v / output_scale`
    /// rounded half to even ([`ChannelRequant::quantize_float`]). There is
    /// no integer accumulator: [`ChannelRequant::apply`] on an exact sum
    /// gives the fused QLinearConv's value instead (`f32(acc) * (sx * sw /
    /// sy)`), which differs near ties.
    FloatSum {
        input_scale: f32,
        weight_scales: Vec<f32>,
        bias_scales: Vec<f32>,
        output_scale: f32,
    },
}

impl Requant {
    /// A [`Requant::FloatSum`] stage.
    pub fn is_float_sum(&self) -> bool {
        matches!(self, Requant::FloatSum { .. })
    }

    /// The dequantisation scales of a [`Requant::FloatSum`] stage.
    pub fn float_sum(&self) -> Option<super::ort_conv::FloatConvScales> {
        match self {
            Requant::FloatSum {
                input_scale,
                weight_scales,
                bias_scales,
                ..
            } => Some(super::ort_conv::FloatConvScales {
                input_scale: *input_scale,
                weight_scales: weight_scales.clone(),
                bias_scales: bias_scales.clone(),
            }),
            _ => None,
        }
    }
}

/// The complete output stage of a layer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OutputStage {
    /// Width of the saturating accumulator (32 for affine int8, 2N+16 for
    /// dynamic fixed point).
    pub accumulator_bits: u32,
    pub requant: Requant,
    /// Added after requantisation (affine output zero point; 0 for fixed point).
    pub zero_point: i32,
    /// Inclusive clamp: the output type's range narrowed by the activation.
    pub clamp_min: i32,
    pub clamp_max: i32,
}

impl OutputStage {
    /// The parameters for output channel `channel`, resolved once so the
    /// per-element work is a handful of integer operations.
    pub fn channel(&self, channel: usize) -> ChannelRequant {
        let pick = |v: &[i32]| v.get(channel).or_else(|| v.first()).copied().unwrap_or(0);
        let rule = match &self.requant {
            Requant::Tflite {
                multipliers,
                shifts,
            } => ChannelRule::Tflite {
                multiplier: pick(multipliers),
                shift: pick(shifts),
            },
            Requant::Float { scales } => ChannelRule::Float {
                scale: scales
                    .get(channel)
                    .or_else(|| scales.first())
                    .copied()
                    .unwrap_or(1.0),
            },
            Requant::Shift { shift, rounding } => ChannelRule::Shift {
                shift: *shift,
                rounding: *rounding,
            },
            Requant::FloatChain {
                scales,
                offsets,
                output_scale,
            } => {
                let pick = |v: &[f32], default: f32| {
                    v.get(channel)
                        .or_else(|| v.first())
                        .copied()
                        .unwrap_or(default)
                };
                ChannelRule::FloatChain {
                    scale: pick(scales, 1.0),
                    offset: pick(offsets, 0.0),
                    output_scale: *output_scale,
                }
            }
            Requant::DynamicFloat {
                weight_scale,
                input_scale,
                offsets,
                relu,
            } => ChannelRule::DynamicFloat {
                // Without the run-time scale every value is NaN, never a
                // plausible number.
                multiplier: input_scale.map_or(f32::NAN, |s| {
                    super::ort_dynamic::multiplier(s, *weight_scale)
                }),
                offset: offsets
                    .get(channel)
                    .or_else(|| offsets.first())
                    .copied()
                    .unwrap_or(0.0),
                relu: *relu,
            },
            Requant::FloatSum {
                input_scale,
                weight_scales,
                output_scale,
                ..
            } => float_sum_rule(*input_scale, weight_scales, *output_scale, channel),
        };
        ChannelRequant {
            rule,
            accumulator_bits: self.accumulator_bits,
            zero_point: self.zero_point,
            clamp_min: self.clamp_min,
            clamp_max: self.clamp_max,
        }
    }
}

/// A [`Requant::FloatSum`] stage's rule for output channel `channel`.
fn float_sum_rule(
    input_scale: f32,
    weight_scales: &[f32],
    output_scale: f32,
    channel: usize,
) -> ChannelRule {
    let sw = weight_scales
        .get(channel)
        .or_else(|| weight_scales.first())
        .copied()
        .unwrap_or(1.0);
    ChannelRule::FloatSum {
        fused_scale: input_scale * sw / output_scale,
        output_scale,
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum ChannelRule {
    Tflite {
        multiplier: i32,
        shift: i32,
    },
    Float {
        scale: f32,
    },
    Shift {
        shift: i32,
        rounding: Rounding,
    },
    FloatChain {
        scale: f32,
        offset: f32,
        output_scale: f32,
    },
    DynamicFloat {
        multiplier: f32,
        offset: f32,
        relu: bool,
    },
    FloatSum {
        fused_scale: f32,
        output_scale: f32,
    },
}

/// The output stage of one channel.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChannelRequant {
    rule: ChannelRule,
    accumulator_bits: u32,
    zero_point: i32,
    clamp_min: i32,
    clamp_max: i32,
}

impl ChannelRequant {
    /// Accumulator (exact sum of products plus bias) to output integer.
    #[inline]
    pub fn apply(&self, acc: i64) -> i16 {
        let acc = saturate_to_bits(acc, self.accumulator_bits);
        let scaled: i64 = match self.rule {
            // Validation keeps TFLite accumulators at <= 32 bits, so the cast is exact.
            ChannelRule::Tflite { multiplier, shift } => i64::from(
                multiply_by_quantized_multiplier(acc as i32, multiplier, shift),
            ),
            ChannelRule::Float { scale }
            | ChannelRule::FloatSum {
                fused_scale: scale, ..
            } => {
                let v = (acc as f32) * scale;
                // `as` saturates out-of-range floats; the clamp below finishes the job.
                v.round_ties_even() as i64
            }
            ChannelRule::FloatChain {
                scale,
                offset,
                output_scale,
            } => {
                // Three separate float32 operations (no fused multiply-add).
                let v = ((acc as f32) * scale + offset) / output_scale;
                v.round_ties_even() as i64
            }
            // A float32 output is two words (`apply_float`); one word
            // holds its high half.
            ChannelRule::DynamicFloat { .. } => {
                let v = self.apply_float(acc).unwrap_or(0.0);
                return super::ort::f32_words(v)[0];
            }
            ChannelRule::Shift { shift, rounding } => {
                if shift >= 0 {
                    shift_right_rounded(acc, shift as u32, rounding)
                } else {
                    let left = (-shift).min(62) as u32;
                    acc.checked_mul(1i64 << left).unwrap_or(if acc < 0 {
                        i64::MIN
                    } else {
                        i64::MAX
                    })
                }
            }
        };
        scaled
            .saturating_add(i64::from(self.zero_point))
            .clamp(i64::from(self.clamp_min), i64::from(self.clamp_max)) as i16
    }

    /// `QuantizeLinear` of the float32 value `v` (the float sum plus the
    /// dequantised bias) of a [`Requant::FloatSum`] stage: `v /
    /// output_scale` rounded half to even, the zero point added, clamped
    /// (`None` for the other rules).
    #[inline]
    pub fn quantize_float(&self, v: f32) -> Option<i16> {
        let ChannelRule::FloatSum { output_scale, .. } = self.rule else {
            return None;
        };
        let r = (v / output_scale).round_ties_even();
        let r = if r.is_nan() { 0 } else { r as i64 };
        Some(
            r.saturating_add(i64::from(self.zero_point))
                .clamp(i64::from(self.clamp_min), i64::from(self.clamp_max)) as i16,
        )
    }

    /// The float32 output of a [`Requant::DynamicFloat`] stage (`None` for
    /// the integer rules): `f32(acc) * multiplier + offset`, two roundings
    /// (`ort_dynamic::float_epilogue`), then the Relu.
    #[inline]
    pub fn apply_float(&self, acc: i64) -> Option<f32> {
        let ChannelRule::DynamicFloat {
            multiplier,
            offset,
            relu,
        } = self.rule
        else {
            return None;
        };
        let v = super::ort_dynamic::float_epilogue(acc, multiplier, offset);
        Some(if relu { v.max(0.0) } else { v })
    }

    /// [`Self::apply`] on each of `acc` into `out` (the common length). The
    /// shift rule of dynamic fixed point is matched once per call instead of
    /// per element, so the loop is a few integer operations; the values are
    /// those of [`Self::apply`].
    pub fn apply_slice(&self, acc: &[i64], out: &mut [i16]) {
        let ChannelRule::Shift { shift, rounding } = self.rule else {
            for (o, &a) in out.iter_mut().zip(acc) {
                *o = self.apply(a);
            }
            return;
        };
        if !(1..=62).contains(&shift) {
            for (o, &a) in out.iter_mut().zip(acc) {
                *o = self.apply(a);
            }
            return;
        }
        let s = shift as u32;
        let half = 1i64 << (s - 1);
        let bits = self.accumulator_bits.clamp(2, 64);
        if bits <= 62 && matches!(rounding, Rounding::Floor | Rounding::HalfUp) {
            let half = if rounding == Rounding::HalfUp {
                half
            } else {
                0
            };
            let lim = 1i64 << (bits - 1);
            let rule = RoundedShift {
                saturate: (-lim, lim - 1),
                half,
                shift: s,
                zero: i64::from(self.zero_point),
                clamp: (i64::from(self.clamp_min), i64::from(self.clamp_max)),
            };
            rule.apply_slice(acc, out);
            return;
        }
        match rounding {
            Rounding::Floor => self.shift_slice(acc, out, s, |_, _, _| false),
            Rounding::HalfUp => self.shift_slice(acc, out, s, |_, r, _| r >= half),
            Rounding::HalfEven => {
                self.shift_slice(acc, out, s, |f, r, _| r > half || (r == half && f & 1 == 1))
            }
            Rounding::HalfAwayFromZero => {
                self.shift_slice(acc, out, s, |_, r, x| r > half || (r == half && x >= 0))
            }
        }
    }

    /// The shift rule's loop: `round_up(floor, remainder, x)` as in
    /// `rounding::shift_right_rounded`.
    #[inline(always)]
    fn shift_slice(
        &self,
        acc: &[i64],
        out: &mut [i16],
        shift: u32,
        round_up: impl Fn(i64, i64, i64) -> bool,
    ) {
        let (lo, hi) = (i64::from(self.clamp_min), i64::from(self.clamp_max));
        let zero = i64::from(self.zero_point);
        for (o, &a) in out.iter_mut().zip(acc) {
            let x = saturate_to_bits(a, self.accumulator_bits);
            let floor = x >> shift;
            let remainder = x - (floor << shift);
            let v = floor + i64::from(round_up(floor, remainder, x));
            *o = v.saturating_add(zero).clamp(lo, hi) as i16;
        }
    }
}

/// The shift rule with `Floor` or `HalfUp` rounding on an accumulator of at
/// most 62 bits, branch-free: `floor + (remainder >= half)` is
/// `(x + half) >> shift` (the remainder plus half stays below
/// `2^(shift + 1)`), and neither that sum nor adding the zero point can
/// overflow `i64` after saturation to 62 bits, so the saturating add is a
/// plain one. Vectorised on AVX-512 (64-bit shifts, minima and maxima).
struct RoundedShift {
    saturate: (i64, i64),
    half: i64,
    shift: u32,
    zero: i64,
    clamp: (i64, i64),
}

impl RoundedShift {
    fn apply_slice(&self, acc: &[i64], out: &mut [i16]) {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU supports AVX-512 F, checked just above.
            unsafe { self.apply_avx512(acc, out) };
            return;
        }
        self.apply_portable(acc, out);
    }

    #[inline(always)]
    fn apply_portable(&self, acc: &[i64], out: &mut [i16]) {
        let (smin, smax) = self.saturate;
        let (lo, hi) = self.clamp;
        for (o, &a) in out.iter_mut().zip(acc) {
            let v = (a.clamp(smin, smax) + self.half) >> self.shift;
            *o = (v + self.zero).clamp(lo, hi) as i16;
        }
    }

    /// [`Self::apply_portable`] compiled for AVX-512 (auto-vectorised).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    fn apply_avx512(&self, acc: &[i64], out: &mut [i16]) {
        self.apply_portable(acc, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::numerics::tflite::quantize_multiplier;

    fn stage(requant: Requant, bits: u32, zp: i32, lo: i32, hi: i32) -> ChannelRequant {
        OutputStage {
            accumulator_bits: bits,
            requant,
            zero_point: zp,
            clamp_min: lo,
            clamp_max: hi,
        }
        .channel(0)
    }

    #[test]
    fn apply_slice_equals_apply_per_element() {
        let values: Vec<i64> = [
            0,
            1,
            -1,
            7,
            -7,
            8,
            -8,
            12,
            -12,
            1 << 40,
            -(1 << 40),
            i64::MAX,
            i64::MIN,
        ]
        .into_iter()
        .chain((0..200).map(|i: i64| (i - 100) * 1_234_567 + i % 3))
        .collect();
        let rules = [
            Rounding::Floor,
            Rounding::HalfUp,
            Rounding::HalfEven,
            Rounding::HalfAwayFromZero,
        ];
        for rounding in rules {
            for shift in [-3, 0, 1, 3, 14, 62, 63] {
                for (bits, zp, lo, hi) in
                    [(48, 0, -32768, 32767), (40, 5, 0, 255), (64, 0, 0, 32767)]
                {
                    let st = stage(Requant::Shift { shift, rounding }, bits, zp, lo, hi);
                    let mut out = vec![0i16; values.len()];
                    st.apply_slice(&values, &mut out);
                    let want: Vec<i16> = values.iter().map(|&v| st.apply(v)).collect();
                    assert_eq!(out, want, "{rounding:?} shift {shift} bits {bits}");
                }
            }
        }
        // Another rule takes the per-element path.
        let st = stage(Requant::Float { scales: vec![0.5] }, 32, 0, -128, 127);
        let mut out = vec![0i16; 3];
        st.apply_slice(&[5, -5, 1000], &mut out);
        assert_eq!(out, vec![2, -2, 127]);
    }

    #[test]
    fn tflite_stage_scales_offsets_and_clamps() {
        let (m, s) = quantize_multiplier(0.25);
        let st = stage(
            Requant::Tflite {
                multipliers: vec![m],
                shifts: vec![s],
            },
            32,
            -128,
            -128,
            127,
        );
        assert_eq!(st.apply(400), -28); // 100 - 128
        assert_eq!(st.apply(2), -127); // 0.5 -> 1 (away from zero)
        assert_eq!(st.apply(-2), -128); // -0.5 -> -1, then -129 clamps to -128
        assert_eq!(st.apply(1 << 40), 127); // accumulator saturates first
    }

    #[test]
    fn float_stage_rounds_half_even() {
        let st = stage(Requant::Float { scales: vec![0.5] }, 32, 0, 0, 255);
        assert_eq!(st.apply(5), 2); // 2.5 -> 2
        assert_eq!(st.apply(7), 4); // 3.5 -> 4
        assert_eq!(st.apply(-7), 0); // clamped at 0
        assert_eq!(st.apply(10_000), 255);
    }

    #[test]
    fn float_chain_rounds_each_step_in_float32() {
        let st = stage(
            Requant::FloatChain {
                scales: vec![0.5],
                offsets: vec![0.25],
                output_scale: 0.5,
            },
            32,
            3,
            0,
            255,
        );
        assert_eq!(st.apply(4), 7); // (2 + 0.25) / 0.5 = 4.5 -> 4 (even), + 3
        assert_eq!(st.apply(-100), 0); // clamped
    }

    #[test]
    fn shift_stage_handles_both_directions() {
        let st = stage(
            Requant::Shift {
                shift: 3,
                rounding: Rounding::HalfUp,
            },
            48,
            0,
            -32768,
            32767,
        );
        assert_eq!(st.apply(12), 2); // 1.5 -> 2
        assert_eq!(st.apply(-12), -1); // -1.5 -> -1 (ties up)
        assert_eq!(st.apply(1 << 50), 32767); // acc saturates to 2^47-1, then output
        let left = stage(
            Requant::Shift {
                shift: -2,
                rounding: Rounding::HalfUp,
            },
            32,
            0,
            -128,
            127,
        );
        assert_eq!(left.apply(3), 12);
        assert_eq!(left.apply(-100), -128);
    }
}
