//! The REST routes around `/v1/audit/events/{id}`: the custom methods on
//! `/v1/audit/events` are not read as an event id, those not built yet are unknown
//! routes; a client cannot set `log_index`; the OpenAPI document describes both reads.

use audit_service::proto::audit as pb;
use serde_json::{Value as Json, json};

use super::{refusal_of, rest_get, server_with_fixture};
use crate::fixtures::event;
use crate::server::{TestServer, authed, http1, reader, stored_events, token, writer};

#[tokio::test]
async fn the_event_path_does_not_swallow_the_custom_methods_of_the_collection() {
    let server = server_with_fixture().await;
    let all = token(&["audit:read", "audit:write", "audit:export"], None);
    let summary = "/v1/audit/events:summary?start_time=2026-04-13T00:00:00Z&end_time=2026-04-20T00:00:00Z";
    let (status, body) = rest_get(&server, summary, &all).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["buckets"][0], json!({"action": "session.login", "count": 3, "failure_count": 2}));

    let batch = json!({"events": [{"id": "r1", "timestamp": "2026-04-17T00:00:00Z", "organization_id": "org_a",
                                   "action": "session.login", "result": "success"}]});
    let created = http1()
        .post(format!("{}/v1/audit/events:batchCreate", server.base))
        .bearer_auth(&all)
        .json(&batch)
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 200);
    assert_eq!(created.json::<Json>().await.unwrap(), json!({"created_count": 1, "duplicate_count": 0}));

    // The custom methods still to come are unknown routes, not GetEvent of "events:stream".
    for (method, path) in [
        ("GET", "/v1/audit/events:stream"),
        ("GET", "/v1/audit/events:timeSeries?start_time=2026-04-13T00:00:00Z"),
        ("POST", "/v1/audit/events:export"),
        ("GET", "/v1/audit/events:export"),
        ("GET", "/v1/audit/events:unknownVerb"),
    ] {
        let request = http1().request(method.parse().unwrap(), format!("{}{path}", server.base)).bearer_auth(&all);
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 404, "{method} {path}");
        let body: Json = response.json().await.unwrap();
        let refusal = refusal_of(&body);
        assert_eq!(refusal.status, "NOT_FOUND");
        assert!(refusal.message.starts_with("no route for"), "{method} {path}: {body}");
    }
    // An id may hold a ':' (percent-encoded or not) and still be an id.
    let odd = event("urn:evt:1", "org_a", "session.login", "success", "2026-04-17T00:00:00Z");
    server.seed(vec![odd]).await;
    for path in ["/v1/audit/events/urn:evt:1", "/v1/audit/events/urn%3Aevt%3A1"] {
        let (status, body) = rest_get(&server, path, &reader()).await;
        assert_eq!((status, body["id"].as_str()), (200, Some("urn:evt:1")), "{path}: {body}");
    }
    // The collection and one event answer GET only.
    let post = http1().post(format!("{}/v1/audit/events/a_user", server.base)).bearer_auth(&all).send().await.unwrap();
    assert_eq!((post.status().as_u16(), post.headers()["allow"].to_str().unwrap()), (405, "GET"));
    let (status, _) = rest_get(&server, "/v1/audit/events/", &reader()).await;
    assert_eq!(status, 404, "no empty id");
    server.stop().await;
}

#[tokio::test]
async fn a_client_cannot_set_log_index_on_any_protocol() {
    let server = TestServer::start().await;
    let mut numbered = event("n1", "org_a", "session.login", "success", "2026-04-17T00:00:00Z");
    numbered.log_index = 7;
    let fine = event("n0", "org_a", "session.login", "success", "2026-04-17T00:00:00Z");

    let request = authed(pb::BatchCreateEventsRequest { events: vec![fine.clone(), numbered] }, &writer());
    let status = server.grpc().await.batch_create_events(request).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    let violations = super::refusal_of_status(&status).violations;
    assert_eq!(violations[0].0, "events[1].log_index");
    assert!(violations[0].1.contains("assigned by the service"), "{violations:?}");

    let body = json!({"events": [{"id": "n2", "timestamp": "2026-04-17T00:00:00Z", "organization_id": "org_a",
                                  "action": "session.login", "result": "success", "log_index": 3}]});
    let response = http1()
        .post(format!("{}/v1/audit/events:batchCreate", server.base))
        .bearer_auth(writer())
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let refusal = refusal_of(&response.json().await.unwrap());
    assert_eq!(refusal.field(), "events[0].log_index");
    assert!(
        refusal.message.starts_with("batch refused, nothing stored: events[0].log_index is assigned by the service")
    );
    assert_eq!(stored_events(&server.db_path).await, 0, "nothing stored");
    server.stop().await;
}

#[tokio::test]
async fn the_openapi_document_describes_both_reads() {
    let server = TestServer::start().await;
    let doc: Json = http1().get(format!("{}/openapi.json", server.base)).send().await.unwrap().json().await.unwrap();
    let params = |op: &Json| -> Vec<(String, String, bool)> {
        op["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (p["name"].as_str().unwrap().into(), p["in"].as_str().unwrap().into(), p["required"].as_bool().unwrap())
            })
            .collect()
    };
    let get = &doc["paths"]["/v1/audit/events/{id}"]["get"];
    assert_eq!(get["x-required-scope"], "audit:read");
    assert_eq!(params(get), [("id".into(), "path".into(), true), ("organization_id".into(), "query".into(), false)]);
    let list = &doc["paths"]["/v1/audit/events"]["get"];
    assert_eq!(list["x-required-scope"], "audit:read");
    let names: Vec<String> = params(list).into_iter().map(|(name, place, _)| format!("{place}:{name}")).collect();
    assert_eq!(names, ["query:page_size", "query:page_token", "query:filter", "query:organization_id"]);
    let event = &doc["components"]["schemas"]["avnology.audit.v1.AuditEvent"];
    assert_eq!(event["required"], json!(["log_index"]), "empty strings and unset messages are left out");
    assert_eq!(event["properties"]["log_index"]["type"], "integer");
    let page = &doc["components"]["schemas"]["avnology.audit.v1.ListEventsResponse"];
    assert_eq!(page["required"], json!(["events"]));
    server.stop().await;
}
