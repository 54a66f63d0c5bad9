//! Compiles proto/bulkhead/v1/*.proto with the protoc binary vendored by protoc-bin-vendored, so a
//! fresh machine needs nothing but cargo.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    // SAFETY: build scripts are single-threaded, so no other thread reads the environment here.
    unsafe { std::env::set_var("PROTOC", protoc) };

    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../proto");
    let files = [
        root.join("bulkhead/v1/hub.proto"),
        root.join("bulkhead/v1/spoke.proto"),
    ];
    for file in &files {
        println!("cargo:rerun-if-changed={}", file.display());
    }

    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    tonic_prost_build::configure()
        .file_descriptor_set_path(out_dir.join("bulkhead_descriptor.bin"))
        .compile_protos(&files, &[root])?;
    Ok(())
}
