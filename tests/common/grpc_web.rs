//! A minimal gRPC-web client (binary and text framing), and the length-prefixed
//! message frame native gRPC sends too. Shared by the api and telemetry test targets.

// Each target uses only part of it.
#![allow(dead_code)]

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::{Buf, BufMut, Bytes, BytesMut};
use prost::Message;

#[derive(Debug)]
pub struct WebStatus {
    pub http_status: u16,
    pub code: i32,
    pub message: String,
    pub details_bin: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Binary,
    Text,
}

/// One length-prefixed, uncompressed message frame.
pub fn frame(message: &impl Message) -> Bytes {
    let mut frame = BytesMut::new();
    frame.put_u8(0);
    frame.put_u32(message.encoded_len() as u32);
    message.encode(&mut frame).unwrap();
    frame.freeze()
}

/// Calls one unary RPC; the reply message, or the status carried in the trailers.
pub async fn call<Req: Message, Resp: Message + Default>(
    client: &reqwest::Client,
    base: &str,
    method: &str,
    request: &Req,
    token: Option<&str>,
    mode: Mode,
) -> Result<Resp, WebStatus> {
    call_with(client, base, method, request, token, mode, &[]).await
}

/// As [`call`], with `headers` added to the request (a `traceparent`, say).
pub async fn call_with<Req: Message, Resp: Message + Default>(
    client: &reqwest::Client,
    base: &str,
    method: &str,
    request: &Req,
    token: Option<&str>,
    mode: Mode,
    headers: &[(&str, &str)],
) -> Result<Resp, WebStatus> {
    let frame = frame(request);
    let body = match mode {
        Mode::Binary => frame,
        Mode::Text => Bytes::from(STANDARD.encode(&frame)),
    };
    let payload = send(client, base, method, body, token, mode, headers).await?;
    Ok(Resp::decode(payload).expect("reply decodes"))
}

/// Calls one unary RPC with `body` sent exactly as given (already framed, and
/// base64 in text mode); the reply message's bytes, or the status.
pub async fn call_raw(
    client: &reqwest::Client,
    base: &str,
    method: &str,
    body: Bytes,
    token: Option<&str>,
    mode: Mode,
) -> Result<Bytes, WebStatus> {
    send(client, base, method, body, token, mode, &[]).await
}

async fn send(
    client: &reqwest::Client,
    base: &str,
    method: &str,
    body: Bytes,
    token: Option<&str>,
    mode: Mode,
    headers: &[(&str, &str)],
) -> Result<Bytes, WebStatus> {
    let content_type = match mode {
        Mode::Binary => "application/grpc-web+proto",
        Mode::Text => "application/grpc-web-text",
    };
    let mut builder = client
        .post(format!("{base}/avnology.audit.v1.AuditService/{method}"))
        .header("content-type", content_type)
        .header("accept", content_type)
        .header("x-grpc-web", "1")
        .header("origin", "https://dashboard.example");
    if let Some(token) = token {
        builder = builder.header("authorization", format!("Bearer {token}"));
    }
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let response = builder.body(body).send().await.expect("grpc-web request sent");
    let http_status = response.status().as_u16();
    assert_eq!(http_status, 200, "gRPC-web answers 200 whatever the status");
    let headers = response.headers().clone();
    let raw = response.bytes().await.expect("grpc-web body");
    let mut data = match mode {
        Mode::Binary => raw,
        Mode::Text => Bytes::from(decode_text(&raw)),
    };
    let mut message = None;
    let mut trailers = headers
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or_default().to_owned()))
        .collect::<Vec<_>>();
    while data.remaining() >= 5 {
        let flag = data.get_u8();
        let len = data.get_u32() as usize;
        let payload = data.split_to(len);
        if flag & 0x80 != 0 {
            for line in std::str::from_utf8(&payload).unwrap().split("\r\n").filter(|l| !l.is_empty()) {
                let (k, v) = line.split_once(':').unwrap();
                trailers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
            }
        } else {
            message = Some(payload);
        }
    }
    let get = |name: &str| trailers.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let code: i32 = get("grpc-status").expect("grpc-status present").parse().unwrap();
    if code == 0 {
        return Ok(message.expect("a reply message"));
    }
    let message =
        get("grpc-message").map(|m| percent_encoding::percent_decode_str(&m).decode_utf8_lossy().into_owned());
    Err(WebStatus {
        http_status,
        code,
        message: message.unwrap_or_default(),
        details_bin: get("grpc-status-details-bin"),
    })
}

/// Text mode may carry several base64 chunks, each padded on its own.
fn decode_text(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let text = std::str::from_utf8(raw).unwrap();
    let mut rest = text;
    while !rest.is_empty() {
        let end = rest.find('=').map(|i| {
            let mut j = i;
            while rest[j..].starts_with('=') {
                j += 1;
            }
            j
        });
        let (chunk, tail) = rest.split_at(end.unwrap_or(rest.len()));
        out.extend(STANDARD.decode(chunk).expect("valid base64 chunk"));
        rest = tail;
    }
    out
}
