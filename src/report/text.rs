//! The per-layer table printed on stdout.

use comfy_table::{CellAlignment, ContentArrangement, Table, presets};

use super::{Report, thousands};

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

/// Renders the report as a table plus a summary line.
pub fn render(report: &Report) -> String {
    let mut table = Table::new();
    table
        .load_style(presets::ASCII_MARKDOWN)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(vec![
            "#",
            "layer",
            "op",
            "input",
            "output",
            "weights",
            "MACs",
            "zero-op MACs",
            "output crc32",
        ]);
    for l in &report.layers {
        table.add_row(vec![
            l.index.to_string(),
            l.name.clone(),
            l.op.clone(),
            shape(l.input_shape),
            shape(l.output_shape),
            thousands(l.weights),
            thousands(l.macs),
            percent(l.zero_macs, l.macs),
            l.output_crc32.clone(),
        ]);
    }
    let t = &report.total;
    table.add_row(vec![
        String::new(),
        t.name.clone(),
        String::new(),
        String::new(),
        String::new(),
        thousands(t.weights),
        thousands(t.macs),
        percent(t.zero_macs, t.macs),
        String::new(),
    ]);
    for i in [0, 5, 6, 7] {
        if let Some(c) = table.column_mut(i) {
            c.set_cell_alignment(CellAlignment::Right);
        }
    }
    let variant = report
        .workload
        .variant
        .as_deref()
        .map(|v| format!(":{v}"))
        .unwrap_or_default();
    format!(
        "workload {}{variant} ({}, input {}), arch {}, engine {}\n{table}\n",
        report.workload.name,
        report.workload.numerics,
        report.workload.input,
        report.arch.name,
        report.engine
    )
}
