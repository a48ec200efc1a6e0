//! The transcoder on RPCs it has never seen: a test-only service whose HTTP rules
//! use path variables, nested and repeated query fields, a named body and a
//! success status other than 200; the gRPC side echoes the request back, so the
//! JSON shows exactly what was bound.

use std::convert::Infallible;

use bytes::{Buf, Bytes};
use http::{Method, Request, Response};
use http_body_util::BodyExt;

use super::{GrpcService, RestGateway};
use crate::methods::MethodTable;
use crate::methods::testing::pool_of;

const PROTO: &str = r#"
syntax = "proto3";
package things.v1;
import "avnology/audit/v1/audit.proto";
import "google/api/annotations.proto";
import "google/protobuf/timestamp.proto";
service Things {
  rpc Find(Query) returns (Query) {
    option (google.api.http) = {
      get: "/v1/shelves/{shelf}/things/{filter.name}"
      additional_bindings { post: "/v1/shelves/{shelf}/things:search" body: "filter" }
    };
  }
  rpc Order(Query) returns (Query) {
    option (google.api.http) = { post: "/v1/shelves/{shelf}/things:order" body: "*" };
    option (avnology.audit.v1.http_success_status) = 202;
  }
}
message Filter { string name = 1; repeated string tags = 2; int64 min_size = 3; }
message Query {
  string shelf = 1;
  Filter filter = 2;
  google.protobuf.Timestamp since = 3;
  repeated int32 ids = 4;
  bool archived = 5;
}
"#;

pub(crate) fn gateway() -> RestGateway {
    RestGateway::from_methods(&MethodTable::new(&pool_of(PROTO)).unwrap(), echo()).unwrap()
}

/// A gRPC backend that answers every call with the request message it got.
fn echo() -> GrpcService {
    tower::util::BoxCloneSyncService::new(tower::service_fn(|request: Request<tonic::body::Body>| async move {
        let mut body = request.into_body().collect().await.unwrap().to_bytes();
        body.advance(5);
        let mut frame = vec![0u8];
        frame.extend((body.len() as u32).to_be_bytes());
        frame.extend_from_slice(&body);
        let mut trailers = http::HeaderMap::new();
        trailers.insert("grpc-status", "0".parse().unwrap());
        let reply = http_body_util::StreamBody::new(futures_util::stream::iter([
            Ok::<_, Infallible>(http_body::Frame::data(Bytes::from(frame))),
            Ok(http_body::Frame::trailers(trailers)),
        ]));
        let mut response = Response::new(tonic::body::Body::new(reply));
        response.headers_mut().insert("content-type", "application/grpc".parse().unwrap());
        Ok::<_, Infallible>(response)
    }))
}

async fn call(gateway: &RestGateway, method: Method, uri: &str, body: &str) -> (u16, serde_json::Value) {
    let request = Request::builder().method(method).uri(uri).body(Bytes::from(body.to_owned())).unwrap();
    let response = gateway.handle(request).await;
    (response.status().as_u16(), serde_json::from_slice(response.body()).unwrap())
}

#[tokio::test]
async fn a_new_annotated_rpc_is_served_without_rest_code() {
    let gateway = gateway();
    let (status, json) = call(
        &gateway,
        Method::GET,
        "/v1/shelves/s%201/things/lamp?filter.tags=a&filter.tags=b&filter.minSize=5000000000\
         &since=2026-03-02T10:00:00%2B02:00&ids=1&ids=2&archived=true",
        "",
    )
    .await;
    assert_eq!(status, 200, "{json}");
    assert_eq!(
        json,
        serde_json::json!({
            "shelf": "s 1",
            "filter": { "name": "lamp", "tags": ["a", "b"], "min_size": 5_000_000_000_i64 },
            "since": "2026-03-02T08:00:00Z",
            "ids": [1, 2],
            "archived": true
        })
    );

    // The additional binding: the named body fills `filter`, the path `shelf`.
    let (status, json) =
        call(&gateway, Method::POST, "/v1/shelves/s2/things:search", r#"{"name":"x","minSize":"7"}"#).await;
    assert_eq!(status, 200, "{json}");
    assert_eq!(json["shelf"], "s2");
    assert_eq!(json["filter"], serde_json::json!({ "name": "x", "tags": [], "min_size": 7 }));
}

#[tokio::test]
async fn bad_bindings_name_the_field() {
    let gateway = gateway();
    for (uri, field) in [
        ("/v1/shelves/s/things/lamp?archived=yes", "archived"),
        ("/v1/shelves/s/things/lamp?ids=one", "ids"),
        ("/v1/shelves/s/things/lamp?since=2026-03-02", "since"),
        ("/v1/shelves/s/things/lamp?archived=true&archived=false", "archived"),
        ("/v1/shelves/s/things/lamp?filter=1", "filter"),
        ("/v1/shelves/s/things/lamp?shelf=other", "shelf"),
        ("/v1/shelves/s/things/lamp?nope=1", "nope"),
    ] {
        let (status, json) = call(&gateway, Method::GET, uri, "").await;
        assert_eq!(status, 400, "{uri}: {json}");
        assert_eq!(json["error"]["details"][0]["fieldViolations"][0]["field"], field, "{uri}: {json}");
    }
    let (status, _) = call(&gateway, Method::POST, "/v1/shelves/s/things:search", r#"{"bogus":1}"#).await;
    assert_eq!(status, 400);
    let (status, _) = call(&gateway, Method::DELETE, "/v1/shelves/s/things/lamp", "").await;
    assert_eq!(status, 405);
}

#[tokio::test]
async fn a_success_status_set_in_the_proto_is_the_answer_status() {
    let gateway = gateway();
    let (status, json) = call(&gateway, Method::POST, "/v1/shelves/s3/things:order", r#"{"ids":[4]}"#).await;
    assert_eq!(status, 202, "{json}");
    assert_eq!((&json["shelf"], &json["ids"]), (&serde_json::json!("s3"), &serde_json::json!([4])));
    // Errors keep their own status.
    let (status, _) = call(&gateway, Method::POST, "/v1/shelves/s3/things:order", r#"{"bogus":1}"#).await;
    assert_eq!(status, 400);
}

/// `{name}` declared before `{name}:proof`, as GetEvent comes before a proof of an event.
const VERB_AFTER_VARIABLE: &str = r#"
syntax = "proto3";
package things.v1;
import "google/api/annotations.proto";
service Things {
  rpc Get(Thing) returns (Thing) { option (google.api.http) = { get: "/v1/things/{name}" }; }
  rpc Prove(Thing) returns (Thing) { option (google.api.http) = { get: "/v1/things/{name}:proof" }; }
}
message Thing { string name = 1; }
"#;

#[tokio::test]
async fn a_custom_verb_route_wins_over_a_variable_declared_before_it() {
    let gateway = RestGateway::from_methods(&MethodTable::new(&pool_of(VERB_AFTER_VARIABLE)).unwrap(), echo()).unwrap();
    let target = |path: &str| gateway.route_target(&Method::GET, path).map(|(template, _)| template.to_owned());
    assert_eq!(target("/v1/things/t1:proof").as_deref(), Some("/v1/things/{name}:proof"));
    // A name holding a ':' that is no route's verb is still a name.
    assert_eq!(target("/v1/things/urn:t1").as_deref(), Some("/v1/things/{name}"));
    let (status, json) = call(&gateway, Method::GET, "/v1/things/t1:proof", "").await;
    assert_eq!((status, &json["name"]), (200, &serde_json::json!("t1")));
    let (status, json) = call(&gateway, Method::GET, "/v1/things/urn:t1", "").await;
    assert_eq!((status, &json["name"]), (200, &serde_json::json!("urn:t1")));
}
