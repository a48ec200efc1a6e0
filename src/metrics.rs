//! The server's metrics: OpenTelemetry instruments of one meter provider per
//! server, read on demand for `GET /metrics` (Prometheus text) and pushed over
//! OTLP when an endpoint is configured, so both show the same numbers.
//!
//! Labels are bounded on purpose: the RPC (a method the server serves, or
//! `none`), the protocol and the status code. No organization, subject or path:
//! those would leak tenants into an unauthenticated page and grow without end.

mod prometheus;

use std::fmt;
use std::sync::{Arc, Weak};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use opentelemetry::metrics::{Counter, Histogram, Meter, MeterProvider as _, ObservableGauge, UpDownCounter};
use opentelemetry::{KeyValue, StringValue, Value};
use opentelemetry_otlp::MetricExporter;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::metrics::data::ResourceMetrics;
use opentelemetry_sdk::metrics::reader::MetricReader;
use opentelemetry_sdk::metrics::{InstrumentKind, ManualReader, Pipeline, SdkMeterProvider, Temporality};

use crate::store::DynStore;

/// Instrument names; docs/observability.md lists their Prometheus forms.
pub mod names {
    pub const REQUESTS: &str = "audit.rpc.requests";
    pub const ERRORS: &str = "audit.rpc.errors";
    pub const DURATION: &str = "audit.rpc.duration";
    pub const IN_FLIGHT: &str = "audit.rpc.in_flight";
    pub const EVENTS_INGESTED: &str = "audit.events.ingested";
    pub const EVENTS_DUPLICATE: &str = "audit.events.duplicates";
    pub const POOL_CONNECTIONS: &str = "audit.db.pool.connections";
    pub const POOL_MAX: &str = "audit.db.pool.max_connections";
}

/// The `rpc` label of requests that name no served RPC (probes, `/metrics`,
/// unknown paths): one value, whatever the path, so scanners cannot add series.
pub const NO_RPC: &str = "none";

/// Request latency buckets in seconds: a summary over rollups answers in a few
/// milliseconds, a full batch commit in tens, a database stall in seconds.
const DURATION_BOUNDS: [f64; 14] =
    [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

const PROMETHEUS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Cheap to clone; every clone records into the same instruments.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

struct Inner {
    provider: SdkMeterProvider,
    reader: SharedReader,
    meter: Meter,
    requests: Counter<u64>,
    errors: Counter<u64>,
    duration: Histogram<f64>,
    in_flight: UpDownCounter<i64>,
    ingested: Counter<u64>,
    duplicates: Counter<u64>,
    /// Observable instruments stay registered while their handle lives.
    gauges: std::sync::Mutex<Vec<ObservableGauge<i64>>>,
}

/// The labels of one request's series.
#[derive(Clone)]
pub struct RequestLabels {
    rpc: Option<Arc<str>>,
    protocol: &'static str,
}

impl RequestLabels {
    /// `rpc` is `package.Service/Method` of a served RPC, or `None`.
    pub fn new(rpc: Option<Arc<str>>, protocol: &'static str) -> Self {
        Self { rpc, protocol }
    }

    pub fn names_rpc(&self) -> bool {
        self.rpc.is_some()
    }

    /// The `rpc` label: the method, or `none`.
    pub fn rpc_name(&self) -> &str {
        self.rpc.as_deref().unwrap_or(NO_RPC)
    }

    fn rpc_value(&self) -> Value {
        match &self.rpc {
            Some(name) => Value::String(StringValue::from(name.clone())),
            None => Value::from(NO_RPC),
        }
    }

    fn with_code(&self, code: &'static str) -> [KeyValue; 3] {
        [KeyValue::new("rpc", self.rpc_value()), KeyValue::new("protocol", self.protocol), KeyValue::new("code", code)]
    }

    fn without_code(&self) -> [KeyValue; 2] {
        [KeyValue::new("rpc", self.rpc_value()), KeyValue::new("protocol", self.protocol)]
    }
}

impl Metrics {
    /// A meter provider for one server: always readable by `/metrics`, and pushed
    /// to `exporter` when there is one (the OTLP destination telemetry was
    /// installed with).
    pub fn new(resource: Resource, exporter: Option<MetricExporter>) -> anyhow::Result<Self> {
        let reader = SharedReader(Arc::new(ManualReader::builder().build()));
        let mut builder = SdkMeterProvider::builder().with_resource(resource).with_reader(reader.clone());
        if let Some(exporter) = exporter {
            builder = builder.with_periodic_exporter(exporter);
        }
        let provider = builder.build();
        let meter = provider.meter("audit-service");
        let inner = Inner {
            requests: meter
                .u64_counter(names::REQUESTS)
                .with_unit("{request}")
                .with_description("Requests served, by RPC, protocol and gRPC status code.")
                .build(),
            errors: meter
                .u64_counter(names::ERRORS)
                .with_unit("{request}")
                .with_description("Requests that ended with a status other than OK.")
                .build(),
            duration: meter
                .f64_histogram(names::DURATION)
                .with_unit("s")
                .with_description("Time from the request's arrival to the end of its response.")
                .with_boundaries(DURATION_BOUNDS.to_vec())
                .build(),
            in_flight: meter
                .i64_up_down_counter(names::IN_FLIGHT)
                .with_unit("{request}")
                .with_description("Requests being served now.")
                .build(),
            ingested: meter
                .u64_counter(names::EVENTS_INGESTED)
                .with_unit("{event}")
                .with_description("Audit events newly stored.")
                .build(),
            duplicates: meter
                .u64_counter(names::EVENTS_DUPLICATE)
                .with_unit("{event}")
                .with_description("Audit events received again under an id already stored, not stored twice.")
                .build(),
            gauges: std::sync::Mutex::new(Vec::new()),
            provider,
            reader,
            meter,
        };
        Ok(Self { inner: Arc::new(inner) })
    }

    /// Reports the connection pools of `store` at each collection. The callback
    /// holds the store weakly: metrics never keep a closed database alive.
    pub fn observe_pools(&self, store: &DynStore) {
        let for_connections: Weak<dyn crate::store::EventStore> = Arc::downgrade(store);
        let for_max = for_connections.clone();
        let connections = self
            .inner
            .meter
            .i64_observable_gauge(names::POOL_CONNECTIONS)
            .with_unit("{connection}")
            .with_description("Open database connections, by pool and state (idle or used).")
            .with_callback(move |observer| {
                let Some(store) = for_connections.upgrade() else { return };
                for pool in store.pool_stats() {
                    let used = pool.size.saturating_sub(pool.idle);
                    for (state, value) in [("idle", pool.idle), ("used", used)] {
                        let labels = [KeyValue::new("pool", pool.name), KeyValue::new("state", state)];
                        observer.observe(i64::from(value), &labels);
                    }
                }
            })
            .build();
        let max = self
            .inner
            .meter
            .i64_observable_gauge(names::POOL_MAX)
            .with_unit("{connection}")
            .with_description("Most connections each database pool may open.")
            .with_callback(move |observer| {
                let Some(store) = for_max.upgrade() else { return };
                for pool in store.pool_stats() {
                    observer.observe(i64::from(pool.max), &[KeyValue::new("pool", pool.name)]);
                }
            })
            .build();
        if let Ok(mut gauges) = self.inner.gauges.lock() {
            gauges.extend([connections, max]);
        }
    }

    pub fn request_started(&self, labels: &RequestLabels) {
        self.inner.in_flight.add(1, &labels.without_code());
    }

    /// `code` is the canonical gRPC status name (`OK`, `INVALID_ARGUMENT`, …).
    pub fn request_finished(&self, labels: &RequestLabels, code: &'static str, elapsed: Duration) {
        self.inner.in_flight.add(-1, &labels.without_code());
        let labels = labels.with_code(code);
        self.inner.requests.add(1, &labels);
        if code != "OK" {
            self.inner.errors.add(1, &labels);
        }
        self.inner.duration.record(elapsed.as_secs_f64(), &labels);
    }

    pub fn events_stored(&self, created: usize, duplicates: usize) {
        self.inner.ingested.add(created as u64, &[]);
        self.inner.duplicates.add(duplicates as u64, &[]);
    }

    /// Every instrument now, in the Prometheus text exposition format.
    pub fn prometheus_text(&self) -> String {
        let mut collected = ResourceMetrics::default();
        match self.inner.reader.0.collect(&mut collected) {
            Ok(()) => prometheus::render(&collected),
            Err(error) => {
                tracing::warn!(error = %error, "collecting metrics failed");
                String::new()
            }
        }
    }

    /// The answer of `GET /metrics`.
    pub fn prometheus_response(&self) -> Response<Bytes> {
        let mut response = Response::new(Bytes::from(self.prometheus_text()));
        *response.status_mut() = StatusCode::OK;
        response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(PROMETHEUS_CONTENT_TYPE));
        response
    }

    /// Pushes the last values over OTLP (when configured) and stops the exporter.
    /// The wait runs off the async workers: the exporter's connection may need
    /// them to finish sending.
    pub async fn shutdown(&self) {
        let provider = self.inner.provider.clone();
        match tokio::task::spawn_blocking(move || provider.shutdown()).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::warn!(error = %error, "flushing metrics failed"),
            Err(error) => tracing::warn!(error = %error, "flushing metrics failed"),
        }
    }
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Metrics")
    }
}

/// The manual reader, shared: the provider owns its reader, and `/metrics` must
/// still be able to ask it to collect.
#[derive(Clone, Debug)]
struct SharedReader(Arc<ManualReader>);

impl MetricReader for SharedReader {
    fn register_pipeline(&self, pipeline: Weak<Pipeline>) {
        self.0.register_pipeline(pipeline);
    }

    fn collect(&self, rm: &mut ResourceMetrics) -> OTelSdkResult {
        self.0.collect(rm)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.0.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.0.shutdown_with_timeout(timeout)
    }

    fn temporality(&self, kind: InstrumentKind) -> Temporality {
        self.0.temporality(kind)
    }
}
