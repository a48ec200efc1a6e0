//! Code generated from `proto/` by `build.rs`, and the descriptor set it was built from.

#![allow(clippy::all, clippy::pedantic, missing_docs)]

pub mod google {
    pub mod api {
        include!(concat!(env!("OUT_DIR"), "/google.api.rs"));
        include!(concat!(env!("OUT_DIR"), "/google.api.serde.rs"));
    }
}

pub mod audit {
    include!(concat!(env!("OUT_DIR"), "/avnology.audit.v1.rs"));
    include!(concat!(env!("OUT_DIR"), "/avnology.audit.v1.serde.rs"));
}

/// Encoded `FileDescriptorSet` of every proto the service is built from.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/audit_descriptor.bin"));
