//! Property test of REST JSON bodies, the stable run of the `json_body` fuzz
//! target: the same structure-aware generator (`fuzz/json_shape.rs`) fed from
//! proptest's bytes, and the same properties (`fuzz/json_properties.rs`), on the
//! pure conversion path (no server).

#[path = "../../fuzz/json_properties.rs"]
mod json_properties;
#[path = "../../fuzz/json_shape.rs"]
mod json_shape;

use std::sync::LazyLock;

use arbitrary::Unstructured;
use proptest::prelude::*;
use prost_reflect::MessageDescriptor;

use json_properties::{check_body, request_messages};
use json_shape::generate;

static INPUTS: LazyLock<Vec<MessageDescriptor>> = LazyLock::new(request_messages);

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn generated_bodies_keep_the_conversion_properties(data in proptest::collection::vec(any::<u8>(), 0..4096)) {
        let mut u = Unstructured::new(&data);
        if let Ok(body) = generate(&mut u, &INPUTS) {
            check_body(&INPUTS[body.method], &body.bytes, body.clean);
        }
    }
}
