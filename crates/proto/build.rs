//! Compiles every proto/bulkhead/v1/*.proto with the protoc binary vendored by protoc-bin-vendored, so a
//! fresh machine needs nothing but cargo.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    // SAFETY: build scripts are single-threaded, so no other thread reads the environment here.
    unsafe { std::env::set_var("PROTOC", protoc) };

    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../proto");
    let package_dir = root.join("bulkhead/v1");
    println!("cargo:rerun-if-changed={}", package_dir.display());
    // Every .proto file of the package, sorted so the generated code does not depend on readdir order.
    let mut files: Vec<PathBuf> = std::fs::read_dir(&package_dir)?
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "proto"))
        .collect();
    files.sort();
    for file in &files {
        println!("cargo:rerun-if-changed={}", file.display());
    }

    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    tonic_prost_build::configure()
        .file_descriptor_set_path(out_dir.join("bulkhead_descriptor.bin"))
        .compile_protos(&files, &[root])?;
    Ok(())
}
