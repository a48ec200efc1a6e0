//! The body budget against the service's own request messages.

use prost_reflect::DescriptorPool;

use super::*;
use crate::proto::FILE_DESCRIPTOR_SET;

fn batch() -> MessageDescriptor {
    DescriptorPool::decode(FILE_DESCRIPTOR_SET)
        .unwrap()
        .get_message_by_name("avnology.audit.v1.BatchCreateEventsRequest")
        .unwrap()
}

fn refusal(body: &str) -> (String, String) {
    match check(body.as_bytes(), &batch(), None) {
        Err(Error::InvalidArgument { violations, .. }) => {
            (violations[0].field.clone(), violations[0].description.clone())
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}

fn nested_lists(depth: usize) -> String {
    format!("{}1{}", "[".repeat(depth), "]".repeat(depth))
}

fn event_with_details(details: &str) -> String {
    format!(
        r#"{{"events":[{{"organizationId":"org_a","action":"a.b","result":"success"}},{{"organization_id":"org_a","details":{details}}}]}}"#
    )
}

#[test]
fn ordinary_batches_pass() {
    let details = r#"{"reason":"password","attempts":[1,2,3],"geo":{"country":"DE","city":null}}"#;
    check(event_with_details(details).as_bytes(), &batch(), None).unwrap();
}

#[test]
fn details_depth_is_counted_from_the_field_and_named() {
    // The details object is level 1, so 31 lists inside it reach level 32.
    let at_limit = format!(r#"{{"x":{}}}"#, nested_lists(MAX_FREE_JSON_DEPTH - 1));
    check(event_with_details(&at_limit).as_bytes(), &batch(), None).unwrap();
    let over = format!(r#"{{"x":{}}}"#, nested_lists(MAX_FREE_JSON_DEPTH));
    let (field, description) = refusal(&event_with_details(&over));
    assert_eq!(field, "events[1].details");
    assert!(description.contains("deeper than 32"), "{description}");
    let objects = format!("{}1{}", r#"{"a":"#.repeat(40), "}".repeat(40));
    assert_eq!(refusal(&event_with_details(&objects)).0, "events[1].details");
}

#[test]
fn details_value_count_is_named() {
    // Numbers of 7 digits: dense enough to reach the field's limit, not the body's.
    let at_limit = format!(r#"{{"x":[{}]}}"#, vec!["1234567"; MAX_FREE_JSON_VALUES - 2].join(","));
    check(event_with_details(&at_limit).as_bytes(), &batch(), None).unwrap();
    let over = format!(r#"{{"x":[{}]}}"#, vec!["1234567"; MAX_FREE_JSON_VALUES - 1].join(","));
    let (field, description) = refusal(&event_with_details(&over));
    assert_eq!(field, "events[1].details");
    assert!(description.contains("more than 4096"), "{description}");
}

#[test]
fn dense_bodies_are_refused_whatever_the_field() {
    // Unknown keys and scalar fields get the body-wide budgets.
    let many = format!(r#"{{"events":[{}]}}"#, vec!["1"; 3000].join(","));
    let (field, description) = refusal(&many);
    assert_eq!(field, "body");
    assert!(description.contains("JSON values"), "{description}");
    let deep = format!(r#"{{"unknown":{}}}"#, nested_lists(MAX_BODY_DEPTH + 1));
    assert_eq!(refusal(&deep).0, "unknown");
}

#[test]
fn a_body_is_one_json_value() {
    assert_eq!(refusal(r#"{"events":[]} {}"#).0, "body");
    assert_eq!(refusal(r#"{"events":["#).0, "body");
    assert_eq!(refusal("").0, "body");
}

#[test]
fn long_keys_are_shortened_in_the_path() {
    let key = "k".repeat(500);
    let deep = format!(r#"{{"{key}":{}}}"#, nested_lists(MAX_BODY_DEPTH + 1));
    let field = refusal(&deep).0;
    assert!(field.chars().count() < 80, "{field}");
}

#[test]
fn a_field_body_starts_its_path_at_the_field() {
    let message = batch();
    let events = message.get_field_by_name("events").unwrap();
    let body = format!(r#"[{{"details":{{"x":{}}}}}]"#, nested_lists(MAX_FREE_JSON_DEPTH));
    match check(body.as_bytes(), &message, Some(&events)) {
        Err(Error::InvalidArgument { violations, .. }) => assert_eq!(violations[0].field, "events[0].details"),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn integers_past_two_to_the_53_are_noted_only_in_free_form_json() {
    let wide = |body: &str| check(body.as_bytes(), &batch(), None).unwrap().wide_free_integers;
    assert!(!wide(&event_with_details(r#"{"n":9007199254740991,"m":-9007199254740991}"#)));
    assert!(wide(&event_with_details(r#"{"n":9007199254740992}"#)));
    assert!(wide(&event_with_details(r#"{"n":[{"m":-9007199254740992}]}"#)));
    assert!(wide(&event_with_details(r#"{"n":18446744073709551615}"#)));
    // Outside free-form JSON the conversion refuses or reads them itself.
    assert!(!wide(r#"{"events":[{"action":9007199254740992}],"unknown":[18446744073709551615]}"#));
}

#[test]
fn wide_integers_hold_a_body_to_the_reflective_budget() {
    let numbers = vec!["1234567"; 3000].join(",");
    let wide = event_with_details(&format!(r#"{{"n":9007199254740993,"x":[{numbers}]}}"#));
    let checked = check(wide.as_bytes(), &batch(), None).unwrap();
    assert!(checked.wide_free_integers);
    match checked.reflective_budget(wide.len()) {
        Err(Error::InvalidArgument { violations, .. }) => {
            assert_eq!(violations[0].field, "body");
            assert!(violations[0].description.starts_with("holds integers of 2^53 or more"), "{violations:?}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    let narrow = event_with_details(&format!(r#"{{"n":9007199254740991,"x":[{numbers}]}}"#));
    assert!(!check(narrow.as_bytes(), &batch(), None).unwrap().wide_free_integers);
    let few = event_with_details(r#"{"n":9007199254740993,"x":[1,2,3]}"#);
    let checked = check(few.as_bytes(), &batch(), None).unwrap();
    checked.reflective_budget(few.len()).unwrap();
}
