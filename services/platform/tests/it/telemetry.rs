//! One trace from a gRPC caller, through a handler that writes to the outbox,
//! the relay and Kafka, to the consumer that handles the event; and the
//! platform's metrics for RPC latency, outbox lag and consumer lag.

use crate::common::{self, WAIT};
use opentelemetry::trace::{TraceContextExt, TraceId};
use opentelemetry_sdk::metrics::InMemoryMetricExporter;
use opentelemetry_sdk::trace::InMemorySpanExporter;
use std::collections::BTreeSet;
use std::sync::{Arc, OnceLock};
use throughcare_platform::bus::{Bus, ConsumerOptions, Event, HandleError, Handler, run_consumer};
use throughcare_platform::config::Secret;
use throughcare_platform::db::{Db, Migrations};
use throughcare_platform::error::Error;
use throughcare_platform::grpc::GrpcServer;
use throughcare_platform::identity::{
    AuthConfig, Authenticator, OrganisationConfig, OrganisationKind, Role, TokenConfig,
};
use throughcare_platform::outbox::{OutboxWaker, Relay};
use throughcare_platform::telemetry::{
    Metrics, TelemetryBuilder, TelemetryConfig, TelemetryGuard, TraceInterceptor,
};
use throughcare_platform::testing::{eventually, fresh_postgres, unique};
use throughcare_platform::work::Transactions;
use throughcare_proto::events::v1::ReleaseReversed;
use throughcare_proto::sharing::v1::audit_service_client::AuditServiceClient;
use throughcare_proto::sharing::v1::audit_service_server::{AuditService, AuditServiceServer};
use throughcare_proto::sharing::v1::{
    ListAuditEntriesRequest, ListAuditEntriesResponse, VerifyAuditChainRequest,
    VerifyAuditChainResponse,
};
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

static NO_MIGRATIONS_PG: sqlx::migrate::Migrator = sqlx::migrate!("tests/it/migrations/postgres");
static NO_MIGRATIONS_SQLITE: sqlx::migrate::Migrator = sqlx::migrate!("tests/it/migrations/sqlite");

struct Telemetry {
    spans: InMemorySpanExporter,
    metrics: InMemoryMetricExporter,
    guard: TelemetryGuard,
}

/// The test binary's one telemetry pipeline, exporting to memory.
fn telemetry() -> &'static Telemetry {
    static TELEMETRY: OnceLock<Telemetry> = OnceLock::new();
    TELEMETRY.get_or_init(|| {
        let spans = InMemorySpanExporter::default();
        let metrics = InMemoryMetricExporter::default();
        let guard = TelemetryBuilder::new("platform-tests", &TelemetryConfig::default())
            .with_span_exporter(spans.clone())
            .with_metric_exporter(metrics.clone())
            .install()
            .expect("telemetry");
        Telemetry {
            spans,
            metrics,
            guard,
        }
    })
}

/// Stands in for any service RPC that changes state and announces it.
struct Announcing {
    transactions: Transactions,
    topic: String,
}

#[tonic::async_trait]
impl AuditService for Announcing {
    async fn verify_audit_chain(
        &self,
        _request: Request<VerifyAuditChainRequest>,
    ) -> Result<Response<VerifyAuditChainResponse>, Status> {
        let event = Event::new(
            &self.topic,
            "person-key",
            "/throughcare/test",
            &ReleaseReversed::default(),
        );
        let mut work = self.transactions.begin().await.map_err(Error::from)?;
        work.publish(event);
        work.commit().await.map_err(Error::from)?;
        Ok(Response::new(VerifyAuditChainResponse::default()))
    }

    async fn list_audit_entries(
        &self,
        _request: Request<ListAuditEntriesRequest>,
    ) -> Result<Response<ListAuditEntriesResponse>, Status> {
        Err(Status::unimplemented("not part of this test"))
    }
}

/// Records the trace id of the span each event is handled in.
#[derive(Clone, Default)]
struct TraceIds(Arc<std::sync::Mutex<Vec<TraceId>>>);

impl Handler for TraceIds {
    async fn handle(&self, _event: &Event) -> Result<(), HandleError> {
        let id = tracing::Span::current()
            .context()
            .span()
            .span_context()
            .trace_id();
        self.0.lock().unwrap().push(id);
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_span_continues_the_producing_request_trace() {
    let telemetry = telemetry();
    let metrics: Metrics = telemetry.guard.metrics();
    let migrations = Migrations {
        postgres: &NO_MIGRATIONS_PG,
        sqlite: &NO_MIGRATIONS_SQLITE,
    };
    let db = Db::connect(&fresh_postgres().await, 4, migrations)
        .await
        .unwrap();
    let bus: Bus = common::kafka_bus_with(metrics.clone()).await.bus;
    let topic = bus.topic(&unique("traced"));
    bus.ensure_topics(std::slice::from_ref(&topic))
        .await
        .unwrap();
    let shutdown = CancellationToken::new();
    let waker = OutboxWaker::new();

    let auth = AuthConfig {
        organisations: vec![OrganisationConfig {
            code: "AUDIT".into(),
            name: "auditors".into(),
            kind: OrganisationKind::National,
            areas: vec![],
        }],
        tokens: vec![TokenConfig {
            token: Secret::new("auditor-token-for-tests"),
            organisation: "AUDIT".into(),
            role: Role::Auditor,
        }],
    };
    let mut server = GrpcServer::new(Authenticator::new(&auth).unwrap());
    server.add_authenticated(AuditServiceServer::new(Announcing {
        transactions: Transactions::new(db.clone(), waker.clone()),
        topic: topic.clone(),
    }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn({
        let (metrics, shutdown) = (metrics.clone(), shutdown.clone());
        async move {
            server
                .serve(listener, None, metrics, shutdown)
                .await
                .unwrap()
        }
    });
    let relay = Relay::new(db.clone(), bus.clone(), waker, metrics.clone());
    tokio::spawn({
        let shutdown = shutdown.clone();
        async move { relay.run(shutdown).await }
    });
    let handled = TraceIds::default();
    tokio::spawn({
        let (bus, handled, metrics, shutdown) = (
            bus.clone(),
            handled.clone(),
            metrics.clone(),
            shutdown.clone(),
        );
        let options = ConsumerOptions::new(unique("traced"), vec![topic.clone()]);
        async move {
            run_consumer(&bus, &options, &handled, &metrics, shutdown)
                .await
                .unwrap()
        }
    });

    // The caller's own span: its trace id must reach the consumer.
    let caller_span = tracing::info_span!("caller");
    let expected = caller_span.context().span().span_context().trace_id();
    assert_ne!(expected, TraceId::INVALID);
    async {
        let channel = tonic::transport::Channel::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect()
            .await
            .unwrap();
        let mut client =
            AuditServiceClient::with_interceptor(channel, move |request: Request<()>| {
                let mut request =
                    tonic::service::Interceptor::call(&mut TraceInterceptor, request)?;
                request.metadata_mut().insert(
                    "authorization",
                    "Bearer auditor-token-for-tests".parse().unwrap(),
                );
                Ok(request)
            });
        client
            .verify_audit_chain(VerifyAuditChainRequest {})
            .await
            .unwrap();
    }
    .instrument(caller_span)
    .await;

    let seen = eventually(WAIT, "the event to be consumed", || async {
        let ids = handled.0.lock().unwrap().clone();
        (!ids.is_empty()).then_some(ids)
    })
    .await;
    assert_eq!(
        seen,
        vec![expected],
        "the consumer's span is in the request's trace"
    );

    let spans = telemetry.spans.get_finished_spans().unwrap();
    let in_trace: BTreeSet<&str> = spans
        .iter()
        .filter(|s| s.span_context.trace_id() == expected)
        .map(|s| s.name.as_ref())
        .collect();
    assert!(
        in_trace.contains("/throughcare.sharing.v1.AuditService/VerifyAuditChain"),
        "server span: {in_trace:?}"
    );
    assert!(
        in_trace.contains(format!("{topic} process").as_str()),
        "consumer span: {in_trace:?}"
    );

    // Metrics: RPC latency, outbox lag and consumer lag were all recorded.
    let names = eventually(WAIT, "metrics", || async {
        telemetry.guard.flush();
        let names: BTreeSet<String> = telemetry
            .metrics
            .get_finished_metrics()
            .unwrap()
            .iter()
            .flat_map(|rm| {
                rm.scope_metrics()
                    .flat_map(|sm| sm.metrics().map(|m| m.name().to_owned()))
            })
            .collect();
        [
            "rpc.server.duration",
            "outbox.lag",
            "outbox.pending",
            "consumer.lag",
        ]
        .iter()
        .all(|n| names.contains(*n))
        .then_some(names)
    })
    .await;
    assert!(names.contains("outbox.published"));
    shutdown.cancel();
}
