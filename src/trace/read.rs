//! Reading a VCD back (for `accsim plot`): the value changes of every
//! signal inside a window, with each signal's value at the window's start.

use std::collections::HashMap;
use std::io::BufReader;
use std::path::Path;

use vcd::{Command, IdCode, ScopeItem, Value};

use crate::error::InputError;

/// One signal's changes, `(time, value)` in time order; the first entry is
/// the value at the window's start.
#[derive(Debug, Clone, PartialEq)]
pub struct SignalTrace {
    /// `scope.name`, e.g. `glb.read_busy`.
    pub name: String,
    pub width: u32,
    pub changes: Vec<(u64, u64)>,
}

impl SignalTrace {
    /// Value at time `t`.
    pub fn value_at(&self, t: u64) -> u64 {
        match self.changes.partition_point(|&(ct, _)| ct <= t) {
            0 => 0,
            i => self.changes[i - 1].1,
        }
    }

    /// Time-weighted mean of the value over `[a, b)`.
    pub fn mean(&self, a: u64, b: u64) -> f64 {
        if b <= a {
            return 0.0;
        }
        let mut i = self.changes.partition_point(|&(ct, _)| ct <= a);
        let mut value = if i == 0 { 0 } else { self.changes[i - 1].1 };
        let mut t = a;
        let mut area = 0.0;
        while t < b {
            let next = self.changes.get(i).map_or(b, |&(ct, _)| ct.min(b));
            area += value as f64 * (next - t) as f64;
            t = next;
            if let Some(&(_, v)) = self.changes.get(i) {
                value = v;
            }
            i += 1;
        }
        area / (b - a) as f64
    }
}

/// A trace read from a file.
#[derive(Debug, Clone)]
pub struct Waveform {
    pub signals: Vec<SignalTrace>,
    /// The window read: `[start, end)`.
    pub start: u64,
    pub end: u64,
}

impl Waveform {
    pub fn get(&self, name: &str) -> Option<&SignalTrace> {
        self.signals.iter().find(|s| s.name == name)
    }

    /// Signals whose name starts with `prefix`.
    pub fn matching<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = &'a SignalTrace> + 'a {
        self.signals
            .iter()
            .filter(move |s| s.name.starts_with(prefix))
    }
}

fn collect(items: &[ScopeItem], path: &str, out: &mut Vec<(IdCode, String, u32)>) {
    for item in items {
        match item {
            ScopeItem::Scope(s) => {
                let p = if path.is_empty() || path == "accsim" {
                    s.identifier.clone()
                } else {
                    format!("{path}.{}", s.identifier)
                };
                collect(&s.items, &p, out);
            }
            ScopeItem::Var(v) => out.push((
                v.code,
                if path.is_empty() {
                    v.reference.clone()
                } else {
                    format!("{path}.{}", v.reference)
                },
                v.size,
            )),
            _ => {}
        }
    }
}

fn bits(values: impl Iterator<Item = Value>) -> u64 {
    values.fold(0u64, |acc, v| (acc << 1) | u64::from(v == Value::V1))
}

/// Reads the changes of `path` inside `window` (all of it when `None`).
pub fn read_vcd(path: &Path, window: Option<(u64, u64)>) -> Result<Waveform, InputError> {
    let fail = |m: String| InputError::new(path, m);
    let file =
        std::fs::File::open(path).map_err(|e| fail(format!("cannot read the trace: {e}")))?;
    let mut parser = vcd::Parser::new(BufReader::new(file));
    let header = parser
        .parse_header()
        .map_err(|e| fail(format!("not a valid VCD header: {e}")))?;
    let mut vars = Vec::new();
    collect(&header.items, "", &mut vars);
    let mut reader = Reader::new(vars, window);
    let stop = window.map_or(u64::MAX, |(_, stop)| stop);
    let mut past_window = false;
    for command in parser {
        let command = command.map_err(|e| fail(format!("invalid VCD body: {e}")))?;
        let (code, value) = match command {
            Command::Timestamp(t) => {
                reader.timestamp(t);
                if t >= stop {
                    past_window = true;
                    break;
                }
                continue;
            }
            Command::ChangeScalar(code, v) => (code, u64::from(v == Value::V1)),
            Command::ChangeVector(code, v) => (code, bits(v.iter())),
            _ => continue,
        };
        reader.change(&code, value);
    }
    if let Some((first, last)) = window
        && !past_window
        && first >= reader.last_time
    {
        // The whole trace was read and ends before the window: an empty picture.
        let last_time = reader.last_time;
        return Err(InputError::new(
            "--window",
            format!(
                "{first}:{last} starts at or after the last timestamp of {} ({last_time}); \
                 valid: a window starting before cycle {last_time}",
                path.display()
            ),
        ));
    }
    Ok(reader.finish(stop))
}

/// The signals' changes as the VCD body is read.
struct Reader {
    signals: Vec<SignalTrace>,
    /// The signals a VCD identifier drives (several may share one).
    index: HashMap<IdCode, Vec<usize>>,
    /// Each signal's latest value, before the window too.
    current: Vec<u64>,
    /// Whether every signal has its value at `start` recorded.
    seeded: bool,
    /// The first cycle kept: the window's, or the trace's first timestamp
    /// (a windowed recording starts at its window); `u64::MAX` until known.
    start: u64,
    /// The cycle of the changes being read.
    time: u64,
    last_time: u64,
}

impl Reader {
    fn new(vars: Vec<(IdCode, String, u32)>, window: Option<(u64, u64)>) -> Reader {
        let mut index: HashMap<IdCode, Vec<usize>> = HashMap::new();
        let mut signals: Vec<SignalTrace> = Vec::new();
        for (code, name, width) in vars {
            index.entry(code).or_default().push(signals.len());
            signals.push(SignalTrace {
                name,
                width,
                changes: Vec::new(),
            });
        }
        Reader {
            current: vec![0u64; signals.len()],
            signals,
            index,
            seeded: false,
            start: window.map_or(u64::MAX, |(start, _)| start),
            time: 0,
            last_time: 0,
        }
    }

    fn timestamp(&mut self, t: u64) {
        self.time = t;
        if self.start == u64::MAX {
            self.start = t;
        }
        self.last_time = self.last_time.max(t);
    }

    /// Records every signal's value at `start`, once.
    fn seed(&mut self) {
        for (i, s) in self.signals.iter_mut().enumerate() {
            s.changes.push((self.start, self.current[i]));
        }
        self.seeded = true;
    }

    fn change(&mut self, code: &IdCode, value: u64) {
        let time = self.time;
        if self.start == u64::MAX {
            self.start = time;
        }
        if time >= self.start && !self.seeded {
            self.seed();
        }
        for &i in self.index.get(code).map(Vec::as_slice).unwrap_or(&[]) {
            self.current[i] = value;
            if time >= self.start {
                let s = &mut self.signals[i];
                if s.changes.last().is_some_and(|&(t, _)| t == time) {
                    s.changes.pop();
                }
                s.changes.push((time, value));
            }
        }
    }

    /// The waveform up to `stop` (`u64::MAX`: the end of the trace).
    fn finish(mut self, stop: u64) -> Waveform {
        if self.start == u64::MAX {
            self.start = 0;
        }
        if !self.seeded {
            self.seed();
        }
        let end = if stop == u64::MAX {
            self.last_time.max(self.start + 1)
        } else {
            stop
        };
        Waveform {
            signals: self.signals,
            start: self.start,
            end,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_is_time_weighted() {
        let s = SignalTrace {
            name: "x".into(),
            width: 1,
            changes: vec![(0, 0), (10, 1), (15, 0)],
        };
        assert_eq!(s.mean(0, 20), 0.25);
        assert_eq!(s.mean(10, 15), 1.0);
        assert_eq!(s.mean(12, 18), 0.5);
        assert_eq!(s.value_at(14), 1);
        assert_eq!(s.value_at(15), 0);
    }
}
