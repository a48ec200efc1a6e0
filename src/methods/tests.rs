//! The table read from the service's own protos, and from protos that use the
//! options in ways the service's do not (yet).

use prost_reflect::DescriptorPool;

use super::testing::pool_of;
use super::*;
use crate::proto::FILE_DESCRIPTOR_SET;

fn service_table() -> MethodTable {
    MethodTable::new(&DescriptorPool::decode(FILE_DESCRIPTOR_SET).unwrap()).unwrap()
}

#[test]
fn the_service_methods_come_with_scope_class_and_rest_binding_from_the_proto() {
    let table = service_table();
    let summary = table.get("/avnology.audit.v1.AuditService/GetEventsSummary").unwrap();
    assert_eq!(summary.rpc(), "avnology.audit.v1.AuditService/GetEventsSummary");
    assert_eq!(summary.full_name(), "avnology.audit.v1.AuditService.GetEventsSummary");
    assert_eq!((summary.service(), summary.name()), ("avnology.audit.v1.AuditService", "GetEventsSummary"));
    assert_eq!(summary.access(), &Access::Scope("audit:read".into()));
    assert_eq!((summary.class(), summary.streaming()), (Class::Read, Streaming::Unary));
    assert_eq!(summary.success_status(), StatusCode::OK);
    let [rule] = summary.http_rules() else { panic!("one rule: {:?}", summary.http_rules()) };
    assert_eq!((&rule.method, rule.template.as_str()), (&http::Method::GET, "/v1/audit/events:summary"));
    assert_eq!((rule.body.as_deref(), rule.response_body.as_deref()), (None, None));
    assert_eq!(summary.input().full_name(), "avnology.audit.v1.GetEventsSummaryRequest");

    let batch = table.get("/avnology.audit.v1.AuditService/BatchCreateEvents").unwrap();
    assert_eq!(batch.required_scope(), Some("audit:write"));
    assert_eq!(batch.class(), Class::Write);
    assert_eq!(batch.http_rules()[0].body.as_deref(), Some("*"));
    assert_eq!(table.iter().next().unwrap().path(), summary.path(), "the API first, in declaration order");

    for (rpc, template) in [("GetEvent", "/v1/audit/events/{id}"), ("ListEvents", "/v1/audit/events")] {
        let read = table.get(&format!("/avnology.audit.v1.AuditService/{rpc}")).unwrap();
        assert_eq!(read.access(), &Access::Scope("audit:read".into()), "{rpc}");
        assert_eq!(
            (read.class(), read.streaming(), read.success_status()),
            (Class::Read, Streaming::Unary, StatusCode::OK)
        );
        let [rule] = read.http_rules() else { panic!("{rpc}: one rule: {:?}", read.http_rules()) };
        assert_eq!((&rule.method, rule.template.as_str(), rule.body.as_deref()), (&http::Method::GET, template, None));
    }
    let api: Vec<&str> =
        table.iter().filter(|m| m.service() == "avnology.audit.v1.AuditService").map(|m| m.name()).collect();
    assert_eq!(api, ["GetEventsSummary", "BatchCreateEvents", "GetEvent", "ListEvents"]);
}

#[test]
fn health_and_reflection_are_in_the_table_and_open() {
    let table = service_table();
    for (path, streaming) in [
        ("/grpc.health.v1.Health/Check", Streaming::Unary),
        ("/grpc.health.v1.Health/Watch", Streaming::ServerStreaming),
        ("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo", Streaming::Bidirectional),
    ] {
        let method = table.get(path).unwrap_or_else(|| panic!("{path}"));
        assert_eq!((method.access(), method.streaming()), (&Access::Open, streaming), "{path}");
        assert!(method.http_rules().is_empty(), "{path}");
    }
    let one_message: Vec<&str> = table.iter().filter(|m| m.takes_one_message()).map(|m| m.path()).collect();
    assert_eq!(
        one_message,
        [
            "/avnology.audit.v1.AuditService/GetEventsSummary",
            "/avnology.audit.v1.AuditService/BatchCreateEvents",
            "/avnology.audit.v1.AuditService/GetEvent",
            "/avnology.audit.v1.AuditService/ListEvents",
            "/grpc.health.v1.Health/Check",
            "/grpc.health.v1.Health/Watch",
        ]
    );
}

const OPTIONS: &str = r#"
syntax = "proto3";
package things.v1;
import "avnology/audit/v1/audit.proto";
import "google/api/annotations.proto";
service Things {
  rpc Start(Thing) returns (Thing) {
    option (google.api.http) = { post: "/v1/things:start" body: "*" };
    option (avnology.audit.v1.required_scope) = "things:export";
    option (avnology.audit.v1.http_success_status) = 202;
    option idempotency_level = IDEMPOTENT;
  }
  rpc Peek(Thing) returns (stream Thing) {
    option (avnology.audit.v1.required_scope) = "things:write";
    option idempotency_level = NO_SIDE_EFFECTS;
  }
  rpc Forgotten(Thing) returns (Thing) {
    option (google.api.http) = {
      custom: { kind: "HEAD" path: "/v1/things/{name}" }
      additional_bindings { get: "/v1/things/{name}" response_body: "inner" }
    };
  }
}
message Thing { string name = 1; Thing inner = 2; }
"#;

#[test]
fn class_scope_and_success_status_are_read_from_options_not_names() {
    let table = MethodTable::new(&pool_of(OPTIONS)).unwrap();
    let start = table.get("/things.v1.Things/Start").unwrap();
    // A scope that is neither read nor write, and an idempotent method that still writes.
    assert_eq!((start.required_scope(), start.class()), (Some("things:export"), Class::Write));
    assert_eq!(start.success_status(), StatusCode::ACCEPTED);
    // A read whatever its scope says.
    let peek = table.get("/things.v1.Things/Peek").unwrap();
    assert_eq!((peek.class(), peek.streaming()), (Class::Read, Streaming::ServerStreaming));
    let forgotten = table.get("/things.v1.Things/Forgotten").unwrap();
    assert_eq!(forgotten.access(), &Access::Closed);
    let rules: Vec<_> = forgotten
        .http_rules()
        .iter()
        .map(|r| (r.method.as_str(), r.template.as_str(), r.response_body.as_deref()))
        .collect();
    assert_eq!(rules, [("HEAD", "/v1/things/{name}", None), ("GET", "/v1/things/{name}", Some("inner"))]);
}

#[test]
fn a_success_status_that_is_not_2xx_stops_start_up() {
    for status in [0, 99, 302, 404, 70000] {
        let proto = OPTIONS.replace("= 202", &format!("= {status}"));
        let error = MethodTable::new(&pool_of(&proto)).unwrap_err().to_string();
        assert!(error.starts_with("things.v1.Things.Start: http_success_status"), "{status}: {error}");
    }
}
