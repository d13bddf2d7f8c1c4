//! `accsim check`: validate a workload or architecture file.

use anyhow::Result;
use clap::Args;
use comfy_table::{CellAlignment, ContentArrangement, Table, presets};

use accsim::InputError;
use accsim::numerics::TensorQuant;
use accsim::report::thousands;
use accsim::workload::ir::Op;

#[derive(Args)]
pub struct CheckArgs {
    /// A workload (`NAME_OR_FILE[:VARIANT]`) or architecture file.
    file: String,
    /// With a workload: the architecture to check its schedule on, as
    /// `accsim run` would run it (a path or a shipped name) [default: lu22_fixed].
    #[arg(long, value_name = "FILE")]
    arch: Option<String>,
    /// With a workload: list each array layer's schedule space on the
    /// architecture (loop order x weight tiles x input reuse), its size,
    /// and the GLB bytes each point holds (docs/mapping.md, "The schedule space").
    #[arg(long)]
    schedules: bool,
}

enum Kind {
    Workload,
    Arch,
}

/// Decides by the file's top-level tables: `[network]` or `[arch]`.
fn kind_of(spec: &str) -> Result<(Kind, String)> {
    let (name, _) = accsim::workload::split_variant(spec);
    let path = accsim::workload::resolve(name)
        .or_else(|_| accsim::home::resolve(name, "arch_configs", "check"))?;
    // ONNX models and SCALE-Sim topologies are workloads (and not TOML text).
    if path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("onnx") || e.eq_ignore_ascii_case("csv"))
    {
        return Ok((Kind::Workload, spec.to_string()));
    }
    let text = std::fs::read_to_string(&path)
        .map_err(|e| InputError::new(&path, format!("cannot read: {e}")))?;
    let table = text.parse::<toml::Table>().ok();
    let has = |k: &str| table.as_ref().is_some_and(|t| t.contains_key(k));
    if has("arch") {
        Ok((Kind::Arch, path.display().to_string()))
    } else if has("network") || table.is_none() {
        // Invalid TOML goes to the workload loader, which reports where.
        Ok((Kind::Workload, spec.to_string()))
    } else {
        Err(InputError::new(&path, "neither a workload (needs a [network] table) nor an architecture (needs an [arch] table)").into())
    }
}

fn quant(q: &TensorQuant) -> String {
    match q {
        q if *q == accsim::workload::ir::FLOAT32_WORDS => "float32 (2 int16 words)".to_string(),
        q if *q == accsim::workload::ir::DYNAMIC_UINT8 => {
            "uint8, scale and zero point at run time".to_string()
        }
        TensorQuant::Affine {
            dtype,
            scale,
            zero_point,
        } => format!("{} s={scale:.4e} z={zero_point}", dtype.numpy_name()),
        TensorQuant::Fixed { bits, frac_len } => format!("Q{bits}.{frac_len}"),
    }
}

pub fn execute(args: &CheckArgs) -> Result<()> {
    match kind_of(&args.file)? {
        (Kind::Arch, _) if args.arch.is_some() => Err(InputError::new(
            "--arch",
            format!(
                "`{}` is an architecture; valid: --arch only when checking a workload",
                args.file
            ),
        )
        .into()),
        (Kind::Arch, path) => describe_arch(&path),
        (Kind::Workload, spec) => describe_workload(args, &spec),
    }
}

/// `accsim check ARCH`: the architecture's parameters, part by part.
fn describe_arch(path: &str) -> Result<()> {
    let arch = accsim::arch::load_file(std::path::Path::new(&path))?;
    outln!(
        "{path}: valid architecture `{}`: {}",
        arch.name,
        arch.description
    )?;
    if let Some(f) = &arch.ffe {
        describe_ffe(&arch, f)?;
    }
    if let accsim::arch::Backend::Nvdla(n) = &arch.backend {
        return describe_nvdla(n);
    }
    describe_pe_array(&arch)
}

/// The FFE front-end and the system's frame stream.
fn describe_ffe(arch: &accsim::arch::Arch, f: &accsim::arch::FfeConfig) -> Result<()> {
    outln!(
        "  FFE: {} fixed layers at {} MHz, {} digits, {} accumulators, datapath latency {} cycles; area/bit adder {} register {} SRAM {} um^2",
        f.fixed_layers,
        f.clock_mhz,
        f.digits.name(),
        match f.accumulator {
            accsim::arch::AccumulatorWidth::Derived => "derived",
            accsim::arch::AccumulatorWidth::Fixed => "fixed",
        },
        f.datapath_latency_cycles,
        f.area.adder_um2_per_bit,
        f.area.register_um2_per_bit,
        f.area.sram_um2_per_bit
    )?;
    outln!(
        "  system: stream of {} frames, buffer for up to {} tapped frame(s)",
        arch.system.stream_frames,
        arch.system.buffer_frames
    )?;
    Ok(())
}

/// A table-driven NVDLA back-end.
fn describe_nvdla(n: &accsim::arch::NvdlaConfig) -> Result<()> {
    outln!(
        "  back-end: NVDLA {:?} (table-driven): {} MACs ({} x {} atoms), {} KB buffer, {} mm^2, {} TOPS peak at {:.1} MHz, {} TOPS/W, utilisation model {}",
        n.name,
        n.macs,
        n.atomic_c,
        n.atomic_k,
        n.buffer_kib,
        n.area_mm2,
        n.tops,
        n.clock_mhz,
        n.tops_per_w,
        match n.utilisation {
            accsim::arch::NvdlaUtilisation::Atomic => "atomic",
            accsim::arch::NvdlaUtilisation::Peak => "peak",
        }
    )?;
    Ok(())
}

/// The PE-array back-end: clock, array, MAC, GLB, DRAM, energy and area.
fn describe_pe_array(arch: &accsim::arch::Arch) -> Result<()> {
    let p = &arch.pe_array;
    outln!(
        "  clock {} MHz; PE array {}x{} ({} PEs), RF {}+{} entries, weights {} (scratchpad {} entries)",
        arch.clock_mhz,
        p.rows,
        p.cols,
        p.rows * p.cols,
        p.input_rf_entries,
        p.psum_rf_entries,
        p.weight_store.name(),
        p.weight_scratchpad_entries,
    )?;
    let mac = &arch.mac;
    let modes: Vec<String> = accsim::numerics::mac::MacMode::ALL
        .iter()
        .map(|&m| {
            format!(
                "{m} {} cycle(s) {:.3} pJ",
                mac.mac_cycles(m),
                mac.mac_energy_pj(m)
            )
        })
        .collect();
    let float32 = accsim::arch::MacDatapath::Float32;
    outln!(
        "  MAC: {}, float32 mode {} cycle(s) {:.3} pJ; zero operand {:.4} pJ (zero_skipping {})",
        modes.join(", "),
        mac.datapath_cycles(float32),
        mac.datapath_energy_pj(float32),
        mac.zero_mac_energy_pj(accsim::numerics::mac::MacMode::HALF),
        match mac.zero_skipping {
            accsim::arch::ZeroSkipping::Off => "off".to_string(),
            accsim::arch::ZeroSkipping::EnergyOnly => "energy_only".to_string(),
            accsim::arch::ZeroSkipping::EnergyAndCycles { cycles } =>
                format!("energy_and_cycles, {cycles} cycle(s)"),
        }
    )?;
    outln!(
        "  GLB {} bytes in {} banks of {} B/cycle x {} port(s); bus {} B/cycle; neighbour links {} word(s)/cycle",
        thousands(arch.glb.capacity_bytes),
        arch.glb.banks,
        arch.glb.bank_width_bytes,
        arch.glb.ports_per_bank,
        arch.interconnect.glb_bus_bytes_per_cycle,
        arch.interconnect.neighbor_words_per_cycle
    )?;
    outln!(
        "  DRAM model {}: {} B/cycle, latency {} cycles; energy per 16-bit access or MAC (normalised, MAC = 1): DRAM {}, GLB {}, array {}, RF {}, MAC {}, LUT {}; 1 unit = {} pJ",
        match arch.dram.model {
            accsim::arch::DramModel::Simple => "simple",
            accsim::arch::DramModel::Banked => "banked",
        },
        arch.dram.bandwidth_bytes_per_cycle,
        arch.dram.latency_cycles,
        arch.energy.dram,
        arch.energy.glb,
        arch.energy.array,
        arch.energy.rf,
        arch.energy.mac,
        arch.energy.lut,
        arch.energy.pj_per_unit
    )?;
    outln!(
        "  area model: {:.3} mm^2 at {} nm",
        accsim::cost::area::pe_array_mm2(arch),
        arch.area.technology_nm
    )?;
    Ok(())
}

/// `accsim check WORKLOAD`: the network, a table of its layers, and its
/// schedule on `--arch` (lu22_fixed by default).
fn describe_workload(args: &CheckArgs, spec: &str) -> Result<()> {
    let w = accsim::workload::load(spec)?;
    let net = &w.network;
    outln!(
        "{}: valid workload `{}`{}: {}",
        w.path.display(),
        net.name,
        net.variant
            .as_deref()
            .map(|v| format!(" (variant {v})"))
            .unwrap_or_default(),
        net.description
    )?;
    outln!(
        "  numerics {}; input {} {}",
        accsim::run::numerics_name(&net.numerics),
        net.input_shape,
        quant(&net.input_quant)
    )?;
    outln!("{}", layer_table(net))?;
    let arch = accsim::arch::load(args.arch.as_deref().unwrap_or("lu22_fixed"))?;
    if args.schedules {
        schedule_spaces(net, &arch)?;
    }
    schedule(net, &arch)?;
    Ok(())
}

/// The layers of `net`, one row each, and a total row.
fn layer_table(net: &accsim::workload::Network) -> Table {
    let mut table = Table::new();
    table
        .load_style(presets::ASCII_MARKDOWN)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(vec![
            "#",
            "layer",
            "op",
            "input [CxHxW]",
            "output [CxHxW]",
            "kernel s=stride p=pad(t,l,b,r) g=groups",
            "weights [values]",
            "MACs",
            "output quant",
        ]);
    for (i, l) in net.layers.iter().enumerate() {
        let geometry = geometry(&l.op);
        table.add_row(vec![
            i.to_string(),
            l.name.clone(),
            l.op.kind().to_string(),
            l.input_shape.to_string(),
            l.output_shape.to_string(),
            geometry,
            thousands(l.weight_count()),
            thousands(l.macs()),
            quant(&l.output_quant),
        ]);
    }
    table.add_row(vec![
        String::new(),
        "total".into(),
        String::new(),
        String::new(),
        String::new(),
        String::new(),
        thousands(net.weight_count()),
        thousands(net.macs()),
        String::new(),
    ]);
    for i in [0, 6, 7] {
        if let Some(c) = table.column_mut(i) {
            c.set_cell_alignment(CellAlignment::Right);
        }
    }
    table
}

/// A layer's window: kernel, stride, padding and groups (or nothing).
fn geometry(op: &Op) -> String {
    match op {
        Op::Conv2d(c) => format!(
            "{}x{} s{}x{} p{},{},{},{} g{}",
            c.kernel[0],
            c.kernel[1],
            c.stride[0],
            c.stride[1],
            c.padding.top,
            c.padding.left,
            c.padding.bottom,
            c.padding.right,
            c.groups
        ),
        Op::MaxPool(p) | Op::AvgPool(p) => format!(
            "{}x{} s{}x{} p{},{},{},{}{}",
            p.kernel[0],
            p.kernel[1],
            p.stride[0],
            p.stride[1],
            p.padding.top,
            p.padding.left,
            p.padding.bottom,
            p.padding.right,
            if p.ceil_mode { " ceil" } else { "" }
        ),
        _ => String::new(),
    }
}

/// Lists the schedule space of every array layer of `net` on `arch`: one
/// line per layer with its size and how many points fit the GLB, then the
/// points, `label bytes` (`!` marks one that does not fit).
fn schedule_spaces(net: &accsim::workload::Network, arch: &accsim::arch::Arch) -> Result<()> {
    let room = accsim::engine::feasibility::check(net, arch)?.room_bytes;
    for space in accsim::engine::feasibility::spaces(net, arch)? {
        let fit = space.candidates.iter().filter(|c| c.bytes <= room).count();
        outln!(
            "schedules of layer `{}` (#{}): {} points, {} fit the {} bytes of GLB",
            space.name,
            space.layer,
            space.candidates.len(),
            fit,
            thousands(room)
        )?;
        let points: Vec<String> = space
            .candidates
            .iter()
            .map(|c| {
                let mark = if c.bytes <= room { "" } else { "!" };
                format!("{}{mark} {}", c.choice.label(), thousands(c.bytes))
            })
            .collect();
        for chunk in points.chunks(4) {
            outln!("  {}", chunk.join(", "))?;
        }
    }
    Ok(())
}

/// Checks that every layer of `net` can be scheduled on `arch` (the GLB
/// holds what it needs at once): prints the largest need, or every
/// refusal and fails with the first.
fn schedule(net: &accsim::workload::Network, arch: &accsim::arch::Arch) -> Result<()> {
    let s = accsim::engine::feasibility::check(net, arch)?;
    let Some(largest) = s.needs.iter().max_by_key(|n| n.bytes()) else {
        outln!(
            "schedule on `{}`: no layer runs on the PE array (a table-driven back-end)",
            arch.name
        )?;
        return Ok(());
    };
    let Some(first) = s.refusals.first() else {
        outln!(
            "schedule on `{}`: every layer fits the {} bytes of GLB it may use; the largest need is layer `{}` (#{}), {} bytes",
            arch.name,
            thousands(s.room_bytes),
            largest.name,
            largest.layer,
            thousands(largest.bytes())
        )?;
        return Ok(());
    };
    outln!(
        "schedule on `{}`: {} of {} layers cannot be scheduled:",
        arch.name,
        s.refusals.len(),
        s.needs.len()
    )?;
    for r in &s.refusals {
        outln!("  {}", r.message)?;
    }
    let mut e = first.clone();
    if s.refusals.len() > 1 {
        let more = s.refusals.len() - 1;
        let layers = if more == 1 { "layer" } else { "layers" };
        e.message
            .push_str(&format!(" ({more} more {layers} listed above)"));
    }
    Err(e.into())
}
