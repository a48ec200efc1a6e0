//! GetEvent and ListEvents called the same way over REST, native gRPC and gRPC-web,
//! so that a test runs on every protocol, and the events most read tests store. Shared
//! by the api and api_env test targets.

// Each target uses only part of it.
#![allow(dead_code)]

use audit_service::error::code_name;
use audit_service::proto::audit as pb;
use serde_json::Value as Json;

use crate::fixtures::event;
use crate::grpc_web::{self, Mode};
use crate::server::{TestServer, authed, http1};

/// How a test reaches the service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Rest,
    Grpc,
    WebBinary,
    WebText,
}

pub const PROTOCOLS: [Protocol; 4] = [Protocol::Rest, Protocol::Grpc, Protocol::WebBinary, Protocol::WebText];

/// A refused call: the status name (`NOT_FOUND`), its message, and the fields its
/// `BadRequest` names with their descriptions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub status: String,
    pub message: String,
    pub violations: Vec<(String, String)>,
}

impl Refusal {
    /// The field of the first violation, for INVALID_ARGUMENT.
    pub fn field(&self) -> &str {
        self.violations.first().map(|(field, _)| field.as_str()).unwrap_or_default()
    }
}

/// A REST GET: status and JSON body.
pub async fn rest_get(server: &TestServer, path_and_query: &str, token: &str) -> (u16, Json) {
    let response = http1().get(format!("{}{path_and_query}", server.base)).bearer_auth(token).send().await.unwrap();
    let status = response.status().as_u16();
    assert_eq!(response.headers()["content-type"], "application/json", "{path_and_query}");
    (status, response.json().await.expect("a JSON body"))
}

/// The refusal an AIP-193 error body describes.
pub fn refusal_of(body: &Json) -> Refusal {
    let error = &body["error"];
    let violations = error["details"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|d| d["@type"] == "type.googleapis.com/google.rpc.BadRequest")
        .flat_map(|d| d["fieldViolations"].as_array().cloned().unwrap_or_default())
        .map(|v| (v["field"].as_str().unwrap().to_owned(), v["description"].as_str().unwrap().to_owned()))
        .collect();
    Refusal {
        status: error["status"].as_str().expect("an AIP-193 body").to_owned(),
        message: error["message"].as_str().unwrap().to_owned(),
        violations,
    }
}

pub fn refusal_of_status(status: &tonic::Status) -> Refusal {
    use tonic_types::StatusExt;
    let violations = status
        .get_details_bad_request()
        .map(|b| b.field_violations.into_iter().map(|v| (v.field, v.description)).collect())
        .unwrap_or_default();
    Refusal { status: code_name(status.code()).to_owned(), message: status.message().to_owned(), violations }
}

fn refusal_of_web(status: grpc_web::WebStatus) -> Refusal {
    let details = status.details_bin.map(|b64| {
        let padded = format!("{b64}{}", "=".repeat((4 - b64.len() % 4) % 4));
        base64::Engine::decode(&base64::engine::general_purpose::STANDARD, padded).unwrap()
    });
    let mut tonic_status = tonic::Status::with_details(
        tonic::Code::from_i32(status.code),
        status.message,
        details.unwrap_or_default().into(),
    );
    if tonic_status.details().is_empty() {
        tonic_status = tonic::Status::new(tonic_status.code(), tonic_status.message());
    }
    refusal_of_status(&tonic_status)
}

fn query_of(pairs: &[(&str, String)]) -> String {
    let encode = |s: &str| percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string();
    let set: Vec<String> =
        pairs.iter().filter(|(_, v)| !v.is_empty()).map(|(k, v)| format!("{k}={}", encode(v))).collect();
    set.join("&")
}

fn web_mode(protocol: Protocol) -> Mode {
    if protocol == Protocol::WebText { Mode::Text } else { Mode::Binary }
}

/// GetEvent over `protocol`.
pub async fn get(
    server: &TestServer,
    protocol: Protocol,
    request: pb::GetEventRequest,
    token: &str,
) -> Result<pb::AuditEvent, Refusal> {
    match protocol {
        Protocol::Rest => {
            let id = percent_encoding::utf8_percent_encode(&request.id, percent_encoding::NON_ALPHANUMERIC);
            let query = query_of(&[("organization_id", request.organization_id.clone())]);
            let (status, body) = rest_get(server, &format!("/v1/audit/events/{id}?{query}"), token).await;
            if status == 200 {
                Ok(serde_json::from_value(body).expect("an AuditEvent"))
            } else {
                Err(refusal_of(&body))
            }
        }
        Protocol::Grpc => match server.grpc().await.get_event(authed(request, token)).await {
            Ok(reply) => Ok(reply.into_inner()),
            Err(status) => Err(refusal_of_status(&status)),
        },
        Protocol::WebBinary | Protocol::WebText => {
            let mode = web_mode(protocol);
            grpc_web::call(&http1(), &server.base, "GetEvent", &request, Some(token), mode)
                .await
                .map_err(refusal_of_web)
        }
    }
}

/// ListEvents over `protocol`.
pub async fn list(
    server: &TestServer,
    protocol: Protocol,
    request: pb::ListEventsRequest,
    token: &str,
) -> Result<pb::ListEventsResponse, Refusal> {
    match protocol {
        Protocol::Rest => {
            let page_size = if request.page_size == 0 { String::new() } else { request.page_size.to_string() };
            let query = query_of(&[
                ("page_size", page_size),
                ("page_token", request.page_token.clone()),
                ("filter", request.filter.clone()),
                ("organization_id", request.organization_id.clone()),
            ]);
            let (status, body) = rest_get(server, &format!("/v1/audit/events?{query}"), token).await;
            if status == 200 {
                Ok(serde_json::from_value(body).expect("a ListEventsResponse"))
            } else {
                Err(refusal_of(&body))
            }
        }
        Protocol::Grpc => match server.grpc().await.list_events(authed(request, token)).await {
            Ok(reply) => Ok(reply.into_inner()),
            Err(status) => Err(refusal_of_status(&status)),
        },
        Protocol::WebBinary | Protocol::WebText => {
            let mode = web_mode(protocol);
            grpc_web::call(&http1(), &server.base, "ListEvents", &request, Some(token), mode)
                .await
                .map_err(refusal_of_web)
        }
    }
}

/// A ListEvents request for `filter` in `org` (empty for none), `page_size` events a page.
pub fn listing(filter: &str, org: &str, page_size: i32) -> pb::ListEventsRequest {
    pb::ListEventsRequest { page_size, filter: filter.into(), organization_id: org.into(), page_token: String::new() }
}

/// The ids of a page, in order.
pub fn ids(page: &pb::ListEventsResponse) -> Vec<String> {
    page.events.iter().map(|e| e.id.clone()).collect()
}

/// Every page of a listing, followed to the end; the ids in order.
pub async fn list_all(
    server: &TestServer,
    protocol: Protocol,
    first: pb::ListEventsRequest,
    token: &str,
) -> Vec<String> {
    let mut request = first;
    let mut all = Vec::new();
    loop {
        let page = list(server, protocol, request.clone(), token).await.expect("a page");
        all.extend(ids(&page));
        if page.next_page_token.is_empty() {
            return all;
        }
        request.page_token = page.next_page_token;
    }
}

/// The events most tests read: two organizations, the contract's filter examples each
/// selecting a known part, and one id (`shared`) held by both organizations.
pub fn fixture() -> Vec<pb::AuditEvent> {
    let mut failed = event("a_login_failed", "org_a", "session.login", "failure", "2026-04-17T12:34:56.789Z");
    failed.details = Some(serde_json::from_str(r#"{"method":"password"}"#).unwrap());
    let mut other_actor = event("a_other_failed", "org_a", "session.login", "failure", "2026-04-17T09:00:00Z");
    other_actor.actor = Some(pb::Actor { r#type: "identity".into(), id: "usr_other".into() });
    vec![
        event("a_old_login", "org_a", "session.login", "success", "2026-04-16T23:59:59.999999Z"),
        failed,
        other_actor,
        event("a_logout", "org_a", "session.logout", "success", "2026-04-18T08:00:00Z"),
        event("a_user", "org_a", "user.created", "success", "2026-04-17T10:00:00Z"),
        event("shared", "org_a", "user.deleted", "success", "2026-04-15T10:00:00Z"),
        event("b_user", "org_b", "user.created", "success", "2026-04-17T11:00:00Z"),
        event("shared", "org_b", "user.created", "failure", "2026-04-19T10:00:00Z"),
    ]
}

/// The fixture's events of `org` (all for `None`), newest first.
pub fn fixture_ids(org: Option<&str>, keep: impl Fn(&pb::AuditEvent) -> bool) -> Vec<String> {
    let mut events: Vec<pb::AuditEvent> =
        fixture().into_iter().filter(|e| org.is_none_or(|org| e.organization_id == org) && keep(e)).collect();
    events.sort_by_key(|e| {
        std::cmp::Reverse(audit_service::domain::UnixNanos::from_timestamp(e.timestamp.as_ref().unwrap()))
    });
    events.into_iter().map(|e| e.id).collect()
}

/// A server holding [`fixture`].
pub async fn server_with_fixture() -> TestServer {
    let server = TestServer::start().await;
    server.seed(fixture()).await;
    server
}
