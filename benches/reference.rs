//! The reference executor on whole networks (load excluded): the yardstick
//! every simulated engine is checked against, so its speed bounds theirs.

use criterion::{Criterion, criterion_group, criterion_main};

fn reference(c: &mut Criterion) {
    let mut group = c.benchmark_group("reference");
    group.sample_size(10);
    for name in ["cae_cnn", "mobilenet_v1_025", "mobilenet_v1_100"] {
        let workload = match accsim::workload::load(name) {
            Ok(w) => w,
            Err(e) => panic!("{name}: {e}"),
        };
        group.bench_function(name, |b| {
            b.iter(|| accsim::reference::run(&workload.network, workload.default_input.clone()))
        });
    }
    group.finish();
}

fn load(c: &mut Criterion) {
    let mut group = c.benchmark_group("load");
    group.sample_size(10);
    for name in ["cae_cnn", "mobilenet_v1_100"] {
        group.bench_function(name, |b| b.iter(|| accsim::workload::load(name)));
    }
    group.finish();
}

criterion_group!(benches, reference, load);
criterion_main!(benches);
