//! The design space of a spec: the base files resolved, the points
//! enumerated, and one point turned into an architecture, a workload and
//! run options (docs/sweeps.md, "Points").
//!
//! Points are numbered in a fixed order (workloads outermost, then the axes
//! as written, the last axis fastest), computed from the index alone, so a
//! shard needs no list of the others. Each point also has a key: FNV-1a
//! (64 bit, specified independently of Rust's hasher) of a canonical text
//! naming the base architecture's and workload's contents and every
//! setting. The key, not the index, is what `--resume` and `merge` trust:
//! it survives reordering axes, and it changes when a base file changes.
//!
//! Axes edit the raw TOML before validation, so an impossible combination
//! is an ordinary validation error, recorded as that point's reason.

use std::collections::{BTreeMap, HashMap};
use std::hash::Hasher;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use toml::Value;

use super::spec::{AxisPath, RunKey, Segment, SweepSpec, Target, canonical};
use crate::arch::Arch;
use crate::error::{Error, InputError};
use crate::run::RunOptions;
use crate::workload::Workload;

/// A workload of the spec, resolved.
#[derive(Debug, Clone)]
pub struct WorkloadSource {
    /// As the spec writes it (the `workload` column).
    pub name: String,
    pub path: PathBuf,
    pub variant: Option<String>,
    /// The parsed TOML, for `workload.*` axes (`None` for .onnx and .csv).
    pub table: Option<toml::Table>,
    /// FNV-1a of the file's bytes.
    pub fingerprint: u64,
}

/// One point of the space.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Point {
    /// Position in the sweep's fixed order.
    pub index: usize,
    /// Stable identity (16 hex digits).
    pub key: String,
    pub workload: usize,
    /// Value index per axis.
    pub values: Vec<usize>,
}

type Loaded = Arc<OnceLock<Result<Arc<Workload>, String>>>;

/// A spec with its files read.
#[derive(Debug)]
pub struct Plan {
    pub spec: SweepSpec,
    pub arch_path: PathBuf,
    pub arch_table: toml::Table,
    arch_fingerprint: u64,
    pub workloads: Vec<WorkloadSource>,
    /// Loaded workloads by (source, edited text): each loads once, whichever
    /// worker needs it first.
    cache: Mutex<HashMap<u64, Loaded>>,
}

/// FNV-1a, 64 bit.
pub fn fnv64(bytes: &[u8]) -> u64 {
    let mut h = fnv::FnvHasher::default();
    h.write(bytes);
    h.finish()
}

/// `name` as a path relative to `dir` if that exists, else the shipped
/// name or path (`home::resolve`).
fn resolve(name: &str, dir: &Path, kind: &str, what: &str) -> Result<PathBuf, InputError> {
    let relative = dir.join(name);
    if !Path::new(name).is_absolute() && relative.is_file() {
        return Ok(relative);
    }
    crate::home::resolve(name, kind, what)
}

fn read_bytes(path: &Path, what: &str) -> Result<Vec<u8>, InputError> {
    std::fs::read(path).map_err(|e| InputError::new(path, format!("cannot read the {what}: {e}")))
}

impl Plan {
    /// Reads the base architecture and workloads of `spec`. Names resolve
    /// against the spec's directory first, then as shipped names.
    pub fn new(spec: SweepSpec) -> Result<Plan, InputError> {
        let dir = spec
            .path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        let arch_path = resolve(&spec.arch, &dir, "arch_configs", "[sweep] arch")?;
        let arch_bytes = read_bytes(&arch_path, "architecture file")?;
        let arch_text = String::from_utf8_lossy(&arch_bytes);
        let arch_table: toml::Table = toml::from_str(&arch_text)
            .map_err(|e| crate::error::from_toml(&arch_path, &arch_text, &e, &|_| None))?;
        let mut workloads = Vec::new();
        for w in &spec.workloads {
            let (name, variant) = match dir.join(w).is_file() || Path::new(w).is_file() {
                true => (w.as_str(), None),
                false => match w.rsplit_once(':') {
                    Some((n, v)) if !n.is_empty() && !v.is_empty() => (n, Some(v.to_string())),
                    _ => (w.as_str(), None),
                },
            };
            let path = resolve(name, &dir, "workloads", "[sweep] workloads")?;
            let bytes = read_bytes(&path, "workload file")?;
            let is_toml = path
                .extension()
                .is_none_or(|e| !matches!(e.to_str(), Some("onnx" | "csv")));
            let table = if is_toml {
                let text = String::from_utf8_lossy(&bytes);
                Some(
                    toml::from_str::<toml::Table>(&text)
                        .map_err(|e| crate::error::from_toml(&path, &text, &e, &|_| None))?,
                )
            } else {
                None
            };
            if table.is_none() {
                let uses_workload_axis = spec.axes.iter().any(|a| {
                    a.values.iter().any(|v| {
                        v.settings
                            .iter()
                            .any(|(p, _)| matches!(p.target, Target::Workload(_)))
                    })
                });
                if uses_workload_axis {
                    return Err(InputError::new(
                        &spec.path,
                        format!(
                            "workload `{w}` is not a TOML workload, so `workload.*` axes cannot \
                             edit it; valid: TOML workloads only in a sweep with workload axes"
                        ),
                    ));
                }
            }
            workloads.push(WorkloadSource {
                name: w.clone(),
                path,
                variant,
                table,
                fingerprint: fnv64(&bytes),
            });
        }
        Ok(Plan {
            arch_fingerprint: fnv64(&arch_bytes),
            spec,
            arch_path,
            arch_table,
            workloads,
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// Number of points.
    pub fn len(&self) -> usize {
        self.spec.point_count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The point at `index` (< `len()`).
    pub fn point(&self, index: usize) -> Point {
        let mut rest = index;
        let mut values = vec![0; self.spec.axes.len()];
        for (k, axis) in self.spec.axes.iter().enumerate().rev() {
            let n = axis.values.len().max(1);
            values[k] = rest % n;
            rest /= n;
        }
        let workload = rest;
        let key = self.key(workload, &values);
        Point {
            index,
            key,
            workload,
            values,
        }
    }

    /// The settings of a point, later axes overriding earlier ones.
    pub fn settings(&self, values: &[usize]) -> Vec<(&AxisPath, &Value)> {
        let mut out = Vec::new();
        for (axis, &v) in self.spec.axes.iter().zip(values) {
            if let Some(value) = axis.values.get(v) {
                for (p, x) in &value.settings {
                    out.push((p, x));
                }
            }
        }
        out
    }

    /// The labels of a point, one per axis.
    pub fn labels(&self, point: &Point) -> Vec<String> {
        self.spec
            .axes
            .iter()
            .zip(&point.values)
            .map(|(a, &v)| a.values.get(v).map(|x| x.label.clone()).unwrap_or_default())
            .collect()
    }

    fn key(&self, workload: usize, values: &[usize]) -> String {
        let mut effective: BTreeMap<&str, String> = BTreeMap::new();
        for (p, x) in self.settings(values) {
            effective.insert(p.text.as_str(), canonical(x));
        }
        let w = &self.workloads[workload.min(self.workloads.len().saturating_sub(1))];
        let mut text = format!(
            "accsim-sweep-point/1\narch {:016x}\nworkload {:016x} {}\n",
            self.arch_fingerprint,
            w.fingerprint,
            w.variant.as_deref().unwrap_or("")
        );
        for (p, x) in effective {
            text.push_str(p);
            text.push_str(" = ");
            text.push_str(&x);
            text.push('\n');
        }
        format!("{:016x}", fnv64(text.as_bytes()))
    }

    /// The architecture of a point, or why it is impossible.
    pub fn arch(&self, point: &Point) -> Result<Arch, String> {
        let mut table = self.arch_table.clone();
        for (p, x) in self.settings(&point.values) {
            if let Target::Arch(segs) = &p.target {
                apply_arch(&mut table, segs, x).map_err(|m| format!("{}: {m}", p.text))?;
            }
        }
        let text = toml::to_string(&table).map_err(|e| format!("cannot write the arch: {e}"))?;
        crate::arch::load_str(&text, &self.arch_path).map_err(|e| reason(&e, "arch"))
    }

    /// The workload of a point (loaded once per distinct edited text).
    pub fn workload(&self, point: &Point) -> Result<Arc<Workload>, String> {
        let source = self
            .workloads
            .get(point.workload)
            .ok_or_else(|| format!("no workload {}", point.workload))?;
        let edited = match &source.table {
            Some(t) => {
                let mut table = t.clone();
                let mut changed = false;
                for (p, x) in self.settings(&point.values) {
                    if let Target::Workload(segs) = &p.target {
                        set(&mut table, segs, x).map_err(|m| format!("{}: {m}", p.text))?;
                        changed = true;
                    }
                }
                changed
                    .then(|| toml::to_string(&table))
                    .transpose()
                    .map_err(|e| format!("cannot write the workload: {e}"))?
            }
            None => None,
        };
        let id = {
            let mut h = fnv::FnvHasher::default();
            h.write_u64(source.fingerprint);
            h.write_usize(point.workload);
            if let Some(t) = &edited {
                h.write(t.as_bytes());
            }
            h.finish()
        };
        let cell = {
            let mut cache = self
                .cache
                .lock()
                .map_err(|_| "workload cache poisoned by a failed load".to_string())?;
            cache.entry(id).or_default().clone()
        };
        let loaded = cell.get_or_init(|| {
            let variant = source.variant.as_deref();
            let result = match &edited {
                Some(text) => crate::workload::load_str(text, &source.path, variant),
                None => match &source.table {
                    Some(_) => crate::workload::load_file(&source.path, variant),
                    None => crate::workload::load(&source.path.display().to_string()),
                },
            };
            result.map(Arc::new).map_err(|e| reason(&e, "workload"))
        });
        loaded.clone()
    }

    /// The run options of a point (on `workload`, which some options need:
    /// a precision assignment has one entry per weighted layer).
    pub fn options(&self, point: &Point, workload: &Workload) -> Result<RunOptions, String> {
        let mut options = RunOptions {
            check: self.spec.check,
            ..RunOptions::default()
        };
        for (p, x) in self.settings(&point.values) {
            if let Target::Run(k) = &p.target {
                apply_run(&mut options, *k, x, &workload.network)
                    .map_err(|m| format!("{}: {m}", p.text))?;
            }
        }
        Ok(options)
    }
}

/// A `run.precision` value for `network`: a per-network mode (`8x16`: every
/// weighted layer in that mode, the output as wide as the inputs, PELUSO's
/// per-network alternatives) or a full assignment (`16x16,8x8/16`, one mode
/// per weighted layer and the output width; docs/precision.md).
pub fn precision_for(
    text: &str,
    network: &crate::workload::Network,
) -> Result<crate::numerics::precision::PrecisionAssignment, String> {
    let layers = crate::reference::precision::weighted_layers(network).len();
    crate::numerics::precision::PrecisionAssignment::from_spec(text, layers)
}

/// Sets one run option.
fn apply_run(
    options: &mut RunOptions,
    key: RunKey,
    x: &Value,
    network: &crate::workload::Network,
) -> Result<(), String> {
    let count = |x: &Value| -> Result<u32, String> {
        match x {
            Value::Integer(i) if (1..=i64::from(u32::MAX)).contains(i) => Ok(*i as u32),
            other => Err(format!("is {other}; valid: a whole number from 1")),
        }
    };
    match key {
        RunKey::FfeTap => options.ffe_tap = Some(count(x)?),
        RunKey::Frames => options.stream_frames = Some(count(x)?),
        RunKey::Objective => {
            let valid = crate::engine::Objective::ALL.map(|o| format!("\"{}\"", o.name()));
            options.search.objective = match x {
                Value::String(text) => text.parse()?,
                other => return Err(format!("is {other}; valid: {}", valid.join(", "))),
            }
        }
        RunKey::Precision => match x {
            Value::String(text) => options.precision = Some(precision_for(text, network)?),
            other => {
                return Err(format!(
                    "is {other}; valid: a string such as \"8x16\" or \"16x16,8x8/16\""
                ));
            }
        },
    }
    Ok(())
}

/// An arch edit. FIXYNN counts "0 fixed layers" as a fully programmable
/// machine, which the arch format spells as no `[ffe]` section (its
/// `fixed_layers` starts at 1): `arch.ffe.fixed_layers = 0` removes it.
fn apply_arch(table: &mut toml::Table, segs: &[Segment], x: &Value) -> Result<(), String> {
    if let [Segment::Key(a), Segment::Key(b)] = segs
        && a == "ffe"
        && b == "fixed_layers"
        && *x == Value::Integer(0)
    {
        table.remove("ffe");
        return Ok(());
    }
    set(table, segs, x)
}

/// Sets `segs` in `table` to `x`, creating missing tables; `*` sets every
/// element of an array.
pub fn set(table: &mut toml::Table, segs: &[Segment], x: &Value) -> Result<(), String> {
    let Some((first, rest)) = segs.split_first() else {
        return Err("empty path".to_string());
    };
    let Segment::Key(k) = first else {
        return Err("the first segment must be a key".to_string());
    };
    if rest.is_empty() {
        table.insert(k.clone(), x.clone());
        return Ok(());
    }
    let child = table
        .entry(k.clone())
        .or_insert_with(|| Value::Table(toml::Table::new()));
    set_value(child, rest, x, k)
}

fn set_value(v: &mut Value, segs: &[Segment], x: &Value, at: &str) -> Result<(), String> {
    let Some((first, rest)) = segs.split_first() else {
        *v = x.clone();
        return Ok(());
    };
    match (first, v) {
        (Segment::Key(_), Value::Table(t)) => set(t, segs, x),
        (Segment::Index(i), Value::Array(a)) => {
            let n = a.len();
            let e = a.get_mut(*i).ok_or_else(|| {
                format!(
                    "`{at}` has {n} elements; valid index: 0 to {}",
                    n.saturating_sub(1)
                )
            })?;
            set_value(e, rest, x, at)
        }
        (Segment::All, Value::Array(a)) => {
            for e in a.iter_mut() {
                set_value(e, rest, x, at)?;
            }
            Ok(())
        }
        (Segment::Key(k), _) => Err(format!("`{at}` is not a table, so it has no `{k}`")),
        (_, _) => Err(format!("`{at}` is not an array; valid: a key")),
    }
}

/// An error's text for a point's reason: the file's own line numbers do not
/// apply to an edited copy, so they are left out.
fn reason(e: &Error, what: &str) -> String {
    match e {
        Error::Input(ie) => {
            let mut ie = ie.as_ref().clone();
            ie.line_column = None;
            let file = ie.file.display().to_string();
            ie.to_string()
                .strip_prefix(&format!("{file}: "))
                .map(|s| format!("{what}: {s}"))
                .unwrap_or_else(|| ie.to_string())
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sweep::spec::AxisPath;

    fn segs(p: &str) -> Vec<Segment> {
        match AxisPath::parse(p).unwrap().target {
            Target::Arch(s) | Target::Workload(s) => s,
            Target::Run(_) => panic!(),
        }
    }

    #[test]
    fn set_creates_tables_and_walks_arrays() {
        let mut t: toml::Table =
            toml::from_str("[a]\nx = 1\n[[layer]]\ns = 1\n[[layer]]\ns = 1\n").unwrap();
        set(&mut t, &segs("arch.a.y.z"), &Value::Integer(2)).unwrap();
        set(&mut t, &segs("arch.layer.1.s"), &Value::Integer(3)).unwrap();
        set(&mut t, &segs("arch.layer.*.k"), &Value::Integer(5)).unwrap();
        assert_eq!(t["a"]["y"]["z"].as_integer(), Some(2));
        assert_eq!(t["layer"][1]["s"].as_integer(), Some(3));
        assert_eq!(t["layer"][0]["k"].as_integer(), Some(5));
        assert!(set(&mut t, &segs("arch.layer.7.s"), &Value::Integer(0)).is_err());
        assert!(set(&mut t, &segs("arch.a.x.q"), &Value::Integer(0)).is_err());
    }

    #[test]
    fn objective_values_set_the_search_or_name_what_is_valid() {
        let w = crate::workload::load("kws_cnn_one_fstride4").unwrap();
        let mut options = RunOptions::default();
        let cycles = Value::String("cycles".to_string());
        apply_run(&mut options, RunKey::Objective, &cycles, &w.network).unwrap();
        assert_eq!(options.search.objective, crate::engine::Objective::Cycles);
        let bad = Value::String("speed".to_string());
        assert_eq!(
            apply_run(&mut options, RunKey::Objective, &bad, &w.network),
            Err("unknown objective `speed`; valid: energy, cycles, edp, dram, rule".to_string())
        );
        assert_eq!(
            apply_run(
                &mut options,
                RunKey::Objective,
                &Value::Integer(1),
                &w.network
            ),
            Err("is 1; valid: \"energy\", \"cycles\", \"edp\", \"dram\", \"rule\"".to_string())
        );
    }

    #[test]
    fn precision_values_per_network_or_per_layer() {
        let w = crate::workload::load("kws_cnn_one_fstride4").unwrap();
        let a = precision_for("8x16", &w.network).unwrap();
        assert_eq!(a.to_string(), "8x16,8x16,8x16,8x16,8x16/8");
        let b = precision_for("16x16,8x8,16x16,16x16,16x16/16", &w.network).unwrap();
        assert_eq!(b.layer(1).map(|m| m.to_string()), Some("8x8".to_string()));
        assert!(precision_for("8x8/8", &w.network).is_err());
        assert!(precision_for("9x9", &w.network).is_err());
    }

    #[test]
    fn zero_fixed_layers_removes_the_ffe() {
        let mut t: toml::Table = toml::from_str("[ffe]\nfixed_layers = 4\n").unwrap();
        apply_arch(&mut t, &segs("arch.ffe.fixed_layers"), &Value::Integer(0)).unwrap();
        assert!(!t.contains_key("ffe"));
    }
}
