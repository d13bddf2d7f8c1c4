//! One evaluated point as a record: its JSONL line and its CSV row
//! (docs/sweeps.md, "Outputs").
//!
//! A record holds only what the simulation determines (no wall-clock
//! times, no host names), so the same point gives the same bytes on any
//! machine, with any `-j`, in any shard. Numbers are written in Rust's
//! shortest round-trip form and read back exactly (serde_json's
//! `float_roundtrip`), so re-reading a stream and writing it again changes
//! nothing.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::spec::Metric;
use crate::report::Report;

/// What became of a point.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Simulated, within every constraint.
    Ok,
    /// Simulated, but outside a constraint (`reason` says which).
    Infeasible,
    /// The configuration cannot exist or cannot run the workload (a
    /// validation or mapping error: `reason`).
    Invalid,
    /// The simulator failed (a bit-exact mismatch or an internal error): a
    /// bug to report; `accsim sweep` exits with code 1.
    Error,
}

impl Status {
    pub fn name(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Infeasible => "infeasible",
            Status::Invalid => "invalid",
            Status::Error => "error",
        }
    }
}

/// The figures of a simulated point (docs/sweeps.md defines each).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Metrics {
    pub area_mm2: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ffe_area_mm2: Option<f64>,
    pub backend_area_mm2: f64,
    pub tops: f64,
    pub tops_per_w: f64,
    pub energy_pj: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_energy_pj: Option<f64>,
    pub latency_s: f64,
    pub inferences_per_s: f64,
    pub cycles: u64,
    pub macs: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub utilisation: Option<f64>,
    pub dram_bytes: u64,
    pub bit_exact: bool,
}

impl Metrics {
    /// The figures of a report. Throughput is the steady state when the
    /// machine streams frames (an FFE or NVDLA system: FFE and back-end work
    /// on different frames at once), else one inference's.
    pub fn from_report(r: &Report) -> Metrics {
        let t = r.throughput.as_ref();
        let stream = r.system.as_ref().and_then(|s| s.stream.as_ref());
        let frame = r.system.as_ref().map(|s| &s.frame);
        let measured = r.total.measured.as_ref();
        let latency_s = t.map_or(0.0, |t| t.seconds);
        let inferences_per_s = match stream {
            Some(s) => s.frames_per_s,
            None if latency_s > 0.0 => 1.0 / latency_s,
            None => 0.0,
        };
        let energy_pj = match frame {
            Some(f) => f.energy_pj,
            None => measured.map_or(0.0, |m| m.energy_pj.total),
        };
        let ops = 2.0 * r.total.macs as f64;
        let area = r.area.as_ref();
        Metrics {
            area_mm2: r.area_mm2.unwrap_or(0.0),
            ffe_area_mm2: area.and_then(|a| a.ffe_mm2),
            backend_area_mm2: area.map_or(0.0, |a| a.backend_mm2),
            tops: ops * inferences_per_s / 1e12,
            tops_per_w: if energy_pj > 0.0 {
                ops / energy_pj
            } else {
                0.0
            },
            energy_pj,
            // Only the PE array splits its energy by level.
            memory_energy_pj: match (r.system.as_ref(), measured) {
                (None, Some(m)) => Some(m.energy_pj.memory()),
                _ => None,
            },
            latency_s,
            inferences_per_s,
            cycles: t.map_or(0, |t| t.cycles),
            macs: r.total.macs,
            utilisation: measured.map(|m| m.utilisation),
            dram_bytes: measured.map_or(0, |m| m.dram.read_bytes + m.dram.write_bytes),
            bit_exact: r.bit_exact,
        }
    }

    pub fn get(&self, m: Metric) -> Option<f64> {
        Some(match m {
            Metric::AreaMm2 => self.area_mm2,
            Metric::FfeAreaMm2 => return self.ffe_area_mm2,
            Metric::BackendAreaMm2 => self.backend_area_mm2,
            Metric::Tops => self.tops,
            Metric::TopsPerW => self.tops_per_w,
            Metric::EnergyPj => self.energy_pj,
            Metric::MemoryEnergyPj => return self.memory_energy_pj,
            Metric::LatencyS => self.latency_s,
            Metric::InferencesPerS => self.inferences_per_s,
            Metric::Cycles => self.cycles as f64,
            Metric::Macs => self.macs as f64,
            Metric::Utilisation => return self.utilisation,
            Metric::DramBytes => self.dram_bytes as f64,
        })
    }

    /// A metric as its CSV cell: integers as integers, absent as empty.
    fn cell(&self, m: Metric) -> String {
        match m {
            Metric::Cycles => self.cycles.to_string(),
            Metric::Macs => self.macs.to_string(),
            Metric::DramBytes => self.dram_bytes.to_string(),
            _ => self.get(m).map(|x| x.to_string()).unwrap_or_default(),
        }
    }
}

/// One point's outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    pub index: usize,
    pub key: String,
    pub status: Status,
    pub workload: String,
    /// Axis name to value label.
    pub axes: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<Metrics>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl Record {
    /// The JSONL line, newline included.
    pub fn json_line(&self) -> String {
        let mut s = serde_json::to_string(self).unwrap_or_else(|e| {
            // Serialising plain data cannot fail; keep the line well formed anyway.
            format!("{{\"index\":{},\"error\":\"{e}\"}}", self.index)
        });
        s.push('\n');
        s
    }

    /// Parses one JSONL line (without its newline).
    pub fn from_json(line: &str) -> Result<Record, String> {
        serde_json::from_str(line).map_err(|e| e.to_string())
    }

    /// The value of `axis` (`workload` included).
    pub fn label(&self, axis: &str) -> Option<&str> {
        if axis == "workload" {
            return Some(&self.workload);
        }
        self.axes.get(axis).map(String::as_str)
    }

    pub fn metric(&self, m: Metric) -> Option<f64> {
        self.metrics.as_ref().and_then(|x| x.get(m))
    }
}

/// The CSV header for a sweep with `axes`.
pub fn csv_header(axes: &[String]) -> String {
    let mut cols: Vec<String> = ["index", "key", "status", "workload"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    cols.extend(axes.iter().cloned());
    cols.extend(Metric::ALL.iter().map(|m| m.name().to_string()));
    cols.push("bit_exact".to_string());
    cols.push("reason".to_string());
    csv_line(&cols)
}

/// The CSV row of `r`, newline included.
pub fn csv_row(r: &Record, axes: &[String]) -> String {
    let mut cols = vec![
        r.index.to_string(),
        r.key.clone(),
        r.status.name().to_string(),
        r.workload.clone(),
    ];
    for a in axes {
        cols.push(r.axes.get(a).cloned().unwrap_or_default());
    }
    for m in Metric::ALL {
        cols.push(r.metrics.as_ref().map(|x| x.cell(m)).unwrap_or_default());
    }
    cols.push(
        r.metrics
            .as_ref()
            .map(|x| x.bit_exact.to_string())
            .unwrap_or_default(),
    );
    cols.push(r.reason.clone().unwrap_or_default());
    csv_line(&cols)
}

/// One CSV line (RFC 4180 quoting), newline included.
pub fn csv_line(cols: &[String]) -> String {
    let mut out = String::new();
    for (i, c) in cols.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        if c.contains([',', '"', '\n', '\r']) {
            out.push('"');
            out.push_str(&c.replace('"', "\"\""));
            out.push('"');
        } else {
            out.push_str(c);
        }
    }
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_round_trips_exactly() {
        let r = Record {
            index: 3,
            key: "00ff".into(),
            status: Status::Ok,
            workload: "kws".into(),
            axes: BTreeMap::from([("rows".into(), "8".into())]),
            metrics: Some(Metrics {
                area_mm2: 0.1 + 0.2,
                tops: 1.0 / 3.0,
                energy_pj: 1e-300,
                cycles: 12,
                ..Metrics::default()
            }),
            reason: None,
        };
        let line = r.json_line();
        let back = Record::from_json(line.trim_end()).unwrap();
        assert_eq!(back, r);
        assert_eq!(back.json_line(), line);
    }

    #[test]
    fn csv_quotes_what_needs_it() {
        assert_eq!(
            csv_line(&["a".into(), "b,c".into(), "say \"x\"".into()]),
            "a,\"b,c\",\"say \"\"x\"\"\"\n"
        );
    }
}
