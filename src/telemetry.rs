//! Logs, traces and where metrics go: `tracing` to stdout (pretty or JSON, level
//! from RUST_LOG) and, when the standard OTEL_* variables name an OTLP/gRPC
//! endpoint, spans exported there and each server's metrics pushed there.
//!
//! The subscriber is process-wide, so `install` runs once per process (main, or a
//! test binary). The OTLP destination it records is where each server's `Metrics`
//! push (`resource`, `metric_exporter`).

mod request;
mod store;

use std::sync::OnceLock;

use anyhow::Context as _;
use opentelemetry::KeyValue;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::fmt::writer::BoxMakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

pub use request::{TelemetryLayer, record_organization};
pub use store::instrument_store;

const DEFAULT_SERVICE_NAME: &str = "audit-service";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Pretty,
}

/// What `install` sets up. `from_env` reads the standard variables; tests build
/// one by hand to point the exporters at their own receiver.
pub struct Settings {
    pub log_format: LogFormat,
    /// A `RUST_LOG`-style filter; `None` reads RUST_LOG (default `info`).
    pub log_filter: Option<String>,
    /// Where log lines go; `None` is stdout.
    pub log_writer: Option<BoxMakeWriter>,
    /// OTLP/gRPC endpoint for spans; `None` exports none.
    pub traces_endpoint: Option<String>,
    /// OTLP/gRPC endpoint for metrics; `None` exports none (`/metrics` still works).
    pub metrics_endpoint: Option<String>,
    pub service_name: String,
}

impl Settings {
    /// `OTEL_EXPORTER_OTLP_ENDPOINT` (or the per-signal `…_TRACES_ENDPOINT` /
    /// `…_METRICS_ENDPOINT`) turns export on; `OTEL_SDK_DISABLED=true` or
    /// `OTEL_{TRACES,METRICS}_EXPORTER=none` turn it off again, as the
    /// specification says. Sampling (`OTEL_TRACES_SAMPLER*`), headers, timeout
    /// and compression are read by the SDK and the exporter themselves.
    pub fn from_env(log_format: LogFormat) -> Self {
        let var = |name: &str| std::env::var(name).ok().map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let disabled = var("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true"));
        let endpoint = |exporter_var: &str, signal_var: &str| {
            let off = disabled || var(exporter_var).is_some_and(|v| v.eq_ignore_ascii_case("none"));
            if off { None } else { var(signal_var).or_else(|| var("OTEL_EXPORTER_OTLP_ENDPOINT")) }
        };
        Self {
            log_format,
            log_filter: None,
            log_writer: None,
            traces_endpoint: endpoint("OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"),
            metrics_endpoint: endpoint("OTEL_METRICS_EXPORTER", "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"),
            service_name: var("OTEL_SERVICE_NAME").unwrap_or_else(|| DEFAULT_SERVICE_NAME.into()),
        }
    }
}

/// The OTLP destination of metrics and the resource every signal carries.
struct Export {
    metrics_endpoint: Option<String>,
    resource: Resource,
}

static EXPORT: OnceLock<Export> = OnceLock::new();

/// Flushes and stops span export when dropped at the end of `main`.
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
}

impl TelemetryGuard {
    /// Exports every span ended so far (blocks until the exporter answered).
    pub fn force_flush(&self) -> anyhow::Result<()> {
        match &self.provider {
            Some(provider) => provider.force_flush().context("flushing spans"),
            None => Ok(()),
        }
    }
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take()
            && let Err(error) = provider.shutdown()
        {
            eprintln!("flushing spans failed: {error}");
        }
    }
}

/// Logs as `json` or pretty text, export as the environment says.
pub fn init(json: bool) -> anyhow::Result<TelemetryGuard> {
    install(Settings::from_env(if json { LogFormat::Json } else { LogFormat::Pretty }))
}

/// Installs the process-wide subscriber and records the OTLP destination.
pub fn install(settings: Settings) -> anyhow::Result<TelemetryGuard> {
    let resource = Resource::builder()
        .with_service_name(settings.service_name.clone())
        .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
        .build();
    let filter = match &settings.log_filter {
        Some(directives) => EnvFilter::try_new(directives).context("parsing the log filter")?,
        None => EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
    };
    let writer = settings.log_writer.unwrap_or_else(|| BoxMakeWriter::new(std::io::stdout));
    let fmt = match settings.log_format {
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .with_writer(writer)
            .with_filter(filter)
            .boxed(),
        LogFormat::Pretty => tracing_subscriber::fmt::layer().compact().with_writer(writer).with_filter(filter).boxed(),
    };

    let mut tracer = SdkTracerProvider::builder().with_resource(resource.clone());
    tracer = match &settings.traces_endpoint {
        Some(endpoint) => {
            let exporter = opentelemetry_otlp::SpanExporter::builder()
                .with_tonic()
                .with_endpoint(endpoint)
                .build()
                .context("building the OTLP span exporter")?;
            tracer.with_batch_exporter(exporter)
        }
        // Spans still get ids, so log lines carry the caller's trace id, but
        // nothing is recorded for an exporter that is not there.
        None => tracer.with_sampler(Sampler::AlwaysOff),
    };
    let provider = tracer.build();
    // Spans are exported whatever RUST_LOG says: the log level must not decide
    // what a trace holds. Other crates contribute only their warnings.
    let span_filter = Targets::new().with_target("audit_service", LevelFilter::INFO).with_default(LevelFilter::WARN);
    // Thread ids mean nothing for a task that hops between tokio workers.
    let otel = tracing_opentelemetry::layer()
        .with_tracer(provider.tracer("audit-service"))
        .with_threads(false)
        .with_filter(span_filter);
    tracing_subscriber::registry().with(fmt).with(otel).try_init().context("installing the tracing subscriber")?;

    if let Some(protocol) = std::env::var("OTEL_EXPORTER_OTLP_PROTOCOL").ok().filter(|p| p != "grpc") {
        tracing::warn!(protocol, "only OTLP over gRPC is supported; exporting with grpc");
    }
    if let Some(endpoint) = &settings.traces_endpoint {
        tracing::info!(endpoint, "exporting spans over otlp");
    }
    if let Some(endpoint) = &settings.metrics_endpoint {
        tracing::info!(endpoint, "exporting metrics over otlp");
    }
    let export = Export { metrics_endpoint: settings.metrics_endpoint, resource };
    if EXPORT.set(export).is_err() {
        anyhow::bail!("telemetry is already installed");
    }
    Ok(TelemetryGuard { provider: Some(provider) })
}

/// The resource of this process's telemetry (a default one before `install`).
pub fn resource() -> Resource {
    match EXPORT.get() {
        Some(export) => export.resource.clone(),
        None => Resource::builder().with_service_name(DEFAULT_SERVICE_NAME).build(),
    }
}

/// A fresh OTLP metric exporter when metrics export is configured. Must run in
/// a tokio runtime: the exporter's connection lives there.
pub fn metric_exporter() -> anyhow::Result<Option<opentelemetry_otlp::MetricExporter>> {
    let Some(endpoint) = EXPORT.get().and_then(|export| export.metrics_endpoint.as_deref()) else {
        return Ok(None);
    };
    let exporter = opentelemetry_otlp::MetricExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint)
        .build()
        .context("building the OTLP metric exporter")?;
    Ok(Some(exporter))
}
