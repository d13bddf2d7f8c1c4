//! The PE-array engine: two tiny layers whose counts and cycles are derived
//! by hand, invariants over every shipped workload, and failure modes.

use std::path::Path;

use accsim::arch::{self, Arch};
use accsim::engine::{self, LayerStats};
use accsim::run::{RunOptions, run};
use accsim::workload::{self, Workload};

/// A 2 x 2 array with a 6-entry input RF (pieces of 3), fast DRAM timing
/// numbers that are easy to follow by hand.
fn tiny_arch(weight_store: &str) -> Arch {
    let text = format!(
        r#"
[arch]
name = "tiny"
description = "2x2 test array"
clock_mhz = 100
[pe_array]
rows = 2
cols = 2
input_rf_entries = 6
psum_rf_entries = 4
weight_store = "{weight_store}"
weight_scratchpad_entries = 224
[interconnect]
glb_bus_bytes_per_cycle = 8
neighbor_words_per_cycle = 1
[glb]
capacity_kib = 1
banks = 4
bank_width_bytes = 8
ports_per_bank = 1
[dram]
model = "simple"
bandwidth_bytes_per_cycle = 4
latency_cycles = 10
"#
    );
    arch::load_str(&text, Path::new("tiny_arch.toml")).unwrap_or_else(|e| panic!("{e}"))
}

fn tiny_workload(layer: &str, shape: &str) -> Workload {
    let text = format!(
        r#"
[network]
name = "tiny"
description = "test"
[numerics]
mode = "affine"
[input]
shape = {shape}
scale = 0.02
zero_point = 3
[[layer]]
{layer}
"#
    );
    workload::load_str(&text, Path::new("tiny.toml"), None).unwrap_or_else(|e| panic!("{e}"))
}

fn stats(w: &Workload, a: &Arch) -> LayerStats {
    let r = engine::run(&w.network, a, &w.default_input, Some(&w.default_outputs))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(r.checked);
    r.layers[0].clone()
}

#[test]
fn tiny_conv_fixed_weights_by_hand() {
    // Input 1 x 3 x 4 (uint8), conv 3x3, 2 output channels, no padding:
    // output 2 x 1 x 2, positions (0,0) and (0,1): one pass, PE rows 0 and 1.
    // Columns: channel 0 and channel 1. Pieces: a 3x3 window does not fit
    // half the RF (3 entries), a kernel row does: pieces ky = 0, 1, 2.
    let w = tiny_workload(
        "name = \"c\"\nop = \"conv2d\"\nout_channels = 2\nkernel = 3",
        "[1, 3, 4]",
    );
    let s = stats(&w, &tiny_arch("fixed"));
    // Counts.
    // MACs: 2 positions x 2 channels x 9 = 36.
    assert_eq!(s.macs, 36);
    // Per piece, row 0 (position (0,0)) reads 3 new words from the GLB; row 1
    // (position (0,1)) shares taps kx = 0, 1 with row 0 (they are row 0's
    // kx = 1, 2) and reads only kx = 2: 4 GLB reads and 2 forwarded words,
    // each forwarded to both PEs of the row (2 array reads). x 3 pieces.
    let a = &s.accesses;
    assert_eq!(a.glb.by_type.input.read, 12);
    assert_eq!(a.array.by_type.input.read, 12);
    // The input comes from DRAM: 3 rows of 4 bytes, read once and written to the GLB.
    assert_eq!(a.dram.by_type.input.read, 12);
    assert_eq!(a.glb.by_type.input.write, 12);
    // Outputs: 4 words written to the GLB. No weight moves above the PEs.
    assert_eq!(a.glb.by_type.output.write, 4);
    assert_eq!(
        a.dram.by_type.weight.read + a.glb.by_type.weight.read + a.array.by_type.weight.read,
        0
    );
    // RF: each of the 4 PEs writes 3 inputs per piece (36), reads one input and
    // one weight per MAC (36 + 36), plus one bias from its LUT (4): 40 LUT reads.
    assert_eq!(a.rf.by_type.input.write, 36);
    assert_eq!(a.rf.by_type.input.read, 36);
    assert_eq!(a.rf.by_type.weight.read, 40);
    assert_eq!(s.lut_reads, 40);
    // Psum RF: 4 bias writes, then per piece one read and one write per PE
    // (12 each), then 4 reads as the outputs leave.
    assert_eq!(a.rf.by_type.psum.write, 16);
    assert_eq!(a.rf.by_type.psum.read, 16);
    // Cycles.
    //  0: prefetch: DRAM reads of rows 0, 1, 2 (4 B at 4 B/cycle after 10
    //     cycles of latency): data 10-11, 11-12, 12-13.
    // 11, 12, 13: rows written to the GLB (one bank slot each), ready at 12, 13, 14.
    // 14: piece 0: GLB read 14-15; bus: row 0's 3 bytes 15-16, row 1's 1 byte
    //     15-16; link: row 1's 2 shared words 16-18 (they flow one cycle
    //     behind row 0's first word). Delivered at 18. Compute 18-21 (3 MACs).
    // 18: piece 1: GLB 18-19, bus 19-20, link 20-22; compute 22-25.
    // 22: piece 2 (its RF buffer freed at 21): GLB 22-23, bus 23-24, link
    //     24-26; compute 26-29.
    // 29: outputs on the output bus (4 bytes) 29-30; GLB write 30-31. End: 31.
    assert_eq!(s.cycles.total, 31);
    assert_eq!(s.cycles.fill, 18); // start to the first MAC
    assert_eq!(s.cycles.compute, 9); // 3 pieces x 3 cycles
    assert_eq!(s.cycles.stall, 2); // 21-22 and 25-26: waiting for the link
    assert_eq!(s.cycles.drain, 2); // 29-31
    assert_eq!(s.pe_busy_cycles, 36);
}

/// The same layer with a one-entry DRAM read queue: the prefetcher holds
/// back while a read is in flight and sends the next as it completes, so
/// the rows arrive one latency apart and the DRAM never holds a waiting
/// read (the cycle stepper checks that too).
#[test]
fn a_full_dram_read_queue_holds_the_prefetcher_back() {
    let w = tiny_workload(
        "name = \"c\"\nop = \"conv2d\"\nout_channels = 2\nkernel = 3",
        "[1, 3, 4]",
    );
    let mut a = tiny_arch("fixed");
    a.dram.read_queue_entries = 1;
    //  0: row 0 sent; data 10-11, done at 11. Rows 1 and 2 held back.
    // 11: row 0 into the GLB (ready 12); row 1 sent: data 21-22.
    // 22: row 1 into the GLB (ready 23); row 2 sent: data 32-33.
    // 33: row 2 into the GLB, ready 34. From here as above, 20 cycles
    //     later: pieces computed 38-41, 42-45, 46-49; outputs 49-51.
    for timing in [accsim::sim::Timing::Event, accsim::sim::Timing::Cycle] {
        let opts = engine::EngineOptions {
            timing,
            ..Default::default()
        };
        let r = engine::run_with(
            &w.network,
            &a,
            &w.default_input,
            Some(&w.default_outputs),
            &opts,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let s = &r.layers[0];
        assert_eq!(
            (
                s.cycles.total,
                s.cycles.fill,
                s.cycles.compute,
                s.cycles.stall,
                s.cycles.drain
            ),
            (51, 38, 9, 2, 2)
        );
        assert_eq!(s.dram.read_requests, 3);
    }
}

/// A GLB-unit layer whose output spills to a DRAM with a one-entry write
/// queue and a slow (1 B/cycle) channel: the unit holds a spilled output
/// row until the write queue has an entry for it, so the DRAM never keeps
/// a write waiting. Max pool 1x1 over a 1 x 4 x 4 input (uint8: 4-byte
/// rows) in an 8-byte GLB: two input rows fill it, so output rows 0-2
/// spill and row 3 finds the room row 2 left.
#[test]
fn a_full_dram_write_queue_holds_the_glb_unit_back() {
    let w = tiny_workload(
        "name = \"p\"\nop = \"max_pool\"\nkernel = 1\nstride = 1",
        "[1, 4, 4]",
    );
    let mut a = tiny_arch("fixed");
    a.glb.capacity_bytes = 8;
    a.dram.bandwidth_bytes_per_cycle = 1;
    // Latency 10, 4 bytes in 4 cycles; one channel, granted in request
    // order. GLB: 4 bank slots a cycle, a row is one slot; the unit takes
    // 8 B/cycle. A spilled row is staged in the GLB and read back (both in
    // the cycle it is stored) while its DRAM write is sent.
    //  0: row 0 read: data 10-14; row 1 read (one row ahead): data 14-18.
    // 14: row 0 into the GLB, ready 15; pooled 15-16. No room: spills.
    // 16: write 0 sent: data 26-30, done 30. Row 0 leaves the GLB.
    // 16: output row 1: row 2 read (ahead): data 30-34.
    // 18: row 1 into the GLB, ready 19; pooled 19-20; spills, but write 0
    //     holds the only write-queue entry: the unit holds the row until 30.
    // 30: write 1 sent: data 40-44, done 44. Row 1 leaves.
    // 30: output row 2: row 3 read: data after write 1, 44-48.
    // 34: row 2 into the GLB, ready 35; pooled 35-36; spills; held until 44.
    // 44: write 2 sent: data 54-58, done 58. Row 2 leaves.
    // 48: row 3 into the GLB, ready 49; pooled 49-50; into the GLB 50-51.
    // The layer ends with write 2 at 58. The unit waited 10 + 8 cycles for
    // write-queue entries (its next reads queue behind the writes on the
    // channel anyway, so the waits cost no further cycles).
    // With 16 write-queue entries no write waits for another:
    // 20: write 1 sent: data 30 -> 34-38 (after row 2); row 3 read 38-42.
    // 36: write 2 sent: data 46-50. 42: row 3 ready 43, pooled 43-44,
    //     into the GLB 44-45. The layer ends at 50, with no hold.
    for timing in [accsim::sim::Timing::Event, accsim::sim::Timing::Cycle] {
        for (entries, holds, cycles) in [(1, 2, 58), (16, 0, 50)] {
            a.dram.write_queue_entries = entries;
            let opts = engine::EngineOptions {
                timing,
                ..Default::default()
            };
            let r = engine::run_with(
                &w.network,
                &a,
                &w.default_input,
                Some(&w.default_outputs),
                &opts,
            )
            .unwrap_or_else(|e| panic!("{e}"));
            assert!(r.checked);
            let s = &r.layers[0];
            assert_eq!(s.cycles.total, cycles, "{entries} entries, {timing:?}");
            assert_eq!(r.write_holds, holds, "{entries} entries, {timing:?}");
            assert_eq!((s.dram.write_requests, s.dram.write_bytes), (3, 12));
            assert_eq!(s.dram.read_requests, 4);
        }
    }
}

/// A PE-array layer whose output spills to a DRAM with a one-entry write
/// queue and a slow (1 B/cycle) channel: the output stage claims the write
/// queue's entry for a sub-pass that may spill before it issues the
/// sub-pass's last step, so the array waits (`dram_write`), its sums still in
/// the psum RFs, until the previous spill's write is done, and the DRAM never
/// keeps a write waiting. Conv 1x1, 2 output channels, over a 1 x 3 x 2
/// input (uint8: 2-byte input rows, 4-byte output rows) in a 4-byte GLB: two
/// input rows fill it, so every output row spills.
#[test]
fn a_full_dram_write_queue_holds_the_array_output_stage_back() {
    let w = tiny_workload(
        "name = \"c\"\nop = \"conv2d\"\nout_channels = 2\nkernel = 1",
        "[1, 3, 2]",
    );
    let mut a = tiny_arch("fixed");
    a.glb.capacity_bytes = 4;
    a.dram.bandwidth_bytes_per_cycle = 1;
    // Pass p computes output row p (positions (p, 0) and (p, 1) on PE rows
    // 0 and 1, channels on the columns) in one step of one MAC. Latency 10,
    // 1 B/cycle, one channel granted in request order.
    //  0: rows 0 and 1 read: data 10-12, 12-14.
    // 12: row 0 into the GLB, ready 13.
    // 13: step 0 (output row 0 not placed yet: it may spill; the write
    //     queue is empty: the entry is claimed). GLB read 13-14, bus 14-15,
    //     compute 15-16. Row 0 leaves the GLB; the prefetcher sends row 2's
    //     read at 15: data 25-27.
    // 16: sums on the output bus 16-17. 17: no GLB room: row 0 spills, its
    //     write sent with the claimed entry: data 27-31, done 31.
    // 15: step 1 is ready (row 1 arrived at 14, ready 15) but the entry is
    //     claimed (until 17), then taken by write 0 (until 31): the step
    //     waits, its sub-pass (as step 0's until 17) in the psum RFs.
    // 31: step 1 claims the entry: GLB 31-32, bus 32-33, compute 33-34;
    //     output bus 34-35; write 1 at 35: data 45-49, done 49.
    // 33: step 2 ready (row 2 ready at 28): waits for the entry until 49;
    //     GLB 49-50, bus 50-51, compute 51-52; bus 52-53; write 2 at 53: data
    //     63-67. The layer ends at 67.
    // The array waited for the entry 16-31 and 34-49: 30 cycles x 4 PEs.
    // With 16 entries no step waits: step 1 computes 17-18, row 2 (ready
    // 28) gates step 2 (compute 30-31), the writes are sent at 17, 19 and
    // 32 (data 27-31, 31-35, 42-46): the layer ends at 46.
    for timing in [accsim::sim::Timing::Event, accsim::sim::Timing::Cycle] {
        for (entries, holds, cycles, dram_write) in [(1, 2, 67, 120), (16, 0, 46, 0)] {
            a.dram.write_queue_entries = entries;
            let opts = engine::EngineOptions {
                timing,
                ..Default::default()
            };
            let r = engine::run_with(
                &w.network,
                &a,
                &w.default_input,
                Some(&w.default_outputs),
                &opts,
            )
            .unwrap_or_else(|e| panic!("{e}"));
            assert!(r.checked);
            let s = &r.layers[0];
            let why = format!("{entries} entries, {timing:?}");
            assert_eq!(s.cycles.total, cycles, "{why}");
            assert_eq!((s.cycles.compute, s.cycles.fill), (3, 15), "{why}");
            let pe = s.pe_cycles.as_ref().map(|p| p.dram_write);
            assert_eq!(pe, Some(dram_write), "{why}");
            assert_eq!(r.write_holds, holds, "{why}");
            assert_eq!(s.spilled_rows, 3);
            assert_eq!((s.dram.write_requests, s.dram.write_bytes), (3, 12));
            assert_eq!(s.dram.read_requests, 3);
        }
    }
}

#[test]
fn tiny_fc_programmable_weights_by_hand() {
    // FC 4 -> 3 on 4 PEs: outputs 0, 1, 2 on PEs 0, 1, 2; PE 3 idle. Pieces of
    // 3 features: {0, 1, 2} and {3}. Every PE's weights (4 + 1 bias) fit its
    // scratchpad: loaded once, in the only pass.
    let w = tiny_workload("name = \"f\"\nop = \"fc\"\nout_features = 3", "[4, 1, 1]");
    let s = stats(&w, &tiny_arch("programmable"));
    let a = &s.accesses;
    assert_eq!(s.macs, 12);
    // Weights: piece 0 carries 3 PEs x 3 weights + 3 biases = 12 words,
    // piece 1 3 x 1 = 3: 15 words from DRAM into the GLB, out over the weight bus.
    assert_eq!(a.dram.by_type.weight.read, 15);
    assert_eq!(a.glb.by_type.weight.write, 15);
    assert_eq!(a.glb.by_type.weight.read, 15);
    // Scratchpads receive the 12 weights; the 3 biases go to the psum RFs.
    assert_eq!(a.rf.by_type.weight.write, 12);
    assert_eq!(a.rf.by_type.weight.read, 12);
    assert_eq!(s.lut_reads, 0);
    // Inputs: the 4-byte vector from DRAM, once from the GLB, broadcast to 3 PEs.
    assert_eq!(a.dram.by_type.input.read, 4);
    assert_eq!(a.glb.by_type.input.read, 4);
    assert_eq!(a.rf.by_type.input.write, 12);
    assert_eq!(a.rf.by_type.input.read, 12);
    assert_eq!(a.array.total().total(), 0);
    // Psums: 3 bias writes + 2 pieces x 3 read/write + 3 final reads.
    assert_eq!(a.rf.by_type.psum.write, 9);
    assert_eq!(a.rf.by_type.psum.read, 9);
    assert_eq!(a.glb.by_type.output.write, 3);
    // Cycles.
    //  0: weight reads for pieces 0 and 1 (12 B then 3 B) and the input row
    //     (4 B) queue on the DRAM channel after 10 cycles: 10-13, 13-14, 13-15.
    // 13: piece 0's weights into the GLB (2 slots) 13-14; 14: piece 1's 14-15;
    // 15: the input row into the GLB, ready at 16.
    // 16: piece 0: input GLB read 16-17, input bus 17-18; weights GLB 16-17,
    //     weight bus (12 B) 17-19. Compute 19-22 (3 MACs).
    // 18: piece 1: inputs arrive at 20, weights at 20; compute after piece 0: 22-23.
    // 23: 3 outputs on the output bus 23-24, into the GLB 24-25. End: 25.
    assert_eq!(s.cycles.total, 25);
    assert_eq!(s.cycles.fill, 19);
    assert_eq!(s.cycles.compute, 4);
    assert_eq!(s.cycles.stall, 0);
    assert_eq!(s.cycles.drain, 2);
    assert_eq!(s.pe_busy_cycles, 12);
}

fn shipped() -> Vec<String> {
    accsim::home::shipped("workloads")
        .iter()
        .filter_map(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .collect()
}

#[test]
fn invariants_over_every_shipped_workload() {
    for arch_name in ["lu22_fixed", "lu22_programmable"] {
        let a = arch::load(arch_name).unwrap_or_else(|e| panic!("{e}"));
        for name in shipped() {
            let w = workload::load(&name).unwrap_or_else(|e| panic!("{name}: {e}"));
            let r = run(&w, &a, &RunOptions::default())
                .unwrap_or_else(|e| panic!("{arch_name} {name}: {e}"));
            assert!(r.report.bit_exact, "{arch_name} {name}");
            let net = &w.network;
            let layers = &r.engine.layers;
            for (l, s) in net.layers.iter().zip(layers) {
                // The engine performs exactly the workload's MACs.
                assert_eq!(s.macs, l.macs(), "{arch_name} {name} {}", l.name);
                assert_eq!(
                    s.cycles.total,
                    s.cycles.fill + s.cycles.compute + s.cycles.stall + s.cycles.drain,
                    "{name} {}",
                    l.name
                );
                if arch_name == "lu22_fixed" {
                    // Fixed weights never travel above the PEs.
                    let a = &s.accesses;
                    assert_eq!(
                        a.dram.by_type.weight.total()
                            + a.glb.by_type.weight.total()
                            + a.array.by_type.weight.total(),
                        0,
                        "{name} {}",
                        l.name
                    );
                }
            }
            if arch_name == "lu22_programmable" {
                // DRAM reads at least the weights (and biases) and the network input.
                let dram_reads: u64 = layers.iter().map(|s| s.accesses.dram.total().read).sum();
                let biases: u64 = net
                    .layers
                    .iter()
                    .filter_map(|l| l.epilogue())
                    .map(|e| e.bias.len() as u64)
                    .sum();
                assert!(
                    dram_reads >= net.weight_count() + biases + net.input_shape.len() as u64,
                    "{name}"
                );
            }
            // Every output word written into the GLB to stay is read by the next
            // layer (or is the network output); spilled words are read straight
            // back out to DRAM.
            for (i, s) in layers.iter().enumerate() {
                let out = &s.accesses.glb.by_type.output;
                let spilled = s.accesses.dram.by_type.output.write;
                assert_eq!(out.read, spilled, "{arch_name} {name} layer {i}");
                let resident = out.write - spilled;
                if let Some(next) = layers.get(i + 1)
                    && !matches!(net.layers[i + 1].op, accsim::workload::Op::Flatten)
                {
                    assert!(
                        next.accesses.glb.by_type.input.read >= resident,
                        "{arch_name} {name} layer {i}: {resident} resident output words, {} read",
                        next.accesses.glb.by_type.input.read
                    );
                }
            }
        }
    }
}

#[test]
fn banked_dram_runs_bit_exact_and_counts_rows() {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("arch_configs/lu22_programmable.toml"),
    )
    .unwrap_or_default();
    let a = arch::load_str(
        &text.replace("model = \"simple\"", "model = \"banked\""),
        Path::new("banked.toml"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let w = workload::load("ic_cifar10").unwrap_or_else(|e| panic!("{e}"));
    let r = run(&w, &a, &RunOptions::default()).unwrap_or_else(|e| panic!("{e}"));
    assert!(r.report.bit_exact);
    let d: u64 = r
        .engine
        .layers
        .iter()
        .map(|s| s.dram.row_hits + s.dram.row_misses)
        .sum();
    let activates: u64 = r.engine.layers.iter().map(|s| s.dram.activates).sum();
    assert!(d > 0 && activates > 0);
}

#[test]
fn a_wrong_value_is_reported_with_its_layer_and_position() {
    let w = workload::load("kws_cnn_one_fstride4").unwrap_or_else(|e| panic!("{e}"));
    let a = arch::load("lu22_fixed").unwrap_or_else(|e| panic!("{e}"));
    let mut wrong = w.default_outputs.clone();
    wrong[2][[17, 0, 0]] ^= 1;
    let e = engine::run(&w.network, &a, &w.default_input, Some(&wrong))
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        e.contains("layer `dnn1`")
            && e.contains("[channel 17, row 0, column 0]")
            && e.contains("1 of 128 elements differ"),
        "{e}"
    );
}

#[test]
fn no_check_reports_not_bit_exact() {
    let w = workload::load("kws_cnn_one_fstride4").unwrap_or_else(|e| panic!("{e}"));
    let a = arch::load("lu22_fixed").unwrap_or_else(|e| panic!("{e}"));
    let r = run(
        &w,
        &a,
        &RunOptions {
            check: false,
            ..Default::default()
        },
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(!r.report.bit_exact);
    assert!(r.report.total.measured.is_some());
}

#[test]
fn impossible_hardware_is_refused_with_the_field() {
    let w = workload::load("kws_cnn_one_fstride4").unwrap_or_else(|e| panic!("{e}"));
    let base = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("arch_configs/lu22_programmable.toml"),
    )
    .unwrap_or_default();
    // A scratchpad too small for one channel of two pieces.
    let a = arch::load_str(
        &base.replace(
            "weight_scratchpad_entries = 224",
            "weight_scratchpad_entries = 8",
        ),
        Path::new("small_spad.toml"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let e = run(&w, &a, &RunOptions::default())
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        e.contains("small_spad.toml")
            && e.contains("weight_scratchpad_entries")
            && e.contains("at least 12 entries"),
        "{e}"
    );
    // A GLB too small for one pass of the first layer's input rows.
    let a = arch::load_str(
        &base.replace("capacity_kib = 108", "capacity_kib = 0.05"),
        Path::new("tiny_glb.toml"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let e = run(&w, &a, &RunOptions::default())
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        e.contains("tiny_glb.toml")
            && e.contains("capacity_kib")
            && e.contains("layer `conv1` (#0, conv2d) cannot be scheduled")
            && e.contains("a GLB of at least 10372 bytes"),
        "{e}"
    );
}

/// `lu22_*` with its GLB shrunk to `kib` KiB (one bank).
fn lu22_with_glb(name: &str, kib: u32) -> Arch {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("arch_configs/{name}.toml")),
    )
    .unwrap_or_default();
    let small = text
        .replace("capacity_kib = 108 ", &format!("capacity_kib = {kib} "))
        .replace("banks = 27 ", "banks = 1 ");
    assert_ne!(small, text, "the GLB lines of {name}.toml moved");
    arch::load_str(&small, Path::new("small_glb.toml")).unwrap_or_else(|e| panic!("{e}"))
}

/// A ResNet-style model quantised by ONNX Runtime's `quantize_static`
/// (`scripts/onnx_cases.py`, case `qdq_resnet_fanout_u8`): the graph input
/// (8x32x32 uint8, 8 KiB) feeds a conv and a residual Add, and so does an
/// inner tensor (16x16x16, 4 KiB). Before, a layer reading a tensor that a
/// later layer reads too never moved its prefetcher past the first two
/// passes, and every such run ended in "internal simulator error ... GLB
/// deadlock" (exit 1), whatever the GLB size.
#[test]
fn fan_out_tensors_run_bit_exact_also_when_larger_than_the_glb() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/onnx");
    let model = dir.join("qdq_resnet_fanout_u8.onnx");
    let w = workload::load(model.to_str().unwrap_or_default()).unwrap_or_else(|e| panic!("{e}"));
    let input = dir.join("qdq_resnet_fanout_u8.input.npy");
    let ort =
        match accsim::workload::npy::read_npy_any(&dir.join("qdq_resnet_fanout_u8.output.npy")) {
            Ok(accsim::workload::npy::NpyArray::F32(a)) => {
                a.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
            }
            _ => panic!("the golden is float32 logits"),
        };
    let last = w.network.layers.len() - 1;
    let accsim::numerics::TensorQuant::Affine {
        scale, zero_point, ..
    } = w.network.layers[last].output_quant
    else {
        panic!("an affine output");
    };
    let add = w
        .network
        .layers
        .iter()
        .position(|l| l.name == "n_Add_12")
        .unwrap_or(usize::MAX);
    for (name, kib) in [
        ("lu22_programmable", 108),
        ("lu22_fixed", 108),
        ("lu22_programmable", 4),
        ("lu22_fixed", 3),
    ] {
        let a = lu22_with_glb(name, kib);
        let options = RunOptions {
            input: Some(input.clone()),
            ..RunOptions::default()
        };
        let r = run(&w, &a, &options).unwrap_or_else(|e| panic!("{name}, {kib} KiB GLB: {e}"));
        assert!(r.report.bit_exact, "{name}, {kib} KiB");
        // The engine's logits, dequantised as ONNX Runtime's DequantizeLinear does.
        let got: Vec<u32> = r.engine.outputs[last]
            .iter()
            .map(|&q| ((i32::from(q) - zero_point) as f32 * scale).to_bits())
            .collect();
        assert_eq!(
            got, ort,
            "{name}, {kib} KiB GLB: logits differ from ONNX Runtime"
        );
        // The first conv reads the input from DRAM once: 8 x 32 x 32 words.
        assert_eq!(
            r.engine.layers[0].accesses.dram.by_type.input.read, 8192,
            "{name}, {kib} KiB"
        );
        let add_dram_reads = r.engine.layers[add].accesses.dram.by_type.input.read;
        if kib == 108 {
            // The input stays in the GLB for the Add.
            assert_eq!(add_dram_reads, 0, "{name}");
        } else {
            // It does not fit: the Add reads the rows the conv let go from DRAM.
            assert!(add_dram_reads > 0, "{name}, {kib} KiB");
        }
    }
}

/// The psum RF is bounded: with a 1 B/cycle output bus, conv1 of cae_cnn
/// (128 x 25 x 25 int8 outputs: 80,000 bytes, so at least 80,000 cycles on
/// the bus) is held back by the bus while it computes. Before, each sub-pass
/// checked only that its psums and the previous sub-pass's fitted the RF, so
/// the 24-entry psum RFs silently queued every pass behind the bus and the
/// layer reported compute 14,553, stall 4 and a phantom drain of 65,741
/// cycles after its last MAC. Now the array waits for psum-RF room while it
/// works (stall), and only what the RFs can hold is left to drain after the
/// last MAC: at most 156 PEs x 24 entries x 1 byte = 3,744 bus cycles.
#[test]
fn a_slow_output_bus_stalls_the_array_instead_of_draining_after_it() {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("arch_configs/lu22_fixed.toml"),
    )
    .unwrap_or_default();
    let slow = text.replace(
        "glb_bus_bytes_per_cycle = 8 ",
        "glb_bus_bytes_per_cycle = 1 ",
    );
    assert_ne!(slow, text, "the bus line of lu22_fixed.toml moved");
    let a = arch::load_str(&slow, Path::new("slow_bus.toml")).unwrap_or_else(|e| panic!("{e}"));
    let w = workload::load("cae_cnn").unwrap_or_else(|e| panic!("{e}"));
    let r = engine::run(&w.network, &a, &w.default_input, Some(&w.default_outputs))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(r.checked);
    let c = r.layers[0].cycles;
    let output_bytes = 128 * 25 * 25;
    assert!(c.total >= output_bytes, "{c:?}");
    assert!(c.drain <= 156 * 24 + 100, "{c:?}");
    assert_eq!(c.fill + c.compute + c.stall + c.drain, c.total);
    // The figures the bounded psum RF gives (the total is the bus's, as before).
    assert_eq!(
        (c.total, c.compute, c.stall, c.fill, c.drain),
        (80_372, 14_553, 64_249, 74, 1_496)
    );
    // Every stalled cycle has its cause: the psum RF was full because the
    // output bus had not taken the earlier sub-passes' sums (all 156 PEs
    // are used; conv1 has 128 output channels on 12 columns).
    let p = r.layers[0]
        .pe_cycles
        .unwrap_or_else(|| panic!("no PE-cycles"));
    assert_eq!(p.total(), 156 * c.total);
    assert_eq!(p.psum_space, 156 * c.stall);
    assert_eq!(p.waits().iter().map(|&(_, v)| v).sum::<u64>(), p.psum_space);
    assert_eq!((p.fill, p.drain, p.unused), (156 * 74, 156 * 1_496, 0));
    assert_eq!(p.busy, r.layers[0].pe_busy_cycles);
    assert_eq!(p.busy + p.lockstep, 156 * c.compute);
}

/// The final Softmax of a quantize_static classifier (`[1, 10]` uint8
/// scores after a Gemm, `scripts/onnx_cases.py`) on lu22_fixed's GLB unit
/// (8-byte bank port, divider latency 12), by hand: three passes over the
/// 10 scores (30 GLB reads, 1 byte each), 2 LUT reads per output (20,
/// counted as 32-bit RF weight reads), 10 GLB writes; busy
/// `ceil(20 / 8) + max(ceil(10 / 8), 10) + 12 = 25` cycles; energy
/// `40 x 8/16 x 6` (GLB) `+ 20 x 32/16 x 1` (LUT) `= 160` units.
#[test]
fn a_softmax_on_the_glb_unit_by_hand() {
    use accsim::units::DataType;
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/onnx");
    let model = dir.join("qdq_softmax_cnn_u8_per_channel.onnx");
    let w = workload::load(model.to_str().unwrap_or_default()).unwrap_or_else(|e| panic!("{e}"));
    let a = arch::load("lu22_fixed").unwrap_or_else(|e| panic!("{e}"));
    let options = RunOptions {
        input: Some(dir.join("qdq_softmax_cnn_u8_per_channel.input.npy")),
        ..RunOptions::default()
    };
    let r = run(&w, &a, &options).unwrap_or_else(|e| panic!("{e}"));
    assert!(r.report.bit_exact);
    let last = w.network.layers.len() - 1;
    assert_eq!(w.network.layers[last].op.kind(), "softmax");
    let s = &r.engine.layers[last];
    let glb = &s.accesses.glb.by_type;
    assert_eq!(glb.get(DataType::Input).read, 30);
    assert_eq!(glb.get(DataType::Output).write, 10);
    assert_eq!(s.lut_reads, 20);
    assert_eq!(s.accesses.rf.by_type.get(DataType::Weight).read, 20);
    assert_eq!(s.accesses.dram.by_type.get(DataType::Input).read, 0);
    assert_eq!(s.macs, 0);
    assert_eq!(s.cycles.compute, 25);
    let measured = r.report.layers[last].measured.as_ref().expect("measured");
    assert_eq!(measured.energy.glb, 120.0);
    assert_eq!(measured.energy.rf, 40.0);
    assert_eq!(measured.energy.total, 160.0);
    assert_eq!(r.report.layers[last].values.as_deref(), Some("simulated"));
}

/// The data lives where the hardware keeps it (issue 13 item 2): a row in
/// the GLB is valid from its write's completion until it leaves, and what
/// computes reads the GLB's words at the cycle it reads them. A schedule
/// broken on purpose therefore computes from poison, and the bit-exact
/// check names the first layer it corrupted.
#[test]
fn a_broken_schedule_fails_the_bit_exact_check_naming_the_layer() {
    use accsim::engine::{EngineOptions, Sabotage};
    let w = workload::load("ic_cifar10").unwrap_or_else(|e| panic!("{e}"));
    // A slow DRAM (1 B/cycle, 2000 cycles of latency): rows arrive late.
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("arch_configs/lu22_fixed.toml"),
    )
    .unwrap_or_default()
    .replace(
        "bandwidth_bytes_per_cycle = 4",
        "bandwidth_bytes_per_cycle = 1",
    )
    .replace("latency_cycles = 20 ", "latency_cycles = 2000 ");
    let a = arch::load_str(&text, Path::new("slow_dram.toml")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        (a.dram.bandwidth_bytes_per_cycle, a.dram.latency_cycles),
        (1, 2000)
    );
    let go = |sabotage| {
        let options = EngineOptions {
            sabotage,
            ..EngineOptions::default()
        };
        engine::run_with(
            &w.network,
            &a,
            &w.default_input,
            Some(&w.default_outputs),
            &options,
        )
    };
    assert!(go(None).is_ok_and(|r| r.checked));
    for (sabotage, layer) in [
        // conv1's input starts in DRAM: its later passes read rows still on their way.
        (Sabotage::ReadRowsEarly, "conv1"),
        // conv1's 3x3 windows share rows between passes.
        (Sabotage::FreeRowsEarly, "conv1"),
        // conv1's output leaves the GLB before pool1 reads it.
        (Sabotage::FreeTensorEarly, "pool1"),
    ] {
        let e = go(Some(sabotage))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            e.contains(&format!("layer `{layer}`")) && e.contains("differ"),
            "{sabotage:?}: {e}"
        );
    }
}
