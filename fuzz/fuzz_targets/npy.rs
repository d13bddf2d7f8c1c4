//! The .npy reader (`accsim::workload::npy::read_npy_bytes`, the core of
//! `read_npy_any`) and the conversions and shape checks the loaders apply to
//! what it returns.
//!
//! Invariant: no panic, no absurd allocation whatever the header claims;
//! bad input is an `InputError` naming the file.
#![no_main]

use accsim::workload::npy;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = std::path::Path::new("fuzz.npy");
    let array = match npy::read_npy_bytes(data, path) {
        Ok(a) => a,
        Err(e) => {
            assert_eq!(e.file, path, "{e}");
            return;
        }
    };
    let n: usize = array.shape().iter().product();
    assert_eq!(array.to_f64().len(), n);
    if let Some(ints) = array.to_i64() {
        assert_eq!(ints.len(), n);
    }
    let _ = npy::check_shape(path, &array, &[n, 1, 1]);
    let _ = npy::check_shape(path, &array, array.shape());
});
