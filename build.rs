//! Generates the provd.v1 Rust types, tonic services, the file descriptor set
//! served by reflection, and the proto3-JSON (pbjson) serde impls used by the
//! HTTP/JSON transport. Generated code lives only in `OUT_DIR` and is included
//! once, by `proto/src/lib.rs`. This is the build script of the provd-proto
//! package (`proto/Cargo.toml`), run in `proto/`.
use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let include = protoc_bin_vendored::include_path()?;
    let mut protos: Vec<PathBuf> = std::fs::read_dir("provd/v1")?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|ext| ext == "proto"))
        .collect();
    protos.sort();
    println!("cargo:rerun-if-changed=provd/v1");

    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    let descriptor_path = out_dir.join("provd_descriptor.bin");

    let mut config = prost_build::Config::new();
    config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?);
    tonic_prost_build::configure()
        .file_descriptor_set_path(&descriptor_path)
        .compile_well_known_types(true)
        .extern_path(".google.protobuf", "::pbjson_types")
        // prost's codec, but a request that does not decode is INVALID_ARGUMENT.
        .codec_path("crate::codec::ContractCodec")
        // Credential carries a password, CloudSyncSpec a secret's value (the
        // notification email): their Debug is hand-written (redacted).
        .skip_debug([".provd.v1.Credential", ".provd.v1.CloudSyncSpec"])
        .compile_with_config(config, &protos, &[PathBuf::from("."), include])?;

    let descriptors = std::fs::read(&descriptor_path)?;
    pbjson_build::Builder::new()
        .register_descriptors(&descriptors)?
        .build(&[".provd.v1"])?;
    // pbjson's visitors expect "expected one of: [..]", and serde puts its
    // own "expected " before that ("expected expected one of"); tested in
    // transport/http.rs.
    let serde_path = out_dir.join("provd.v1.serde.rs");
    let generated = std::fs::read_to_string(&serde_path)?;
    std::fs::write(
        &serde_path,
        generated.replace(r#""expected one of: {:?}""#, r#""one of: {:?}""#),
    )?;
    Ok(())
}
