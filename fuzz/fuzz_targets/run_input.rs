//! The `--input` path (`accsim::run::read_input`): an arbitrary file handed
//! to two small workloads, one affine uint8 and one 16-bit fixed point.
//!
//! Invariant: no panic, no absurd allocation; bad input is an `InputError`
//! naming the input file.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use accsim::workload::{LoadOptions, Workload, load_str_with};
use libfuzzer_sys::fuzz_target;

const AFFINE: &str = r#"
[network]
name = "fuzz_affine"
description = "a 3x4x4 uint8 input, one convolution"
[numerics]
mode = "affine"
[input]
shape = [3, 4, 4]
[[layer]]
name = "conv"
op = "conv2d"
out_channels = 2
kernel = 3
"#;

const FIXED: &str = r#"
[network]
name = "fuzz_fixed"
description = "a 10-value int16 input, one fully connected layer"
[numerics]
mode = "dynamic_fixed_point"
[input]
shape = [10, 1, 1]
[[layer]]
name = "fc"
op = "fc"
out_features = 3
"#;

fn workloads() -> &'static [Workload; 2] {
    static W: OnceLock<[Workload; 2]> = OnceLock::new();
    W.get_or_init(|| {
        let load = |text: &str, name: &str| {
            load_str_with(
                text,
                &accsim_fuzz::workload_path(name),
                None,
                &LoadOptions::default(),
            )
            .expect("the fuzz target's own workloads load")
        };
        [
            load(AFFINE, "fuzz_affine.toml"),
            load(FIXED, "fuzz_fixed.toml"),
        ]
    })
}

/// A file of this process's own, in memory (`/dev/shm`) when the machine
/// has it: rewriting a file on a disk file system for every execution
/// (truncation, journal, discard) cost more than the parsing under test.
fn input_path() -> &'static PathBuf {
    static P: OnceLock<PathBuf> = OnceLock::new();
    P.get_or_init(|| {
        let shm = std::path::Path::new("/dev/shm");
        let dir = if shm.is_dir() {
            shm.to_path_buf()
        } else {
            std::env::temp_dir()
        };
        dir.join(format!("accsim-fuzz-input-{}.npy", std::process::id()))
    })
}

fuzz_target!(|data: &[u8]| {
    let path = input_path();
    std::fs::write(path, data).expect("the temporary directory is writable");
    for w in workloads() {
        match accsim::run::read_input(w, path) {
            Ok(x) => assert_eq!(x.len(), w.network.input_shape.len()),
            Err(e) => assert_eq!(&e.file, path, "{e}"),
        }
    }
});
