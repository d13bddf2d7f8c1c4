//! Running a sweep: a pool of worker threads evaluating points, one writer
//! streaming records to disk as they finish (docs/sweeps.md, "Running").
//!
//! ```text
//!   todo points ──► worker 1 ─┐  (each: arch + workload + run -> Record)
//!       (atomic  ──► worker 2 ─┼──► bounded channel ──► writer (this thread):
//!        counter) ──► worker j ─┘                        JSONL line, CSV row, fsync
//! ```
//!
//! Guarantees, and how:
//! - **No torn rows.** Each record is one `write_all` of a complete line to
//!   a file opened for appending, then `sync_data`. A kill can still cut the
//!   last write short; every reader ([`read_stream`]: `--resume`, `merge`,
//!   the final outputs) drops a last line without its newline, even one
//!   that would parse, and `--resume` rewrites the files without it.
//! - **One writer.** A stream has one writer at a time: the caller holds
//!   its lock ([`super::lock`]), so a second run on the same directory is
//!   refused instead of rewriting the stream under the first.
//! - **Resume.** The JSONL stream is the truth: on `--resume` its records
//!   whose key belongs to the current plan are kept (re-indexed to the
//!   current order), others counted as stale and dropped, the CSV is
//!   rewritten from them, and only the missing points run.
//! - **Shards.** `--shard i/N` runs the points whose index is `i` mod `N`
//!   (round robin, so cheap and dear regions of the space spread evenly),
//!   into files of its own (`points.shard-i-of-N.*`).
//! - **Determinism.** A point is simulated by one single-threaded engine,
//!   so its record does not depend on `-j`; the streams are in completion
//!   order, and the final outputs are sorted by index ([`super::output`]).

use std::collections::HashMap;
use std::fs::OpenOptions;
use std::io::Write;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use serde::{Deserialize, Serialize};

use super::record::{Metrics, Record, Status, csv_header, csv_row};
use super::space::{Plan, Point, fnv64};
use crate::atomic;
use crate::error::{Error, InputError, Result};

/// A deterministic slice of the points: those with `index % count == index`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl Shard {
    /// Parses `i/N` with `0 <= i < N`.
    pub fn parse(text: &str) -> Result<Shard, InputError> {
        let bad = || {
            InputError::new(
                "--shard",
                format!(
                    "is `{text}`; valid: I/N with 0 <= I < N, e.g. 0/4 (shards are numbered from 0)"
                ),
            )
        };
        let (i, n) = text.split_once('/').ok_or_else(bad)?;
        let (index, count): (usize, usize) = (
            i.trim().parse().map_err(|_| bad())?,
            n.trim().parse().map_err(|_| bad())?,
        );
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }

    pub fn contains(&self, index: usize) -> bool {
        index % self.count == self.index
    }
}

/// Base name of a run's stream files in the output directory.
pub fn stream_base(shard: Option<Shard>) -> String {
    match shard {
        None => "points".to_string(),
        Some(s) => format!("points.shard-{}-of-{}", s.index, s.count),
    }
}

/// What a stream was produced from (`<base>.meta.json`): `merge` checks
/// that shards agree on it and re-reads the spec text from it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamMeta {
    /// `accsim-sweep/1`.
    pub format: String,
    pub name: String,
    /// The spec file as given.
    pub spec_file: String,
    /// The spec's text, so `merge` needs nothing else.
    pub spec_text: String,
    /// FNV-1a of `spec_text` and of every point key, hex: shards of the
    /// same sweep over the same files agree on it.
    pub plan_fingerprint: String,
    pub total_points: usize,
    pub shard: Option<Shard>,
    /// Axis names in column order.
    pub axes: Vec<String>,
}

pub const FORMAT: &str = "accsim-sweep/1";

/// How to run.
#[derive(Debug, Clone)]
pub struct RunSettings {
    pub out_dir: PathBuf,
    /// Worker threads (at least 1).
    pub jobs: usize,
    pub resume: bool,
    pub shard: Option<Shard>,
}

/// What the writer reports as it goes (the CLI draws it; the library never
/// prints).
#[derive(Debug)]
pub enum Progress<'a> {
    /// `todo` points to evaluate of the slice's `total`; `resumed` already done.
    Start {
        total: usize,
        resumed: usize,
        todo: usize,
    },
    /// One more point finished (`done` of `todo`).
    Point {
        record: &'a Record,
        done: usize,
        todo: usize,
    },
}

/// The result of [`run`].
#[derive(Debug)]
pub struct RunOutcome {
    /// Every record of the slice, by index.
    pub records: Vec<Record>,
    /// Points evaluated by this run, and kept from an earlier one.
    pub evaluated: usize,
    pub resumed: usize,
    /// Records of the stream that belong to no point of this plan.
    pub stale: usize,
    /// A cut-off last line was dropped on resume.
    pub dropped_torn_line: bool,
    pub jsonl: PathBuf,
    pub csv: PathBuf,
    pub meta: StreamMeta,
}

fn io_err(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Output {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

/// A JSONL stream read back.
#[derive(Debug, Default)]
pub struct StreamRead {
    pub records: Vec<Record>,
    /// The last line had no newline (a write cut short) and was dropped.
    pub torn: bool,
    /// Complete lines that did not parse (dropped).
    pub unreadable: usize,
}

/// Reads a JSONL stream, dropping a torn last line.
pub fn read_stream(path: &Path) -> Result<StreamRead> {
    let bytes = std::fs::read(path).map_err(|e| {
        Error::from(InputError::new(
            path,
            format!("cannot read the sweep stream: {e}"),
        ))
    })?;
    let mut out = StreamRead::default();
    let mut lines: Vec<&[u8]> = bytes.split(|&b| b == b'\n').collect();
    // After the last newline: empty when the file ends cleanly.
    if let Some(last) = lines.pop()
        && !last.is_empty()
    {
        out.torn = true;
    }
    for line in lines {
        if line.is_empty() {
            continue;
        }
        match std::str::from_utf8(line)
            .map_err(|e| e.to_string())
            .and_then(Record::from_json)
        {
            Ok(r) => out.records.push(r),
            Err(_) => out.unreadable += 1,
        }
    }
    Ok(out)
}

/// Evaluates one point. Never fails: whatever goes wrong becomes the
/// record's status and reason (a panic in the simulator included).
pub fn evaluate(plan: &Plan, point: &Point) -> Record {
    let labels = plan.labels(point);
    let axes = plan
        .spec
        .axes
        .iter()
        .zip(labels)
        .map(|(a, l)| (a.name.clone(), l))
        .collect();
    let mut record = Record {
        index: point.index,
        key: point.key.clone(),
        status: Status::Ok,
        workload: plan
            .workloads
            .get(point.workload)
            .map(|w| w.name.clone())
            .unwrap_or_default(),
        axes,
        metrics: None,
        reason: None,
    };
    let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| simulate(plan, point)));
    match outcome {
        Ok(Ok(metrics)) => {
            let violated: Vec<String> = plan
                .spec
                .constraints
                .iter()
                .filter_map(|c| {
                    let x = metrics.get(c.metric)?;
                    (!c.op.holds(x, c.bound))
                        .then(|| format!("{} = {x} violates `{}`", c.metric, c.text))
                })
                .collect();
            if !violated.is_empty() {
                record.status = Status::Infeasible;
                record.reason = Some(violated.join("; "));
            }
            record.metrics = Some(metrics);
        }
        Ok(Err((status, reason))) => {
            record.status = status;
            record.reason = Some(reason);
        }
        Err(payload) => {
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_string());
            record.status = Status::Error;
            record.reason = Some(format!("simulator panicked: {message}"));
        }
    }
    record
}

fn simulate(plan: &Plan, point: &Point) -> Result<Metrics, (Status, String)> {
    let invalid = |m: String| (Status::Invalid, m);
    let arch = plan.arch(point).map_err(invalid)?;
    let workload = plan.workload(point).map_err(invalid)?;
    let options = plan.options(point, &workload).map_err(invalid)?;
    match crate::run::run(&workload, &arch, &options) {
        Ok(result) => Ok(Metrics::from_report(&result.report)),
        Err(Error::Input(e)) => {
            let mut e = *e;
            e.line_column = None;
            Err((Status::Invalid, e.to_string()))
        }
        Err(e) => Err((Status::Error, e.to_string())),
    }
}

/// The plan's fingerprint: the spec text and every point's key.
pub fn plan_fingerprint(plan: &Plan, spec_text: &str) -> String {
    let mut text = String::from(spec_text);
    for i in 0..plan.len() {
        text.push('\n');
        text.push_str(&plan.point(i).key);
    }
    format!("{:016x}", fnv64(text.as_bytes()))
}

/// Runs the plan's points (the shard's slice) into `settings.out_dir`.
/// `spec_text` is stored beside the streams for `merge`. The caller holds
/// the directory's [`super::lock::SweepLock`] for this stream (and keeps it
/// while it writes the final outputs).
pub fn run(
    plan: &Plan,
    spec_text: &str,
    settings: &RunSettings,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<RunOutcome> {
    let dir = &settings.out_dir;
    std::fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
    let base = stream_base(settings.shard);
    let jsonl = dir.join(format!("{base}.jsonl"));
    let csv = dir.join(format!("{base}.csv"));
    let meta_path = dir.join(format!("{base}.meta.json"));
    let axes: Vec<String> = plan.spec.axes.iter().map(|a| a.name.clone()).collect();

    let slice: Vec<Point> = (0..plan.len())
        .filter(|&i| settings.shard.is_none_or(|s| s.contains(i)))
        .map(|i| plan.point(i))
        .collect();
    let earlier = read_earlier(&jsonl, &slice, settings.resume)?;
    // (Re)write the streams: what was kept, by index; a fresh run starts
    // them empty, with the CSV header.
    let mut jtext = String::new();
    let mut ctext = csv_header(&axes);
    for r in &earlier.kept {
        jtext.push_str(&r.json_line());
        ctext.push_str(&csv_row(r, &axes));
    }
    atomic::write(&jsonl, jtext.as_bytes())?;
    atomic::write(&csv, ctext.as_bytes())?;
    let meta = StreamMeta {
        format: FORMAT.to_string(),
        name: plan.spec.name.clone(),
        spec_file: plan.spec.path.display().to_string(),
        spec_text: spec_text.to_string(),
        plan_fingerprint: plan_fingerprint(plan, spec_text),
        total_points: plan.len(),
        shard: settings.shard,
        axes: axes.clone(),
    };
    let meta_text = serde_json::to_string_pretty(&meta).map_err(|e| io_err(&meta_path, e))?;
    atomic::write(&meta_path, (meta_text + "\n").as_bytes())?;

    let done_keys: std::collections::HashSet<&str> =
        earlier.kept.iter().map(|r| r.key.as_str()).collect();
    let todo: Vec<&Point> = slice
        .iter()
        .filter(|p| !done_keys.contains(p.key.as_str()))
        .collect();
    let resumed = earlier.kept.len();
    progress(Progress::Start {
        total: slice.len(),
        resumed,
        todo: todo.len(),
    });
    let streams = Streams {
        jsonl: &jsonl,
        csv: &csv,
        axes: &axes,
    };
    let fresh = evaluate_into(plan, &todo, settings.jobs, &streams, progress)?;
    let evaluated = fresh.len();
    let mut records = earlier.kept;
    records.extend(fresh);
    records.sort_by_key(|r| r.index);
    Ok(RunOutcome {
        records,
        evaluated,
        resumed,
        stale: earlier.stale,
        dropped_torn_line: earlier.torn,
        jsonl,
        csv,
        meta,
    })
}

/// What an earlier run's stream leaves for this one.
struct Earlier {
    /// Records of this slice's points, one per key, by index.
    kept: Vec<Record>,
    /// Records of no point of this slice (or repeated), and unreadable lines.
    stale: usize,
    /// Whether the stream ended in a torn line (dropped).
    torn: bool,
}

/// Reads an earlier run's `jsonl` stream when `resume` is set; without it an
/// existing stream is refused.
fn read_earlier(jsonl: &Path, slice: &[Point], resume: bool) -> Result<Earlier> {
    let mut earlier = Earlier {
        kept: Vec::new(),
        stale: 0,
        torn: false,
    };
    if !jsonl.exists() {
        return Ok(earlier);
    }
    if !resume {
        return Err(InputError::new(
            jsonl,
            "exists from an earlier run; valid: --resume to continue it, or another --out \
             (or delete the directory to start again)",
        )
        .into());
    }
    let by_key: HashMap<&str, &Point> = slice.iter().map(|p| (p.key.as_str(), p)).collect();
    let mut kept: HashMap<String, Record> = HashMap::new();
    let read = read_stream(jsonl)?;
    earlier.torn = read.torn;
    earlier.stale += read.unreadable;
    for mut r in read.records {
        match by_key.get(r.key.as_str()) {
            Some(p) if !kept.contains_key(&r.key) => {
                r.index = p.index;
                kept.insert(r.key.clone(), r);
            }
            _ => earlier.stale += 1,
        }
    }
    earlier.kept = kept.into_values().collect();
    earlier.kept.sort_by_key(|r| r.index);
    Ok(earlier)
}

/// The stream files new records are appended to.
struct Streams<'a> {
    jsonl: &'a Path,
    csv: &'a Path,
    axes: &'a [String],
}

/// Evaluates `todo` on `jobs` threads, appending each record to the streams
/// (synced) as it arrives; stops at the first write error.
fn evaluate_into(
    plan: &Plan,
    todo: &[&Point],
    jobs: usize,
    streams: &Streams<'_>,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<Vec<Record>> {
    let open = |p: &Path| {
        OpenOptions::new()
            .append(true)
            .open(p)
            .map_err(|e| io_err(p, e))
    };
    let mut jfile = open(streams.jsonl)?;
    let mut cfile = open(streams.csv)?;
    let mut fresh: Vec<Record> = Vec::with_capacity(todo.len());
    let jobs = jobs.max(1).min(todo.len().max(1));
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let mut failure: Option<Error> = None;
    std::thread::scope(|scope| {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Record>(2 * jobs);
        for _ in 0..jobs {
            let tx = tx.clone();
            let (next, stop) = (&next, &stop);
            scope.spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(point) = todo.get(i) else { break };
                    if tx.send(evaluate(plan, point)).is_err() {
                        break;
                    }
                }
            });
        }
        drop(tx);
        // Receive inside the scope: the workers block on a full channel.
        while let Ok(record) = rx.recv() {
            let line = record.json_line();
            let row = csv_row(&record, streams.axes);
            let written = jfile
                .write_all(line.as_bytes())
                .and_then(|()| jfile.sync_data())
                .map_err(|e| io_err(streams.jsonl, e))
                .and_then(|()| {
                    cfile
                        .write_all(row.as_bytes())
                        .and_then(|()| cfile.sync_data())
                        .map_err(|e| io_err(streams.csv, e))
                });
            if let Err(e) = written {
                failure = Some(e);
                stop.store(true, Ordering::Relaxed);
                break;
            }
            progress(Progress::Point {
                record: &record,
                done: fresh.len() + 1,
                todo: todo.len(),
            });
            fresh.push(record);
        }
        drop(rx);
    });
    match failure {
        Some(e) => Err(e),
        None => Ok(fresh),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_parse_and_partition() {
        let s = Shard::parse("1/3").unwrap();
        assert!(s.contains(4) && !s.contains(3));
        assert!(Shard::parse("3/3").is_err());
        assert!(Shard::parse("x").is_err());
        let all: usize = (0..3)
            .map(|i| {
                (0..10)
                    .filter(|&p| Shard { index: i, count: 3 }.contains(p))
                    .count()
            })
            .sum();
        assert_eq!(all, 10);
    }

    #[test]
    fn torn_last_line_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.jsonl");
        let r = Record {
            index: 0,
            key: "k".into(),
            status: Status::Invalid,
            workload: "w".into(),
            axes: Default::default(),
            metrics: None,
            reason: Some("r".into()),
        };
        let line = r.json_line();
        std::fs::write(&p, format!("{line}{}", &line[..10])).unwrap();
        let read = read_stream(&p).unwrap();
        assert!(read.torn);
        assert_eq!(read.records, vec![r.clone()]);
        // A whole record without its newline may still be half written
        // (the kernel can cut a write anywhere): it is not data either.
        std::fs::write(&p, format!("{line}{}", line.trim_end())).unwrap();
        let read = read_stream(&p).unwrap();
        assert!(read.torn);
        assert_eq!(read.records, vec![r]);
    }
}
