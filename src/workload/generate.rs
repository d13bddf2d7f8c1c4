//! Deterministic, seeded tensor generators.
//!
//! Same seed, same bytes, on every machine and with any number of threads:
//! the random stream is ChaCha8 (specified bit for bit), distributions use
//! only IEEE-exact arithmetic plus `libm` (a software maths library, identical
//! on every platform), and seeds derived from names use FNV-1a, whose output
//! does not depend on the Rust version. A tensor is generated in blocks of
//! [`BLOCK`] elements, block `b` from its own ChaCha stream, so blocks can be
//! generated in parallel without changing a single value.
//! `tests/generators.rs` pins checksums of generated tensors.
//!
//! Zeros are placed on purpose: `sparsity = f` makes exactly `round(f * n)`
//! elements equal to the zero point (pruned weights, ReLU-like activations),
//! chosen at random positions (selection sampling on its own stream, so the
//! values of the other elements do not depend on `f`) or, for `Magnitude`
//! pruning, the smallest magnitudes.

use std::hash::Hasher;

use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{Rng, SeedableRng};
use serde::Serialize;

/// A value distribution. Parameters are in the units of the target: stored
/// integers for quantised tensors, reals for real-valued ones.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "dist", rename_all = "snake_case")]
pub enum Distribution {
    /// Uniform over `[low, high]` (integers inclusive).
    Uniform { low: f64, high: f64 },
    /// Normal with `mean` and standard deviation `std`.
    Gaussian { mean: f64, std: f64 },
    /// Laplace with location `mean` and diversity `scale`.
    Laplace { mean: f64, scale: f64 },
    /// Every element equals `value`.
    Constant { value: f64 },
}

/// Which elements become zero when a sparsity is requested.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Pruning {
    /// Uniformly random positions.
    #[default]
    Random,
    /// The smallest magnitudes (ties broken by position), as magnitude pruning does.
    Magnitude,
}

/// A complete generator description.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Generator {
    #[serde(flatten)]
    pub distribution: Distribution,
    pub seed: u64,
    /// Fraction of elements forced to exactly the zero point; `None` leaves
    /// zeros to chance (rounding).
    pub sparsity: Option<f64>,
    pub pruning: Pruning,
}

/// Seed for a tensor from the network seed and a name such as `conv1/weights`.
pub fn derive_seed(network_seed: u64, name: &str) -> u64 {
    let mut h = fnv::FnvHasher::default();
    h.write(&network_seed.to_le_bytes());
    h.write(name.as_bytes());
    h.finish()
}

/// Elements per independently seeded block.
pub const BLOCK: usize = 1 << 16;
/// Stream of the zero mask; value block `b` uses stream `FIRST_VALUE_STREAM + b`.
const ZERO_STREAM: u64 = 1;
const FIRST_VALUE_STREAM: u64 = 2;

fn rng(seed: u64, stream: u64) -> ChaCha8Rng {
    let mut r = ChaCha8Rng::seed_from_u64(seed);
    r.set_stream(stream);
    r
}

/// A uniform double in [0, 1) from 53 random bits.
#[inline]
fn unit(r: &mut ChaCha8Rng) -> f64 {
    (r.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// Round half to even with exact IEEE arithmetic (no libm call): adding and
/// subtracting 1.5 * 2^52 leaves the nearest integer, ties to even, in the
/// default rounding mode that Rust guarantees.
pub fn round_half_even(x: f64) -> f64 {
    const MAGIC: f64 = 6_755_399_441_055_744.0;
    if x.abs() >= 4_503_599_627_370_496.0 || x.is_nan() {
        return x; // already an integer (or NaN)
    }
    (x + MAGIC) - MAGIC
}

/// Two standard normal deviates from Marsaglia's polar method.
#[inline]
fn normal_pair(r: &mut ChaCha8Rng) -> (f64, f64) {
    loop {
        let u = 2.0 * unit(r) - 1.0;
        let v = 2.0 * unit(r) - 1.0;
        let s = u * u + v * v;
        if s > 0.0 && s < 1.0 {
            let factor = libm::sqrt(-2.0 * libm::log(s) / s);
            return (u * factor, v * factor);
        }
    }
}

/// Draws from one distribution, keeping the spare normal deviate of the
/// polar method for the next call.
struct Sampler {
    distribution: Distribution,
    spare_normal: Option<f64>,
}

impl Sampler {
    fn new(distribution: Distribution) -> Self {
        Sampler {
            distribution,
            spare_normal: None,
        }
    }

    /// A standard normal deviate: Marsaglia's polar method (exact arithmetic,
    /// one logarithm per pair of deviates).
    fn standard_normal(&mut self, r: &mut ChaCha8Rng) -> f64 {
        if let Some(z) = self.spare_normal.take() {
            return z;
        }
        let (first, second) = normal_pair(r);
        self.spare_normal = Some(second);
        first
    }

    /// Fills a fresh block with integer samples in `[lo, hi]`: what
    /// `sample_int` called once per element gives, with the Gaussian's
    /// pairs written two at a time (the generation of big weight tensors
    /// is dominated by this loop).
    fn fill_ints<T>(
        &mut self,
        r: &mut ChaCha8Rng,
        out: &mut [T],
        lo: i64,
        hi: i64,
        narrow: impl Fn(i64) -> T,
    ) {
        match self.distribution {
            Distribution::Gaussian { mean, std } if self.spare_normal.is_none() => {
                let to_int = |z: f64| {
                    let v = round_half_even(mean + std * z);
                    narrow(v.clamp(lo as f64, hi as f64) as i64)
                };
                let mut pairs = out.chunks_exact_mut(2);
                for pair in &mut pairs {
                    let (first, second) = normal_pair(r);
                    pair[0] = to_int(first);
                    pair[1] = to_int(second);
                }
                if let [last] = pairs.into_remainder() {
                    let (first, second) = normal_pair(r);
                    *last = to_int(first);
                    self.spare_normal = Some(second);
                }
            }
            _ => {
                for v in out {
                    *v = narrow(self.sample_int(r, lo, hi));
                }
            }
        }
    }

    fn sample(&mut self, r: &mut ChaCha8Rng) -> f64 {
        match self.distribution {
            Distribution::Uniform { low, high } => low + (high - low) * unit(r),
            Distribution::Gaussian { mean, std } => mean + std * self.standard_normal(r),
            Distribution::Laplace { mean, scale } => {
                // Inverse CDF: u in (-1/2, 1/2).
                let u = unit(r) - 0.5;
                let magnitude = -scale * libm::log(1.0 - 2.0 * u.abs()).max(-1e300);
                mean + if u < 0.0 { -magnitude } else { magnitude }
            }
            Distribution::Constant { value } => value,
        }
    }

    /// An integer sample in `[lo, hi]`. Uniform is exact over the integers of
    /// `[low, high]`; the others round half to even and clamp.
    fn sample_int(&mut self, r: &mut ChaCha8Rng, lo: i64, hi: i64) -> i64 {
        match self.distribution {
            Distribution::Uniform { low, high } => {
                let a = (low.ceil() as i64).clamp(lo, hi);
                let b = (high.floor() as i64).clamp(a, hi);
                let span = (b - a) as f64 + 1.0;
                a + ((unit(r) * span) as i64).min(b - a)
            }
            _ => {
                let v = round_half_even(self.sample(r));
                v.clamp(lo as f64, hi as f64) as i64
            }
        }
    }
}

/// Fills `values` with integers block by block, each block from its own
/// stream, in parallel (the same values as [`fill_blocks`] with `sample_int`).
fn fill_int_blocks<T: Send>(
    generator: &Generator,
    values: &mut [T],
    lo: i64,
    hi: i64,
    narrow: impl Fn(i64) -> T + Sync,
) {
    use rayon::prelude::*;
    values
        .par_chunks_mut(BLOCK)
        .enumerate()
        .for_each(|(block, chunk)| {
            let mut r = rng(generator.seed, FIRST_VALUE_STREAM + block as u64);
            Sampler::new(generator.distribution).fill_ints(&mut r, chunk, lo, hi, &narrow);
        });
}

/// Fills `values` block by block, each block from its own stream, in parallel.
fn fill_blocks<T: Send>(
    generator: &Generator,
    values: &mut [T],
    draw: impl Fn(&mut Sampler, &mut ChaCha8Rng) -> T + Sync,
) {
    use rayon::prelude::*;
    values
        .par_chunks_mut(BLOCK)
        .enumerate()
        .for_each(|(block, chunk)| {
            let mut r = rng(generator.seed, FIRST_VALUE_STREAM + block as u64);
            let mut sampler = Sampler::new(generator.distribution);
            for v in chunk {
                *v = draw(&mut sampler, &mut r);
            }
        });
}

/// Positions to zero: exactly `round(sparsity * n)` of them.
fn zero_mask(generator: &Generator, magnitudes: impl Fn(usize) -> f64, n: usize) -> Vec<bool> {
    let Some(sparsity) = generator.sparsity else {
        return vec![false; n];
    };
    let k = ((sparsity.clamp(0.0, 1.0) * n as f64).round() as usize).min(n);
    let mut mask = vec![false; n];
    match generator.pruning {
        Pruning::Random => {
            // Knuth's selection sampling (Algorithm S): exact count, one pass.
            let mut r = rng(generator.seed, ZERO_STREAM);
            let mut chosen = 0usize;
            for (i, m) in mask.iter_mut().enumerate() {
                let remaining = n - i;
                if ((k - chosen) as f64) > unit(&mut r) * remaining as f64 {
                    *m = true;
                    chosen += 1;
                    if chosen == k {
                        break;
                    }
                }
            }
        }
        Pruning::Magnitude => {
            if k == 0 {
                return mask;
            }
            // Order by (magnitude, position): for non-negative floats the bit
            // pattern orders like the value, so one u128 key sorts both. The
            // k smallest keys are those up to the (k-1)-th: a selection, not a sort.
            let key = |i: usize| (u128::from(magnitudes(i).abs().to_bits()) << 64) | i as u128;
            let mut keys: Vec<u128> = (0..n).map(key).collect();
            let (_, kth, _) = keys.select_nth_unstable(k - 1);
            let kth = *kth;
            for (i, m) in mask.iter_mut().enumerate() {
                *m = key(i) <= kth;
            }
        }
    }
    mask
}

/// `n` integers in `range` (inclusive) with `zero` as the value that stands for 0.
///
/// Elements outside the zero mask that happen to equal `zero` are moved one
/// step away from it, so that with a sparsity the zero count is exact.
///
/// The element type is the storage type (`i16` tensors, `i64` biases): the
/// values are the same whatever it is, as long as `range` fits it.
pub fn generate_ints<T>(generator: &Generator, n: usize, zero: T, range: (T, T)) -> Vec<T>
where
    T: Copy + Default + Send + Sync + PartialEq + Into<i64> + TryFrom<i64>,
{
    let (lo, hi) = (range.0.into(), range.1.into());
    // In range by construction, so the conversion cannot fail.
    let narrow = |v: i64| T::try_from(v).unwrap_or(zero);
    let mut values = vec![T::default(); n];
    fill_int_blocks(generator, &mut values, lo, hi, narrow);
    if generator.sparsity.is_some() {
        let z: i64 = zero.into();
        let mask = zero_mask(
            generator,
            |i| (values[i].into() - z).unsigned_abs() as f64,
            n,
        );
        let away = narrow(if z < hi { z + 1 } else { z - 1 });
        for (v, zeroed) in values.iter_mut().zip(mask) {
            if zeroed {
                *v = zero;
            } else if *v == zero {
                *v = away;
            }
        }
    }
    values
}

/// `n` real values (for batch-norm parameters, float weights, calibration).
pub fn generate_reals(generator: &Generator, n: usize) -> Vec<f64> {
    let mut values = vec![0.0f64; n];
    fill_blocks(generator, &mut values, |s, r| s.sample(r));
    if generator.sparsity.is_some() {
        let mask = zero_mask(generator, |i| values[i].abs(), n);
        for (v, zeroed) in values.iter_mut().zip(mask) {
            if zeroed {
                *v = 0.0;
            }
        }
    }
    values
}

#[cfg(test)]
mod tests {
    use super::*;

    fn generator(distribution: Distribution, sparsity: Option<f64>) -> Generator {
        Generator {
            distribution,
            seed: 7,
            sparsity,
            pruning: Pruning::Random,
        }
    }

    #[test]
    fn same_seed_same_values() {
        let g = generator(
            Distribution::Gaussian {
                mean: 0.0,
                std: 30.0,
            },
            None,
        );
        let a = generate_ints(&g, 1000, 0, (-128, 127));
        let b = generate_ints(&g, 1000, 0, (-128, 127));
        assert_eq!(a, b);
        let other = Generator { seed: 8, ..g };
        assert_ne!(a, generate_ints(&other, 1000, 0, (-128, 127)));
    }

    #[test]
    fn sparsity_gives_exact_zero_count() {
        for pruning in [Pruning::Random, Pruning::Magnitude] {
            let g = Generator {
                pruning,
                ..generator(
                    Distribution::Uniform {
                        low: 0.0,
                        high: 255.0,
                    },
                    Some(0.5),
                )
            };
            let v = generate_ints(&g, 10_001, 128, (0, 255));
            assert_eq!(v.iter().filter(|&&x| x == 128).count(), 5001);
        }
        let g = generator(
            Distribution::Laplace {
                mean: 0.0,
                scale: 3.0,
            },
            Some(0.3),
        );
        let v = generate_reals(&g, 1000);
        assert_eq!(v.iter().filter(|&&x| x == 0.0).count(), 300);
    }

    #[test]
    fn magnitude_pruning_removes_the_smallest() {
        let g = Generator {
            pruning: Pruning::Magnitude,
            ..generator(
                Distribution::Gaussian {
                    mean: 0.0,
                    std: 40.0,
                },
                Some(0.5),
            )
        };
        let v = generate_ints(&g, 2000, 0i64, (-127, 127));
        let kept_min = v
            .iter()
            .filter(|&&x| x != 0)
            .map(|x| x.abs())
            .min()
            .unwrap_or(0);
        let dense = generate_ints(
            &Generator {
                sparsity: None,
                ..g
            },
            2000,
            0i64,
            (-127, 127),
        );
        let mut mags: Vec<i64> = dense.iter().map(|x| x.abs()).collect();
        mags.sort_unstable();
        assert!(kept_min >= mags[999]);
    }

    #[test]
    fn uniform_ints_cover_the_range_evenly() {
        let g = generator(
            Distribution::Uniform {
                low: -2.0,
                high: 2.0,
            },
            None,
        );
        let v = generate_ints(&g, 50_000, 0, (-128, 127));
        for target in -2..=2 {
            let count = v.iter().filter(|&&x| x == target).count();
            assert!((9_000..11_000).contains(&count), "{target}: {count}");
        }
        assert!(v.iter().all(|&x| (-2..=2).contains(&x)));
    }

    #[test]
    fn distributions_have_their_moments() {
        let n = 200_000;
        let g = generator(
            Distribution::Gaussian {
                mean: 5.0,
                std: 2.0,
            },
            None,
        );
        let v = generate_reals(&g, n);
        let mean = v.iter().sum::<f64>() / n as f64;
        let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
        assert!((mean - 5.0).abs() < 0.02 && (var.sqrt() - 2.0).abs() < 0.02);
        let g = generator(
            Distribution::Laplace {
                mean: 0.0,
                scale: 1.5,
            },
            None,
        );
        let v = generate_reals(&g, n);
        let mean_abs = v.iter().map(|x| x.abs()).sum::<f64>() / n as f64;
        assert!((mean_abs - 1.5).abs() < 0.02, "{mean_abs}");
    }

    #[test]
    fn derived_seeds_are_stable() {
        // FNV-1a is fixed by its specification; this value must never change.
        assert_eq!(derive_seed(0, ""), derive_seed(0, ""));
        assert_ne!(derive_seed(0, "a/weights"), derive_seed(0, "a/bias"));
        assert_ne!(derive_seed(0, "a/weights"), derive_seed(1, "a/weights"));
    }
}
