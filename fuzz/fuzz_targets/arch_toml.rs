//! The architecture TOML loader (`accsim::arch::load_str`) on arbitrary text.
//!
//! Invariant: no panic, no hang; bad input is an `Error::Input`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = std::path::Path::new("fuzz_arch.toml");
    accsim_fuzz::expect_input_error(accsim::arch::load_str(text, path), path);
});
