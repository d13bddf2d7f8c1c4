//! Errors.
//!
//! The library never panics on what a user feeds it. Every problem with a file
//! or argument the user supplied becomes an [`InputError`] that names the file,
//! the line and column where there is one, the layer or section, the field, and
//! what would have been valid. The CLI turns those into exit code 2.
//!
//! A disagreement between a simulated engine and the reference executor is not
//! the user's fault: it is a [`MismatchError`], a simulator bug, exit code 1.

mod toml_errors;

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

pub use toml_errors::from_toml;

/// Every error the library returns.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A user-supplied file or argument is wrong (CLI exit code 2).
    #[error(transparent)]
    Input(#[from] Box<InputError>),
    /// A simulated engine computed a value that differs from the reference.
    #[error(transparent)]
    Mismatch(#[from] Box<MismatchError>),
    /// Writing an output (report, dump, trace) failed.
    #[error("cannot write {}: {message}", path.display())]
    Output { path: PathBuf, message: String },
    /// The simulator broke one of its own invariants (a bug; CLI exit code 1).
    #[error("internal simulator error in {context}: {message}")]
    Internal { context: String, message: String },
}

impl From<InputError> for Error {
    fn from(e: InputError) -> Self {
        Error::Input(Box::new(e))
    }
}

impl From<MismatchError> for Error {
    fn from(e: MismatchError) -> Self {
        Error::Mismatch(Box::new(e))
    }
}

/// Library result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A located problem in something the user supplied.
///
/// Displayed as `file:line:column: context, field `x`: message`, leaving out
/// what is unknown, so that editors and terminals can jump to the spot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputError {
    /// The file at fault (or the command-line flag, for bad arguments).
    pub file: PathBuf,
    /// 1-based line and column, when the problem has a place in a text file.
    pub line_column: Option<(usize, usize)>,
    /// Which part of the file: "layer `conv2`", "[input]", ...
    pub context: Option<String>,
    /// The field (key) at fault.
    pub field: Option<String>,
    /// What is wrong, and what would be valid.
    pub message: String,
}

impl InputError {
    /// A problem with `file` as a whole.
    pub fn new(file: impl AsRef<Path>, message: impl Into<String>) -> Self {
        InputError {
            file: file.as_ref().to_path_buf(),
            line_column: None,
            context: None,
            field: None,
            message: message.into(),
        }
    }

    /// Locates the error at byte offset `span.start` of `text`.
    pub fn at(mut self, text: &str, span: Option<Range<usize>>) -> Self {
        if let Some(span) = span {
            self.line_column = Some(line_column(text, span.start));
        }
        self
    }

    /// Names the part of the file (a layer, a section).
    pub fn context(mut self, context: impl Into<String>) -> Self {
        self.context = Some(context.into());
        self
    }

    /// Names the field at fault.
    pub fn field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some((line, column)) = self.line_column {
            write!(f, ":{line}:{column}")?;
        }
        write!(f, ": ")?;
        match (&self.context, &self.field) {
            (Some(c), Some(k)) => write!(f, "{c}, field `{k}`: ")?,
            (Some(c), None) => write!(f, "{c}: ")?,
            (None, Some(k)) => write!(f, "field `{k}`: ")?,
            (None, None) => {}
        }
        write!(f, "{}", self.message)
    }
}

impl std::error::Error for InputError {}

/// A simulated engine disagreed with the reference executor.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "bit-exact check failed in layer `{layer}` ({engine}): first difference at output \
     [channel {channel}, row {row}, column {column}]: engine {engine_value}, reference {reference_value} \
     ({differing} of {total} elements differ)"
)]
pub struct MismatchError {
    pub layer: String,
    pub engine: String,
    pub channel: usize,
    pub row: usize,
    pub column: usize,
    pub engine_value: i32,
    pub reference_value: i32,
    pub differing: usize,
    pub total: usize,
}

/// A number for a message: as Rust writes it, but in e-notation when that is
/// much shorter (`1e308`, not a 309-digit integer; `2.5e-9`).
pub fn number(x: f64) -> String {
    let magnitude = x.abs();
    if x.is_finite() && x != 0.0 && !(1e-6..1e9).contains(&magnitude) {
        format!("{x:e}")
    } else {
        format!("{x}")
    }
}

/// 1-based (line, column) of byte `offset` in `text`; columns count characters.
pub fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_column_counts_from_one() {
        let text = "a = 1\nbb = 2\n";
        assert_eq!(line_column(text, 0), (1, 1));
        assert_eq!(line_column(text, 6), (2, 1));
        assert_eq!(line_column(text, 11), (2, 6));
        assert_eq!(line_column(text, 999), (3, 1));
    }

    #[test]
    fn numbers_in_messages_stay_short() {
        assert_eq!(number(1e308), "1e308");
        assert_eq!(number(-2.5e-9), "-2.5e-9");
        assert_eq!(number(1e6), "1000000");
        assert_eq!(number(0.001), "0.001");
        assert_eq!(number(0.0), "0");
        assert_eq!(number(f64::INFINITY), "inf");
        assert_eq!(number(128.5), "128.5");
    }

    #[test]
    fn display_names_everything_known() {
        let e = InputError::new("w.toml", "must be at least 1")
            .at("x\ny = 0\n", Some(2..3))
            .context("layer `conv1`")
            .field("stride");
        assert_eq!(
            e.to_string(),
            "w.toml:2:1: layer `conv1`, field `stride`: must be at least 1"
        );
    }
}
