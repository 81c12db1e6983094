//! Logs, traces and metrics: one `init` for the binary, one for tests.
//!
//! Traces and metrics are exported over OTLP/gRPC when `OTEL_EXPORTER_OTLP_ENDPOINT` is set
//! (the exporter reads the standard `OTEL_*` variables); metrics are also kept for a
//! Prometheus scrape when asked for ([`crate::metrics::PrometheusEndpoint`]). W3C trace context travels in gRPC
//! metadata: [`server_span`] continues the caller's trace, [`TraceContextInterceptor`]
//! hands the current one to the callee.

use std::sync::OnceLock;

use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Default)]
pub enum LogFormat {
    /// Human-readable lines, for a terminal.
    #[default]
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// Flushes and shuts down the exporters when dropped (at the end of `main`).
pub struct TelemetryGuard {
    tracer_provider: Option<SdkTracerProvider>,
    meter_provider: Option<SdkMeterProvider>,
    prometheus: Option<prometheus::Registry>,
}

impl TelemetryGuard {
    /// The registry a Prometheus scrape reads, when `init` was asked for one.
    pub fn prometheus_registry(&self) -> Option<prometheus::Registry> {
        self.prometheus.clone()
    }
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(provider) = self.tracer_provider.take()
            && let Err(error) = provider.shutdown()
        {
            eprintln!("flushing traces failed: {error}");
        }
        if let Some(provider) = self.meter_provider.take()
            && let Err(error) = provider.shutdown()
        {
            eprintln!("flushing metrics failed: {error}");
        }
    }
}

fn propagator() -> &'static TraceContextPropagator {
    static PROPAGATOR: OnceLock<TraceContextPropagator> = OnceLock::new();
    PROPAGATOR.get_or_init(TraceContextPropagator::new)
}

/// Installs the global subscriber: `RUST_LOG` filtering (default `info`), text or JSON
/// logs on stderr, OTLP export of spans and metrics when an endpoint is configured, and
/// with `prometheus` a registry of the metrics for a scrape endpoint.
pub fn init(
    service_name: &str,
    format: LogFormat,
    prometheus: bool,
) -> anyhow::Result<TelemetryGuard> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::new("info,h2=warn,hyper=warn,tower=warn,sqlx=warn,async_nats=warn")
    });
    let fmt_layer = match format {
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_writer(std::io::stderr)
            .boxed(),
    };

    let otlp_enabled = std::env::var_os("OTEL_EXPORTER_OTLP_ENDPOINT").is_some();
    let mut guard = TelemetryGuard {
        tracer_provider: None,
        meter_provider: None,
        prometheus: None,
    };
    let resource = Resource::builder()
        .with_service_name(service_name.to_owned())
        .build();
    if otlp_enabled || prometheus {
        let mut meters = SdkMeterProvider::builder().with_resource(resource.clone());
        if otlp_enabled {
            let metrics = opentelemetry_otlp::MetricExporter::builder()
                .with_tonic()
                .build()?;
            meters = meters.with_periodic_exporter(metrics);
        }
        if prometheus {
            let registry = prometheus::Registry::new();
            let reader = opentelemetry_prometheus::exporter()
                .with_registry(registry.clone())
                .build()?;
            meters = meters.with_reader(reader);
            guard.prometheus = Some(registry);
        }
        let meter_provider = meters.build();
        opentelemetry::global::set_meter_provider(meter_provider.clone());
        guard.meter_provider = Some(meter_provider);
    }
    let otel_layer = if otlp_enabled {
        let spans = opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .build()?;
        let tracer_provider = SdkTracerProvider::builder()
            .with_batch_exporter(spans)
            .with_resource(resource)
            .build();
        let tracer = tracer_provider.tracer("lyceum");
        opentelemetry::global::set_tracer_provider(tracer_provider.clone());
        guard.tracer_provider = Some(tracer_provider);
        Some(tracing_opentelemetry::layer().with_tracer(tracer))
    } else {
        None
    };
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());

    tracing_subscriber::registry()
        .with(filter)
        .with(fmt_layer)
        .with(otel_layer)
        .try_init()?;
    Ok(guard)
}

/// Test logging: silent unless `TEST_LOG` is set. Safe to call from every test.
pub fn init_for_tests() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        if std::env::var_os("TEST_LOG").is_some() {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(
                    EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("debug")),
                )
                .with_test_writer()
                .try_init();
        }
    });
}

struct HeaderExtractor<'a>(&'a http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

struct MetadataInjector<'a>(&'a mut tonic::metadata::MetadataMap);

impl Injector for MetadataInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(key), Ok(value)) = (
            tonic::metadata::MetadataKey::from_bytes(key.as_bytes()),
            value.parse(),
        ) {
            self.0.insert(key, value);
        }
    }
}

/// The span of one incoming RPC, continuing the caller's trace when the request carries
/// a `traceparent` header. Used as the server's `trace_fn`.
pub fn server_span(request: &http::Request<()>) -> tracing::Span {
    let path = request.uri().path();
    let (service, method) = path
        .trim_start_matches('/')
        .split_once('/')
        .unwrap_or((path, ""));
    let span = tracing::info_span!(
        "grpc.request",
        otel.name = %path,
        otel.kind = "server",
        rpc.system = "grpc",
        rpc.service = %service,
        rpc.method = %method,
    );
    let parent = propagator().extract(&HeaderExtractor(request.headers()));
    let _ = span.set_parent(parent);
    span
}

/// Client interceptor that writes the current trace context into the request metadata.
#[derive(Clone, Copy, Default)]
pub struct TraceContextInterceptor;

impl tonic::service::Interceptor for TraceContextInterceptor {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        let context = tracing::Span::current().context();
        propagator().inject_context(&context, &mut MetadataInjector(request.metadata_mut()));
        Ok(request)
    }
}

/// The current span's W3C trace context, for an event envelope.
pub fn current_trace_context() -> lyceum_proto::events::v1::TraceContext {
    let mut carrier = std::collections::HashMap::new();
    propagator().inject_context(&tracing::Span::current().context(), &mut carrier);
    lyceum_proto::events::v1::TraceContext {
        traceparent: carrier.remove("traceparent").unwrap_or_default(),
        tracestate: carrier.remove("tracestate").unwrap_or_default(),
    }
}

/// Makes `span` a child of the trace an event was produced in.
pub fn continue_trace(span: &tracing::Span, context: &lyceum_proto::events::v1::TraceContext) {
    let mut carrier = std::collections::HashMap::new();
    if !context.traceparent.is_empty() {
        carrier.insert("traceparent".to_owned(), context.traceparent.clone());
    }
    if !context.tracestate.is_empty() {
        carrier.insert("tracestate".to_owned(), context.tracestate.clone());
    }
    let _ = span.set_parent(propagator().extract(&carrier));
}

#[cfg(test)]
mod tests {
    use tonic::service::Interceptor;

    use super::*;

    #[test]
    fn the_callers_trace_continues_through_the_server_span_to_outgoing_calls() {
        let provider = SdkTracerProvider::builder().build();
        let subscriber = tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
        tracing::subscriber::with_default(subscriber, || {
            let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
            let incoming = http::Request::builder()
                .uri("/lyceum.identity.v1.UserService/GetUser")
                .header("traceparent", format!("00-{trace_id}-00f067aa0ba902b7-01"))
                .body(())
                .unwrap();
            let span = server_span(&incoming);
            let _entered = span.enter();
            let outgoing = TraceContextInterceptor
                .call(tonic::Request::new(()))
                .unwrap();
            let traceparent = outgoing
                .metadata()
                .get("traceparent")
                .expect("trace context injected")
                .to_str()
                .unwrap()
                .to_owned();
            assert!(traceparent.contains(trace_id), "{traceparent}");
            assert!(
                !traceparent.contains("00f067aa0ba902b7"),
                "a child span, not the caller's"
            );
        });
    }
}
