//! Whole-network simulation of cae_cnn on both LU22 configurations, with the
//! bit-exact check against the reference on (the reference outputs come from
//! loading, as in `accsim run`). Loading is benchmarked in `reference.rs`.
//!
//! And the engine run a precision study makes per state (docs/precision.md):
//! fer_float on lu22_programmable, schedules by the rule, no check (`accsim
//! run --workload fer_float --arch lu22_programmable --objective rule
//! --no-check`), bound by the array's per-step bookkeeping.

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

fn fer_float_study_state(c: &mut Criterion) {
    let workload = match accsim::workload::load("fer_float") {
        Ok(w) => w,
        Err(e) => panic!("{e}"),
    };
    let arch = match accsim::arch::load("lu22_programmable") {
        Ok(a) => a,
        Err(e) => panic!("{e}"),
    };
    let options = accsim::engine::EngineOptions {
        search: accsim::engine::ScheduleSearchOptions {
            objective: accsim::engine::Objective::Rule,
            ..Default::default()
        },
        ..Default::default()
    };
    let mut group = c.benchmark_group("engine");
    group.sample_size(10);
    group.bench_function("fer_float/lu22_programmable/rule/no_check", |b| {
        b.iter(|| {
            accsim::engine::run_with(
                &workload.network,
                &arch,
                &workload.default_input,
                None,
                &options,
            )
        })
    });
    group.finish();
}

criterion_group!(benches, cae_cnn, fer_float_study_state);
criterion_main!(benches);
