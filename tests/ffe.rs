//! The FFE (SPEC section 3): tiny pipelines whose line-buffer traffic,
//! fill latency and cycles per frame are derived by hand; the area
//! calibration against FIXYNN; systems on both back-ends; taps; errors.

use std::path::Path;

use accsim::arch::{self, Arch};
use accsim::engine::system::{LayerEngine, SystemRun};
use accsim::run::{RunOptions, RunResult, run};
use accsim::workload::{self, Workload};

/// An FFE of `fixed_layers` in front of NVDLA C, with a datapath latency of
/// two cycles (the defaults), plus `extra` lines.
fn ffe_arch(fixed_layers: u32, extra: &str) -> Arch {
    let text = format!(
        r#"
[arch]
name = "tiny_ffe"
description = "test FFE"
[ffe]
fixed_layers = {fixed_layers}
datapath_latency_cycles = 2
{extra}
[backend]
kind = "nvdla"
nvdla = "C"
"#
    );
    arch::load_str(&text, Path::new("tiny_ffe.toml")).unwrap_or_else(|e| panic!("{e}"))
}

fn tiny_workload(input: &str, layers: &str) -> Workload {
    let text = format!(
        r#"
[network]
name = "tiny"
description = "test"
seed = 3
[numerics]
mode = "affine"
[input]
shape = {input}
scale = 0.02
zero_point = 3
data = {{ dist = "uniform", low = 0, high = 255 }}
{layers}
"#
    );
    workload::load_str(&text, Path::new("tiny.toml"), None).unwrap_or_else(|e| panic!("{e}"))
}

fn run_system(w: &Workload, a: &Arch, options: RunOptions) -> (RunResult, SystemRun) {
    let r = run(w, a, &options).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        r.report.bit_exact,
        "every simulated layer matched the reference"
    );
    let sys = r.system.clone().unwrap_or_else(|| panic!("a system run"));
    (r, sys)
}

#[test]
fn one_conv_stage_by_hand() {
    // Input 1 x 8 x 4 (uint8, zero point 3), conv 3x3 stride 1 "same"
    // (padding 1 all round), 2 output channels, every weight 7.
    let w = tiny_workload(
        "[1, 8, 4]",
        r#"
[[layer]]
name = "c"
op = "conv2d"
out_channels = 2
kernel = 3
padding = "same"
weights = { dist = "constant", value = 7 }
"#,
    );
    let (r, sys) = run_system(&w, &ffe_arch(1, ""), RunOptions::default());
    let row = &sys.layers[0];
    assert_eq!(row.engine, LayerEngine::Ffe);
    let f = row.ffe.as_ref().unwrap_or_else(|| panic!("FFE detail"));
    let s = &f.stats;
    // Line buffer: k + 1 = 4 banks of one row of 4 pixels. Row y lives in
    // bank y mod 4: rows 4..7 overwrite rows 0..3, one rotation per row.
    assert_eq!(f.line_buffer_banks, 4);
    assert_eq!(s.line_buffer.write_accesses, 32);
    assert_eq!(s.line_buffer.write_words, 32);
    assert_eq!(s.line_buffer.rotations, 8);
    // Each output row shifts 6 padded columns (pad, 4 real, pad); a real
    // column reads the window's real rows: 2 for the first and last output
    // rows (top / bottom padding), 3 otherwise: 4 x (2 + 3 x 6 + 2) = 88.
    assert_eq!(s.line_buffer.read_accesses, 88);
    assert_eq!(s.shifts, 48);
    assert_eq!(s.pad_shifts, 16);
    // Timing, one pixel per cycle from the sensor at cycle 0:
    // - writer: rows 0..3 in cycles 0..15 (row y complete at 4y + 3);
    // - output row 0 needs rows 0, 1: it starts at cycle 8 (the cycle after
    //   row 1 completes), shifts columns in 8..13 and emits columns 2..5,
    //   i.e. outputs in cycles 10..13: the fill latency is 10 cycles;
    // - output row 1 needs row 2 (complete at 11): cycles 14..19. Rows 0 is
    //   then free (from cycle 20), so input row 4 waits from 16 to 20 for
    //   bank 0: the sensor is refused 4 cycles;
    // - output row r >= 2 needs row r + 1, which the writer, one row ahead
    //   in its bank, has completed: rows take 6 cycles each, starting at
    //   20, 26, 32, 38, 44, 50. Rows 5, 6, 7 each wait 2 cycles for their
    //   bank (released at 26, 32, 38): 4 + 3 x 2 = 10 refused cycles;
    // - the last output is computed at cycle 55, valid 2 cycles later (57)
    //   and taken by the buffer at once: the frame ends at cycle 58.
    assert_eq!(s.first_input, Some(0));
    assert_eq!(s.first_output, Some(10));
    assert_eq!(s.last_output, Some(55));
    assert_eq!(s.last_taken, Some(57));
    assert_eq!(s.refused_input_cycles, 10);
    assert_eq!(s.backpressure_cycles, 0);
    assert_eq!(s.busy_cycles, 58);
    let ffe = sys.ffe.as_ref().unwrap_or_else(|| panic!("FFE"));
    assert_eq!(ffe.frame_cycles, 58);
    // The report row: fill 10, 32 output cycles, 2 drain (pipeline), and
    // 7 row changes of 2 cycles (the pad columns at each row's ends).
    let c = &row.stats.cycles;
    assert_eq!(
        (c.total, c.fill, c.compute, c.stall, c.drain),
        (58, 10, 32, 14, 2)
    );
    // Datapath: 7 = 8 - 1 is two CSD digits; 9 weights x 2 channels = 36
    // adder inputs per pixel. Widest partial sum: |bias'| + 255 x 9 x 9,
    // with bias' = 0 - 3 x 63 = -189: 20,844 < 2^15, so 16 bits with sign.
    assert_eq!(f.inventory.scalers, 18);
    assert_eq!(f.inventory.digits, 36);
    assert_eq!(f.inventory.max_acc_bits, 16);
    assert_eq!(s.adds, 36 * 32);
    assert_eq!(s.adder_bits, 36 * 16 * 32);
    // Line buffer area: 4 banks x 4 pixels x 8 bits x 1.70 um^2.
    assert!((f.area.line_buffer_mm2 - 128.0 * 1.70e-6).abs() < 1e-12);
    // The report carries the same numbers.
    let l = &r.report.layers[0];
    assert_eq!(l.engine.as_deref(), Some("ffe"));
    let fr = l.ffe.as_ref().unwrap_or_else(|| panic!("ffe field"));
    assert_eq!(fr.line_buffer.read_accesses, 88);
    assert_eq!(fr.first_output_cycle, 10);
    assert_eq!(
        r.report.layers[0].measured.as_ref().map(|m| m.cycles),
        Some(58)
    );
}

#[test]
fn depthwise_feeds_pointwise_without_a_buffer_by_hand() {
    // Input 2 x 4 x 4; depthwise 3x3 stride 2 "same" (TensorFlow: padding
    // 0 top/left, 1 bottom/right) -> 2 x 2 x 2; pointwise 1x1 -> 3 x 2 x 2.
    // One FIXYNN layer: the pair is a depthwise-separable block.
    let w = tiny_workload(
        "[2, 4, 4]",
        r#"
[[layer]]
name = "dw"
op = "depthwise_conv2d"
kernel = 3
stride = 2
padding = "same"
weights = { dist = "constant", value = 5 }
[[layer]]
name = "pw"
op = "conv2d"
out_channels = 3
kernel = 1
weights = { dist = "constant", value = -3 }
"#,
    );
    let (_, sys) = run_system(&w, &ffe_arch(1, ""), RunOptions::default());
    let ffe = sys.ffe.as_ref().unwrap_or_else(|| panic!("FFE"));
    assert_eq!((ffe.hardware_layers, ffe.running_layers), (2, 2));
    let dw = sys.layers[0].ffe.as_ref().unwrap_or_else(|| panic!("dw"));
    let pw = sys.layers[1].ffe.as_ref().unwrap_or_else(|| panic!("pw"));
    assert_eq!((dw.line_buffer_banks, pw.line_buffer_banks), (4, 0));
    assert_eq!(pw.inventory.sram_bits, 0);
    // dw: the 4 input rows fill 4 banks in cycles 0..15 (8 words a row:
    // 4 pixels x 2 channels). Output row 0 needs rows 0..2 (complete at
    // 11): it shifts padded columns 0..4 in cycles 12..16 and emits at
    // columns 2 and 4 (cycles 14, 16). Output row 1 needs row 3 (complete
    // at 15): columns in 17..21, outputs at 19 and 21. Reads: 3 rows x 4
    // real columns + 2 rows x 4 = 20 bank reads of 2 words.
    let d = &dw.stats;
    assert_eq!(d.line_buffer.write_words, 32);
    assert_eq!(d.line_buffer.read_accesses, 20);
    assert_eq!(d.line_buffer.read_words, 40);
    assert_eq!((d.shifts, d.pad_shifts), (10, 2));
    assert_eq!(d.first_output, Some(14));
    assert_eq!(d.last_output, Some(21));
    // pw takes each dw pixel the cycle it is valid (2 cycles after it was
    // computed: 16, 18, 21, 23) straight into its datapath, and its own
    // output is valid 2 cycles later: the buffer takes the last at 25.
    let p = &pw.stats;
    assert_eq!(p.inputs, 4);
    assert_eq!(p.first_input, Some(16));
    assert_eq!(p.first_output, Some(16));
    assert_eq!(p.last_output, Some(23));
    assert_eq!(d.last_taken, Some(23));
    assert_eq!(p.last_taken, Some(25));
    assert_eq!(ffe.frame_cycles, 26);
    // Report rows: dw from cycle 0 to 24 (its last pixel left at 23).
    let c = &sys.layers[0].stats.cycles;
    assert_eq!(
        (c.total, c.fill, c.compute, c.stall, c.drain),
        (24, 14, 4, 4, 2)
    );
    let c = &sys.layers[1].stats.cycles;
    assert_eq!(
        (c.total, c.fill, c.compute, c.stall, c.drain),
        (10, 0, 4, 4, 2)
    );
}

const THREE_FIXED_LAYERS: &str = r#"
[[layer]]
name = "c1"
op = "conv2d"
out_channels = 4
kernel = 3
padding = "same"
[[layer]]
name = "pool"
op = "max_pool"
kernel = 3
stride = 2
padding = 1
[[layer]]
name = "dw"
op = "depthwise_conv2d"
kernel = 3
padding = "same"
[[layer]]
name = "pw"
op = "conv2d"
out_channels = 6
kernel = 1
[[layer]]
name = "c3"
op = "conv2d"
out_channels = 5
kernel = 3
stride = 2
[[layer]]
name = "gap"
op = "global_avg_pool"
[[layer]]
name = "fc"
op = "fc"
out_features = 3
"#;

#[test]
fn max_pool_stage_taps_and_both_backends_are_bit_exact() {
    // Fixed layers: 1 = c1 + pool, 2 = dw + pw, 3 = c3; gap and fc cannot
    // be fixed.
    let w = tiny_workload("[3, 12, 10]", THREE_FIXED_LAYERS);
    for tap in [1, 2, 3] {
        let (r, sys) = run_system(
            &w,
            &ffe_arch(3, ""),
            RunOptions {
                ffe_tap: Some(tap),
                ..Default::default()
            },
        );
        let running = [2, 4, 5][tap as usize - 1];
        let engines: Vec<&str> = r
            .report
            .layers
            .iter()
            .map(|l| l.engine.as_deref().unwrap_or(""))
            .collect();
        assert!(
            engines[..running].iter().all(|&e| e == "ffe"),
            "{engines:?}"
        );
        assert!(
            engines[running..].iter().all(|&e| e == "nvdla_table"),
            "{engines:?}"
        );
        let ffe = sys.ffe.as_ref().unwrap_or_else(|| panic!("FFE"));
        // The hardware is always all three layers: the area does not depend
        // on the tap; the energy does.
        assert_eq!(ffe.hardware_layers, 5);
        assert_eq!(ffe.running_layers, running);
        assert!(
            sys.layers[1]
                .ffe
                .as_ref()
                .is_some_and(|f| f.line_buffer_banks == 4)
        );
    }
    // The same FFE in front of a PE array.
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("arch_configs/ffe7_pe_array.toml"),
    )
    .unwrap_or_default()
    .replace("fixed_layers = 7 ", "fixed_layers = 3 ");
    let a = arch::load_str(&text, Path::new("ffe3_pe.toml")).unwrap_or_else(|e| panic!("{e}"));
    let (r, sys) = run_system(&w, &a, RunOptions::default());
    assert!(
        r.report.layers[5..]
            .iter()
            .all(|l| l.engine.as_deref() == Some("pe_array"))
    );
    // The tapped tensor (5 x 2 x 2 bytes) was written into the GLB.
    assert_eq!((sys.handoff_buffer_words, sys.handoff_dram_words), (20, 0));
    let first_backend = &sys.layers[5].stats;
    assert_eq!(
        first_backend.accesses.dram.total().read,
        0,
        "no DRAM read of the tap"
    );
}

#[test]
fn stream_overlaps_frames_and_backpressure_stalls_the_ffe() {
    let w = tiny_workload("[3, 12, 10]", THREE_FIXED_LAYERS);
    // Double buffering: the FFE finishes frame i + 1 while the back-end
    // works on frame i.
    let (_, sys) = run_system(
        &w,
        &ffe_arch(3, ""),
        RunOptions {
            stream_frames: Some(6),
            ..Default::default()
        },
    );
    let s = sys.stream.as_ref().unwrap_or_else(|| panic!("stream"));
    assert_eq!((s.frames, s.buffer_slots), (6, 2));
    assert_eq!(s.frame_end_s.len(), 6);
    assert!(s.frame_end_s.windows(2).all(|p| p[1] > p[0]));
    let ffe = sys.ffe.as_ref().unwrap_or_else(|| panic!("FFE"));
    let ffe_frame_s = ffe.frame_cycles as f64 / 810e6;
    let backend_s = sys.backend_cycles as f64 / (0.358e12 / 512.0);
    // Steady state: one frame per max(FFE frame, back-end frame), and never
    // faster than either.
    assert!(s.period_s >= backend_s * 0.999 && s.period_s >= ffe_frame_s * 0.5);
    assert!(s.period_s <= (ffe_frame_s + backend_s) * 1.001);
    assert!(s.ffe_busy_share > 0.0 && s.ffe_busy_share < 1.0);
    assert!(s.ffe_stepped_cycles <= s.ffe_total_cycles);
    // Back-pressure: a back-end far slower than the FFE keeps the FFE's
    // output stalled, so its clock is mostly gated.
    let (_, slow) = run_system(
        &w,
        &ffe_arch(1, ""),
        RunOptions {
            stream_frames: Some(4),
            ..Default::default()
        },
    );
    let st = slow.stream.as_ref().unwrap_or_else(|| panic!("stream"));
    let be = slow.backend_cycles as f64 / (0.358e12 / 512.0);
    assert!(
        (st.period_s - be).abs() / be < 1e-6,
        "the back-end sets the pace"
    );
    assert!(st.ffe_busy_share < 0.5);
}

#[test]
fn binary_digits_cost_more_than_csd_and_fixed_accumulators_are_32_bits() {
    let w = tiny_workload(
        "[1, 6, 6]",
        r#"
[[layer]]
name = "c"
op = "conv2d"
out_channels = 2
kernel = 3
weights = { dist = "constant", value = 7 }
"#,
    );
    let (_, csd) = run_system(&w, &ffe_arch(1, ""), RunOptions::default());
    let (_, bin) = run_system(
        &w,
        &ffe_arch(1, "digits = \"binary\"\naccumulator = \"fixed\""),
        RunOptions::default(),
    );
    let d = |s: &SystemRun| {
        s.layers[0]
            .ffe
            .as_ref()
            .map(|f| f.inventory)
            .unwrap_or_default()
    };
    // 7 = 111b: three digits in binary, two (8 - 1) in CSD.
    assert_eq!((d(&csd).digits, d(&bin).digits), (36, 54));
    assert_eq!((d(&csd).max_acc_bits, d(&bin).max_acc_bits), (16, 32));
}

fn mobilenet_025() -> Workload {
    workload::load("mobilenet_v1_025").unwrap_or_else(|e| panic!("{e}"))
}

/// Issue 17: for every shipped FFE system the energy parts add up to the
/// total: the level parts and the NVDLA table's unsplit energy to
/// `energy.total` (normalised and pJ), memory + MAC + table to the total,
/// FFE + back-end to the frame, and the FFE's own parts plus its hand-off
/// writes to the FFE's energy. (On main, NVDLA systems' memory + MAC
/// missed the whole back-end.)
#[test]
fn ffe_system_energy_parts_add_up_on_every_shipped_ffe_arch() {
    let w = mobilenet_025();
    let close = |a: f64, b: f64, what: &str| {
        assert!(
            (a - b).abs() <= 1e-9 * b.abs().max(1.0),
            "{what}: parts {a} vs total {b}"
        );
    };
    for n in [4, 7, 11] {
        for backend in ["nvdla_c", "nvdla_e", "pe_array"] {
            let name = format!("ffe{n}_{backend}");
            let a = arch::load(&name).unwrap_or_else(|e| panic!("{e}"));
            let r = run(&w, &a, &RunOptions::default()).unwrap_or_else(|e| panic!("{e}"));
            let m = r
                .report
                .total
                .measured
                .as_ref()
                .unwrap_or_else(|| panic!("{name}"));
            for (e, unit) in [(&m.energy, "normalised"), (&m.energy_pj, "pJ")] {
                let parts = e.mac + e.rf + e.array + e.glb + e.dram + e.nvdla_table;
                close(parts, e.total, &format!("{name} {unit} levels"));
            }
            close(
                m.memory_energy + m.energy.mac + m.energy.nvdla_table,
                m.energy.total,
                &format!("{name} memory + MAC + NVDLA table"),
            );
            assert_eq!(
                m.energy.nvdla_table > 0.0,
                backend != "pe_array",
                "{name}: only NVDLA back-ends have table energy"
            );
            let s = r.report.system.as_ref().unwrap_or_else(|| panic!("{name}"));
            let f = &s.frame;
            close(f.ffe_energy_pj + f.backend_energy_pj, f.energy_pj, &name);
            close(m.energy_pj.total, f.energy_pj, &format!("{name} frame"));
            let ffe = s.ffe.as_ref().unwrap_or_else(|| panic!("{name}"));
            let e = &ffe.energy_pj;
            close(
                e.adders_pj + e.bn_pj + e.line_buffer_pj + e.registers_pj + e.leakage_pj,
                e.total_pj,
                &format!("{name} FFE parts"),
            );
            let handoff_pj = f.ffe_energy_pj - e.total_pj;
            assert!(handoff_pj > 0.0, "{name}: the tap writes the buffer");
        }
    }
}

#[test]
fn area_calibration_points_within_20_percent_of_fixynn() {
    // FIXYNN: MobileNetV1 alpha 0.25, 50 % sparsity: 4 fixed layers
    // 0.38 mm^2, 7: 0.79 mm^2, 11: 1.68 mm^2.
    let w = mobilenet_025();
    for (n, want) in [(4, 0.38), (7, 0.79), (11, 1.68)] {
        let a = arch::load(&format!("ffe{n}_nvdla_c")).unwrap_or_else(|e| panic!("{e}"));
        let r = run(
            &w,
            &a,
            &RunOptions {
                stream_frames: Some(1),
                ..Default::default()
            },
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(r.report.bit_exact);
        let area = r
            .report
            .system
            .as_ref()
            .and_then(|s| s.ffe.as_ref())
            .map_or(0.0, |f| f.area_mm2);
        let error = (area - want) / want;
        assert!(
            error.abs() <= 0.20,
            "{n} layers: {area:.3} mm^2 vs {want} ({error:+.1e})"
        );
        // DeepFreeze's per-weight estimate is far below: it counts the
        // scalers only (docs/ffe.md).
        let df = r
            .report
            .system
            .as_ref()
            .and_then(|s| s.ffe.as_ref())
            .map_or(0.0, |f| f.deepfreeze_area_mm2);
        assert!(df < area);
    }
}

#[test]
fn mismatched_arch_and_workload_are_refused_with_the_field() {
    let w = tiny_workload("[3, 12, 10]", THREE_FIXED_LAYERS);
    let e = run(&w, &ffe_arch(4, ""), &RunOptions::default())
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        e.contains("tiny_ffe.toml:6:16")
            && e.contains("fixed_layers")
            && e.contains("3 fixable layer(s)")
            && e.contains("`gap`")
            && e.contains("valid: 1 to 3"),
        "{e}"
    );
    let e = run(
        &w,
        &ffe_arch(2, ""),
        &RunOptions {
            ffe_tap: Some(3),
            ..Default::default()
        },
    )
    .err()
    .map(|e| e.to_string())
    .unwrap_or_default();
    assert!(
        e.contains("--ffe-tap") && e.contains("valid: 1 to 2"),
        "{e}"
    );
    // A later layer reading a tensor inside the FFE.
    let skip = tiny_workload(
        "[2, 6, 6]",
        r#"
[[layer]]
name = "a"
op = "conv2d"
out_channels = 2
kernel = 3
[[layer]]
name = "b"
op = "conv2d"
out_channels = 2
kernel = 1
[[layer]]
name = "c"
op = "conv2d"
input = "a"
out_channels = 2
kernel = 1
"#,
    );
    let e = run(&skip, &ffe_arch(2, ""), &RunOptions::default())
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        e.contains("fixed_layers") && e.contains("layer `c` reads `a`"),
        "{e}"
    );
}

#[test]
fn arch_sections_are_validated() {
    let bad = |text: &str| {
        arch::load_str(text, Path::new("bad.toml"))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    };
    let base = "[arch]\nname = \"x\"\ndescription = \"y\"\n";
    let e = bad(&format!(
        "{base}[backend]\nkind = \"nvdla\"\nnvdla = \"G\"\n"
    ));
    assert!(
        e.contains("bad.toml:6:9") && e.contains("\"A\", \"B\""),
        "{e}"
    );
    let e = bad(&format!(
        "{base}[backend]\nkind = \"nvdla\"\nnvdla = \"C\"\natomic_c = 3\n"
    ));
    assert!(
        e.contains("atomic_c") && e.contains("a product of 256"),
        "{e}"
    );
    let e = bad(&format!(
        "{base}clock_mhz = 500\n[backend]\nkind = \"nvdla\"\nnvdla = \"C\"\n"
    ));
    assert!(
        e.contains("clock_mhz") && e.contains("follows from its table"),
        "{e}"
    );
    let e = bad(&format!(
        "{base}[ffe]\nfixed_layers = 0\n[backend]\nkind = \"nvdla\"\nnvdla = \"A\"\n"
    ));
    assert!(
        e.contains("[ffe], field `fixed_layers`") && e.contains("valid: 1 to"),
        "{e}"
    );
    let e = bad(&format!("{base}[ffe]\nfixed_layers = 2\n"));
    assert!(e.contains("missing section [pe_array]"), "{e}");
    let e = bad(&format!(
        "{base}[ffe]\nfixed_layers = 2\n[ffe.area]\nsram_um2_per_bits = 1\n[backend]\nkind = \"nvdla\"\nnvdla = \"A\"\n"
    ));
    assert!(e.contains("unknown field `sram_um2_per_bits`"), "{e}");
    // NVDLA clocks follow from the table: C is 0.358 TOPS over 512 ops/cycle.
    let a = arch::load("ffe7_nvdla_c").unwrap_or_else(|e| panic!("{e}"));
    assert!((a.clock_mhz - 699.21875).abs() < 1e-9);
}

fn accsim_cmd() -> assert_cmd::Command {
    assert_cmd::Command::cargo_bin("accsim").unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn cli_runs_ffe_systems_on_both_backends_with_every_figure() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    for arch_name in ["ffe7_nvdla_c", "ffe7_pe_array"] {
        let json = dir.path().join(format!("{arch_name}.json"));
        let csv = dir.path().join(format!("{arch_name}.csv"));
        let out = accsim_cmd()
            .args([
                "run",
                "--arch",
                &format!("arch_configs/{arch_name}.toml"),
                "--workload",
                "mobilenet_v1_025",
                "--json",
                &json.to_string_lossy(),
                "--csv",
                &csv.to_string_lossy(),
            ])
            .output()
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("bit-exact: yes") && text.contains("FFE: 7 fixed layers"),
            "{text}"
        );
        let r: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&json).unwrap_or_else(|e| panic!("{e}")))
                .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r["bit_exact"], true);
        assert_eq!(r["schema_version"], 11);
        let layers = r["layers"].as_array().cloned().unwrap_or_default();
        assert_eq!(layers.len(), 29);
        // Provenance: the NVDLA table computes no value, so its 16 layers
        // are not counted as checked, and the summary says so.
        let table_driven = if arch_name.ends_with("pe_array") {
            0
        } else {
            16
        };
        assert_eq!(r["simulated_layers"], 29 - table_driven);
        assert_eq!(r["reference_layers"], table_driven);
        let summary = if table_driven == 0 {
            "bit-exact: yes (all 29 layers simulated and matched the reference)".to_string()
        } else {
            "bit-exact: yes for the 13 simulated layers; 16 layers not simulated (values from the reference executor)".to_string()
        };
        assert!(text.contains(&summary), "{text}");
        // conv1 + 6 blocks = 13 FFE stages, then the back-end.
        let backend = if arch_name.ends_with("pe_array") {
            "pe_array"
        } else {
            "nvdla_table"
        };
        for (i, l) in layers.iter().enumerate() {
            let want = if i < 13 { "ffe" } else { backend };
            assert_eq!(l["engine"], want, "layer {i}");
            let values = if want == "nvdla_table" {
                "reference"
            } else {
                "simulated"
            };
            assert_eq!(l["values"], values, "layer {i}");
            assert!(l["cycles"].is_u64(), "layer {i}");
            if l["macs"].as_u64().unwrap_or(0) > 0 {
                assert!(l["tops"].as_f64().unwrap_or(0.0) > 0.0, "layer {i}");
                assert!(l["tops_per_w"].as_f64().unwrap_or(0.0) > 0.0, "layer {i}");
            }
            assert_eq!(l["ffe"].is_object(), i < 13, "layer {i}");
        }
        let area = r["area_mm2"].as_f64().unwrap_or(0.0);
        let ffe_area = r["system"]["ffe"]["area_mm2"].as_f64().unwrap_or(0.0);
        assert!((ffe_area - 0.816).abs() < 0.01, "{ffe_area}");
        assert!(area > ffe_area);
        let s = &r["system"];
        for key in [
            "latency_s",
            "tops",
            "tops_per_w",
            "energy_pj",
            "ffe_cycles",
            "backend_cycles",
        ] {
            assert!(s["frame"][key].as_f64().unwrap_or(0.0) > 0.0, "{key}");
        }
        for key in [
            "frames_per_s",
            "tops",
            "tops_per_w",
            "ffe_busy_share",
            "ffe_idle_share",
        ] {
            assert!(s["stream"][key].as_f64().unwrap_or(0.0) > 0.0, "{key}");
        }
        let header = std::fs::read_to_string(&csv).unwrap_or_default();
        assert!(header.lines().next().is_some_and(|h| {
            h.contains(",engine,clock_mhz,tops,tops_per_w,precision,pe_busy,")
                && h.ends_with(",pe_psum_space,pe_dram_write,pe_unused")
        }));
    }
}

#[test]
fn cli_refuses_bad_taps_with_exit_code_2() {
    for (arch_name, tap) in [
        ("ffe4_nvdla_e", "5"),
        ("ffe4_nvdla_e", "0"),
        ("lu22_fixed", "1"),
    ] {
        let out = accsim_cmd()
            .args([
                "run",
                "--arch",
                arch_name,
                "--workload",
                "kws_cnn_one_fstride4",
                "--ffe-tap",
                tap,
                "-q",
            ])
            .output()
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(out.status.code(), Some(2), "{arch_name} {tap}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("--ffe-tap") || err.contains("fixed_layers"),
            "{err}"
        );
    }
}
