//! `accsim precision`: PELUSO's per-layer precision search on the engine.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;
use clap::Args;

use accsim::Error;
use accsim::error::InputError;
use accsim::sweep::anneal::AnnealConfig;
use accsim::sweep::precision_study::{self, PrecisionStudy, StudyOptions, StudyPoint};
use accsim::workload::{self, LoadOptions};

#[derive(Args)]
pub struct PrecisionArgs {
    /// Architecture config: a path or a shipped name [default: lu22_programmable].
    #[arg(long, value_name = "FILE")]
    arch: Option<String>,
    /// A 16-bit dynamic-fixed-point workload with a calibration set (a
    /// `[float]` workload, e.g. ic_cifar10_float).
    #[arg(long, value_name = "FILE_OR_NAME")]
    workload: String,
    /// Calibration inputs (default: the workload's `[float] samples`).
    #[arg(long, value_name = "N")]
    samples: Option<usize>,
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
    /// Worker threads for the calibration set [default: all cores]; results
    /// do not depend on it.
    #[arg(short = 'j', long, value_name = "N")]
    threads: Option<usize>,
    /// Directory for study.json, points.csv, states.csv, front.png, front.svg.
    #[arg(long, value_name = "DIR", default_value = "precision_out")]
    out: PathBuf,
    /// Print only the summary.
    #[arg(short, long)]
    quiet: bool,
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
    let arch = accsim::arch::load(args.arch.as_deref().unwrap_or("lu22_programmable"))?;
    let (name, variant) = workload::split_variant(&args.workload);
    let path = workload::resolve(name)?;
    let options = LoadOptions {
        calibration_samples: args.samples,
    };
    if args.samples == Some(0) {
        return Err(InputError::new("--samples", "is 0; valid: at least 1").into());
    }
    let w = workload::load_file_with(&path, variant, &options)?;
    let Some(set) = w.calibration.as_ref() else {
        return Err(InputError::new(
            &path,
            "has no calibration set; valid: a [float] workload (docs/precision.md), e.g. ic_cifar10_float",
        )
        .into());
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
        threads: args
            .threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
            .max(1),
    };
    let loaded = started.elapsed();
    let progress = std::io::stderr().is_terminal() && !args.quiet;
    let study = precision_study::run(&w, set, &arch, &study_options, |n| {
        if progress {
            eprint!("\r{n} states evaluated");
            let _ = std::io::stderr().flush();
        }
    })
    .map_err(|m| {
        // Failures here are an engine or a network the search cannot run.
        Error::from(InputError::new(&path, m))
    })?;
    if progress {
        eprintln!();
    }
    write_outputs(&study, &args.out)?;
    let elapsed = started.elapsed();
    if !args.quiet {
        print!("{}", table(&study));
    }
    let s = &study.search_summary;
    println!(
        "{} on {}: {} states, {} samples ({}); PELUSO front: {} points, mean drop {:.2}%, mean saving {:.1}% (max {:.1}%); front of all states: {} points; time {:.1} s (load {:.1} s); outputs in {}",
        study.workload,
        study.arch,
        study.evaluated_states,
        study.samples,
        study.reference.describe(),
        s.points,
        100.0 * s.mean_accuracy_drop,
        100.0 * s.mean_energy_saving,
        100.0 * s.max_energy_saving,
        study.front_summary.points,
        elapsed.as_secs_f64(),
        loaded.as_secs_f64(),
        args.out.display()
    );
    Ok(())
}

fn table(study: &PrecisionStudy) -> String {
    let mut t = comfy_table::Table::new();
    t.load_style(comfy_table::presets::ASCII_MARKDOWN);
    t.set_header([
        "set",
        "assignment",
        "drop",
        "energy uJ",
        "saving",
        "MAC uJ",
        "memory uJ",
        "cycles",
        "speed-up",
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
    precision_study::plot(study, &out("front.png"))?;
    precision_study::plot(study, &out("front.svg"))?;
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
