//! `accsim merge`: shard streams into the outputs of one sweep
//! (docs/sweeps.md, "Shards").
//!
//! Every stream has a `.meta.json` beside it holding the spec's text and a
//! fingerprint of the plan (the spec text and every point key). Streams
//! merge only when their fingerprints agree, records are united by index
//! (one index with two different keys is an error), and the result goes
//! through the same [`super::output::finalize`] as an unsharded run, so
//! merged shards and an unsharded run produce the same bytes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::record::Record;
use super::runner::{FORMAT, StreamMeta, read_stream};
use super::spec::{self, SweepSpec};
use crate::error::{InputError, Result};

/// Streams found and read.
#[derive(Debug)]
pub struct Collected {
    pub spec: SweepSpec,
    pub meta: StreamMeta,
    /// By index, each once.
    pub records: Vec<Record>,
    /// The streams read.
    pub streams: Vec<PathBuf>,
    /// Indices with no record.
    pub missing: Vec<usize>,
    /// Streams whose last line was cut short (dropped).
    pub torn: usize,
}

/// Reads every `points*.meta.json` stream in `dirs`.
pub fn collect(dirs: &[PathBuf]) -> Result<Collected> {
    let mut metas: Vec<(PathBuf, StreamMeta)> = Vec::new();
    for dir in dirs {
        metas.extend(read_metas(dir)?);
    }
    let Some((first_path, first)) = metas.first().cloned() else {
        return Err(InputError::new(
            dirs.first().map_or(Path::new("."), |d| d.as_path()),
            "holds no sweep streams (points*.meta.json); valid: directories given to `accsim sweep --out`",
        )
        .into());
    };
    for (path, m) in &metas[1..] {
        if m.plan_fingerprint != first.plan_fingerprint {
            return Err(InputError::new(
                path,
                format!(
                    "comes from a different sweep (plan {}) than {} (plan {}); valid: shards of \
                     one spec over the same base files",
                    m.plan_fingerprint,
                    first_path.display(),
                    first.plan_fingerprint
                ),
            )
            .into());
        }
    }
    let spec = spec::parse(&first.spec_text, Path::new(&first.spec_file))?;
    let mut by_index: BTreeMap<usize, Record> = BTreeMap::new();
    let mut streams = Vec::new();
    let mut torn = 0;
    for (path, _) in &metas {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .trim_end_matches(".meta.json")
            .to_string();
        let stream = path.with_file_name(format!("{name}.jsonl"));
        torn += usize::from(merge_stream(&stream, first.total_points, &mut by_index)?);
        streams.push(stream);
    }
    let missing: Vec<usize> = (0..first.total_points)
        .filter(|i| !by_index.contains_key(i))
        .collect();
    Ok(Collected {
        spec,
        meta: first,
        records: by_index.into_values().collect(),
        streams,
        missing,
        torn,
    })
}

/// The stream metadata files (`points*.meta.json`) of one sweep directory,
/// by name.
fn read_metas(dir: &Path) -> Result<Vec<(PathBuf, StreamMeta)>> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| InputError::new(dir, format!("cannot read the sweep directory: {e}")))?;
    let mut found: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("points") && n.ends_with(".meta.json"))
        })
        .collect();
    found.sort();
    let mut metas = Vec::new();
    for path in found {
        let text = std::fs::read_to_string(&path)
            .map_err(|e| InputError::new(&path, format!("cannot read: {e}")))?;
        let meta: StreamMeta = serde_json::from_str(&text)
            .map_err(|e| InputError::new(&path, format!("not a sweep stream's metadata: {e}")))?;
        if meta.format != FORMAT {
            return Err(InputError::new(
                &path,
                format!("format `{}`; valid: `{FORMAT}`", meta.format),
            )
            .into());
        }
        metas.push((path, meta));
    }
    Ok(metas)
}

/// Adds one stream's records to `by_index`, refusing a point outside the
/// plan or a key that another stream gives the same point; returns whether
/// the stream ended in a torn line.
fn merge_stream(
    stream: &Path,
    total_points: usize,
    by_index: &mut BTreeMap<usize, Record>,
) -> Result<bool> {
    let read = read_stream(stream)?;
    for r in read.records {
        if r.index >= total_points {
            return Err(InputError::new(
                stream,
                format!(
                    "holds point {} of a sweep of {} points",
                    r.index, total_points
                ),
            )
            .into());
        }
        match by_index.get(&r.index) {
            Some(old) if old.key != r.key => {
                return Err(InputError::new(
                    stream,
                    format!(
                        "point {} has key {} here and {} in another stream; the streams \
                         disagree on the plan",
                        r.index, r.key, old.key
                    ),
                )
                .into());
            }
            Some(_) => {}
            None => {
                by_index.insert(r.index, r);
            }
        }
    }
    Ok(read.torn)
}
