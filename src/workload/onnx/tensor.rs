//! ONNX `TensorProto` constants decoded into plain vectors.
//!
//! Initializers arrive either as little-endian `raw_data` or in the typed
//! repeated fields (`int32_data` also carries 8- and 16-bit types, as
//! onnx.proto specifies). accsim keeps every integer as `i64` and every float
//! as `f32`, which is exact for the types a quantised model uses.

use super::proto::{TensorProto, tensor_proto::DataType};

/// A decoded constant tensor.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    pub dims: Vec<usize>,
    pub dtype: DataType,
    /// Integer elements (integer types), C order.
    pub ints: Vec<i64>,
    /// Float elements (float types), C order.
    pub floats: Vec<f32>,
}

impl Tensor {
    pub fn len(&self) -> usize {
        self.dims.iter().product()
    }

    pub fn is_float(&self) -> bool {
        matches!(self.dtype, DataType::Float | DataType::Double)
    }

    /// The single element of a scalar or one-element tensor.
    pub fn scalar_f32(&self) -> Option<f32> {
        if self.len() != 1 {
            return None;
        }
        if self.is_float() {
            self.floats.first().copied()
        } else {
            self.ints.first().map(|&v| v as f32)
        }
    }

    pub fn scalar_i64(&self) -> Option<i64> {
        if self.len() != 1 || self.is_float() {
            return None;
        }
        self.ints.first().copied()
    }

    /// Elements as f32, whatever the type.
    pub fn as_f32(&self) -> Vec<f32> {
        if self.is_float() {
            self.floats.clone()
        } else {
            self.ints.iter().map(|&v| v as f32).collect()
        }
    }
}

/// Name of an ONNX element type, for messages.
pub fn type_name(t: i32) -> String {
    match DataType::try_from(t) {
        Ok(d) => d.as_str_name().to_ascii_lowercase(),
        Err(_) => format!("type {t}"),
    }
}

/// Decodes an initializer or `Constant` value. Errors say what is wrong in
/// words a user can act on.
pub fn decode(t: &TensorProto) -> Result<Tensor, String> {
    if t.data_location == Some(1) || !t.external_data.is_empty() {
        return Err(
            "holds its data in an external file; re-save the model with the data embedded \
                    (onnx.save_model(m, path, save_as_external_data=False))"
                .to_string(),
        );
    }
    let mut dims = Vec::with_capacity(t.dims.len());
    for &d in &t.dims {
        if d < 0 {
            return Err(format!("has a negative dimension {d}"));
        }
        dims.push(d as usize);
    }
    // Checked before anything of this size is allocated; the data itself
    // must be in the file, so this only refuses dims that claim more.
    let limits = crate::workload::limits::Limits::DEFAULT;
    let n = limits
        .tensor(&dims.iter().map(|&d| d as u64).collect::<Vec<_>>())
        .map_err(|m| format!("has dims {dims:?}: {m}"))? as usize;
    let raw_type = t.data_type.unwrap_or(0);
    let dtype =
        DataType::try_from(raw_type).map_err(|_| format!("has unknown element type {raw_type}"))?;
    let raw = t.raw_data.as_deref().unwrap_or(&[]);
    let use_raw = t.raw_data.is_some();
    let mut out = Tensor {
        dims,
        dtype,
        ints: Vec::new(),
        floats: Vec::new(),
    };
    fn chunks<const N: usize>(
        raw: &[u8],
        n: usize,
    ) -> Result<impl Iterator<Item = [u8; N]> + '_, String> {
        // n is at most the per-tensor limit (2^28), so n * N cannot overflow.
        if raw.len() != n * N {
            return Err(format!(
                "raw_data holds {} bytes; expected {} ({n} elements of {N} bytes)",
                raw.len(),
                n * N
            ));
        }
        Ok(raw.chunks_exact(N).map(|c| {
            let mut a = [0u8; N];
            a.copy_from_slice(c);
            a
        }))
    }
    match dtype {
        DataType::Float => {
            out.floats = if use_raw {
                chunks::<4>(raw, n)?.map(f32::from_le_bytes).collect()
            } else {
                t.float_data.clone()
            }
        }
        DataType::Double => {
            out.floats = if use_raw {
                chunks::<8>(raw, n)?
                    .map(|b| f64::from_le_bytes(b) as f32)
                    .collect()
            } else {
                t.double_data.iter().map(|&v| v as f32).collect()
            }
        }
        DataType::Uint8 | DataType::Int8 | DataType::Bool => {
            out.ints = if use_raw {
                chunks::<1>(raw, n)?
                    .map(|b| {
                        if dtype == DataType::Int8 {
                            i64::from(b[0] as i8)
                        } else {
                            i64::from(b[0])
                        }
                    })
                    .collect()
            } else {
                t.int32_data.iter().map(|&v| i64::from(v)).collect()
            }
        }
        DataType::Uint16 | DataType::Int16 => {
            out.ints = if use_raw {
                chunks::<2>(raw, n)?
                    .map(|b| {
                        if dtype == DataType::Int16 {
                            i64::from(i16::from_le_bytes(b))
                        } else {
                            i64::from(u16::from_le_bytes(b))
                        }
                    })
                    .collect()
            } else {
                t.int32_data.iter().map(|&v| i64::from(v)).collect()
            }
        }
        DataType::Int32 => {
            out.ints = if use_raw {
                chunks::<4>(raw, n)?
                    .map(|b| i64::from(i32::from_le_bytes(b)))
                    .collect()
            } else {
                t.int32_data.iter().map(|&v| i64::from(v)).collect()
            }
        }
        DataType::Int64 => {
            out.ints = if use_raw {
                chunks::<8>(raw, n)?.map(i64::from_le_bytes).collect()
            } else {
                t.int64_data.clone()
            }
        }
        DataType::Uint32 => {
            out.ints = if use_raw {
                chunks::<4>(raw, n)?
                    .map(|b| i64::from(u32::from_le_bytes(b)))
                    .collect()
            } else {
                t.uint64_data.iter().map(|&v| v as i64).collect()
            }
        }
        other => {
            return Err(format!(
                "has element type {}, which accsim does not read; valid: float, double, uint8, int8, int16, uint16, int32, uint32, int64, bool",
                other.as_str_name().to_ascii_lowercase()
            ));
        }
    }
    let got = if out.is_float() {
        out.floats.len()
    } else {
        out.ints.len()
    };
    if got != n {
        return Err(format!(
            "holds {got} values but its shape {:?} needs {n}",
            out.dims
        ));
    }
    Ok(out)
}
