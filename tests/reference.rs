//! The reference executor on cases computed by hand, and against a naive
//! direct summation on random shapes.

use accsim::numerics::{
    Activation, IntType, OutputStage, Requant, Rounding, TensorQuant, WeightQuant,
};
use accsim::reference::{self, conv_accumulate, execute_layer, zero_operand_macs};
use accsim::workload::ir::{
    Conv2d, Epilogue, FullyConnected, Layer, Op, Padding, Pool, Shape, TensorSource,
};
use ndarray::{Array2, Array3, Array4};
use proptest::prelude::*;

fn affine(dtype: IntType, scale: f32, zero_point: i32) -> TensorQuant {
    TensorQuant::Affine {
        dtype,
        scale,
        zero_point,
    }
}

fn fixed(bits: u32, frac_len: i32) -> TensorQuant {
    TensorQuant::Fixed { bits, frac_len }
}

fn stage(
    requant: Requant,
    accumulator_bits: u32,
    activation: Activation,
    out: &TensorQuant,
) -> OutputStage {
    let (clamp_min, clamp_max) = activation.clamp_range(out);
    OutputStage {
        accumulator_bits,
        requant,
        zero_point: out.zero(),
        clamp_min,
        clamp_max,
    }
}

fn layer(
    op: Op,
    input_shape: Shape,
    input_quant: TensorQuant,
    output_shape: Shape,
    output_quant: TensorQuant,
) -> Layer {
    Layer {
        name: "t".into(),
        inputs: vec![TensorSource::Input],
        input_shape,
        input_quant,
        output_shape,
        output_quant,
        op,
    }
}

fn tensor(c: usize, h: usize, w: usize, v: &[i16]) -> Array3<i16> {
    Array3::from_shape_vec((c, h, w), v.to_vec()).expect("test tensor shape")
}

fn flat(a: &Array3<i16>) -> Vec<i16> {
    a.iter().copied().collect()
}

#[test]
fn conv_affine_tflite_by_hand_shows_double_rounding() {
    // uint8 input, zero point 2; centred:
    //   [0  3 -2]
    //   [5  0  7]
    //   [-1 1  2]
    // weights [[1, -2], [3, 4]], stride 1, no padding: sums 9, 35, 6, -3;
    // bias 10 -> 19, 45, 16, 7.
    // M = 0.25 -> multiplier 2^30, shift -1: SRDHM halves with ties up, then
    // RoundingDivideByPOT halves with ties away from zero:
    //   19 -> 9.5 -> 10 -> 5;  45 -> 22.5 -> 23 -> 11.5 -> 12 (a single rounding
    //   of 11.25 would give 11);  16 -> 8 -> 4;  7 -> 3.5 -> 4 -> 2.
    // Output zero point 3, ReLU clamp at 3: 8, 15, 7, 5.
    let inq = affine(IntType::Uint8, 0.5, 2);
    let outq = affine(IntType::Uint8, 1.0, 3);
    let input = tensor(1, 3, 3, &[2, 5, 0, 7, 2, 9, 1, 3, 4]);
    let conv = Conv2d {
        kernel: [2, 2],
        stride: [1, 1],
        padding: Padding::default(),
        groups: 1,
        weights: Array4::from_shape_vec((1, 1, 2, 2), vec![1, -2, 3, 4]).expect("shape"),
        weight_quant: WeightQuant::Affine {
            dtype: IntType::Int8,
            scales: vec![0.5],
            zero_point: 0,
        },
        epilogue: Epilogue {
            bias: vec![10],
            activation: Activation::Relu,
            output_stage: stage(
                Requant::Tflite {
                    multipliers: vec![1 << 30],
                    shifts: vec![-1],
                },
                32,
                Activation::Relu,
                &outq,
            ),
        },
    };
    let acc = conv_accumulate(&conv, 2, &input);
    assert_eq!(
        acc.iter().copied().collect::<Vec<i64>>(),
        vec![19, 45, 16, 7]
    );
    let l = layer(
        Op::Conv2d(conv),
        Shape::new(1, 3, 3),
        inq,
        Shape::new(1, 2, 2),
        outq,
    );
    assert_eq!(flat(&execute_layer(&l, &[&input])), vec![8, 15, 7, 5]);
}

#[test]
fn conv_fixed_point_by_hand_with_padding_and_negative_ties() {
    // Q.2 input [[4, -3], [1, 2]], Q.1 weights [[1, 0, -1], [2, 0, 0], [0, 3, 1]],
    // padding 1 on every side: sums 5, 14, 3, 6; bias -7 -> -2, 7, -4, -1 (Q.3).
    // Output Q.1: shift 2 with half_up: -0.5 -> 0, 1.75 -> 2, -1 -> -1, -0.25 -> 0.
    let inq = fixed(16, 2);
    let outq = fixed(16, 1);
    let input = tensor(1, 2, 2, &[4, -3, 1, 2]);
    let conv = Conv2d {
        kernel: [3, 3],
        stride: [1, 1],
        padding: Padding {
            top: 1,
            left: 1,
            bottom: 1,
            right: 1,
        },
        groups: 1,
        weights: Array4::from_shape_vec((1, 1, 3, 3), vec![1, 0, -1, 2, 0, 0, 0, 3, 1])
            .expect("shape"),
        weight_quant: WeightQuant::Fixed {
            bits: 16,
            frac_len: 1,
        },
        epilogue: Epilogue {
            bias: vec![-7],
            activation: Activation::None,
            output_stage: stage(
                Requant::Shift {
                    shift: 2,
                    rounding: Rounding::HalfUp,
                },
                48,
                Activation::None,
                &outq,
            ),
        },
    };
    let l = layer(
        Op::Conv2d(conv),
        Shape::new(1, 2, 2),
        inq,
        Shape::new(1, 2, 2),
        outq,
    );
    assert_eq!(flat(&execute_layer(&l, &[&input])), vec![0, 2, -1, 0]);
    // 36 MACs (4 positions x 9 taps). A MAC has two non-zero operands only for a
    // non-zero weight tap, (0,0), (0,2), (1,0), (2,1), (2,2), landing on one of the
    // four (all non-zero) inputs: 1, 1, 2, 2 and 1 output positions respectively,
    // 7 in all; the other 29 MACs have a zero operand.
    assert_eq!(l.macs(), 36);
    assert_eq!(zero_operand_macs(&l, &input), 36 - 7);
}

#[test]
fn fc_affine_float_rounds_half_to_even() {
    // x = [2, -1, 3]; W = [[1, 2, 1], [4, 0, -2]]: sums 3, 2; bias [2, 12] -> 5, 14.
    // Scales: 0.5 * [1.0, 0.5] / 1.0 = [0.5, 0.25]: 2.5 -> 2 (even), 3.5 -> 4 (even).
    // Output zero point -1: [1, 3].
    let inq = affine(IntType::Int8, 0.5, 0);
    let outq = affine(IntType::Int8, 1.0, -1);
    let fc = FullyConnected {
        weights: Array2::from_shape_vec((2, 3), vec![1, 2, 1, 4, 0, -2]).expect("shape"),
        weight_quant: WeightQuant::Affine {
            dtype: IntType::Int8,
            scales: vec![1.0, 0.5],
            zero_point: 0,
        },
        epilogue: Epilogue {
            bias: vec![2, 12],
            activation: Activation::None,
            output_stage: stage(
                Requant::Float {
                    scales: vec![0.5, 0.25],
                },
                32,
                Activation::None,
                &outq,
            ),
        },
    };
    let input = tensor(3, 1, 1, &[2, -1, 3]);
    let l = layer(
        Op::FullyConnected(fc),
        Shape::new(3, 1, 1),
        inq,
        Shape::new(2, 1, 1),
        outq,
    );
    assert_eq!(flat(&execute_layer(&l, &[&input])), vec![1, 3]);
}

#[test]
fn depthwise_conv_by_hand() {
    // Channel 0 [[1, 2], [3, 4]] with kernel [1, -1]: -1, -1.
    // Channel 1 [[5, 6], [7, 8]] with kernel [2, 1]: 16, 22.
    let q = fixed(8, 0);
    let conv = Conv2d {
        kernel: [1, 2],
        stride: [1, 1],
        padding: Padding::default(),
        groups: 2,
        weights: Array4::from_shape_vec((2, 1, 1, 2), vec![1, -1, 2, 1]).expect("shape"),
        weight_quant: WeightQuant::Fixed {
            bits: 8,
            frac_len: 0,
        },
        epilogue: Epilogue {
            bias: vec![0, 0],
            activation: Activation::None,
            output_stage: stage(
                Requant::Shift {
                    shift: 0,
                    rounding: Rounding::HalfUp,
                },
                32,
                Activation::None,
                &q,
            ),
        },
    };
    let input = tensor(2, 2, 2, &[1, 2, 3, 4, 5, 6, 7, 8]);
    let l = layer(
        Op::Conv2d(conv),
        Shape::new(2, 2, 2),
        q,
        Shape::new(2, 2, 1),
        q,
    );
    assert_eq!(l.op.kind(), "depthwise_conv2d");
    assert_eq!(flat(&execute_layer(&l, &[&input])), vec![-1, -1, 16, 22]);
}

fn pool(kernel: usize, stride: usize, ceil_mode: bool, rounding: Rounding) -> Pool {
    Pool {
        kernel: [kernel; 2],
        stride: [stride; 2],
        padding: Padding::default(),
        ceil_mode,
        rounding,
    }
}

#[test]
fn pools_by_hand() {
    // [[1, 5, 2], [3, 4, 9], [0, -3, 6]], 2x2 stride 2, ceil mode -> 2x2 output;
    // the right and bottom windows overhang and see 2, 2 and 1 elements.
    let q = affine(IntType::Int8, 1.0, 0);
    let input = tensor(1, 3, 3, &[1, 5, 2, 3, 4, 9, 0, -3, 6]);
    let out = Shape::new(1, 2, 2);
    let max = layer(
        Op::MaxPool(pool(2, 2, true, Rounding::HalfAwayFromZero)),
        Shape::new(1, 3, 3),
        q,
        out,
        q,
    );
    assert_eq!(flat(&execute_layer(&max, &[&input])), vec![5, 9, 0, 6]);
    // Averages: 13/4 = 3.25 -> 3; 11/2 = 5.5 -> 6; -3/2 = -1.5 -> -2 (away from zero); 6.
    let avg = layer(
        Op::AvgPool(pool(2, 2, true, Rounding::HalfAwayFromZero)),
        Shape::new(1, 3, 3),
        q,
        out,
        q,
    );
    assert_eq!(flat(&execute_layer(&avg, &[&input])), vec![3, 6, -2, 6]);
    // The same with half_up: -1.5 -> -1.
    let avg_up = layer(
        Op::AvgPool(pool(2, 2, true, Rounding::HalfUp)),
        Shape::new(1, 3, 3),
        q,
        out,
        q,
    );
    assert_eq!(flat(&execute_layer(&avg_up, &[&input])), vec![3, 6, -1, 6]);
    // Global average: 27 / 9 = 3.
    let gap = layer(
        Op::GlobalAvgPool {
            rounding: Rounding::HalfAwayFromZero,
        },
        Shape::new(1, 3, 3),
        q,
        Shape::new(1, 1, 1),
        q,
    );
    assert_eq!(flat(&execute_layer(&gap, &[&input])), vec![3]);
    // Flatten is channel-major.
    let two = tensor(2, 1, 2, &[1, 2, 3, 4]);
    let fl = layer(Op::Flatten, Shape::new(2, 1, 2), q, Shape::new(4, 1, 1), q);
    let out = execute_layer(&fl, &[&two]);
    assert_eq!(out.dim(), (4, 1, 1));
    assert_eq!(flat(&out), vec![1, 2, 3, 4]);
}

#[test]
fn accumulator_saturates_before_the_shift() {
    // 8-bit fixed point, 16-bit accumulator: 3 x 127 x 127 = 48387 saturates to
    // 32767; shift 9 with half_up: 32767 / 512 = 63.998 -> 64. Without the
    // accumulator saturation it would be 48387 / 512 = 94.5 -> 95.
    let q = fixed(8, 0);
    let outq = fixed(8, -9);
    let make = |bits: u32| {
        let fc = FullyConnected {
            weights: Array2::from_shape_vec((1, 3), vec![127, 127, 127]).expect("shape"),
            weight_quant: WeightQuant::Fixed {
                bits: 8,
                frac_len: 0,
            },
            epilogue: Epilogue {
                bias: vec![0],
                activation: Activation::None,
                output_stage: stage(
                    Requant::Shift {
                        shift: 9,
                        rounding: Rounding::HalfUp,
                    },
                    bits,
                    Activation::None,
                    &outq,
                ),
            },
        };
        layer(
            Op::FullyConnected(fc),
            Shape::new(3, 1, 1),
            q,
            Shape::new(1, 1, 1),
            outq,
        )
    };
    let input = tensor(3, 1, 1, &[127, 127, 127]);
    assert_eq!(flat(&execute_layer(&make(16), &[&input])), vec![64]);
    assert_eq!(flat(&execute_layer(&make(32), &[&input])), vec![95]);
}

#[test]
fn most_negative_operands_and_output_saturation() {
    // int8 input -128 with zero point 127 centres to -255; weight -128 with
    // zero point 0: one product of +32640. M = 2^-8 -> 127.5 -> 128 (ties away
    // from zero in RoundingDivideByPOT), + zero point -128 = 0.
    // With zero point 0 the same 128 saturates to 127.
    let inq = affine(IntType::Int8, 1.0, 127);
    let input = tensor(1, 1, 1, &[-128]);
    let make = |zp: i32| {
        let outq = affine(IntType::Int8, 1.0, zp);
        let fc = FullyConnected {
            weights: Array2::from_shape_vec((1, 1), vec![-128]).expect("shape"),
            weight_quant: WeightQuant::Affine {
                dtype: IntType::Int8,
                scales: vec![1.0],
                zero_point: 0,
            },
            epilogue: Epilogue {
                bias: vec![0],
                activation: Activation::None,
                output_stage: stage(
                    Requant::Tflite {
                        multipliers: vec![1 << 30],
                        shifts: vec![-7],
                    },
                    32,
                    Activation::None,
                    &outq,
                ),
            },
        };
        layer(
            Op::FullyConnected(fc),
            Shape::new(1, 1, 1),
            inq,
            Shape::new(1, 1, 1),
            outq,
        )
    };
    assert_eq!(flat(&execute_layer(&make(-128), &[&input])), vec![0]);
    assert_eq!(flat(&execute_layer(&make(0), &[&input])), vec![127]);
}

/// The plainest possible convolution: per output element, per tap, with an
/// explicit bounds test instead of a padded copy.
#[allow(clippy::too_many_arguments)]
fn naive_conv(
    x: &Array3<i16>,
    zx: i32,
    w: &Array4<i16>,
    zw: i32,
    bias: &[i64],
    stride: [usize; 2],
    pad: Padding,
    groups: usize,
) -> (Array3<i64>, u64) {
    let (_, h, wd) = x.dim();
    let (oc, icg, kh, kw) = w.dim();
    let oh = (h + pad.top + pad.bottom - kh) / stride[0] + 1;
    let ow = (wd + pad.left + pad.right - kw) / stride[1] + 1;
    let mut out = Array3::<i64>::zeros((oc, oh, ow));
    let mut nonzero_macs = 0u64;
    for o in 0..oc {
        let g = o / (oc / groups);
        for y in 0..oh {
            for xo in 0..ow {
                let mut s = bias[o];
                for i in 0..icg {
                    for ky in 0..kh {
                        for kx in 0..kw {
                            let iy = (y * stride[0] + ky) as i64 - pad.top as i64;
                            let ix = (xo * stride[1] + kx) as i64 - pad.left as i64;
                            let xv =
                                if iy >= 0 && ix >= 0 && (iy as usize) < h && (ix as usize) < wd {
                                    i64::from(x[[g * icg + i, iy as usize, ix as usize]])
                                        - i64::from(zx)
                                } else {
                                    0
                                };
                            let wv = i64::from(w[[o, i, ky, kx]]) - i64::from(zw);
                            s += xv * wv;
                            nonzero_macs += u64::from(xv != 0 && wv != 0);
                        }
                    }
                }
                out[[o, y, xo]] = s;
            }
        }
    }
    (out, nonzero_macs)
}

#[derive(Debug, Clone)]
struct ConvCase {
    groups: usize,
    icg: usize,
    ocg: usize,
    h: usize,
    w: usize,
    kernel: [usize; 2],
    stride: [usize; 2],
    pad: [usize; 4],
    zx: i32,
    zw: i32,
    x: Vec<i16>,
    wts: Vec<i16>,
    bias: Vec<i64>,
}

fn conv_case() -> impl Strategy<Value = ConvCase> {
    (
        (1usize..4, 1usize..4, 1usize..4),
        (1usize..4, 1usize..4, 1usize..4, 1usize..4),
        (0usize..3, 0usize..3, 0usize..3, 0usize..3),
        (1usize..9, 1usize..9),
    )
        .prop_flat_map(
            |((groups, icg, ocg), (kh, kw, sy, sx), (pt, pl, pb, pr), (h_extra, w_extra))| {
                // At least one element, and the kernel always fits the padded input.
                let h = (kh + h_extra).saturating_sub(pt + pb).max(1);
                let w = (kw + w_extra).saturating_sub(pl + pr).max(1);
                let n_x = groups * icg * h * w;
                let n_w = groups * ocg * icg * kh * kw;
                (
                    Just((groups, icg, ocg, h, w, [kh, kw], [sy, sx], [pt, pl, pb, pr])),
                    -128i32..128,
                    -20i32..20,
                    proptest::collection::vec(prop_oneof![Just(0i16), -128i16..128], n_x),
                    proptest::collection::vec(prop_oneof![Just(0i16), -128i16..128], n_w),
                    proptest::collection::vec(-100_000i64..100_000, groups * ocg),
                )
            },
        )
        .prop_map(
            |((groups, icg, ocg, h, w, kernel, stride, pad), zx, zw, x, wts, bias)| ConvCase {
                groups,
                icg,
                ocg,
                h,
                w,
                kernel,
                stride,
                pad,
                zx,
                zw,
                x,
                wts,
                bias,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn conv_equals_direct_summation(case in conv_case()) {
        let pad = Padding { top: case.pad[0], left: case.pad[1], bottom: case.pad[2], right: case.pad[3] };
        let x = Array3::from_shape_vec((case.groups * case.icg, case.h, case.w), case.x.clone()).expect("x");
        let w = Array4::from_shape_vec((case.groups * case.ocg, case.icg, case.kernel[0], case.kernel[1]), case.wts.clone()).expect("w");
        let out_q = affine(IntType::Int8, 1.0, 0);
        let conv = Conv2d {
            kernel: case.kernel,
            stride: case.stride,
            padding: pad,
            groups: case.groups,
            weights: w.clone(),
            weight_quant: WeightQuant::Affine { dtype: IntType::Int8, scales: vec![1.0], zero_point: case.zw },
            epilogue: Epilogue {
                bias: case.bias.clone(),
                activation: Activation::Relu,
                output_stage: stage(Requant::Float { scales: vec![0.01] }, 32, Activation::Relu, &out_q),
            },
        };
        let (expect, nonzero) = naive_conv(&x, case.zx, &w, case.zw, &case.bias, case.stride, pad, case.groups);
        let acc = conv_accumulate(&conv, case.zx, &x);
        prop_assert_eq!(&acc, &expect);
        let (oc, oh, ow) = expect.dim();
        let in_q = affine(IntType::Int8, 1.0, case.zx);
        let l = layer(Op::Conv2d(conv), Shape::new(case.groups * case.icg, case.h, case.w), in_q, Shape::new(oc, oh, ow), out_q);
        prop_assert_eq!(l.macs(), (oc * oh * ow * case.icg * case.kernel[0] * case.kernel[1]) as u64);
        prop_assert_eq!(zero_operand_macs(&l, &x), l.macs() - nonzero);
        // The whole layer equals the output stage applied to the direct sums.
        let out = execute_layer(&l, &[&x]);
        if let Op::Conv2d(c) = &l.op {
            for (((o, _, _), &got), &sum) in out.indexed_iter().zip(expect.iter()) {
                prop_assert_eq!(got, c.epilogue.output_stage.channel(o).apply(sum));
            }
        }
    }

    #[test]
    fn fc_equals_direct_summation(
        n_in in 1usize..40, n_out in 1usize..10, zx in -128i32..128,
        seed in proptest::collection::vec(-128i16..128, 400),
    ) {
        let x: Vec<i16> = (0..n_in).map(|i| seed[i % seed.len()]).collect();
        let wv: Vec<i16> = (0..n_in * n_out).map(|i| seed[(i * 7 + 3) % seed.len()]).collect();
        let bias: Vec<i64> = (0..n_out as i64).map(|o| o * 37 - 50).collect();
        let out_q = affine(IntType::Int8, 1.0, 0);
        let fc = FullyConnected {
            weights: Array2::from_shape_vec((n_out, n_in), wv.clone()).expect("w"),
            weight_quant: WeightQuant::Affine { dtype: IntType::Int8, scales: vec![1.0], zero_point: 0 },
            epilogue: Epilogue { bias: bias.clone(), activation: Activation::None, output_stage: stage(Requant::Float { scales: vec![1.0] }, 32, Activation::None, &out_q) },
        };
        let input = Array3::from_shape_vec((n_in, 1, 1), x.clone()).expect("x");
        let acc = reference::fc_accumulate(&fc, zx, &input);
        for o in 0..n_out {
            let expect: i64 = bias[o] + (0..n_in).map(|i| (i64::from(x[i]) - i64::from(zx)) * i64::from(wv[o * n_in + i])).sum::<i64>();
            prop_assert_eq!(acc[[o, 0, 0]], expect);
        }
    }
}
