//! The text report's schedule lines: per PE-array layer its schedule and,
//! when searched, the search (docs/report.md, "The text report").

use super::{Report, thousands};
use crate::engine::{LayerSchedule, ScheduleFigures};

/// The schedule's label as `--schedule FILE` takes it.
fn label(s: &LayerSchedule) -> String {
    match s.loop_order.as_str() {
        "pass_major" => s.loop_order.clone(),
        order => format!("{order}/{}/{}", s.tiles, s.inputs_from),
    }
}

/// One candidate's figures: `446.7 M pJ, 1,059,013 cycles, 438,784 DRAM words`.
fn figures(f: &ScheduleFigures) -> String {
    format!(
        "{:.1} M pJ, {} cycles, {} DRAM words",
        f.energy_pj * 1e-6,
        thousands(f.cycles),
        thousands(f.dram_words)
    )
}

/// One layer's line: `#1 conv2: weight_tile_major/2/dram (weights glb,
/// inputs dram); searched on energy, 5 candidates: chosen ...; runner-up
/// LABEL ...; gap 6.7%`.
fn line(index: usize, name: &str, s: &LayerSchedule) -> String {
    let mut out = format!(
        "  #{index} {name}: {} (weights {}, inputs {})",
        label(s),
        s.weights_from,
        s.inputs_from
    );
    if let Some(search) = &s.search {
        let how = match &search.memo_of {
            Some(of) => format!("search of {of} reused (--memo)"),
            None => "searched".to_string(),
        };
        out.push_str(&format!(
            "; {how} on {}, {} candidates: chosen {}; runner-up {} {}; gap {:.1}%",
            search.objective,
            search.candidates,
            figures(&search.chosen),
            search.runner_up.schedule,
            figures(&search.runner_up),
            100.0 * search.gap
        ));
    }
    out.push('\n');
    out
}

/// The schedule lines of every layer that ran on the PE array, under a
/// heading; empty when no layer did.
pub fn lines(report: &Report) -> String {
    let body: String = report
        .layers
        .iter()
        .filter_map(|l| {
            let schedule = l.measured.as_ref()?.schedule.as_ref()?;
            Some(line(l.index, &l.name, schedule))
        })
        .collect();
    if body.is_empty() {
        return body;
    }
    format!("schedules (docs/mapping.md):\n{body}")
}
