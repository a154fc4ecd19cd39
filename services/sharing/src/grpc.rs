//! The gRPC surface: authorise by organisation kind and role, delegate, and
//! answer errors through the platform's one mapping to a status.

use crate::app::App;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use throughcare_platform::error::{Error, Result as UseCase};
use throughcare_platform::feed::parse_cursor;
use throughcare_platform::grpc::{GrpcServer, respond, status};
use throughcare_platform::identity::{
    Authenticator, Caller, OrganisationKind as K, Permission, Role as R,
};
use throughcare_proto::sharing::v1::*;
use tokio_stream::{Stream, StreamExt};
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

/// Largest request body accepted.
pub const MAX_MESSAGE_BYTES: usize = 1 << 20;

const CARE: Permission = Permission {
    kinds: &[K::Probation, K::PrisonHealthcare, K::Provider],
    roles: &[R::System, R::Practitioner],
};
const GOVERNANCE: Permission = Permission {
    kinds: &[],
    roles: &[R::Governance],
};
const OVERSIGHT: Permission = Permission {
    kinds: &[],
    roles: &[R::Governance, R::Auditor],
};
const AUDITORS: Permission = Permission {
    kinds: &[],
    roles: &[R::Auditor],
};

/// The service's gRPC server: its four services behind the authenticator.
pub fn server(
    app: &Arc<App>,
    authenticator: Authenticator,
    shutdown: CancellationToken,
) -> GrpcServer {
    let limit = MAX_MESSAGE_BYTES;
    let mut server = GrpcServer::new(authenticator);
    server
        .add_authenticated(
            consent_service_server::ConsentServiceServer::new(Consents(app.clone()))
                .max_decoding_message_size(limit),
        )
        .add_authenticated(
            agreements_service_server::AgreementsServiceServer::new(Agreements(app.clone()))
                .max_decoding_message_size(limit),
        )
        .add_authenticated(
            disclosure_service_server::DisclosureServiceServer::new(Disclosures {
                app: app.clone(),
                shutdown,
            })
            .max_decoding_message_size(limit),
        )
        .add_authenticated(
            audit_service_server::AuditServiceServer::new(Audit(app.clone()))
                .max_decoding_message_size(limit),
        );
    server
}

/// Answers `request` with `use_case` if its caller may `action`.
async fn serve<'a, T, R, F, Fut>(
    request: &'a Request<T>,
    action: &str,
    permission: &Permission,
    use_case: F,
) -> Result<Response<R>, Status>
where
    F: FnOnce(&'a Caller, &'a T) -> Fut,
    Fut: Future<Output = UseCase<R>>,
{
    let caller = Caller::authorised(request, action, permission)?;
    respond(use_case(caller, request.get_ref()).await)
}

#[derive(Debug, Clone)]
pub struct Consents(pub Arc<App>);

#[tonic::async_trait]
impl consent_service_server::ConsentService for Consents {
    async fn record_consent(
        &self,
        request: Request<RecordConsentRequest>,
    ) -> Result<Response<RecordConsentResponse>, Status> {
        serve(&request, "record consent", &CARE, |caller, r| {
            self.0.record_consent(caller, r)
        })
        .await
    }

    async fn withdraw_consent(
        &self,
        request: Request<WithdrawConsentRequest>,
    ) -> Result<Response<WithdrawConsentResponse>, Status> {
        serve(&request, "withdraw consent", &CARE, |caller, r| {
            self.0.withdraw_consent(caller, r)
        })
        .await
    }

    async fn list_consents(
        &self,
        request: Request<ListConsentsRequest>,
    ) -> Result<Response<ListConsentsResponse>, Status> {
        serve(&request, "read consents", &CARE, |caller, r| {
            self.0.list_consents(caller, r)
        })
        .await
    }
}

#[derive(Debug, Clone)]
pub struct Agreements(pub Arc<App>);

#[tonic::async_trait]
impl agreements_service_server::AgreementsService for Agreements {
    async fn register_agreement(
        &self,
        request: Request<RegisterAgreementRequest>,
    ) -> Result<Response<RegisterAgreementResponse>, Status> {
        serve(&request, "register agreements", &GOVERNANCE, |caller, r| {
            self.0.register_agreement(caller, r)
        })
        .await
    }

    async fn revoke_agreement(
        &self,
        request: Request<RevokeAgreementRequest>,
    ) -> Result<Response<RevokeAgreementResponse>, Status> {
        serve(&request, "revoke agreements", &GOVERNANCE, |caller, r| {
            self.0.revoke_agreement(caller, r)
        })
        .await
    }

    async fn list_agreements(
        &self,
        request: Request<ListAgreementsRequest>,
    ) -> Result<Response<ListAgreementsResponse>, Status> {
        serve(&request, "list agreements", &OVERSIGHT, |_, r| {
            self.0.list_agreements(r)
        })
        .await
    }
}

#[derive(Debug, Clone)]
pub struct Disclosures {
    pub app: Arc<App>,
    pub shutdown: CancellationToken,
}

#[tonic::async_trait]
impl disclosure_service_server::DisclosureService for Disclosures {
    async fn request_disclosure(
        &self,
        request: Request<RequestDisclosureRequest>,
    ) -> Result<Response<RequestDisclosureResponse>, Status> {
        serve(&request, "request disclosures", &CARE, |caller, r| {
            self.app.request_disclosure(caller, r)
        })
        .await
    }

    type WatchDeliveriesStream =
        Pin<Box<dyn Stream<Item = Result<WatchDeliveriesResponse, Status>> + Send>>;

    async fn watch_deliveries(
        &self,
        request: Request<WatchDeliveriesRequest>,
    ) -> Result<Response<Self::WatchDeliveriesStream>, Status> {
        let caller = Caller::authorised(&request, "receive deliveries", &CARE)?.clone();
        let after = parse_cursor(&request.get_ref().cursor).map_err(Error::from)?;
        let deliveries = self
            .app
            .watch_deliveries(caller, after, self.shutdown.clone())
            .map(|item| item.map_err(status));
        Ok(Response::new(Box::pin(deliveries)))
    }

    async fn acknowledge_delivery(
        &self,
        request: Request<AcknowledgeDeliveryRequest>,
    ) -> Result<Response<AcknowledgeDeliveryResponse>, Status> {
        serve(&request, "acknowledge deliveries", &CARE, |caller, r| {
            self.app.acknowledge_delivery(caller, r)
        })
        .await
    }

    async fn list_disclosures(
        &self,
        request: Request<ListDisclosuresRequest>,
    ) -> Result<Response<ListDisclosuresResponse>, Status> {
        serve(
            &request,
            "answer subject access requests",
            &OVERSIGHT,
            |caller, r| self.app.list_disclosures(caller, r),
        )
        .await
    }
}

#[derive(Debug, Clone)]
pub struct Audit(pub Arc<App>);

#[tonic::async_trait]
impl audit_service_server::AuditService for Audit {
    async fn verify_audit_chain(
        &self,
        request: Request<VerifyAuditChainRequest>,
    ) -> Result<Response<VerifyAuditChainResponse>, Status> {
        serve(&request, "verify the audit log", &AUDITORS, |_, _| {
            self.0.verify_audit()
        })
        .await
    }

    async fn list_audit_entries(
        &self,
        request: Request<ListAuditEntriesRequest>,
    ) -> Result<Response<ListAuditEntriesResponse>, Status> {
        serve(&request, "read the audit log", &AUDITORS, |caller, r| {
            self.0.list_audit_entries(caller, r)
        })
        .await
    }
}
