//! `accsim run`.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use accsim::Error;
use accsim::run::{RunOptions, run};

#[derive(Args)]
pub struct RunArgs {
    /// Architecture config: a path or a shipped name [default: lu22_fixed].
    #[arg(long, value_name = "FILE")]
    arch: Option<String>,
    /// Workload: a path or a shipped name, optionally with `:VARIANT`.
    #[arg(long, value_name = "FILE_OR_NAME")]
    workload: String,
    /// Input tensor (.npy, [C, H, W] or [1, C, H, W]; integers of the input
    /// type, or finite floats to quantise) instead of the workload's default input.
    #[arg(long, value_name = "FILE.npy")]
    input: Option<PathBuf>,
    /// Write the report as JSON.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Write the report as CSV.
    #[arg(long, value_name = "FILE")]
    csv: Option<PathBuf>,
    /// Write every layer's tensors (.npy) and a manifest.json as DIR (a new
    /// or empty directory, or an earlier dump, which is replaced whole).
    #[arg(long, value_name = "DIR")]
    dump: Option<PathBuf>,
    /// Do not print the per-layer table.
    #[arg(short, long)]
    quiet: bool,
    /// Skip the bit-exact comparison with the reference executor.
    #[arg(long)]
    no_check: bool,
    /// Record a cycle trace (Value Change Dump) into FILE.vcd.
    #[arg(long, value_name = "FILE.vcd")]
    trace: Option<PathBuf>,
    /// Record only cycles START to END (exclusive).
    #[arg(long, value_name = "START:END", requires = "trace")]
    trace_window: Option<String>,
    /// Record only while these layers run (comma-separated indices, from 0
    /// to the network's last layer).
    #[arg(long, value_name = "LIST", requires = "trace")]
    trace_layers: Option<String>,
    /// Signal groups to record: controller, array, noc, glb, dram, ffe.
    #[arg(
        long,
        value_name = "GROUPS",
        requires = "trace",
        default_value = "controller,array,noc,glb,dram,ffe"
    )]
    trace_signals: String,
    /// Also record one busy lane per PE.
    #[arg(long, requires = "trace")]
    trace_pes: bool,
    /// With an FFE architecture: tap the activations after fixed layer M
    /// (1 to the arch's fixed_layers; default: all of them).
    #[arg(long, value_name = "M")]
    ffe_tap: Option<u32>,
    /// With an FFE or NVDLA architecture: frames in the simulated stream,
    /// 1 to 65536 (default: the arch's [system] stream_frames).
    #[arg(long, value_name = "N")]
    frames: Option<u32>,
    /// Run at these MAC precisions (16-bit dynamic-fixed-point workloads):
    /// one mode for every layer (`8x16`: 8-bit inputs, 16-bit weights; the
    /// output width follows the input's), or one mode per weighted layer and
    /// the output width, e.g. `16x16,8x16,8x8/8` (docs/precision.md).
    #[arg(long, value_name = "SPEC")]
    precision: Option<String>,
    /// How the machine is advanced: `event` jumps from one change of state
    /// to the next; `cycle` also ticks every component every cycle and
    /// checks that both agree (slow; docs/testing.md).
    #[arg(long, value_enum, default_value_t = Engine::Event)]
    engine: Engine,
    /// What each array layer's schedule search minimises: energy, cycles,
    /// edp (energy x cycles) or dram (DRAM words); `rule` skips the search
    /// and takes the analytic DRAM-word rule's choice (docs/mapping.md).
    #[arg(long, value_name = "NAME", default_value = "energy")]
    objective: String,
    /// Pin schedules by layer name (TOML, docs/mapping.md, "Pinning
    /// schedules"); the other layers are searched.
    #[arg(long, value_name = "FILE")]
    schedule: Option<PathBuf>,
    /// Reuse an earlier layer's schedule search for a layer of the same
    /// geometry, precisions and readers instead of searching it (faster;
    /// may choose worse: docs/mapping.md, "Memoised searches").
    #[arg(long)]
    memo: bool,
}

/// `--objective` and `--schedule FILE` for `network`.
pub fn search_options(
    objective: &str,
    schedule: Option<&std::path::Path>,
    network: &accsim::workload::Network,
) -> Result<accsim::engine::ScheduleSearchOptions, accsim::InputError> {
    let objective = objective
        .parse()
        .map_err(|message: String| accsim::InputError::new("--objective", message))?;
    let names: Vec<&str> = network.layers.iter().map(|l| l.name.as_str()).collect();
    let pins = match schedule {
        Some(path) => accsim::mapping::schedule_file::load(path, &names)?,
        None => Default::default(),
    };
    Ok(accsim::engine::ScheduleSearchOptions {
        objective,
        pins,
        ..Default::default()
    })
}

/// `--engine`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Engine {
    Event,
    Cycle,
}

/// The `--trace*` flags, parsed.
fn trace_options(
    args: &RunArgs,
) -> Result<Option<accsim::trace::TraceOptions>, accsim::InputError> {
    let Some(path) = &args.trace else {
        return Ok(None);
    };
    Ok(Some(accsim::trace::TraceOptions {
        path: path.clone(),
        window: args
            .trace_window
            .as_deref()
            .map(accsim::trace::TraceOptions::parse_window)
            .transpose()?,
        layers: args
            .trace_layers
            .as_deref()
            .map(accsim::trace::TraceOptions::parse_layers)
            .transpose()?,
        groups: accsim::trace::TraceOptions::parse_groups(&args.trace_signals)?,
        per_pe: args.trace_pes,
    }))
}

pub fn execute(args: &RunArgs) -> Result<()> {
    let started = std::time::Instant::now();
    let arch = accsim::arch::load(args.arch.as_deref().unwrap_or("lu22_fixed"))?;
    let workload = accsim::workload::load(&args.workload)?;
    let loaded = started.elapsed().as_secs_f64();
    let trace = trace_options(args)?;
    if args.precision.is_some() && args.dump.is_some() {
        return Err(accsim::error::InputError::new(
            "--dump",
            "a dump describes the network at its storage widths, which --precision changes; valid: --dump without --precision",
        )
        .into());
    }
    let precision = args
        .precision
        .as_deref()
        .map(|spec| {
            let layers = accsim::reference::precision::weighted_layers(&workload.network).len();
            accsim::numerics::precision::PrecisionAssignment::from_spec(spec, layers)
                .map_err(|message| accsim::error::InputError::new("--precision", message))
        })
        .transpose()?;
    let options = RunOptions {
        input: args.input.clone(),
        check: !args.no_check,
        trace,
        ffe_tap: args.ffe_tap,
        stream_frames: args.frames,
        precision,
        timing: match args.engine {
            Engine::Event => accsim::sim::Timing::Event,
            Engine::Cycle => accsim::sim::Timing::Cycle,
        },
        search: accsim::engine::ScheduleSearchOptions {
            memoise: args.memo,
            ..search_options(&args.objective, args.schedule.as_deref(), &workload.network)?
        },
    };
    // Output paths that cannot be written are refused before the run.
    for path in [&args.json, &args.csv, &args.trace].into_iter().flatten() {
        accsim::atomic::check_target(path)?;
    }
    if let Some(dir) = &args.dump {
        accsim::dump::check_target(dir)?;
    }
    let result = run(&workload, &arch, &options)?;
    // Wall times go to the log (-v), never into reports: those stay
    // byte-identical run after run.
    let simulated = started.elapsed().as_secs_f64() - loaded;
    tracing::info!(
        "load {loaded:.3} s (weights, calibration, reference outputs); run {simulated:.3} s: \
         {} simulated cycles, {} MACs, {} events ({:.1} M cycles/s, {:.1} G MAC/s)",
        result.engine.total_cycles,
        result.report.total.macs,
        result.engine.events,
        result.engine.total_cycles as f64 / simulated.max(1e-9) / 1e6,
        result.report.total.macs as f64 / simulated.max(1e-9) / 1e9,
    );
    if !args.quiet {
        out!("{}", accsim::report::text::render(&result.report))?;
    }
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&result.report).map_err(|e| Error::Output {
            path: path.clone(),
            message: e.to_string(),
        })?;
        super::write_file(path, &(text + "\n"))?;
    }
    if let Some(path) = &args.csv {
        let text = accsim::report::csv::render(&result.report).map_err(|e| Error::Output {
            path: path.clone(),
            message: e.to_string(),
        })?;
        super::write_file(path, &text)?;
    }
    if let Some(dir) = &args.dump {
        accsim::dump::write(dir, &workload.network, &result.execution)?;
    }
    Ok(())
}
