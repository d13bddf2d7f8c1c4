//! Random small networks and machines for the property tests that run the
//! engine (`tests/feasibility.rs`, `tests/cycle_engine.rs`): one or two
//! layers (conv, depthwise, FC, pooling, a fan-out from the input, a
//! residual Add), 8-bit affine or 16-bit at random MAC modes, on random
//! PE arrays, RFs, buses, GLBs, DRAMs and zero-skipping modes.

// Each test file uses its own part of these helpers.
#![allow(dead_code)]

use std::path::Path;

use proptest::prelude::*;

use accsim::arch::{self, Arch};
use accsim::numerics::precision::PrecisionAssignment;
use accsim::reference::precision::PrecisionNetwork;
use accsim::workload::ir::{Add, AddRule, Layer, Op, TensorSource};
use accsim::workload::{self, Activations, Network};

#[derive(Debug, Clone)]
pub struct Machine {
    pub rows: u32,
    pub cols: u32,
    pub input_rf_entries: u32,
    pub psum_rf_entries: u32,
    pub programmable: bool,
    pub scratchpad_entries: u32,
    pub bus_bytes: u32,
    pub link_words: u32,
    pub glb_banks: u32,
    pub glb_bank_bytes: u32,
    pub glb_ports: u32,
    /// A GLB size of its own (32 B to 4 KiB).
    pub glb_bytes: u64,
    /// GLB bytes above the least the network needs (0: barely fitting).
    pub glb_extra_bytes: u64,
    pub banked: bool,
    pub dram_bytes: u32,
    pub dram_latency: u32,
    /// Read-queue entries.
    pub dram_queue: u32,
    /// Write-queue entries: mostly 1, so writers often find it full.
    pub dram_write_queue: u32,
    pub dram_banks: u32,
    pub dram_row_bytes: u32,
    pub dram_burst_bytes: u32,
    /// 0: energy only, 1: off, 2..: energy and cycles (`cycles = n - 1`).
    pub zero_skipping: u32,
}

pub fn arch_of(m: &Machine, glb_bytes: u64) -> Arch {
    let zero = match m.zero_skipping {
        0 => "{ mode = \"energy_only\" }".to_string(),
        1 => "{ mode = \"off\" }".to_string(),
        n => format!("{{ mode = \"energy_and_cycles\", cycles = {} }}", n - 1),
    };
    let text = format!(
        r#"
[arch]
name = "random"
description = "proptest machine"
clock_mhz = 100
[pe_array]
rows = {}
cols = {}
input_rf_entries = {}
psum_rf_entries = {}
weight_store = "{}"
weight_scratchpad_entries = {}
[interconnect]
glb_bus_bytes_per_cycle = {}
neighbor_words_per_cycle = {}
[glb]
capacity_kib = {}
banks = {}
bank_width_bytes = {}
ports_per_bank = {}
[dram]
model = "{}"
bandwidth_bytes_per_cycle = {}
latency_cycles = {}
read_queue_entries = {}
write_queue_entries = {}
[dram.banked]
banks = {}
row_bytes = {}
burst_bytes = {}
t_rcd_cycles = 3
t_rp_cycles = 2
t_cas_cycles = 4
[mac]
zero_skipping = {zero}
"#,
        m.rows,
        m.cols,
        m.input_rf_entries,
        m.psum_rf_entries,
        if m.programmable {
            "programmable"
        } else {
            "fixed"
        },
        m.scratchpad_entries,
        m.bus_bytes,
        m.link_words,
        glb_bytes as f64 / 1024.0,
        m.glb_banks,
        m.glb_bank_bytes,
        m.glb_ports,
        if m.banked { "banked" } else { "simple" },
        m.dram_bytes,
        m.dram_latency,
        m.dram_queue,
        m.dram_write_queue,
        m.dram_banks,
        m.dram_row_bytes,
        m.dram_burst_bytes,
    );
    arch::load_str(&text, Path::new("random_arch.toml")).unwrap_or_else(|e| panic!("{e}"))
}

pub fn machine_strategy() -> impl Strategy<Value = Machine> {
    let array = (
        1u32..=16,
        1u32..=16,
        2u32..=12,
        1u32..=24,
        any::<bool>(),
        12u32..=224,
        1u32..=32,
        1u32..=4,
    );
    let glb = (
        1u32..=4,
        prop_oneof![Just(1u32), Just(2), Just(4), Just(8)],
        1u32..=2,
    );
    let extra = (
        32u64..=4096,
        prop_oneof![Just(0u64), 1u64..=64, 64u64..=4096, Just(1 << 20)],
    );
    // Slow channels and 1-entry write queues half the time, so that writers
    // (evictions, spilled output rows) often find the write queue full.
    let dram = (
        any::<bool>(),
        prop_oneof![1u32..=2, 1u32..=16],
        1u32..=30,
        1u32..=8,
        prop_oneof![Just(1u32), 1u32..=8],
        1u32..=8,
        prop_oneof![Just(64u32), Just(256), Just(2048)],
        prop_oneof![Just(8u32), Just(16), Just(32)],
        0u32..=4,
    );
    (array, glb, extra, dram).prop_map(
        |(
            (rows, cols, input_rf, psum_rf, programmable, scratchpad, bus, link),
            (banks, bank_bytes, ports),
            (glb_bytes, extra),
            (banked, dram_bytes, latency, queue, write_queue, dram_banks, row_bytes, burst, zero),
        )| Machine {
            rows,
            cols,
            input_rf_entries: input_rf,
            psum_rf_entries: psum_rf,
            programmable,
            scratchpad_entries: scratchpad,
            bus_bytes: bus,
            link_words: link,
            glb_banks: banks,
            glb_bank_bytes: bank_bytes,
            glb_ports: ports,
            glb_bytes,
            glb_extra_bytes: extra,
            banked,
            dram_bytes,
            dram_latency: latency,
            dram_queue: queue,
            dram_write_queue: write_queue,
            dram_banks,
            dram_row_bytes: row_bytes,
            dram_burst_bytes: burst,
            zero_skipping: zero,
        },
    )
}

/// One layer as workload TOML.
pub fn layer_strategy(name: &'static str, min_hw: usize) -> BoxedStrategy<String> {
    let k = 1..=min_hw.clamp(1, 3);
    prop_oneof![
        3 => (k.clone(), 1usize..=2, 0usize..=1, 1usize..=12).prop_map(move |(k, s, p, o)| format!(
            "name = \"{name}\"\nop = \"conv2d\"\nout_channels = {o}\nkernel = {k}\nstride = {s}\npadding = {p}"
        )),
        1 => (k.clone(), 1usize..=2, 0usize..=1).prop_map(move |(k, s, p)| format!(
            "name = \"{name}\"\nop = \"depthwise_conv2d\"\nkernel = {k}\nstride = {s}\npadding = {p}"
        )),
        1 => (1usize..=16).prop_map(move |o| format!("name = \"{name}\"\nop = \"fc\"\nout_features = {o}")),
        1 => (k.clone(), 1usize..=2, any::<bool>(), any::<bool>()).prop_map(move |(k, s, pad, max)| format!(
            "name = \"{name}\"\nop = \"{}\"\nkernel = {k}\nstride = {s}\npadding = {}",
            if max { "max_pool" } else { "avg_pool" },
            if pad { k / 2 } else { 0 }
        )),
        1 => Just(format!("name = \"{name}\"\nop = \"global_avg_pool\"")),
    ]
    .boxed()
}

#[derive(Debug, Clone)]
pub struct Case {
    pub shape: [usize; 3],
    /// 16-bit dynamic fixed point at a random precision (else 8-bit affine).
    pub precision: Option<String>,
    pub first: String,
    /// A second layer, reading the first's output or (a fan-out) the input.
    pub second: Option<(String, bool)>,
    /// Append `first + input` (the first layer is then a same-shape conv).
    pub add: bool,
    pub machine: Machine,
}

pub fn mode() -> impl Strategy<Value = &'static str> {
    prop_oneof![Just("16x16"), Just("16x8"), Just("8x16"), Just("8x8")]
}

/// Random cases; `with_precision`: some at 16 bits at random MAC modes.
pub fn case_strategy(with_precision: bool) -> impl Strategy<Value = Case> {
    (1usize..=6, 1usize..=9, 1usize..=9)
        .prop_flat_map(move |(c, h, w)| {
            let min_hw = h.min(w);
            (
                Just([c, h, w]),
                if with_precision {
                    proptest::option::of((mode(), mode(), any::<bool>())).boxed()
                } else {
                    Just(None).boxed()
                },
                layer_strategy("a", min_hw),
                proptest::option::of((layer_strategy("b", min_hw), any::<bool>())),
                prop::bool::weighted(0.15),
                machine_strategy(),
            )
        })
        .prop_map(|(shape, modes, first, second, add, machine)| {
            let precision = modes.map(|(m1, m2, out8)| {
                format!("{m1},{m2}/{}", if out8 { 8 } else { 16 })
            });
            let first = if add {
                format!(
                    "name = \"a\"\nop = \"conv2d\"\nout_channels = {}\nkernel = 3\npadding = \"same\"",
                    shape[0]
                )
            } else {
                first
            };
            Case {
                shape,
                precision,
                first,
                second: if add { None } else { second },
                add,
                machine,
            }
        })
}

/// The network, its input, the precision to run at and the reference
/// outputs; None when the random layers do not make a network.
pub fn network_of(
    case: &Case,
) -> Option<(
    Network,
    Activations,
    Option<PrecisionAssignment>,
    Vec<Activations>,
)> {
    let [c, h, w] = case.shape;
    let numerics = if case.precision.is_some() {
        "[numerics]\nmode = \"dynamic_fixed_point\"\n[input]\nfrac_len = 8\n".to_string()
    } else {
        "[numerics]\nmode = \"affine\"\n[input]\nscale = 0.02\nzero_point = 3\n".to_string()
    };
    let mut text = format!(
        "[network]\nname = \"random\"\ndescription = \"proptest\"\nseed = 5\n{numerics}shape = [{c}, {h}, {w}]\n[[layer]]\n{}\n",
        case.first
    );
    if let Some((second, from_input)) = &case.second {
        text.push_str(&format!("[[layer]]\n{second}\n"));
        if *from_input {
            text.push_str("input = \"input\"\n");
        }
    }
    let loaded = workload::load_str(&text, Path::new("random.toml"), None).ok()?;
    let mut net = loaded.network;
    let input = loaded.default_input;
    if case.add {
        let a = net.layers[0].clone();
        if a.output_shape != net.input_shape || case.precision.is_some() {
            return None;
        }
        net.layers.push(Layer {
            name: "sum".to_string(),
            inputs: vec![TensorSource::Input, TensorSource::Layer(0)],
            input_shape: net.input_shape,
            input_quant: net.input_quant,
            output_shape: net.input_shape,
            output_quant: a.output_quant,
            op: Op::Add(Add {
                rule: AddRule::QLinearAdd,
                input_quants: [net.input_quant, a.output_quant],
            }),
        });
    }
    match &case.precision {
        None => {
            let reference = accsim::reference::run(&net, input.clone()).into_parts().1;
            Some((net, input, None, reference))
        }
        Some(spec) => {
            let weighted = accsim::reference::precision::weighted_layers(&net).len();
            let spec = match weighted {
                0 => return None,
                1 => format!(
                    "{}/{}",
                    &spec[..spec.find(',')?],
                    &spec[spec.find('/')? + 1..]
                ),
                _ => spec.clone(),
            };
            let assignment = PrecisionAssignment::from_spec(&spec, weighted).ok()?;
            let reference = PrecisionNetwork::new(&net, &assignment)
                .ok()?
                .run(input.clone())
                .into_parts()
                .1;
            Some((net, input, Some(assignment), reference))
        }
    }
}

/// A 2x2 array with 6 input-RF and 4 psum-RF entries, fixed weights, an
/// 8 B/cycle bus, two 4-byte GLB banks and a simple 4 B/cycle DRAM.
pub fn tiny_machine(glb_bytes: u64) -> Arch {
    arch_of(&tiny_machine_spec(glb_bytes), glb_bytes)
}

/// [`tiny_machine`]'s parameters.
fn tiny_machine_spec(glb_bytes: u64) -> Machine {
    Machine {
        rows: 2,
        cols: 2,
        input_rf_entries: 6,
        psum_rf_entries: 4,
        programmable: false,
        scratchpad_entries: 224,
        bus_bytes: 8,
        link_words: 1,
        glb_banks: 2,
        glb_bank_bytes: 4,
        glb_ports: 1,
        glb_bytes,
        glb_extra_bytes: 0,
        banked: false,
        dram_bytes: 4,
        dram_latency: 10,
        dram_queue: 16,
        dram_write_queue: 16,
        dram_banks: 8,
        dram_row_bytes: 2048,
        dram_burst_bytes: 32,
        zero_skipping: 0,
    }
}

/// A 2x2 programmable array: input RF 6 (pieces of 3), psum RF 4, an
/// 8-entry scratchpad (one output channel per sub-pass: 8 / (3 x 2) = 1),
/// an 8 B/cycle bus, four 8-byte GLB banks of `glb_bytes` in all and a
/// simple 4 B/cycle DRAM (tests/schedule.rs, tests/traces.rs).
pub fn small_programmable(glb_bytes: u64) -> Arch {
    let m = Machine {
        programmable: true,
        scratchpad_entries: 8,
        glb_banks: 4,
        glb_bank_bytes: 8,
        ..tiny_machine_spec(glb_bytes)
    };
    arch_of(&m, glb_bytes)
}
