//! `GET /openapi.json`: the OpenAPI 3 document generated from the proto's HTTP rules
//! describes every REST route, its parameters and bodies, its answers in the REST
//! layer's JSON, the AIP-193 errors and bearer security. (schemathesis checks the
//! running service against it in CI: `scripts/schemathesis.sh`.)

use std::collections::BTreeSet;

use audit_service::proto::FILE_DESCRIPTOR_SET;
use prost_reflect::{DescriptorPool, Value};
use serde_json::Value as Json;

use crate::fixtures::event;
use crate::server::{TestServer, http1, reader, rest_summary};

async fn document(server: &TestServer) -> Json {
    let response = http1().get(format!("{}/openapi.json", server.base)).send().await.unwrap();
    assert_eq!(response.status(), 200, "served without a token");
    assert_eq!(response.headers()["content-type"], "application/json");
    response.json().await.unwrap()
}

/// Follows a local `$ref`.
fn resolve<'a>(doc: &'a Json, value: &'a Json) -> &'a Json {
    match value.get("$ref").and_then(Json::as_str) {
        Some(reference) => doc.pointer(reference.trim_start_matches('#')).expect("the $ref resolves"),
        None => value,
    }
}

#[tokio::test]
async fn every_annotated_rpc_has_its_operation_and_nothing_else_is_described() {
    let server = TestServer::start().await;
    let doc = document(&server).await;
    assert_eq!(doc["openapi"], "3.0.3");
    let pool = DescriptorPool::decode(FILE_DESCRIPTOR_SET).unwrap();
    let http = pool.get_extension_by_name("google.api.http").unwrap();
    let mut expected = BTreeSet::new();
    for method in pool.services().flat_map(|s| s.methods().collect::<Vec<_>>()) {
        if let Value::Message(rule) = method.options().get_extension(&http).as_ref() {
            for verb in ["get", "post", "put", "patch", "delete"] {
                if let Some(Value::String(path)) = rule.get_field_by_name(verb).map(|v| v.into_owned())
                    && !path.is_empty()
                {
                    expected.insert((verb.to_owned(), path));
                }
            }
        }
    }
    let described: BTreeSet<(String, String)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, ops)| ops.as_object().unwrap().keys().map(move |verb| (verb.clone(), path.clone())))
        .collect();
    assert_eq!(described, expected);
    server.stop().await;
}

#[tokio::test]
async fn the_summary_operation_has_typed_query_parameters_and_a_reply_in_the_rest_layers_json() {
    let server = TestServer::start().await;
    let doc = document(&server).await;
    let op = &doc["paths"]["/v1/audit/events:summary"]["get"];
    assert_eq!(op["x-required-scope"], "audit:read");
    assert!(op.get("requestBody").is_none());
    let params: Vec<(String, bool, Json)> = op["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            assert_eq!(p["in"], "query");
            (p["name"].as_str().unwrap().to_owned(), p["required"].as_bool().unwrap(), p["schema"].clone())
        })
        .collect();
    let date_time = serde_json::json!({"type": "string", "format": "date-time"});
    assert_eq!(
        params,
        vec![
            ("start_time".into(), true, date_time.clone()),
            ("end_time".into(), true, date_time),
            ("organization_id".into(), false, serde_json::json!({"type": "string"})),
        ]
    );

    let reply = resolve(&doc, &op["responses"]["200"]["content"]["application/json"]["schema"]);
    assert_eq!(reply["required"], serde_json::json!(["buckets"]));
    let bucket = resolve(&doc, &reply["properties"]["buckets"]["items"]);
    // An empty string would be left out (an action never is); numbers are always written.
    assert_eq!(bucket["required"], serde_json::json!(["count", "failure_count"]));
    assert_eq!(bucket["properties"]["count"], serde_json::json!({"type": "integer", "format": "int64"}));

    // The live answer has exactly the described fields.
    server.seed(vec![event("e1", "org_a", "session.login", "failure", "2026-03-02T10:00:00Z")]).await;
    let query = "start_time=2026-03-02T00:00:00Z&end_time=2026-03-09T00:00:00Z";
    let live: Json = rest_summary(&http1(), &server.base, query, &reader()).await.json().await.unwrap();
    let keys: Vec<&String> = live["buckets"][0].as_object().unwrap().keys().collect();
    assert_eq!(keys, ["action", "count", "failure_count"]);
    assert!(live["buckets"][0]["count"].is_i64());
    server.stop().await;
}

#[tokio::test]
async fn the_batch_operation_takes_the_whole_request_as_a_strict_body() {
    let server = TestServer::start().await;
    let doc = document(&server).await;
    let op = &doc["paths"]["/v1/audit/events:batchCreate"]["post"];
    assert_eq!(op["x-required-scope"], "audit:write");
    assert_eq!(op["parameters"], serde_json::json!([]), "body \"*\": no query parameters");
    let body = resolve(&doc, &op["requestBody"]["content"]["application/json"]["schema"]);
    assert_eq!(body["additionalProperties"], false);
    assert_eq!(body["required"], serde_json::json!(["events"]));
    let event = resolve(&doc, &body["properties"]["events"]["items"]);
    assert_eq!(event["required"], serde_json::json!(["timestamp", "organization_id", "action", "result"]));
    assert_eq!(event["properties"]["timestamp"]["format"], "date-time");
    assert_eq!(event["properties"]["details"]["type"], "object", "google.protobuf.Struct is a JSON object");
    let reply = resolve(&doc, &op["responses"]["200"]["content"]["application/json"]["schema"]);
    assert_eq!(reply["properties"]["created_count"], serde_json::json!({"type": "integer", "format": "int32"}));
    server.stop().await;
}

#[tokio::test]
async fn errors_are_the_aip_193_envelope_with_their_headers_and_calls_need_a_bearer_token() {
    let server = TestServer::start().await;
    let doc = document(&server).await;
    assert_eq!(doc["security"], serde_json::json!([{"bearerAuth": []}]));
    assert_eq!(doc["components"]["securitySchemes"]["bearerAuth"]["scheme"], "bearer");
    for op in [&doc["paths"]["/v1/audit/events:summary"]["get"], &doc["paths"]["/v1/audit/events:batchCreate"]["post"]]
    {
        for status in ["400", "401", "403", "404", "405", "413", "429", "503", "504"] {
            let response = resolve(&doc, &op["responses"][status]);
            let schema = resolve(&doc, &response["content"]["application/json"]["schema"]);
            assert_eq!(
                schema["properties"]["error"]["required"],
                serde_json::json!(["code", "status", "message", "details"])
            );
        }
        assert_eq!(resolve(&doc, &op["responses"]["429"])["headers"]["Retry-After"]["required"], true);
        assert_eq!(resolve(&doc, &op["responses"]["401"])["headers"]["WWW-Authenticate"]["required"], true);
        assert_eq!(resolve(&doc, &op["responses"]["405"])["headers"]["Allow"]["required"], true);
    }
    server.stop().await;
}
