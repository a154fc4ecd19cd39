use super::IdentityServiceImpl;
use super::admission::{Admission, Admitted};
use crate::bus::{ConsumerHealth, DEAD_LETTER_SCAN, DeadLetterWatch, STALL_AFTER};
use crate::config::InFlightLimits;
use crate::config::TlsConfig;
use crate::identity::Authenticator;
use crate::telemetry::{GrpcTelemetryLayer, Metrics};
use std::convert::Infallible;
use std::time::Duration;
use throughcare_proto::identity::v1::identity_service_server::IdentityServiceServer;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::body::Body;
use tonic::codegen::InterceptedService;
use tonic::server::NamedService;
use tonic::service::RoutesBuilder;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Certificate, Identity, Server, ServerTlsConfig};
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

/// How long calls in flight (and open streams) may take to finish after
/// shutdown begins before their connections are closed.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// The grpc.health.v1 service name that answers NOT_SERVING while any of the
/// service's dead letters awaits a replay (the service itself keeps serving:
/// restarting it would not help).
pub const DEAD_LETTERS_HEALTH: &str = "throughcare.dead_letters";

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("reading tls file {path}: {source}")]
    TlsFile {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("grpc transport: {0}")]
    Transport(#[from] tonic::transport::Error),
    #[error("reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
}

/// A gRPC server under construction: add the service's authenticated services,
/// then [`GrpcServer::serve`].
#[derive(Debug)]
pub struct GrpcServer {
    authenticator: Authenticator,
    admission: Admission,
    routes: RoutesBuilder,
    serving: Vec<&'static str>,
    consumers: Option<ConsumerHealth>,
    dead_letters: Option<DeadLetterWatch>,
}

impl GrpcServer {
    /// Starts with the identity service; health and reflection are added by `serve`.
    pub fn new(authenticator: Authenticator) -> Self {
        let mut server = Self {
            authenticator,
            admission: Admission::default(),
            routes: RoutesBuilder::default(),
            serving: Vec::new(),
            consumers: None,
            dead_letters: None,
        };
        server.add_authenticated(IdentityServiceServer::new(IdentityServiceImpl));
        server
    }

    /// Answers NOT_SERVING on grpc.health.v1 (and logs why) while any of the
    /// process's consumers is stalled, SERVING again once it consumes.
    pub fn watch_consumers(&mut self, consumers: ConsumerHealth) -> &mut Self {
        self.consumers = Some(consumers);
        self
    }

    /// Answers NOT_SERVING for [`DEAD_LETTERS_HEALTH`] (and logs it) while any
    /// of the watched groups' dead letters awaits a replay.
    pub fn watch_dead_letters(&mut self, watch: DeadLetterWatch) -> &mut Self {
        self.dead_letters = Some(watch);
        self
    }

    /// Adds a service whose every call must be authenticated.
    pub fn add_authenticated<S>(&mut self, service: S) -> &mut Self
    where
        S: tower::Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>
            + NamedService
            + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send + 'static,
    {
        self.serving.push(S::NAME);
        let admitted = Admitted::new(service, self.admission.clone());
        self.routes.add_service(InterceptedService::new(
            admitted,
            self.authenticator.clone(),
        ));
        self
    }

    /// Bounds the calls in flight, per caller organisation and in all.
    pub fn limit_in_flight(&mut self, limits: InFlightLimits) -> &mut Self {
        self.admission.set_limits(limits);
        self
    }

    /// Serves on `listener` until `shutdown` is cancelled: then stops accepting,
    /// lets calls in flight finish, and returns.
    pub async fn serve(
        mut self,
        listener: TcpListener,
        tls: Option<&TlsConfig>,
        metrics: Metrics,
        shutdown: CancellationToken,
    ) -> Result<(), ServeError> {
        let health = self.add_health_and_reflection(&shutdown).await?;
        let mut builder = Server::builder().http2_keepalive_interval(Some(Duration::from_secs(30)));
        if let Some(tls) = tls {
            builder = builder.tls_config(self.tls_config(tls)?)?;
        }
        let addr = listener.local_addr().ok();
        tracing::info!(?addr, tls = tls.is_some(), "grpc server listening");
        let on_shutdown = {
            let health = health.clone();
            let serving = self.serving.clone();
            let shutdown = shutdown.clone();
            async move {
                shutdown.cancelled().await;
                for name in serving {
                    health
                        .set_service_status(name, ServingStatus::NotServing)
                        .await;
                }
            }
        };
        let serving = builder
            .layer(GrpcTelemetryLayer::new(metrics))
            .add_routes(self.routes.routes())
            // tonic's own tcp_nodelay applies only to listeners it binds; set it on
            // ours too, or small responses wait ~40 ms on Nagle and delayed ACKs.
            .serve_with_incoming_shutdown(
                TcpIncoming::from(listener).with_nodelay(Some(true)),
                on_shutdown,
            );
        let drain_deadline = async {
            shutdown.cancelled().await;
            tokio::time::sleep(DRAIN_TIMEOUT).await;
        };
        tokio::select! {
            served = serving => served?,
            () = drain_deadline => {
                tracing::warn!(?addr, timeout = ?DRAIN_TIMEOUT, "calls still open after the drain timeout; closing them");
            }
        }
        tracing::info!(?addr, "grpc server stopped");
        Ok(())
    }

    /// Adds grpc.health.v1 (every service SERVING, kept in step with the
    /// consumers and the dead letters when watched) and both reflection
    /// versions; returns the health reporter.
    async fn add_health_and_reflection(
        &mut self,
        shutdown: &CancellationToken,
    ) -> Result<HealthReporter, ServeError> {
        let (health, health_service) = tonic_health::server::health_reporter();
        for name in &self.serving {
            health
                .set_service_status(*name, ServingStatus::Serving)
                .await;
        }
        // Both reflection versions: many clients (grpcurl's older builds,
        // Python's grpcio-reflection) still speak only v1alpha.
        let reflection = || {
            tonic_reflection::server::Builder::configure()
                .register_encoded_file_descriptor_set(throughcare_proto::FILE_DESCRIPTOR_SET)
                .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        };
        self.routes
            .add_service(health_service)
            .add_service(reflection().build_v1()?)
            .add_service(reflection().build_v1alpha()?);
        if let Some(consumers) = self.consumers.take() {
            tokio::spawn(watch_consumers(
                health.clone(),
                self.serving.clone(),
                consumers,
                shutdown.clone(),
            ));
        }
        if let Some(watch) = self.dead_letters.take() {
            tokio::spawn(watch_dead_letters(health.clone(), watch, shutdown.clone()));
        }
        Ok(health)
    }

    fn tls_config(&self, tls: &TlsConfig) -> Result<ServerTlsConfig, ServeError> {
        let read = |path: &std::path::Path| {
            std::fs::read(path).map_err(|source| ServeError::TlsFile {
                path: path.display().to_string(),
                source,
            })
        };
        let identity = Identity::from_pem(read(&tls.cert)?, read(&tls.key)?);
        // With bearer tokens configured too, a client certificate is optional;
        // a certificate that is presented must still chain to the client CA.
        Ok(ServerTlsConfig::new()
            .identity(identity)
            .client_ca_root(Certificate::from_pem(read(&tls.client_ca)?))
            .client_auth_optional(self.authenticator.accepts_tokens()))
    }
}

/// Keeps grpc.health.v1 in step with the consumers until shutdown: NOT_SERVING
/// (for the server as a whole and each service) while one is stalled.
async fn watch_consumers(
    health: HealthReporter,
    services: Vec<&'static str>,
    consumers: ConsumerHealth,
    shutdown: CancellationToken,
) {
    let mut stalled = false;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(5)) => {}
        }
        let problem = consumers.problem(STALL_AFTER);
        if problem.is_some() == stalled {
            continue;
        }
        stalled = problem.is_some();
        let status = match &problem {
            Some(reason) => {
                tracing::error!(%reason, "consumer stalled: reporting not serving");
                ServingStatus::NotServing
            }
            None => {
                tracing::info!("consumers are consuming again: reporting serving");
                ServingStatus::Serving
            }
        };
        health.set_service_status("", status).await;
        for name in &services {
            health.set_service_status(*name, status).await;
        }
    }
}

/// Keeps [`DEAD_LETTERS_HEALTH`] in step with the unreplayed dead letters.
async fn watch_dead_letters(
    health: HealthReporter,
    watch: DeadLetterWatch,
    shutdown: CancellationToken,
) {
    health
        .set_service_status(DEAD_LETTERS_HEALTH, ServingStatus::Serving)
        .await;
    let mut last = 0;
    loop {
        match watch.scan().await {
            Ok(count) if count != last => {
                if count > 0 {
                    tracing::warn!(
                        count,
                        "dead letters await a replay (`throughcare dead-letters list`)"
                    );
                } else {
                    tracing::info!("no dead letters await a replay");
                }
                let status = if count > 0 {
                    ServingStatus::NotServing
                } else {
                    ServingStatus::Serving
                };
                health.set_service_status(DEAD_LETTERS_HEALTH, status).await;
                last = count;
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "counting dead letters failed; will retry"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(DEAD_LETTER_SCAN) => {}
        }
    }
}
