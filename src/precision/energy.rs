//! Energy of a precision assignment: the interface the search calls, which
//! the simulated engine implements (SPEC section 2: `E = E_comp + E_mem`, the
//! counts taken from the simulated architecture): [`SimulatedEnergyModel`].
//!
//! [`AnalyticEnergyModel`] is **not** what reports use. It is a closed-form
//! stand-in for tests and examples until the engine supplies energies: MAC
//! energy from `mac::MacConfig` and zero counts of one input, plus every
//! weighted layer's input, weight and output tensor moved once at a fixed
//! cost per 16-bit word (half for 8-bit data). Real access counts depend on
//! the dataflow and memory hierarchy, which only the engine knows.

use crate::arch::Arch;
use crate::arch::mac::MacConfig;
use crate::cost::energy;
use crate::engine::{self, EngineOptions};
use crate::numerics::mac::{MacCounts, Width};
use crate::numerics::precision::PrecisionAssignment;
use crate::reference::precision::{PrecisionNetwork, weighted_layers};
use crate::workload::ir::{Activations, Network};

/// Energy of one inference of a fixed network at an assignment.
pub trait EnergyModel: Sync {
    /// Energy in pJ of one inference at `assignment`. Errors name what is
    /// wrong (the caller adds the file or flag).
    fn energy_pj(&self, assignment: &PrecisionAssignment) -> Result<f64, String>;
}

/// What one simulated inference at an assignment cost.
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize)]
pub struct SimulatedCost {
    /// Total energy, pJ: MACs + register files + array + GLB + DRAM.
    pub energy_pj: f64,
    pub mac_pj: f64,
    pub memory_pj: f64,
    pub cycles: u64,
}

/// Energy as the engine simulates it: one inference of `network` on `arch`
/// at the assignment, on `input` (the workload's default input; the zero
/// operands, and so the MAC energy, depend on it). Every figure is the
/// engine's; nothing is estimated. The run is not compared with the
/// reference (the search runs thousands); [`Self::checked`] does that for
/// the points a study reports.
pub struct SimulatedEnergyModel<'a> {
    network: &'a Network,
    arch: &'a Arch,
    input: &'a Activations,
}

impl<'a> SimulatedEnergyModel<'a> {
    pub fn new(network: &'a Network, arch: &'a Arch, input: &'a Activations) -> Self {
        SimulatedEnergyModel {
            network,
            arch,
            input,
        }
    }

    /// One simulated inference at `assignment`.
    pub fn simulate(&self, assignment: &PrecisionAssignment) -> Result<SimulatedCost, String> {
        self.run(assignment, None)
    }

    /// [`Self::simulate`], every layer compared with the reference executor
    /// at the same assignment: an error names the first differing value.
    pub fn checked(&self, assignment: &PrecisionAssignment) -> Result<SimulatedCost, String> {
        let reference = PrecisionNetwork::new(self.network, assignment)?
            .run(self.input.clone())
            .into_parts()
            .1;
        self.run(assignment, Some(&reference))
    }

    fn run(
        &self,
        assignment: &PrecisionAssignment,
        reference: Option<&[Activations]>,
    ) -> Result<SimulatedCost, String> {
        // Each state's schedules come from the rule, not the search by
        // simulation (docs/precision.md, "Schedules in a study"): on ic_cifar10_float the
        // search doubled the study's CPU time and chose the same schedules.
        let options = EngineOptions {
            trace: None,
            precision: Some(assignment.clone()),
            search: engine::ScheduleSearchOptions {
                objective: engine::Objective::Rule,
                ..Default::default()
            },
            ..EngineOptions::default()
        };
        let r = engine::run_with(self.network, self.arch, self.input, reference, &options)
            .map_err(|e| e.to_string())?;
        let e = energy::normalised_sum(&r.layers, &self.arch.energy)
            .scaled(self.arch.energy.pj_per_unit);
        Ok(SimulatedCost {
            energy_pj: e.total,
            mac_pj: e.mac,
            memory_pj: e.memory(),
            cycles: r.total_cycles,
        })
    }
}

impl EnergyModel for SimulatedEnergyModel<'_> {
    fn energy_pj(&self, assignment: &PrecisionAssignment) -> Result<f64, String> {
        Ok(self.simulate(assignment)?.energy_pj)
    }
}

/// Energy split of the analytic model, pJ.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct AnalyticEnergy {
    pub compute_pj: f64,
    pub memory_pj: f64,
}

/// Test-only closed-form energy (see the module docs): not a simulation,
/// never used in reports.
pub struct AnalyticEnergyModel<'a> {
    network: &'a Network,
    /// The input whose zero operands set the zero-MAC counts.
    input: &'a Activations,
    mac: MacConfig,
    /// Energy of moving one 16-bit word once (8-bit words cost half), pJ.
    word_pj: f64,
}

impl<'a> AnalyticEnergyModel<'a> {
    pub fn new(network: &'a Network, input: &'a Activations, mac: MacConfig, word_pj: f64) -> Self {
        AnalyticEnergyModel {
            network,
            input,
            mac,
            word_pj,
        }
    }

    /// Compute and memory energy at `assignment`.
    pub fn split(&self, assignment: &PrecisionAssignment) -> Result<AnalyticEnergy, String> {
        let p = PrecisionNetwork::new(self.network, assignment)?;
        let (_, counts) = p.run_counting(self.input.clone());
        let weighted = weighted_layers(self.network);
        let mut e = AnalyticEnergy::default();
        for (k, (&i, c)) in weighted.iter().zip(&counts).enumerate() {
            let mode = assignment.layers()[k];
            e.compute_pj += self.mac.cost(mode, *c).energy_pj;
            let layer = &self.network.layers[i];
            // The output is stored at the width its consumer reads.
            let out_width = assignment
                .layer(k + 1)
                .map_or(assignment.output(), |m| m.input);
            let words = |n: u64, w: Width| n as f64 * f64::from(w.bits()) / 16.0;
            e.memory_pj += self.word_pj
                * (words(layer.input_shape.len() as u64, mode.input)
                    + words(layer.weight_count(), mode.weight)
                    + words(layer.output_shape.len() as u64, out_width));
        }
        Ok(e)
    }

    /// MAC counts per weighted layer at `assignment` on the model's input.
    pub fn mac_counts(&self, assignment: &PrecisionAssignment) -> Result<Vec<MacCounts>, String> {
        let p = PrecisionNetwork::new(self.network, assignment)?;
        Ok(p.run_counting(self.input.clone()).1)
    }
}

impl EnergyModel for AnalyticEnergyModel<'_> {
    fn energy_pj(&self, assignment: &PrecisionAssignment) -> Result<f64, String> {
        let e = self.split(assignment)?;
        Ok(e.compute_pj + e.memory_pj)
    }
}
