//! Scatter plots of a sweep (docs/sweeps.md, "Plots"): every simulated
//! point for one objective pair, one colour (and one joined Pareto front)
//! per value of the `[plot] series` axis, one marker shape per value of the
//! `[plot] marker` axis, the overall front as a thick black line, and points
//! outside the constraints in grey. PNG or SVG by extension; the embedded
//! font of [`crate::trace::plot`], so no system library is needed.
//!
//! No two categories are drawn alike: each series value has its own colour
//! ([`PALETTE`], at most [`MAX_SERIES`]) and each marker value its own
//! shape ([`GLYPHS`], at most [`MAX_MARKERS`]; the spec parser refuses
//! axes with more). Axes are linear or logarithmic by the data's spread,
//! with at least four labelled ticks ([`axis`]). The legend lists only
//! what the plot shows.

pub mod axis;

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;

use self::axis::Scale;
use super::output::pareto_records;
use super::record::{Record, Status};
use super::spec::{Metric, SweepSpec};
use crate::error::{Error, Result};
use crate::trace::plot::{font, register_font};

/// One colour per series value: Tableau 10 without its grey (grey marks
/// points outside the constraints, black the overall front), then four
/// darker hues.
pub const PALETTE: [RGBColor; 13] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
    RGBColor(0, 0, 128),
    RGBColor(128, 0, 0),
    RGBColor(0, 110, 110),
    RGBColor(110, 110, 0),
];

/// Most values a `[plot] series` axis may have.
pub const MAX_SERIES: usize = PALETTE.len();

/// A marker's outline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outline {
    Circle,
    Square,
    TriangleUp,
    TriangleDown,
    Diamond,
    Pentagon,
    Star,
    Cross,
    Plus,
    Asterisk,
}

/// A marker shape: an outline, filled or drawn as a line (the last three
/// outlines are lines only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Glyph {
    pub outline: Outline,
    pub filled: bool,
}

const fn glyph(outline: Outline, filled: bool) -> Glyph {
    Glyph { outline, filled }
}

/// One shape per marker value, the most distinct first.
pub const GLYPHS: [Glyph; 17] = [
    glyph(Outline::Circle, true),
    glyph(Outline::Square, true),
    glyph(Outline::TriangleUp, true),
    glyph(Outline::Diamond, true),
    glyph(Outline::Cross, false),
    glyph(Outline::Plus, false),
    glyph(Outline::Circle, false),
    glyph(Outline::Square, false),
    glyph(Outline::TriangleUp, false),
    glyph(Outline::Diamond, false),
    glyph(Outline::TriangleDown, true),
    glyph(Outline::TriangleDown, false),
    glyph(Outline::Pentagon, true),
    glyph(Outline::Pentagon, false),
    glyph(Outline::Star, true),
    glyph(Outline::Star, false),
    glyph(Outline::Asterisk, false),
];

/// Most values a `[plot] marker` axis may have.
pub const MAX_MARKERS: usize = GLYPHS.len();

/// How a point of series `series` and marker value `marker` is drawn.
pub fn style(series: usize, marker: usize) -> (RGBColor, Glyph) {
    (
        PALETTE[series % PALETTE.len()],
        GLYPHS[marker % GLYPHS.len()],
    )
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
    let picture = Picture::new(spec, records, x, y);
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

/// The `[plot]` groups: a colour per value of the series axis, a marker
/// per value of the marker axis.
struct Groups<'s> {
    spec: &'s SweepSpec,
    series_labels: Vec<String>,
    marker_labels: Option<Vec<String>>,
}

impl<'s> Groups<'s> {
    fn of(spec: &'s SweepSpec) -> Groups<'s> {
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
        Groups {
            spec,
            series_labels,
            marker_labels,
        }
    }

    /// The index of `r`'s label on `axis` among `labels` (0 when absent).
    fn position(axis: Option<&str>, labels: &[String], r: &Record) -> usize {
        axis.and_then(|a| r.label(a))
            .and_then(|l| labels.iter().position(|x| x == l))
            .unwrap_or(0)
    }

    fn series(&self, r: &Record) -> usize {
        Self::position(self.spec.plot.series.as_deref(), &self.series_labels, r)
    }

    fn marker(&self, r: &Record) -> usize {
        self.marker_labels.as_deref().map_or(0, |l| {
            Self::position(self.spec.plot.marker.as_deref(), l, r)
        })
    }
}

/// The Pareto front of `records` in `x` and `y`, in plotted coordinates.
fn front(
    records: &[Record],
    (x, y): (Metric, Metric),
    (sx, sy): (&Scale, &Scale),
) -> Vec<(f64, f64)> {
    pareto_records(records, &[x, y])
        .iter()
        .map(|r| {
            (
                sx.map(r.metric(x).unwrap_or(0.0)),
                sy.map(r.metric(y).unwrap_or(0.0)),
            )
        })
        .collect()
}

impl Picture {
    /// The picture of `records`: a dot per simulated point with finite
    /// metrics, one front per series and the overall front.
    fn new(spec: &SweepSpec, records: &[Record], x: Metric, y: Metric) -> Picture {
        let groups = Groups::of(spec);
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
        let dots: Vec<Dot> = simulated
            .iter()
            .map(|r| Dot {
                x: sx.map(r.metric(x).unwrap_or(0.0)),
                y: sy.map(r.metric(y).unwrap_or(0.0)),
                series: groups.series(r),
                marker: groups.marker(r),
                feasible: r.status == Status::Ok,
            })
            .collect();
        let fronts = (0..groups.series_labels.len())
            .map(|k| {
                let members: Vec<Record> = records
                    .iter()
                    .filter(|r| groups.series(r) == k)
                    .cloned()
                    .collect();
                front(&members, (x, y), (&sx, &sy))
            })
            .collect();
        let overall = front(records, (x, y), (&sx, &sy));
        Picture {
            title: format!("{}: {} vs {}", spec.name, y.name(), x.name()),
            x,
            y,
            sx,
            sy,
            dots,
            fronts,
            overall,
            series_title: spec.plot.series.clone(),
            series_labels: groups.series_labels,
            marker_title: spec.plot.marker.clone(),
            marker_labels: groups.marker_labels.unwrap_or_default(),
            infeasible: simulated.iter().any(|r| r.status == Status::Infeasible),
        }
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

/// The vertices of a closed outline around (0, 0), in pixels.
fn vertices(outline: Outline) -> Vec<(i32, i32)> {
    let polar = |n: usize, radii: &[f64]| -> Vec<(i32, i32)> {
        (0..n)
            .map(|k| {
                let angle =
                    -std::f64::consts::FRAC_PI_2 + std::f64::consts::TAU * k as f64 / n as f64;
                let r = radii[k % radii.len()];
                (
                    (r * angle.cos()).round() as i32,
                    (r * angle.sin()).round() as i32,
                )
            })
            .collect()
    };
    match outline {
        Outline::Square => vec![(-5, -5), (5, -5), (5, 5), (-5, 5)],
        Outline::TriangleUp => vec![(0, -7), (6, 4), (-6, 4)],
        Outline::TriangleDown => vec![(0, 7), (6, -4), (-6, -4)],
        Outline::Diamond => vec![(0, -7), (7, 0), (0, 7), (-7, 0)],
        Outline::Pentagon => polar(5, &[6.5]),
        Outline::Star => polar(10, &[8.0, 3.5]),
        Outline::Circle | Outline::Cross | Outline::Plus | Outline::Asterisk => Vec::new(),
    }
}

/// Draws `g` in `colour` centred at `pos`.
fn marker<DB: DrawingBackend, CT: CoordTranslate>(
    area: &DrawingArea<DB, CT>,
    pos: CT::From,
    g: Glyph,
    colour: RGBColor,
) -> std::result::Result<(), String>
where
    CT::From: Clone,
{
    let line = colour.stroke_width(2);
    let at = || EmptyElement::at(pos.clone());
    let segment = |a: (i32, i32), b: (i32, i32)| PathElement::new(vec![a, b], line);
    let r = match g.outline {
        Outline::Circle => area
            .draw(&(at() + Circle::new((0, 0), 5, if g.filled { colour.filled() } else { line }))),
        Outline::Cross => {
            area.draw(&(at() + segment((-5, -5), (5, 5)) + segment((-5, 5), (5, -5))))
        }
        Outline::Plus => area.draw(&(at() + segment((-6, 0), (6, 0)) + segment((0, -6), (0, 6)))),
        Outline::Asterisk => area.draw(
            &(at()
                + segment((-6, 0), (6, 0))
                + segment((-4, -5), (4, 5))
                + segment((-4, 5), (4, -5))),
        ),
        o if g.filled => area.draw(&(at() + Polygon::new(vertices(o), colour.filled()))),
        o => {
            let mut closed = vertices(o);
            closed.extend(closed.first().copied());
            area.draw(&(at() + PathElement::new(closed, line)))
        }
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
        let (xt, yt) = (self.sx.ticks(), self.sy.ticks());
        let mut chart = ChartBuilder::on(&plot_area)
            .caption(&self.title, font(18.0))
            .margin(14)
            .x_label_area_size(52)
            .y_label_area_size(84)
            .build_cartesian_2d(
                axis::Ticked::new(self.sx.lo, self.sx.hi, &xt),
                axis::Ticked::new(self.sy.lo, self.sy.hi, &yt),
            )
            .map_err(e)?;
        let label_of = |ticks: &[axis::Tick], v: f64| {
            ticks
                .iter()
                .find(|t| t.at == v)
                .map_or_else(String::new, |t| t.label.clone())
        };
        chart
            .configure_mesh()
            .x_desc(format!("{}{}", self.x.label(), log_note(&self.sx)))
            .y_desc(format!("{}{}", self.y.label(), log_note(&self.sy)))
            .x_label_formatter(&|v| label_of(&xt, *v))
            .y_label_formatter(&|v| label_of(&yt, *v))
            .label_style(font(12.0))
            .axis_desc_style(font(14.0))
            .bold_line_style(RGBColor(225, 225, 225))
            .draw()
            .map_err(e)?;
        let area = chart.plotting_area();
        let grey = RGBColor(190, 190, 190);
        for d in self.dots.iter().filter(|d| !d.feasible) {
            area.draw(&Circle::new((d.x, d.y), 3, grey.filled()))
                .map_err(e)?;
        }
        for (k, f) in self.fronts.iter().enumerate() {
            if f.len() > 1 {
                area.draw(&PathElement::new(f.clone(), style(k, 0).0.stroke_width(1)))
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
            let (colour, g) = style(d.series, d.marker);
            marker(area, (d.x, d.y), g, colour)?;
        }
        // A ring around every point of the overall front: visible even
        // when the front is a single point.
        for &p in &self.overall {
            area.draw(&Circle::new(p, 10, BLACK.stroke_width(2)))
                .map_err(e)?;
        }
        self.draw_legend(&legend)
    }

    /// The legend, drawn by hand beside the chart so colours and marker
    /// shapes are explained separately; only what the plot shows.
    fn draw_legend<DB: DrawingBackend>(
        &self,
        legend: &DrawingArea<DB, Shift>,
    ) -> std::result::Result<(), String> {
        let e = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
        let mut yy = 40i32;
        let text = |s: &str, x: i32, y: i32, size: f64| {
            legend
                .draw(&Text::new(s.to_string(), (x, y), font(size)))
                .map_err(|er| er.to_string())
        };
        let shown = |pick: &dyn Fn(&Dot) -> usize, k: usize| {
            self.dots.iter().any(|d| d.feasible && pick(d) == k)
        };
        if let Some(t) = &self.series_title {
            text(&format!("colour: {t}"), 8, yy, 14.0)?;
            yy += 22;
        }
        for (k, l) in self.series_labels.iter().enumerate() {
            if !shown(&|d| d.series, k) {
                continue;
            }
            legend
                .draw(&PathElement::new(
                    vec![(10, yy + 7), (34, yy + 7)],
                    style(k, 0).0.stroke_width(3),
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
                if !shown(&|d| d.marker, k) {
                    continue;
                }
                marker(legend, (22, yy + 7), style(0, k).1, BLACK)?;
                text(l, 42, yy, 13.0)?;
                yy += 20;
            }
        }
        if !self.overall.is_empty() {
            yy += 10;
            legend
                .draw(&PathElement::new(
                    vec![(6, yy + 7), (38, yy + 7)],
                    BLACK.stroke_width(3),
                ))
                .map_err(e)?;
            legend
                .draw(&Circle::new((22, yy + 7), 8, BLACK.stroke_width(2)))
                .map_err(e)?;
            text("Pareto front (ringed)", 42, yy, 13.0)?;
        }
        if self.infeasible {
            yy += 20;
            legend
                .draw(&Circle::new(
                    (22, yy + 7),
                    3,
                    RGBColor(190, 190, 190).filled(),
                ))
                .map_err(e)?;
            text("outside constraints", 42, yy, 13.0)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every (series, marker) pair within the limits is drawn differently:
    /// colours differ pairwise and from the grey and black of the
    /// infeasible points and the front; shapes differ pairwise.
    #[test]
    fn colour_and_shape_assignment_is_injective() {
        let mut seen = std::collections::HashSet::new();
        for k in 0..MAX_SERIES {
            for m in 0..MAX_MARKERS {
                let (c, g) = style(k, m);
                assert!(
                    seen.insert((c.0, c.1, c.2, g.outline as u8, g.filled)),
                    "{k} {m}"
                );
            }
        }
        assert_eq!(seen.len(), MAX_SERIES * MAX_MARKERS);
        let distance = |a: RGBColor, b: RGBColor| {
            [(a.0, b.0), (a.1, b.1), (a.2, b.2)]
                .iter()
                .map(|&(x, y)| (i32::from(x) - i32::from(y)).abs())
                .sum::<i32>()
        };
        for (i, &a) in PALETTE.iter().enumerate() {
            assert!(distance(a, RGBColor(190, 190, 190)) > 60, "{i} is too grey");
            assert!(distance(a, BLACK) > 100, "{i} is too dark");
            for &b in &PALETTE[i + 1..] {
                assert!(distance(a, b) > 60, "{a:?} and {b:?} look alike");
            }
        }
    }

    /// FIXYNN's 11 back-ends: PE-16x16, 24x24 and 32x32 (marker values 8
    /// to 10) no longer share the shapes of NVDLA C, D and E (2 to 4).
    #[test]
    fn fixynn_back_ends_have_eleven_shapes() {
        let shapes: Vec<Glyph> = (0..11).map(|m| style(0, m).1).collect();
        for (i, a) in shapes.iter().enumerate() {
            for b in &shapes[i + 1..] {
                assert_ne!(a, b);
            }
        }
        // Line-only outlines are never "filled": a filled and a hollow
        // cross would look the same.
        for g in GLYPHS {
            if matches!(
                g.outline,
                Outline::Cross | Outline::Plus | Outline::Asterisk
            ) {
                assert!(!g.filled);
            }
        }
    }
}
