//! Compiles `proto/onnx_subset.proto` (a field-number-exact subset of
//! onnx.proto) into Rust with prost-build. The .proto is parsed by protox, a
//! pure-Rust protobuf compiler, so building accsim needs no system `protoc`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/onnx_subset.proto");
    let descriptors = protox::compile(["onnx_subset.proto"], ["proto"])?;
    prost_build::Config::new().compile_fds(descriptors)?;
    Ok(())
}
