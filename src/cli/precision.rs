//! `accsim precision`: PELUSO's per-layer precision search on the engine.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Result;
use clap::Args;

use accsim::Error;
use accsim::error::InputError;
use accsim::precision::anneal::AnnealConfig;
use accsim::precision::study::{
    self as precision_study, PrecisionStudy, StudyOptions, StudyPoint, StudyTimes,
};
use accsim::workload::dfp::CalibrationSet;
use accsim::workload::{self, LoadOptions, Workload};

#[derive(Args)]
pub struct PrecisionArgs {
    /// Architecture config: a path or a shipped name [default: lu22_programmable].
    #[arg(long, value_name = "FILE")]
    arch: Option<String>,
    /// A 16-bit dynamic-fixed-point workload (e.g. ic_cifar10_float).
    #[arg(long, value_name = "FILE_OR_NAME")]
    workload: String,
    /// The calibration set: a count N (the first N inputs a `[float]`
    /// workload generates; default its `[float] samples`), or a directory of
    /// .npy inputs ([C, H, W], integers of the input type or floats to
    /// quantise; taken in file-name order) with optional labels.npy (one
    /// integer class per input).
    #[arg(long, value_name = "DIR_OR_COUNT")]
    calib: Option<String>,
    /// lambda_max values in percent: `FIRST:LAST:STEP` or a comma list.
    #[arg(long, value_name = "SPEC", default_value = "1:15:1")]
    lambda: String,
    /// Annealing moves per temperature (PELUSO: 10 / 100 / 1000 for small /
    /// medium / large benchmarks).
    #[arg(long, value_name = "N", default_value_t = 100)]
    iters: u32,
    /// Seed of the annealing's random stream.
    #[arg(long, value_name = "N", default_value_t = 0)]
    seed: u64,
    /// Worker threads [default: the number of CPUs]; results do not depend
    /// on it.
    // `--threads`, its former name, is a hidden alias kept for one release
    // (docs/precision.md).
    #[arg(short = 'j', long, value_name = "N", alias = "threads")]
    jobs: Option<usize>,
    /// Directory for study.json, points.csv, states.csv, front.png, front.svg
    /// [default: out/precision/NAME, NAME the workload's].
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Print only the summary.
    #[arg(short, long)]
    quiet: bool,
}

/// `--calib`: a count, or a directory of inputs.
enum Calib {
    Count(usize),
    Dir(PathBuf),
}

fn calib(text: &str) -> Result<Calib, InputError> {
    if let Ok(n) = text.trim().parse::<usize>() {
        return if n == 0 {
            Err(InputError::new(
                "--calib",
                "is 0; valid: at least 1 sample, or a directory",
            ))
        } else {
            Ok(Calib::Count(n))
        };
    }
    let dir = PathBuf::from(text);
    if dir.is_dir() {
        Ok(Calib::Dir(dir))
    } else {
        Err(InputError::new(
            "--calib",
            format!(
                "`{text}` is neither a count nor a directory; valid: a whole number >= 1, or a directory of .npy inputs"
            ),
        ))
    }
}

/// Reads a calibration directory: every `*.npy` but `labels.npy`, in name
/// order, as inputs of `w`; `labels.npy`, when present, as their classes.
fn read_calibration_dir(w: &Workload, dir: &Path) -> Result<CalibrationSet, accsim::Error> {
    let listing = std::fs::read_dir(dir)
        .map_err(|e| InputError::new(dir, format!("cannot list the calibration directory: {e}")))?;
    let mut files: Vec<PathBuf> = listing
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "npy"))
        .filter(|p| p.file_name().is_some_and(|n| n != "labels.npy"))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(InputError::new(
            dir,
            "holds no .npy input; valid: a directory of [C, H, W] .npy inputs",
        )
        .into());
    }
    let inputs = files
        .iter()
        .map(|f| accsim::run::read_input(w, f))
        .collect::<Result<Vec<_>, _>>()?;
    let labels_path = dir.join("labels.npy");
    let labels = if labels_path.exists() {
        let a = accsim::workload::npy::read_npy_any(&labels_path)?;
        let values: Vec<f64> = a.to_f64();
        if values.len() != inputs.len() {
            return Err(InputError::new(
                &labels_path,
                format!(
                    "has {} labels for {} inputs; valid: one class per input",
                    values.len(),
                    inputs.len()
                ),
            )
            .into());
        }
        let classes = values
            .iter()
            .map(|&v| {
                if v >= 0.0 && v.fract() == 0.0 && v < 1e9 {
                    Ok(v as usize)
                } else {
                    Err(InputError::new(
                        &labels_path,
                        format!("label {v} is not a class index; valid: integers >= 0"),
                    ))
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        Some(classes)
    } else {
        None
    };
    Ok(CalibrationSet { inputs, labels })
}

/// Parses `FIRST:LAST:STEP` or `a,b,c` (percent) into fractions.
fn lambdas(spec: &str) -> Result<Vec<f64>, InputError> {
    let bad = |why: &str| {
        InputError::new(
            "--lambda",
            format!(
                "`{spec}` {why}; valid: FIRST:LAST:STEP or a comma list, in percent, each in (0, 100], e.g. 1:15:1"
            ),
        )
    };
    let number = |t: &str| -> Result<f64, InputError> {
        let v: f64 = t
            .trim()
            .parse()
            .map_err(|_| bad("has a value that is not a number"))?;
        if v.is_finite() && v > 0.0 && v <= 100.0 {
            Ok(v)
        } else {
            Err(bad("has a value out of range"))
        }
    };
    let values: Vec<f64> = match spec.split(':').collect::<Vec<_>>()[..] {
        [first, last, step] => {
            let (a, b, s) = (number(first)?, number(last)?, number(step)?);
            if b < a {
                return Err(bad("ends before it starts"));
            }
            let n = ((b - a) / s + 1e-9).floor() as usize + 1;
            if n > 1000 {
                return Err(bad("has more than 1000 values"));
            }
            (0..n).map(|k| a + s * k as f64).collect()
        }
        [_] => spec.split(',').map(number).collect::<Result<_, _>>()?,
        _ => return Err(bad("is not a range or a list")),
    };
    Ok(values.into_iter().map(|v| v / 100.0).collect())
}

pub fn execute(args: &PrecisionArgs) -> Result<()> {
    let started = Instant::now();
    let threads = super::jobs(args.jobs)?;
    let arch = accsim::arch::load(args.arch.as_deref().unwrap_or("lu22_programmable"))?;
    let (name, variant) = workload::split_variant(&args.workload);
    let path = workload::resolve(name)?;
    let calib = args.calib.as_deref().map(calib).transpose()?;
    let options = LoadOptions {
        calibration_samples: match calib {
            Some(Calib::Count(n)) => Some(n),
            _ => None,
        },
        ..LoadOptions::default()
    };
    let w = workload::load_file_with(&path, variant, &options)?;
    let from_dir;
    let set: &CalibrationSet = match (&calib, w.calibration.as_ref()) {
        (Some(Calib::Dir(dir)), _) => {
            from_dir = read_calibration_dir(&w, dir)?;
            &from_dir
        }
        (_, Some(set)) => set,
        (_, None) => {
            return Err(InputError::new(
                &path,
                "has no calibration set; valid: a [float] workload (docs/precision.md, e.g. ic_cifar10_float), or --calib DIR with .npy inputs",
            )
            .into());
        }
    };
    let anneal = AnnealConfig {
        iterations_per_temperature: args.iters,
        seed: args.seed,
        ..AnnealConfig::default()
    };
    anneal
        .validate()
        .map_err(|m| InputError::new("--iters", m))?;
    let study_options = StudyOptions {
        lambdas: lambdas(&args.lambda)?,
        anneal,
        threads,
    };
    let out_dir = args.out.clone().unwrap_or_else(|| default_out(&w));
    let loaded = started.elapsed();
    let bar = (!args.quiet).then(|| progress_bar(&w.network.name));
    let result = precision_study::run(&w, set, &arch, &study_options, |s| {
        if let Some(b) = &bar {
            b.set_length(s.moves_total);
            b.set_position(s.moves_done);
            b.set_message(s.count.to_string());
        }
    });
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    // Failures here are a network the search cannot run (not 16-bit, an
    // assignment the engine refuses) or an engine that disagreed.
    let (study, times) = result.map_err(|m| Error::from(InputError::new(&path, m)))?;
    tracing::info!(
        "prefix cache: {} chunk runs ({} samples, {} M MACs computed), {} of {} weighted-layer \
         segments taken from the cache, {} MiB held",
        times.cache.chunk_runs,
        times.cache.samples_run,
        times.cache.macs_run / 1_000_000,
        times.cache.segments_skipped,
        times.cache.segments_total,
        times.cache.bytes >> 20
    );
    write_outputs(&study, &out_dir)?;
    let elapsed = started.elapsed();
    if !args.quiet {
        out!("{}", table(&study))?;
    }
    out!("{}", summary(&study, &times))?;
    outln!(
        "{}",
        closing_line(&study, &times, [elapsed, loaded], &out_dir)
    )?;
    Ok(())
}

/// A bar over the annealing moves (lambdas x temperatures x iterations)
/// with the states evaluated and an ETA; indicatif draws nothing when
/// stderr is not a terminal.
fn progress_bar(network: &str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(0);
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{prefix}: [{bar:30}] {pos}/{len} moves, {msg} states evaluated, {elapsed} elapsed, ETA {eta}",
    ) {
        bar.set_style(style);
    }
    bar.set_prefix(format!("precision search on {network}"));
    bar
}

/// The last line: states, samples, the reference, the times and where
/// the outputs are.
fn closing_line(
    study: &PrecisionStudy,
    times: &StudyTimes,
    [elapsed, loaded]: [std::time::Duration; 2],
    out_dir: &Path,
) -> String {
    format!(
        "{} on {}: {} states evaluated, {} calibration samples ({}); time {:.1} s (load {:.1} s, search {:.1} s, checked re-runs {:.1} s); outputs in {}",
        study.workload,
        study.arch,
        study.evaluated_states,
        study.samples,
        match study.reference_accuracy {
            Some(a) => format!(
                "{}, 16x16 accuracy {:.2}%",
                study.reference.describe(),
                100.0 * a
            ),
            None => study.reference.describe().to_string(),
        },
        elapsed.as_secs_f64(),
        loaded.as_secs_f64(),
        times.search_s,
        times.checking_s,
        out_dir.display()
    )
}

/// `out/precision/NAME` (`NAME_VARIANT` for a variant), as `accsim sweep`
/// writes `out/sweeps/NAME`.
fn default_out(w: &Workload) -> PathBuf {
    let net = &w.network;
    let name = match &net.variant {
        Some(v) => format!("{}_{v}", net.name),
        None => net.name.clone(),
    };
    Path::new("out").join("precision").join(name)
}

/// PELUSO's table: per-network against per-layer precision.
fn summary(study: &PrecisionStudy, times: &StudyTimes) -> String {
    let mut t = comfy_table::Table::new();
    t.load_style(comfy_table::presets::ASCII_MARKDOWN);
    t.set_header([
        "precision",
        "Pareto points",
        "mean accuracy drop [%]",
        "mean energy saving [%]",
        "max saving [%]",
        "execution time [s]",
    ]);
    for (name, s, seconds) in [
        (
            "per-network",
            &study.per_network_summary,
            times.per_network_s,
        ),
        ("per-layer (SA)", &study.search_summary, times.search_s),
    ] {
        t.add_row(vec![
            name.to_string(),
            s.points.to_string(),
            format!("{:.2}%", 100.0 * s.mean_accuracy_drop),
            format!("{:.1}%", 100.0 * s.mean_energy_saving),
            format!("{:.1}%", 100.0 * s.max_energy_saving),
            format!("{seconds:.1}"),
        ]);
    }
    format!("{t}\n")
}

fn table(study: &PrecisionStudy) -> String {
    let mut t = comfy_table::Table::new();
    t.load_style(comfy_table::presets::ASCII_MARKDOWN);
    t.set_header([
        "set",
        "assignment [in x w bits]",
        "accuracy drop [%]",
        "energy [uJ]",
        "saving [%]",
        "MAC [uJ]",
        "memory [uJ]",
        "cycles",
        "speed-up [x]",
    ]);
    let row = |kind: &str, p: &StudyPoint| {
        vec![
            kind.to_string(),
            p.assignment.to_string(),
            format!("{:.2}%", 100.0 * p.accuracy_drop),
            format!("{:.3}", p.energy_pj * 1e-6),
            format!("{:.1}%", 100.0 * p.energy_saving),
            format!("{:.3}", p.mac_pj * 1e-6),
            format!("{:.3}", p.memory_pj * 1e-6),
            accsim::report::thousands(p.cycles),
            format!("{:.2}x", p.speedup),
        ]
    };
    for p in &study.per_network {
        t.add_row(row("per-network", p));
    }
    for p in &study.search_front {
        t.add_row(row("PELUSO front", p));
    }
    format!("{t}\n")
}

fn write_outputs(study: &PrecisionStudy, dir: &std::path::Path) -> Result<(), Error> {
    let out = |name: &str| dir.join(name);
    let fail = |path: PathBuf, e: String| Error::Output { path, message: e };
    let json =
        serde_json::to_string_pretty(study).map_err(|e| fail(out("study.json"), e.to_string()))?;
    super::write_file(&out("study.json"), &(json + "\n"))?;
    let points =
        precision_study::points_csv(study).map_err(|e| fail(out("points.csv"), e.to_string()))?;
    super::write_file(&out("points.csv"), &points)?;
    let states =
        precision_study::states_csv(study).map_err(|e| fail(out("states.csv"), e.to_string()))?;
    super::write_file(&out("states.csv"), &states)?;
    for name in ["front.png", "front.svg"] {
        accsim::atomic::write_with(&out(name), |tmp| precision_study::plot(study, tmp))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::lambdas;

    #[test]
    fn lambda_specs() {
        let v = lambdas("1:15:1").unwrap_or_default();
        assert_eq!(v.len(), 15);
        assert!((v[0] - 0.01).abs() < 1e-12 && (v[14] - 0.15).abs() < 1e-12);
        assert_eq!(lambdas("2.5,5").unwrap_or_default(), vec![0.025, 0.05]);
        for bad in ["0:5:1", "5:1:1", "a", "1:2", "1:2:3:4", "150"] {
            assert!(lambdas(bad).is_err(), "{bad}");
        }
    }
}
