//! TOML parse and type errors as messages a user can act on.
//!
//! The `toml` crate says "duplicate key" without the key, and
//! "invalid type: floating point `128.5`, expected i64" without the field.
//! This module finds the key, its table and (for a duplicate) the line that
//! set it first, from the error's span and the file's text, and rewrites
//! the type error in the file's own terms ("an integer").

use std::ops::Range;
use std::path::Path;

use super::{InputError, line_column};

/// `e` as a located [`InputError`] naming the table, the key and what is
/// valid. `valid_for(field)` may give a sharper "what is valid" for a
/// field of the wrong type (for example "a positive integer").
pub fn from_toml(
    path: &Path,
    text: &str,
    e: &::toml::de::Error,
    valid_for: &dyn Fn(&str) -> Option<&'static str>,
) -> InputError {
    let message = e.message().trim_end();
    let plain = InputError::new(path, message.to_string()).at(text, e.span());
    let Some(span) = e.span().filter(|s| s.start <= text.len()) else {
        return plain;
    };
    let table = Table::enclosing(text, span.start);
    if message == "duplicate key" {
        return duplicate(path, text, span, &table);
    }
    let Some(what) = message.strip_prefix("invalid type: ") else {
        return plain;
    };
    let keys = error_keys(e);
    let field = table.field_of(&keys);
    let mut out =
        InputError::new(path, type_message(what, field.as_deref(), valid_for)).at(text, Some(span));
    if let Some(c) = table.context() {
        out = out.context(c);
    }
    match field {
        Some(f) => out.field(f),
        None => out,
    }
}

/// The keys from the document root to the value at fault (`layer`,
/// `weights`, `file`), which `toml` keeps private but prints when it has
/// no input to quote.
fn error_keys(e: &::toml::de::Error) -> Vec<String> {
    let mut bare = e.clone();
    bare.set_input(None);
    bare.to_string()
        .lines()
        .find_map(|l| l.strip_prefix("in `").and_then(|k| k.strip_suffix('`')))
        .map(|k| k.split('.').map(str::to_string).collect())
        .unwrap_or_default()
}

/// "is 128.5, a float; valid: an integer" from serde's
/// "floating point `128.5`, expected i64".
fn type_message(
    what: &str,
    field: Option<&str>,
    valid_for: &dyn Fn(&str) -> Option<&'static str>,
) -> String {
    let (got, expected) = what.rsplit_once(", expected ").unwrap_or((what, ""));
    let got = match got.split_once(' ') {
        Some(("floating", rest)) => format!(
            "{} (a number with a fraction or exponent)",
            rest.trim_start_matches("point ").trim_matches('`')
        ),
        Some(("integer", v)) => format!("{} (an integer)", v.trim_matches('`')),
        Some(("string", v)) => format!("the string {v}"),
        Some(("boolean", v)) => format!("{} (a boolean)", v.trim_matches('`')),
        _ => got.to_string(),
    };
    let generic = match expected {
        "i8" | "i16" | "i32" | "i64" | "isize" => "an integer",
        "u8" | "u16" | "u32" | "u64" | "usize" => "an integer >= 0",
        "f32" | "f64" => "a number",
        "a boolean" => "true or false",
        "" => "a value of another type",
        other => other,
    };
    let valid = field.and_then(valid_for).unwrap_or(generic);
    format!("is {got}; valid: {valid}")
}

/// "duplicate key `kernel` ...: first set on line 15".
fn duplicate(path: &Path, text: &str, span: Range<usize>, table: &Table) -> InputError {
    let key = text
        .get(span.clone())
        .unwrap_or("")
        .trim()
        .trim_matches('"')
        .to_string();
    let (line, _) = line_column(text, span.start);
    let line_text = text.lines().nth(line - 1).unwrap_or("").trim_start();
    let message = if line_text.starts_with('[') {
        let header = line_text.split('#').next().unwrap_or("").trim();
        let first = earlier_line(text, span.start, |l| l == header);
        format!(
            "the table {header} is defined twice{}; valid: each table once (an array of tables is written [[name]])",
            first.map_or(String::new(), |n| format!(" (first on line {n})"))
        )
    } else {
        let first = table.earlier_key_line(text, span.start, &key);
        format!(
            "duplicate key `{key}` in {}{}; valid: each key once per table",
            table.describe(),
            first.map_or(String::new(), |n| format!(": first set on line {n}"))
        )
    };
    InputError::new(path, message).at(text, Some(span))
}

/// The 1-based line of the last line before byte `before` that `matches`
/// (trimmed, comments removed).
fn earlier_line(text: &str, before: usize, matches: impl Fn(&str) -> bool) -> Option<usize> {
    let head = text.get(..before)?;
    let start_of_line = head.rfind('\n').map_or(0, |i| i + 1);
    head[..start_of_line]
        .lines()
        .enumerate()
        .filter(|(_, l)| matches(l.split('#').next().unwrap_or("").trim()))
        .map(|(i, _)| i + 1)
        .last()
}

/// The `[table]` or `[[array]]` header a byte offset falls under.
struct Table {
    /// `layer` for `[[layer]]`, `ffe.area` for `[ffe.area]`; empty at the root.
    path: String,
    array: bool,
    /// Byte offset of the header line (0 at the root).
    start: usize,
    /// 1-based line of the header.
    line: usize,
    /// The entry's `name = "..."`, for arrays of tables.
    name: Option<String>,
}

impl Table {
    fn enclosing(text: &str, offset: usize) -> Table {
        let mut table = Table {
            path: String::new(),
            array: false,
            start: 0,
            line: 0,
            name: None,
        };
        let mut at = 0usize;
        for (i, l) in text.split_inclusive('\n').enumerate() {
            if at > offset {
                break;
            }
            let t = l.split('#').next().unwrap_or("").trim();
            if let Some(inner) = t.strip_prefix('[') {
                let array = inner.starts_with('[');
                let name = inner.trim_start_matches('[').trim_end_matches(']').trim();
                table = Table {
                    path: name.split('.').map(str::trim).collect::<Vec<_>>().join("."),
                    array,
                    start: at,
                    line: i + 1,
                    name: None,
                };
            } else if table.array
                && table.name.is_none()
                && let Some(v) = key_value(t, "name")
            {
                table.name = Some(v.trim_matches('"').to_string());
            }
            at += l.len();
        }
        table
    }

    /// The context as the loaders write it: "layer `conv1`", "[arch]".
    fn context(&self) -> Option<String> {
        match (&self.name, self.array) {
            _ if self.path.is_empty() => None,
            (Some(n), true) => Some(format!("{} `{n}`", self.path)),
            (None, true) => Some(format!("[[{}]] (line {})", self.path, self.line)),
            (_, false) => Some(format!("[{}]", self.path)),
        }
    }

    fn describe(&self) -> String {
        match self.context() {
            None => "the top level (before any [table])".to_string(),
            Some(c) if self.array && self.name.is_some() => {
                format!("[[{}]] (line {}, {c})", self.path, self.line)
            }
            Some(c) => format!("table {c}"),
        }
    }

    /// The field within this table: the keys after the table's own path.
    fn field_of(&self, keys: &[String]) -> Option<String> {
        let own: Vec<&str> = self.path.split('.').filter(|p| !p.is_empty()).collect();
        let rest = if keys.len() > own.len() && keys.iter().zip(&own).all(|(k, o)| k == o) {
            &keys[own.len()..]
        } else {
            keys
        };
        (!rest.is_empty()).then(|| rest.join("."))
    }

    /// The line at which `key` was first set in this table, before `before`.
    fn earlier_key_line(&self, text: &str, before: usize, key: &str) -> Option<usize> {
        let line = earlier_line(text.get(self.start..)?, before - self.start, |l| {
            key_value(l, key).is_some()
        })?;
        Some(line_column(text, self.start).0 + line - 1)
    }
}

/// The value text of `key = value` (quotes kept), when `line` sets `key`.
fn key_value<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let (k, v) = line.split_once('=')?;
    let k = k.trim().trim_matches('"');
    (k == key).then(|| v.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(text: &str) -> String {
        #[derive(serde::Deserialize)]
        #[allow(dead_code)]
        struct Layer {
            name: String,
            out_channels: i64,
        }
        #[derive(serde::Deserialize)]
        #[allow(dead_code)]
        struct Doc {
            layer: Vec<Layer>,
        }
        let e = ::toml::from_str::<Doc>(text).err().map(|e| {
            from_toml(Path::new("w.toml"), text, &e, &|f| {
                (f == "out_channels").then_some("a positive integer")
            })
        });
        e.map(|e| e.to_string()).unwrap_or_default()
    }

    #[test]
    fn a_float_for_an_integer_names_the_field_and_the_layer() {
        assert_eq!(
            error("[[layer]]\nname = \"c\"\nout_channels = 128.5\n"),
            "w.toml:3:16: layer `c`, field `out_channels`: is 128.5 (a number with a fraction or exponent); valid: a positive integer"
        );
    }

    #[test]
    fn a_duplicate_key_names_the_key_the_table_and_the_first_line() {
        assert_eq!(
            error(
                "[[layer]]\nname = \"a\"\nout_channels = 1\n[[layer]]\nname = \"c\"\nout_channels = 2\nout_channels = 3\n"
            ),
            "w.toml:7:1: duplicate key `out_channels` in [[layer]] (line 4, layer `c`): first set on line 6; valid: each key once per table"
        );
    }

    #[test]
    fn a_table_defined_twice_names_the_first_header() {
        let text = "[a]\nx = 1\n[a]\ny = 2\n";
        let e = ::toml::from_str::<::toml::Table>(text)
            .err()
            .map(|e| from_toml(Path::new("t.toml"), text, &e, &|_| None).to_string());
        assert_eq!(
            e.as_deref(),
            Some(
                "t.toml:3:2: the table [a] is defined twice (first on line 1); valid: each table once (an array of tables is written [[name]])"
            )
        );
    }
}
