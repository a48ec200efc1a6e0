//! Compiles the service's protos with a pure-Rust front end (no system `protoc`):
//! prost/tonic code, pbjson serde impls, and the descriptor set that server
//! reflection and the REST transcoder read at run time.

use std::{env, path::PathBuf};

use prost::Message;

const PROTOS: &[&str] = &["avnology/audit/v1/audit.proto"];

fn main() -> anyhow::Result<()> {
    println!("cargo:rerun-if-changed=proto");
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);

    let mut compiler = protox::Compiler::new(["proto"])?;
    compiler.include_imports(true).include_source_info(false);
    compiler.open_files(PROTOS)?;
    // Encoded straight from the compiler's pool: decoding into prost-types first
    // would drop the method options' extension values (the HTTP rules and scopes).
    let encoded = compiler.encode_file_descriptor_set();
    let descriptor_path = out_dir.join("audit_descriptor.bin");
    std::fs::write(&descriptor_path, &encoded)?;
    let file_descriptors = prost_types::FileDescriptorSet::decode(encoded.as_slice())?;

    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        // Undecodable requests are INVALID_ARGUMENT, not tonic's INTERNAL.
        .codec_path("crate::codec::AuditCodec")
        // pbjson-types carries the well-known types with their canonical JSON
        // forms (Timestamp as RFC 3339, Struct as a JSON object).
        .compile_well_known_types(true)
        .extern_path(".google.protobuf", "::pbjson_types")
        .compile_fds(file_descriptors)?;

    pbjson_build::Builder::new().register_descriptors(&encoded)?.build(&[".avnology.audit.v1", ".google.api"])?;
    Ok(())
}
