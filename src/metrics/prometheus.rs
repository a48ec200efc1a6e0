//! Prometheus text exposition (format 0.0.4) of collected OpenTelemetry metrics,
//! named as the OpenTelemetry-to-Prometheus compatibility rules name them: dots
//! become underscores, the unit is a suffix (`_seconds`), counters end in `_total`.

use std::fmt::{Display, Write as _};

use opentelemetry::KeyValue;
use opentelemetry_sdk::metrics::data::{AggregatedMetrics, Metric, MetricData, ResourceMetrics};

pub fn render(collected: &ResourceMetrics) -> String {
    let mut out = String::with_capacity(4096);
    for scope in collected.scope_metrics() {
        for metric in scope.metrics() {
            match metric.data() {
                AggregatedMetrics::F64(data) => write_metric(&mut out, metric, data),
                AggregatedMetrics::U64(data) => write_metric(&mut out, metric, data),
                AggregatedMetrics::I64(data) => write_metric(&mut out, metric, data),
            }
        }
    }
    out
}

fn write_metric<T: Copy + Display>(out: &mut String, metric: &Metric, data: &MetricData<T>) {
    let base = base_name(metric.name(), metric.unit());
    match data {
        MetricData::Sum(sum) => {
            let (name, kind) = if sum.is_monotonic() { (format!("{base}_total"), "counter") } else { (base, "gauge") };
            header(out, &name, metric.description(), kind);
            let mut lines: Vec<String> =
                sum.data_points().map(|p| sample(&name, &labels(p.attributes(), None), p.value())).collect();
            lines.sort_unstable();
            lines.iter().for_each(|line| out.push_str(line));
        }
        MetricData::Gauge(gauge) => {
            header(out, &base, metric.description(), "gauge");
            let mut lines: Vec<String> =
                gauge.data_points().map(|p| sample(&base, &labels(p.attributes(), None), p.value())).collect();
            lines.sort_unstable();
            lines.iter().for_each(|line| out.push_str(line));
        }
        MetricData::Histogram(histogram) => {
            header(out, &base, metric.description(), "histogram");
            let mut points: Vec<_> = histogram.data_points().collect();
            points.sort_by_cached_key(|p| labels(p.attributes(), None));
            for point in points {
                // OpenTelemetry counts per bucket; Prometheus buckets are cumulative.
                let mut cumulative = 0u64;
                let mut counts = point.bucket_counts();
                for bound in point.bounds() {
                    cumulative += counts.next().unwrap_or(0);
                    let le = labels(point.attributes(), Some(&bound.to_string()));
                    out.push_str(&sample(&format!("{base}_bucket"), &le, cumulative));
                }
                let le = labels(point.attributes(), Some("+Inf"));
                out.push_str(&sample(&format!("{base}_bucket"), &le, point.count()));
                let plain = labels(point.attributes(), None);
                out.push_str(&sample(&format!("{base}_sum"), &plain, point.sum()));
                out.push_str(&sample(&format!("{base}_count"), &plain, point.count()));
            }
        }
        // Not used by this service; Prometheus text has no native form for it.
        MetricData::ExponentialHistogram(_) => {}
    }
}

fn header(out: &mut String, name: &str, help: &str, kind: &str) {
    if !help.is_empty() {
        let help = help.replace('\\', "\\\\").replace('\n', "\\n");
        let _ = writeln!(out, "# HELP {name} {help}");
    }
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn sample(name: &str, labels: &str, value: impl Display) -> String {
    format!("{name}{labels} {value}\n")
}

/// `{a="x",b="y"}` sorted by key, `le` last; empty when there is no label.
fn labels<'a>(attributes: impl Iterator<Item = &'a KeyValue>, le: Option<&str>) -> String {
    let mut pairs: Vec<(String, String)> =
        attributes.map(|kv| (sanitize(kv.key.as_str()), escape(&kv.value.as_str()))).collect();
    pairs.sort_unstable();
    if let Some(le) = le {
        pairs.push(("le".into(), le.into()));
    }
    if pairs.is_empty() {
        return String::new();
    }
    let body = pairs.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect::<Vec<_>>().join(",");
    format!("{{{body}}}")
}

fn base_name(name: &str, unit: &str) -> String {
    let mut base = sanitize(name);
    let suffix = match unit {
        "" | "1" => "",
        // `{request}`-style annotations are not units.
        u if u.starts_with('{') => "",
        "s" => "seconds",
        "ms" => "milliseconds",
        "By" => "bytes",
        other => other,
    };
    if !suffix.is_empty() && !base.ends_with(suffix) {
        base.push('_');
        base.push_str(&sanitize(suffix));
    }
    base
}

fn sanitize(name: &str) -> String {
    let mut out: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == ':' { c } else { '_' }).collect();
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use opentelemetry::metrics::MeterProvider as _;
    use opentelemetry_sdk::metrics::{ManualReader, SdkMeterProvider};

    use super::*;
    use crate::metrics::SharedReader;
    use opentelemetry_sdk::metrics::reader::MetricReader as _;

    fn collect(record: impl FnOnce(&opentelemetry::metrics::Meter)) -> String {
        let reader = SharedReader(std::sync::Arc::new(ManualReader::builder().build()));
        let provider = SdkMeterProvider::builder().with_reader(reader.clone()).build();
        record(&provider.meter("test"));
        let mut collected = ResourceMetrics::default();
        reader.collect(&mut collected).unwrap();
        render(&collected)
    }

    #[test]
    fn counters_get_total_and_sorted_escaped_labels() {
        let text = collect(|meter| {
            let counter = meter.u64_counter("audit.rpc.requests").with_unit("{request}").with_description("Hi").build();
            counter.add(2, &[KeyValue::new("rpc", "a/B"), KeyValue::new("code", "OK")]);
            counter.add(1, &[KeyValue::new("rpc", "say \"hi\""), KeyValue::new("code", "OK")]);
        });
        assert_eq!(
            text,
            "# HELP audit_rpc_requests_total Hi\n# TYPE audit_rpc_requests_total counter\n\
             audit_rpc_requests_total{code=\"OK\",rpc=\"a/B\"} 2\n\
             audit_rpc_requests_total{code=\"OK\",rpc=\"say \\\"hi\\\"\"} 1\n"
        );
    }

    #[test]
    fn histograms_are_cumulative_with_unit_suffix() {
        let text = collect(|meter| {
            let histogram = meter.f64_histogram("audit.rpc.duration").with_unit("s").with_boundaries(vec![0.1, 1.0]);
            let histogram = histogram.build();
            for value in [0.05, 0.5, 0.7, 3.0] {
                histogram.record(value, &[KeyValue::new("rpc", "x")]);
            }
        });
        assert!(text.contains("# TYPE audit_rpc_duration_seconds histogram\n"), "{text}");
        assert!(text.contains("audit_rpc_duration_seconds_bucket{rpc=\"x\",le=\"0.1\"} 1\n"), "{text}");
        assert!(text.contains("audit_rpc_duration_seconds_bucket{rpc=\"x\",le=\"1\"} 3\n"), "{text}");
        assert!(text.contains("audit_rpc_duration_seconds_bucket{rpc=\"x\",le=\"+Inf\"} 4\n"), "{text}");
        assert!(text.contains("audit_rpc_duration_seconds_sum{rpc=\"x\"} 4.25\n"), "{text}");
        assert!(text.contains("audit_rpc_duration_seconds_count{rpc=\"x\"} 4\n"), "{text}");
    }

    #[test]
    fn up_down_counters_and_gauges_are_gauges() {
        let text = collect(|meter| {
            meter.i64_up_down_counter("audit.rpc.in_flight").build().add(-1, &[]);
        });
        assert_eq!(text, "# TYPE audit_rpc_in_flight gauge\naudit_rpc_in_flight -1\n");
    }
}
