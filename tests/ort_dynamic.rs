//! ONNX Runtime's dynamic quantisation arithmetic (`numerics::ort_dynamic`,
//! docs/onnx.md item 20) against ONNX Runtime's own outputs, bit for bit:
//! `tests/data/ort_dynamic/` is written by `scripts/ort_dynamic_probe.py
//! --goldens` (ONNX Runtime 1.32): DynamicQuantizeLinear on twelve small
//! tensors (random, all-positive, all-negative, ties, all zeros), and one
//! DynamicQuantizeLinear -> ConvInteger -> Cast -> Mul -> Add chain, and
//! float32 Softmax rows (MLAS's AVX-512F kernel); and, written by
//! `scripts/ort_lrn_probe.py --goldens`, ONNX Runtime's LRN powers of exact
//! scales and two whole float32 LRNs (Eigen's packet `pow` and the tail's
//! `powf`, `numerics::eigen_pow`).

use std::path::{Path, PathBuf};

use accsim::numerics::eigen_pow::packet_pow;
use accsim::numerics::ort::{Lrn, LrnPlace};
use accsim::numerics::ort_dynamic::{DynamicQuant, float_epilogue, multiplier};
use accsim::workload::ir::FLOAT32_WORDS;
use accsim::workload::npy::read_npy_any;

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("tests/data/ort_dynamic/{name}.npy"))
}

/// The array's values and shape (every value of these files is exact in f64).
fn load(name: &str) -> (Vec<f64>, Vec<usize>) {
    let path: &Path = &data(name);
    let a = read_npy_any(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    (a.to_f64(), a.shape().to_vec())
}

#[test]
fn dynamic_quantize_linear_equals_onnx_runtime_bit_for_bit() {
    let (x, shape) = load("dql.x");
    let (y, _) = load("dql.y");
    let (scales, _) = load("dql.scale");
    let (zps, _) = load("dql.zp");
    let tensors = shape[0];
    assert_eq!(tensors, 12);
    let per = x.len() / tensors;
    let mut ties = 0;
    for t in 0..tensors {
        let xs: Vec<f32> = x[t * per..(t + 1) * per]
            .iter()
            .map(|&v| v as f32)
            .collect();
        let q = DynamicQuant::of(xs.iter().copied());
        assert_eq!(
            q.scale.to_bits(),
            (scales[t] as f32).to_bits(),
            "tensor {t}: scale"
        );
        assert_eq!(q.zero_point, zps[t] as i32, "tensor {t}: zero point");
        for (i, &v) in xs.iter().enumerate() {
            assert_eq!(
                i64::from(q.quantize(v)),
                y[t * per + i] as i64,
                "tensor {t}, element {i}: {v}"
            );
            let r = v / q.scale;
            ties += usize::from((r - r.floor()) == 0.5);
        }
    }
    // The tie tensors put values exactly half-way: the rounding rule is tested.
    assert!(ties > 100, "only {ties} ties");
    // The last tensor is all zeros: scale 1, zero point 0.
    assert_eq!((scales[11], zps[11]), (1.0, 0.0));
}

#[test]
fn conv_integer_chain_equals_onnx_runtime_bit_for_bit() {
    let (x, xshape) = load("conv.x");
    let (w, wshape) = load("conv.w");
    let (wz, _) = load("conv.wz");
    let (ws, _) = load("conv.ws");
    let (b, _) = load("conv.b");
    let (y, yshape) = load("conv.y");
    let (cin, h, wd) = (xshape[1], xshape[2], xshape[3]);
    let cout = wshape[0];
    assert_eq!(yshape, vec![1, cout, h, wd]);
    let xs: Vec<f32> = x.iter().map(|&v| v as f32).collect();
    let q = DynamicQuant::of(xs.iter().copied());
    let xq: Vec<i64> = xs.iter().map(|&v| i64::from(q.quantize(v))).collect();
    let m = multiplier(q.scale, ws[0] as f32);
    let zx = i64::from(q.zero_point);
    let zw = wz[0] as i64;
    for o in 0..cout {
        for oy in 0..h {
            for ox in 0..wd {
                // 3x3, pads 1: ConvInteger pads with the zero point, which
                // contributes nothing to sum (x - zx) (w - zw).
                let mut acc = 0i64;
                for c in 0..cin {
                    for ky in 0..3 {
                        for kx in 0..3 {
                            let (iy, ix) = ((oy + ky) as isize - 1, (ox + kx) as isize - 1);
                            if iy < 0 || ix < 0 || iy as usize >= h || ix as usize >= wd {
                                continue;
                            }
                            let xi = xq[(c * h + iy as usize) * wd + ix as usize] - zx;
                            let wi = w[((o * cin + c) * 3 + ky) * 3 + kx] as i64 - zw;
                            acc += xi * wi;
                        }
                    }
                }
                let got = float_epilogue(acc, m, b[o] as f32);
                let theirs = y[(o * h + oy) * wd + ox] as f32;
                assert_eq!(got.to_bits(), theirs.to_bits(), "output ({o}, {oy}, {ox})");
            }
        }
    }
}

/// ONNX Runtime's float32 Softmax (MLAS's AVX-512F kernel; the goldens were
/// made on a CPU with AVX-512F) over rows of 1,000 and 37 logits, spread
/// from 1 to 13 standard deviations (small probabilities underflow to
/// subnormals).
#[test]
fn float_softmax_equals_onnx_runtime_bit_for_bit() {
    let mut checked = 0;
    for d in [1000usize, 37] {
        let (x, shape) = load(&format!("softmax{d}.x"));
        let (y, _) = load(&format!("softmax{d}.y"));
        assert_eq!(shape[1], d);
        for (r, (row, theirs)) in x.chunks(d).zip(y.chunks(d)).enumerate() {
            let row: Vec<f32> = row.iter().map(|&v| v as f32).collect();
            let ours = accsim::numerics::ort_dynamic::mlas_softmax(&row);
            for (i, (a, &b)) in ours.iter().zip(theirs).enumerate() {
                assert_eq!(
                    a.to_bits(),
                    (b as f32).to_bits(),
                    "{d} logits, row {r}, element {i}"
                );
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 3 * 1000 + 4 * 37);
}

#[test]
fn eigen_packet_pow_equals_onnx_runtimes_lrn_power_bit_for_bit() {
    // scripts/ort_lrn_probe.py: ONNX Runtime's LRN outputs where the input
    // is 1.0 and the scale exact, i.e. its powers of those scales.
    let (scales, _) = load("lrn_pow.scale");
    let (exponents, _) = load("lrn_pow.exponent");
    let (powers, _) = load("lrn_pow.y");
    assert_eq!(scales.len(), 2101);
    let mut differ_from_powf = 0;
    for ((&s, &e), &p) in scales.iter().zip(&exponents).zip(&powers) {
        let (s, e, p) = (s as f32, e as f32, p as f32);
        let got = packet_pow(s, e);
        assert_eq!(
            got.to_bits(),
            p.to_bits(),
            "{s:e}^{e}: {got:e}, ONNX Runtime {p:e}"
        );
        differ_from_powf += usize::from(s.powf(e) != p);
    }
    // glibc's powf (what accsim used before) differs in 543 of them (as
    // numpy counts with ctypes' powf on the same files).
    assert_eq!(differ_from_powf, 543);
}

#[test]
fn float_lrn_equals_onnx_runtime_bit_for_bit_tail_included() {
    // name, size, alpha, beta, bias (scripts/ort_lrn_probe.py LRN_CASES).
    for (name, size, alpha, beta, bias) in [
        ("lrn_googlenet", 5, 1e-4, 0.75, 1.0),
        ("lrn_wide", 3, 0.1, 0.6, 2.0),
    ] {
        let (x, shape) = load(&format!("{name}.x"));
        let (y, _) = load(&format!("{name}.y"));
        let (c, h, w) = (shape[0], shape[1], shape[2]);
        let k = Lrn::new((size, alpha, beta, bias), &FLOAT32_WORDS, &FLOAT32_WORDS);
        let mut out = vec![0.0f32; c];
        for position in 0..h * w {
            let column: Vec<f32> = (0..c).map(|ch| x[ch * h * w + position] as f32).collect();
            k.float_column(
                &column,
                &mut out,
                LrnPlace {
                    position,
                    plane: h * w,
                },
            );
            for (ch, &v) in out.iter().enumerate() {
                let want = y[ch * h * w + position] as f32;
                assert_eq!(
                    v.to_bits(),
                    want.to_bits(),
                    "{name} channel {ch} position {position}"
                );
            }
        }
    }
}
