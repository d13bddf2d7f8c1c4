//! The report as CSV: one row per layer, then a `total` row.

use super::Report;

/// Writes the CSV text of `report`.
pub fn render(report: &Report) -> Result<String, csv::Error> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record([
        "index",
        "name",
        "op",
        "input_shape",
        "output_shape",
        "weights",
        "macs",
        "zero_macs",
        "output_dtype",
        "output_crc32",
    ])?;
    let shape = |s: [usize; 3]| format!("{}x{}x{}", s[0], s[1], s[2]);
    for l in &report.layers {
        w.write_record([
            l.index.to_string(),
            l.name.clone(),
            l.op.clone(),
            shape(l.input_shape),
            shape(l.output_shape),
            l.weights.to_string(),
            l.macs.to_string(),
            l.zero_macs.to_string(),
            l.output_dtype.clone(),
            l.output_crc32.clone(),
        ])?;
    }
    let t = &report.total;
    w.write_record([
        String::new(),
        t.name.clone(),
        String::new(),
        String::new(),
        String::new(),
        t.weights.to_string(),
        t.macs.to_string(),
        t.zero_macs.to_string(),
        String::new(),
        String::new(),
    ])?;
    let bytes = w.into_inner().map_err(|e| e.into_error())?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}
