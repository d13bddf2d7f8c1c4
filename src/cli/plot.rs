//! `accsim plot`.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

#[derive(Args)]
pub struct PlotArgs {
    /// A trace written by `accsim run --trace`: draws waveform lanes.
    #[arg(long, value_name = "FILE.vcd")]
    trace: Option<PathBuf>,
    /// A JSON report (`accsim run --json`): names the layers on a waveform,
    /// or, without --trace, draws per-layer energy, cycle and utilisation charts.
    #[arg(long, value_name = "FILE.json")]
    report: Option<PathBuf>,
    /// The picture to write: .png or .svg.
    #[arg(long, value_name = "FILE.png|FILE.svg")]
    out: PathBuf,
    /// Only cycles START to END of the trace.
    #[arg(long, value_name = "START:END")]
    window: Option<String>,
}

pub fn execute(args: &PlotArgs) -> Result<()> {
    match (&args.trace, &args.report) {
        (Some(trace), report) => {
            let window = args
                .window
                .as_deref()
                .map(accsim::trace::TraceOptions::parse_window)
                .transpose()?;
            let wave = accsim::trace::read::read_vcd(trace, window)?;
            let names = match report {
                Some(path) => Some(layer_names(path)?),
                None => None,
            };
            accsim::atomic::write_with(&args.out, |tmp| {
                accsim::trace::plot::waveform(&wave, names.as_deref(), tmp)
            })?;
        }
        (None, Some(report)) => accsim::atomic::write_with(&args.out, |tmp| {
            accsim::trace::plot::report_charts(report, tmp)
        })?,
        (None, None) => {
            return Err(accsim::InputError::new(
                "accsim plot",
                "give --trace FILE.vcd, --report FILE.json, or both",
            )
            .into());
        }
    }
    outln!("wrote {}", args.out.display())?;
    Ok(())
}

fn layer_names(path: &PathBuf) -> Result<Vec<String>, accsim::InputError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| accsim::InputError::new(path, format!("cannot read the report: {e}")))?;
    let value: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| accsim::InputError::new(path, format!("not a JSON report: {e}")))?;
    Ok(value["layers"]
        .as_array()
        .map(|l| l.iter().map(accsim::trace::plot::layer_label).collect())
        .unwrap_or_default())
}
