//! Scatter plots of a sweep (docs/sweeps.md, "Plots"): every simulated
//! point for one objective pair, one colour (and one joined Pareto front)
//! per value of the `[plot] series` axis, one marker shape per value of the
//! `[plot] marker` axis, the overall front as a thick black line, and points
//! outside the constraints in grey. PNG or SVG by extension; the embedded
//! font of [`crate::trace::plot`], so no system library is needed.
//!
//! An axis spanning more than a factor of 50 (all positive) is drawn on a
//! log scale: values are plotted as log10 and the ticks labelled with the
//! values themselves.

use std::path::Path;

use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

use super::output::{pareto_records, sig};
use super::record::{Record, Status};
use super::spec::{Metric, SweepSpec};
use crate::error::{Error, Result};
use crate::trace::plot::{font, register_font};

/// Tableau 10.
const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

const SHAPES: usize = 6;

struct Scale {
    log: bool,
    lo: f64,
    hi: f64,
}

impl Scale {
    fn of(values: &[f64]) -> Scale {
        let min = values.iter().copied().fold(f64::INFINITY, f64::min);
        let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        if !min.is_finite() {
            return Scale {
                log: false,
                lo: 0.0,
                hi: 1.0,
            };
        }
        let log = min > 0.0 && max / min > 50.0;
        let (a, b) = if log {
            (min.log10(), max.log10())
        } else {
            (min, max)
        };
        let pad = if b > a {
            (b - a) * 0.06
        } else {
            a.abs().max(1e-12) * 0.1
        };
        // Linear axes of non-negative figures start at 0 when that is near.
        let lo = if !log && a >= 0.0 && a - pad < (b - a) * 0.5 {
            0.0
        } else {
            a - pad
        };
        Scale {
            log,
            lo,
            hi: b + pad,
        }
    }

    fn map(&self, x: f64) -> f64 {
        if self.log { x.log10() } else { x }
    }

    /// How many ticks to ask for: on a log scale about one per decade, so
    /// they fall on powers of ten.
    fn ticks(&self) -> usize {
        if self.log {
            ((self.hi - self.lo).ceil() as usize + 1).max(2)
        } else {
            10
        }
    }

    /// A tick label: four significant digits, trailing zeros dropped.
    fn label(&self, v: f64) -> String {
        let s = sig(if self.log { 10f64.powf(v) } else { v });
        match s.split_once('e') {
            Some((m, e)) if m.contains('.') => {
                format!("{}e{e}", m.trim_end_matches('0').trim_end_matches('.'))
            }
            None if s.contains('.') => s.trim_end_matches('0').trim_end_matches('.').to_string(),
            _ => s,
        }
    }
}

struct Dot {
    x: f64,
    y: f64,
    series: usize,
    marker: usize,
    feasible: bool,
}

/// Draws `y` against `x` for `records` into `out` (.png or .svg).
pub fn scatter(
    spec: &SweepSpec,
    records: &[Record],
    x: Metric,
    y: Metric,
    out: &Path,
) -> Result<()> {
    register_font();
    let draw_err = |e: String| Error::Output {
        path: out.to_path_buf(),
        message: e,
    };
    let series_labels = spec
        .plot
        .series
        .as_deref()
        .and_then(|a| spec.axis_labels(a))
        .unwrap_or_else(|| vec!["all points".to_string()]);
    let marker_labels = spec
        .plot
        .marker
        .as_deref()
        .and_then(|a| spec.axis_labels(a));
    let position = |axis: Option<&str>, labels: &[String], r: &Record| -> usize {
        axis.and_then(|a| r.label(a))
            .and_then(|l| labels.iter().position(|x| x == l))
            .unwrap_or(0)
    };
    let simulated: Vec<&Record> = records
        .iter()
        .filter(|r| matches!(r.status, Status::Ok | Status::Infeasible))
        .filter(|r| {
            r.metric(x).is_some_and(f64::is_finite) && r.metric(y).is_some_and(f64::is_finite)
        })
        .collect();
    let xs: Vec<f64> = simulated.iter().filter_map(|r| r.metric(x)).collect();
    let ys: Vec<f64> = simulated.iter().filter_map(|r| r.metric(y)).collect();
    let (sx, sy) = (Scale::of(&xs), Scale::of(&ys));
    let dot = |r: &Record| Dot {
        x: sx.map(r.metric(x).unwrap_or(0.0)),
        y: sy.map(r.metric(y).unwrap_or(0.0)),
        series: position(spec.plot.series.as_deref(), &series_labels, r),
        marker: marker_labels
            .as_deref()
            .map_or(0, |l| position(spec.plot.marker.as_deref(), l, r)),
        feasible: r.status == Status::Ok,
    };
    let dots: Vec<Dot> = simulated.iter().map(|r| dot(r)).collect();
    // One front per series, and the overall front.
    let mut fronts: Vec<Vec<(f64, f64)>> = Vec::new();
    for (k, _) in series_labels.iter().enumerate() {
        let members: Vec<Record> = records
            .iter()
            .filter(|r| position(spec.plot.series.as_deref(), &series_labels, r) == k)
            .cloned()
            .collect();
        fronts.push(
            pareto_records(&members, &[x, y])
                .iter()
                .map(|r| {
                    (
                        sx.map(r.metric(x).unwrap_or(0.0)),
                        sy.map(r.metric(y).unwrap_or(0.0)),
                    )
                })
                .collect(),
        );
    }
    let overall: Vec<(f64, f64)> = pareto_records(records, &[x, y])
        .iter()
        .map(|r| {
            (
                sx.map(r.metric(x).unwrap_or(0.0)),
                sy.map(r.metric(y).unwrap_or(0.0)),
            )
        })
        .collect();
    let picture = Picture {
        title: format!("{}: {} vs {}", spec.name, y.name(), x.name()),
        x,
        y,
        sx,
        sy,
        dots,
        fronts,
        overall,
        series_title: spec.plot.series.clone(),
        series_labels,
        marker_title: spec.plot.marker.clone(),
        marker_labels: marker_labels.unwrap_or_default(),
        infeasible: records.iter().any(|r| r.status == Status::Infeasible),
    };
    let size = (1100u32, 720u32);
    match out.extension().and_then(|e| e.to_str()) {
        Some("png") => picture
            .draw(BitMapBackend::new(out, size).into_drawing_area())
            .map_err(draw_err),
        _ => picture
            .draw(SVGBackend::new(out, size).into_drawing_area())
            .map_err(draw_err),
    }
}

struct Picture {
    title: String,
    x: Metric,
    y: Metric,
    sx: Scale,
    sy: Scale,
    dots: Vec<Dot>,
    fronts: Vec<Vec<(f64, f64)>>,
    overall: Vec<(f64, f64)>,
    series_title: Option<String>,
    series_labels: Vec<String>,
    marker_title: Option<String>,
    marker_labels: Vec<String>,
    infeasible: bool,
}

/// Draws marker `shape` (filled or not) centred at `pos`.
fn marker<DB: DrawingBackend, CT: CoordTranslate>(
    area: &DrawingArea<DB, CT>,
    pos: CT::From,
    shape: usize,
    colour: RGBColor,
) -> std::result::Result<(), String>
where
    CT::From: Clone,
{
    let s = 5i32;
    let filled = (shape / SHAPES) % 2 == 0;
    let style = if filled {
        colour.filled()
    } else {
        colour.stroke_width(2)
    };
    let line = colour.stroke_width(2);
    let at = EmptyElement::at(pos);
    let r = match shape % SHAPES {
        0 => area.draw(&(at + Circle::new((0, 0), s, style))),
        1 => area.draw(&(at + Rectangle::new([(-s, -s), (s, s)], style))),
        2 => area.draw(&(at + TriangleMarker::new((0, 0), s + 2, style))),
        3 => area.draw(
            &(at + Polygon::new(
                vec![(0, -s - 2), (s + 2, 0), (0, s + 2), (-s - 2, 0)],
                style,
            )),
        ),
        4 => area.draw(&(at + Cross::new((0, 0), s, line))),
        _ => area.draw(
            &(at + PathElement::new(vec![(-s - 1, 0), (s + 1, 0)], line)
                + PathElement::new(vec![(0, -s - 1), (0, s + 1)], line)),
        ),
    };
    r.map_err(|e| e.to_string())
}

impl Picture {
    fn draw<DB: DrawingBackend>(
        &self,
        root: DrawingArea<DB, Shift>,
    ) -> std::result::Result<(), String> {
        let e = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
        root.fill(&WHITE).map_err(e)?;
        let (plot_area, legend) = root.split_horizontally(860);
        let log_note = |s: &Scale| if s.log { " (log scale)" } else { "" };
        let mut chart = ChartBuilder::on(&plot_area)
            .caption(&self.title, font(18.0))
            .margin(14)
            .x_label_area_size(52)
            .y_label_area_size(84)
            .build_cartesian_2d(self.sx.lo..self.sx.hi, self.sy.lo..self.sy.hi)
            .map_err(e)?;
        chart
            .configure_mesh()
            .x_desc(format!("{}{}", self.x.label(), log_note(&self.sx)))
            .y_desc(format!("{}{}", self.y.label(), log_note(&self.sy)))
            .x_labels(self.sx.ticks())
            .y_labels(self.sy.ticks())
            .x_label_formatter(&|v| self.sx.label(*v))
            .y_label_formatter(&|v| self.sy.label(*v))
            .label_style(font(12.0))
            .axis_desc_style(font(14.0))
            .light_line_style(RGBColor(235, 235, 235))
            .draw()
            .map_err(e)?;
        let area: &DrawingArea<DB, Cartesian2d<RangedCoordf64, RangedCoordf64>> =
            chart.plotting_area();
        let grey = RGBColor(190, 190, 190);
        for d in self.dots.iter().filter(|d| !d.feasible) {
            area.draw(&Circle::new((d.x, d.y), 3, grey.filled()))
                .map_err(e)?;
        }
        for (k, f) in self.fronts.iter().enumerate() {
            let c = PALETTE[k % PALETTE.len()];
            if f.len() > 1 {
                area.draw(&PathElement::new(f.clone(), c.stroke_width(1)))
                    .map_err(e)?;
            }
        }
        if self.overall.len() > 1 {
            area.draw(&PathElement::new(
                self.overall.clone(),
                BLACK.stroke_width(3),
            ))
            .map_err(e)?;
        }
        for d in self.dots.iter().filter(|d| d.feasible) {
            marker(
                area,
                (d.x, d.y),
                d.marker,
                PALETTE[d.series % PALETTE.len()],
            )?;
        }

        // The legend, drawn by hand beside the chart so marker shapes and
        // colours can be explained separately.
        let mut yy = 40i32;
        let text = |s: &str, x: i32, y: i32, size: f64| {
            legend
                .draw(&Text::new(s.to_string(), (x, y), font(size)))
                .map_err(|er| er.to_string())
        };
        if let Some(t) = &self.series_title {
            text(&format!("colour: {t}"), 8, yy, 14.0)?;
            yy += 22;
        }
        for (k, l) in self.series_labels.iter().enumerate() {
            let c = PALETTE[k % PALETTE.len()];
            legend
                .draw(&PathElement::new(
                    vec![(10, yy + 7), (34, yy + 7)],
                    c.stroke_width(3),
                ))
                .map_err(e)?;
            text(l, 42, yy, 13.0)?;
            yy += 20;
        }
        if !self.marker_labels.is_empty() {
            yy += 10;
            if let Some(t) = &self.marker_title {
                text(&format!("marker: {t}"), 8, yy, 14.0)?;
                yy += 22;
            }
            for (k, l) in self.marker_labels.iter().enumerate() {
                marker(&legend, (22, yy + 7), k, BLACK)?;
                text(l, 42, yy, 13.0)?;
                yy += 20;
            }
        }
        yy += 10;
        legend
            .draw(&PathElement::new(
                vec![(10, yy + 7), (34, yy + 7)],
                BLACK.stroke_width(3),
            ))
            .map_err(e)?;
        text("Pareto front", 42, yy, 13.0)?;
        if self.infeasible {
            yy += 20;
            legend
                .draw(&Circle::new((22, yy + 7), 3, grey.filled()))
                .map_err(e)?;
            text("outside constraints", 42, yy, 13.0)?;
        }
        root.present().map_err(e)
    }
}
