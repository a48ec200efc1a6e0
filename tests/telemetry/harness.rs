//! Test harness: an OTLP/gRPC receiver (trace and metrics collector services)
//! inside this binary, the process's telemetry installed once and pointed at it,
//! captured JSON log lines, and the shared test server started after them.

#![allow(dead_code)]

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use audit_service::telemetry::{LogFormat, Settings, TelemetryGuard};
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{ExportMetricsServiceRequest, ExportMetricsServiceResponse};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{TraceService, TraceServiceServer};
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use opentelemetry_proto::tonic::common::v1::any_value;
use opentelemetry_proto::tonic::metrics::v1::Metric;
use opentelemetry_proto::tonic::trace::v1::Span;
use tokio::net::TcpListener;

use crate::server::{PATIENCE, TestServer, authed};

/// Everything the receiver was sent, and every log line written.
#[derive(Clone, Default)]
pub struct Received {
    spans: Arc<Mutex<Vec<Span>>>,
    metrics: Arc<Mutex<Vec<Metric>>>,
    logs: Arc<Mutex<Vec<u8>>>,
}

#[tonic::async_trait]
impl TraceService for Received {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let spans = request.into_inner().resource_spans.into_iter().flat_map(|r| r.scope_spans).flat_map(|s| s.spans);
        self.spans.lock().unwrap().extend(spans);
        Ok(tonic::Response::new(ExportTraceServiceResponse { partial_success: None }))
    }
}

#[tonic::async_trait]
impl MetricsService for Received {
    async fn export(
        &self,
        request: tonic::Request<ExportMetricsServiceRequest>,
    ) -> Result<tonic::Response<ExportMetricsServiceResponse>, tonic::Status> {
        let metrics =
            request.into_inner().resource_metrics.into_iter().flat_map(|r| r.scope_metrics).flat_map(|s| s.metrics);
        self.metrics.lock().unwrap().extend(metrics);
        Ok(tonic::Response::new(ExportMetricsServiceResponse { partial_success: None }))
    }
}

/// Log lines land here instead of stdout.
#[derive(Clone)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

pub struct Harness {
    pub received: Received,
    guard: TelemetryGuard,
}

static HARNESS: OnceLock<Harness> = OnceLock::new();

/// Starts the receiver and installs telemetry, once per test binary. Both live on
/// a runtime of their own: each test's runtime ends with the test, and the span
/// exporter's connection must outlive every test.
pub fn harness() -> &'static Harness {
    HARNESS.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
            runtime.block_on(async move {
                let received = Received::default();
                let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
                let endpoint = format!("http://{}", listener.local_addr().unwrap());
                let server = tonic::transport::Server::builder()
                    .add_service(TraceServiceServer::new(received.clone()))
                    .add_service(MetricsServiceServer::new(received.clone()))
                    .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener));
                tokio::spawn(server);
                let capture = Capture(received.logs.clone());
                let guard = audit_service::telemetry::install(Settings {
                    log_format: LogFormat::Json,
                    log_filter: Some("warn,audit_service=info".into()),
                    log_writer: Some(tracing_subscriber::fmt::writer::BoxMakeWriter::new(move || capture.clone())),
                    traces_endpoint: Some(endpoint.clone()),
                    metrics_endpoint: Some(endpoint),
                    service_name: "audit-service-test".into(),
                })
                .expect("telemetry installs");
                tx.send(Harness { received, guard }).unwrap();
                std::future::pending::<()>().await;
            });
        });
        rx.recv().expect("harness starts")
    })
}

impl Harness {
    /// Every span of one trace, once `ready` accepts them (exporting flushes and
    /// retries until then: the server span ends after the client has its answer).
    pub async fn trace(&'static self, trace_id: &str, ready: impl Fn(&[Span]) -> bool) -> Vec<Span> {
        let wanted = hex_decode(trace_id);
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            tokio::task::spawn_blocking(|| self.guard.force_flush().expect("spans flush")).await.unwrap();
            let spans: Vec<Span> =
                self.received.spans.lock().unwrap().iter().filter(|s| s.trace_id == wanted).cloned().collect();
            if ready(&spans) {
                return spans;
            }
            assert!(tokio::time::Instant::now() < deadline, "trace {trace_id} incomplete: {spans:#?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The JSON log lines whose fields match `select`, once there are any.
    pub async fn log_lines(&self, select: impl Fn(&serde_json::Value) -> bool) -> Vec<serde_json::Value> {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let lines = self.all_log_lines().into_iter().filter(&select).collect::<Vec<_>>();
            if !lines.is_empty() {
                return lines;
            }
            assert!(tokio::time::Instant::now() < deadline, "no matching log line");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn all_log_lines(&self) -> Vec<serde_json::Value> {
        let text = String::from_utf8(self.received.logs.lock().unwrap().clone()).unwrap();
        text.lines().map(|line| serde_json::from_str(line).expect("every log line is JSON")).collect()
    }

    pub fn raw_logs(&self) -> String {
        String::from_utf8(self.received.logs.lock().unwrap().clone()).unwrap()
    }

    /// Every metric exported over OTLP so far.
    pub fn exported_metrics(&self) -> Vec<Metric> {
        self.received.metrics.lock().unwrap().clone()
    }
}

/// The value of a span attribute as text (ints in decimal).
pub fn attr(span: &Span, key: &str) -> Option<String> {
    span.attributes.iter().find(|kv| kv.key == key).and_then(|kv| kv.value.as_ref()?.value.as_ref()).map(|v| match v {
        any_value::Value::StringValue(s) => s.clone(),
        any_value::Value::IntValue(i) => i.to_string(),
        any_value::Value::BoolValue(b) => b.to_string(),
        any_value::Value::DoubleValue(d) => d.to_string(),
        other => format!("{other:?}"),
    })
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn hex_decode(text: &str) -> Vec<u8> {
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap()).collect()
}

/// A `traceparent` of a sampled caller span, and its trace and span ids.
pub struct Caller {
    pub trace_id: String,
    pub span_id: String,
}

impl Caller {
    /// Distinct per test: the tests of this binary share one receiver.
    pub fn new(tag: u8) -> Self {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
        let random = nanos as u64 & 0x00ff_ffff_ffff_ffff;
        Self {
            trace_id: format!("{tag:02x}{random:014x}4bf92f3577b34da6"),
            span_id: format!("00f067aa0ba907{tag:02x}"),
        }
    }

    pub fn traceparent(&self) -> String {
        format!("00-{}-{}-01", self.trace_id, self.span_id)
    }
}

/// The shared test server, started once this process's telemetry points at the
/// receiver: a server takes its OTLP metrics destination when it is built.
pub async fn start_server() -> TestServer {
    harness();
    TestServer::start().await
}

/// As [`authed`], continuing the caller's trace from `traceparent`.
pub fn traced<T>(message: T, token: &str, traceparent: &str) -> tonic::Request<T> {
    let mut request = authed(message, token);
    request.metadata_mut().insert("traceparent", traceparent.parse().unwrap());
    request
}
