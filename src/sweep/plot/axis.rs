//! Plot axes a reviewer can read: a linear or log scale chosen from the
//! data's spread, and tick positions with labels chosen here rather than
//! by plotters, so that every axis has at least [`MIN_TICKS`] labelled
//! ticks, no two at one position and no two labels alike.
//!
//! The scale rule (docs/sweeps.md, "Plots"): an axis is logarithmic when
//! every value is positive and the largest is at least [`LOG_RATIO`] times
//! the smallest. On a linear axis from zero such data would put the
//! smallest values within the lowest tenth of the axis, where points pile
//! up; on a log axis every factor of ten gets the same room.

use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, Ranged};

/// Largest over smallest value from which an axis is logarithmic.
pub const LOG_RATIO: f64 = 10.0;

/// Fewest labelled ticks on an axis.
pub const MIN_TICKS: usize = 4;

/// An axis: where it starts and ends, in plotted coordinates (log10 of the
/// value on a log axis).
#[derive(Debug, Clone, PartialEq)]
pub struct Scale {
    pub log: bool,
    pub lo: f64,
    pub hi: f64,
}

/// A labelled tick at a plotted coordinate.
#[derive(Debug, Clone, PartialEq)]
pub struct Tick {
    pub at: f64,
    pub label: String,
}

impl Scale {
    /// The scale for `values` (non-finite values ignored), with a margin.
    pub fn of(values: &[f64]) -> Scale {
        let finite = values.iter().copied().filter(|v| v.is_finite());
        let (min, max) = finite.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
            (a.min(v), b.max(v))
        });
        if !min.is_finite() {
            return Scale {
                log: false,
                lo: 0.0,
                hi: 1.0,
            };
        }
        let log = min > 0.0 && max >= LOG_RATIO * min;
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

    /// A value's plotted coordinate.
    pub fn map(&self, x: f64) -> f64 {
        if self.log { x.log10() } else { x }
    }

    /// The labelled ticks, ascending, inside the axis.
    pub fn ticks(&self) -> Vec<Tick> {
        if !self.log {
            return linear_ticks(self.lo, self.hi);
        }
        // One notation per axis: plain when every tick is from 0.001 to
        // 1000000, else e-notation throughout.
        let plain = self.lo.floor() >= -3.0 && self.hi.ceil() <= 6.0;
        let decade_ticks = |mantissas: &[f64]| -> Vec<Tick> {
            let mut out = Vec::new();
            for k in self.lo.floor() as i32..=self.hi.ceil() as i32 {
                for &m in mantissas {
                    let at = m.log10() + f64::from(k);
                    if (self.lo..=self.hi).contains(&at) {
                        out.push(Tick {
                            at,
                            label: power_label(m, k, plain),
                        });
                    }
                }
            }
            out
        };
        let powers = decade_ticks(&[1.0]);
        if powers.len() >= MIN_TICKS {
            // At most about ten labels: every n-th power of ten.
            let n = powers.len().div_ceil(10);
            return powers.into_iter().step_by(n).collect();
        }
        for mantissas in [
            &[1.0, 2.0, 5.0][..],
            &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0][..],
        ] {
            let t = decade_ticks(mantissas);
            if t.len() >= MIN_TICKS {
                return t;
            }
        }
        // Less than a factor of about 2.5: evenly spaced values.
        linear_ticks(10f64.powf(self.lo), 10f64.powf(self.hi))
            .into_iter()
            .filter_map(|t| {
                let v: f64 = t.label.parse().ok()?;
                (v > 0.0).then(|| Tick {
                    at: v.log10(),
                    label: t.label,
                })
            })
            .collect()
    }
}

/// A plotters axis from `lo` to `hi` with exactly the given key points
/// (plotters would choose its own otherwise).
pub struct Ticked {
    lo: f64,
    hi: f64,
    at: Vec<f64>,
}

impl Ticked {
    pub fn new(lo: f64, hi: f64, ticks: &[Tick]) -> Ticked {
        Ticked {
            lo,
            hi,
            at: ticks.iter().map(|t| t.at).collect(),
        }
    }
}

impl Ranged for Ticked {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        let span = self.hi - self.lo;
        let frac = if span > 0.0 {
            (value - self.lo) / span
        } else {
            0.5
        };
        // `as` saturates: a point far outside lands at the edge.
        (f64::from(limit.0) + frac * f64::from(limit.1 - limit.0)).round() as i32
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        if hint.weight().allow_light_points() {
            Vec::new()
        } else {
            self.at.clone()
        }
    }

    fn range(&self) -> std::ops::Range<f64> {
        self.lo..self.hi
    }
}

/// `m x 10^k` as a label: plain (`0.002`, `500`) or `2e-3`.
fn power_label(m: f64, k: i32, plain: bool) -> String {
    if plain {
        let decimals = (-k).max(0) as usize;
        format!("{:.decimals$}", m * 10f64.powi(k))
    } else {
        format!("{m}e{k}")
    }
}

/// Ticks at multiples of a step of 1, 2 or 5 x 10^k: the largest step that
/// gives [`MIN_TICKS`] or more in `[lo, hi]` (so at most about 12).
fn linear_ticks(lo: f64, hi: f64) -> Vec<Tick> {
    let span = hi - lo;
    if !(span > 0.0 && span.is_finite()) {
        return Vec::new();
    }
    let top = span.log10().floor() as i32;
    for e in (top - 2..=top).rev() {
        for m in [5.0, 2.0, 1.0] {
            let step = m * 10f64.powi(e);
            // A tolerance so that a tick at an end is not lost to rounding.
            let first = (lo / step - 1e-9).ceil() as i64;
            let last = (hi / step + 1e-9).floor() as i64;
            if last - first + 1 >= MIN_TICKS as i64 {
                let magnitude = lo.abs().max(hi.abs());
                return (first..=last)
                    .map(|i| {
                        let v = i as f64 * step;
                        Tick {
                            at: v,
                            label: linear_label(v, step, magnitude),
                        }
                    })
                    .collect();
            }
        }
    }
    Vec::new()
}

/// A multiple of `step` with just the digits that tell it from its
/// neighbours: plain, or in e-notation when the axis's magnitude is at
/// least 10^6 or below 10^-3.
fn linear_label(v: f64, step: f64, magnitude: f64) -> String {
    if v == 0.0 {
        return "0".to_string();
    }
    let step_exp = step.log10().floor() as i32;
    if (1e-3..1e6).contains(&magnitude) {
        let decimals = (-step_exp).max(0) as usize;
        format!("{v:.decimals$}")
    } else {
        let digits = (v.abs().log10().floor() as i32 - step_exp).max(0) as usize;
        format!("{v:.digits$e}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every scale from a factor of 1.01 to 10^6, at magnitudes from 10^-9
    /// to 10^12, gets at least four ticks, inside the axis, at distinct
    /// positions, with distinct labels.
    #[test]
    fn every_axis_gets_four_distinct_labelled_ticks() {
        for base in [1e-9, 3.3e-4, 0.02, 1.0, 7.0, 450.0, 1e6, 2.5e12] {
            for ratio in [1.01, 1.05, 1.3, 2.0, 3.0, 9.0, 10.0, 50.0, 1e3, 1e6] {
                let s = Scale::of(&[base, base * ratio]);
                let t = s.ticks();
                let case = format!("{base} x{ratio}: {s:?} {t:?}");
                assert!(t.len() >= MIN_TICKS, "{case}");
                assert!(t.len() <= 13, "{case}");
                for w in t.windows(2) {
                    assert!(w[0].at < w[1].at, "{case}");
                }
                let mut labels: Vec<&str> = t.iter().map(|t| t.label.as_str()).collect();
                labels.sort_unstable();
                labels.dedup();
                assert_eq!(labels.len(), t.len(), "{case}");
                let slack = (s.hi - s.lo) * 1e-9;
                assert!(
                    t.iter()
                        .all(|t| t.at >= s.lo - slack && t.at <= s.hi + slack),
                    "{case}"
                );
            }
        }
    }

    #[test]
    fn log_from_a_factor_of_ten() {
        assert!(!Scale::of(&[1.0, 9.99]).log);
        assert!(Scale::of(&[1.0, 10.0]).log);
        assert!(
            !Scale::of(&[0.0, 100.0]).log,
            "zero cannot be on a log axis"
        );
        assert!(!Scale::of(&[-1.0, 100.0]).log);
    }

    /// The LU22 sweep (sweeps/lu22.toml, its 28 `ok` points): latency 5.3
    /// to 68.6 ms, energy 6.8e8 to 1.02e10 pJ. On main's linear axes the
    /// 16 fixed-weight points piled up in the lowest tenth of both axes.
    #[test]
    fn the_lu22_points_go_on_log_axes() {
        let latency_s = [
            0.008935, 0.00937, 0.008886, 0.005603, 0.008813, 0.009232, 0.008745, 0.005435,
            0.008713, 0.009137, 0.008645, 0.00533, 0.008713, 0.009137, 0.008645, 0.00533, 0.04056,
            0.02946, 0.06855, 0.03663, 0.04035, 0.02925, 0.06834, 0.03641, 0.03651, 0.02837,
            0.05874, 0.03284,
        ];
        let energy_pj = [
            7.57e8, 7.55e8, 7.9e8, 7.73e8, 7.13e8, 7.06e8, 7.41e8, 7.23e8, 6.84e8, 6.77e8, 7.12e8,
            6.93e8, 6.84e8, 6.77e8, 7.12e8, 6.93e8, 6.38e9, 4.87e9, 1.02e10, 5.85e9, 6.35e9,
            4.84e9, 1.02e10, 5.82e9, 5.18e9, 4.26e9, 7.64e9, 4.87e9,
        ];
        let (x, y) = (Scale::of(&latency_s), Scale::of(&energy_pj));
        assert!(x.log && y.log);
        let labels = |s: &Scale| s.ticks().into_iter().map(|t| t.label).collect::<Vec<_>>();
        assert_eq!(labels(&x), ["0.005", "0.01", "0.02", "0.05"]);
        assert_eq!(labels(&y), ["1e9", "2e9", "5e9", "1e10"]);
    }

    #[test]
    fn linear_ticks_use_steps_of_one_two_or_five() {
        let labels = |lo: f64, hi: f64| {
            linear_ticks(lo, hi)
                .into_iter()
                .map(|t| t.label)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            labels(0.0, 1.4),
            ["0", "0.2", "0.4", "0.6", "0.8", "1.0", "1.2", "1.4"]
        );
        assert_eq!(labels(0.0, 7.5), ["0", "2", "4", "6"]);
        assert_eq!(
            labels(100.0, 101.0),
            ["100.0", "100.2", "100.4", "100.6", "100.8", "101.0"]
        );
        assert_eq!(
            labels(1.0e9, 1.01e9),
            [
                "1.000e9", "1.002e9", "1.004e9", "1.006e9", "1.008e9", "1.010e9"
            ]
        );
    }
}
