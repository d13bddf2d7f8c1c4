//! One machine, two ways to run it (docs/testing.md, "The cycle stepper"):
//! the default event scheduler and `--engine cycle`, which also ticks every
//! component's stepped twin every cycle and checks each completion the
//! scheduler used, must agree exactly on random small networks and
//! machines, and on whole shipped workloads.

use proptest::prelude::*;

use accsim::arch::{self, Arch};
use accsim::engine::{self, EngineOptions, EngineRun, feasibility};
use accsim::mapping::schedule::{InputReuse, LoopOrder, ScheduleChoice};
use accsim::numerics::precision::PrecisionAssignment;
use accsim::sim::Timing;
use accsim::workload::{self, Activations, Network};

#[path = "common/random.rs"]
mod random;
use random::{arch_of, case_strategy, network_of};

fn run(
    net: &Network,
    arch: &Arch,
    input: &Activations,
    precision: &Option<PrecisionAssignment>,
    reference: &[Activations],
    (timing, schedule): (Timing, Option<ScheduleChoice>),
) -> accsim::Result<EngineRun> {
    let options = EngineOptions {
        timing,
        precision: precision.clone(),
        schedule,
        ..EngineOptions::default()
    };
    engine::run_with(net, arch, input, Some(reference), &options)
}

/// Everything a report is made of, as text: per layer every counter, every
/// cause, the cycles; the outputs; the totals.
fn fingerprint(r: &EngineRun) -> String {
    format!(
        "{:?}|{:?}|{}|{}|{}",
        r.layers, r.outputs, r.total_cycles, r.events, r.write_holds
    )
}

/// The loop order a case pins on its convolutions (where it fits): none
/// (the rule chooses), or tile-major with 2 to 4 tiles, keeping or
/// re-fetching input rows.
fn schedule_strategy() -> impl Strategy<Value = Option<ScheduleChoice>> {
    prop_oneof![
        Just(None),
        (2usize..5, any::<bool>()).prop_map(|(tiles, keep)| Some(ScheduleChoice {
            order: LoopOrder::WeightTileMajor,
            tiles,
            inputs: if keep {
                InputReuse::Keep
            } else {
                InputReuse::Refetch
            },
        })),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, max_global_rejects: 4000, ..ProptestConfig::default() })]

    #[test]
    fn the_cycle_stepper_and_the_event_scheduler_agree(
        case in case_strategy(true),
        pin in schedule_strategy(),
    ) {
        let Some((net, input, precision, reference)) = network_of(&case) else {
            return Err(TestCaseError::reject("the random layers do not make a network"));
        };
        let probe = arch_of(&case.machine, 1 << 24);
        let Ok(schedule) = feasibility::check(&net, &probe) else {
            return Err(TestCaseError::reject("the layers do not map onto the machine"));
        };
        let least = schedule.needs.iter().map(|n| n.bytes()).max().unwrap_or(0).max(1);
        let arch = arch_of(&case.machine, least + case.machine.glb_extra_bytes);
        let event = run(&net, &arch, &input, &precision, &reference, (Timing::Event, pin));
        let cycle = run(&net, &arch, &input, &precision, &reference, (Timing::Cycle, pin));
        if std::env::var_os("CYCLE_ENGINE_STATS").is_some() {
            eprintln!(
                "case prec={} write_holds={} dram_write={} writes={} schedules={:?} layers={} glb={} ok={} err={:?}",
                precision.is_some(),
                event.as_ref().map_or(0, |r| r.write_holds),
                event.as_ref().map_or(0, |r| r
                    .layers
                    .iter()
                    .filter_map(|l| l.pe_cycles.as_ref())
                    .map(|p| p.dram_write)
                    .sum::<u64>()),
                event.as_ref().map_or(0, |r| r
                    .layers
                    .iter()
                    .map(|l| l.dram.write_requests)
                    .sum::<u64>()),
                event.as_ref().ok().map(|r| r
                    .layers
                    .iter()
                    .filter_map(|l| l.schedule.as_ref())
                    .map(|s| format!("{}/{}/{}", s.loop_order, s.tiles, s.inputs_from))
                    .collect::<Vec<_>>()),
                net.layers.iter().map(|l| l.op.kind()).collect::<Vec<_>>().join("+"),
                least + case.machine.glb_extra_bytes,
                event.is_ok(),
                event.as_ref().err().map(|e| e.to_string().chars().take(80).collect::<String>())
            );
        }
        match (event, cycle) {
            (Ok(e), Ok(c)) => {
                prop_assert!(e.checked && c.checked);
                prop_assert_eq!(fingerprint(&e), fingerprint(&c));
            }
            (Err(accsim::Error::Input(a)), Err(accsim::Error::Input(b))) => {
                // The precision does not apply (an 8-bit output into a
                // 16-bit-only layer, say): refused alike.
                prop_assert_eq!(a.to_string(), b.to_string());
            }
            (e, c) => prop_assert!(false, "event: {:?}\ncycle: {:?}", e.err(), c.err()),
        }
    }
}

/// The shipped workloads the issue names, in full, on both LU22 machines.
#[test]
fn shipped_workloads_agree_in_full() {
    for arch_name in ["lu22_fixed", "lu22_programmable"] {
        let arch = arch::load(arch_name).unwrap_or_else(|e| panic!("{e}"));
        for name in ["ic_cifar10", "kws_cnn_one_fstride4", "digits_cnn"] {
            let w = workload::load(name).unwrap_or_else(|e| panic!("{e}"));
            let reference = accsim::reference::run(&w.network, w.default_input.clone())
                .into_parts()
                .1;
            let go = |timing| {
                run(
                    &w.network,
                    &arch,
                    &w.default_input,
                    &None,
                    &reference,
                    (timing, None),
                )
                .unwrap_or_else(|e| panic!("{name} on {arch_name}: {e}"))
            };
            let (e, c) = (go(Timing::Event), go(Timing::Cycle));
            assert!(e.checked && c.checked);
            assert_eq!(fingerprint(&e), fingerprint(&c), "{name} on {arch_name}");
        }
    }
}

/// The dynamically quantised ONNX models (`tests/data/onnx/dynamic_*`,
/// docs/onnx.md item 20) on `lu22_fixed` and on it with an 8 KiB GLB (one
/// bank), where tensors spill: the streamed `dynamic_range` and float32
/// chain means then fetch their rows from DRAM one at a time. The random
/// networks above have no dynamic layers (only ONNX import makes them).
#[test]
fn dynamic_models_agree_with_their_tensors_in_the_glb_or_spilled() {
    let data = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/onnx");
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("arch_configs/lu22_fixed.toml"),
    )
    .expect("lu22_fixed.toml");
    let small_text = text
        .lines()
        .map(|l| match l.split_whitespace().next() {
            Some("capacity_kib") => "capacity_kib = 8",
            Some("banks") if l.contains("KiB SRAM banks") => "banks = 1",
            _ => l,
        })
        .collect::<Vec<_>>()
        .join("\n");
    let load = |t: &str| {
        arch::load_str(t, std::path::Path::new("lu22_fixed_glb8.toml"))
            .unwrap_or_else(|e| panic!("{e}"))
    };
    let (big, small) = (load(&text), load(&small_text));
    let mut streamed_from_dram = 0;
    for name in [
        "dynamic_cnn_u8",
        "dynamic_concat_gap_cnn_u8",
        "dynamic_residual_cnn_u8",
    ] {
        let path = data.join(format!("{name}.onnx"));
        let w = workload::load(path.to_str().expect("utf-8 path"))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let reference = accsim::reference::run(&w.network, w.default_input.clone())
            .into_parts()
            .1;
        for (arch_name, arch) in [("lu22_fixed", &big), ("8 KiB GLB", &small)] {
            let go = |timing| {
                let input = &w.default_input;
                run(&w.network, arch, input, &None, &reference, (timing, None))
                    .unwrap_or_else(|e| panic!("{name} on {arch_name}: {e}"))
            };
            let (e, c) = (go(Timing::Event), go(Timing::Cycle));
            assert!(e.checked && c.checked);
            assert_eq!(fingerprint(&e), fingerprint(&c), "{name} on {arch_name}");
            // A streamed layer past the first (whose input, the graph's,
            // starts in DRAM) that read rows from DRAM.
            streamed_from_dram += w.network.layers[1..]
                .iter()
                .zip(&e.layers[1..])
                .filter(|(l, s)| {
                    matches!(l.op.kind(), "dynamic_range" | "float_chain") && s.dram.read_bytes > 0
                })
                .count();
        }
    }
    assert!(streamed_from_dram > 0, "no streamed layer read from DRAM");
}
