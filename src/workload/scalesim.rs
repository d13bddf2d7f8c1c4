//! SCALE-Sim topology CSV files into the IR, with generated weights.
//!
//! SCALE-Sim v2 (docs: "SCALE-Sim v2 topology files") reads two CSV layouts,
//! one row per layer, each row ending in a comma:
//!
//! ```text
//! Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,
//! Conv1, 224, 224, 3, 3, 3, 64, 1,
//!
//! Layer, M, N, K,          (the GEMM "mnk" layout: an M x K by K x N product)
//! fc1, 1, 10, 1024,
//! ```
//!
//! SCALE-Sim simulates each row on its own, with no padding parameter: the
//! IFMAP size already includes any padding. accsim needs a connected network,
//! so rows are chained: a row's input is the previous row's output, and an
//! IFMAP larger than that output is read as zero padding (split evenly, the
//! odd row or column at the bottom/right). A row whose channels differ, or
//! whose IFMAP is smaller than the previous output (SCALE-Sim files omit
//! pooling), is an error naming the line. A GEMM row becomes a 1x1
//! convolution over a `[K, M, 1]` tensor (M positions of K features), so its
//! MAC count is `M * N * K`, as SCALE-Sim's.
//!
//! The network is written as a workload file (docs/workload-format.md) and
//! loaded by [`super::load::load_str`], so weights are generated and output
//! quantisation calibrated exactly as for a `.toml` workload: affine uint8
//! activations, int8 weights, TFLite requantisation, ReLU after every layer.

use std::fmt::Write as _;
use std::path::Path;

use super::limits::MAX_DIMENSION;
use super::load::{LoadOptions, Workload, load_str_with};
use crate::error::{Error, InputError, Result};

/// One conv-format row, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Row {
    line: usize,
    name: String,
    ifmap: [usize; 2],
    filter: [usize; 2],
    channels: usize,
    filters: usize,
    stride: usize,
}

/// Loads a SCALE-Sim topology CSV file.
pub fn load_file(path: &Path) -> Result<Workload> {
    let text = super::limits::read_text(path, "topology file")?;
    load_str(&text, path, &LoadOptions::default())
}

/// Loads a SCALE-Sim topology from its text; `path` names it in errors.
pub fn load_str(text: &str, path: &Path, options: &LoadOptions) -> Result<Workload> {
    let toml = to_workload_toml(text, path)?;
    load_str_with(&toml, path, None, options).map_err(|e| relocate(e, &toml))
}

/// An error located in the generated workload text, moved to the CSV row
/// the layer came from (each generated layer is marked `# line N`). The
/// message names the layer, whose name comes from the row.
fn relocate(e: Error, toml: &str) -> Error {
    let Error::Input(mut e) = e else {
        return e;
    };
    let row = |l: &str| -> Option<usize> {
        l.split_once("[[layer]]  # line ")
            .and_then(|(_, n)| n.trim().parse().ok())
    };
    if let Some((line, _)) = e.line_column {
        // The layer the line belongs to; before the first layer (the
        // [input] shape), the first row, which gives the input shape.
        e.line_column = toml
            .lines()
            .take(line)
            .filter_map(row)
            .last()
            .or_else(|| toml.lines().find_map(row))
            .map(|n| (n, 1));
    }
    Error::Input(e)
}

/// `s` as a TOML basic string (Rust's `{:?}` escapes are not all TOML's).
fn toml_string(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

fn cells(line: &str) -> Vec<String> {
    let mut v: Vec<String> = line.split(',').map(|c| c.trim().to_string()).collect();
    while v.last().is_some_and(|c| c.is_empty()) {
        v.pop();
    }
    v
}

/// The equivalent workload file, or an error naming the CSV line and column.
pub fn to_workload_toml(text: &str, path: &Path) -> Result<String, InputError> {
    let mut lines = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l))
        .filter(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('#'));
    let Some((_, header)) = lines.next() else {
        return Err(InputError::new(
            path,
            "the topology file is empty; valid: a SCALE-Sim header row, then one row per layer",
        ));
    };
    let gemm = is_gemm_header(header, path)?;
    let rows = lines
        .map(|(line, l)| parse_row(path, line, l, gemm))
        .collect::<Result<Vec<Row>, InputError>>()?;
    let Some(first) = rows.first() else {
        return Err(InputError::new(
            path,
            "the topology has a header but no layer rows",
        ));
    };
    let mut out = network_sections(path, first, rows.len());
    let mut prev: Option<(usize, [usize; 2])> = None;
    let mut names = std::collections::HashSet::new();
    for r in &rows {
        let pad = match prev {
            Some(previous) => chain_padding(path, r, previous)?,
            None => [0; 4],
        };
        if r.filter[0] > r.ifmap[0] || r.filter[1] > r.ifmap[1] {
            return Err(row_error(
                path,
                r.line,
                "Filter Height",
                format!(
                    "the {}x{} filter is larger than the {}x{} IFMAP",
                    r.filter[0], r.filter[1], r.ifmap[0], r.ifmap[1]
                ),
            ));
        }
        let oh = (r.ifmap[0] - r.filter[0]) / r.stride + 1;
        let ow = (r.ifmap[1] - r.filter[1]) / r.stride + 1;
        let mut name = if r.name.is_empty() || r.name == "input" {
            format!("layer{}", r.line)
        } else {
            r.name.clone()
        };
        while !names.insert(name.clone()) {
            name = format!("{name}_{}", r.line);
        }
        let _ = writeln!(
            out,
            "[[layer]]  # line {}\nname = {:?}\nop = \"conv2d\"\nout_channels = {}\nkernel = [{}, {}]\nstride = {}\npadding = [{}, {}, {}, {}]\n",
            r.line,
            name,
            r.filters,
            r.filter[0],
            r.filter[1],
            r.stride,
            pad[0],
            pad[1],
            pad[2],
            pad[3]
        );
        prev = Some((r.filters, [oh, ow]));
    }
    Ok(out)
}

/// The columns of a convolution topology's header after the layer name.
const CONV_COLUMNS: [&str; 7] = [
    "IFMAP Height",
    "IFMAP Width",
    "Filter Height",
    "Filter Width",
    "Channels",
    "Num Filter",
    "Strides",
];

/// The columns of a GEMM topology's header after the layer name.
const GEMM_COLUMNS: [&str; 3] = ["M", "N", "K"];

/// An error about the row on `line` (`field`: the column, or empty).
fn row_error(path: &Path, line: usize, field: &str, msg: String) -> InputError {
    let mut e = InputError::new(path, msg).context(format!("row on line {line}"));
    e.line_column = Some((line, 1));
    if !field.is_empty() {
        e = e.field(field);
    }
    e
}

/// Whether the header names a GEMM topology (`Layer, M, N, K`) rather
/// than a convolution one; an error for any other header.
fn is_gemm_header(header: &str, path: &Path) -> Result<bool, InputError> {
    let head: Vec<String> = cells(header)
        .iter()
        .map(|c| c.to_ascii_lowercase())
        .collect();
    let gemm = head.len() == 4 && head[1] == "m" && head[2] == "n" && head[3] == "k";
    let conv = head.len() >= 8
        && head[1..8]
            .iter()
            .zip(CONV_COLUMNS)
            .all(|(h, c)| *h == c.to_ascii_lowercase());
    if !gemm && !conv {
        let mut e = InputError::new(
            path,
            format!(
                "header is `{}`; valid: `Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,` or `Layer, M, N, K,`",
                header.trim()
            ),
        );
        e.line_column = Some((1, 1));
        return Err(e);
    }
    Ok(gemm)
}

/// One layer row: a name and the header's integer columns; a GEMM row
/// (M x K by K x N) is a 1x1 convolution over M positions of K features.
fn parse_row(path: &Path, line: usize, l: &str, gemm: bool) -> Result<Row, InputError> {
    let fields: &[&str] = if gemm { &GEMM_COLUMNS } else { &CONV_COLUMNS };
    let c = cells(l);
    if c.len() < fields.len() + 1 {
        return Err(row_error(
            path,
            line,
            "",
            format!(
                "has {} cells; valid: a name and {} ({})",
                c.len(),
                fields.len(),
                fields.join(", ")
            ),
        ));
    }
    let mut v = Vec::with_capacity(fields.len());
    for (k, f) in fields.iter().enumerate() {
        match c[k + 1].parse::<usize>() {
            Ok(x) if (1..=MAX_DIMENSION as usize).contains(&x) => v.push(x),
            _ => {
                return Err(row_error(
                    path,
                    line,
                    f,
                    format!(
                        "is `{}`; valid: an integer from 1 to {MAX_DIMENSION}",
                        c[k + 1]
                    ),
                ));
            }
        }
    }
    let name = c[0].replace(
        |ch: char| !(ch.is_ascii_alphanumeric() || ch == '_' || ch == '-'),
        "_",
    );
    Ok(if gemm {
        Row {
            line,
            name,
            ifmap: [v[0], 1],
            filter: [1, 1],
            channels: v[2],
            filters: v[1],
            stride: 1,
        }
    } else {
        Row {
            line,
            name,
            ifmap: [v[0], v[1]],
            filter: [v[2], v[3]],
            channels: v[4],
            filters: v[5],
            stride: v[6],
        }
    })
}

/// The workload's `[network]`, `[numerics]`, `[input]` and `[defaults]`
/// sections for a topology whose first row is `first`.
fn network_sections(path: &Path, first: &Row, layers: usize) -> String {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "scalesim".to_string());
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Generated from the SCALE-Sim topology {}",
        path.display()
    );
    let _ = writeln!(
        out,
        "[network]\nname = {}\ndescription = {}\nsource = {}\nseed = 1\n",
        toml_string(&stem),
        toml_string(&format!(
            "SCALE-Sim topology {stem} ({layers} layers), generated weights"
        )),
        toml_string(&path.display().to_string())
    );
    let _ = writeln!(out, "[numerics]\nmode = \"affine\"\n");
    let _ = writeln!(
        out,
        "[input]\nshape = [{}, {}, {}]\n",
        first.channels, first.ifmap[0], first.ifmap[1]
    );
    let _ = writeln!(out, "[defaults]\nactivation = \"relu\"\n");
    out
}

/// The padding `[top, left, bottom, right]` that makes row `r` read the
/// previous layer's output (`channels`, `[height, width]`): SCALE-Sim
/// rows give each layer's padded IFMAP, so the difference is padding
/// (split evenly, the extra row or column at the end).
fn chain_padding(
    path: &Path,
    r: &Row,
    (channels, hw): (usize, [usize; 2]),
) -> Result<[usize; 4], InputError> {
    if r.channels != channels {
        return Err(row_error(
            path,
            r.line,
            "Channels",
            format!(
                "is {}, but the previous layer produces {channels} channels; accsim chains the rows",
                r.channels
            ),
        ));
    }
    let mut pad = [0usize; 4];
    for (k, f) in [(0, "IFMAP Height"), (1, "IFMAP Width")] {
        if r.ifmap[k] < hw[k] {
            return Err(row_error(
                path,
                r.line,
                f,
                format!(
                    "is {}, smaller than the previous layer's output ({}); SCALE-Sim files leave out pooling, which accsim cannot guess: \
                 split the file, or write a workload file with the pooling layer",
                    r.ifmap[k], hw[k]
                ),
            ));
        }
        let extra = r.ifmap[k] - hw[k];
        pad[k] = extra / 2;
        pad[k + 2] = extra - extra / 2;
    }
    Ok(pad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conv_rows_chain_with_baked_in_padding() {
        let csv = "Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,\n\
                   c1, 34, 34, 3, 3, 3, 8, 1,\n\
                   c2, 34, 34, 3, 3, 8, 16, 2,\n";
        let t = to_workload_toml(csv, Path::new("t.csv")).expect("valid");
        assert!(t.contains("shape = [3, 34, 34]"));
        assert!(t.contains("padding = [1, 1, 1, 1]"), "{t}");
    }

    #[test]
    fn gemm_rows_become_pointwise_convolutions() {
        let t = to_workload_toml(
            "Layer, M, N, K,\nfc1, 4, 10, 64,\nfc2, 4, 5, 10,\n",
            Path::new("g.csv"),
        )
        .expect("valid");
        assert!(t.contains("shape = [64, 4, 1]"));
        assert!(t.contains("out_channels = 5"));
    }

    #[test]
    fn mismatches_name_the_line_and_field() {
        let csv = "Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,\n\
                   c1, 32, 32, 3, 3, 3, 8, 1,\n\
                   c2, 16, 16, 3, 3, 8, 16, 1,\n";
        let e = to_workload_toml(csv, Path::new("t.csv")).expect_err("pooling left out");
        assert_eq!(e.line_column, Some((3, 1)));
        assert_eq!(e.field.as_deref(), Some("IFMAP Height"));
        let e = to_workload_toml("Layer, M, N, K,\nfc, 1, x, 3,\n", Path::new("g.csv"))
            .expect_err("bad cell");
        assert_eq!(e.field.as_deref(), Some("N"));
        assert!(to_workload_toml("a,b\n", Path::new("h.csv")).is_err());
    }
}
