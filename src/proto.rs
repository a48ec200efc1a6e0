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

/// Typed JSON decoding of the service's own messages, for the REST transcoder.
pub mod typed_json {
    use prost::Message;
    use serde::de::DeserializeOwned;

    /// Exactly one JSON value of `T`, unknown fields refused, encoded as protobuf.
    fn decode<T: DeserializeOwned + Message>(json: &[u8]) -> Result<Vec<u8>, serde_json::Error> {
        let mut deserializer = serde_json::Deserializer::from_slice(json);
        let message = T::deserialize(&mut deserializer)?;
        deserializer.end()?;
        Ok(message.encode_to_vec())
    }

    include!(concat!(env!("OUT_DIR"), "/typed_json.rs"));
}

/// Encoded `FileDescriptorSet` of every proto the service is built from.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/audit_descriptor.bin"));
