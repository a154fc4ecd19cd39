//! Overload gets a fast, honest answer: beyond its organisation's share of
//! calls in flight a caller is refused at once with RESOURCE_EXHAUSTED and a
//! retry hint, while the calls admitted finish and another organisation is
//! still served.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use throughcare_platform::config::Secret;
use throughcare_platform::grpc::{Bearer, GrpcServer, InFlightLimits};
use throughcare_platform::identity::{
    AuthConfig, Authenticator, OrganisationConfig, OrganisationKind, Role, TokenConfig,
};
use throughcare_platform::telemetry::Metrics;
use throughcare_proto::sharing::v1::audit_service_client::AuditServiceClient;
use throughcare_proto::sharing::v1::audit_service_server::{AuditService, AuditServiceServer};
use throughcare_proto::sharing::v1::{
    ListAuditEntriesRequest, ListAuditEntriesResponse, VerifyAuditChainRequest,
    VerifyAuditChainResponse,
};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;
use tonic::{Code, Request, Response, Status};
use tonic_types::StatusExt;

/// Holds every call until the test lets it finish, counting those that
/// arrived.
struct Held {
    arrived: Arc<AtomicUsize>,
    release: Arc<Semaphore>,
}

#[tonic::async_trait]
impl AuditService for Held {
    async fn verify_audit_chain(
        &self,
        _request: Request<VerifyAuditChainRequest>,
    ) -> Result<Response<VerifyAuditChainResponse>, Status> {
        self.arrived.fetch_add(1, Ordering::SeqCst);
        self.release.acquire().await.unwrap().forget();
        Ok(Response::new(VerifyAuditChainResponse {
            intact: true,
            ..Default::default()
        }))
    }

    async fn list_audit_entries(
        &self,
        _request: Request<ListAuditEntriesRequest>,
    ) -> Result<Response<ListAuditEntriesResponse>, Status> {
        Ok(Response::new(ListAuditEntriesResponse::default()))
    }
}

fn auth() -> AuthConfig {
    let org = |code: &str| OrganisationConfig {
        code: code.into(),
        name: format!("{code} test organisation"),
        kind: OrganisationKind::National,
        areas: vec![],
    };
    let token = |token: &str, organisation: &str| TokenConfig {
        token: Secret::new(token),
        organisation: organisation.into(),
        role: Role::Auditor,
    };
    AuthConfig {
        organisations: vec![org("BUSY"), org("OTHER")],
        tokens: vec![
            token("busy-token-0123456789abcdef", "BUSY"),
            token("other-token-0123456789abcdef", "OTHER"),
        ],
    }
}

type Client = AuditServiceClient<tonic::service::interceptor::InterceptedService<Channel, Bearer>>;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beyond_its_share_a_caller_is_refused_at_once_and_others_are_served() {
    let arrived = Arc::new(AtomicUsize::new(0));
    let release = Arc::new(Semaphore::new(0));
    let mut server = GrpcServer::new(Authenticator::new(&auth()).unwrap());
    server
        .add_authenticated(AuditServiceServer::new(Held {
            arrived: arrived.clone(),
            release: release.clone(),
        }))
        .limit_in_flight(InFlightLimits {
            per_organisation: 3,
            total: 8,
        });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    let stop = shutdown.clone();
    tokio::spawn(async move {
        server
            .serve(listener, None, Metrics::disabled(), stop)
            .await
            .unwrap()
    });
    let channel = Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let client = |token: &str| -> Client {
        AuditServiceClient::with_interceptor(channel.clone(), Bearer::new(token).unwrap())
    };

    // Twelve calls at once from one organisation: three are admitted and
    // held; the other nine are answered while those three are still held.
    let mut calls = tokio::task::JoinSet::new();
    for _ in 0..12 {
        let mut busy = client("busy-token-0123456789abcdef");
        calls.spawn(async move { busy.verify_audit_chain(VerifyAuditChainRequest {}).await });
    }
    let mut refused = Vec::new();
    while refused.len() < 9 {
        let answered = calls.join_next().await.unwrap().unwrap();
        refused.push(answered.expect_err("only refusals can come back while calls are held"));
    }
    assert_eq!(arrived.load(Ordering::SeqCst), 3, "three admitted");
    for status in &refused {
        assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
        let retry = status.get_error_details().retry_info().cloned();
        assert!(retry.and_then(|r| r.retry_delay).is_some(), "{status:?}");
    }

    // Another organisation is served meanwhile.
    let other = client("other-token-0123456789abcdef")
        .list_audit_entries(ListAuditEntriesRequest::default())
        .await;
    assert!(other.is_ok(), "{other:?}");

    // The admitted calls finish, and nothing admitted was lost.
    release.add_permits(3);
    let mut finished = 0;
    while let Some(answered) = calls.join_next().await {
        assert!(answered.unwrap().unwrap().into_inner().intact);
        finished += 1;
    }
    assert_eq!(finished, 3);
    // Their places are free again.
    release.add_permits(1);
    assert!(
        client("busy-token-0123456789abcdef")
            .verify_audit_chain(VerifyAuditChainRequest {})
            .await
            .is_ok()
    );
    shutdown.cancel();
}
