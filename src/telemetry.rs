//! Logs and traces: `tracing` to stdout (pretty or JSON, level from RUST_LOG) and,
//! when OTEL_EXPORTER_OTLP_ENDPOINT is set, spans exported over OTLP/gRPC.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// Flushes exported spans when dropped at the end of `main`.
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
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

pub fn init(json: bool) -> anyhow::Result<TelemetryGuard> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let fmt = if json {
        tracing_subscriber::fmt::layer().json().with_current_span(true).with_span_list(false).boxed()
    } else {
        tracing_subscriber::fmt::layer().compact().boxed()
    };
    let provider = match std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT") {
        Ok(endpoint) if !endpoint.is_empty() => {
            // The exporter and resource read the standard OTEL_* variables themselves.
            let exporter = opentelemetry_otlp::SpanExporter::builder().with_tonic().build()?;
            Some(
                SdkTracerProvider::builder()
                    .with_batch_exporter(exporter)
                    .with_resource(
                        opentelemetry_sdk::Resource::builder()
                            .with_service_name(
                                std::env::var("OTEL_SERVICE_NAME").unwrap_or_else(|_| "audit-service".into()),
                            )
                            .build(),
                    )
                    .build(),
            )
        }
        _ => None,
    };
    let otel = provider.as_ref().map(|p| tracing_opentelemetry::layer().with_tracer(p.tracer("audit-service")));
    tracing_subscriber::registry().with(filter).with(fmt).with(otel).try_init()?;
    Ok(TelemetryGuard { provider })
}
