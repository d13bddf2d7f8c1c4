//! Reading and writing .npy files with errors a user can act on.
//!
//! ndarray-npy does the parsing; this module first checks the file's size and
//! header against the limits (docs/workload-format.md, "Limits"), then dtype
//! and shape against what the workload expects, and says what would have
//! been valid.

use std::path::Path;

use ndarray::{ArrayD, IxDyn};
use ndarray_npy::npy::header::{Header, ParseHeaderError, ReadHeaderError};
use ndarray_npy::{ReadNpyError, ReadNpyExt, WritableElement, WriteNpyExt};

use super::limits::{self, Limits};
use crate::error::{Error, InputError};
use crate::numerics::IntType;

/// The element types accsim reads.
#[derive(Debug, Clone)]
pub enum NpyArray {
    U8(ArrayD<u8>),
    I8(ArrayD<i8>),
    I16(ArrayD<i16>),
    I32(ArrayD<i32>),
    I64(ArrayD<i64>),
    F32(ArrayD<f32>),
    F64(ArrayD<f64>),
}

impl NpyArray {
    pub fn shape(&self) -> &[usize] {
        match self {
            NpyArray::U8(a) => a.shape(),
            NpyArray::I8(a) => a.shape(),
            NpyArray::I16(a) => a.shape(),
            NpyArray::I32(a) => a.shape(),
            NpyArray::I64(a) => a.shape(),
            NpyArray::F32(a) => a.shape(),
            NpyArray::F64(a) => a.shape(),
        }
    }

    /// NumPy's name of the element type.
    pub fn dtype_name(&self) -> &'static str {
        match self {
            NpyArray::U8(_) => "uint8",
            NpyArray::I8(_) => "int8",
            NpyArray::I16(_) => "int16",
            NpyArray::I32(_) => "int32",
            NpyArray::I64(_) => "int64",
            NpyArray::F32(_) => "float32",
            NpyArray::F64(_) => "float64",
        }
    }

    /// True for float32 / float64.
    pub fn is_float(&self) -> bool {
        matches!(self, NpyArray::F32(_) | NpyArray::F64(_))
    }

    /// Integer elements as i64 in C order (`None` for floats).
    pub fn to_i64(&self) -> Option<Vec<i64>> {
        fn conv<T: Copy + Into<i64>>(a: &ArrayD<T>) -> Vec<i64> {
            a.iter().map(|&x| x.into()).collect()
        }
        match self {
            NpyArray::U8(a) => Some(conv(a)),
            NpyArray::I8(a) => Some(conv(a)),
            NpyArray::I16(a) => Some(conv(a)),
            NpyArray::I32(a) => Some(conv(a)),
            NpyArray::I64(a) => Some(a.iter().copied().collect()),
            NpyArray::F32(_) | NpyArray::F64(_) => None,
        }
    }

    /// Elements as f64 in C order.
    pub fn to_f64(&self) -> Vec<f64> {
        match self {
            NpyArray::F32(a) => a.iter().map(|&x| f64::from(x)).collect(),
            NpyArray::F64(a) => a.iter().copied().collect(),
            other => other
                .to_i64()
                .unwrap_or_default()
                .into_iter()
                .map(|x| x as f64)
                .collect(),
        }
    }
}

/// Largest .npy header accsim reads [bytes]. NumPy writes 128 bytes or
/// less for any array accsim can use.
pub const MAX_NPY_HEADER_BYTES: usize = 64 << 10;

/// Largest .npy file accsim reads [bytes]: the largest tensor
/// ([`Limits::DEFAULT`]) as float64, plus a header.
pub const MAX_NPY_FILE_BYTES: u64 =
    Limits::DEFAULT.max_tensor_elements * 8 + MAX_NPY_HEADER_BYTES as u64;

/// Reads a .npy file of any supported element type.
///
/// The file is read once, through a bounded reader, and its header is
/// checked (size, nesting, shape against [`Limits::DEFAULT`], data length
/// against the shape) before anything of the size the header claims is
/// allocated.
pub fn read_npy_any(path: &Path) -> Result<NpyArray, InputError> {
    let bytes = limits::read_bounded(path, MAX_NPY_FILE_BYTES, "file")?;
    read_npy_bytes(&bytes, path)
}

/// [`read_npy_any`] on the bytes of a file; `path` names it in errors.
pub fn read_npy_bytes(bytes: &[u8], path: &Path) -> Result<NpyArray, InputError> {
    let invalid = |m: String| InputError::new(path, format!("not a valid .npy file: {m}"));
    let (header_start, header_len) = preamble(bytes).map_err(invalid)?;
    let data_start = header_start + header_len;
    let Some(header_text) = bytes.get(header_start..data_start) else {
        return Err(invalid(format!(
            "its header claims {header_len} bytes but the file ends after {}",
            bytes.len() - header_start
        )));
    };
    check_nesting(header_text).map_err(invalid)?;
    let header = Header::from_reader(&mut &bytes[..data_start])
        .map_err(|e| invalid(header_message(&e, header_text)))?;
    let shape: Vec<u64> = header.shape.iter().map(|&d| d as u64).collect();
    let elements = Limits::DEFAULT.tensor(&shape).map_err(|m| {
        InputError::new(
            path,
            format!("its header's shape {:?} is refused: {m}", header.shape),
        )
    })?;
    let kind = header
        .type_descriptor
        .as_string()
        .and_then(|d| Kind::from_descr(d));
    let Some(kind) = kind else {
        return Err(InputError::new(
            path,
            format!(
                "unsupported dtype {}; valid: uint8, int8, int16, int32, int64, float32, float64",
                header.type_descriptor
            ),
        ));
    };
    let data = bytes.len() - data_start;
    // elements <= 2^28 and item sizes <= 8: no overflow.
    let needed = elements as usize * kind.size();
    if data != needed {
        return Err(invalid(format!(
            "it holds {data} bytes of data, but its header's shape {:?} of {} needs {needed}",
            header.shape,
            kind.name()
        )));
    }
    read_data(bytes, kind, path)
}

/// The header's start and length in bytes, from the magic string and
/// version (NumPy's format.py, versions 1-3); the message says what is wrong.
fn preamble(bytes: &[u8]) -> Result<(usize, usize), String> {
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err("it does not start with the .npy magic string \\x93NUMPY".to_string());
    }
    let (major, minor) = (bytes[6], bytes[7]);
    let (header_start, header_len) = match major {
        1 => (10, usize::from(u16::from_le_bytes([bytes[8], bytes[9]]))),
        2 | 3 if bytes.len() >= 12 => (
            12,
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
        ),
        2 | 3 => return Err("it ends before its header and data are complete".to_string()),
        _ => {
            return Err(format!(
                "format version {major}.{minor}; valid: 1.0, 2.0, 3.0"
            ));
        }
    };
    if header_len > MAX_NPY_HEADER_BYTES {
        return Err(format!(
            "its header claims {header_len} bytes, more than the limit of {MAX_NPY_HEADER_BYTES}"
        ));
    }
    Ok((header_start, header_len))
}

/// The header is a flat Python dict: refuse deep nesting before the
/// literal parser recurses into it.
fn check_nesting(header_text: &[u8]) -> Result<(), String> {
    let mut depth = 0usize;
    for &b in header_text {
        match b {
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        if depth > MAX_HEADER_NESTING {
            return Err(format!(
                "its header nests brackets more than {MAX_HEADER_NESTING} deep; valid: {{'descr': ..., 'fortran_order': ..., 'shape': (...)}}"
            ));
        }
    }
    Ok(())
}

/// The array of a file whose header was checked, as `kind`.
fn read_data(bytes: &[u8], kind: Kind, path: &Path) -> Result<NpyArray, InputError> {
    let fail = |e: ReadNpyError| -> InputError {
        let invalid = |m: String| InputError::new(path, format!("not a valid .npy file: {m}"));
        match e {
            ReadNpyError::Io(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
                invalid("it ends before its header and data are complete".to_string())
            }
            ReadNpyError::Io(io) => InputError::new(path, format!("cannot read the file: {io}")),
            other => invalid(format!("{other}")),
        }
    };
    fn read<T: ndarray_npy::ReadableElement>(bytes: &[u8]) -> Result<ArrayD<T>, ReadNpyError> {
        ArrayD::<T>::read_npy(bytes)
    }
    Ok(match kind {
        Kind::U8 => NpyArray::U8(read(bytes).map_err(fail)?),
        Kind::I8 => NpyArray::I8(read(bytes).map_err(fail)?),
        Kind::I16 => NpyArray::I16(read(bytes).map_err(fail)?),
        Kind::I32 => NpyArray::I32(read(bytes).map_err(fail)?),
        Kind::I64 => NpyArray::I64(read(bytes).map_err(fail)?),
        Kind::F32 => NpyArray::F32(read(bytes).map_err(fail)?),
        Kind::F64 => NpyArray::F64(read(bytes).map_err(fail)?),
    })
}

/// What NumPy writes as a header (the valid form, quoted in messages).
const HEADER_EXAMPLE: &str = "{'descr': '<i1', 'fortran_order': False, 'shape': (4, 2, 3, 3), }";

/// At most `max` characters of `text`, on one line, non-printable bytes escaped.
fn excerpt(text: &str, max: usize) -> String {
    let printable = || {
        text.chars().flat_map(|c| {
            let plain = c == ' ' || c.is_ascii_graphic();
            let escaped: Vec<char> = if plain {
                vec![c]
            } else {
                c.escape_default().collect()
            };
            escaped
        })
    };
    let mut out: String = printable().take(max).collect();
    if printable().nth(max).is_some() {
        out.push_str("...");
    }
    out
}

/// One line naming what is wrong with a .npy header and what is valid (the
/// parser's own message spans several lines of ASCII art).
fn header_message(e: &ReadHeaderError, header: &[u8]) -> String {
    let text = String::from_utf8_lossy(header);
    let dict = text.trim_end();
    let valid = format!("valid: a header like {HEADER_EXAMPLE}");
    let parse = match e {
        ReadHeaderError::Io(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            return "it ends before its header is complete".to_string();
        }
        ReadHeaderError::Io(io) => return format!("cannot read its header: {io}"),
        ReadHeaderError::Parse(p) => p,
    };
    match parse {
        ParseHeaderError::DictParse(py) => {
            // py_literal's syntax errors locate the fault as ` --> LINE:COLUMN`.
            let column = py
                .to_string()
                .split_once("-->")
                .and_then(|(_, rest)| rest.split_whitespace().next())
                .and_then(|at| at.rsplit(':').next())
                .and_then(|c| c.parse::<usize>().ok());
            let at = column.map_or(String::new(), |c| format!(" at column {c}"));
            format!(
                "its header is not a Python dict literal (syntax error{at} of `{}`); {valid}",
                excerpt(dict, 120)
            )
        }
        ParseHeaderError::MissingKey(k) => {
            format!(
                "its header has no key '{k}' (header `{}`); {valid}",
                excerpt(dict, 120)
            )
        }
        ParseHeaderError::UnknownKey(k) => format!(
            "its header has the unknown key {}; valid keys: 'descr', 'fortran_order', 'shape'",
            excerpt(&k.to_string(), 40)
        ),
        ParseHeaderError::IllegalValue { key, value } => format!(
            "its header's '{key}' is {}; valid: 'descr' a dtype string such as '<i1' or '<f4', 'fortran_order' True or False, 'shape' a tuple of integers >= 0",
            excerpt(&value.to_string(), 60)
        ),
        ParseHeaderError::MetaNotDict(v) => format!(
            "its header is {}, not a dict; {valid}",
            excerpt(&v.to_string(), 60)
        ),
        ParseHeaderError::MissingNewline => {
            format!("its header does not end in a newline; {valid}")
        }
        ParseHeaderError::NonAscii | ParseHeaderError::Utf8Parse(_) => {
            format!("its header holds non-ASCII bytes; {valid}")
        }
        other => format!(
            "its header is malformed ({}); {valid}",
            excerpt(&other.to_string(), 80)
        ),
    }
}

/// Deepest bracket nesting accepted in a .npy header (NumPy writes 2).
const MAX_HEADER_NESTING: usize = 4;

/// The element types accsim reads, by their .npy descriptor.
#[derive(Debug, Clone, Copy)]
enum Kind {
    U8,
    I8,
    I16,
    I32,
    I64,
    F32,
    F64,
}

impl Kind {
    /// The descriptors ndarray-npy reads (either byte order).
    fn from_descr(d: &str) -> Option<Kind> {
        Some(match d {
            "|u1" | "u1" | "B" => Kind::U8,
            "|i1" | "i1" | "b" => Kind::I8,
            "<i2" | ">i2" => Kind::I16,
            "<i4" | ">i4" => Kind::I32,
            "<i8" | ">i8" => Kind::I64,
            "<f4" | ">f4" => Kind::F32,
            "<f8" | ">f8" => Kind::F64,
            _ => return None,
        })
    }

    fn size(self) -> usize {
        match self {
            Kind::U8 | Kind::I8 => 1,
            Kind::I16 => 2,
            Kind::I32 | Kind::F32 => 4,
            Kind::I64 | Kind::F64 => 8,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Kind::U8 => "uint8",
            Kind::I8 => "int8",
            Kind::I16 => "int16",
            Kind::I32 => "int32",
            Kind::I64 => "int64",
            Kind::F32 => "float32",
            Kind::F64 => "float64",
        }
    }
}

/// Checks that `array` has `expected` shape (a leading 1, as a batch of one,
/// is accepted; so is a vector `[N]` or `[1, N]` for an `[N, 1, 1]` tensor,
/// the flat input of a fully connected network as ONNX shapes it).
pub fn check_shape(path: &Path, array: &NpyArray, expected: &[usize]) -> Result<(), InputError> {
    let shape = array.shape();
    let squeezed = if shape.len() == expected.len() + 1 && shape[0] == 1 {
        &shape[1..]
    } else {
        shape
    };
    let vector = matches!(expected, [n, 1, 1] if matches!(shape, [m] | [1, m] if m == n));
    if squeezed == expected || vector {
        Ok(())
    } else {
        Err(InputError::new(
            path,
            format!("shape is {shape:?}, expected {expected:?} (or [1, ...] with a batch of one)"),
        ))
    }
}

/// Reads integers of storage type `dtype` with shape `expected`.
///
/// The file must hold exactly `dtype` (int8 weights in an int8 file): a
/// wider type would hide values that do not fit.
pub fn read_ints(path: &Path, expected: &[usize], dtype: IntType) -> Result<Vec<i16>, InputError> {
    let array = read_npy_any(path)?;
    let values: Vec<i16> = match (&array, dtype) {
        (NpyArray::U8(a), IntType::Uint8) => a.iter().map(|&x| i16::from(x)).collect(),
        (NpyArray::I8(a), IntType::Int8) => a.iter().map(|&x| i16::from(x)).collect(),
        (NpyArray::I16(a), IntType::Int16) => a.iter().copied().collect(),
        _ => {
            return Err(InputError::new(
                path,
                format!(
                    "dtype is {}, expected {}",
                    array.dtype_name(),
                    dtype.numpy_name()
                ),
            ));
        }
    };
    check_shape(path, &array, expected)?;
    Ok(values)
}

/// Reads a bias vector: int32 or int64, `expected` elements.
pub fn read_bias(path: &Path, expected: usize) -> Result<Vec<i64>, InputError> {
    let array = read_npy_any(path)?;
    if !matches!(array, NpyArray::I32(_) | NpyArray::I64(_)) {
        return Err(InputError::new(
            path,
            format!("dtype is {}, expected int32 or int64", array.dtype_name()),
        ));
    }
    check_shape(path, &array, &[expected])?;
    Ok(array.to_i64().unwrap_or_default())
}

/// Reads real values (any numeric dtype) with `expected` elements in total.
pub fn read_reals(path: &Path, expected: &[usize]) -> Result<Vec<f64>, InputError> {
    let array = read_npy_any(path)?;
    check_shape(path, &array, expected)?;
    Ok(array.to_f64())
}

/// Writes `values` with `shape` as a .npy file.
pub fn write<T: WritableElement + Clone>(
    path: &Path,
    shape: &[usize],
    values: Vec<T>,
) -> Result<(), Error> {
    let out = |message: String| Error::Output {
        path: path.to_path_buf(),
        message,
    };
    let array = ArrayD::from_shape_vec(IxDyn(shape), values).map_err(|e| out(e.to_string()))?;
    let file = std::fs::File::create(path).map_err(|e| out(e.to_string()))?;
    array
        .write_npy(std::io::BufWriter::new(file))
        .map_err(|e| out(e.to_string()))
}

/// Writes quantised values in their storage type.
pub fn write_quantised(
    path: &Path,
    shape: &[usize],
    values: &[i16],
    dtype: IntType,
) -> Result<(), Error> {
    match dtype {
        IntType::Uint8 => write(path, shape, values.iter().map(|&v| v as u8).collect()),
        IntType::Int8 => write(path, shape, values.iter().map(|&v| v as i8).collect()),
        IntType::Int16 => write(path, shape, values.to_vec()),
    }
}
