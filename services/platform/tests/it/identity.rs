//! Caller identity through real gRPC: mutual TLS with certificates from a
//! generated CA, bearer tokens, and every refusal.

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use std::net::SocketAddr;
use tempfile::TempDir;
use throughcare_platform::config::{Secret, TlsConfig};
use throughcare_platform::grpc::GrpcServer;
use throughcare_platform::identity::{
    AuthConfig, Authenticator, Caller, OrganisationConfig, OrganisationKind, Permission, Role,
    TokenConfig,
};
use throughcare_platform::telemetry::Metrics;
use throughcare_proto::identity::v1::WhoAmIRequest;
use throughcare_proto::identity::v1::identity_service_client::IdentityServiceClient;
use throughcare_proto::sharing::v1::audit_service_server::{AuditService, AuditServiceServer};
use throughcare_proto::sharing::v1::{
    ListAuditEntriesRequest, ListAuditEntriesResponse, VerifyAuditChainRequest,
    VerifyAuditChainResponse,
};
use throughcare_proto::types::v1 as pb;
use tokio_util::sync::CancellationToken;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};
use tonic::{Code, Request, Response, Status};

const PROBATION_TOKEN: &str = "probation-practitioner-token";

fn auth_config() -> AuthConfig {
    let org = |code: &str, kind| OrganisationConfig {
        code: code.into(),
        name: format!("{code} test organisation"),
        kind,
        areas: vec![],
    };
    AuthConfig {
        organisations: vec![
            org("LEI", OrganisationKind::PrisonHealthcare),
            org("N07", OrganisationKind::Probation),
            org("AUDIT", OrganisationKind::National),
        ],
        tokens: vec![TokenConfig {
            token: Secret::new(PROBATION_TOKEN),
            organisation: "N07".into(),
            role: Role::Practitioner,
        }],
    }
}

/// A test stand-in for a service RPC that only auditors may call.
struct AuditorsOnly;

const VERIFY: Permission = Permission {
    kinds: &[],
    roles: &[Role::Auditor],
};

#[tonic::async_trait]
impl AuditService for AuditorsOnly {
    async fn verify_audit_chain(
        &self,
        request: Request<VerifyAuditChainRequest>,
    ) -> Result<Response<VerifyAuditChainResponse>, Status> {
        Caller::of(&request)?.authorize("verify the audit chain", &VERIFY)?;
        Ok(Response::new(VerifyAuditChainResponse {
            intact: true,
            ..Default::default()
        }))
    }

    async fn list_audit_entries(
        &self,
        _request: Request<ListAuditEntriesRequest>,
    ) -> Result<Response<ListAuditEntriesResponse>, Status> {
        Err(Status::unimplemented("not part of this test"))
    }
}

struct Pki {
    dir: TempDir,
    ca: CertificateParams,
    ca_key: KeyPair,
    ca_pem: String,
}

impl Pki {
    fn new(name: &str) -> Self {
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name.push(DnType::CommonName, name);
        let ca_pem = ca.self_signed(&ca_key).unwrap().pem();
        Self {
            dir: TempDir::new().unwrap(),
            ca,
            ca_key,
            ca_pem,
        }
    }

    /// A certificate signed by this CA: (cert PEM, key PEM).
    fn issue(&self, common_name: &str, unit: Option<&str>, names: &[&str]) -> (String, String) {
        let key = KeyPair::generate().unwrap();
        let mut params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        if let Some(unit) = unit {
            params
                .distinguished_name
                .push(DnType::OrganizationalUnitName, unit);
        }
        let issuer = Issuer::from_params(&self.ca, &self.ca_key);
        (
            params.signed_by(&key, &issuer).unwrap().pem(),
            key.serialize_pem(),
        )
    }

    fn server_tls(&self) -> TlsConfig {
        let (cert, key) = self.issue("throughcare test server", None, &["localhost"]);
        let write = |name: &str, pem: &str| {
            let path = self.dir.path().join(name);
            std::fs::write(&path, pem).unwrap();
            path
        };
        TlsConfig {
            cert: write("server.pem", &cert),
            key: write("server.key", &key),
            client_ca: write("ca.pem", &self.ca_pem),
        }
    }
}

async fn start(tls: Option<TlsConfig>) -> (SocketAddr, CancellationToken) {
    let authenticator = Authenticator::new(&auth_config()).unwrap();
    let mut server = GrpcServer::new(authenticator);
    server.add_authenticated(AuditServiceServer::new(AuditorsOnly));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    let stop = shutdown.clone();
    tokio::spawn(async move {
        server
            .serve(listener, tls.as_ref(), Metrics::disabled(), stop)
            .await
            .unwrap()
    });
    (addr, shutdown)
}

async fn tls_channel(
    addr: SocketAddr,
    ca_pem: &str,
    client: Option<(String, String)>,
) -> Result<Channel, tonic::transport::Error> {
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca_pem))
        .domain_name("localhost");
    if let Some((cert, key)) = client {
        tls = tls.identity(Identity::from_pem(cert, key));
    }
    Channel::from_shared(format!("https://localhost:{}", addr.port()))
        .unwrap()
        .tls_config(tls)?
        .connect()
        .await
}

fn with_token(
    token: &'static str,
) -> impl FnMut(Request<()>) -> Result<Request<()>, Status> + Clone {
    move |mut request: Request<()>| {
        request
            .metadata_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
        Ok(request)
    }
}

#[tokio::test]
async fn a_client_certificate_names_the_organisation_and_role() {
    let pki = Pki::new("Throughcare test CA");
    let (addr, shutdown) = start(Some(pki.server_tls())).await;
    let cert = pki.issue("LEI", Some("system"), &[]);
    let channel = tls_channel(addr, &pki.ca_pem, Some(cert)).await.unwrap();
    let me = IdentityServiceClient::new(channel)
        .who_am_i(WhoAmIRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(me.organisation, "LEI");
    assert_eq!(me.kind, pb::OrganisationKind::PrisonHealthcare as i32);
    assert_eq!(me.role, "system");
    shutdown.cancel();
}

#[tokio::test]
async fn a_bearer_token_works_over_tls_without_a_client_certificate() {
    let pki = Pki::new("Throughcare test CA");
    let (addr, shutdown) = start(Some(pki.server_tls())).await;
    let channel = tls_channel(addr, &pki.ca_pem, None).await.unwrap();
    let me = IdentityServiceClient::with_interceptor(channel, with_token(PROBATION_TOKEN))
        .who_am_i(WhoAmIRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (me.organisation.as_str(), me.role.as_str()),
        ("N07", "practitioner")
    );
    shutdown.cancel();
}

#[tokio::test]
async fn a_certificate_from_an_unknown_ca_is_refused() {
    let pki = Pki::new("Throughcare test CA");
    let rogue = Pki::new("Rogue CA");
    let (addr, shutdown) = start(Some(pki.server_tls())).await;
    let cert = rogue.issue("LEI", Some("system"), &[]);
    let outcome = match tls_channel(addr, &pki.ca_pem, Some(cert)).await {
        Err(_) => None,
        Ok(channel) => Some(
            IdentityServiceClient::new(channel)
                .who_am_i(WhoAmIRequest {})
                .await,
        ),
    };
    assert!(
        matches!(outcome, None | Some(Err(_))),
        "a certificate from an unknown CA must not get through: {outcome:?}"
    );
    shutdown.cancel();
}

#[tokio::test]
async fn a_valid_certificate_for_an_unregistered_organisation_is_unauthenticated() {
    let pki = Pki::new("Throughcare test CA");
    let (addr, shutdown) = start(Some(pki.server_tls())).await;
    let channel = tls_channel(
        addr,
        &pki.ca_pem,
        Some(pki.issue("ZZZ", Some("system"), &[])),
    )
    .await
    .unwrap();
    let status = IdentityServiceClient::new(channel)
        .who_am_i(WhoAmIRequest {})
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    assert!(
        status.message().contains("not in the registry"),
        "{status:?}"
    );

    let channel = tls_channel(
        addr,
        &pki.ca_pem,
        Some(pki.issue("LEI", Some("janitor"), &[])),
    )
    .await
    .unwrap();
    let status = IdentityServiceClient::new(channel)
        .who_am_i(WhoAmIRequest {})
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    shutdown.cancel();
}

#[tokio::test]
async fn missing_or_unknown_tokens_are_unauthenticated_and_wrong_roles_denied() {
    let (addr, shutdown) = start(None).await;
    let channel = Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();

    let status = IdentityServiceClient::new(channel.clone())
        .who_am_i(WhoAmIRequest {})
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);

    let status = IdentityServiceClient::with_interceptor(
        channel.clone(),
        with_token("not-a-configured-token"),
    )
    .who_am_i(WhoAmIRequest {})
    .await
    .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);

    let status =
        throughcare_proto::sharing::v1::audit_service_client::AuditServiceClient::with_interceptor(
            channel,
            with_token(PROBATION_TOKEN),
        )
        .verify_audit_chain(VerifyAuditChainRequest {})
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    assert!(status.message().contains("role practitioner"), "{status:?}");
    shutdown.cancel();
}

#[tokio::test]
async fn an_auditor_certificate_may_verify() {
    let pki = Pki::new("Throughcare test CA");
    let (addr, shutdown) = start(Some(pki.server_tls())).await;
    let channel = tls_channel(
        addr,
        &pki.ca_pem,
        Some(pki.issue("AUDIT", Some("auditor"), &[])),
    )
    .await
    .unwrap();
    let verified =
        throughcare_proto::sharing::v1::audit_service_client::AuditServiceClient::new(channel)
            .verify_audit_chain(VerifyAuditChainRequest {})
            .await
            .unwrap()
            .into_inner();
    assert!(verified.intact);
    shutdown.cancel();
}

#[test]
fn tokens_must_name_registered_organisations() {
    let mut config = auth_config();
    config.tokens[0].organisation = "NOPE".into();
    assert!(Authenticator::new(&config).is_err());
}
