//! Reading and writing .npy files with errors a user can act on.
//!
//! ndarray-npy does the parsing; this module checks dtype and shape against
//! what the workload expects and says what would have been valid.

use std::path::Path;

use ndarray::{ArrayD, IxDyn};
use ndarray_npy::{ReadNpyError, ReadNpyExt, WritableElement, WriteNpyExt};

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

/// Reads a .npy file of any supported element type.
pub fn read_npy_any(path: &Path) -> Result<NpyArray, InputError> {
    fn attempt<T: ndarray_npy::ReadableElement>(path: &Path) -> Result<ArrayD<T>, ReadNpyError> {
        let file = std::fs::File::open(path).map_err(ReadNpyError::Io)?;
        ArrayD::<T>::read_npy(std::io::BufReader::new(file))
    }
    let fail = |e: ReadNpyError| -> InputError {
        let message = match e {
            ReadNpyError::Io(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
                "not a valid .npy file: it ends before its header and data are complete".to_string()
            }
            ReadNpyError::Io(io) => format!("cannot read the file: {io}"),
            ReadNpyError::WrongDescriptor(d) => format!(
                "unsupported dtype {d}; valid: uint8, int8, int16, int32, int64, float32, float64 (little-endian)"
            ),
            other => format!("not a valid .npy file: {other}"),
        };
        InputError::new(path, message)
    };
    macro_rules! try_type {
        ($t:ty, $variant:ident) => {
            match attempt::<$t>(path) {
                Ok(a) => return Ok(NpyArray::$variant(a)),
                Err(ReadNpyError::WrongDescriptor(_)) => {}
                Err(e) => return Err(fail(e)),
            }
        };
    }
    try_type!(u8, U8);
    try_type!(i8, I8);
    try_type!(i16, I16);
    try_type!(i32, I32);
    try_type!(i64, I64);
    try_type!(f32, F32);
    match attempt::<f64>(path) {
        Ok(a) => Ok(NpyArray::F64(a)),
        Err(e) => Err(fail(e)),
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
