//! Same seed, same bytes: checksums of generated tensors are pinned. A change
//! here changes every shipped workload's weights and inputs, so it must be
//! deliberate (and the reason given in the commit message).

use accsim::workload::generate::{Distribution, Generator, Pruning, generate_ints, generate_reals};

fn crc_i64(v: &[i64]) -> u32 {
    let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
    crc32fast::hash(&bytes)
}

fn g(distribution: Distribution, sparsity: Option<f64>, pruning: Pruning) -> Generator {
    Generator {
        distribution,
        seed: 12345,
        sparsity,
        pruning,
    }
}

#[test]
fn generated_values_are_pinned() {
    let n = 200_000; // several blocks
    let cases = [
        (
            "uniform",
            generate_ints(
                &g(
                    Distribution::Uniform {
                        low: -128.0,
                        high: 127.0,
                    },
                    None,
                    Pruning::Random,
                ),
                n,
                0,
                (-128, 127),
            ),
        ),
        (
            "gaussian",
            generate_ints(
                &g(
                    Distribution::Gaussian {
                        mean: 0.0,
                        std: 32.0,
                    },
                    None,
                    Pruning::Random,
                ),
                n,
                0,
                (-128, 127),
            ),
        ),
        (
            "laplace",
            generate_ints(
                &g(
                    Distribution::Laplace {
                        mean: 100.0,
                        scale: 30.0,
                    },
                    Some(0.25),
                    Pruning::Random,
                ),
                n,
                100,
                (0, 255),
            ),
        ),
        (
            "pruned",
            generate_ints(
                &g(
                    Distribution::Gaussian {
                        mean: 0.0,
                        std: 4096.0,
                    },
                    Some(0.5),
                    Pruning::Magnitude,
                ),
                n,
                0,
                (-32768, 32767),
            ),
        ),
    ];
    let got: Vec<(&str, u32)> = cases.iter().map(|(name, v)| (*name, crc_i64(v))).collect();
    let reals = generate_reals(
        &g(
            Distribution::Gaussian {
                mean: 1.0,
                std: 0.1,
            },
            None,
            Pruning::Random,
        ),
        1000,
    );
    let real_bytes: Vec<u8> = reals.iter().flat_map(|x| x.to_le_bytes()).collect();
    assert_eq!(got, PINNED.to_vec());
    assert_eq!(crc32fast::hash(&real_bytes), PINNED_REALS);
}

#[test]
fn shipped_workload_inputs_are_pinned() {
    let w = accsim::workload::load("cae_cnn").unwrap_or_else(|e| panic!("{e}"));
    let input = accsim::reference::checksum(&w.default_input, accsim::numerics::IntType::Uint8);
    let out = accsim::reference::checksum(&w.default_outputs[7], accsim::numerics::IntType::Uint8);
    assert_eq!((input, out), PINNED_CAE);
}

// Golden values: recorded from the generator on 2026-11-21 (x86_64 Linux).
const PINNED: [(&str, u32); 4] = [
    ("uniform", 3_200_519_862),
    ("gaussian", 772_999_792),
    ("laplace", 1_055_623_487),
    ("pruned", 169_235_430),
];
const PINNED_REALS: u32 = 0xd4a6_d392;
const PINNED_CAE: (u32, u32) = (0x84ff_98d4, 0x18e9_7245);
