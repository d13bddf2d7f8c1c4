//! The final outputs of a sweep, from its records sorted by index
//! (docs/sweeps.md, "Outputs"): `results.csv` and `results.jsonl`, one
//! Pareto CSV per objective pair or triple, the plots, and the summary
//! tables (`tables.md`, plus one CSV per table).
//!
//! An unsharded run and `accsim merge` both end here, with records read
//! back from the JSONL streams, so the same points give the same bytes
//! however they were computed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::front;
use super::record::{Record, Status, csv_header, csv_line, csv_row};
use super::spec::{BudgetTable, CompareTable, Direction, Metric, SweepSpec};
use crate::atomic;
use crate::error::Result;

/// What [`finalize`] wrote.
#[derive(Debug, Default)]
pub struct Finalized {
    pub files: Vec<PathBuf>,
    /// The summary tables as Markdown (also in `tables.md` when non-empty).
    pub tables_markdown: String,
    pub counts: BTreeMap<&'static str, usize>,
}

/// File-name form of a metric list: `area_mm2-tops`.
pub fn objective_stem(ms: &[Metric]) -> String {
    ms.iter().map(|m| m.name()).collect::<Vec<_>>().join("-")
}

/// The records on the front of `ms` (status ok only), by the first
/// objective ascending.
pub fn pareto_records<'a>(records: &'a [Record], ms: &[Metric]) -> Vec<&'a Record> {
    let feasible: Vec<&Record> = records
        .iter()
        .filter(|r| r.status == Status::Ok && ms.iter().all(|&m| r.metric(m).is_some()))
        .collect();
    let oriented: Vec<Vec<f64>> = feasible
        .iter()
        .map(|r| {
            ms.iter()
                .map(|&m| {
                    let x = r.metric(m).unwrap_or(f64::NAN);
                    match m.direction() {
                        Direction::Minimise => x,
                        Direction::Maximise => -x,
                    }
                })
                .collect()
        })
        .collect();
    front::front(&oriented)
        .into_iter()
        .map(|i| feasible[i])
        .collect()
}

/// Writes every final output of `records` (sorted by index) into `dir`.
pub fn finalize(spec: &SweepSpec, records: &[Record], dir: &Path) -> Result<Finalized> {
    let axes: Vec<String> = spec.axes.iter().map(|a| a.name.clone()).collect();
    let mut out = Finalized::default();
    for r in records {
        *out.counts.entry(r.status.name()).or_default() += 1;
    }
    let write = |name: String, text: &str, out: &mut Finalized| -> Result<()> {
        let path = dir.join(name);
        atomic::write(&path, text.as_bytes())?;
        out.files.push(path);
        Ok(())
    };

    let mut csv = csv_header(&axes);
    let mut jsonl = String::new();
    for r in records {
        csv.push_str(&csv_row(r, &axes));
        jsonl.push_str(&r.json_line());
    }
    write("results.csv".into(), &csv, &mut out)?;
    write("results.jsonl".into(), &jsonl, &mut out)?;

    for ms in &spec.objectives {
        let mut text = csv_header(&axes);
        for r in pareto_records(records, ms) {
            text.push_str(&csv_row(r, &axes));
        }
        write(
            format!("pareto_{}.csv", objective_stem(ms)),
            &text,
            &mut out,
        )?;
    }

    let mut md = String::new();
    for (k, b) in spec.budgets.iter().enumerate() {
        let (csv, table) = budget_table(spec, b, records);
        let name = if spec.budgets.len() == 1 {
            "budget.csv".to_string()
        } else {
            format!("budget_{}.csv", k + 1)
        };
        write(name, &csv, &mut out)?;
        md.push_str(&table);
    }
    for (k, c) in spec.compares.iter().enumerate() {
        let (csv, table) = compare_table(spec, c, records);
        let name = if spec.compares.len() == 1 {
            "compare.csv".to_string()
        } else {
            format!("compare_{}.csv", k + 1)
        };
        write(name, &csv, &mut out)?;
        md.push_str(&table);
    }
    if !md.is_empty() {
        let doc = format!("# {}\n\n{}\n{md}", spec.name, spec.description.trim());
        write("tables.md".into(), &doc, &mut out)?;
    }
    out.tables_markdown = md;

    for ms in spec.objectives.iter().filter(|ms| ms.len() == 2) {
        for ext in ["png", "svg"] {
            let path = dir.join(format!("plot_{}_vs_{}.{ext}", ms[1].name(), ms[0].name()));
            atomic::write_with(&path, |tmp| {
                super::plot::scatter(spec, records, ms[0], ms[1], tmp)
            })?;
            out.files.push(path);
        }
    }
    Ok(out)
}

/// Four significant digits, plain or in e-notation for very large or
/// small magnitudes (tables for people; the CSVs keep full precision).
pub fn sig(x: f64) -> String {
    if x == 0.0 || !x.is_finite() {
        return x.to_string();
    }
    let e = x.abs().log10().floor() as i32;
    if (-3..6).contains(&e) {
        let decimals = (3 - e).max(0) as usize;
        format!("{x:.decimals$}")
    } else {
        format!("{x:.3e}")
    }
}

/// `3.619 TOPS/W`: a table cell with its metric's unit.
fn with_unit(value: &str, m: Metric) -> String {
    match m.unit() {
        "" => value.to_string(),
        unit => format!("{value} {unit}"),
    }
}

/// `axis=label` for the axes that vary (workload included when several).
fn describe(spec: &SweepSpec, r: &Record) -> String {
    let mut parts = Vec::new();
    if spec.workloads.len() > 1 {
        parts.push(format!("workload={}", r.workload));
    }
    for a in spec.axes.iter().filter(|a| a.values.len() > 1) {
        parts.push(format!(
            "{}={}",
            a.name,
            r.axes.get(&a.name).map_or("", String::as_str)
        ));
    }
    parts.join(" ")
}

fn better(m: Metric, a: f64, b: f64) -> bool {
    match m.direction() {
        Direction::Maximise => a > b,
        Direction::Minimise => a < b,
    }
}

/// The best record among `candidates` for `objective` (ties: lowest index).
fn best<'a>(candidates: impl Iterator<Item = &'a Record>, objective: Metric) -> Option<&'a Record> {
    let mut out: Option<(&Record, f64)> = None;
    for r in candidates {
        let Some(x) = r.metric(objective) else {
            continue;
        };
        match out {
            Some((_, y)) if !better(objective, x, y) => {}
            _ => out = Some((r, x)),
        }
    }
    out.map(|(r, _)| r)
}

/// FIXYNN's table: per budget and objective, the best point, the best
/// baseline point within the same budget (a baseline of comparable area),
/// and the improvement (> 1 is better, for either direction).
fn budget_table(spec: &SweepSpec, b: &BudgetTable, records: &[Record]) -> (String, String) {
    let in_baseline = |r: &Record| {
        b.baseline
            .iter()
            .all(|(axis, labels)| r.label(axis).is_some_and(|l| labels.iter().any(|x| x == l)))
    };
    let ok: Vec<&Record> = records.iter().filter(|r| r.status == Status::Ok).collect();
    let bm = b.budget;
    let mut csv = csv_line(
        &[
            "budget_metric",
            "limit",
            "objective",
            "index",
            "point",
            "budget_value",
            "value",
            "baseline_index",
            "baseline_point",
            "baseline_budget_value",
            "baseline_value",
            "improvement",
        ]
        .map(String::from),
    );
    let baseline_text = b
        .baseline
        .iter()
        .map(|(a, ls)| format!("{a}={}", ls.join("|")))
        .collect::<Vec<_>>()
        .join(" ");
    let mut md = format!(
        "## {}\n\nBest point with `{bm}` within each limit; baseline: the best point with {} within the same limit.\n\n",
        b.title,
        if baseline_text.is_empty() {
            "(none)".to_string()
        } else {
            format!("`{baseline_text}`")
        }
    );
    md.push_str(&format!(
        "| {bm} <= | objective | best point | {bm} | value | baseline point | baseline {bm} | baseline value | improvement [x] |\n|---|---|---|---|---|---|---|---|---|\n"
    ));
    for &limit in &b.limits {
        let within: Vec<&Record> = ok
            .iter()
            .copied()
            .filter(|r| r.metric(bm).is_some_and(|x| x <= limit))
            .collect();
        for &o in &b.objectives {
            let top = best(within.iter().copied(), o);
            let base = best(within.iter().copied().filter(|r| in_baseline(r)), o);
            let (c, m) = budget_row(spec, bm, limit, o, top, base);
            csv.push_str(&c);
            md.push_str(&m);
        }
    }
    md.push('\n');
    (csv, md)
}

/// One row of a budget table (CSV line, Markdown line): the best point
/// `top` and the best baseline point `base` on objective `o` within `limit`.
fn budget_row(
    spec: &SweepSpec,
    bm: Metric,
    limit: f64,
    o: Metric,
    top: Option<&Record>,
    base: Option<&Record>,
) -> (String, String) {
    let gain = match (
        top.and_then(|r| r.metric(o)),
        base.and_then(|r| r.metric(o)),
    ) {
        (Some(x), Some(y)) if x > 0.0 && y > 0.0 => Some(match o.direction() {
            Direction::Maximise => x / y,
            Direction::Minimise => y / x,
        }),
        _ => None,
    };
    let cell = |r: Option<&Record>, m: Metric| {
        r.and_then(|r| r.metric(m))
            .map(|x| x.to_string())
            .unwrap_or_default()
    };
    // Table cells carry their unit: the value column mixes objectives.
    let cell_sig = |r: Option<&Record>, m: Metric| {
        r.and_then(|r| r.metric(m))
            .map(|x| with_unit(&sig(x), m))
            .unwrap_or_else(|| "-".into())
    };
    let csv = csv_line(&[
        bm.name().to_string(),
        limit.to_string(),
        o.name().to_string(),
        top.map(|r| r.index.to_string()).unwrap_or_default(),
        top.map(|r| describe(spec, r)).unwrap_or_default(),
        cell(top, bm),
        cell(top, o),
        base.map(|r| r.index.to_string()).unwrap_or_default(),
        base.map(|r| describe(spec, r)).unwrap_or_default(),
        cell(base, bm),
        cell(base, o),
        gain.map(|g| g.to_string()).unwrap_or_default(),
    ]);
    let md = format!(
        "| {} | {o} | {} | {} | {} | {} | {} | {} | {} |\n",
        with_unit(&limit.to_string(), bm),
        top.map(|r| describe(spec, r))
            .unwrap_or_else(|| "none fits".into()),
        cell_sig(top, bm),
        cell_sig(top, o),
        base.map(|r| describe(spec, r))
            .unwrap_or_else(|| "none fits".into()),
        cell_sig(base, bm),
        cell_sig(base, o),
        gain.map(|g| format!("{:.2}x", g))
            .unwrap_or_else(|| "-".into()),
    );
    (csv, md)
}

/// LU22's comparison: for each combination of the other axes, every value
/// of `c.axis` against the baseline value, metric by metric (ratio =
/// value / baseline), and a summary of the ratios (geometric mean, min,
/// max) per value and metric.
fn compare_table(spec: &SweepSpec, c: &CompareTable, records: &[Record]) -> (String, String) {
    let others: Vec<String> = std::iter::once("workload".to_string())
        .chain(spec.axes.iter().map(|a| a.name.clone()))
        .filter(|a| *a != c.axis)
        .collect();
    let groups = group_by(records, &others);
    let mut header: Vec<String> = others.clone();
    header.push(c.axis.clone());
    for m in &c.metrics {
        header.push(m.name().to_string());
        header.push(format!("baseline_{}", m.name()));
        header.push(format!("ratio_{}", m.name()));
    }
    let mut csv = csv_line(&header);
    // (label, metric) -> ratios
    let mut ratios: BTreeMap<(String, Metric), Vec<f64>> = BTreeMap::new();
    let labels = spec.axis_labels(&c.axis).unwrap_or_default();
    let mut pairs = 0usize;
    for (k, rs) in &groups {
        let Some(base) = rs
            .iter()
            .find(|r| r.label(&c.axis) == Some(c.baseline.as_str()))
        else {
            continue;
        };
        for r in rs
            .iter()
            .filter(|r| r.label(&c.axis) != Some(c.baseline.as_str()))
        {
            let mut row = k.clone();
            let label = r.label(&c.axis).unwrap_or("").to_string();
            row.push(label.clone());
            for &m in &c.metrics {
                let (x, y) = (r.metric(m), base.metric(m));
                row.push(x.map(|v| v.to_string()).unwrap_or_default());
                row.push(y.map(|v| v.to_string()).unwrap_or_default());
                match (x, y) {
                    (Some(x), Some(y)) if y != 0.0 => {
                        row.push((x / y).to_string());
                        ratios.entry((label.clone(), m)).or_default().push(x / y);
                    }
                    _ => row.push(String::new()),
                }
            }
            csv.push_str(&csv_line(&row));
            pairs += 1;
        }
    }
    let mut md = format!(
        "## {}\n\nRatio of each point to the point with `{} = {}` and the same other axes ({} pairs); < 1 means less.\n\n| {} | metric | ratio [x]: geometric mean | min ratio [x] | max ratio [x] |\n|---|---|---|---|---|\n",
        c.title, c.axis, c.baseline, pairs, c.axis
    );
    md.push_str(&ratio_summary(c, &labels, &ratios));
    md.push('\n');
    (csv, md)
}

/// The OK records grouped by their labels on the axes `others`, groups in
/// index order of their first record.
fn group_by<'a>(records: &'a [Record], others: &[String]) -> Vec<(Vec<String>, Vec<&'a Record>)> {
    let group_key = |r: &Record| -> Vec<String> {
        others
            .iter()
            .map(|a| r.label(a).unwrap_or("").to_string())
            .collect()
    };
    let mut groups: Vec<(Vec<String>, Vec<&Record>)> = Vec::new();
    let mut where_: BTreeMap<Vec<String>, usize> = BTreeMap::new();
    for r in records.iter().filter(|r| r.status == Status::Ok) {
        let k = group_key(r);
        let slot = *where_.entry(k.clone()).or_insert_with(|| {
            groups.push((k, Vec::new()));
            groups.len() - 1
        });
        groups[slot].1.push(r);
    }
    groups
}

/// The Markdown rows of a comparison's summary: per value of the axis other
/// than the baseline and per metric, the geometric mean, min and max ratio.
fn ratio_summary(
    c: &CompareTable,
    labels: &[String],
    ratios: &BTreeMap<(String, Metric), Vec<f64>>,
) -> String {
    let mut out = String::new();
    for l in labels.iter().filter(|l| **l != c.baseline) {
        for &m in &c.metrics {
            let Some(v) = ratios.get(&(l.clone(), m)).filter(|v| !v.is_empty()) else {
                continue;
            };
            let positive = v.iter().all(|x| *x > 0.0);
            let gmean = if positive {
                sig((v.iter().map(|x| x.ln()).sum::<f64>() / v.len() as f64).exp())
            } else {
                "-".to_string()
            };
            let min = v.iter().copied().fold(f64::INFINITY, f64::min);
            let max = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            out.push_str(&format!(
                "| {l} | {m} | {gmean} | {} | {} |\n",
                sig(min),
                sig(max)
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sig_keeps_four_digits() {
        assert_eq!(sig(1.23456), "1.235");
        assert_eq!(sig(0.0123456), "0.01235");
        assert_eq!(sig(12345.6), "12346");
        assert_eq!(sig(1.5e9), "1.500e9");
    }
}
