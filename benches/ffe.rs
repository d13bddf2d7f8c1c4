//! One MobileNetV1 alpha 1.0 frame through an 11-layer FFE (cycle-level,
//! values computed through the shift-add datapath) and the 13x12 PE array
//! for the remaining layers, every layer checked bit for bit against the
//! reference (issue 5's benchmark; target under 5 s on 2 cores). Loading,
//! which computes the reference, is outside the measurement.

use criterion::{Criterion, criterion_group, criterion_main};

use accsim::engine::system::{self, SystemOptions};

fn mobilenet_100_ffe11(c: &mut Criterion) {
    let workload = match accsim::workload::load("mobilenet_v1_100") {
        Ok(w) => w,
        Err(e) => panic!("{e}"),
    };
    let arch = match accsim::arch::load("ffe11_pe_array") {
        Ok(a) => a,
        Err(e) => panic!("{e}"),
    };
    let options = SystemOptions {
        ffe_tap: None,
        stream_frames: Some(1),
        trace: None,
        timing: accsim::sim::Timing::Event,
        search: Default::default(),
    };
    let mut group = c.benchmark_group("ffe");
    group.sample_size(10);
    group.bench_function("mobilenet_v1_100/ffe11_pe_array", |b| {
        b.iter(|| {
            let run = system::run(
                &workload.network,
                &arch,
                &workload.default_input,
                Some(&workload.default_outputs),
                &options,
            );
            match run {
                Ok(r) => assert!(r.checked),
                Err(e) => panic!("{e}"),
            }
        })
    });
    group.finish();
}

criterion_group!(benches, mobilenet_100_ffe11);
criterion_main!(benches);
