//! Descriptor pools compiled at test time from proto text, for tests of how the
//! server treats RPCs it has never seen.

use prost_reflect::DescriptorPool;

/// The pool of one proto file, which may import the service's own protos (e.g.
/// `avnology/audit/v1/audit.proto` for its method options) and the well-known types.
pub(crate) fn pool_of(proto: &str) -> DescriptorPool {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("test.proto"), proto).unwrap();
    let proto_root = concat!(env!("CARGO_MANIFEST_DIR"), "/proto");
    let mut compiler = protox::Compiler::new([dir.path().to_str().unwrap(), proto_root]).unwrap();
    compiler.include_imports(true);
    compiler.open_files(["test.proto"]).unwrap();
    // Encoded by the compiler itself, so the options' extension values survive.
    DescriptorPool::decode(compiler.encode_file_descriptor_set().as_slice()).unwrap()
}
