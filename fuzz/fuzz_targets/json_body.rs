//! Fuzz target: REST JSON bodies shaped after each method's request message (see
//! `json_shape.rs`) through the body budget and the conversion to protobuf, with
//! the properties of `json_properties.rs`: INVALID_ARGUMENT naming a field or a
//! message that decodes and validates without panicking, and a budget that refuses
//! exactly the bodies over its limits.
#![no_main]

#[path = "../json_properties.rs"]
mod json_properties;
#[path = "../json_shape.rs"]
mod json_shape;

use std::sync::LazyLock;

use arbitrary::Unstructured;
use libfuzzer_sys::fuzz_target;
use prost_reflect::MessageDescriptor;

static INPUTS: LazyLock<Vec<MessageDescriptor>> = LazyLock::new(json_properties::request_messages);

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    if let Ok(body) = json_shape::generate(&mut u, &INPUTS) {
        json_properties::check_body(&INPUTS[body.method], &body.bytes, body.clean);
    }
});
