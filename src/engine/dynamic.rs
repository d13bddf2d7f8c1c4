//! The run-time registers of a dynamically quantised model (docs/onnx.md,
//! item 20): a layer that needs a `dynamic_range` tensor's scale and zero
//! point (a `dynamic_quantize` on the GLB unit, a convolution or matrix
//! product on the PE array reading its result) reads that small tensor
//! from the GLB (or DRAM) into its registers when it starts, and runs with
//! them: the PE array's input zero point (padding) and its output stage's
//! multiplier, the GLB unit's quantiser.

use super::storage::TensorStore;
use super::{LayerRunner, Machine, array, missing, source_index};
use crate::error::Result;
use crate::reference::dynamic::{reads_range, resolve};
use crate::units::DataType;
use crate::workload::ir::Layer;

impl LayerRunner<'_> {
    /// For layer `i` when it reads a run-time range: reads the range
    /// tensor (its last input) at the layer's start, counts the read, lets
    /// the tensor go after its last reader, moves the start past the read,
    /// and returns the layer with those values filled in
    /// (`reference::dynamic::resolve`, as the reference executor does).
    pub(super) fn load_range(
        &mut self,
        m: &mut Machine,
        stores: &mut [Option<TensorStore>],
        i: usize,
    ) -> Result<Option<Layer>> {
        let layer = &self.numerics.layers[i];
        let Some(&source) = layer.inputs.last().filter(|_| reads_range(layer)) else {
            return Ok(None);
        };
        let k = self.tensors.store_of[source_index(source)];
        let store = stores[k].as_mut().ok_or_else(|| missing(layer))?;
        let values = store.contents();
        let (words, bytes) = (store.shape.len() as u64, store.bytes());
        let end = if store.in_glb.iter().all(|&r| r) {
            m.glb_read(self.now, DataType::Input, words, bytes).end
        } else {
            let addr = store.dram_address(0, 0, 0);
            m.dram_read(self.now, addr, DataType::Input, words, bytes)
        };
        store.readers_left = store.readers_left.saturating_sub(1);
        if store.readers_left == 0 {
            array::free_all_rows(m, store);
        }
        self.now = end;
        m.set_clock(end)?;
        Ok(Some(resolve(layer, Some(&values)).into_owned()))
    }
}
