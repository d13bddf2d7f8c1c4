//! Whole-network simulation of cae_cnn on both LU22 configurations, with the
//! bit-exact check against the reference on (the reference outputs come from
//! loading, as in `accsim run`). Loading is benchmarked in `reference.rs`.

use criterion::{Criterion, criterion_group, criterion_main};

fn cae_cnn(c: &mut Criterion) {
    let workload = match accsim::workload::load("cae_cnn") {
        Ok(w) => w,
        Err(e) => panic!("{e}"),
    };
    let mut group = c.benchmark_group("engine");
    group.sample_size(10);
    for arch_name in ["lu22_fixed", "lu22_programmable"] {
        let arch = match accsim::arch::load(arch_name) {
            Ok(a) => a,
            Err(e) => panic!("{e}"),
        };
        group.bench_function(format!("cae_cnn/{arch_name}"), |b| {
            b.iter(|| {
                accsim::engine::run(
                    &workload.network,
                    &arch,
                    &workload.default_input,
                    Some(&workload.default_outputs),
                )
            })
        });
    }
    group.finish();
}

criterion_group!(benches, cae_cnn);
criterion_main!(benches);
