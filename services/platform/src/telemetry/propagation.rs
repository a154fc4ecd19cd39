//! W3C trace context across process boundaries: extracted from incoming gRPC
//! requests ([`GrpcTelemetryLayer`]), injected into outgoing ones
//! ([`TraceInterceptor`]), and carried on Kafka records as `traceparent` /
//! `tracestate` headers ([`TraceHeaders`]).

use super::Metrics;
use futures::future::BoxFuture;
use opentelemetry::Context;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use std::collections::HashMap;
use std::task::{Context as TaskContext, Poll};
use std::time::Instant;
use tonic::metadata::{MetadataKey, MetadataValue};
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The W3C trace context of one record or request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TraceHeaders {
    pub traceparent: Option<String>,
    pub tracestate: Option<String>,
}

/// A `traceparent` that starts a new, sampled trace (random trace and span ids).
fn new_root() -> String {
    let trace = uuid::Uuid::new_v4().simple().to_string();
    let span = &uuid::Uuid::new_v4().simple().to_string()[..16];
    format!("00-{trace}-{span}-01")
}

impl TraceHeaders {
    /// The context of the current span, or — where work runs outside any
    /// traced span (a background task, a stream's producer) — a new trace, so
    /// that every record begins or continues one.
    pub fn current() -> Self {
        let mut carrier = HashMap::new();
        TraceContextPropagator::new()
            .inject_context(&tracing::Span::current().context(), &mut carrier);
        Self {
            traceparent: carrier.remove("traceparent").or_else(|| Some(new_root())),
            tracestate: carrier.remove("tracestate").filter(|s| !s.is_empty()),
        }
    }

    /// The remote context these headers describe (empty if they describe none).
    pub fn context(&self) -> Context {
        let mut carrier = HashMap::new();
        if let Some(p) = &self.traceparent {
            carrier.insert("traceparent".to_owned(), p.clone());
        }
        if let Some(s) = &self.tracestate {
            carrier.insert("tracestate".to_owned(), s.clone());
        }
        TraceContextPropagator::new().extract(&carrier)
    }

    /// Makes `span` a child of the context these headers describe.
    pub fn adopt(&self, span: &tracing::Span) {
        if self.traceparent.is_some() {
            // Fails only if the span is disabled; then there is nothing to link.
            let _ = span.set_parent(self.context());
        }
    }
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

/// Tower layer for the gRPC server: one span per call, parented on the caller's
/// `traceparent`, and the call's latency recorded in [`Metrics`].
#[derive(Clone, Debug)]
pub struct GrpcTelemetryLayer {
    metrics: Metrics,
}

impl GrpcTelemetryLayer {
    pub fn new(metrics: Metrics) -> Self {
        Self { metrics }
    }
}

impl<S> tower::Layer<S> for GrpcTelemetryLayer {
    type Service = GrpcTelemetry<S>;

    fn layer(&self, inner: S) -> Self::Service {
        GrpcTelemetry {
            inner,
            metrics: self.metrics.clone(),
        }
    }
}

#[derive(Clone, Debug)]
pub struct GrpcTelemetry<S> {
    inner: S,
    metrics: Metrics,
}

impl<S, B, R> tower::Service<http::Request<B>> for GrpcTelemetry<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<R>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let method = request.uri().path().to_owned();
        let span = tracing::info_span!(
            "grpc",
            otel.name = %method,
            otel.kind = "server",
            rpc.system = "grpc",
            rpc.method = %method,
            rpc.grpc.status_code = tracing::field::Empty,
            caller.organisation = tracing::field::Empty,
        );
        let _ = span
            .set_parent(TraceContextPropagator::new().extract(&HeaderExtractor(request.headers())));
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let metrics = self.metrics.clone();
        let started = Instant::now();
        Box::pin(
            async move {
                let result = inner.call(request).await;
                let status = match &result {
                    Ok(response) => response
                        .headers()
                        .get("grpc-status")
                        .and_then(|s| s.to_str().ok())
                        .unwrap_or("0")
                        .to_owned(),
                    Err(_) => "transport".to_owned(),
                };
                tracing::Span::current().record("rpc.grpc.status_code", status.as_str());
                metrics.record_rpc(&method, &status, started.elapsed());
                result
            }
            .instrument(span),
        )
    }
}

/// Client interceptor that sends the current span's context as `traceparent`.
#[derive(Clone, Copy, Debug, Default)]
pub struct TraceInterceptor;

impl tonic::service::Interceptor for TraceInterceptor {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        let mut injector = MetadataInjector(request.metadata_mut());
        TraceContextPropagator::new()
            .inject_context(&tracing::Span::current().context(), &mut injector);
        Ok(request)
    }
}

struct MetadataInjector<'a>(&'a mut tonic::metadata::MetadataMap);

impl Injector for MetadataInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(key), Ok(value)) = (
            MetadataKey::from_bytes(key.as_bytes()),
            MetadataValue::try_from(value),
        ) {
            self.0.insert(key, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::trace::TraceContextExt;

    #[test]
    fn outside_any_span_a_record_starts_a_new_trace() {
        let first = TraceHeaders::current().traceparent.expect("a traceparent");
        let second = TraceHeaders::current().traceparent.expect("a traceparent");
        let parts: Vec<&str> = first.split('-').collect();
        assert_eq!(parts.len(), 4);
        assert_eq!((parts[0], parts[3]), ("00", "01"));
        assert_eq!((parts[1].len(), parts[2].len()), (32, 16));
        assert_ne!(first, second, "each is a trace of its own");
        assert!(
            TraceHeaders::current()
                .context()
                .span()
                .span_context()
                .is_valid()
        );
    }
}
