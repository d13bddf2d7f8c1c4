//! accsim's ONNX import against ONNX Runtime, bit for bit.
//!
//! `tests/data/onnx/` holds small quantised models and the outputs ONNX
//! Runtime computed for their inputs (`scripts/onnx_cases.py` made them;
//! `cases.json` records what ONNX Runtime ran). Each case is imported,
//! run through the reference executor, and its last layer compared with the
//! golden exactly: integer outputs element by element, float outputs (a
//! trailing DequantizeLinear) as `f32(q - zero_point) * scale`, bit for bit.

use std::path::{Path, PathBuf};

use accsim::numerics::TensorQuant;
use accsim::reference;
use accsim::run::read_input;
use accsim::workload::TensorSource;
use accsim::workload::npy::{NpyArray, read_npy_any};

fn data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/onnx")
}

fn case_names() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(data())
        .expect("tests/data/onnx exists")
        .filter_map(|e| {
            let p = e.ok()?.path();
            if p.extension()? != "onnx" {
                return None;
            }
            Some(p.file_stem()?.to_string_lossy().into_owned())
        })
        .collect();
    names.sort();
    names
}

/// Runs one case; returns a description of the first difference, if any.
fn check(name: &str) -> Result<(), String> {
    let dir = data();
    let model = dir.join(format!("{name}.onnx"));
    let w = accsim::workload::load(model.to_str().expect("utf-8 path"))
        .map_err(|e| format!("import: {e}"))?;
    let x = read_input(&w, &dir.join(format!("{name}.input.npy")))
        .map_err(|e| format!("input: {e}"))?;
    let net = &w.network;
    let exec = reference::run(net, x);
    let last = net.layers.len() - 1;
    let got = exec.tensor(TensorSource::Layer(last));
    let golden =
        read_npy_any(&dir.join(format!("{name}.output.npy"))).map_err(|e| e.to_string())?;
    if golden.shape().iter().product::<usize>() != got.len() {
        return Err(format!(
            "shape: golden {:?}, accsim {:?}",
            golden.shape(),
            got.dim()
        ));
    }
    let expect: Vec<i64> = match &golden {
        NpyArray::F32(a) => {
            let TensorQuant::Affine {
                scale, zero_point, ..
            } = net.layers[last].output_quant
            else {
                return Err("float golden for a fixed-point output".into());
            };
            // Compare as ORT's DequantizeLinear would produce from accsim's integers.
            let mine: Vec<u32> = got
                .iter()
                .map(|&q| ((i32::from(q) - zero_point) as f32 * scale).to_bits())
                .collect();
            let theirs: Vec<u32> = a.iter().map(|v| v.to_bits()).collect();
            if let Some(i) = (0..mine.len()).find(|&i| mine[i] != theirs[i]) {
                let differing = (0..mine.len()).filter(|&i| mine[i] != theirs[i]).count();
                return Err(format!(
                    "element {i}: accsim {} ORT {} ({differing} of {} differ)",
                    f32::from_bits(mine[i]),
                    f32::from_bits(theirs[i]),
                    mine.len()
                ));
            }
            return Ok(());
        }
        other => other.to_i64().ok_or("unexpected golden type")?,
    };
    let mine: Vec<i64> = got.iter().map(|&v| i64::from(v)).collect();
    if let Some(i) = (0..mine.len()).find(|&i| mine[i] != expect[i]) {
        let differing = (0..mine.len()).filter(|&i| mine[i] != expect[i]).count();
        return Err(format!(
            "element {i}: accsim {} ORT {} ({differing} of {} differ)",
            mine[i],
            expect[i],
            mine.len()
        ));
    }
    Ok(())
}

#[test]
fn every_onnx_case_matches_onnx_runtime_bit_for_bit() {
    let names = case_names();
    assert!(names.len() >= 30, "only {} ONNX cases", names.len());
    let failures: Vec<String> = names
        .iter()
        .filter_map(|n| check(n).err().map(|e| format!("{n}: {e}")))
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} cases differ from ONNX Runtime:\n{}",
        failures.len(),
        names.len(),
        failures.join("\n")
    );
}
