//! Fuzz target: the REST query-string → request binder, on every annotated request
//! message, never panics; what it accepts encodes, and a summary request it
//! accepts goes through the domain's validation without panicking either.
#![no_main]

use std::collections::HashSet;
use std::sync::LazyLock;

use audit_service::domain::SummaryRequest;
use audit_service::proto::{FILE_DESCRIPTOR_SET, audit as pb};
use audit_service::rest::binding::{Bound, bind_query};
use libfuzzer_sys::fuzz_target;
use prost::Message;
use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor};

static MESSAGES: LazyLock<Vec<MessageDescriptor>> = LazyLock::new(|| {
    let pool = DescriptorPool::decode(FILE_DESCRIPTOR_SET).unwrap();
    ["avnology.audit.v1.GetEventsSummaryRequest", "avnology.audit.v1.AuditEvent", "avnology.audit.v1.Actor"]
        .iter()
        .map(|name| pool.get_message_by_name(name).unwrap())
        .collect()
});

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else { return };
    let Ok(query) = std::str::from_utf8(rest) else { return };
    let descriptor = &MESSAGES[usize::from(selector) % MESSAGES.len()];
    let bound_fields: HashSet<String> =
        if selector & 0x80 != 0 { ["organization_id".to_owned()].into() } else { HashSet::new() };
    let bound = Bound { whole_body: selector & 0x40 != 0, fields: &bound_fields };
    let mut message = DynamicMessage::new(descriptor.clone());
    if bind_query(&mut message, query, &bound).is_ok() {
        let encoded = message.encode_to_vec();
        if descriptor.name() == "GetEventsSummaryRequest" {
            let request = pb::GetEventsSummaryRequest::decode(encoded.as_slice()).expect("bound message decodes");
            let _ = SummaryRequest::try_from(request);
        }
    }
});
