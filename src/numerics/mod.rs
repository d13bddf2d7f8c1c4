//! Numeric semantics, implemented once: every engine and the reference
//! executor call these functions, so "bit-exact" has one meaning.
//!
//! docs/numerics.md spells out every rule implemented here:
//! - [`quant`]: how integers stand for reals (affine and dynamic fixed point);
//! - [`rounding`]: the named rounding rules for shifts and divisions;
//! - [`tflite`]: TFLite's integer multiplier arithmetic, ported exactly;
//! - [`requant`]: the output stage (accumulator saturation, requantisation,
//!   zero point, activation clamp);
//! - [`mac`]: PELUSO's multi-precision MAC, bit by bit, with latency and energy;
//! - [`precision`]: per-layer precision assignments (docs/precision.md);
//! - [`csd`]: signed-digit recoding of fixed weights and shift-add products
//!   (the FFE's scalers, SPEC section 3);
//! - [`ort`]: ONNX Runtime's float kernels for fused adds and average pools;
//! - [`ort_dynamic`]: ONNX Runtime's dynamic quantisation (run-time scales);
//! - [`running_mean`]: a plane's float32 mean in ONNX Runtime's order, an
//!   element at a time (a streamed GLB-unit mean);
//! - [`ort_float`]: ONNX Runtime's float32 kernels between dynamic layers;
//! - [`kernels`]: the multiply-accumulate inner loops (AVX2 when the CPU has it).

pub mod csd;
pub mod eigen_pow;
pub mod kernels;
pub mod mac;
pub mod ort;
pub mod ort_channel;
pub mod ort_conv;
pub mod ort_dynamic;
pub mod ort_float;
pub mod precision;
pub mod quant;
pub mod requant;
pub mod rounding;
pub mod running_mean;
pub mod tflite;

pub use quant::{Activation, IntType, TensorQuant, WeightQuant};
pub use requant::{ChannelRequant, OutputStage, Requant};
pub use rounding::Rounding;
