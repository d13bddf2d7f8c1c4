//! The schedule search against exhaustive simulation (docs/mapping.md,
//! "The search"): on seeded random small convolutions and machines, the
//! search's choice is as good on its objective as the best of every legal
//! schedule, each simulated pinned from the same start.

use std::path::Path;

use accsim::arch::{self, Arch};
use accsim::engine::{self, EngineOptions, LayerStats, Objective, ScheduleSearchOptions};
use accsim::mapping::schedule::{InputReuse, LoopOrder, ScheduleChoice};
use accsim::workload::{self, Workload};

/// A small deterministic generator (64-bit LCG, high bits).
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }

    fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }
}

/// A 2 x 2 programmable array (one output channel per sub-pass) with a
/// GLB of `glb_bytes` and a simple DRAM.
fn machine(g: &mut Lcg) -> Arch {
    let glb_bytes = g.between(24, 160);
    let text = format!(
        r#"
[arch]
name = "random"
description = "2x2 programmable test array"
clock_mhz = 100
[pe_array]
rows = 2
cols = 2
input_rf_entries = 6
psum_rf_entries = 4
weight_store = "programmable"
weight_scratchpad_entries = 8
[interconnect]
glb_bus_bytes_per_cycle = {}
neighbor_words_per_cycle = 1
[glb]
capacity_kib = {}
banks = 4
bank_width_bytes = 8
ports_per_bank = 1
[dram]
model = "simple"
bandwidth_bytes_per_cycle = {}
latency_cycles = {}
"#,
        [4, 8, 16][g.below(3) as usize],
        glb_bytes as f64 / 1024.0,
        g.between(1, 8),
        g.between(2, 30),
    );
    arch::load_str(&text, Path::new("random_arch.toml")).unwrap_or_else(|e| panic!("{e}"))
}

/// One uint8 convolution: 1 to 3 input channels, 3 to 6 rows, 2 to 4
/// columns, 2 to 8 output channels, a 1x1 or a padded 3x3 kernel.
fn layer(g: &mut Lcg) -> Workload {
    let (kernel, padding) = [(1, 0), (3, 1)][g.below(2) as usize];
    let text = format!(
        r#"
[network]
name = "random"
description = "test"
seed = {}
[numerics]
mode = "affine"
[input]
shape = [{}, {}, {}]
scale = 0.02
zero_point = 3
[[layer]]
name = "c"
op = "conv2d"
out_channels = {}
kernel = {kernel}
padding = {padding}
"#,
        g.below(1000),
        g.between(1, 3),
        g.between(3, 6),
        g.between(2, 4),
        g.between(2, 8),
    );
    workload::load_str(&text, Path::new("random.toml"), None).unwrap_or_else(|e| panic!("{e}"))
}

/// The layer's statistics on `a` with `schedule` pinned, or searched on
/// `objective`; None when the machine cannot run the layer.
fn run(
    w: &Workload,
    a: &Arch,
    schedule: Option<ScheduleChoice>,
    objective: Objective,
) -> Option<LayerStats> {
    let options = EngineOptions {
        schedule,
        search: ScheduleSearchOptions {
            objective,
            ..ScheduleSearchOptions::default()
        },
        ..EngineOptions::default()
    };
    let r = engine::run_with(
        &w.network,
        a,
        &w.default_input,
        Some(&w.default_outputs),
        &options,
    )
    .ok()?;
    assert!(r.checked);
    r.layers.first().cloned()
}

/// The objective's value of a run, as the search computes it.
fn value(objective: Objective, s: &LayerStats, a: &Arch) -> f64 {
    let energy = accsim::cost::energy::picojoules(s, &a.energy).total;
    let dram = s.accesses.dram.total();
    match objective {
        Objective::Energy | Objective::Rule => energy,
        Objective::Cycles => s.cycles.total as f64,
        Objective::Edp => energy * s.cycles.total as f64,
        Objective::Dram => (dram.read + dram.write) as f64,
    }
}

/// Every legal schedule of a layer of at most `out_channels` channels per
/// column: pass-major and tile-major at every tile count, either input
/// reuse (a pin that does not fit runs pass-major).
fn every_schedule(out_channels: usize) -> Vec<ScheduleChoice> {
    let mut all = vec![ScheduleChoice::PASS_MAJOR];
    for tiles in 2..=out_channels {
        for inputs in [InputReuse::Keep, InputReuse::Refetch] {
            all.push(ScheduleChoice {
                order: LoopOrder::WeightTileMajor,
                tiles,
                inputs,
            });
        }
    }
    all
}

#[test]
fn the_search_chooses_as_well_as_exhaustive_simulation_on_random_small_layers() {
    let mut g = Lcg(0x5EED_0015);
    let objectives = [
        Objective::Energy,
        Objective::Cycles,
        Objective::Edp,
        Objective::Dram,
    ];
    let (mut cases, mut searched, mut tile_major_best) = (0, 0, 0);
    let mut missed = Vec::new();
    for _ in 0..300 {
        let (a, w) = (machine(&mut g), layer(&mut g));
        let out_channels = w.network.layers[0].output_shape.channels;
        let exhaustive: Vec<LayerStats> = every_schedule(out_channels)
            .into_iter()
            .filter_map(|choice| run(&w, &a, Some(choice), Objective::Energy))
            .collect();
        if exhaustive.is_empty() {
            continue; // the GLB is too small for the layer
        }
        cases += 1;
        for objective in objectives {
            let best = exhaustive
                .iter()
                .map(|s| value(objective, s, &a))
                .fold(f64::INFINITY, f64::min);
            let Some(found) = run(&w, &a, None, objective) else {
                panic!("the search failed where a pinned schedule ran");
            };
            let search = found.schedule.as_ref().and_then(|s| s.search.clone());
            searched += usize::from(search.is_some());
            let got = value(objective, &found, &a);
            if got != best {
                missed.push(format!(
                    "objective {}, layer {:?} on GLB {} bytes: search {got} ({:?}), exhaustive {best} ({:?})",
                    objective.name(),
                    w.network.layers[0].output_shape,
                    a.glb.capacity_bytes,
                    found.schedule,
                    exhaustive
                        .iter()
                        .filter(|s| value(objective, s, &a) == best)
                        .map(|s| (s.schedule.clone(), s.cycles.total))
                        .collect::<Vec<_>>()
                ));
            }
            let order = found.schedule.as_ref().map(|s| s.loop_order.clone());
            tile_major_best += usize::from(order.as_deref() == Some("weight_tile_major"));
        }
    }
    assert!(missed.is_empty(), "{}", missed.join("\n"));
    // The cases must exercise the search, and tile-major must win some.
    assert!(cases >= 150, "{cases} cases ran");
    assert!(searched >= 100, "{searched} searches");
    assert!(
        tile_major_best >= 50,
        "{tile_major_best} tile-major choices"
    );
}
