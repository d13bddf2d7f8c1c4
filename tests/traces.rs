//! Traces: a VCD written by accsim, read back by an independent parser
//! (wellen), must agree with the report's counts in every window.

use std::path::Path;

use accsim::arch;
use accsim::run::{RunOptions, run};
use accsim::trace::{Group, TraceOptions};
use accsim::workload;

#[path = "common/random.rs"]
mod random;

/// A signal as a step function read by wellen.
struct Steps(Vec<(u64, u64)>);

impl Steps {
    /// Value after all changes at or before `t` (0 before the first).
    fn at(&self, t: u64) -> u64 {
        match self.0.partition_point(|&(ct, _)| ct <= t) {
            0 => 0,
            i => self.0[i - 1].1,
        }
    }

    /// Growth of a cumulative counter over the cycles `[a, b)`.
    fn delta(&self, a: u64, b: u64) -> u64 {
        let before = if a == 0 { 0 } else { self.at(a - 1) };
        self.at(b - 1) - before
    }

    /// Integral of the value over `[a, b)` (value x cycles).
    fn integral(&self, a: u64, b: u64) -> u64 {
        let mut total = 0;
        let mut t = a;
        let mut v = if a == 0 { 0 } else { self.at(a - 1) };
        let mut i = self.0.partition_point(|&(ct, _)| ct < a);
        while t < b {
            // Changes at exactly t take effect at t.
            while i < self.0.len() && self.0[i].0 <= t {
                v = self.0[i].1;
                i += 1;
            }
            let next = self.0.get(i).map_or(b, |&(ct, _)| ct.min(b));
            total += v * (next - t);
            t = next;
        }
        total
    }
}

struct Vcd {
    wave: wellen::simple::Waveform,
}

impl Vcd {
    fn read(path: &Path) -> Self {
        Vcd {
            wave: wellen::simple::read(path)
                .unwrap_or_else(|e| panic!("wellen cannot read {}: {e}", path.display())),
        }
    }

    fn signal(&mut self, scope: &str, name: &str) -> Steps {
        let h = self.wave.hierarchy();
        let var = h
            .lookup_var(&["accsim", scope], name)
            .unwrap_or_else(|| panic!("no {scope}.{name}"));
        let sref = h[var].signal_ref();
        self.wave.load_signals(&[sref]);
        let times = self.wave.time_table().to_vec();
        let signal = self
            .wave
            .get_signal(sref)
            .unwrap_or_else(|| panic!("{name} not loaded"));
        Steps(
            signal
                .iter_changes()
                .map(|(idx, v)| {
                    let bits = v.to_bit_string().unwrap_or_default();
                    (
                        times[idx as usize],
                        u64::from_str_radix(&bits, 2).unwrap_or(0),
                    )
                })
                .collect(),
        )
    }
}

fn trace_options(path: &Path, window: Option<(u64, u64)>) -> TraceOptions {
    TraceOptions {
        path: path.to_path_buf(),
        window,
        layers: None,
        groups: Group::ALL.to_vec(),
        per_pe: false,
    }
}

#[test]
fn vcd_counts_equal_the_report_in_every_layer_window() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    for (workload_name, arch_name) in [
        ("ic_cifar10", "lu22_fixed"),
        ("kws_cnn_one_fstride4", "lu22_programmable"),
    ] {
        let w = workload::load(workload_name).unwrap_or_else(|e| panic!("{e}"));
        let a = arch::load(arch_name).unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join(format!("{workload_name}.vcd"));
        let r = run(
            &w,
            &a,
            &RunOptions {
                trace: Some(trace_options(&path, None)),
                ..Default::default()
            },
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let mut vcd = Vcd::read(&path);
        let reads = vcd.signal("glb", "read_words_total");
        let requests = vcd.signal("glb", "read_requests_total");
        let dram_r = vcd.signal("dram", "read_bytes_total");
        let dram_w = vcd.signal("dram", "write_bytes_total");
        let rows = a.pe_array.rows as usize;
        let active: Vec<Steps> = (0..rows)
            .map(|r| vcd.signal("array", &format!("row{r}_active_pes")))
            .collect();
        let layer = vcd.signal("controller", "layer");
        for (i, s) in r.engine.layers.iter().enumerate() {
            let (start, end) = (s.start.get(), s.end.get());
            if end == start {
                continue; // flatten: no time, no activity
            }
            let ctx = format!("{workload_name} on {arch_name}, layer {i} [{start}, {end})");
            assert_eq!(layer.at(start), i as u64, "{ctx}: controller.layer");
            assert_eq!(
                requests.delta(start, end),
                s.glb_read_requests,
                "{ctx}: GLB read pulses"
            );
            assert_eq!(
                reads.delta(start, end),
                s.accesses.glb.total().read,
                "{ctx}: GLB words read"
            );
            assert_eq!(
                dram_r.delta(start, end) + dram_w.delta(start, end),
                s.dram.read_bytes + s.dram.write_bytes,
                "{ctx}: DRAM bytes"
            );
            let busy: u64 = active.iter().map(|a| a.integral(start, end)).sum();
            assert_eq!(busy, s.pe_busy_cycles, "{ctx}: PE-busy cycles");
        }
        assert!(r.report.bit_exact);
    }
}

#[test]
fn a_windowed_trace_holds_the_window_and_agrees_with_the_full_one() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let w = workload::load("ic_cifar10").unwrap_or_else(|e| panic!("{e}"));
    let a = arch::load("lu22_fixed").unwrap_or_else(|e| panic!("{e}"));
    let full = run(&w, &a, &RunOptions::default()).unwrap_or_else(|e| panic!("{e}"));
    // The window covers layers 2 and 3 exactly.
    let (start, end) = (
        full.engine.layers[2].start.get(),
        full.engine.layers[3].end.get(),
    );
    let path = dir.path().join("window.vcd");
    run(
        &w,
        &a,
        &RunOptions {
            trace: Some(trace_options(&path, Some((start, end)))),
            ..Default::default()
        },
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let mut vcd = Vcd::read(&path);
    let times = vcd.wave.time_table().to_vec();
    // The window opens with every value as of the cycle before it.
    assert_eq!(times.first().copied(), Some(start - 1));
    assert!(
        times.iter().all(|&t| (start - 1..=end).contains(&t)),
        "times outside [{start} - 1, {end}]"
    );
    let reads = vcd.signal("glb", "read_words_total");
    let expect: u64 = full.engine.layers[2..4]
        .iter()
        .map(|s| s.accesses.glb.total().read)
        .sum();
    assert_eq!(reads.delta(start, end), expect);
    let busy: u64 = (0..a.pe_array.rows as usize)
        .map(|r| {
            vcd.signal("array", &format!("row{r}_active_pes"))
                .integral(start, end)
        })
        .sum();
    assert_eq!(
        busy,
        full.engine.layers[2..4]
            .iter()
            .map(|s| s.pe_busy_cycles)
            .sum::<u64>()
    );
}

#[test]
fn layer_and_group_filters_restrict_the_trace() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let w = workload::load("kws_cnn_one_fstride4").unwrap_or_else(|e| panic!("{e}"));
    let a = arch::load("lu22_fixed").unwrap_or_else(|e| panic!("{e}"));
    let path = dir.path().join("layers.vcd");
    let options = TraceOptions {
        layers: Some(vec![2]),
        groups: vec![Group::Controller, Group::Glb],
        ..trace_options(&path, None)
    };
    let r = run(
        &w,
        &a,
        &RunOptions {
            trace: Some(options),
            ..Default::default()
        },
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let layer = &r.engine.layers[2];
    let mut vcd = Vcd::read(&path);
    let times = vcd.wave.time_table().to_vec();
    assert!(
        times
            .iter()
            .all(|&t| (layer.start.get() - 1..=layer.end.get()).contains(&t)),
        "{times:?}"
    );
    assert_eq!(
        vcd.signal("glb", "read_words_total")
            .delta(layer.start.get(), layer.end.get()),
        layer.accesses.glb.total().read
    );
    let h = vcd.wave.hierarchy();
    assert!(
        h.lookup_var(&["accsim", "array"], "row0_busy").is_none(),
        "array signals were not asked for"
    );
}

#[test]
fn plots_render_png_and_svg_from_a_trace_and_a_report() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let w = workload::load("kws_cnn_one_fstride4").unwrap_or_else(|e| panic!("{e}"));
    let a = arch::load("lu22_programmable").unwrap_or_else(|e| panic!("{e}"));
    let vcd = dir.path().join("k.vcd");
    let r = run(
        &w,
        &a,
        &RunOptions {
            trace: Some(trace_options(&vcd, None)),
            ..Default::default()
        },
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let json = dir.path().join("k.json");
    std::fs::write(&json, serde_json::to_string(&r.report).unwrap_or_default())
        .unwrap_or_else(|e| panic!("{e}"));
    let wave = accsim::trace::read::read_vcd(&vcd, None).unwrap_or_else(|e| panic!("{e}"));
    let names: Vec<String> = r.report.layers.iter().map(|l| l.name.clone()).collect();
    for ext in ["png", "svg"] {
        let out = dir.path().join(format!("wave.{ext}"));
        accsim::trace::plot::waveform(&wave, Some(&names), &out).unwrap_or_else(|e| panic!("{e}"));
        let bytes = std::fs::read(&out).unwrap_or_default();
        assert!(bytes.len() > 2000, "{ext}: {} bytes", bytes.len());
        let charts = dir.path().join(format!("charts.{ext}"));
        accsim::trace::plot::report_charts(&json, &charts).unwrap_or_else(|e| panic!("{e}"));
        assert!(std::fs::metadata(&charts).map(|m| m.len()).unwrap_or(0) > 2000);
    }
    assert_eq!(
        &std::fs::read(dir.path().join("wave.png")).unwrap_or_default()[..4],
        b"\x89PNG"
    );
    let svg = std::fs::read_to_string(dir.path().join("charts.svg")).unwrap_or_default();
    assert!(
        svg.contains("<svg") && svg.contains("softmax"),
        "layer names on the chart"
    );
    // Each PE-array layer's schedule is on the chart: where its weights
    // (and, tile-major, its inputs) are re-read from.
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap_or_default())
            .unwrap_or_default();
    let labels: Vec<String> = report["layers"]
        .as_array()
        .map(|l| l.iter().map(accsim::trace::plot::layer_label).collect())
        .unwrap_or_default();
    let scheduled: Vec<&String> = labels.iter().filter(|l| l.contains("[W:")).collect();
    assert!(!scheduled.is_empty(), "{labels:?}");
    for label in scheduled {
        assert!(svg.contains(label.as_str()), "{label} on the chart");
    }
}

/// Cycles in which both 1-bit step functions are 1, over `[0, end)`.
fn both_high(a: &Steps, b: &Steps, end: u64) -> u64 {
    let mut times: Vec<u64> = a.0.iter().chain(&b.0).map(|&(t, _)| t).collect();
    times.push(end);
    times.sort_unstable();
    times.dedup();
    times
        .windows(2)
        .filter(|w| a.at(w[0]) == 1 && b.at(w[0]) == 1)
        .map(|w| w[1] - w[0])
        .sum()
}

#[test]
fn an_ffe_trace_shows_every_handshake_the_stages_counted() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = dir.path().join("ffe.vcd");
    let w = workload::load("mobilenet_v1_025").unwrap_or_else(|e| panic!("{e}"));
    let a = arch::load("ffe4_pe_array").unwrap_or_else(|e| panic!("{e}"));
    let options = RunOptions {
        trace: Some(trace_options(&path, None)),
        stream_frames: Some(1),
        ..RunOptions::default()
    };
    let r = run(&w, &a, &options).unwrap_or_else(|e| panic!("{e}"));
    assert!(r.report.bit_exact);
    let capacities: Vec<u64> = r
        .report
        .layers
        .iter()
        .filter_map(|l| l.ffe.as_ref().map(|f| f.line_buffer.capacity_words))
        .collect();
    let system = r.system.unwrap_or_else(|| panic!("a system run"));
    let frame = system.ffe.as_ref().map_or(0, |f| f.frame_cycles);
    let mut vcd = Vcd::read(&path);
    let stages: Vec<(String, &accsim::engine::system::FfeLayer)> = system
        .layers
        .iter()
        .enumerate()
        .filter_map(|(i, l)| {
            l.ffe
                .as_ref()
                .map(|f| (w.network.layers[i].name.clone(), f))
        })
        .collect();
    assert_eq!(stages.len(), 7, "conv1 and three dw/pw blocks");
    for (j, (name, f)) in stages.iter().enumerate() {
        let valid = vcd.signal("ffe", &format!("stage{j}_{name}_in_valid"));
        let ready = vcd.signal("ffe", &format!("stage{j}_{name}_in_ready"));
        // A pixel moves exactly in the cycles where valid and ready are both high.
        assert_eq!(
            both_high(&valid, &ready, frame + 1),
            f.stats.inputs,
            "stage {j} {name}"
        );
        let fill = vcd.signal("ffe", &format!("stage{j}_{name}_line_buffer_words"));
        let most = fill.0.iter().map(|&(_, v)| v).max().unwrap_or(0);
        assert!(
            most <= capacities[j],
            "stage {j} {name}: {most} > {}",
            capacities[j]
        );
        if f.line_buffer_banks > 0 {
            assert!(most > 0, "stage {j} {name} never filled its line buffer");
        } else {
            assert_eq!(most, 0, "stage {j} {name} has no line buffer");
        }
    }
    // The PE-array back-end traces into its own file, in its own clock.
    let backend = dir.path().join("ffe.backend.vcd");
    let mut b = Vcd::read(&backend);
    let reads = b.signal("glb", "read_words_total");
    assert!(reads.at(u64::MAX) > 0);
}

#[test]
fn the_schedule_signals_show_each_layers_loop_order_tile_and_visit() {
    use accsim::mapping::schedule::{InputReuse, LoopOrder, ScheduleChoice};
    // Two 1x1 convolutions of a 3 x 4 x 2 input to 4 channels: 8 positions,
    // 2 per pass (4 passes); one output channel per sub-pass, 2 sub-passes.
    let text = r#"
[network]
name = "small"
description = "test"
[numerics]
mode = "affine"
[input]
shape = [3, 4, 2]
scale = 0.02
zero_point = 3
[[layer]]
name = "c"
op = "conv2d"
out_channels = 4
kernel = 1
[[layer]]
name = "d"
op = "conv2d"
out_channels = 4
kernel = 1
"#;
    let w =
        workload::load_str(text, Path::new("small.toml"), None).unwrap_or_else(|e| panic!("{e}"));
    let a = random::small_programmable(40);
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = dir.path().join("small.vcd");
    let mut options = RunOptions {
        trace: Some(trace_options(&path, None)),
        ..Default::default()
    };
    // c: 2 weight tiles (sub-pass 0, then 1), input rows re-fetched; d: pass-major.
    let refetch = ScheduleChoice {
        order: LoopOrder::WeightTileMajor,
        tiles: 2,
        inputs: InputReuse::Refetch,
    };
    options.search.pins.insert("c".to_string(), refetch);
    options
        .search
        .pins
        .insert("d".to_string(), ScheduleChoice::PASS_MAJOR);
    let r = run(&w, &a, &options).unwrap_or_else(|e| panic!("{e}"));
    assert!(r.report.bit_exact);
    let mut vcd = Vcd::read(&path);
    let names = [
        "loop_order",
        "weight_tiles",
        "weights_from",
        "inputs_from",
        "weight_tile",
        "visit",
        "pass",
    ];
    let signals: Vec<Steps> = names.iter().map(|n| vcd.signal("controller", n)).collect();
    let at = |t: u64| -> Vec<u64> { signals.iter().map(|s| s.at(t)).collect() };
    let (c, d) = (&r.engine.layers[0], &r.engine.layers[1]);
    // c's last cycle: tile-major (1), 2 tiles, weights in the GLB's tile
    // buffer (2), input rows re-fetched from DRAM (1); its last step is
    // tile 1's visit of pass 3: visit 4 + 3 = 7.
    assert_eq!(at(c.end.get() - 1), [1, 2, 2, 1, 1, 7, 3]);
    // Tile 1 starts with visit 4, pass 0: find the step that issued it.
    let visit = &signals[5];
    let tile1 = visit.0.iter().find(|&&(_, v)| v == 4).map(|&(t, _)| t);
    assert_eq!(tile1.map(|t| at(t)[4..].to_vec()), Some(vec![1, 4, 0]));
    // d's first cycle (the layer boundary, c.end = d.start): pass-major (0),
    // one tile, weights as the report says, inputs from the GLB (0); its
    // first step is visit 0 of tile 0, pass 0.
    assert_eq!(c.end, d.start);
    let schedule = d.schedule.clone().unwrap_or_default();
    let weights_from = ["lut", "scratchpad", "glb", "dram"]
        .iter()
        .position(|&f| f == schedule.weights_from)
        .unwrap_or(usize::MAX) as u64;
    let first_step = visit
        .0
        .iter()
        .rev()
        .find(|&&(_, v)| v == 0)
        .map(|&(t, _)| t);
    let first_step = first_step.unwrap_or_else(|| panic!("no visit 0 in d"));
    assert!(first_step >= d.start.get());
    assert_eq!(at(first_step), [0, 1, weights_from, 0, 0, 0, 0]);
    assert_eq!(schedule.loop_order, "pass_major");
}
