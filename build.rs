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
        .compile_fds(file_descriptors.clone())?;

    pbjson_build::Builder::new().register_descriptors(&encoded)?.build(&[".avnology.audit.v1", ".google.api"])?;
    write_typed_json(&file_descriptors, &out_dir.join("typed_json.rs"))?;
    Ok(())
}

/// The REST transcoder's typed JSON decoders: one match arm per top-level message
/// of the service's package, so that a new request message needs no REST code.
/// Typed decoding builds prost's compact tree instead of a reflective one, which
/// costs over ten times more memory per free-form JSON value.
fn write_typed_json(files: &prost_types::FileDescriptorSet, path: &std::path::Path) -> anyhow::Result<()> {
    let mut arms = String::new();
    for file in files.file.iter().filter(|f| f.package() == "avnology.audit.v1") {
        for message in &file.message_type {
            let name = message.name();
            let rust = rust_type_name(name);
            arms.push_str(&format!(
                "        \"avnology.audit.v1.{name}\" => Some(decode::<crate::proto::audit::{rust}>(json)),\n"
            ));
        }
    }
    let code = format!(
        "/// The protobuf encoding of `json`, a message of the service's package read\n\
         /// with its generated serde code; `None` for messages of other packages.\n\
         pub fn json_to_protobuf(message: &str, json: &[u8]) -> Option<Result<Vec<u8>, serde_json::Error>> {{\n\
         \x20   match message {{\n{arms}        _ => None,\n    }}\n}}\n"
    );
    std::fs::write(path, code)?;
    Ok(())
}

/// prost's Rust name of a message, made by the same conversion prost-build uses.
fn rust_type_name(proto: &str) -> String {
    use heck::ToUpperCamelCase;
    proto.to_upper_camel_case()
}
