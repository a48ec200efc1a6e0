//! Nothing is read or converted before the caller is known, and no input a client
//! controls is answered INTERNAL: bodies that never end, deep and dense JSON,
//! deep protobuf, and broken gRPC / gRPC-web framing, on every protocol.

use std::convert::Infallible;
use std::time::Duration;

use audit_service::proto::audit as pb;
use base64::Engine;
use bytes::{BufMut, Bytes, BytesMut};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use hyper_util::rt::{TokioExecutor, TokioIo};
use prost::Message;
use tokio::sync::mpsc;

use crate::fixtures::event;
use crate::grpc_web::{self, Mode};
use crate::server::{TestServer, authed, http1, http2, stored_events, token, writer};

const BATCH_PATH: &str = "/avnology.audit.v1.AuditService/BatchCreateEvents";
/// Far longer than any answer takes on a loaded machine, far shorter than the
/// server's deadline in these tests: an answer that waits for the body misses it.
const ANSWER_DEADLINE: Duration = Duration::from_secs(60);

/// A server whose own request deadline cannot end a request before the test does.
async fn patient_server() -> TestServer {
    TestServer::start_with(|config| config.limits.request_timeout = Duration::from_secs(600)).await
}

#[derive(Clone, Copy, Debug)]
enum Wire {
    RestHttp1,
    RestHttp2,
    Grpc,
    GrpcWebHttp1,
}

/// Sends the head of a request and the first body bytes, then keeps the body
/// open; the answer's status and headers once it comes, which must be before the
/// body ends.
async fn answer_with_open_body(server: &TestServer, wire: Wire, token: Option<&str>) -> Answer {
    let (content_type, path, first) = match wire {
        Wire::RestHttp1 | Wire::RestHttp2 => {
            ("application/json", "/v1/audit/events:batchCreate", Bytes::from_static(b"{\"events\":[{\"details\":[[[["))
        }
        Wire::Grpc => ("application/grpc", BATCH_PATH, Bytes::from_static(&[0, 0, 0x10, 0, 0, 0x0a])),
        Wire::GrpcWebHttp1 => ("application/grpc-web+proto", BATCH_PATH, Bytes::from_static(&[0, 0, 0x10, 0, 0, 0x0a])),
    };
    let (sender, receiver) = mpsc::channel::<Bytes>(4);
    sender.send(first).await.unwrap();
    let body = StreamBody::new(Box::pin(futures_util::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|chunk| (Ok::<_, Infallible>(Frame::data(chunk)), receiver))
    })));
    let mut request = http::Request::post(format!("http://{}{path}", server.addr))
        .header("content-type", content_type)
        .header("te", "trailers")
        .header("content-length", "1048576");
    if matches!(wire, Wire::Grpc | Wire::RestHttp2) {
        request = request.version(http::Version::HTTP_2);
    }
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    if matches!(wire, Wire::Grpc | Wire::RestHttp2) {
        // HTTP/2 has no content-length promise to keep.
        request.headers_mut().unwrap().remove("content-length");
    }
    let request = request.body(body).unwrap();
    let stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let response = match wire {
        Wire::RestHttp1 | Wire::GrpcWebHttp1 => {
            let (mut send, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.unwrap();
            tokio::spawn(connection);
            tokio::time::timeout(ANSWER_DEADLINE, send.send_request(request)).await
        }
        Wire::Grpc | Wire::RestHttp2 => {
            let (mut send, connection) =
                hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream)).await.unwrap();
            tokio::spawn(connection);
            tokio::time::timeout(ANSWER_DEADLINE, send.send_request(request)).await
        }
    };
    // The body never ends: its sender lives until the answer is in.
    let response = response.unwrap_or_else(|_| panic!("{wire:?}: no answer while the body was still open"));
    let (parts, body) = response.expect("answered").into_parts();
    // gRPC-web carries the status in a trailer frame of the (complete) answer.
    let body = tokio::time::timeout(ANSWER_DEADLINE, body.collect()).await.expect("answer body").expect("read");
    drop(sender);
    Answer { parts, body: body.to_bytes() }
}

struct Answer {
    parts: http::response::Parts,
    body: Bytes,
}

/// The gRPC status, from the headers (trailers-only) or a gRPC-web trailer frame.
fn grpc_status_of(answer: &Answer) -> Option<i32> {
    if let Some(value) = answer.parts.headers.get("grpc-status") {
        return value.to_str().unwrap().parse().ok();
    }
    let text = String::from_utf8_lossy(&answer.body);
    let start = text.find("grpc-status:")? + "grpc-status:".len();
    text[start..].split("\r\n").next()?.trim().parse().ok()
}

#[tokio::test]
async fn a_caller_without_a_valid_token_is_refused_before_the_body_is_read() {
    let server = patient_server().await;
    for wire in [Wire::RestHttp1, Wire::RestHttp2, Wire::Grpc, Wire::GrpcWebHttp1] {
        for token in [None, Some("not-a-jwt")] {
            let answer = answer_with_open_body(&server, wire, token).await;
            match wire {
                Wire::RestHttp1 | Wire::RestHttp2 => assert_eq!(answer.parts.status, 401, "{wire:?}"),
                Wire::Grpc | Wire::GrpcWebHttp1 => assert_eq!(grpc_status_of(&answer), Some(16), "{wire:?}"),
            }
        }
    }
    assert_eq!(stored_events(&server.db_path).await, 0);
    server.stop().await;
}

#[tokio::test]
async fn a_token_without_the_scope_is_refused_before_the_body_is_read() {
    let server = patient_server().await;
    let reader = token(&["audit:read"], None);
    for wire in [Wire::RestHttp1, Wire::RestHttp2, Wire::Grpc, Wire::GrpcWebHttp1] {
        let answer = answer_with_open_body(&server, wire, Some(&reader)).await;
        match wire {
            Wire::RestHttp1 | Wire::RestHttp2 => assert_eq!(answer.parts.status, 403, "{wire:?}"),
            Wire::Grpc | Wire::GrpcWebHttp1 => assert_eq!(grpc_status_of(&answer), Some(7), "{wire:?}"),
        }
    }
    server.stop().await;
}

#[tokio::test]
async fn the_query_of_a_stranger_is_not_parsed() {
    let server = TestServer::start().await;
    for client in [http1(), http2()] {
        let response = client.get(format!("{}/v1/audit/events:summary?foo=1", server.base)).send().await.expect("sent");
        assert_eq!(response.status(), 401);
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["error"]["status"], "UNAUTHENTICATED", "{body}");
    }
    server.stop().await;
}

fn nested_lists(depth: usize) -> String {
    format!("{}1{}", "[".repeat(depth), "]".repeat(depth))
}

fn nested_objects(depth: usize) -> String {
    format!("{}1{}", r#"{"a":"#.repeat(depth), "}".repeat(depth))
}

fn rest_batch(details: &str) -> String {
    format!(
        r#"{{"events":[{{"timestamp":"2026-11-20T10:00:00Z","organization_id":"org_a","action":"session.login","result":"success","details":{details}}}]}}"#
    )
}

/// The refused REST answer's field and message; the message must be the
/// service's own, not a decoder's.
async fn rest_refusal(server: &TestServer, body: String) -> (String, String) {
    let response = http1()
        .post(format!("{}/v1/audit/events:batchCreate", server.base))
        .bearer_auth(writer())
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 400);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"]["status"], "INVALID_ARGUMENT", "{body}");
    let message = body["error"]["message"].as_str().unwrap().to_owned();
    for internal in ["Protobuf", "Value.kind", "ListValue", "decode"] {
        assert!(!message.contains(internal), "{message}");
    }
    let field = body["error"]["details"][0]["fieldViolations"][0]["field"].as_str().unwrap().to_owned();
    (field, message)
}

#[tokio::test]
async fn deep_details_over_rest_are_invalid_argument_naming_the_field() {
    let server = TestServer::start().await;
    for details in [
        format!(r#"{{"x":{}}}"#, nested_lists(49)),
        format!(r#"{{"x":{}}}"#, nested_lists(32)),
        nested_objects(40),
        nested_objects(33),
        format!(r#"{{"x":{}}}"#, nested_lists(5000)),
    ] {
        let (field, message) = rest_refusal(&server, rest_batch(&details)).await;
        assert_eq!(field, "events[0].details", "{message}");
        assert!(message.contains("deeper than 32"), "{message}");
    }
    // At the limit: the details object and 31 lists inside it.
    let response = http1()
        .post(format!("{}/v1/audit/events:batchCreate", server.base))
        .bearer_auth(writer())
        .body(rest_batch(&format!(r#"{{"x":{}}}"#, nested_lists(31))))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    assert_eq!(stored_events(&server.db_path).await, 1);
    server.stop().await;
}

#[tokio::test]
async fn dense_details_over_rest_are_refused_by_the_budget() {
    let server = TestServer::start().await;
    // Four million numbers: the conversion would have cost gigabytes.
    let numbers = vec!["1"; 4_000_000].join(",");
    let (field, message) = rest_refusal(&server, rest_batch(&format!(r#"{{"x":[{numbers}]}}"#))).await;
    assert!(field == "events[0].details" || field == "body", "{field}: {message}");
    assert!(message.contains("JSON values"), "{message}");
    assert_eq!(stored_events(&server.db_path).await, 0);
    server.stop().await;
}

/// A Struct holding one list nested `depth` deep.
fn deep_struct(depth: usize) -> pbjson_types::Struct {
    use pbjson_types::value::Kind;
    let mut value = pbjson_types::Value { kind: Some(Kind::NumberValue(1.0)) };
    for _ in 0..depth {
        value = pbjson_types::Value { kind: Some(Kind::ListValue(pbjson_types::ListValue { values: vec![value] })) };
    }
    pbjson_types::Struct { fields: [("x".to_owned(), value)].into_iter().collect() }
}

fn grpc_batch(details: pbjson_types::Struct) -> pb::BatchCreateEventsRequest {
    let mut event = event("e1", "org_a", "session.login", "success", "2026-11-20T10:00:00Z");
    event.details = Some(details);
    pb::BatchCreateEventsRequest { events: vec![event] }
}

#[tokio::test]
async fn deep_details_over_grpc_and_grpc_web_are_invalid_argument() {
    let server = TestServer::start().await;
    let mut client = server.grpc().await;
    // 60 lists pass prost's own recursion limit: the codec answers.
    // 40 lists decode, and the domain refuses them by name.
    for (depth, names_the_field) in [(60, false), (40, true)] {
        let status = client.batch_create_events(authed(grpc_batch(deep_struct(depth)), &writer())).await.unwrap_err();
        assert_eq!(status.code(), tonic::Code::InvalidArgument, "{depth}: {status:?}");
        assert!(!status.message().contains("Value.kind") && !status.message().contains("decode"), "{status:?}");
        if names_the_field {
            assert!(status.message().contains("events[0].details is nested deeper than 32"), "{status:?}");
        }
        for mode in [Mode::Binary, Mode::Text] {
            let web = grpc_web::call::<_, pb::BatchCreateEventsResponse>(
                &http1(),
                &server.base,
                "BatchCreateEvents",
                &grpc_batch(deep_struct(depth)),
                Some(&writer()),
                mode,
            )
            .await
            .unwrap_err();
            assert_eq!(web.code, 3, "{depth} {mode:?}: {web:?}");
        }
    }
    assert_eq!(stored_events(&server.db_path).await, 0);
    server.stop().await;
}

fn framed(message: &[u8], flag: u8) -> BytesMut {
    let mut frame = BytesMut::new();
    frame.put_u8(flag);
    frame.put_u32(message.len() as u32);
    frame.put_slice(message);
    frame
}

#[tokio::test]
async fn broken_grpc_web_bodies_are_invalid_argument() {
    let server = TestServer::start().await;
    let message = grpc_batch(pbjson_types::Struct::default()).encode_to_vec();
    let whole = framed(&message, 0);
    let mut two = whole.clone();
    two.extend_from_slice(&whole);
    let text = |raw: &[u8]| Bytes::from(base64::engine::general_purpose::STANDARD.encode(raw));
    let cases: [(&str, Bytes, Mode); 7] = [
        ("bad base64", Bytes::from_static(b"AAAA%%%%not-base64"), Mode::Text),
        ("truncated frame", whole.clone().split_to(whole.len() - 3).freeze(), Mode::Binary),
        ("truncated frame, text", text(&whole[..whole.len() - 3]), Mode::Text),
        ("compressed flag", framed(&message, 1).freeze(), Mode::Binary),
        ("empty body", Bytes::new(), Mode::Binary),
        ("two messages", two.clone().freeze(), Mode::Binary),
        ("half a prefix", Bytes::from_static(&[0, 0]), Mode::Binary),
    ];
    for (case, body, mode) in cases {
        let status = grpc_web::call_raw(&http1(), &server.base, "BatchCreateEvents", body, Some(&writer()), mode)
            .await
            .expect_err(case);
        assert_eq!(status.code, 3, "{case}: {status:?}");
        assert!(status.message.starts_with("body "), "{case}: {status:?}");
    }
    assert_eq!(stored_events(&server.db_path).await, 0);
    server.stop().await;
}

#[tokio::test]
async fn broken_native_grpc_bodies_are_invalid_argument() {
    let server = TestServer::start().await;
    let message = grpc_batch(pbjson_types::Struct::default()).encode_to_vec();
    let whole = framed(&message, 0);
    let mut two = whole.clone();
    two.extend_from_slice(&whole);
    let cases: [(&str, Bytes); 5] = [
        ("two messages", two.freeze()),
        ("empty body", Bytes::new()),
        ("truncated frame", whole.clone().split_to(whole.len() - 1).freeze()),
        ("compressed flag", framed(&message, 1).freeze()),
        ("not protobuf", framed(&[0xff; 16], 0).freeze()),
    ];
    for (case, body) in cases {
        let response = http2()
            .post(format!("{}{BATCH_PATH}", server.base))
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .bearer_auth(writer())
            .body(body)
            .send()
            .await
            .expect(case);
        let headers = response.headers().clone();
        let _ = response.bytes().await;
        let code = headers.get("grpc-status").map(|v| v.to_str().unwrap().to_owned());
        assert_eq!(code.as_deref(), Some("3"), "{case}: {headers:?}");
    }
    assert_eq!(stored_events(&server.db_path).await, 0);
    server.stop().await;
}
