//! Telemetry: one [`init_telemetry`] per process (tracing with a `RUST_LOG`
//! filter, pretty or JSON logs, an OpenTelemetry tracer that always runs so trace
//! ids propagate, and an optional OTLP exporter), trace context across gRPC and
//! Kafka ([`propagation`]), and the platform's [`Metrics`].
//!
//! Rule: no person identifier, health fact or secret in any log line, span field
//! or metric attribute. Spans carry organisation codes, topics, offsets, event
//! types and ids that Throughcare itself minted.

mod metrics;
pub mod propagation;

pub use metrics::Metrics;
pub use propagation::{GrpcTelemetryLayer, TraceHeaders, TraceInterceptor};

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider};
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanExporter};
use serde::{Deserialize, Serialize};
use std::time::Duration;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    #[default]
    Pretty,
    Json,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TelemetryConfig {
    #[serde(default)]
    pub log_format: LogFormat,
    /// Used when `RUST_LOG` is unset.
    #[serde(default = "default_filter")]
    pub log_filter: String,
    /// Which spans are traced (exported and propagated), independent of logging.
    #[serde(default = "default_filter")]
    pub trace_filter: String,
    /// OTLP/gRPC collector, e.g. `http://otel-collector:4317`; traces and
    /// metrics are exported there when set.
    #[serde(default)]
    pub otlp_endpoint: Option<String>,
}

fn default_filter() -> String {
    "info".to_owned()
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        Self {
            log_format: LogFormat::Pretty,
            log_filter: default_filter(),
            trace_filter: default_filter(),
            otlp_endpoint: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("otlp exporter: {0}")]
    Exporter(#[from] opentelemetry_otlp::ExporterBuildError),
    #[error("log filter: {0}")]
    Filter(#[from] tracing_subscriber::filter::ParseError),
    #[error("a global tracing subscriber is already installed: {0}")]
    AlreadyInstalled(#[from] tracing_subscriber::util::TryInitError),
}

/// Keeps the telemetry pipeline alive; dropping it flushes and shuts down the
/// exporters (the last step of a graceful shutdown).
#[derive(Debug)]
pub struct TelemetryGuard {
    tracer_provider: SdkTracerProvider,
    meter_provider: SdkMeterProvider,
}

impl TelemetryGuard {
    /// The platform's instruments, to pass down to whatever records them.
    pub fn metrics(&self) -> Metrics {
        Metrics::new(&self.meter_provider)
    }

    pub fn flush(&self) {
        let _ = self.tracer_provider.force_flush();
        let _ = self.meter_provider.force_flush();
    }
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        self.flush();
        let _ = self.tracer_provider.shutdown();
        let _ = self.meter_provider.shutdown();
    }
}

/// Installs the process's tracing subscriber and OpenTelemetry providers.
pub fn init_telemetry(
    service_name: &str,
    config: &TelemetryConfig,
) -> Result<TelemetryGuard, TelemetryError> {
    TelemetryBuilder::new(service_name, config).install()
}

/// [`init_telemetry`] with extra exporters (tests use in-memory ones).
#[derive(Debug)]
pub struct TelemetryBuilder {
    service_name: String,
    config: TelemetryConfig,
    tracer: opentelemetry_sdk::trace::TracerProviderBuilder,
    meter: opentelemetry_sdk::metrics::MeterProviderBuilder,
}

impl TelemetryBuilder {
    pub fn new(service_name: &str, config: &TelemetryConfig) -> Self {
        let resource = Resource::builder()
            .with_service_name(service_name.to_owned())
            .build();
        Self {
            service_name: service_name.to_owned(),
            config: config.clone(),
            tracer: SdkTracerProvider::builder().with_resource(resource.clone()),
            meter: SdkMeterProvider::builder().with_resource(resource),
        }
    }

    /// Exports every finished span synchronously to `exporter`.
    pub fn with_span_exporter(mut self, exporter: impl SpanExporter + 'static) -> Self {
        self.tracer = self.tracer.with_simple_exporter(exporter);
        self
    }

    /// Exports metrics periodically (and on flush) to `exporter`.
    pub fn with_metric_exporter(
        mut self,
        exporter: impl opentelemetry_sdk::metrics::exporter::PushMetricExporter,
    ) -> Self {
        self.meter = self.meter.with_periodic_exporter(exporter);
        self
    }

    pub fn install(self) -> Result<TelemetryGuard, TelemetryError> {
        let mut tracer = self.tracer;
        let mut meter = self.meter;
        if let Some(endpoint) = &self.config.otlp_endpoint {
            let spans = opentelemetry_otlp::SpanExporter::builder()
                .with_tonic()
                .with_endpoint(endpoint)
                .build()?;
            tracer = tracer.with_batch_exporter(spans);
            let metrics = opentelemetry_otlp::MetricExporter::builder()
                .with_tonic()
                .with_endpoint(endpoint)
                .build()?;
            meter = meter.with_reader(
                PeriodicReader::builder(metrics)
                    .with_interval(Duration::from_secs(15))
                    .build(),
            );
        }
        let tracer_provider = tracer.build();
        let meter_provider = meter.build();

        let log_filter = match std::env::var("RUST_LOG") {
            Ok(from_env) if !from_env.is_empty() => EnvFilter::try_new(from_env)?,
            _ => EnvFilter::try_new(&self.config.log_filter)?,
        };
        let fmt = match self.config.log_format {
            LogFormat::Pretty => tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_target(true)
                .boxed(),
            LogFormat::Json => tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .json()
                .flatten_event(true)
                .with_current_span(true)
                .boxed(),
        };
        let otel = tracing_opentelemetry::layer()
            .with_tracer(tracer_provider.tracer(self.service_name))
            .with_filter(EnvFilter::try_new(&self.config.trace_filter)?);
        tracing_subscriber::registry()
            .with(fmt.with_filter(log_filter))
            .with(otel)
            .try_init()?;
        Ok(TelemetryGuard {
            tracer_provider,
            meter_provider,
        })
    }
}
