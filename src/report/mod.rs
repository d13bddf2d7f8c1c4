//! The run report: what a run measured, as plain serde data.
//!
//! The schema is documented in docs/report.md and kept stable: fields are
//! added, never renamed. Fields an engine has not measured are absent, never
//! zero or a placeholder.

pub mod csv;
pub mod text;

use serde::Serialize;

/// Version of the report schema (docs/report.md).
pub const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Report {
    pub schema_version: u32,
    pub accsim_version: String,
    pub workload: WorkloadInfo,
    pub arch: ArchInfo,
    /// What produced the per-layer figures (`reference`: only what the
    /// reference executor knows; no hardware was simulated).
    pub engine: String,
    pub layers: Vec<LayerReport>,
    pub total: TotalReport,
    /// True only when a simulated engine computed every layer and each
    /// matched the reference executor bit for bit.
    pub bit_exact: bool,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct WorkloadInfo {
    pub name: String,
    pub file: String,
    pub variant: Option<String>,
    pub description: String,
    /// `affine/tflite`, `affine/float` or `dynamic_fixed_point/<rounding>`.
    pub numerics: String,
    pub input_shape: [usize; 3],
    /// `default` (the workload's own input) or the .npy file given.
    pub input: String,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ArchInfo {
    pub name: String,
    pub file: String,
    pub description: String,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LayerReport {
    pub index: usize,
    pub name: String,
    pub op: String,
    pub input_shape: [usize; 3],
    pub output_shape: [usize; 3],
    pub weights: u64,
    pub macs: u64,
    /// MACs with a zero (centred) input or weight operand.
    pub zero_macs: u64,
    /// Storage type of the output (`uint8`, `int8`, `int16`).
    pub output_dtype: String,
    /// CRC-32 of the output tensor's bytes in C order, as 8 hex digits.
    pub output_crc32: String,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TotalReport {
    pub name: String,
    pub weights: u64,
    pub macs: u64,
    pub zero_macs: u64,
}

/// `1234567` as `1,234,567`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn thousands_groups_digits() {
        assert_eq!(super::thousands(0), "0");
        assert_eq!(super::thousands(999), "999");
        assert_eq!(super::thousands(1000), "1,000");
        assert_eq!(super::thousands(257_209_728), "257,209,728");
    }
}
