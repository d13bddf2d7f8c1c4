//! Pictures of a run (docs/traces.md): waveform lanes from a trace, and
//! per-layer charts from a report. PNG or SVG by the output's extension; the
//! font is embedded, so no system library or installed font is needed.
//!
//! Long windows are down-sampled honestly: each pixel column shows the
//! time-weighted mean of the signal over the cycles it covers, so a busy
//! lane shows the fraction of those cycles it was busy, and a rate lane
//! (bytes per cycle) the bytes moved in them over their length.

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::FontStyle;

use super::read::Waveform;
use crate::error::{Error, InputError, Result};

const FONT: &str = "accsim-mono";
static FONT_BYTES: &[u8] = include_bytes!("../../assets/fonts/DejaVuSansMono.ttf");

/// Registers the embedded font (also used by the sweep plots).
pub(crate) fn register_font() {
    // Registering twice is harmless; a font that fails to parse would be a
    // build defect caught by the tests.
    let _ = plotters::style::register_font(FONT, FontStyle::Normal, FONT_BYTES);
}

/// The embedded font at `size` points.
pub(crate) fn font(size: f64) -> TextStyle<'static> {
    (FONT, size).into_font().into()
}

/// What a lane shows.
enum LaneKind {
    /// Mean of a 0/1 signal: fraction busy.
    Busy,
    /// Mean of a level.
    Level,
    /// Growth of a cumulative counter per cycle.
    Rate,
}

struct Lane {
    label: String,
    kind: LaneKind,
    /// Value per pixel column.
    values: Vec<f64>,
}

fn output_kind(out: &Path) -> Result<bool, InputError> {
    match out.extension().and_then(|e| e.to_str()) {
        Some("png") => Ok(true),
        Some("svg") => Ok(false),
        _ => Err(InputError::new(out, "the output must end in .png or .svg")),
    }
}

fn draw_error(out: &Path, e: impl std::fmt::Display) -> Error {
    Error::Output {
        path: out.to_path_buf(),
        message: e.to_string(),
    }
}

/// Renders `wave` as lanes against cycles; `layer_names` labels the layer
/// boundaries (from a report) when given.
pub fn waveform(wave: &Waveform, layer_names: Option<&[String]>, out: &Path) -> Result<()> {
    register_font();
    let png = output_kind(out)?;
    let columns = 1400usize;
    let (a, b) = (wave.start, wave.end.max(wave.start + 1));
    let sampler = Sampler::new(a, b, columns);
    let mut lanes = array_lanes(wave, &sampler);
    lanes.extend(memory_lanes(wave, &sampler));
    lanes.extend(wave.matching("ffe.").map(|s| Lane {
        label: s.name.clone(),
        kind: if s.width == 1 {
            LaneKind::Busy
        } else {
            LaneKind::Level
        },
        values: sampler.values(&|x, y| s.mean(x, y)),
    }));

    // Layer boundaries.
    let layers: Vec<(u64, u64)> = wave
        .get("controller.layer")
        .map(|s| s.changes.clone())
        .unwrap_or_default();

    let picture = WavePicture {
        title: format!("accsim trace, cycles {a} to {b}"),
        lanes,
        layers,
        layer_names: layer_names.map(<[String]>::to_vec),
        start: a,
        end: b,
        columns,
    };
    let (width, height) = picture.size();
    if png {
        picture
            .draw(BitMapBackend::new(out, (width, height)).into_drawing_area())
            .map_err(|e| draw_error(out, e))
    } else {
        picture
            .draw(SVGBackend::new(out, (width, height)).into_drawing_area())
            .map_err(|e| draw_error(out, e))
    }
}

/// The picture's columns: cycle intervals `[edges[i], edges[i + 1])`
/// covering the traced span (at least one cycle each).
struct Sampler {
    start: u64,
    edges: Vec<u64>,
}

impl Sampler {
    fn new(a: u64, b: u64, columns: usize) -> Self {
        let span = (b - a) as f64;
        Sampler {
            start: a,
            edges: (0..=columns)
                .map(|i| a + (span * i as f64 / columns as f64) as u64)
                .collect(),
        }
    }

    /// `f(from, to)` over each column.
    fn values(&self, f: &dyn Fn(u64, u64) -> f64) -> Vec<f64> {
        self.edges
            .windows(2)
            .map(|e| {
                if e[1] > e[0] {
                    f(e[0], e[1])
                } else {
                    f(e[0], e[0] + 1)
                }
            })
            .collect()
    }

    /// The per-cycle growth of a running total `s` over `[x, y)`.
    fn rate(&self, s: &super::read::SignalTrace, x: u64, y: u64) -> f64 {
        let a = self.start;
        (s.value_at(y.saturating_sub(1).max(a)) as f64
            - s.value_at(x.saturating_sub(1).max(a)) as f64)
            / (y - x) as f64
    }
}

/// The PE array's lanes: PEs busy, each row's busy signal, input RF entries.
fn array_lanes(wave: &Waveform, sampler: &Sampler) -> Vec<Lane> {
    let mut lanes: Vec<Lane> = Vec::new();
    let sum_of = |prefix: &'static str, suffix: &'static str| -> Vec<&super::read::SignalTrace> {
        wave.signals
            .iter()
            .filter(|s| s.name.starts_with(prefix) && s.name.ends_with(suffix))
            .collect()
    };
    let active = sum_of("array.row", "_active_pes");
    if !active.is_empty() {
        lanes.push(Lane {
            label: "PEs busy".into(),
            kind: LaneKind::Level,
            values: sampler.values(&|x, y| active.iter().map(|s| s.mean(x, y)).sum()),
        });
    }
    for s in wave
        .matching("array.row")
        .filter(|s| s.name.ends_with("_busy"))
    {
        lanes.push(Lane {
            label: s.name.trim_start_matches("array.").to_string(),
            kind: LaneKind::Busy,
            values: sampler.values(&|x, y| s.mean(x, y)),
        });
    }
    let rf = sum_of("array.row", "_input_rf_entries");
    if !rf.is_empty() {
        lanes.push(Lane {
            label: "input RF entries".into(),
            kind: LaneKind::Level,
            values: sampler.values(&|x, y| rf.iter().map(|s| s.mean(x, y)).sum()),
        });
    }
    lanes
}

/// The buses', GLB's and DRAM's lanes: busy signals, GLB occupancy, DRAM
/// bytes and GLB words per cycle.
fn memory_lanes(wave: &Waveform, sampler: &Sampler) -> Vec<Lane> {
    let mut lanes: Vec<Lane> = Vec::new();
    for name in [
        "noc.input_bus_busy",
        "noc.weight_bus_busy",
        "noc.output_bus_busy",
        "glb.read_busy",
        "glb.write_busy",
        "glb.pooling_unit_busy",
        "dram.channel_busy",
    ] {
        if let Some(s) = wave.get(name) {
            lanes.push(Lane {
                label: name.to_string(),
                kind: LaneKind::Busy,
                values: sampler.values(&|x, y| s.mean(x, y)),
            });
        }
    }
    if let Some(s) = wave.get("glb.used_bytes") {
        lanes.push(Lane {
            label: "GLB bytes used".into(),
            kind: LaneKind::Level,
            values: sampler.values(&|x, y| s.mean(x, y)),
        });
    }
    let dram: Vec<&super::read::SignalTrace> = ["dram.read_bytes_total", "dram.write_bytes_total"]
        .iter()
        .filter_map(|n| wave.get(n))
        .collect();
    if !dram.is_empty() {
        lanes.push(Lane {
            label: "DRAM bytes/cycle".into(),
            kind: LaneKind::Rate,
            values: sampler.values(&|x, y| dram.iter().map(|s| sampler.rate(s, x, y)).sum()),
        });
    }
    if let Some(s) = wave.get("glb.read_words_total") {
        lanes.push(Lane {
            label: "GLB words read/cycle".into(),
            kind: LaneKind::Rate,
            values: sampler.values(&|x, y| sampler.rate(s, x, y)),
        });
    }
    lanes
}

/// A waveform picture, ready to draw on any backend.
struct WavePicture {
    title: String,
    lanes: Vec<Lane>,
    layers: Vec<(u64, u64)>,
    layer_names: Option<Vec<String>>,
    start: u64,
    end: u64,
    columns: usize,
}

/// Narrowest label column [px]; wider when a label needs it.
const LABEL_W: u32 = 230;
const LANE_H: u32 = 34;
const TOP: u32 = 60;

impl WavePicture {
    /// The label column: room for the longest label at 12 px monospace
    /// (about 7.3 px per character) and its `(max ...)` suffix.
    fn label_w(&self) -> u32 {
        let longest = self
            .lanes
            .iter()
            .map(|l| l.label.len() + 14)
            .max()
            .unwrap_or(0);
        LABEL_W.max((longest as f64 * 7.3) as u32 + 12)
    }

    fn size(&self) -> (u32, u32) {
        (
            self.label_w() + self.columns as u32 + 20,
            TOP + LANE_H * self.lanes.len() as u32 + 50,
        )
    }

    fn draw<DB: DrawingBackend>(
        &self,
        root: DrawingArea<DB, Shift>,
    ) -> std::result::Result<(), String> {
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        root.draw(&Text::new(self.title.clone(), (10, 10), font(18.0)))
            .map_err(|e| e.to_string())?;
        self.draw_layer_marks(&root)?;
        for (li, lane) in self.lanes.iter().enumerate() {
            self.draw_lane(&root, lane, (TOP + li as u32 * LANE_H) as i32)?;
        }
        self.draw_axis(&root)?;
        root.present().map_err(|e| e.to_string())
    }

    /// The x pixel of cycle `t`.
    fn x_of(&self, t: u64) -> i32 {
        let span = (self.end - self.start) as f64;
        self.label_w() as i32
            + ((t.saturating_sub(self.start)) as f64 / span * self.columns as f64) as i32
    }

    /// Layer boundaries, and each layer's name where there is room for it.
    fn draw_layer_marks<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
    ) -> std::result::Result<(), String> {
        let bottom = (TOP + LANE_H * self.lanes.len() as u32) as i32;
        for (i, &(t, layer)) in self.layers.iter().enumerate() {
            let x = self.x_of(t);
            root.draw(&PathElement::new(
                vec![(x, TOP as i32 - 14), (x, bottom)],
                BLACK.mix(0.35),
            ))
            .map_err(|e| e.to_string())?;
            let next = self.layers.get(i + 1).map_or(self.end, |&(n, _)| n);
            if self.x_of(next) - x > 24 {
                let name = self
                    .layer_names
                    .as_ref()
                    .and_then(|n| n.get(layer as usize))
                    .cloned()
                    .unwrap_or_else(|| format!("L{layer}"));
                root.draw(&Text::new(name, (x + 2, TOP as i32 - 16), font(11.0)))
                    .map_err(|e| e.to_string())?;
            }
        }
        Ok(())
    }

    /// One lane at pixel row `y0`: its label, background and one column
    /// per sample, scaled to the lane's maximum (busy lanes to 1).
    fn draw_lane<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
        lane: &Lane,
        y0: i32,
    ) -> std::result::Result<(), String> {
        let y1 = y0 + LANE_H as i32 - 4;
        let max = lane.values.iter().cloned().fold(0.0f64, f64::max);
        let (scale, label, colour) = match &lane.kind {
            LaneKind::Busy => (1.0, lane.label.clone(), RGBColor(31, 119, 180)),
            kind => (
                if max > 0.0 { max } else { 1.0 },
                format!("{} (max {})", lane.label, short(max)),
                if matches!(kind, LaneKind::Level) {
                    RGBColor(44, 160, 44)
                } else {
                    RGBColor(214, 39, 40)
                },
            ),
        };
        root.draw(&Text::new(label, (6, y0 + 8), font(12.0)))
            .map_err(|e| e.to_string())?;
        let left = self.label_w() as i32;
        root.draw(&Rectangle::new(
            [(left, y0), (left + self.columns as i32, y1)],
            BLACK.mix(0.06).filled(),
        ))
        .map_err(|e| e.to_string())?;
        for (c, &v) in lane.values.iter().enumerate() {
            let h = ((v / scale).clamp(0.0, 1.0) * (y1 - y0) as f64).round() as i32;
            if h > 0 {
                let x = left + c as i32;
                root.draw(&Rectangle::new([(x, y1 - h), (x + 1, y1)], colour.filled()))
                    .map_err(|e| e.to_string())?;
            }
        }
        Ok(())
    }

    /// The cycle axis: eleven ticks with their cycle numbers.
    fn draw_axis<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
    ) -> std::result::Result<(), String> {
        let span = (self.end - self.start) as f64;
        let axis_y = (TOP + LANE_H * self.lanes.len() as u32 + 6) as i32;
        for k in 0..=10 {
            let t = self.start + (span * k as f64 / 10.0) as u64;
            let x = self.x_of(t);
            root.draw(&PathElement::new(vec![(x, axis_y), (x, axis_y + 5)], BLACK))
                .map_err(|e| e.to_string())?;
            root.draw(&Text::new(
                short(t as f64),
                (x - 10, axis_y + 8),
                font(11.0),
            ))
            .map_err(|e| e.to_string())?;
        }
        root.draw(&Text::new(
            "cycles".to_string(),
            (self.label_w() as i32 + self.columns as i32 / 2, axis_y + 24),
            font(12.0),
        ))
        .map_err(|e| e.to_string())
    }
}

fn short(n: f64) -> String {
    match n.abs() {
        x if x >= 1e9 => format!("{:.2}G", n / 1e9),
        x if x >= 1e6 => format!("{:.2}M", n / 1e6),
        x if x >= 1e3 => format!("{:.1}k", n / 1e3),
        x if x >= 10.0 || x == 0.0 => format!("{n:.0}"),
        _ => format!("{n:.2}"),
    }
}

/// A layer's label on the plots, from its report entry: its name and,
/// for a PE-array layer whose weights move, its schedule (docs/mapping.md,
/// "The schedule space"): where the weights are re-read from (`W:glb`,
/// `W:dram`, `W:scratchpad`) and, for the weight-tile-major order, its
/// tiles and where the input rows are re-read from (`in:glb`, `in:dram`).
/// Fixed (look-up-table) weights never move: the name alone.
pub fn layer_label(layer: &serde_json::Value) -> String {
    let name = layer["name"].as_str().unwrap_or("?");
    let s = &layer["schedule"];
    let (Some(order), Some(weights)) = (s["loop_order"].as_str(), s["weights_from"].as_str())
    else {
        return name.to_string();
    };
    match (order, weights) {
        (_, "lut") => name.to_string(),
        ("weight_tile_major", _) => format!(
            "{name} [{} tiles, W:{weights}, in:{}]",
            s["tiles"].as_u64().unwrap_or(0),
            s["inputs_from"].as_str().unwrap_or("?")
        ),
        _ => format!("{name} [W:{weights}]"),
    }
}

/// Per-layer figures read from a report.
struct LayerBars {
    name: String,
    energy: [f64; 6],
    cycles: [f64; 4],
    utilisation: f64,
}

fn bars_of(report: &serde_json::Value, path: &Path) -> Result<Vec<LayerBars>, InputError> {
    let layers = report["layers"]
        .as_array()
        .ok_or_else(|| InputError::new(path, "not an accsim report: no `layers` array"))?;
    let num = |v: &serde_json::Value| v.as_f64().unwrap_or(0.0);
    let rows: Vec<LayerBars> = layers
        .iter()
        .map(|l| LayerBars {
            name: layer_label(l),
            energy: ["mac", "rf", "array", "glb", "dram", "nvdla_table"]
                .map(|k| num(&l["energy"][k])),
            cycles: ["compute", "stall", "fill", "drain"].map(|k| num(&l["cycle_split"][k])),
            utilisation: num(&l["utilisation"]),
        })
        .collect();
    if layers.first().is_some_and(|l| l.get("energy").is_none()) {
        return Err(InputError::new(
            path,
            "the report has no engine measurements (cycles, energy): run it with a simulated engine",
        ));
    }
    Ok(rows)
}

/// Renders the per-layer charts of a report (JSON): energy by level
/// (stacked), cycles split into compute, stall, fill and drain (stacked),
/// and PE utilisation.
pub fn report_charts(report_path: &Path, out: &Path) -> Result<()> {
    register_font();
    let png = output_kind(out)?;
    let text = std::fs::read_to_string(report_path)
        .map_err(|e| InputError::new(report_path, format!("cannot read the report: {e}")))?;
    let report: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| InputError::new(report_path, format!("not a JSON report: {e}")))?;
    let bars = bars_of(&report, report_path)?;
    let title = format!(
        "{} on {}",
        report["workload"]["name"].as_str().unwrap_or("?"),
        report["arch"]["name"].as_str().unwrap_or("?")
    );
    let n = bars.len().max(1);
    let (width, height) = ((160 + 46 * n as u32).max(900), 1100u32);
    if png {
        draw_charts(
            BitMapBackend::new(out, (width, height)).into_drawing_area(),
            &title,
            &bars,
        )
        .map_err(|e| draw_error(out, e))
    } else {
        draw_charts(
            SVGBackend::new(out, (width, height)).into_drawing_area(),
            &title,
            &bars,
        )
        .map_err(|e| draw_error(out, e))
    }
}

fn draw_charts<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    title: &str,
    bars: &[LayerBars],
) -> std::result::Result<(), String> {
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let (header, body) = root.split_vertically(36);
    header
        .draw(&Text::new(title.to_string(), (10, 8), font(18.0)))
        .map_err(|e| e.to_string())?;
    let panels = body.split_evenly((3, 1));
    let energy = Stacked {
        caption: "energy by level (one 16-bit MAC = 1)",
        y_label: "energy [16b-MACs]",
        series: &["MAC", "RF", "array", "GLB", "DRAM", "NVDLA table"],
        values: &|b| b.energy.to_vec(),
    };
    let cycles = Stacked {
        caption: "cycles",
        y_label: "cycles",
        series: &["compute", "stall", "fill", "drain"],
        values: &|b| b.cycles.to_vec(),
    };
    let utilisation = Stacked {
        caption: "PE utilisation",
        y_label: "busy PE-cycles / (PEs x cycles)",
        series: &["utilisation"],
        values: &|b| vec![b.utilisation],
    };
    for (area, panel) in panels.iter().zip([energy, cycles, utilisation]) {
        panel.draw(area, bars)?;
    }
    root.present().map_err(|e| e.to_string())
}

/// The stacked parts' colours, in series order (repeating).
const PALETTE: [RGBColor; 6] = [
    RGBColor(148, 103, 189),
    RGBColor(44, 160, 44),
    RGBColor(255, 127, 14),
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(127, 127, 127),
];

/// One panel of per-layer stacked bars.
struct Stacked<'a> {
    caption: &'a str,
    y_label: &'a str,
    /// The stacked parts, bottom first, as the legend names them.
    series: &'a [&'a str],
    /// A layer's value of each part.
    values: &'a dyn Fn(&LayerBars) -> Vec<f64>,
}

impl Stacked<'_> {
    fn draw<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
        bars: &[LayerBars],
    ) -> std::result::Result<(), String> {
        let Stacked {
            caption,
            y_label,
            series,
            values,
        } = *self;
        let n = bars.len().max(1);
        let max = bars
            .iter()
            .map(|b| values(b).iter().sum::<f64>())
            .fold(0.0f64, f64::max)
            .max(1e-9);
        let mut chart = ChartBuilder::on(area)
            .caption(caption, font(15.0))
            .margin(10)
            .x_label_area_size(70)
            .y_label_area_size(80)
            .build_cartesian_2d(-0.5f64..(n as f64 - 0.5), 0f64..max * 1.08)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(n)
            .x_label_formatter(&|x| {
                bars.get(x.round().max(0.0) as usize)
                    .map(|b| b.name.clone())
                    .unwrap_or_default()
            })
            .x_label_style(font(10.0).transform(FontTransform::Rotate90))
            .y_desc(y_label)
            .y_label_formatter(&|y| short(*y))
            .label_style(font(11.0))
            .draw()
            .map_err(|e| e.to_string())?;
        for (k, name) in series.iter().enumerate() {
            // A part that is zero in every layer draws nothing: no legend entry.
            if bars.iter().all(|b| values(b)[k] == 0.0) {
                continue;
            }
            let colour = PALETTE[k % PALETTE.len()];
            chart
                .draw_series(bars.iter().enumerate().map(|(i, b)| {
                    let v = values(b);
                    let below: f64 = v[..k].iter().sum();
                    Rectangle::new(
                        [(i as f64 - 0.35, below), (i as f64 + 0.35, below + v[k])],
                        colour.filled(),
                    )
                }))
                .map_err(|e| e.to_string())?
                .label(*name)
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 10, y + 5)], colour.filled())
                });
        }
        chart
            .configure_series_labels()
            .label_font(font(11.0))
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK.mix(0.3))
            .position(SeriesLabelPosition::UpperRight)
            .draw()
            .map_err(|e| e.to_string())
    }
}
