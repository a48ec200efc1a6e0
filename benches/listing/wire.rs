//! ListEvents over REST against native gRPC: the service, in this process, on the
//! benchmark's database, answering the same first page (one organization, 50 events)
//! to a raw hyper client in closed loop, so both protocols pay the same client. Every
//! answer is decoded and its event ids compared with the page the record expects.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes};
use http::{HeaderValue, Request, header};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use prost::Message;

use audit_service::proto::audit as pb;

const SECRET: &str = "listing-benchmark-secret-0123456789abcdef";
const LIST_GRPC: &str = "/avnology.audit.v1.AuditService/ListEvents";

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Protocol {
    Grpc,
    RestH1,
}

/// Requests per second and p50 (ms) of one protocol at one concurrency, and how
/// many answers were wrong.
pub struct Measured {
    pub per_second: f64,
    pub p50_ms: f64,
    pub errors: usize,
    pub first_error: Option<String>,
}

pub struct Wire {
    port: u16,
    token: String,
    org: String,
    expected: Arc<Vec<String>>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    handle: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Wire {
    /// Serves `database_url` on an ephemeral port; `expected` is the first page of `org`.
    pub async fn start(database_url: &str, org: &str, expected: Vec<String>) -> anyhow::Result<Self> {
        let mut config = audit_service::config::Config::new(
            database_url,
            audit_service::config::AuthSettings::Keys(audit_service::auth::AuthConfig {
                jwt_secret: Some(SECRET.into()),
                ..audit_service::auth::AuthConfig::default()
            }),
        );
        config.limits.rate = audit_service::config::RateLimits::OFF;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let server = audit_service::server::build(config, listener).await?;
        let port = server.local_addr().port();
        let (tx, rx) = tokio::sync::oneshot::channel();
        let handle = tokio::spawn(server.serve(async {
            let _ = rx.await;
        }));
        let token = audit_service::auth::mint_hs256(
            SECRET.as_bytes(),
            "bench",
            &["audit:read"],
            None,
            Duration::from_secs(3600),
        )?;
        Ok(Self { port, token, org: org.to_owned(), expected: Arc::new(expected), shutdown: Some(tx), handle })
    }

    fn request(&self, protocol: Protocol) -> Request<Full<Bytes>> {
        let authority = format!("127.0.0.1:{}", self.port);
        let bearer = HeaderValue::from_str(&format!("Bearer {}", self.token)).expect("a header value");
        let builder = match protocol {
            Protocol::Grpc => {
                let message =
                    pb::ListEventsRequest { page_size: 50, organization_id: self.org.clone(), ..Default::default() };
                let mut frame = vec![0];
                frame.extend_from_slice(&(message.encoded_len() as u32).to_be_bytes());
                frame.extend(message.encode_to_vec());
                return Request::post(format!("http://{authority}{LIST_GRPC}"))
                    .header(header::CONTENT_TYPE, "application/grpc")
                    .header(header::TE, "trailers")
                    .header(header::AUTHORIZATION, bearer)
                    .body(Full::new(Bytes::from(frame)))
                    .expect("a request");
            }
            Protocol::RestH1 => {
                Request::get(format!("http://{authority}/v1/audit/events?page_size=50&organization_id={}", self.org))
            }
        };
        builder
            .header(header::HOST, authority)
            .header(header::AUTHORIZATION, bearer)
            .body(Full::new(Bytes::new()))
            .expect("a request")
    }

    /// Closed loop for `seconds` with `concurrency` callers, each on its own
    /// connection (HTTP/1.1 keep-alive for REST, HTTP/2 for gRPC).
    pub async fn run(&self, protocol: Protocol, concurrency: usize, seconds: f64) -> anyhow::Result<Measured> {
        let warm_until = Instant::now() + Duration::from_millis(300);
        let until = warm_until + Duration::from_secs_f64(seconds);
        let mut tasks = Vec::new();
        for _ in 0..concurrency {
            let stream = tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await?;
            stream.set_nodelay(true)?;
            let io = TokioIo::new(stream);
            let template = self.request(protocol);
            let expected = self.expected.clone();
            let mut sender = match protocol {
                Protocol::Grpc => {
                    let (send, connection) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io).await?;
                    tokio::spawn(connection);
                    Sender::H2(send)
                }
                Protocol::RestH1 => {
                    let (send, connection) = hyper::client::conn::http1::handshake(io).await?;
                    tokio::spawn(connection);
                    Sender::H1(send)
                }
            };
            tasks.push(tokio::spawn(async move {
                let (mut latencies, mut errors, mut first_error) = (Vec::new(), 0, None);
                loop {
                    let sent = Instant::now();
                    if sent >= until {
                        break;
                    }
                    let request = clone_request(&template);
                    let outcome = match sender.send(request).await {
                        Ok(response) => check(protocol, response, &expected).await,
                        Err(error) => Err(error.to_string()),
                    };
                    if sent < warm_until {
                        continue;
                    }
                    match outcome {
                        Ok(()) => latencies.push(sent.elapsed().as_secs_f64() * 1000.0),
                        Err(error) => {
                            errors += 1;
                            first_error.get_or_insert(error);
                        }
                    }
                }
                (latencies, errors, first_error)
            }));
        }
        let (mut all, mut errors, mut first_error) = (Vec::new(), 0, None);
        for task in tasks {
            let (latencies, e, first) = task.await?;
            all.extend(latencies);
            errors += e;
            first_error = first_error.or(first);
        }
        all.sort_by(f64::total_cmp);
        let p50_ms = all.get(all.len() / 2).copied().unwrap_or(f64::NAN);
        Ok(Measured { per_second: all.len() as f64 / seconds, p50_ms, errors, first_error })
    }

    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.handle.await?
    }
}

enum Sender {
    H1(hyper::client::conn::http1::SendRequest<Full<Bytes>>),
    H2(hyper::client::conn::http2::SendRequest<Full<Bytes>>),
}

impl Sender {
    async fn send(&mut self, request: Request<Full<Bytes>>) -> hyper::Result<http::Response<hyper::body::Incoming>> {
        match self {
            Sender::H1(send) => {
                send.ready().await?;
                send.send_request(request).await
            }
            Sender::H2(send) => {
                send.ready().await?;
                send.send_request(request).await
            }
        }
    }
}

fn clone_request(template: &Request<Full<Bytes>>) -> Request<Full<Bytes>> {
    let mut request = Request::new(template.body().clone());
    *request.method_mut() = template.method().clone();
    *request.uri_mut() = template.uri().clone();
    *request.headers_mut() = template.headers().clone();
    request
}

/// Success in the protocol, and the events the record expects, in order.
async fn check(
    protocol: Protocol,
    response: http::Response<hyper::body::Incoming>,
    expected: &[String],
) -> Result<(), String> {
    let (parts, body) = response.into_parts();
    if parts.status != 200 {
        return Err(format!("HTTP {}", parts.status));
    }
    let collected = body.collect().await.map_err(|e| e.to_string())?;
    let trailers = collected.trailers().cloned();
    let mut data = collected.to_bytes();
    let page: pb::ListEventsResponse = match protocol {
        Protocol::RestH1 => serde_json::from_slice(&data).map_err(|e| format!("JSON: {e}"))?,
        Protocol::Grpc => {
            let status = parts.headers.get("grpc-status").or_else(|| trailers.as_ref()?.get("grpc-status"));
            if status.map(HeaderValue::as_bytes) != Some(b"0") {
                return Err(format!("grpc-status {status:?}"));
            }
            if data.remaining() < 5 {
                return Err("no message frame".into());
            }
            let _flag = data.get_u8();
            let len = data.get_u32() as usize;
            pb::ListEventsResponse::decode(data.split_to(len.min(data.len()))).map_err(|e| e.to_string())?
        }
    };
    let ids: Vec<&str> = page.events.iter().map(|e| e.id.as_str()).collect();
    if ids != expected.iter().map(String::as_str).collect::<Vec<_>>() {
        return Err(format!("{} events, not the expected page of {}", ids.len(), expected.len()));
    }
    Ok(())
}
