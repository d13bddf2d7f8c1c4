//! The shipped workloads: exact MAC and weight counts, shapes, variants.

use accsim::workload::{self, Network};

fn load(name: &str) -> Network {
    match workload::load(name) {
        Ok(w) => w.network,
        Err(e) => panic!("{name} failed to load: {e}"),
    }
}

fn per_layer<T>(net: &Network, f: impl Fn(&accsim::workload::Layer) -> T) -> Vec<(String, T)> {
    net.layers.iter().map(|l| (l.name.clone(), f(l))).collect()
}

#[test]
fn cae_cnn_counts_match_lu22() {
    let net = load("cae_cnn");
    assert_eq!(net.macs(), 257_209_728);
    let weights: Vec<(String, u64)> = per_layer(&net, |l| l.weight_count())
        .into_iter()
        .filter(|(_, w)| *w > 0)
        .collect();
    let expect = [
        ("conv1", 3456),
        ("conv2", 147_456),
        ("conv3", 294_912),
        ("conv4", 589_824),
        ("fc1", 12_845_056),
        ("fc2", 524_288),
    ];
    assert_eq!(weights, expect.map(|(n, w)| (n.to_string(), w)).to_vec());
    let shapes: Vec<String> = net
        .layers
        .iter()
        .map(|l| l.output_shape.to_string())
        .collect();
    assert_eq!(
        shapes,
        [
            "128x25x25",
            "128x25x25",
            "128x13x13",
            "256x13x13",
            "256x13x13",
            "256x7x7",
            "1024x1x1",
            "512x1x1"
        ]
    );
}

#[test]
fn cae_cnn_heads_are_variants() {
    for (variant, classes) in [("pose", 5u64), ("gender", 2), ("smile", 2), ("glasses", 2)] {
        let net = load(&format!("cae_cnn:{variant}"));
        assert_eq!(net.variant.as_deref(), Some(variant));
        assert_eq!(net.macs(), 257_209_728 + 512 * classes, "{variant}");
        assert_eq!(
            net.layers.last().map(|l| l.output_shape.channels as u64),
            Some(classes)
        );
    }
}

#[test]
fn peluso_benchmarks_have_published_mac_counts() {
    assert_eq!(load("ic_cifar10").macs(), 12_298_240);
    assert_eq!(load("kws_cnn_one_fstride4").macs(), 504_128);
    assert_eq!(load("fer").macs(), 149_331_456);
    let kws = load("kws_cnn_one_fstride4");
    assert_eq!(kws.layers[0].output_shape.to_string(), "186x1x9");
    let ic = load("ic_cifar10");
    assert_eq!(
        per_layer(&ic, |l| l.output_shape.to_string())
            .iter()
            .map(|(_, s)| s.as_str())
            .collect::<Vec<_>>(),
        [
            "32x32x32", "32x16x16", "32x16x16", "32x8x8", "64x8x8", "64x4x4", "10x1x1"
        ]
    );
}

#[test]
fn mobilenet_v1_mac_counts() {
    // SPEC section 3 / the issue: alpha 0.25 with the FC, and alpha 1.0.
    assert_eq!(load("mobilenet_v1_025").macs(), 41_030_272);
    assert_eq!(load("mobilenet_v1_100").macs(), 568_740_352);
    // The same formula for the other two widths.
    assert_eq!(load("mobilenet_v1_050").macs(), 149_497_088);
    assert_eq!(load("mobilenet_v1_075").macs(), 325_400_448);
    let m = load("mobilenet_v1_025");
    assert_eq!(m.layers.len(), 1 + 26 + 2);
    assert_eq!(m.layers[0].output_shape.to_string(), "8x112x112");
    assert_eq!(m.layers[26].output_shape.to_string(), "256x7x7");
    // SPEC gives 0.47 M parameters at alpha 0.25. Weights alone:
    // conv1 8*3*9 = 216, the 13 blocks sum(c_in*9 + c_in*c_out) = 207,384,
    // FC 256*1000 = 256,000; plus 3,736 biases that makes 467,336.
    assert_eq!(m.weight_count(), 463_600);
}

#[test]
fn mobilenet_weights_are_half_pruned() {
    let m = load("mobilenet_v1_025");
    for l in &m.layers {
        if let accsim::workload::Op::Conv2d(c) = &l.op {
            let zeros = c.weights.iter().filter(|&&w| w == 0).count();
            assert_eq!(
                zeros,
                (c.weights.len() as f64 * 0.5).round() as usize,
                "{}",
                l.name
            );
        }
    }
}

#[test]
fn every_shipped_workload_and_test_workload_loads() {
    for path in accsim::home::shipped("workloads") {
        let w =
            workload::load_file(&path, None).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(w.default_outputs.len(), w.network.layers.len());
    }
    for name in ["tiny_affine_float", "tiny_affine_tflite", "tiny_fixed8"] {
        let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data")
            .join(format!("{name}.toml"));
        workload::load_file(&path, None).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}
