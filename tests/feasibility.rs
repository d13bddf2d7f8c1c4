//! The up-front schedule check (`engine::feasibility`, docs/mapping.md,
//! "What the GLB must hold") is exact: over random tiny layers and machines,
//! what it accepts runs bit-exact, what it refuses is refused as bad input
//! (never the internal "GLB deadlock"), and its minimum is the engine's:
//! a GLB of the reported minimum runs, one byte less cannot (the engine,
//! run without the check, fails).

use std::path::Path;

use proptest::prelude::*;

use accsim::arch::{self, Arch};
use accsim::engine::{self, EngineOptions, feasibility};
use accsim::workload::{self, Activations, Network};

use accsim::mapping::schedule::ScheduleChoice;

#[path = "common/random.rs"]
mod random;
use random::{arch_of, case_strategy, network_of, tiny_machine};

fn run(
    net: &Network,
    arch: &Arch,
    input: &Activations,
    reference: &[Activations],
    skip_check: bool,
) -> accsim::Result<engine::EngineRun> {
    // The check sizes the pass-major schedule (docs/mapping.md, "What the
    // GLB must hold"): a tile-major one, whose steps carry fewer channels'
    // weights, may run below it.
    let options = EngineOptions {
        skip_schedule_check: skip_check,
        schedule: Some(ScheduleChoice::PASS_MAJOR),
        ..EngineOptions::default()
    };
    engine::run_with(net, arch, input, Some(reference), &options)
}

fn schedule_of(net: &Network, arch: &Arch) -> feasibility::Schedule {
    feasibility::check(net, arch).unwrap_or_else(|e| panic!("{e}"))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn the_schedule_check_is_exact(case in case_strategy(false)) {
        let Some((net, input, _, reference)) = network_of(&case) else {
            return Err(TestCaseError::reject("the random layers do not make a network"));
        };
        let arch = arch_of(&case.machine, case.machine.glb_bytes);
        let Ok(schedule) = feasibility::check(&net, &arch) else {
            return Err(TestCaseError::reject("the layers do not map onto the machine"));
        };
        let least = schedule.needs.iter().map(|n| n.bytes()).max().unwrap_or(0);
        prop_assert_eq!(schedule.refusals.is_empty(), least <= case.machine.glb_bytes);
        // A layer reading only padding needs no GLB; the smallest GLB is 1 byte.
        let least = least.max(1);
        match run(&net, &arch, &input, &reference, false) {
            Ok(r) => {
                prop_assert!(schedule.refusals.is_empty(), "accepted by the engine, refused by the check");
                prop_assert!(r.checked);
            }
            Err(accsim::Error::Input(e)) => {
                prop_assert!(!schedule.refusals.is_empty(), "refused by the engine alone: {e}");
                prop_assert_eq!(&*e, &schedule.refusals[0]);
            }
            Err(e) => prop_assert!(false, "not a refusal: {e}"),
        }
        // The least GLB runs; one byte less does not, even unchecked.
        let at_least = arch_of(&case.machine, least);
        let refused = |a: &Arch| !schedule_of(&net, a).refusals.is_empty();
        prop_assert!(!refused(&at_least));
        if let Err(e) = run(&net, &at_least, &input, &reference, true) {
            prop_assert!(false, "the least GLB ({least} bytes) does not run: {e}");
        }
        if least > 1 {
            let below = arch_of(&case.machine, least - 1);
            prop_assert!(refused(&below));
            prop_assert!(
                run(&net, &below, &input, &reference, true).is_err(),
                "the engine runs with {} bytes, below the reported least {least}",
                least - 1
            );
        }
    }
}

fn load(text_or_path: &str) -> workload::Workload {
    if text_or_path.ends_with(".onnx") {
        workload::load(text_or_path).unwrap_or_else(|e| panic!("{e}"))
    } else {
        workload::load_str(text_or_path, Path::new("w.toml"), None)
            .unwrap_or_else(|e| panic!("{e}"))
    }
}

/// Found by the proptest: a layer that reads the network input while
/// another layer's finished output (read by no layer) sits in the GLB. On
/// main the average pool (not the input's last reader) kept every input row
/// and was refused ("cannot be tiled", 36 to 60 bytes); the finished
/// output now spills when the room is needed.
#[test]
fn a_fan_out_input_and_a_finished_output_run_in_the_least_glb() {
    let w = load(
        "[network]\nname = \"t\"\ndescription = \"t\"\n[numerics]\nmode = \"affine\"\n\
         [input]\nshape = [2, 6, 6]\n[[layer]]\nname = \"a\"\nop = \"avg_pool\"\nkernel = 2\n\
         [[layer]]\nname = \"b\"\nop = \"conv2d\"\ninput = \"input\"\nout_channels = 2\nkernel = 3\n",
    );
    let least: Vec<u64> = schedule_of(&w.network, &tiny_machine(36))
        .needs
        .iter()
        .map(|n| n.bytes())
        .collect();
    // a: 2 input rows of 12 bytes per output row; b: 3 rows per pass.
    assert_eq!(least, [24, 36]);
    for glb_bytes in [36, 40, 60] {
        let r = engine::run(
            &w.network,
            &tiny_machine(glb_bytes),
            &w.default_input,
            Some(&w.default_outputs),
        )
        .unwrap_or_else(|e| panic!("{glb_bytes} bytes: {e}"));
        assert!(r.checked);
    }
}

/// On main the addition of `qdq_add_residual_u8` was refused in 96- and
/// 102-byte GLBs ("an input row of 32 bytes does not fit the 0 free
/// bytes"), although its convolutions' 96 bytes are the most any layer
/// needs: its operands' rows for later output rows and its output rows
/// now give way.
#[test]
fn a_residual_addition_runs_in_the_least_glb_of_its_network() {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/onnx/qdq_add_residual_u8.onnx");
    let w = load(&path.to_string_lossy());
    let needs: Vec<u64> = schedule_of(&w.network, &tiny_machine(96))
        .needs
        .iter()
        .map(|n| n.bytes())
        .collect();
    assert_eq!(needs, [72, 96, 64]);
    for glb_bytes in [96, 102] {
        let r = engine::run(
            &w.network,
            &tiny_machine(glb_bytes),
            &w.default_input,
            Some(&w.default_outputs),
        )
        .unwrap_or_else(|e| panic!("{glb_bytes} bytes: {e}"));
        assert!(r.checked);
    }
    let e = engine::run(
        &w.network,
        &tiny_machine(95),
        &w.default_input,
        Some(&w.default_outputs),
    )
    .err()
    .map(|e| e.to_string())
    .unwrap_or_default();
    assert!(
        e.contains("layer `n_Conv_42` (#1, conv2d) cannot be scheduled"),
        "{e}"
    );
}

/// Shipped workloads on the LU22 machines with small GLBs. On main: 1 KiB
/// (ic_cifar10, fixed), 2 KiB (ic_cifar10, programmable) and 1 KiB
/// (digits_cnn, programmable) ended in the internal "GLB deadlock"
/// (exit 1); 6 and 8 KiB (ic_cifar10, fixed), 8 KiB (ic_cifar10,
/// programmable), 3 and 4 KiB (digits_cnn, fixed) and 4 KiB (digits_cnn,
/// programmable) were refused although they fit. Now the first are
/// refused up front and the others run bit-exact.
#[test]
fn shipped_workloads_in_small_glbs_are_refused_or_run() {
    let cases: [(&str, &str, u32, bool); 9] = [
        ("ic_cifar10", "lu22_fixed", 1, false),
        ("ic_cifar10", "lu22_programmable", 2, false),
        ("digits_cnn", "lu22_programmable", 1, false),
        ("ic_cifar10", "lu22_fixed", 6, true),
        ("ic_cifar10", "lu22_fixed", 8, true),
        ("ic_cifar10", "lu22_programmable", 8, true),
        ("digits_cnn", "lu22_fixed", 3, true),
        ("digits_cnn", "lu22_fixed", 4, true),
        ("digits_cnn", "lu22_programmable", 4, true),
    ];
    for (name, arch_name, kib, runs) in cases {
        let w = workload::load(name).unwrap_or_else(|e| panic!("{e}"));
        let text = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("arch_configs/{arch_name}.toml")),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let small = text.replace("capacity_kib = 108 ", &format!("capacity_kib = {kib} "));
        assert_ne!(small, text);
        let a = arch::load_str(&small, Path::new("small.toml")).unwrap_or_else(|e| panic!("{e}"));
        let r = engine::run(&w.network, &a, &w.default_input, Some(&w.default_outputs));
        match (runs, r) {
            (true, Ok(r)) => assert!(r.checked),
            (false, Err(accsim::Error::Input(e))) => {
                assert!(e.message.contains("cannot be scheduled"), "{e}")
            }
            (_, r) => panic!(
                "{name} on {arch_name} with {kib} KiB: {:?}",
                r.map(|r| r.total_cycles).map_err(|e| e.to_string())
            ),
        }
    }
}
