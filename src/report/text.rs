//! The per-layer table printed on stdout.

use comfy_table::{CellAlignment, ContentArrangement, Table, presets};

use super::{Measured, Report, thousands};

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
        None => vec![String::new(); 8],
        Some(m) => vec![
            thousands(m.cycles),
            percent(m.cycle_split.stall, m.cycles),
            format!("{:.1}%", 100.0 * m.utilisation),
            short(m.accesses.dram.total() as f64),
            short(m.accesses.glb.total() as f64),
            short(m.accesses.array.total() as f64),
            short(m.accesses.rf.total() as f64),
            short(m.energy.total),
        ],
    }
}

/// Renders the report as a summary line, a table and a totals line.
pub fn render(report: &Report) -> String {
    let mut table = Table::new();
    let measured = report.total.measured.is_some();
    let mut header = vec!["#", "layer", "op", "output", "MACs", "zero-op"];
    if measured {
        header.extend([
            "cycles", "stall", "util", "DRAM", "GLB", "array", "RF", "energy",
        ]);
    }
    header.push("crc32");
    table
        .load_style(presets::ASCII_MARKDOWN)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(header.clone());
    for l in &report.layers {
        let mut row = vec![
            l.index.to_string(),
            l.name.clone(),
            l.op.clone(),
            shape(l.output_shape),
            thousands(l.macs),
            percent(l.zero_macs, l.macs),
        ];
        if measured {
            row.extend(measured_cells(l.measured.as_ref()));
        }
        row.push(l.output_crc32.clone());
        table.add_row(row);
    }
    let t = &report.total;
    let mut row = vec![
        String::new(),
        t.name.clone(),
        String::new(),
        String::new(),
        thousands(t.macs),
        percent(t.zero_macs, t.macs),
    ];
    if measured {
        row.extend(measured_cells(t.measured.as_ref()));
    }
    row.push(String::new());
    table.add_row(row);
    for (i, name) in header.iter().enumerate() {
        if !matches!(*name, "layer" | "op" | "output" | "crc32") {
            if let Some(c) = table.column_mut(i) {
                c.set_cell_alignment(CellAlignment::Right);
            }
        }
    }
    let variant = report
        .workload
        .variant
        .as_deref()
        .map(|v| format!(":{v}"))
        .unwrap_or_default();
    let mut out = format!(
        "workload {}{variant} ({}, input {}), arch {}, engine {}\n{table}\n",
        report.workload.name,
        report.workload.numerics,
        report.workload.input,
        report.arch.name,
        report.engine
    );
    if let (Some(th), Some(m)) = (&report.throughput, &t.measured) {
        out.push_str(&format!(
            "{} cycles at {} MHz = {:.3} ms ({:.1} inferences/s, {:.4} TOPS, {:.3} TOPS/W); energy {} (memory {}, MAC {}) = {:.2} uJ; accesses (words) DRAM {}, GLB {}, array {}, RF {}; bit-exact: {}\n",
            thousands(th.cycles),
            th.clock_mhz,
            th.seconds * 1e3,
            th.inferences_per_s,
            th.tops,
            th.tops_per_w,
            short(m.energy.total),
            short(m.memory_energy),
            short(m.energy.mac),
            m.energy_pj.total * 1e-6,
            thousands(m.accesses.dram.total()),
            thousands(m.accesses.glb.total()),
            thousands(m.accesses.array.total()),
            thousands(m.accesses.rf.total()),
            if report.bit_exact { "yes (every layer matched the reference)" } else { "not checked" }
        ));
    }
    out
}
