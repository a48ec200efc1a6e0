//! The JSON of a REST answer: proto3 JSON with the contract's choices. Proto field
//! names; 64-bit integers as JSON numbers; numbers, booleans, enums and repeated
//! fields always written, at their defaults too (a summary's `"failure_count": 0`,
//! an empty `"buckets": []`, an event's `"log_index": 0`); an empty string and an
//! unset message left out (an event without `ip`, `user_agent`, `target` or
//! `details`, a last page without `next_page_token`).

use prost_reflect::{DynamicMessage, Kind, MessageDescriptor, ReflectMessage, SerializeOptions, Value};
use serde_json::{Map, Value as Json};

use crate::error::Error;

/// The reply, or the field of it a rule's `response_body` names, as JSON bytes.
pub(super) fn json(reply: &DynamicMessage, response_body: Option<&str>) -> Result<Vec<u8>, Error> {
    let options =
        SerializeOptions::new().use_proto_field_name(true).stringify_64_bit_integers(false).skip_default_fields(false);
    let body = match response_body.and_then(|field| reply.get_field_by_name(field)) {
        Some(value) => match value.into_owned() {
            Value::Message(inner) => inner,
            _ => reply.clone(),
        },
        None => reply.clone(),
    };
    let mut tree = body
        .serialize_with_options(serde_json::value::Serializer, &options)
        .map_err(|e| anyhow::anyhow!("cannot write reply as JSON: {e}"))?;
    if let Json::Object(object) = &mut tree {
        leave_out_empty_strings(object, &body.descriptor());
    }
    let mut out = Vec::with_capacity(256);
    serde_json::to_writer(&mut out, &tree).map_err(|e| anyhow::anyhow!("cannot write reply as JSON: {e}"))?;
    Ok(out)
}

/// Removes the singular string fields at `""` from a message's JSON object, in it and
/// in the messages it holds. The well-known types keep their own JSON forms: a
/// `Struct`'s `""` is a value the caller sent, not an unset field.
fn leave_out_empty_strings(object: &mut Map<String, Json>, message: &MessageDescriptor) {
    if is_well_known(message) {
        return;
    }
    for field in message.fields() {
        let Some(value) = object.get_mut(field.name()) else { continue };
        match field.kind() {
            Kind::String if !field.is_list() && value.as_str() == Some("") => {
                object.remove(field.name());
            }
            Kind::Message(inner) if field.is_map() => {
                let value_kind = inner.map_entry_value_field().kind();
                if let (Kind::Message(entry), Json::Object(entries)) = (value_kind, value) {
                    for item in entries.values_mut() {
                        if let Json::Object(item) = item {
                            leave_out_empty_strings(item, &entry);
                        }
                    }
                }
            }
            Kind::Message(inner) => match value {
                Json::Array(items) => {
                    for item in items {
                        if let Json::Object(item) = item {
                            leave_out_empty_strings(item, &inner);
                        }
                    }
                }
                Json::Object(item) => leave_out_empty_strings(item, &inner),
                _ => {}
            },
            _ => {}
        }
    }
}

fn is_well_known(message: &MessageDescriptor) -> bool {
    message.package_name() == "google.protobuf"
}

#[cfg(test)]
mod tests {
    use prost::Message;
    use prost_reflect::DescriptorPool;

    use super::*;
    use crate::proto::{FILE_DESCRIPTOR_SET, audit as pb};

    fn json_of<M: Message>(name: &str, message: &M) -> String {
        let pool = DescriptorPool::decode(FILE_DESCRIPTOR_SET).unwrap();
        let output = pool.get_message_by_name(name).unwrap();
        let dynamic = DynamicMessage::decode(output, message.encode_to_vec().as_slice()).unwrap();
        String::from_utf8(json(&dynamic, None).unwrap()).unwrap()
    }

    #[test]
    fn int64_counts_are_json_numbers_beyond_32_bits_and_zeros_are_written() {
        let reply = pb::GetEventsSummaryResponse {
            buckets: vec![pb::ActionBucket { action: "session.login".into(), count: 5_000_000_123, failure_count: 0 }],
        };
        let json = json_of("avnology.audit.v1.GetEventsSummaryResponse", &reply);
        assert_eq!(json, r#"{"buckets":[{"action":"session.login","count":5000000123,"failure_count":0}]}"#);
        let empty = json_of("avnology.audit.v1.GetEventsSummaryResponse", &pb::GetEventsSummaryResponse::default());
        assert_eq!(empty, r#"{"buckets":[]}"#);
    }

    #[test]
    fn an_event_leaves_out_its_empty_optional_fields_but_not_log_index() {
        let details: pbjson_types::Struct = serde_json::from_str(r#"{"method":"password","note":""}"#).unwrap();
        let full = pb::AuditEvent {
            id: "aud_01H7X3K9Q1".into(),
            timestamp: Some(pbjson_types::Timestamp { seconds: 1_776_429_296, nanos: 789_000_000 }),
            organization_id: "org_acme".into(),
            action: "session.login.failed".into(),
            actor: Some(pb::Actor { r#type: "identity".into(), id: "usr_4f18acec".into() }),
            target: Some(pb::Target { r#type: "session".into(), id: "ses_2b7".into() }),
            result: "failure".into(),
            ip: "198.51.100.42".into(),
            user_agent: "Mozilla/5.0".into(),
            details: Some(details),
            log_index: 41_872,
        };
        assert_eq!(
            json_of("avnology.audit.v1.AuditEvent", &full),
            r#"{"id":"aud_01H7X3K9Q1","timestamp":"2026-04-17T12:34:56.789Z","organization_id":"org_acme","action":"session.login.failed","actor":{"type":"identity","id":"usr_4f18acec"},"target":{"type":"session","id":"ses_2b7"},"result":"failure","ip":"198.51.100.42","user_agent":"Mozilla/5.0","details":{"method":"password","note":""},"log_index":41872}"#
        );
        let bare = pb::AuditEvent {
            target: None,
            ip: String::new(),
            user_agent: String::new(),
            details: None,
            log_index: 0,
            ..full
        };
        let listed = pb::ListEventsResponse { events: vec![bare], next_page_token: String::new() };
        assert_eq!(
            json_of("avnology.audit.v1.ListEventsResponse", &listed),
            r#"{"events":[{"id":"aud_01H7X3K9Q1","timestamp":"2026-04-17T12:34:56.789Z","organization_id":"org_acme","action":"session.login.failed","actor":{"type":"identity","id":"usr_4f18acec"},"result":"failure","log_index":0}]}"#
        );
    }

    /// Timestamps are Z-normalized with 0, 3, 6 or 9 fractional digits: the shortest
    /// of those that writes the stored nanoseconds exactly.
    #[test]
    fn timestamps_are_written_at_the_stored_precision() {
        for (nanos, text) in [
            (0, "2026-04-17T12:34:56Z"),
            (700_000_000, "2026-04-17T12:34:56.700Z"),
            (789_000_000, "2026-04-17T12:34:56.789Z"),
            (789_123_000, "2026-04-17T12:34:56.789123Z"),
            (789_123_456, "2026-04-17T12:34:56.789123456Z"),
            (1, "2026-04-17T12:34:56.000000001Z"),
        ] {
            let event = pb::AuditEvent {
                timestamp: Some(pbjson_types::Timestamp { seconds: 1_776_429_296, nanos }),
                ..Default::default()
            };
            let json: Json = serde_json::from_str(&json_of("avnology.audit.v1.AuditEvent", &event)).unwrap();
            assert_eq!(json["timestamp"], text, "{nanos}");
        }
    }
}
