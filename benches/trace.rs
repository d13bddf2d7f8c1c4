//! The cost of tracing: cae_cnn on lu22_fixed untraced, fully traced, and
//! with 100k-cycle windows at the start and in the middle of the run.

use criterion::{Criterion, criterion_group, criterion_main};

fn tracing(c: &mut Criterion) {
    let workload = match accsim::workload::load("cae_cnn") {
        Ok(w) => w,
        Err(e) => panic!("{e}"),
    };
    let arch = match accsim::arch::load("lu22_fixed") {
        Ok(a) => a,
        Err(e) => panic!("{e}"),
    };
    let dir = std::env::temp_dir().join("accsim_trace_bench");
    let options = |window: Option<(u64, u64)>| accsim::trace::TraceOptions {
        path: dir.join("bench.vcd"),
        window,
        layers: None,
        groups: accsim::trace::Group::ALL.to_vec(),
        per_pe: false,
    };
    let mut group = c.benchmark_group("trace/cae_cnn");
    group.sample_size(20);
    for (name, trace) in [
        // The full trace goes last: the ~20 MB it writes per iteration are
        // flushed to disk in the background and would slow what follows.
        ("untraced", None),
        ("window_0_100k", Some(options(Some((0, 100_000))))),
        ("window_800k_900k", Some(options(Some((800_000, 900_000))))),
        ("full", Some(options(None))),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| {
                accsim::engine::run_traced(
                    &workload.network,
                    &arch,
                    &workload.default_input,
                    Some(&workload.default_outputs),
                    trace.clone(),
                )
            })
        });
    }
    group.finish();
}

criterion_group!(benches, tracing);
criterion_main!(benches);
