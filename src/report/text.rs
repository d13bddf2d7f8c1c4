//! The per-layer table printed on stdout.

use comfy_table::{CellAlignment, ContentArrangement, Table, presets};

use super::{LayerReport, Measured, Report, Throughput, TotalReport, thousands};

fn percent(part: u64, whole: u64) -> String {
    if whole == 0 {
        "-".to_string()
    } else {
        format!("{:.1}%", 100.0 * part as f64 / whole as f64)
    }
}

fn shape(s: [usize; 3]) -> String {
    format!("{}x{}x{}", s[0], s[1], s[2])
}

/// The energy column's heading: normalised energy, in units of one 16-bit
/// MAC's energy (docs/report.md).
const ENERGY_COLUMN: &str = "energy [16b-MACs]";

/// A count in engineering form: `1.23M`.
fn short(n: f64) -> String {
    match n {
        x if x >= 1e9 => format!("{:.2}G", x / 1e9),
        x if x >= 1e6 => format!("{:.2}M", x / 1e6),
        x if x >= 1e4 => format!("{:.1}k", x / 1e3),
        x => format!("{x:.0}"),
    }
}

fn measured_cells(m: Option<&Measured>) -> Vec<String> {
    match m {
        None => vec![String::new(); 9],
        Some(m) => vec![
            thousands(m.cycles),
            percent(m.cycle_split.stall, m.cycles),
            main_wait(m),
            format!("{:.1}%", 100.0 * m.utilisation),
            short(m.accesses.dram.total() as f64),
            short(m.accesses.glb.total() as f64),
            short(m.accesses.array.total() as f64),
            short(m.accesses.rf.total() as f64),
            short(m.energy.total),
        ],
    }
}

/// Which optional column groups the table has.
struct Columns {
    /// Any layer has a precision assignment.
    precision: bool,
    /// An FFE system: engine, TOPS and TOPS/W per layer.
    system: bool,
    /// The run was simulated: cycles, accesses and energy.
    measured: bool,
}

impl Columns {
    fn of(report: &Report) -> Self {
        Columns {
            precision: report.layers.iter().any(|l| l.precision.is_some()),
            system: report.system.is_some(),
            measured: report.total.measured.is_some(),
        }
    }

    fn header(&self) -> Vec<&'static str> {
        let mut header = vec!["#", "layer", "op", "output [CxHxW]", "MACs", "zero-op [%]"];
        if self.precision {
            header.push("prec [in x w bits]");
        }
        if self.system {
            header.extend(["engine", "TOPS", "TOPS/W"]);
        }
        if self.measured {
            header.extend([
                if self.system {
                    "cycles [engine clock]"
                } else {
                    "cycles"
                },
                "stall [%]",
                "main wait [% PE-cycles]",
                "util [%]",
                "DRAM [words]",
                "GLB [words]",
                "array [words]",
                "RF [words]",
                ENERGY_COLUMN,
            ]);
        }
        header.push("output crc32");
        header
    }

    fn layer_row(&self, l: &LayerReport) -> Vec<String> {
        let mut row = vec![
            l.index.to_string(),
            l.name.clone(),
            l.op.clone(),
            shape(l.output_shape),
            thousands(l.macs),
            percent(l.zero_macs, l.macs),
        ];
        if self.precision {
            row.push(l.precision.clone().unwrap_or_default());
        }
        if self.system {
            row.push(l.engine.clone().unwrap_or_default());
            row.push(
                l.tops
                    .map_or_else(|| "-".to_string(), |t| format!("{t:.4}")),
            );
            row.push(
                l.tops_per_w
                    .map_or_else(|| "-".to_string(), |t| format!("{t:.1}")),
            );
        }
        if self.measured {
            row.extend(measured_cells(l.measured.as_ref()));
        }
        row.push(l.output_crc32.clone());
        row
    }

    fn total_row(&self, t: &TotalReport) -> Vec<String> {
        let mut row = vec![
            String::new(),
            t.name.clone(),
            String::new(),
            String::new(),
            thousands(t.macs),
            percent(t.zero_macs, t.macs),
        ];
        if self.precision {
            row.push(String::new());
        }
        if self.system {
            row.extend([String::new(), String::new(), String::new()]);
        }
        if self.measured {
            row.extend(measured_cells(t.measured.as_ref()));
        }
        row.push(String::new());
        row
    }
}

/// The layer table: one row per layer and a total row; numbers right-aligned.
fn layer_table(report: &Report) -> Table {
    let columns = Columns::of(report);
    let header = columns.header();
    let mut table = Table::new();
    table
        .load_style(presets::ASCII_MARKDOWN)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(header.clone());
    for l in &report.layers {
        table.add_row(columns.layer_row(l));
    }
    table.add_row(columns.total_row(&report.total));
    for (i, name) in header.iter().enumerate() {
        if !matches!(
            *name,
            "layer" | "op" | "output [CxHxW]" | "output crc32" | "engine"
        ) && let Some(c) = table.column_mut(i)
        {
            c.set_cell_alignment(CellAlignment::Right);
        }
    }
    table
}

/// Renders the report as a summary line, a table and a totals line.
pub fn render(report: &Report) -> String {
    let table = layer_table(report);
    let t = &report.total;
    let variant = report
        .workload
        .variant
        .as_deref()
        .map(|v| format!(":{v}"))
        .unwrap_or_default();
    let assignment = report
        .precision
        .as_deref()
        .map(|p| format!(", precision {p}"))
        .unwrap_or_default();
    let mut out = format!(
        "workload {}{variant} ({}, input {}), arch {}, engine {}{assignment}\n{table}\n",
        report.workload.name,
        report.workload.numerics,
        report.workload.input,
        report.arch.name,
        report.engine
    );
    if let (Some(th), Some(m)) = (&report.throughput, &t.measured) {
        out.push_str(&totals_line(report, th, m));
    }
    if let Some(c) = t.measured.as_ref().and_then(|m| m.pe_cycles) {
        out.push_str(&pe_cycles_line(&c));
    }
    out.push_str(&float32_line(report));
    out.push_str(&super::schedule_text::lines(report));
    if let Some(s) = &report.system {
        out.push_str(&system_lines(report, s));
    }
    out
}

/// The totals line: time, throughput, energy, accesses and the bit-exact
/// summary.
fn totals_line(report: &Report, th: &Throughput, m: &Measured) -> String {
    format!(
        "{} cycles at {} MHz = {:.3} ms ({:.1} inferences/s, {:.4} TOPS, {:.3} TOPS/W); energy {} 16-bit-MAC units ({}) = {:.2} uJ; accesses (words) DRAM {}, GLB {}, array {}, RF {}; bit-exact: {}\n",
        thousands(th.cycles),
        th.clock_mhz,
        th.seconds * 1e3,
        th.inferences_per_s,
        th.tops,
        th.tops_per_w,
        short(m.energy.total),
        energy_parts(&m.energy, m.memory_energy),
        m.energy_pj.total * 1e-6,
        thousands(m.accesses.dram.total()),
        thousands(m.accesses.glb.total()),
        thousands(m.accesses.array.total()),
        thousands(m.accesses.rf.total()),
        bit_exact_summary(report)
    )
}

/// The wait that cost a layer the most PE-cycles, with its share.
fn main_wait(m: &Measured) -> String {
    match m
        .pe_cycles
        .and_then(|c| c.main_wait().map(|w| (w, c.total())))
    {
        Some(((name, v), total)) => format!("{name} {}", percent(v, total)),
        None if m.pe_cycles.is_some() => "-".to_string(),
        None => String::new(),
    }
}

/// The run's PE-cycles by cause, every non-zero cause with its share.
fn pe_cycles_line(c: &crate::engine::PeCycles) -> String {
    let total = c.total();
    let parts: Vec<String> = c
        .named()
        .iter()
        .filter(|&&(_, v)| v > 0)
        .map(|&(name, v)| format!("{name} {}", percent(v, total)))
        .collect();
    format!(
        "PE-cycles by cause ({} = PEs x cycles): {}\n",
        thousands(total),
        parts.join(", ")
    )
}

/// Names the layers that ran on the PEs' float32 mode, which SPEC's MAC does
/// not have (empty when none did).
fn float32_line(report: &Report) -> String {
    let names: Vec<&str> = report
        .layers
        .iter()
        .filter(|l| l.precision.as_deref() == Some("float32"))
        .map(|l| l.name.as_str())
        .collect();
    if names.is_empty() {
        return String::new();
    }
    format!(
        "float32 MACs: {} layer(s) ({}) ran on the PEs' float32 mode, not a mode of SPEC's integer MAC: ONNX Runtime computes them in float32; priced per multiply-add by [mac] float32_cycles and float32_energy_pj (docs/onnx.md, item 6)\n",
        names.len(),
        names.join(", ")
    )
}

/// The summary's bit-exact verdict, counting only simulated layers.
fn bit_exact_summary(report: &Report) -> String {
    let (simulated, from_reference) = (report.simulated_layers, report.reference_layers);
    match (report.bit_exact, from_reference) {
        (false, 0) => "not checked".to_string(),
        (false, n) => format!(
            "not checked ({n} of {} layers not simulated: values from the reference executor)",
            simulated + n
        ),
        (true, 0) => format!("yes (all {simulated} layers simulated and matched the reference)"),
        (true, n) => format!(
            "yes for the {simulated} simulated layers; {n} layers not simulated (values from the reference executor)"
        ),
    }
}

/// The parts that sum to the total: memory and MAC, and the NVDLA table's
/// unsplit energy when layers ran on it.
fn energy_parts(e: &crate::cost::energy::Energy, memory: f64) -> String {
    let mut parts = format!("memory {}, MAC {}", short(memory), short(e.mac));
    if e.nvdla_table > 0.0 {
        parts.push_str(&format!(
            ", NVDLA table {} (power x time, not split)",
            short(e.nvdla_table)
        ));
    }
    parts
}

/// The FFE's energy parts in uJ, which add up to `total_pj`: its stages'
/// datapath, line buffers, registers and leakage, and the tap stage's
/// writes of the tapped tensor into the back-end's buffer (and DRAM).
fn ffe_energy_parts(e: &crate::cost::ffe::FfeEnergy, total_pj: f64) -> String {
    format!(
        "adder trees {:.3}, BN {:.3}, line buffers {:.3}, registers {:.3}, leakage {:.3}, hand-off writes {:.3}",
        e.adders_pj * 1e-6,
        e.bn_pj * 1e-6,
        e.line_buffer_pj * 1e-6,
        e.registers_pj * 1e-6,
        e.leakage_pj * 1e-6,
        (total_pj - e.total_pj) * 1e-6
    )
}

fn micro(seconds: f64) -> String {
    format!("{:.1} us", seconds * 1e6)
}

/// The FFE, back-end and system summary.
fn system_lines(report: &Report, s: &super::SystemReport) -> String {
    let mut out = String::new();
    let f = &s.frame;
    if let Some(ffe) = &s.ffe {
        let a = &ffe.area;
        out.push_str(&format!(
            "FFE: {} fixed layers ({} stages), tap after layer {} ({} stages running), {} MHz, {} digits, {} accumulators: frame {} cycles ({}), clock enabled {}; area {:.3} mm^2 (adder trees {:.3}, BN {:.3}, line buffers {:.3}, registers {:.3}; DeepFreeze estimate {:.3} for {} non-zero weights); energy {:.3} uJ/frame ({})\n",
            ffe.fixed_layers,
            ffe.hardware_layers,
            ffe.tap,
            ffe.running_layers,
            ffe.clock_mhz,
            ffe.digits,
            ffe.accumulator,
            thousands(ffe.frame_cycles),
            micro(ffe.frame_cycles as f64 / (ffe.clock_mhz * 1e6)),
            percent(ffe.busy_cycles, ffe.frame_cycles),
            ffe.area_mm2,
            a.adders_mm2,
            a.bn_mm2,
            a.line_buffer_mm2,
            a.registers_mm2,
            ffe.deepfreeze_area_mm2,
            thousands(ffe.nonzero_weights),
            f.ffe_energy_pj * 1e-6,
            ffe_energy_parts(&ffe.energy_pj, f.ffe_energy_pj),
        ));
    }
    let backend_mm2 = report.area.as_ref().map_or(0.0, |a| a.backend_mm2);
    out.push_str(&format!(
        "back-end: {} at {:.1} MHz: {} cycles ({}), energy {:.3} uJ/frame, area {:.3} mm^2{}\n",
        s.backend,
        s.backend_clock_mhz,
        thousands(f.backend_cycles),
        micro(f.backend_cycles as f64 / (s.backend_clock_mhz * 1e6)),
        f.backend_energy_pj * 1e-6,
        backend_mm2,
        if s.backend.starts_with("nvdla") {
            " (table-driven: published data, values from the reference executor)"
        } else {
            ""
        },
    ));
    out.push_str(&format!(
        "system: one frame {} ({:.4} TOPS, {:.2} TOPS/W, {:.3} uJ); area {:.3} mm^2",
        micro(f.latency_s),
        f.tops,
        f.tops_per_w,
        f.energy_pj * 1e-6,
        report.area_mm2.unwrap_or(0.0),
    ));
    if let Some(st) = &s.stream {
        out.push_str(&format!(
            "; stream of {} frames ({} buffer slot(s)): {:.1} frames/s, {:.4} TOPS, {:.2} TOPS/W, last frame latency {}; FFE busy {:.1}% / idle {:.1}%, back-end busy {:.1}%",
            st.frames,
            st.buffer_slots,
            st.frames_per_s,
            st.tops,
            st.tops_per_w,
            micro(st.last_frame_latency_s),
            100.0 * st.ffe_busy_share,
            100.0 * st.ffe_idle_share,
            100.0 * st.backend_busy_share,
        ));
    }
    out.push('\n');
    out
}
