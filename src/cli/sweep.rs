//! `accsim sweep` and `accsim merge` (docs/sweeps.md): argument handling,
//! the progress display and the summary. The work is in `accsim::sweep`.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Result;
use clap::Args;

use accsim::Error;
use accsim::sweep::lock::SweepLock;
use accsim::sweep::record::{Record, Status};
use accsim::sweep::runner::{self, Progress, RunSettings, Shard};
use accsim::sweep::space::Plan;
use accsim::sweep::{merge, output, spec};

#[derive(Args)]
pub struct SweepArgs {
    /// The sweep spec (docs/sweeps.md).
    #[arg(value_name = "SPEC.toml")]
    spec: PathBuf,
    /// Output directory [default: out/sweeps/NAME, NAME from the spec].
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Worker threads, 1 to 1024 [default: the number of CPUs].
    #[arg(short = 'j', long, value_name = "N")]
    jobs: Option<usize>,
    /// Continue a sweep in DIR: keep its finished points, run the others.
    #[arg(long)]
    resume: bool,
    /// Run only points whose index is I mod N (0 <= I < N), into files of
    /// this shard; combine the shards with `accsim merge`.
    #[arg(long, value_name = "I/N")]
    shard: Option<String>,
    /// List the points and check each one's architecture, without simulating.
    #[arg(long)]
    dry_run: bool,
    /// Print no tables at the end.
    #[arg(short, long)]
    quiet: bool,
}

#[derive(Args)]
pub struct MergeArgs {
    /// Directories holding shard streams (points.shard-I-of-N.*).
    #[arg(value_name = "DIR", required = true)]
    dirs: Vec<PathBuf>,
    /// Where the merged outputs go [default: the first DIR].
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Write the outputs even when some points have no record.
    #[arg(long)]
    partial: bool,
    /// Print no tables at the end.
    #[arg(short, long)]
    quiet: bool,
}

pub fn execute(args: &SweepArgs) -> Result<()> {
    let text = std::fs::read_to_string(&args.spec).map_err(|e| {
        Error::from(accsim::InputError::new(
            &args.spec,
            format!("cannot read the sweep spec: {e}"),
        ))
    })?;
    let spec = spec::parse(&text, &args.spec).map_err(Error::from)?;
    let shard = args
        .shard
        .as_deref()
        .map(Shard::parse)
        .transpose()
        .map_err(Error::from)?;
    let jobs = super::jobs(args.jobs)?;
    let out_dir = args
        .out
        .clone()
        .unwrap_or_else(|| Path::new("out").join("sweeps").join(&spec.name));
    let plan = Plan::new(spec).map_err(Error::from)?;
    if args.dry_run {
        return dry_run(&plan);
    }
    // Held until the final outputs are written (dropped on return).
    let _lock = lock_dir(&out_dir, &runner::stream_base(shard))?;
    let settings = RunSettings {
        out_dir: out_dir.clone(),
        jobs,
        resume: args.resume,
        shard,
    };
    let started = Instant::now();
    let mut display = Display::new(&plan.spec.name);
    let outcome = runner::run(&plan, &text, &settings, &mut |p| display.update(p))?;
    display.finish();
    let elapsed = started.elapsed().as_secs_f64();
    note!(
        "sweep `{}`: {} points evaluated in {:.1} s ({:.1} points/min, -j {jobs}), {} kept from an earlier run{}{}",
        plan.spec.name,
        outcome.evaluated,
        elapsed,
        if elapsed > 0.0 {
            outcome.evaluated as f64 * 60.0 / elapsed
        } else {
            0.0
        },
        outcome.resumed,
        if outcome.stale > 0 {
            format!(", {} stale records dropped", outcome.stale)
        } else {
            String::new()
        },
        if outcome.dropped_torn_line {
            ", a cut-off last line dropped"
        } else {
            ""
        }
    );
    if let Some(s) = shard {
        outln!(
            "shard {}/{}: {} points in {}; when every shard is done: accsim merge {}",
            s.index,
            s.count,
            outcome.records.len(),
            outcome.jsonl.display(),
            out_dir.display()
        )?;
        return status_of(&outcome.records);
    }
    // Final outputs from the stream as written, exactly as `merge` would.
    let read = runner::read_stream(&outcome.jsonl)?;
    let mut records = read.records;
    records.sort_by_key(|r| r.index);
    let finalized = output::finalize(&plan.spec, &records, &out_dir)?;
    summarise(&finalized, &out_dir, args.quiet)?;
    status_of(&records)
}

pub fn execute_merge(args: &MergeArgs) -> Result<()> {
    let collected = merge::collect(&args.dirs)?;
    if !collected.missing.is_empty() && !args.partial {
        let first: Vec<String> = collected
            .missing
            .iter()
            .take(10)
            .map(|i| i.to_string())
            .collect();
        return Err(Error::from(accsim::InputError::new(
            &args.dirs[0],
            format!(
                "{} of {} points have no record (first: {}); valid: run the missing shards \
                 (or --resume them), or pass --partial",
                collected.missing.len(),
                collected.meta.total_points,
                first.join(", ")
            ),
        ))
        .into());
    }
    let out_dir = args.out.clone().unwrap_or_else(|| args.dirs[0].clone());
    // The final outputs are an unsharded run's: the same lock.
    let _lock = lock_dir(&out_dir, &runner::stream_base(None))?;
    note!(
        "merged {} streams: {} of {} points{}",
        collected.streams.len(),
        collected.records.len(),
        collected.meta.total_points,
        if collected.torn > 0 {
            format!(" ({} cut-off last lines dropped)", collected.torn)
        } else {
            String::new()
        }
    );
    let finalized = output::finalize(&collected.spec, &collected.records, &out_dir)?;
    summarise(&finalized, &out_dir, args.quiet)?;
    status_of(&collected.records)
}

/// Takes the lock of stream `base` in `dir` (docs/sweeps.md, "One writer
/// per directory"), warning when it takes over a killed run's.
fn lock_dir(dir: &Path, base: &str) -> Result<SweepLock> {
    let acquired = SweepLock::acquire(dir, base)?;
    if let Some(w) = &acquired.warning {
        note!("warning: {w}");
    }
    Ok(acquired.lock)
}

/// Exit status: 1 when the simulator failed on some point (a bug), 2 when
/// no point could be simulated at all (the spec is wrong), else 0.
fn status_of(records: &[Record]) -> Result<()> {
    if let Some(r) = records.iter().find(|r| r.status == Status::Error) {
        return Err(Error::Internal {
            context: format!("sweep point {} ({})", r.index, r.key),
            message: format!(
                "{} (and {} more points failed; see the `reason` column)",
                r.reason.as_deref().unwrap_or("failed"),
                records.iter().filter(|r| r.status == Status::Error).count() - 1
            ),
        }
        .into());
    }
    let simulated = records
        .iter()
        .filter(|r| matches!(r.status, Status::Ok | Status::Infeasible))
        .count();
    if simulated == 0
        && let Some(r) = records.first()
    {
        return Err(Error::from(accsim::InputError::new(
            "sweep",
            format!(
                "no point could be simulated; the first ({}) is invalid: {}",
                r.index,
                r.reason.as_deref().unwrap_or("?")
            ),
        ))
        .into());
    }
    Ok(())
}

fn summarise(f: &output::Finalized, dir: &Path, quiet: bool) -> Result<()> {
    let counts: Vec<String> = f.counts.iter().map(|(k, v)| format!("{v} {k}")).collect();
    outln!("points: {}", counts.join(", "))?;
    outln!("outputs in {}:", dir.display())?;
    for p in &f.files {
        outln!(
            "  {}",
            p.file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
        )?;
    }
    if !quiet && !f.tables_markdown.is_empty() {
        outln!()?;
        out!("{}", f.tables_markdown)?;
    }
    Ok(())
}

fn dry_run(plan: &Plan) -> Result<()> {
    let mut header = vec!["index".to_string(), "key".into(), "workload".into()];
    header.extend(plan.spec.axes.iter().map(|a| a.name.clone()));
    header.push("arch".into());
    out!("{}", accsim::sweep::record::csv_line(&header))?;
    let mut invalid = 0;
    for i in 0..plan.len() {
        let p = plan.point(i);
        let mut row = vec![
            i.to_string(),
            p.key.clone(),
            plan.workloads[p.workload].name.clone(),
        ];
        row.extend(plan.labels(&p));
        row.push(match plan.arch(&p) {
            Ok(_) => "ok".into(),
            Err(reason) => {
                invalid += 1;
                reason
            }
        });
        out!("{}", accsim::sweep::record::csv_line(&row))?;
    }
    note!(
        "{} points, {} with an invalid architecture (workloads are checked when they run)",
        plan.len(),
        invalid
    );
    Ok(())
}

/// A progress bar with ETA on a terminal; plain lines otherwise (one every
/// 10 s, at every tenth of the way, and for every failed point).
struct Display {
    name: String,
    bar: Option<indicatif::ProgressBar>,
    started: Instant,
    last_line: Instant,
    last_tenth: usize,
    counts: [usize; 4],
}

impl Display {
    fn new(name: &str) -> Display {
        Display {
            name: name.to_string(),
            bar: None,
            started: Instant::now(),
            last_line: Instant::now(),
            last_tenth: 0,
            counts: [0; 4],
        }
    }

    fn update(&mut self, p: Progress<'_>) {
        match p {
            Progress::Start {
                total,
                resumed,
                todo,
            } => {
                self.started = Instant::now();
                if std::io::stderr().is_terminal() {
                    let bar = indicatif::ProgressBar::new(todo as u64);
                    if let Ok(style) = indicatif::ProgressStyle::with_template(
                        "{prefix} [{bar:24}] {pos}/{len} {elapsed}, ETA {eta} {msg}",
                    ) {
                        bar.set_style(style.progress_chars("=> "));
                    }
                    bar.set_prefix(self.name.clone());
                    self.bar = Some(bar);
                } else {
                    note!(
                        "sweep `{}`: {todo} points to run ({total} in this run's slice, {resumed} already done)",
                        self.name
                    );
                }
            }
            Progress::Point { record, done, todo } => {
                let slot = match record.status {
                    Status::Ok => 0,
                    Status::Infeasible => 1,
                    Status::Invalid => 2,
                    Status::Error => 3,
                };
                self.counts[slot] += 1;
                let [ok, inf, inv, err] = self.counts;
                let msg = format!("{ok} ok {inf} infeasible {inv} invalid {err} failed");
                if let Some(bar) = &self.bar {
                    bar.set_position(done as u64);
                    bar.set_message(msg);
                    if record.status == Status::Error {
                        bar.println(format!(
                            "point {} failed: {}",
                            record.index,
                            record.reason.as_deref().unwrap_or("")
                        ));
                    }
                    return;
                }
                let tenth = (done * 10).checked_div(todo).unwrap_or(10);
                let now = Instant::now();
                if record.status == Status::Error {
                    note!(
                        "point {} failed: {}",
                        record.index,
                        record.reason.as_deref().unwrap_or("")
                    );
                }
                if tenth > self.last_tenth
                    || now.duration_since(self.last_line) >= Duration::from_secs(10)
                    || done == todo
                {
                    self.last_tenth = tenth;
                    self.last_line = now;
                    let elapsed = now.duration_since(self.started).as_secs_f64();
                    let eta = if done > 0 {
                        elapsed / done as f64 * (todo - done) as f64
                    } else {
                        0.0
                    };
                    note!(
                        "sweep `{}`: {done}/{todo} points ({msg}), {elapsed:.0} s elapsed, ETA {eta:.0} s",
                        self.name
                    );
                }
            }
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
