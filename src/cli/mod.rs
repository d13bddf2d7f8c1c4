//! Command-line interface: argument parsing, printing, exit codes.
//!
//! Exit codes (also in the top-level `--help`): 0 success; 2 bad input (a
//! file, a flag, a value: the message names the file, line, field and what
//! is valid; clap's usage errors) or an output that cannot be written; 1 a
//! simulator fault (an engine disagreed with the reference executor, or
//! broke an invariant).
//!
//! Output: everything meant for stdout goes through [`out!`]/[`outln!`],
//! which return an error on a failed write (`> /dev/full`: exit 2 naming
//! stdout) and end printing quietly on a closed pipe (`| head -1`: the rest
//! of the text is dropped, files are still written, exit 0). Messages go to
//! stderr through [`note!`], which never fails the command.

/// Prints to stdout like `print!`, returning `Result<(), accsim::Error>`.
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::cli::write_stdout(&format!($($arg)*))
    };
}

/// Prints a line to stdout like `println!`, returning `Result<(), accsim::Error>`.
macro_rules! outln {
    () => {
        $crate::cli::write_stdout("\n")
    };
    ($($arg:tt)*) => {
        $crate::cli::write_stdout(&format!("{}\n", format_args!($($arg)*)))
    };
}

/// Prints a message line to stderr like `eprintln!`, ignoring failures
/// (a closed or full stderr must not turn into a panic or change the result).
macro_rules! note {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

mod check;
mod list;
mod plot;
mod precision;
mod run;
mod sweep;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use accsim::Error;

#[derive(Parser)]
#[command(
    name = "accsim",
    version,
    about = "Cycle-level, bit-exact simulator of CNN inference accelerators",
    long_about = "accsim replays bit-exact inference of quantised CNNs on a modelled accelerator \
                  (LU22 PE array, PELUSO multi-precision MAC, FIXYNN fixed feature extractor) \
                  and reports, per layer, MACs, memory accesses, cycles and energy.",
    after_help = "Examples:\n  accsim run --workload cae_cnn\n  accsim run --arch arch_configs/lu22_fixed.toml --workload workloads/ic_cifar10.toml --json out/ic.json\n  accsim run --workload cae_cnn:pose --dump out/cae_dump\n  accsim list\n  accsim check workloads/mobilenet_v1_025.toml\n\nExit codes:\n  0  success (also --help and --version)\n  1  simulator fault: an engine disagreed with the reference executor or broke one of its own invariants (a bug in accsim; the message names the layer)\n  2  bad input or output: a file, flag or value (the message names the file, line, field and what is valid), a usage error, or an output that cannot be written"
)]
struct Cli {
    /// Log detail on stderr (-v info, -vv debug); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a workload on an architecture and print the per-layer report.
    #[command(
        after_help = "Examples:\n  accsim run --workload cae_cnn\n  accsim run --workload kws_cnn_one_fstride4 --input x.npy --json r.json --csv r.csv\n  accsim run --workload cae_cnn:gender --dump out/dump"
    )]
    Run(run::RunArgs),
    /// List the shipped workloads and architecture configs.
    List,
    /// Validate a workload or architecture file and print its shapes and sizes.
    #[command(
        after_help = "Examples:\n  accsim check workloads/cae_cnn.toml\n  accsim check cae_cnn:pose\n  accsim check arch_configs/lu22_fixed.toml"
    )]
    Check(check::CheckArgs),
    /// Draw a trace as waveform lanes, or a report's per-layer charts (PNG or SVG).
    #[command(
        after_help = "Examples:\n  accsim run --workload cae_cnn --trace traces/cae.vcd --json out/cae.json\n  accsim plot --trace traces/cae.vcd --report out/cae.json --out out/cae_trace.png\n  accsim plot --trace traces/cae.vcd --window 0:200000 --out out/fill.svg\n  accsim plot --report out/cae.json --out out/cae_layers.png"
    )]
    Plot(plot::PlotArgs),
    /// Search per-layer MAC precisions (PELUSO): energy from the engine,
    /// accuracy drop over a calibration set; writes the fronts, CSV, JSON, plots.
    #[command(
        after_help = "Examples:\n  accsim precision --workload kws_cnn_one_fstride4_float --calib 500 --out out/kws_precision\n  accsim precision --workload ic_cifar10_float --arch lu22_fixed --lambda 1,5,10 --iters 10\n  accsim run --workload ic_cifar10 --precision 16x16,8x16,8x8,16x8/8"
    )]
    Precision(precision::PrecisionArgs),
    /// Evaluate a design space in parallel: streams, resume, shards, Pareto fronts, plots.
    #[command(
        after_help = "Examples:\n  accsim sweep sweeps/fixynn.toml -j 2\n  accsim sweep sweeps/fixynn.toml --resume\n  accsim sweep sweeps/fixynn.toml --shard 0/4 --out out/fixynn\n  accsim sweep sweeps/lu22.toml --dry-run"
    )]
    Sweep(sweep::SweepArgs),
    /// Combine the shard outputs of a sweep into its final results.
    #[command(
        after_help = "Examples:\n  accsim merge out/fixynn\n  accsim merge host1/out host2/out --out out/fixynn"
    )]
    Merge(sweep::MergeArgs),
}

/// Runs the CLI and returns the process exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose);
    let result = match cli.command {
        Command::Run(args) => run::execute(&args),
        Command::List => list::execute(),
        Command::Check(args) => check::execute(&args),
        Command::Plot(args) => plot::execute(&args),
        Command::Precision(args) => precision::execute(&args),
        Command::Sweep(args) => sweep::execute(&args),
        Command::Merge(args) => sweep::execute_merge(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            note!("error: {e:#}");
            ExitCode::from(exit_code(&e))
        }
    }
}

/// 2 for anything the user can fix in their input, 1 for simulator faults.
fn exit_code(e: &anyhow::Error) -> u8 {
    match e.downcast_ref::<Error>() {
        Some(Error::Mismatch(_) | Error::Internal { .. }) => 1,
        _ => 2,
    }
}

fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Most worker threads `-j` accepts (a thread each; more would only fail
/// to start).
const MAX_JOBS: usize = 1024;

/// `-j N` of `sweep` and `precision`: 1 to [`MAX_JOBS`] worker threads;
/// by default the number of CPUs.
fn jobs(value: Option<usize>) -> Result<usize, Error> {
    match value {
        None => Ok(std::thread::available_parallelism().map_or(1, |n| n.get())),
        Some(n) if (1..=MAX_JOBS).contains(&n) => Ok(n),
        Some(n) => Err(accsim::InputError::new(
            "-j",
            format!("is {n}; valid: 1 to {MAX_JOBS} worker threads"),
        )
        .into()),
    }
}

/// Writes `text` to `path` atomically, creating parent directories.
fn write_file(path: &std::path::Path, text: &str) -> Result<(), Error> {
    accsim::atomic::write(path, text.as_bytes())
}

/// Set once stdout turned out to be a closed pipe: printing stops there.
static STDOUT_CLOSED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Writes `text` to stdout and flushes it (see the module's "Output").
pub(crate) fn write_stdout(text: &str) -> Result<(), Error> {
    use std::io::Write;
    use std::sync::atomic::Ordering;
    if STDOUT_CLOSED.load(Ordering::Relaxed) {
        return Ok(());
    }
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
            STDOUT_CLOSED.store(true, Ordering::Relaxed);
            Ok(())
        }
        Err(e) => Err(Error::Output {
            path: "stdout".into(),
            message: e.to_string(),
        }),
    }
}
