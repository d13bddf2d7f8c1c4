//! ONNX `TensorProto` constants, read in place.
//!
//! Initializers arrive either as little-endian `raw_data` or in the typed
//! repeated fields (`int32_data` also carries 8- and 16-bit types, as
//! onnx.proto specifies). A [`Tensor`] borrows its `TensorProto` from the
//! decoded model and converts elements only when asked: weights go straight
//! from their stored bytes into the IR's `i16` arrays, with no `i64` or
//! `f32` copy of a whole tensor in between (docs/onnx.md, "Loading speed and
//! memory"). Its size and element count are checked once, when it is read.

use super::proto::{TensorProto, tensor_proto::DataType};

/// A constant tensor: its shape and type, its elements still in the proto.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor<'a> {
    pub dims: Vec<usize>,
    pub dtype: DataType,
    proto: &'a TensorProto,
    len: usize,
}

/// Where the elements of a tensor are: raw bytes, or one typed field.
enum Elements<'a> {
    Raw(&'a [u8]),
    F32(&'a [f32]),
    F64(&'a [f64]),
    I32(&'a [i32]),
    I64(&'a [i64]),
    U64(&'a [u64]),
}

impl<'a> Tensor<'a> {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_float(&self) -> bool {
        matches!(self.dtype, DataType::Float | DataType::Double)
    }

    fn elements(&self) -> Elements<'a> {
        let t = self.proto;
        if let Some(raw) = t.raw_data.as_deref() {
            return Elements::Raw(raw);
        }
        match self.dtype {
            DataType::Float => Elements::F32(&t.float_data),
            DataType::Double => Elements::F64(&t.double_data),
            DataType::Int64 => Elements::I64(&t.int64_data),
            DataType::Uint32 => Elements::U64(&t.uint64_data),
            _ => Elements::I32(&t.int32_data),
        }
    }

    /// Element `i` of an integer tensor as `i64` (`i < len`, checked on read).
    fn int_at(&self, i: usize) -> i64 {
        match self.elements() {
            Elements::Raw(raw) => raw_int(self.dtype, raw, i),
            Elements::I32(v) => i64::from(v[i]),
            Elements::I64(v) => v[i],
            Elements::U64(v) => v[i] as i64,
            Elements::F32(v) => v[i] as i64,
            Elements::F64(v) => v[i] as i64,
        }
    }

    /// Element `i` as `f32`, whatever the type.
    fn f32_at(&self, i: usize) -> f32 {
        match (self.elements(), self.dtype) {
            (Elements::Raw(raw), DataType::Float) => f32::from_le_bytes(le(raw, i)),
            (Elements::Raw(raw), DataType::Double) => f64::from_le_bytes(le(raw, i)) as f32,
            (Elements::F32(v), _) => v[i],
            (Elements::F64(v), _) => v[i] as f32,
            _ => self.int_at(i) as f32,
        }
    }

    /// Integer elements as `i64`, C order (for small tensors: shapes, zero
    /// points, biases).
    pub fn ints(&self) -> Vec<i64> {
        if self.is_float() {
            return Vec::new();
        }
        (0..self.len).map(|i| self.int_at(i)).collect()
    }

    /// Elements as `f32`, whatever the type.
    pub fn as_f32(&self) -> Vec<f32> {
        (0..self.len).map(|i| self.f32_at(i)).collect()
    }

    /// Float elements (empty for an integer tensor).
    pub fn floats(&self) -> Vec<f32> {
        if self.is_float() {
            self.as_f32()
        } else {
            Vec::new()
        }
    }

    /// 8-bit integer elements as `i16`, C order, straight from their bytes:
    /// the one conversion weights go through.
    pub fn to_i16(&self) -> Vec<i16> {
        match (self.elements(), self.dtype) {
            (Elements::Raw(raw), DataType::Int8) => {
                raw.iter().map(|&b| i16::from(b as i8)).collect()
            }
            (Elements::Raw(raw), DataType::Uint8) => raw.iter().map(|&b| i16::from(b)).collect(),
            (Elements::I32(v), DataType::Int8 | DataType::Uint8) => {
                v.iter().map(|&x| x as i16).collect()
            }
            _ => (0..self.len).map(|i| self.int_at(i) as i16).collect(),
        }
    }

    /// The single element of a scalar or one-element tensor.
    pub fn scalar_f32(&self) -> Option<f32> {
        (self.len == 1).then(|| self.f32_at(0))
    }

    pub fn scalar_i64(&self) -> Option<i64> {
        (self.len == 1 && !self.is_float()).then(|| self.int_at(0))
    }
}

/// Bytes `N * i .. N * (i + 1)` of `raw` (in range: checked on read).
fn le<const N: usize>(raw: &[u8], i: usize) -> [u8; N] {
    let mut a = [0u8; N];
    a.copy_from_slice(&raw[N * i..N * (i + 1)]);
    a
}

fn raw_int(dtype: DataType, raw: &[u8], i: usize) -> i64 {
    match dtype {
        DataType::Int8 => i64::from(raw[i] as i8),
        DataType::Uint8 | DataType::Bool => i64::from(raw[i]),
        DataType::Int16 => i64::from(i16::from_le_bytes(le(raw, i))),
        DataType::Uint16 => i64::from(u16::from_le_bytes(le(raw, i))),
        DataType::Int32 => i64::from(i32::from_le_bytes(le(raw, i))),
        DataType::Uint32 => i64::from(u32::from_le_bytes(le(raw, i))),
        _ => i64::from_le_bytes(le(raw, i)),
    }
}

/// Name of an ONNX element type, for messages.
pub fn type_name(t: i32) -> String {
    match DataType::try_from(t) {
        Ok(d) => d.as_str_name().to_ascii_lowercase(),
        Err(_) => format!("type {t}"),
    }
}

/// Bytes per element in `raw_data`, and the typed field's length, of the
/// types accsim reads.
fn layout(dtype: DataType, t: &TensorProto) -> Option<(usize, usize)> {
    Some(match dtype {
        DataType::Float => (4, t.float_data.len()),
        DataType::Double => (8, t.double_data.len()),
        DataType::Uint8 | DataType::Int8 | DataType::Bool => (1, t.int32_data.len()),
        DataType::Uint16 | DataType::Int16 => (2, t.int32_data.len()),
        DataType::Int32 => (4, t.int32_data.len()),
        DataType::Int64 => (8, t.int64_data.len()),
        DataType::Uint32 => (4, t.uint64_data.len()),
        _ => return None,
    })
}

/// Reads an initializer or `Constant` value: checks its dims, type and
/// element count. Errors say what is wrong in words a user can act on.
pub fn decode(t: &TensorProto) -> Result<Tensor<'_>, String> {
    if t.data_location == Some(1) || !t.external_data.is_empty() {
        return Err(
            "holds its data in an external file; re-save the model with the data embedded \
                    (onnx.save_model(m, path, save_as_external_data=False))"
                .to_string(),
        );
    }
    if let Some(&d) = t.dims.iter().find(|&&d| d < 0) {
        return Err(format!("has a negative dimension {d}"));
    }
    let dims: Vec<u64> = t.dims.iter().map(|&d| d as u64).collect();
    // Checked before anything of this size is allocated or read.
    let n = crate::workload::limits::Limits::DEFAULT
        .tensor(&dims)
        .map_err(|m| format!("has dims {dims:?}: {m}"))? as usize;
    let raw_type = t.data_type.unwrap_or(0);
    let dtype =
        DataType::try_from(raw_type).map_err(|_| format!("has unknown element type {raw_type}"))?;
    let Some((size, typed)) = layout(dtype, t) else {
        return Err(format!(
            "has element type {}, which accsim does not read; valid: float, double, uint8, int8, int16, uint16, int32, uint32, int64, bool",
            dtype.as_str_name().to_ascii_lowercase()
        ));
    };
    match t.raw_data.as_deref() {
        // n is at most the per-tensor limit (2^28), so n * size cannot overflow.
        Some(raw) if raw.len() != n * size => Err(format!(
            "raw_data holds {} bytes; expected {} ({n} elements of {size} bytes)",
            raw.len(),
            n * size
        )),
        None if typed != n => Err(format!(
            "holds {typed} values but its shape {dims:?} needs {n}"
        )),
        _ => Ok(Tensor {
            dims: dims.iter().map(|&d| d as usize).collect(),
            dtype,
            proto: t,
            len: n,
        }),
    }
}
