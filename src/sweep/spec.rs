//! The sweep spec: a TOML file naming a base architecture, workloads, axes
//! of variation, constraints, objectives and summary tables (docs/sweeps.md;
//! issue 6, answering SPEC section 1's fixed-vs-programmable question and
//! section 3's design-space question).
//!
//! Parsing is pure: nothing here reads another file, so `accsim merge` can
//! re-read the spec text stored beside shard outputs without the base
//! architecture or workloads being present. [`super::space`] resolves files
//! and expands the axes into points.

use std::collections::BTreeSet;
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::{Spanned, Value};

use crate::error::InputError;

/// What a point measures, by name (CSV columns, objectives, constraints).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Metric {
    AreaMm2,
    FfeAreaMm2,
    BackendAreaMm2,
    Tops,
    TopsPerW,
    EnergyPj,
    MemoryEnergyPj,
    LatencyS,
    InferencesPerS,
    Cycles,
    Macs,
    Utilisation,
    DramBytes,
}

/// Whether smaller or larger is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Minimise,
    Maximise,
}

impl Metric {
    /// Every metric, in CSV column order.
    pub const ALL: [Metric; 13] = [
        Metric::AreaMm2,
        Metric::FfeAreaMm2,
        Metric::BackendAreaMm2,
        Metric::Tops,
        Metric::TopsPerW,
        Metric::EnergyPj,
        Metric::MemoryEnergyPj,
        Metric::LatencyS,
        Metric::InferencesPerS,
        Metric::Cycles,
        Metric::Macs,
        Metric::Utilisation,
        Metric::DramBytes,
    ];

    /// The column name (with its unit).
    pub fn name(self) -> &'static str {
        match self {
            Metric::AreaMm2 => "area_mm2",
            Metric::FfeAreaMm2 => "ffe_area_mm2",
            Metric::BackendAreaMm2 => "backend_area_mm2",
            Metric::Tops => "tops",
            Metric::TopsPerW => "tops_per_w",
            Metric::EnergyPj => "energy_pj",
            Metric::MemoryEnergyPj => "memory_energy_pj",
            Metric::LatencyS => "latency_s",
            Metric::InferencesPerS => "inferences_per_s",
            Metric::Cycles => "cycles",
            Metric::Macs => "macs",
            Metric::Utilisation => "utilisation",
            Metric::DramBytes => "dram_bytes",
        }
    }

    /// The unit of the metric's values, for table cells ("" for a ratio).
    pub fn unit(self) -> &'static str {
        match self {
            Metric::AreaMm2 | Metric::FfeAreaMm2 | Metric::BackendAreaMm2 => "mm^2",
            Metric::Tops => "TOPS",
            Metric::TopsPerW => "TOPS/W",
            Metric::EnergyPj | Metric::MemoryEnergyPj => "pJ",
            Metric::LatencyS => "s",
            Metric::InferencesPerS => "inferences/s",
            Metric::Cycles => "cycles",
            Metric::Macs => "MACs",
            Metric::Utilisation => "",
            Metric::DramBytes => "bytes",
        }
    }

    /// Axis label for plots, with the unit spelled out.
    pub fn label(self) -> &'static str {
        match self {
            Metric::AreaMm2 => "area [mm^2]",
            Metric::FfeAreaMm2 => "FFE area [mm^2]",
            Metric::BackendAreaMm2 => "back-end area [mm^2]",
            Metric::Tops => "throughput [TOPS]",
            Metric::TopsPerW => "efficiency [TOPS/W]",
            Metric::EnergyPj => "energy per inference [pJ]",
            Metric::MemoryEnergyPj => "memory energy per inference [pJ]",
            Metric::LatencyS => "latency [s]",
            Metric::InferencesPerS => "throughput [inferences/s]",
            Metric::Cycles => "cycles per inference",
            Metric::Macs => "MACs per inference",
            Metric::Utilisation => "PE utilisation",
            Metric::DramBytes => "DRAM traffic [bytes]",
        }
    }

    pub fn direction(self) -> Direction {
        match self {
            Metric::Tops | Metric::TopsPerW | Metric::InferencesPerS | Metric::Utilisation => {
                Direction::Maximise
            }
            _ => Direction::Minimise,
        }
    }

    /// Looks a metric up by name; `accuracy_drop` gets its own message
    /// because it needs the precision run option (SPEC section 2).
    pub fn parse(name: &str) -> Result<Metric, String> {
        if let Some(m) = Metric::ALL.iter().find(|m| m.name() == name) {
            return Ok(*m);
        }
        let valid = Metric::ALL.map(Metric::name).join(", ");
        if name == "accuracy_drop" {
            return Err(format!(
                "`accuracy_drop` is not a run's metric (a run has one input; the drop needs a \
                 calibration set): search precisions with `accsim precision`; valid: {valid}"
            ));
        }
        Err(format!("unknown metric `{name}`; valid: {valid}"))
    }
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Run options an axis can set (`run.NAME`). Adding one is one variant, one
/// name, and one line in `space::apply_run` that sets the `RunOptions`
/// field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RunKey {
    /// `--ffe-tap`: activations tapped after fixed layer M.
    FfeTap,
    /// `--frames`: frames in the simulated stream.
    Frames,
    /// `--precision`: per-layer MAC precisions (docs/precision.md).
    Precision,
    /// `--objective`: what each layer's schedule search minimises
    /// (docs/mapping.md, "The search").
    Objective,
}

impl RunKey {
    pub const ALL: [RunKey; 4] = [
        RunKey::FfeTap,
        RunKey::Frames,
        RunKey::Precision,
        RunKey::Objective,
    ];

    pub fn name(self) -> &'static str {
        match self {
            RunKey::FfeTap => "ffe_tap",
            RunKey::Frames => "frames",
            RunKey::Precision => "precision",
            RunKey::Objective => "objective",
        }
    }
}

/// Which document a dotted path edits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Target {
    /// The base architecture's TOML (`arch.SECTION.FIELD`).
    Arch(Vec<Segment>),
    /// Each workload's TOML (`workload.SECTION.FIELD`, `workload.layer.3.stride`).
    Workload(Vec<Segment>),
    /// A run option (`run.ffe_tap`).
    Run(RunKey),
}

/// One step of a dotted path.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Segment {
    Key(String),
    /// An element of an array (`layer.3`).
    Index(usize),
    /// Every element of an array (`layer.*`).
    All,
}

/// A dotted path with where it points.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AxisPath {
    /// As written (`arch.pe_array.rows`).
    pub text: String,
    pub target: Target,
}

impl AxisPath {
    /// Parses `arch.…`, `workload.…` or `run.…`.
    pub fn parse(text: &str) -> Result<AxisPath, String> {
        let valid_run = RunKey::ALL.map(|k| format!("run.{}", k.name())).join(", ");
        let (root, rest) = text.split_once('.').unwrap_or((text, ""));
        let segments = |rest: &str| -> Result<Vec<Segment>, String> {
            if rest.is_empty() {
                return Err(format!(
                    "path `{text}` names no field; valid: `{root}.SECTION.FIELD`"
                ));
            }
            rest.split('.')
                .map(|s| {
                    if s.is_empty() {
                        Err(format!("path `{text}` has an empty segment"))
                    } else if s == "*" {
                        Ok(Segment::All)
                    } else if let Ok(i) = s.parse::<usize>() {
                        Ok(Segment::Index(i))
                    } else {
                        Ok(Segment::Key(s.to_string()))
                    }
                })
                .collect()
        };
        let target = match root {
            "arch" => Target::Arch(segments(rest)?),
            "workload" => Target::Workload(segments(rest)?),
            "run" => {
                let key = RunKey::ALL
                    .into_iter()
                    .find(|k| k.name() == rest)
                    .ok_or_else(|| format!("unknown run option `{text}`; valid: {valid_run}"))?;
                Target::Run(key)
            }
            _ => {
                return Err(format!(
                    "path `{text}` must start with `arch.`, `workload.` or `run.` \
                     (e.g. arch.pe_array.rows, workload.defaults.weights.sparsity, {valid_run})"
                ));
            }
        };
        Ok(AxisPath {
            text: text.to_string(),
            target,
        })
    }
}

/// One value of an axis: the settings it makes and its label.
#[derive(Debug, Clone, PartialEq)]
pub struct AxisValue {
    /// The label in CSV columns, legends and tables.
    pub label: String,
    /// Paths and the values they take, in the order written.
    pub settings: Vec<(AxisPath, Value)>,
}

/// One axis of variation.
#[derive(Debug, Clone, PartialEq)]
pub struct Axis {
    /// Its column name.
    pub name: String,
    pub values: Vec<AxisValue>,
}

/// `metric op bound`.
#[derive(Debug, Clone, PartialEq)]
pub struct Constraint {
    pub metric: Metric,
    pub op: CompareOp,
    pub bound: f64,
    /// As written.
    pub text: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    Le,
    Lt,
    Ge,
    Gt,
}

impl CompareOp {
    pub fn holds(self, x: f64, bound: f64) -> bool {
        match self {
            CompareOp::Le => x <= bound,
            CompareOp::Lt => x < bound,
            CompareOp::Ge => x >= bound,
            CompareOp::Gt => x > bound,
        }
    }
}

impl Constraint {
    fn parse(text: &str) -> Result<Constraint, String> {
        let ops = [
            ("<=", CompareOp::Le),
            (">=", CompareOp::Ge),
            ("<", CompareOp::Lt),
            (">", CompareOp::Gt),
        ];
        for (sym, op) in ops {
            if let Some((l, r)) = text.split_once(sym) {
                let metric = Metric::parse(l.trim())?;
                let bound: f64 = r.trim().parse().map_err(|_| {
                    format!("`{}` is not a number in constraint `{text}`", r.trim())
                })?;
                if !bound.is_finite() {
                    return Err(format!("the bound of `{text}` must be finite"));
                }
                return Ok(Constraint {
                    metric,
                    op,
                    bound,
                    text: text.trim().to_string(),
                });
            }
        }
        Err(format!(
            "constraint `{text}` has no comparison; valid: `METRIC <= NUMBER` (or <, >=, >), \
             e.g. `area_mm2 <= 4`"
        ))
    }
}

/// Plots: which axes become colours (series) and marker shapes.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PlotSpec {
    /// One colour and one joined front per value of this axis.
    pub series: Option<String>,
    /// One marker shape per value of this axis.
    pub marker: Option<String>,
}

/// Best point per budget, against a baseline subset (FIXYNN's iso-area
/// comparison with a fully programmable back-end).
#[derive(Debug, Clone, PartialEq)]
pub struct BudgetTable {
    /// What the budget limits (`area_mm2`).
    pub budget: Metric,
    pub limits: Vec<f64>,
    /// What is optimised within a budget, each with its own column group.
    pub objectives: Vec<Metric>,
    /// Axis name and the labels that make a point part of the baseline.
    pub baseline: Vec<(String, Vec<String>)>,
    /// Title for the table.
    pub title: String,
}

/// Ratios between points that differ only in one axis (LU22's fixed vs
/// programmable weights).
#[derive(Debug, Clone, PartialEq)]
pub struct CompareTable {
    pub axis: String,
    /// The label every other value is divided by.
    pub baseline: String,
    pub metrics: Vec<Metric>,
    pub title: String,
}

/// A validated sweep spec.
#[derive(Debug, Clone, PartialEq)]
pub struct SweepSpec {
    pub name: String,
    pub description: String,
    /// The spec file (relative names below resolve against its directory).
    pub path: PathBuf,
    /// Base architecture, a shipped name or a path.
    pub arch: String,
    /// Workloads, shipped names or paths, each optionally `:VARIANT`.
    pub workloads: Vec<String>,
    pub seed: u64,
    /// Check every layer bit-exact against the reference (default true).
    pub check: bool,
    pub axes: Vec<Axis>,
    pub constraints: Vec<Constraint>,
    /// Pairs or triples.
    pub objectives: Vec<Vec<Metric>>,
    pub plot: PlotSpec,
    pub budgets: Vec<BudgetTable>,
    pub compares: Vec<CompareTable>,
}

impl SweepSpec {
    /// Number of points: workloads x the product of the axes' lengths.
    pub fn point_count(&self) -> usize {
        self.axes.iter().fold(self.workloads.len(), |n, a| {
            n.saturating_mul(a.values.len())
        })
    }

    /// The axis named `name`, or `workload` (index `None`).
    pub fn axis_labels(&self, name: &str) -> Option<Vec<String>> {
        if name == "workload" {
            return Some(self.workloads.clone());
        }
        self.axes
            .iter()
            .find(|a| a.name == name)
            .map(|a| a.values.iter().map(|v| v.label.clone()).collect())
    }
}

// ---- raw file ---------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSpec {
    sweep: RawSweep,
    #[serde(default)]
    axis: Vec<Spanned<RawAxis>>,
    #[serde(default)]
    plot: Option<Spanned<RawPlot>>,
    #[serde(default)]
    budget: Vec<Spanned<RawBudget>>,
    #[serde(default)]
    compare: Vec<Spanned<RawCompare>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSweep {
    name: Spanned<String>,
    #[serde(default)]
    description: String,
    arch: Spanned<String>,
    workloads: Spanned<Vec<String>>,
    #[serde(default)]
    seed: Option<Spanned<i64>>,
    #[serde(default)]
    check: Option<bool>,
    #[serde(default)]
    constraints: Vec<Spanned<String>>,
    #[serde(default)]
    objectives: Vec<Spanned<Vec<String>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAxis {
    #[serde(default)]
    name: Option<Spanned<String>>,
    #[serde(default)]
    path: Option<Spanned<String>>,
    #[serde(default)]
    values: Option<Spanned<Vec<Value>>>,
    #[serde(default)]
    labels: Option<Spanned<Vec<String>>>,
    #[serde(default)]
    range: Option<Spanned<RawRange>>,
    #[serde(default)]
    random: Option<Spanned<RawRandom>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRange {
    from: Value,
    to: Value,
    #[serde(default)]
    step: Option<Value>,
    #[serde(default)]
    factor: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRandom {
    min: f64,
    max: f64,
    count: i64,
    #[serde(default)]
    integer: bool,
    #[serde(default)]
    log: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPlot {
    #[serde(default)]
    series: Option<String>,
    #[serde(default)]
    marker: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBudget {
    #[serde(default)]
    title: Option<String>,
    metric: String,
    limits: Vec<f64>,
    objectives: Vec<String>,
    #[serde(default)]
    baseline: toml::Table,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCompare {
    #[serde(default)]
    title: Option<String>,
    axis: String,
    baseline: String,
    metrics: Vec<String>,
}

/// Most points a spec may expand to (a sweep of more belongs in shards of
/// separate specs; this also bounds memory for the point list).
pub const MAX_POINTS: usize = 10_000_000;

/// Column names that axes may not take.
const RESERVED: [&str; 6] = ["index", "key", "status", "reason", "workload", "bit_exact"];

/// Reads and validates a sweep spec file.
pub fn load_file(path: &Path) -> Result<SweepSpec, InputError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| InputError::new(path, format!("cannot read the sweep spec: {e}")))?;
    parse(&text, path)
}

/// Validates a sweep spec given as text; `path` names it in errors.
pub fn parse(text: &str, path: &Path) -> Result<SweepSpec, InputError> {
    let raw: RawSpec =
        toml::from_str(text).map_err(|e| crate::error::from_toml(path, text, &e, &|_| None))?;
    let err = |span: Option<Range<usize>>, ctx: &str, field: &str, msg: String| {
        InputError::new(path, msg)
            .at(text, span)
            .context(ctx)
            .field(field)
    };
    let s = &raw.sweep;
    let name = sweep_name(s, &err)?;
    check_workloads(s, &err)?;
    let seed = sweep_seed(s, &err)?;
    let axes = parse_axes(&raw.axis, seed, &err)?;
    let known = KnownAxes {
        axes: &axes,
        workloads: &s.workloads,
    };
    let spec = SweepSpec {
        name,
        description: s.description.clone(),
        path: path.to_path_buf(),
        arch: s.arch.get_ref().clone(),
        workloads: s.workloads.get_ref().clone(),
        seed,
        check: s.check.unwrap_or(true),
        constraints: parse_constraints(s, &err)?,
        objectives: parse_objectives(s, &err)?,
        plot: parse_plot(raw.plot.as_ref(), &known, &err)?,
        budgets: parse_budgets(&raw.budget, &known, &err)?,
        compares: parse_compares(&raw.compare, &known, &err)?,
        axes,
    };
    if spec.point_count() > MAX_POINTS {
        return Err(InputError::new(
            path,
            format!(
                "expands to {} points; valid: at most {MAX_POINTS} (split the sweep into several specs)",
                spec.point_count()
            ),
        ));
    }
    Ok(spec)
}

/// `[sweep] name`: it names the output directory.
fn sweep_name(s: &RawSweep, err: &ErrFn<'_>) -> Result<String, InputError> {
    let name = s.name.get_ref().clone();
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
    {
        return Err(err(
            Some(s.name.span()),
            "[sweep]",
            "name",
            format!(
                "is `{name}`; valid: letters, digits, `_`, `-`, `.` (it names the output directory)"
            ),
        ));
    }
    Ok(name)
}

/// `[sweep] workloads`: one or more, each named once.
fn check_workloads(s: &RawSweep, err: &ErrFn<'_>) -> Result<(), InputError> {
    if s.workloads.get_ref().is_empty() {
        return Err(err(
            Some(s.workloads.span()),
            "[sweep]",
            "workloads",
            "is empty; valid: one or more workload names or paths".to_string(),
        ));
    }
    let mut seen = BTreeSet::new();
    for w in s.workloads.get_ref() {
        if !seen.insert(w.as_str()) {
            return Err(err(
                Some(s.workloads.span()),
                "[sweep]",
                "workloads",
                format!("names `{w}` twice; valid: distinct workloads"),
            ));
        }
    }
    Ok(())
}

/// `[sweep] seed`: 0 or more, 1 when absent.
fn sweep_seed(s: &RawSweep, err: &ErrFn<'_>) -> Result<u64, InputError> {
    match &s.seed {
        Some(x) if *x.get_ref() < 0 => Err(err(
            Some(x.span()),
            "[sweep]",
            "seed",
            format!("is {}; valid: 0 or more", x.get_ref()),
        )),
        Some(x) => Ok(*x.get_ref() as u64),
        None => Ok(1),
    }
}

/// The `[[axis]]` tables, each with a distinct name that no sweep column
/// takes.
fn parse_axes(
    raw: &[Spanned<RawAxis>],
    seed: u64,
    err: &ErrFn<'_>,
) -> Result<Vec<Axis>, InputError> {
    let mut axes: Vec<Axis> = Vec::new();
    for (k, a) in raw.iter().enumerate() {
        let ctx = format!("[[axis]] {}", k + 1);
        let axis = parse_axis(a, seed, &ctx, err)?;
        let metric_clash = Metric::ALL.iter().any(|m| m.name() == axis.name);
        if RESERVED.contains(&axis.name.as_str()) || metric_clash {
            return Err(err(
                a.get_ref()
                    .name
                    .as_ref()
                    .map(|n| n.span())
                    .or(Some(a.span())),
                &ctx,
                "name",
                format!(
                    "`{}` is a column of every sweep row; valid: another name (set `name`)",
                    axis.name
                ),
            ));
        }
        if axes.iter().any(|b| b.name == axis.name) {
            return Err(err(
                Some(a.span()),
                &ctx,
                "name",
                format!(
                    "`{}` names an earlier axis too; valid: a distinct `name`",
                    axis.name
                ),
            ));
        }
        axes.push(axis);
    }
    Ok(axes)
}

/// The axes the tables may name: `workload` and every `[[axis]]`.
struct KnownAxes<'a> {
    axes: &'a [Axis],
    workloads: &'a Spanned<Vec<String>>,
}

impl KnownAxes<'_> {
    fn exists(&self, n: &str) -> bool {
        n == "workload" || self.axes.iter().any(|a| a.name == n)
    }

    /// The axis names, for a refusal's `valid:` list.
    fn names(&self) -> String {
        std::iter::once("workload".to_string())
            .chain(self.axes.iter().map(|a| a.name.clone()))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The value labels of axis `name`, or `None` when there is no such axis.
    fn labels(&self, name: &str) -> Option<Vec<String>> {
        axis_labels_of(self.axes, self.workloads, name)
    }
}

/// `[sweep] constraints`.
fn parse_constraints(s: &RawSweep, err: &ErrFn<'_>) -> Result<Vec<Constraint>, InputError> {
    s.constraints
        .iter()
        .map(|c| {
            Constraint::parse(c.get_ref())
                .map_err(|m| err(Some(c.span()), "[sweep]", "constraints", m))
        })
        .collect()
}

/// `[sweep] objectives`: pairs or triples of distinct metrics.
fn parse_objectives(s: &RawSweep, err: &ErrFn<'_>) -> Result<Vec<Vec<Metric>>, InputError> {
    let mut objectives = Vec::new();
    for o in &s.objectives {
        let ms: Vec<Metric> = o
            .get_ref()
            .iter()
            .map(|n| Metric::parse(n))
            .collect::<Result<_, _>>()
            .map_err(|m| err(Some(o.span()), "[sweep]", "objectives", m))?;
        let distinct: BTreeSet<Metric> = ms.iter().copied().collect();
        if !(2..=3).contains(&ms.len()) || distinct.len() != ms.len() {
            return Err(err(
                Some(o.span()),
                "[sweep]",
                "objectives",
                format!(
                    "{:?} is not a pair or triple of distinct metrics; valid: e.g. [\"area_mm2\", \"tops\"]",
                    o.get_ref()
                ),
            ));
        }
        objectives.push(ms);
    }
    Ok(objectives)
}

/// `[plot]`: the axes drawn as colours and marker shapes, each with no more
/// values than a plot can tell apart.
fn parse_plot(
    raw: Option<&Spanned<RawPlot>>,
    known: &KnownAxes<'_>,
    err: &ErrFn<'_>,
) -> Result<PlotSpec, InputError> {
    let Some(p) = raw else {
        return Ok(PlotSpec::default());
    };
    for (field, v, most, drawn) in [
        (
            "series",
            &p.get_ref().series,
            super::plot::MAX_SERIES,
            "colours",
        ),
        (
            "marker",
            &p.get_ref().marker,
            super::plot::MAX_MARKERS,
            "marker shapes",
        ),
    ] {
        if let Some(n) = v
            && !known.exists(n)
        {
            return Err(err(
                Some(p.span()),
                "[plot]",
                field,
                format!("names no axis `{n}`; valid: {}", known.names()),
            ));
        }
        // Every value gets its own colour or shape: no two drawn alike.
        let count = v
            .as_deref()
            .and_then(|n| known.labels(n))
            .map_or(0, |l| l.len());
        if count > most {
            return Err(err(
                Some(p.span()),
                "[plot]",
                field,
                format!(
                    "axis `{}` has {count} values, more than the {most} distinct {drawn} a plot can tell apart; valid: an axis of at most {most} values (or no `{field}`)",
                    v.as_deref().unwrap_or_default()
                ),
            ));
        }
    }
    Ok(PlotSpec {
        series: p.get_ref().series.clone(),
        marker: p.get_ref().marker.clone(),
    })
}

/// The `[[budget]]` tables.
fn parse_budgets(
    raw: &[Spanned<RawBudget>],
    known: &KnownAxes<'_>,
    err: &ErrFn<'_>,
) -> Result<Vec<BudgetTable>, InputError> {
    let mut budgets = Vec::new();
    for (k, b) in raw.iter().enumerate() {
        let ctx = format!("[[budget]] {}", k + 1);
        let r = b.get_ref();
        let e = |field: &str, m: String| err(Some(b.span()), &ctx, field, m);
        let budget = Metric::parse(&r.metric).map_err(|m| e("metric", m))?;
        if r.limits.is_empty()
            || r.limits.iter().any(|x| !x.is_finite())
            || r.limits.windows(2).any(|w| w[0] >= w[1])
        {
            return Err(e(
                "limits",
                format!(
                    "is {:?}; valid: one or more finite numbers, ascending",
                    r.limits
                ),
            ));
        }
        let objectives: Vec<Metric> = r
            .objectives
            .iter()
            .map(|n| Metric::parse(n))
            .collect::<Result<_, _>>()
            .map_err(|m| e("objectives", m))?;
        if objectives.is_empty() {
            return Err(e(
                "objectives",
                "is empty; valid: e.g. [\"tops\", \"tops_per_w\"]".to_string(),
            ));
        }
        budgets.push(BudgetTable {
            budget,
            limits: r.limits.clone(),
            objectives,
            baseline: budget_baseline(&r.baseline, known, &e)?,
            title: r
                .title
                .clone()
                .unwrap_or_else(|| format!("best point per {budget} budget")),
        });
    }
    Ok(budgets)
}

/// A budget table's `baseline`: axis name to one label or a list of them,
/// each a value label of that axis.
fn budget_baseline(
    raw: &toml::Table,
    known: &KnownAxes<'_>,
    e: &dyn Fn(&str, String) -> InputError,
) -> Result<Vec<(String, Vec<String>)>, InputError> {
    let mut baseline = Vec::new();
    for (axis, v) in raw {
        let labels: Vec<String> = match v {
            Value::String(s) => vec![s.clone()],
            Value::Array(a) => a
                .iter()
                .map(|x| match x {
                    Value::String(s) => s.clone(),
                    other => value_label(other),
                })
                .collect(),
            other => vec![value_label(other)],
        };
        let Some(valid) = known.labels(axis) else {
            return Err(e(
                "baseline",
                format!("names no axis `{axis}`; valid: {}", known.names()),
            ));
        };
        if let Some(l) = labels.iter().find(|l| !valid.contains(l)) {
            return Err(e(
                "baseline",
                format!(
                    "axis `{axis}` has no value labelled `{l}`; valid: {}",
                    valid.join(", ")
                ),
            ));
        }
        baseline.push((axis.clone(), labels));
    }
    Ok(baseline)
}

/// The `[[compare]]` tables.
fn parse_compares(
    raw: &[Spanned<RawCompare>],
    known: &KnownAxes<'_>,
    err: &ErrFn<'_>,
) -> Result<Vec<CompareTable>, InputError> {
    let mut compares = Vec::new();
    for (k, c) in raw.iter().enumerate() {
        let ctx = format!("[[compare]] {}", k + 1);
        let r = c.get_ref();
        let e = |field: &str, m: String| err(Some(c.span()), &ctx, field, m);
        let Some(valid) = known.labels(&r.axis) else {
            return Err(e(
                "axis",
                format!("names no axis `{}`; valid: {}", r.axis, known.names()),
            ));
        };
        if !valid.contains(&r.baseline) {
            return Err(e(
                "baseline",
                format!(
                    "axis `{}` has no value labelled `{}`; valid: {}",
                    r.axis,
                    r.baseline,
                    valid.join(", ")
                ),
            ));
        }
        let metrics: Vec<Metric> = r
            .metrics
            .iter()
            .map(|n| Metric::parse(n))
            .collect::<Result<_, _>>()
            .map_err(|m| e("metrics", m))?;
        if metrics.is_empty() {
            return Err(e(
                "metrics",
                "is empty; valid: e.g. [\"energy_pj\"]".to_string(),
            ));
        }
        compares.push(CompareTable {
            axis: r.axis.clone(),
            baseline: r.baseline.clone(),
            metrics,
            title: r
                .title
                .clone()
                .unwrap_or_else(|| format!("{} against {} = {}", r.axis, r.axis, r.baseline)),
        });
    }
    Ok(compares)
}

fn axis_labels_of(
    axes: &[Axis],
    workloads: &Spanned<Vec<String>>,
    name: &str,
) -> Option<Vec<String>> {
    if name == "workload" {
        return Some(workloads.get_ref().clone());
    }
    axes.iter()
        .find(|a| a.name == name)
        .map(|a| a.values.iter().map(|v| v.label.clone()).collect())
}

/// The label of a scalar value: strings bare, numbers as Rust prints them
/// (shortest round-trip form), so `108.0` is `108`.
pub fn value_label(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Integer(i) => i.to_string(),
        Value::Float(f) => f.to_string(),
        Value::Boolean(b) => b.to_string(),
        other => canonical(other),
    }
}

/// A value's canonical text for point keys: JSON, with integers and floats
/// distinct (`108` vs `108.0`) and table keys sorted.
pub fn canonical(v: &Value) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| format!("{v:?}"))
}

type ErrFn<'a> = dyn Fn(Option<Range<usize>>, &str, &str, String) -> InputError + 'a;

fn parse_axis(
    a: &Spanned<RawAxis>,
    seed: u64,
    ctx: &str,
    err: &ErrFn<'_>,
) -> Result<Axis, InputError> {
    let r = a.get_ref();
    let span = Some(a.span());
    let path = match &r.path {
        Some(p) => {
            Some(AxisPath::parse(p.get_ref()).map_err(|m| err(Some(p.span()), ctx, "path", m))?)
        }
        None => None,
    };
    let given = [r.values.is_some(), r.range.is_some(), r.random.is_some()]
        .iter()
        .filter(|&&b| b)
        .count();
    if given != 1 {
        return Err(err(
            span,
            ctx,
            "values",
            "give exactly one of `values`, `range` or `random`".to_string(),
        ));
    }
    let mut values = match &r.values {
        Some(vs) => listed_values(vs, path.as_ref(), span.clone(), ctx, err)?,
        None => generated_values(r, path.as_ref(), seed, span.clone(), ctx, err)?,
    };
    if let Some(ls) = &r.labels {
        if ls.get_ref().len() != values.len() {
            return Err(err(
                Some(ls.span()),
                ctx,
                "labels",
                format!(
                    "has {} labels for {} values; valid: one label per value",
                    ls.get_ref().len(),
                    values.len()
                ),
            ));
        }
        for (v, l) in values.iter_mut().zip(ls.get_ref()) {
            v.label = l.clone();
        }
    }
    let mut seen = BTreeSet::new();
    if let Some(v) = values.iter().find(|v| !seen.insert(v.label.as_str())) {
        return Err(err(
            span,
            ctx,
            "values",
            format!(
                "two values are labelled `{}`; valid: distinct values (or distinct `labels`)",
                v.label
            ),
        ));
    }
    let name = axis_column(r, path.as_ref(), span, ctx, err)?;
    Ok(Axis { name, values })
}

/// An axis's `values` list: scalars set the axis's `path`; tables set the
/// paths they name (and may carry a `label`).
fn listed_values(
    vs: &Spanned<Vec<Value>>,
    path: Option<&AxisPath>,
    span: Option<Range<usize>>,
    ctx: &str,
    err: &ErrFn<'_>,
) -> Result<Vec<AxisValue>, InputError> {
    if vs.get_ref().is_empty() {
        return Err(err(
            Some(vs.span()),
            ctx,
            "values",
            "is empty; valid: one or more values".to_string(),
        ));
    }
    let mut values = Vec::new();
    for v in vs.get_ref() {
        match (v, path) {
            (Value::Table(t), _) => values.push(table_value(t, vs.span(), ctx, err)?),
            (_, Some(p)) => values.push(AxisValue {
                label: value_label(v),
                settings: vec![(p.clone(), v.clone())],
            }),
            (_, None) => {
                return Err(err(
                    span,
                    ctx,
                    "path",
                    "is missing; valid: a dotted path such as `arch.pe_array.rows` \
                     (or table values that each name their paths)"
                        .to_string(),
                ));
            }
        }
    }
    Ok(values)
}

/// One table value of an axis: `{ label = "A", "arch.x.y" = v, ... }`; the
/// label defaults to the set values joined by `/`.
fn table_value(
    t: &toml::Table,
    span: Range<usize>,
    ctx: &str,
    err: &ErrFn<'_>,
) -> Result<AxisValue, InputError> {
    let mut label = None;
    let mut settings = Vec::new();
    for (k, x) in t {
        if k == "label" {
            label = Some(value_label(x));
            continue;
        }
        let p = AxisPath::parse(k).map_err(|m| err(Some(span.clone()), ctx, "values", m))?;
        settings.push((p, x.clone()));
    }
    if settings.is_empty() {
        return Err(err(
            Some(span),
            ctx,
            "values",
            "a table value sets no path; valid: e.g. { label = \"A\", \"arch.backend.nvdla\" = \"A\" }"
                .to_string(),
        ));
    }
    let label = label.unwrap_or_else(|| {
        settings
            .iter()
            .map(|(_, x)| value_label(x))
            .collect::<Vec<_>>()
            .join("/")
    });
    Ok(AxisValue { label, settings })
}

/// An axis's `range` or `random` values, each setting the axis's `path`.
fn generated_values(
    r: &RawAxis,
    path: Option<&AxisPath>,
    seed: u64,
    span: Option<Range<usize>>,
    ctx: &str,
    err: &ErrFn<'_>,
) -> Result<Vec<AxisValue>, InputError> {
    let Some(p) = path else {
        return Err(err(
            span,
            ctx,
            "path",
            "is missing; `range` and `random` need a dotted path".to_string(),
        ));
    };
    let generated = if let Some(rg) = &r.range {
        range_values(rg.get_ref()).map_err(|m| err(Some(rg.span()), ctx, "range", m))?
    } else if let Some(rd) = &r.random {
        let name = axis_name(r, Some(p));
        random_values(rd.get_ref(), seed, &name)
            .map_err(|m| err(Some(rd.span()), ctx, "random", m))?
    } else {
        Vec::new()
    };
    Ok(generated
        .into_iter()
        .map(|v| AxisValue {
            label: value_label(&v),
            settings: vec![(p.clone(), v)],
        })
        .collect())
}

/// The axis's CSV column name: given, or derived from its path.
fn axis_column(
    r: &RawAxis,
    path: Option<&AxisPath>,
    span: Option<Range<usize>>,
    ctx: &str,
    err: &ErrFn<'_>,
) -> Result<String, InputError> {
    let name = axis_name(r, path);
    if name.is_empty() {
        return Err(err(
            span,
            ctx,
            "name",
            "is missing; valid: a column name (needed when values are tables)".to_string(),
        ));
    }
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(err(
            r.name.as_ref().map(|n| n.span()).or(span),
            ctx,
            "name",
            format!("is `{name}`; valid: letters, digits and `_` (a CSV column name)"),
        ));
    }
    Ok(name)
}

/// The axis's `name`, else the last key of its path.
fn axis_name(r: &RawAxis, path: Option<&AxisPath>) -> String {
    if let Some(n) = &r.name {
        return n.get_ref().clone();
    }
    let Some(p) = path else {
        return String::new();
    };
    match &p.target {
        Target::Run(k) => k.name().to_string(),
        Target::Arch(s) | Target::Workload(s) => s
            .iter()
            .rev()
            .find_map(|x| match x {
                Segment::Key(k) => Some(k.clone()),
                _ => None,
            })
            .unwrap_or_default(),
    }
}

/// Most values a range or random axis may generate.
const MAX_AXIS_VALUES: usize = 100_000;

fn range_values(r: &RawRange) -> Result<Vec<Value>, String> {
    let num = |v: &Value, what: &str| -> Result<f64, String> {
        match v {
            Value::Integer(i) => Ok(*i as f64),
            Value::Float(f) if f.is_finite() => Ok(*f),
            other => Err(format!("`{what}` is {other}; valid: a finite number")),
        }
    };
    let (from, to) = (num(&r.from, "from")?, num(&r.to, "to")?);
    let ints = matches!(r.from, Value::Integer(_))
        && matches!(r.to, Value::Integer(_))
        && !matches!(r.step, Some(Value::Float(_)));
    let mut out = Vec::new();
    match (&r.step, r.factor) {
        (Some(step), None) => {
            let step = num(step, "step")?;
            if step <= 0.0 || from > to {
                return Err(format!(
                    "from {from} to {to} in steps of {step}; valid: from <= to and step > 0"
                ));
            }
            // Index-based so float steps do not accumulate rounding.
            let n = ((to - from) / step + 1e-9).floor() as usize + 1;
            if n > MAX_AXIS_VALUES {
                return Err(format!(
                    "gives {n} values; valid: at most {MAX_AXIS_VALUES}"
                ));
            }
            for i in 0..n {
                let x = from + step * i as f64;
                out.push(if ints {
                    Value::Integer(x.round() as i64)
                } else {
                    Value::Float(x)
                });
            }
        }
        (None, Some(factor)) => {
            if factor.is_nan() || factor <= 1.0 || from <= 0.0 || from > to {
                return Err(format!(
                    "from {from} to {to} by factor {factor}; valid: 0 < from <= to and factor > 1"
                ));
            }
            let mut x = from;
            let mut i = 0i32;
            while x <= to * (1.0 + 1e-12) {
                out.push(if ints && x.fract() == 0.0 {
                    Value::Integer(x as i64)
                } else {
                    Value::Float(x)
                });
                i += 1;
                x = from * factor.powi(i);
                if out.len() > MAX_AXIS_VALUES {
                    return Err(format!("gives more than {MAX_AXIS_VALUES} values"));
                }
            }
        }
        _ => {
            return Err(
                "give exactly one of `step` (arithmetic) or `factor` (geometric)".to_string(),
            );
        }
    }
    Ok(out)
}

/// Seeded samples: ChaCha8 seeded from the sweep seed and the axis name
/// (FNV-1a), so adding an axis does not change another axis's samples.
fn random_values(r: &RawRandom, seed: u64, axis: &str) -> Result<Vec<Value>, String> {
    use rand_chacha::ChaCha8Rng;
    use rand_chacha::rand_core::{Rng, SeedableRng};
    if !(r.min.is_finite() && r.max.is_finite() && r.min <= r.max) {
        return Err(format!(
            "min {} max {}; valid: finite with min <= max",
            r.min, r.max
        ));
    }
    if r.count < 1 || r.count as usize > MAX_AXIS_VALUES {
        return Err(format!("count {}; valid: 1 to {MAX_AXIS_VALUES}", r.count));
    }
    if r.log && r.min <= 0.0 {
        return Err("`log` sampling needs min > 0".to_string());
    }
    if r.integer && (r.max.floor() - r.min.ceil() + 1.0) < r.count as f64 {
        return Err(format!(
            "{} distinct integers cannot be drawn from {} to {}",
            r.count, r.min, r.max
        ));
    }
    let mut h = fnv::FnvHasher::default();
    std::hash::Hasher::write(&mut h, axis.as_bytes());
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ std::hash::Hasher::finish(&h));
    let mut out: Vec<Value> = Vec::new();
    let mut seen = BTreeSet::new();
    let mut tries = 0usize;
    while out.len() < r.count as usize {
        tries += 1;
        if tries > 1000 * MAX_AXIS_VALUES {
            return Err("could not draw distinct samples; widen the range".to_string());
        }
        let u = (rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64);
        let x = if r.log {
            (r.min.ln() + u * (r.max.ln() - r.min.ln())).exp()
        } else {
            r.min + u * (r.max - r.min)
        };
        let v = if r.integer {
            let i = x.round().clamp(r.min.ceil(), r.max.floor()) as i64;
            Value::Integer(i)
        } else {
            Value::Float(x)
        };
        if seen.insert(canonical(&v)) {
            out.push(v);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> Result<SweepSpec, InputError> {
        parse(text, Path::new("s.toml"))
    }

    const HEAD: &str = "[sweep]\nname = \"t\"\narch = \"lu22_fixed\"\nworkloads = [\"kws\"]\n";

    #[test]
    fn lists_ranges_and_tables() {
        let s = p(&format!(
            "{HEAD}objectives = [[\"area_mm2\", \"tops\"]]\n\
             [[axis]]\npath = \"arch.pe_array.rows\"\nvalues = [4, 8]\n\
             [[axis]]\npath = \"arch.glb.capacity_kib\"\nrange = {{ from = 32, to = 128, factor = 2 }}\n\
             [[axis]]\nname = \"backend\"\nvalues = [{{ label = \"A\", \"arch.backend.kind\" = \"nvdla\", \"arch.backend.nvdla\" = \"A\" }}]\n"
        ))
        .unwrap();
        assert_eq!(s.point_count(), 2 * 3);
        assert_eq!(s.axes[0].name, "rows");
        assert_eq!(s.axes[1].name, "capacity_kib");
        let labels: Vec<&str> = s.axes[1].values.iter().map(|v| v.label.as_str()).collect();
        assert_eq!(labels, ["32", "64", "128"]);
        assert_eq!(s.axes[2].values[0].settings.len(), 2);
        assert_eq!(s.objectives, vec![vec![Metric::AreaMm2, Metric::Tops]]);
    }

    #[test]
    fn random_is_seeded_and_distinct() {
        let spec = |seed: u32| {
            p(&format!(
                "{HEAD}seed = {seed}\n[[axis]]\npath = \"workload.defaults.weights.sparsity\"\nrandom = {{ min = 0.0, max = 0.9, count = 4 }}\n"
            ))
            .unwrap()
        };
        assert_eq!(spec(3), spec(3));
        assert_ne!(spec(3).axes, spec(4).axes);
        let ints = p(&format!(
            "{HEAD}[[axis]]\npath = \"arch.pe_array.rows\"\nrandom = {{ min = 1, max = 4, count = 4, integer = true }}\n"
        ))
        .unwrap();
        let mut got: Vec<String> = ints.axes[0]
            .values
            .iter()
            .map(|v| v.label.clone())
            .collect();
        got.sort();
        assert_eq!(got, ["1", "2", "3", "4"]);
    }

    #[test]
    fn errors_name_line_field_and_valid() {
        let e = p(&format!("{HEAD}constraints = [\"area <= 4\"]\n")).unwrap_err();
        assert!(e.to_string().contains("s.toml:5"), "{e}");
        assert!(e.to_string().contains("valid: area_mm2"), "{e}");
        let e = p(&format!(
            "{HEAD}objectives = [[\"area_mm2\", \"accuracy_drop\"]]\n"
        ))
        .unwrap_err();
        assert!(e.to_string().contains("precision"), "{e}");
        assert!(
            p(&format!(
                "{HEAD}[[axis]]\npath = \"run.precision\"\nvalues = [\"8x8\"]\n"
            ))
            .is_ok()
        );
        let e = p(&format!(
            "{HEAD}[[axis]]\npath = \"pe_array.rows\"\nvalues = [1]\n"
        ))
        .unwrap_err();
        assert!(e.to_string().contains("must start with `arch.`"), "{e}");
        let e = p(&format!(
            "{HEAD}[[axis]]\npath = \"arch.pe_array.rows\"\nvalues = [1, 1]\n"
        ))
        .unwrap_err();
        assert!(e.to_string().contains("labelled `1`"), "{e}");
        let e = p(&format!("{HEAD}[plot]\nseries = \"nope\"\n")).unwrap_err();
        assert!(e.to_string().contains("valid: workload"), "{e}");
    }

    /// Each table's validator refuses with its own field and what is valid.
    #[test]
    fn each_table_refuses_naming_its_field() {
        let axis = "[[axis]]\npath = \"arch.pe_array.rows\"\nvalues = [12, 13]\n";
        let cases: [(String, &str); 9] = [
            (
                HEAD.replace("\"t\"", "\"a b\""),
                "is `a b`; valid: letters, digits",
            ),
            (
                HEAD.replace("[\"kws\"]", "[\"kws\", \"kws\"]"),
                "names `kws` twice; valid: distinct workloads",
            ),
            (format!("{HEAD}seed = -1\n"), "is -1; valid: 0 or more"),
            (
                format!("{HEAD}{axis}name = \"cycles\"\n"),
                "`cycles` is a column of every sweep row",
            ),
            (
                format!("{HEAD}{axis}name = \"r\"\n{axis}name = \"r\"\n"),
                "`r` names an earlier axis too",
            ),
            (
                format!("{HEAD}objectives = [[\"tops\", \"tops\"]]\n"),
                "is not a pair or triple of distinct metrics",
            ),
            (
                format!(
                    "{HEAD}[[budget]]\nmetric = \"area_mm2\"\nlimits = [2.0, 1.0]\nobjectives = [\"tops\"]\n"
                ),
                "is [2.0, 1.0]; valid: one or more finite numbers, ascending",
            ),
            (
                format!(
                    "{HEAD}{axis}name = \"r\"\n[[budget]]\nmetric = \"area_mm2\"\nlimits = [1.0]\nobjectives = [\"tops\"]\nbaseline = {{ r = [12, 14] }}\n"
                ),
                "axis `r` has no value labelled `14`; valid: 12, 13",
            ),
            (
                format!(
                    "{HEAD}[[compare]]\naxis = \"workload\"\nbaseline = \"fer\"\nmetrics = [\"energy_pj\"]\n"
                ),
                "axis `workload` has no value labelled `fer`; valid: kws",
            ),
        ];
        for (text, want) in cases {
            let e = p(&text).expect_err(&text).to_string();
            assert!(e.contains(want), "{text}\n{e}");
            assert!(e.contains("s.toml"), "{e}");
        }
    }
}
