//! RED metrics of every RPC and the Prometheus scrape endpoint.
//!
//! Each RPC records one `rpc.server.duration` measurement (milliseconds) with the
//! attributes of the OpenTelemetry RPC semantic conventions: `rpc.system` = `grpc`,
//! `rpc.service`, `rpc.method` and `rpc.grpc.status_code`. Rate and errors are the
//! histogram's count, in total and by status code. The measurements go through the global
//! meter provider, so they leave over OTLP with the traces and show on `/metrics` next to
//! the event path's metrics.

use std::collections::HashSet;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use anyhow::Context as _;
use bytes::Bytes;
use futures::future::BoxFuture;
use http_body::{Frame, SizeHint};
use opentelemetry::KeyValue;
use opentelemetry::metrics::Histogram;
use prost::Message as _;
use tokio::net::TcpListener;

/// The service and method of calls to paths that no served service has: a label value of
/// its own, so that made-up paths cannot create series without bound.
const OTHER: &str = "_OTHER";

/// Measures every RPC of the server it wraps.
#[derive(Clone)]
pub struct RpcMetricsLayer {
    shared: Arc<Shared>,
}

struct Shared {
    duration: Histogram<f64>,
    /// `/package.Service/Method` of every method the server serves.
    known_paths: HashSet<String>,
}

impl RpcMetricsLayer {
    /// Measures the methods of the given fully qualified services; calls to anything else
    /// are counted under `_OTHER`.
    pub fn new<'a>(served_services: impl IntoIterator<Item = &'a str>) -> Self {
        let served: HashSet<&str> = served_services.into_iter().collect();
        let mut known_paths = HashSet::new();
        for encoded in [
            lyceum_proto::FILE_DESCRIPTOR_SET,
            tonic_health::pb::FILE_DESCRIPTOR_SET,
            tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET,
            tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
        ] {
            let Ok(set) = prost_types::FileDescriptorSet::decode(encoded) else {
                continue;
            };
            for file in set.file {
                let package = file.package.unwrap_or_default();
                for service in file.service {
                    let name = format!("{package}.{}", service.name.unwrap_or_default());
                    if !served.contains(name.as_str()) {
                        continue;
                    }
                    for method in service.method {
                        known_paths.insert(format!("/{name}/{}", method.name.unwrap_or_default()));
                    }
                }
            }
        }
        let duration = opentelemetry::global::meter("lyceum")
            .f64_histogram("rpc.server.duration")
            .with_unit("ms")
            .with_description(
                "Duration of RPCs handled by the server, by service, method and status code",
            )
            .build();
        Self {
            shared: Arc::new(Shared {
                duration,
                known_paths,
            }),
        }
    }
}

impl Shared {
    /// `rpc.service` and `rpc.method` of a request path.
    fn labels(&self, path: &str) -> (String, String) {
        match path.trim_start_matches('/').split_once('/') {
            Some((service, method)) if self.known_paths.contains(path) => {
                (service.to_owned(), method.to_owned())
            }
            _ => (OTHER.to_owned(), OTHER.to_owned()),
        }
    }
}

impl<S> tower::Layer<S> for RpcMetricsLayer {
    type Service = RpcMetrics<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RpcMetrics {
            inner,
            shared: self.shared.clone(),
        }
    }
}

#[derive(Clone)]
pub struct RpcMetrics<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S, ReqBody> tower::Service<http::Request<ReqBody>> for RpcMetrics<S>
where
    S: tower::Service<http::Request<ReqBody>, Response = http::Response<tonic::body::Body>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    ReqBody: Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<ReqBody>) -> Self::Future {
        let mut call = Call::start(self.shared.clone(), request.uri().path());
        // The clone is the one that was polled ready; keep it, leave a fresh one behind.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(async move {
            let response = match inner.call(request).await {
                Ok(response) => response,
                Err(error) => {
                    call.status(tonic::Code::Unknown);
                    return Err(error);
                }
            };
            let (parts, body) = response.into_parts();
            // Refusals and errors come as trailers-only responses, status in the headers.
            if let Some(code) = grpc_status(&parts.headers) {
                call.status(code);
            }
            let body = tonic::body::Body::new(MeasuredBody { inner: body, call });
            Ok(http::Response::from_parts(parts, body))
        })
    }
}

/// One RPC being measured; recorded when dropped, that is when the response has been sent,
/// or abandoned (a deadline, a client gone).
struct Call {
    shared: Arc<Shared>,
    service: String,
    method: String,
    started: Instant,
    code: Option<tonic::Code>,
    ended: bool,
}

impl Call {
    fn start(shared: Arc<Shared>, path: &str) -> Self {
        let (service, method) = shared.labels(path);
        Self {
            shared,
            service,
            method,
            started: Instant::now(),
            code: None,
            ended: false,
        }
    }

    fn status(&mut self, code: tonic::Code) {
        self.code.get_or_insert(code);
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        let code = self.code.unwrap_or(if self.ended {
            // A response that ended without a status: what gRPC clients read as UNKNOWN.
            tonic::Code::Unknown
        } else {
            // Dropped before the end: tonic's deadline or the client going away.
            tonic::Code::Cancelled
        });
        let attributes = [
            KeyValue::new("rpc.system", "grpc"),
            KeyValue::new("rpc.service", std::mem::take(&mut self.service)),
            KeyValue::new("rpc.method", std::mem::take(&mut self.method)),
            KeyValue::new("rpc.grpc.status_code", code as i64),
        ];
        let elapsed = self.started.elapsed().as_secs_f64() * 1000.0;
        self.shared.duration.record(elapsed, &attributes);
    }
}

fn grpc_status(headers: &http::HeaderMap) -> Option<tonic::Code> {
    let value = headers.get("grpc-status")?;
    Some(tonic::Code::from_bytes(value.as_bytes()))
}

/// The response body, watched for the status in its trailers.
struct MeasuredBody {
    inner: tonic::body::Body,
    call: Call,
}

impl http_body::Body for MeasuredBody {
    type Data = Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, tonic::Status>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(code) = frame.trailers_ref().and_then(grpc_status) {
                    this.call.status(code);
                }
            }
            Poll::Ready(Some(Err(status))) => this.call.status(status.code()),
            Poll::Ready(None) => this.call.ended = true,
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// `GET /metrics` in the Prometheus text format, on a port of its own so that scraping
/// needs neither gRPC nor a token.
pub struct PrometheusEndpoint {
    listener: TcpListener,
    registry: prometheus::Registry,
}

impl PrometheusEndpoint {
    /// Binds the address (port 0 picks a free port; see [`PrometheusEndpoint::local_addr`]).
    pub async fn bind(listen: SocketAddr, registry: prometheus::Registry) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen on {listen} for metrics"))?;
        Ok(Self { listener, registry })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// Serves scrapes for as long as the process runs.
    pub async fn run(self) {
        tracing::info!(addr = %self.local_addr(), "serving Prometheus metrics on /metrics");
        loop {
            let stream = match self.listener.accept().await {
                Ok((stream, _)) => stream,
                Err(error) => {
                    // Out of file descriptors, typically: wait rather than spin.
                    tracing::warn!(error = %error, "accepting a metrics connection failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            };
            let registry = self.registry.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request| {
                    let response = scrape(&registry, &request);
                    async move { Ok::<_, Infallible>(response) }
                });
                // With a timer, hyper closes connections whose headers do not come in time.
                let served = hyper::server::conn::http1::Builder::new()
                    .timer(hyper_util::rt::TokioTimer::new())
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
                if let Err(error) = served {
                    tracing::debug!(error = %error, "metrics connection ended with an error");
                }
            });
        }
    }
}

fn scrape<B>(
    registry: &prometheus::Registry,
    request: &http::Request<B>,
) -> http::Response<http_body_util::Full<Bytes>> {
    use prometheus::Encoder as _;
    let plain = |status: http::StatusCode, text: &'static str| {
        let mut response = http::Response::new(http_body_util::Full::new(Bytes::from(text)));
        *response.status_mut() = status;
        response
    };
    if request.uri().path() != "/metrics" {
        return plain(
            http::StatusCode::NOT_FOUND,
            "not found; metrics are on /metrics\n",
        );
    }
    if request.method() != http::Method::GET && request.method() != http::Method::HEAD {
        return plain(http::StatusCode::METHOD_NOT_ALLOWED, "GET /metrics\n");
    }
    let encoder = prometheus::TextEncoder::new();
    let mut text = Vec::new();
    if let Err(error) = encoder.encode(&registry.gather(), &mut text) {
        tracing::warn!(error = %error, "encoding metrics failed");
        return plain(
            http::StatusCode::INTERNAL_SERVER_ERROR,
            "encoding metrics failed\n",
        );
    }
    let mut response = http::Response::new(http_body_util::Full::new(Bytes::from(text)));
    if let Ok(value) = http::HeaderValue::from_str(encoder.format_type()) {
        response
            .headers_mut()
            .insert(http::header::CONTENT_TYPE, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_served_methods_get_labels_of_their_own() {
        let layer =
            RpcMetricsLayer::new(["lyceum.identity.v1.UserService", "grpc.health.v1.Health"]);
        let labels = |path: &str| layer.shared.labels(path);
        let pair = |service: &str, method: &str| (service.to_owned(), method.to_owned());
        assert_eq!(
            labels("/lyceum.identity.v1.UserService/CreateUser"),
            pair("lyceum.identity.v1.UserService", "CreateUser")
        );
        assert_eq!(
            labels("/grpc.health.v1.Health/Check"),
            pair("grpc.health.v1.Health", "Check")
        );
        for unknown in [
            "/lyceum.identity.v1.UserService/MadeUp",
            "/lyceum.learning.v1.CourseService/GetCourse",
            "/nothing",
            "",
        ] {
            assert_eq!(labels(unknown), pair(OTHER, OTHER), "{unknown}");
        }
    }
}
