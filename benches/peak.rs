//! The machine's own integer multiply-add peak against the kernels.
//!
//! Peak: a plain dot-product loop over L1-resident operands, one core, at 16
//! bits (`vpmaddwd` + `vpaddd`: 16 MACs per multiply instruction) and at 8
//! bits (`vpmaddubsw` + `vpmaddwd` by ones + `vpaddd`: 32 MACs per multiply
//! instruction), written with AVX2 intrinsics so the instructions are the
//! ones named (no reliance on the auto-vectoriser). Kernels: the reference
//! executor's convolution, depthwise convolution and fully connected layer
//! (`reference::conv_accumulate`, `fc_accumulate`) on one thread, at 16x16
//! operands (16-bit dynamic fixed point), 8x8 operands (PELUSO's 8-bit mode:
//! the high bytes of the same words) and 8-bit affine operands (uint8 minus
//! its zero point, as MobileNet's).
//!
//! After criterion's groups, a table prints each kernel's G MAC/s and its
//! share of the peak of its operand width (best of 15 timed repetitions):
//! `cargo bench --bench peak -- --measurement-time 2`.

use std::hint::black_box;
use std::time::Instant;

use criterion::{Criterion, Throughput};
use ndarray::{Array2, Array3, Array4};

use accsim::numerics::{Activation, OutputStage, Requant, Rounding, WeightQuant};
use accsim::workload::ir::{Conv2d, Epilogue, FullyConnected, Padding};

/// Operand elements per peak call: 2 x 4 KiB of i16, inside L1.
const PEAK_LEN: usize = 2048;

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn peak16_avx2(a: &[i16], b: &[i16], reps: usize) -> i32 {
    use std::arch::x86_64::*;
    let mut acc = [_mm256_setzero_si256(); 4];
    for _ in 0..reps {
        for (ca, cb) in a.chunks_exact(64).zip(b.chunks_exact(64)) {
            for (i, v) in acc.iter_mut().enumerate() {
                // SAFETY: chunks of 64 i16 hold four 16-lane vectors.
                let (x, y) = unsafe {
                    (
                        _mm256_loadu_si256(ca.as_ptr().add(16 * i) as *const __m256i),
                        _mm256_loadu_si256(cb.as_ptr().add(16 * i) as *const __m256i),
                    )
                };
                *v = _mm256_add_epi32(*v, _mm256_madd_epi16(x, y));
            }
        }
    }
    let s = _mm256_add_epi32(
        _mm256_add_epi32(acc[0], acc[1]),
        _mm256_add_epi32(acc[2], acc[3]),
    );
    let mut out = [0i32; 8];
    // SAFETY: 8 i32 fit `out`.
    unsafe { _mm256_storeu_si256(out.as_mut_ptr() as *mut __m256i, s) };
    out.iter().fold(0, |x, &y| x.wrapping_add(y))
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn peak8_avx2(a: &[u8], b: &[i8], reps: usize) -> i32 {
    use std::arch::x86_64::*;
    let ones = _mm256_set1_epi16(1);
    let mut acc = [_mm256_setzero_si256(); 4];
    for _ in 0..reps {
        for (ca, cb) in a.chunks_exact(128).zip(b.chunks_exact(128)) {
            for (i, v) in acc.iter_mut().enumerate() {
                // SAFETY: chunks of 128 bytes hold four 32-lane vectors.
                let (x, y) = unsafe {
                    (
                        _mm256_loadu_si256(ca.as_ptr().add(32 * i) as *const __m256i),
                        _mm256_loadu_si256(cb.as_ptr().add(32 * i) as *const __m256i),
                    )
                };
                let pairs = _mm256_maddubs_epi16(x, y);
                *v = _mm256_add_epi32(*v, _mm256_madd_epi16(pairs, ones));
            }
        }
    }
    let s = _mm256_add_epi32(
        _mm256_add_epi32(acc[0], acc[1]),
        _mm256_add_epi32(acc[2], acc[3]),
    );
    let mut out = [0i32; 8];
    // SAFETY: 8 i32 fit `out`.
    unsafe { _mm256_storeu_si256(out.as_mut_ptr() as *mut __m256i, s) };
    out.iter().fold(0, |x, &y| x.wrapping_add(y))
}

/// [`peak16_avx2`] on AVX-512 VNNI: `vpdpwssd` on 512-bit registers (32
/// MACs per instruction, the multiply and the add in one), what the
/// matrix-product kernel uses where the CPU has it.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
fn peak16_vnni(a: &[i16], b: &[i16], reps: usize) -> i32 {
    use std::arch::x86_64::*;
    let mut acc = [_mm512_setzero_si512(); 4];
    for _ in 0..reps {
        for (ca, cb) in a.chunks_exact(128).zip(b.chunks_exact(128)) {
            for (i, v) in acc.iter_mut().enumerate() {
                // SAFETY: chunks of 128 i16 hold four 32-lane vectors.
                let (x, y) = unsafe {
                    (
                        _mm512_loadu_si512(ca.as_ptr().add(32 * i) as *const _),
                        _mm512_loadu_si512(cb.as_ptr().add(32 * i) as *const _),
                    )
                };
                *v = _mm512_dpwssd_epi32(*v, x, y);
            }
        }
    }
    let s = _mm512_add_epi32(
        _mm512_add_epi32(acc[0], acc[1]),
        _mm512_add_epi32(acc[2], acc[3]),
    );
    _mm512_reduce_add_epi32(s)
}

/// The 16-bit peak on AVX-512 VNNI, or `None` without it.
fn peak16_512(a: &[i16], b: &[i16], reps: usize) -> Option<i32> {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f")
        && std::arch::is_x86_feature_detected!("avx512bw")
        && std::arch::is_x86_feature_detected!("avx512vnni")
    {
        // SAFETY: the features checked just above.
        return Some(unsafe { peak16_vnni(a, b, reps) });
    }
    let _ = (a, b, reps);
    None
}

/// The portable peak loops (the same sums) for CPUs without AVX2.
fn peak16(a: &[i16], b: &[i16], reps: usize) -> i32 {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: AVX2 checked just above.
        return unsafe { peak16_avx2(a, b, reps) };
    }
    let mut s = 0i32;
    for _ in 0..reps {
        for (&x, &y) in a.iter().zip(b) {
            s = s.wrapping_add(i32::from(x) * i32::from(y));
        }
    }
    s
}

fn peak8(a: &[u8], b: &[i8], reps: usize) -> i32 {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: AVX2 checked just above.
        return unsafe { peak8_avx2(a, b, reps) };
    }
    let mut s = 0i32;
    for _ in 0..reps {
        for (&x, &y) in a.iter().zip(b) {
            s = s.wrapping_add(i32::from(x) * i32::from(y));
        }
    }
    s
}

/// A deterministic stream of values in `lo..=hi`.
fn values(n: usize, seed: u64, lo: i32, hi: i32) -> Vec<i16> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (lo + ((s >> 33) % (hi - lo + 1) as u64) as i32) as i16
        })
        .collect()
}

fn epilogue(n: usize) -> Epilogue {
    Epilogue {
        bias: vec![0; n],
        activation: Activation::None,
        output_stage: OutputStage {
            accumulator_bits: 48,
            requant: Requant::Shift {
                shift: 0,
                rounding: Rounding::HalfUp,
            },
            zero_point: 0,
            clamp_min: -32768,
            clamp_max: 32767,
        },
    }
}

/// Operand ranges of a mode: (input lo, hi, weight lo, hi, reduce to high byte).
#[derive(Clone, Copy)]
struct Mode {
    name: &'static str,
    x: (i32, i32),
    w: (i32, i32),
    high_byte: bool,
    /// Operand bits the peak is taken at.
    bits: u32,
}

const MODES: [Mode; 3] = [
    // 16-bit dynamic fixed point after a ReLU; He-normal-sized weights.
    Mode {
        name: "16x16",
        x: (0, 32767),
        w: (-6000, 6000),
        high_byte: false,
        bits: 16,
    },
    // PELUSO's 8x8: the same words' high bytes.
    Mode {
        name: "8x8 (PELUSO high bytes)",
        x: (0, 32767),
        w: (-6000, 6000),
        high_byte: true,
        bits: 8,
    },
    // Affine uint8 centred on its zero point, int8 weights.
    Mode {
        name: "8x8 (affine uint8)",
        x: (-128, 127),
        w: (-127, 127),
        high_byte: false,
        bits: 8,
    },
];

fn operands(m: Mode, n: usize, seed: u64, range: (i32, i32)) -> Vec<i16> {
    let v = values(n, seed, range.0, range.1);
    if m.high_byte {
        v.into_iter().map(|x| x & !0xFF).collect()
    } else {
        v
    }
}

/// A kernel under test: name, MACs per call, the call.
type Kernel = (String, u32, u64, Box<dyn Fn() + Send + Sync>);

fn kernels() -> Vec<Kernel> {
    let mut out: Vec<Kernel> = Vec::new();
    for m in MODES {
        // fer's conv2_2: 64 -> 64 channels, 3x3, 24x24, padding 1.
        let (c, hw, oc) = (64, 24, 64);
        let x =
            Array3::from_shape_vec((c, hw, hw), operands(m, c * hw * hw, 1, m.x)).expect("shape");
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
            weights: Array4::from_shape_vec((oc, c, 3, 3), operands(m, oc * c * 9, 2, m.w))
                .expect("shape"),
            weight_quant: WeightQuant::Fixed {
                bits: 16,
                frac_len: 15,
            },
            epilogue: epilogue(oc),
        };
        let macs = (oc * c * 9 * hw * hw) as u64;
        out.push((
            format!("conv {}", m.name),
            m.bits,
            macs,
            Box::new(move || {
                black_box(accsim::reference::conv_accumulate(&conv, 0, &x));
            }),
        ));
        // A MobileNet depthwise layer: 128 channels, 3x3, 56x56.
        let (c, hw) = (128, 56);
        let x =
            Array3::from_shape_vec((c, hw, hw), operands(m, c * hw * hw, 3, m.x)).expect("shape");
        let dw = Conv2d {
            kernel: [3, 3],
            stride: [1, 1],
            padding: Padding {
                top: 1,
                left: 1,
                bottom: 1,
                right: 1,
            },
            groups: c,
            weights: Array4::from_shape_vec((c, 1, 3, 3), operands(m, c * 9, 4, m.w))
                .expect("shape"),
            weight_quant: WeightQuant::Fixed {
                bits: 16,
                frac_len: 15,
            },
            epilogue: epilogue(c),
        };
        let macs = (c * 9 * hw * hw) as u64;
        out.push((
            format!("depthwise {}", m.name),
            m.bits,
            macs,
            Box::new(move || {
                black_box(accsim::reference::conv_accumulate(&dw, 0, &x));
            }),
        ));
        // A fully connected layer: 4608 -> 256 (cae's fc1 shape class).
        let (n_in, n_out) = (4608, 256);
        let x = Array3::from_shape_vec((n_in, 1, 1), operands(m, n_in, 5, m.x)).expect("shape");
        let fc = FullyConnected {
            weights: Array2::from_shape_vec((n_out, n_in), operands(m, n_in * n_out, 6, m.w))
                .expect("shape"),
            weight_quant: WeightQuant::Fixed {
                bits: 16,
                frac_len: 15,
            },
            epilogue: epilogue(n_out),
        };
        let macs = (n_in * n_out) as u64;
        out.push((
            format!("fc {}", m.name),
            m.bits,
            macs,
            Box::new(move || {
                black_box(accsim::reference::fc_accumulate(&fc, 0, &x));
            }),
        ));
        out.push(fc_batch(m));
        out.push(conv_batch(m));
    }
    out
}

/// Inputs per batch in the batched rows: one chunk of the precision
/// study's calibration set (`precision::accuracy::CHUNK_SAMPLES`).
const BATCH: usize = 64;

/// The same 4608 -> 256 layer on a batch of inputs: one matrix product
/// with a column per input (`fc_accumulate_batch`), as the study runs it.
fn fc_batch(m: Mode) -> Kernel {
    let (n_in, n_out) = (4608, 256);
    let xs: Vec<Array3<i16>> = (0..BATCH as u64)
        .map(|s| {
            Array3::from_shape_vec((n_in, 1, 1), operands(m, n_in, 100 + s, m.x)).expect("shape")
        })
        .collect();
    let fc = FullyConnected {
        weights: Array2::from_shape_vec((n_out, n_in), operands(m, n_in * n_out, 6, m.w))
            .expect("shape"),
        weight_quant: WeightQuant::Fixed {
            bits: 16,
            frac_len: 15,
        },
        epilogue: epilogue(n_out),
    };
    let macs = (n_in * n_out * BATCH) as u64;
    (
        format!("fc {} ({BATCH} inputs)", m.name),
        m.bits,
        macs,
        Box::new(move || {
            let refs: Vec<&Array3<i16>> = xs.iter().collect();
            black_box(accsim::reference::fc_accumulate_batch(&fc, 0, &refs));
        }),
    )
}

/// ic_cifar10's conv3 (32 -> 64 channels, 5x5, 8x8, padding 2), the
/// largest share of the ic precision study, on a batch of inputs through
/// the output stage (`conv_output_batch`), as the study runs it.
fn conv_batch(m: Mode) -> Kernel {
    let (c, hw, oc) = (32, 8, 64);
    let xs: Vec<Array3<i16>> = (0..BATCH as u64)
        .map(|s| {
            Array3::from_shape_vec((c, hw, hw), operands(m, c * hw * hw, 200 + s, m.x))
                .expect("shape")
        })
        .collect();
    let conv = Conv2d {
        kernel: [5, 5],
        stride: [1, 1],
        padding: Padding {
            top: 2,
            left: 2,
            bottom: 2,
            right: 2,
        },
        groups: 1,
        weights: Array4::from_shape_vec((oc, c, 5, 5), operands(m, oc * c * 25, 7, m.w))
            .expect("shape"),
        weight_quant: WeightQuant::Fixed {
            bits: 16,
            frac_len: 15,
        },
        epilogue: epilogue(oc),
    };
    let macs = (oc * c * 25 * hw * hw * BATCH) as u64;
    (
        format!("conv ic conv3 {} ({BATCH} inputs, outputs)", m.name),
        m.bits,
        macs,
        Box::new(move || {
            let refs: Vec<&Array3<i16>> = xs.iter().collect();
            black_box(accsim::reference::conv_output_batch(&conv, 0, &refs));
        }),
    )
}

fn print_stream_bound(x: &[i16]) {
    println!(
        "one core: {:.1} G MAC/s streaming 4608 x 256 16-bit weights (the FC \
         layer's 2.25 MiB, from L3) against an L1-resident input: the bound of a \
         matrix-vector product whose weights do not stay in L2",
        stream_bound(x)
    );
}

/// G MAC/s of [`peak16`]'s loop with one operand streamed: 4608 x 256
/// values (more than L2 holds) against `x`'s first 4608, over and over, as
/// a matrix-vector product reads its weights.
fn stream_bound(x: &[i16]) -> f64 {
    let (k, rows) = (4608, 256);
    let w = values(k * rows, 11, -6000, 6000);
    let x: Vec<i16> = x.iter().copied().cycle().take(k).collect();
    let s = best_seconds(&|| {
        for row in w.chunks_exact(k) {
            black_box(peak16(black_box(row), black_box(&x), 1));
        }
    });
    (k * rows) as f64 * 1e-9 / s
}

/// Best seconds per call of `f` over 15 repetitions.
/// (`PEAK_REPS` repetitions when set, for profiling.)
fn best_seconds(f: &dyn Fn()) -> f64 {
    f();
    let reps = std::env::var("PEAK_REPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(15);
    (0..reps)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
}

fn main() {
    let a16 = values(PEAK_LEN, 7, -32768, 32767);
    let b16 = values(PEAK_LEN, 8, -32768, 32767);
    let a8: Vec<u8> = values(2 * PEAK_LEN, 9, 0, 255)
        .into_iter()
        .map(|v| v as u8)
        .collect();
    let b8: Vec<i8> = values(2 * PEAK_LEN, 10, -128, 127)
        .into_iter()
        .map(|v| v as i8)
        .collect();
    let reps = 256;
    let one = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .expect("a thread");
    let kernels = kernels();
    let mut c = Criterion::default().configure_from_args();
    {
        let mut g = c.benchmark_group("peak");
        g.throughput(Throughput::Elements((PEAK_LEN * reps) as u64));
        g.bench_function("dot_i16", |b| {
            b.iter(|| peak16(black_box(&a16), black_box(&b16), reps))
        });
        g.throughput(Throughput::Elements((2 * PEAK_LEN * reps) as u64));
        g.bench_function("dot_u8i8", |b| {
            b.iter(|| peak8(black_box(&a8), black_box(&b8), reps))
        });
        if peak16_512(&a16, &b16, 1).is_some() {
            g.throughput(Throughput::Elements((PEAK_LEN * reps) as u64));
            g.bench_function("dot_i16_avx512_vnni", |b| {
                b.iter(|| peak16_512(black_box(&a16), black_box(&b16), reps))
            });
        }
        g.finish();
        let mut g = c.benchmark_group("kernels_1_thread");
        g.sample_size(10);
        for (name, _, macs, f) in &kernels {
            g.throughput(Throughput::Elements(*macs));
            g.bench_function(name.as_str(), |b| b.iter(|| one.install(f)));
        }
        g.finish();
    }
    c.final_summary();
    let peak = |bits: u32| {
        let s = if bits == 16 {
            best_seconds(&|| {
                black_box(peak16(black_box(&a16), black_box(&b16), reps));
            }) / (PEAK_LEN * reps) as f64
        } else {
            best_seconds(&|| {
                black_box(peak8(black_box(&a8), black_box(&b8), reps));
            }) / (2 * PEAK_LEN * reps) as f64
        };
        1e-9 / s
    };
    let (p16, p8) = (peak(16), peak(8));
    println!("\none core: peak 16-bit {p16:.1} G MAC/s, 8-bit {p8:.1} G MAC/s");
    if peak16_512(&a16, &b16, 1).is_some() {
        let s = best_seconds(&|| {
            black_box(peak16_512(black_box(&a16), black_box(&b16), reps));
        }) / (PEAK_LEN * reps) as f64;
        println!(
            "one core: peak 16-bit on AVX-512 VNNI {:.1} G MAC/s (the kernels' \
             percentages below are of the AVX2 peaks)",
            1e-9 / s
        );
    }
    print_stream_bound(&b16);
    // PEAK_FILTER=depthwise (say) times only the kernels whose name has it;
    // a filter ending in `$` only the kernel of that exact name.
    let filter = std::env::var("PEAK_FILTER").unwrap_or_default();
    let selected = |name: &str| match filter.strip_suffix('$') {
        Some(exact) => name == exact,
        None => name.contains(filter.as_str()),
    };
    println!("| kernel (1 thread) | G MAC/s | % of 16-bit peak | % of 8-bit peak |");
    println!("|---|---|---|---|");
    for (name, _, macs, f) in kernels.iter().filter(|k| selected(&k.0)) {
        let g = *macs as f64 * 1e-9 / best_seconds(&|| one.install(f));
        println!(
            "| {name} | {g:.1} | {:.0} % | {:.0} % |",
            100.0 * g / p16,
            100.0 * g / p8
        );
    }
}
