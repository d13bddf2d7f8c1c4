//! The report as CSV: one row per layer, then a `total` row. Engine columns
//! are empty when no engine measured them. The last four columns (engine,
//! its clock, TOPS, TOPS/W) were added with schema 3, `precision` (the
//! layer's MAC precision; the run's assignment on the total row) with 4,
//! the PE-cycles by cause (`pe_busy` ... `pe_unused`) with 6.

use super::{Measured, Report};

const HEADER: [&str; 10] = [
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
];
const MEASURED: [&str; 20] = [
    "cycles",
    "compute_cycles",
    "stall_cycles",
    "fill_cycles",
    "drain_cycles",
    "utilisation",
    "dram_read",
    "dram_write",
    "glb_read",
    "glb_write",
    "array_read",
    "array_write",
    "rf_read",
    "rf_write",
    "energy_mac",
    "energy_rf",
    "energy_array",
    "energy_glb",
    "energy_dram",
    "energy_total",
];

fn measured_fields(m: Option<&Measured>) -> Vec<String> {
    let Some(m) = m else {
        return vec![String::new(); MEASURED.len() + 1];
    };
    let a = &m.accesses;
    let e = &m.energy;
    let mut v: Vec<String> = [
        m.cycles,
        m.cycle_split.compute,
        m.cycle_split.stall,
        m.cycle_split.fill,
        m.cycle_split.drain,
    ]
    .iter()
    .map(u64::to_string)
    .collect();
    v.push(format!("{}", m.utilisation));
    v.extend(
        [
            a.dram.read,
            a.dram.write,
            a.glb.read,
            a.glb.write,
            a.array.read,
            a.array.write,
            a.rf.read,
            a.rf.write,
        ]
        .iter()
        .map(u64::to_string),
    );
    v.extend(
        [e.mac, e.rf, e.array, e.glb, e.dram, e.total]
            .iter()
            .map(|x| format!("{x}")),
    );
    v.push(format!("{}", m.energy_pj.total));
    v
}

/// The PE-cycles by cause, empty where the layer did not run on a PE array.
fn pe_cycle_fields(m: Option<&Measured>) -> Vec<String> {
    let causes = m.and_then(|m| m.pe_cycles);
    crate::engine::PeCycles::default()
        .named()
        .iter()
        .enumerate()
        .map(|(i, _)| causes.map_or_else(String::new, |c| c.named()[i].1.to_string()))
        .collect()
}

/// Writes the CSV text of `report`.
pub fn render(report: &Report) -> Result<String, csv::Error> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut header: Vec<&str> = HEADER.to_vec();
    header.extend(MEASURED);
    header.push("energy_pj_total");
    header.extend(["engine", "clock_mhz", "tops", "tops_per_w", "precision"]);
    let causes: Vec<String> = crate::engine::PeCycles::default()
        .named()
        .iter()
        .map(|(name, _)| format!("pe_{name}"))
        .collect();
    header.extend(causes.iter().map(String::as_str));
    w.write_record(&header)?;
    let opt = |x: Option<f64>| x.map(|v| format!("{v}")).unwrap_or_default();
    let shape = |s: [usize; 3]| format!("{}x{}x{}", s[0], s[1], s[2]);
    for l in &report.layers {
        let mut row = vec![
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
        ];
        row.extend(measured_fields(l.measured.as_ref()));
        row.extend([
            l.engine.clone().unwrap_or_default(),
            opt(l.clock_mhz),
            opt(l.tops),
            opt(l.tops_per_w),
            l.precision.clone().unwrap_or_default(),
        ]);
        row.extend(pe_cycle_fields(l.measured.as_ref()));
        w.write_record(&row)?;
    }
    let t = &report.total;
    let mut row = vec![
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
    ];
    row.extend(measured_fields(t.measured.as_ref()));
    let th = report.throughput.as_ref();
    row.extend([
        String::new(),
        opt(th.map(|t| t.clock_mhz)),
        opt(th.map(|t| t.tops)),
        opt(th.map(|t| t.tops_per_w)),
        report.precision.clone().unwrap_or_default(),
    ]);
    row.extend(pe_cycle_fields(t.measured.as_ref()));
    w.write_record(&row)?;
    let bytes = w.into_inner().map_err(|e| e.into_error())?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}
