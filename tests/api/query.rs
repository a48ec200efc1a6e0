//! Strict query parsing: every bad input answers 400 INVALID_ARGUMENT with a
//! `google.rpc.BadRequest` naming the field, on REST and gRPC (gRPC-web's trailers
//! carry the same details: protocols.rs).

use audit_service::proto::audit as pb;
use tonic_types::StatusExt;

use crate::fixtures::ts;
use crate::server::{TestServer, authed, http1, reader, rest_summary};

const START: &str = "start_time=2026-03-02T00:00:00Z";
const END: &str = "end_time=2026-03-09T00:00:00Z";

async fn assert_bad_request(server: &TestServer, query: &str, field: &str) {
    let response = rest_summary(&http1(), &server.base, query, &reader()).await;
    assert_eq!(response.status(), 400, "{query}");
    let json: serde_json::Value = response.json().await.unwrap();
    let error = &json["error"];
    assert_eq!(error["code"], 400, "{query}: {json}");
    assert_eq!(error["status"], "INVALID_ARGUMENT", "{query}: {json}");
    assert!(!error["message"].as_str().unwrap().is_empty());
    let details = &error["details"][0];
    assert_eq!(details["@type"], "type.googleapis.com/google.rpc.BadRequest", "{query}: {json}");
    assert_eq!(details["fieldViolations"][0]["field"], field, "{query}: {json}");
    assert!(!details["fieldViolations"][0]["description"].as_str().unwrap().is_empty());
}

#[tokio::test]
async fn every_bad_query_input_is_refused_with_the_field_named() {
    let server = TestServer::start().await;
    let cases: Vec<(String, &str)> = vec![
        (END.to_owned(), "start_time"),
        (START.to_owned(), "end_time"),
        (format!("start_time=&{END}"), "start_time"),
        (format!("{START}&end_time="), "end_time"),
        (format!("{START}&{START}&{END}"), "start_time"),
        (format!("{START}&startTime=2026-03-02T00:00:00Z&{END}"), "start_time"),
        (format!("start_time=yesterday&{END}"), "start_time"),
        (format!("start_time=2026-13-02T00:00:00Z&{END}"), "start_time"),
        (format!("start_time=2026-02-30T00:00:00Z&{END}"), "start_time"),
        (format!("start_time=2026-03-02T00:00:00&{END}"), "start_time"),
        (format!("start_time=2026-03-02T00:00:00.1234567891Z&{END}"), "start_time"),
        (format!("start_time=2026-03-02T00:00:60Z&{END}"), "start_time"),
        (format!("start_time=1772409600&{END}"), "start_time"),
        (format!("{START}&end_time=2026-03-02T00:00:00Z"), "end_time"),
        (format!("{START}&end_time=2026-03-01T00:00:00Z"), "end_time"),
        (format!("{START}&end_time=2026-03-02T02:00:00%2B02:00"), "end_time"),
        (format!("{START}&{END}&foo=1"), "foo"),
        (format!("{START}&{END}&access_token=abc"), "access_token"),
        (format!("{START}&{END}&organization_id=org%20a"), "organization_id"),
        (format!("{START}&{END}&buckets=1"), "buckets"),
    ];
    for (query, field) in cases {
        assert_bad_request(&server, &query, field).await;
    }
    server.stop().await;
}

#[tokio::test]
async fn lower_camel_case_names_are_accepted() {
    let server = TestServer::start().await;
    let response = rest_summary(
        &http1(),
        &server.base,
        "startTime=2026-03-02T00:00:00Z&endTime=2026-03-09T00:00:00Z&organizationId=org_a",
        &reader(),
    )
    .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), r#"{"buckets":[]}"#);
    server.stop().await;
}

#[tokio::test]
async fn post_to_the_summary_route_is_405_with_allow() {
    let server = TestServer::start().await;
    let response =
        http1().post(format!("{}/v1/audit/events:summary", server.base)).bearer_auth(reader()).send().await.unwrap();
    assert_eq!(response.status(), 405);
    assert_eq!(response.headers()["allow"], "GET");
    let json: serde_json::Value = response.json().await.unwrap();
    assert_eq!(json["error"]["code"], 405);
    let missing = http1().get(format!("{}/v1/audit/nothing", server.base)).send().await.unwrap();
    assert_eq!(missing.status(), 404);
    server.stop().await;
}

#[tokio::test]
async fn grpc_refuses_bad_ranges_with_details() {
    let server = TestServer::start().await;
    let backwards = pb::GetEventsSummaryRequest {
        start_time: Some(ts("2026-03-09T00:00:00Z")),
        end_time: Some(ts("2026-03-02T00:00:00Z")),
        organization_id: String::new(),
    };
    let status = server.grpc().await.get_events_summary(authed(backwards.clone(), &reader())).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert_eq!(status.message(), "end_time must be after start_time");
    let violations = status.get_details_bad_request().expect("BadRequest details").field_violations;
    assert_eq!(violations[0].field, "end_time");

    let missing = pb::GetEventsSummaryRequest { start_time: None, ..backwards.clone() };
    let status = server.grpc().await.get_events_summary(authed(missing, &reader())).await.unwrap_err();
    assert_eq!(status.get_details_bad_request().unwrap().field_violations[0].field, "start_time");
    server.stop().await;
}
