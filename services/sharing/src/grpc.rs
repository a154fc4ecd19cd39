//! The gRPC surface: authorise by organisation kind and role, delegate.

use crate::app::App;
use std::pin::Pin;
use std::sync::Arc;
use throughcare_platform::grpc::respond;
use throughcare_platform::identity::{Caller, OrganisationKind as K, Permission, Role as R};
use throughcare_proto::sharing::v1::*;
use tokio_stream::Stream;
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

#[derive(Debug, Clone)]
pub struct Consents(pub Arc<App>);

#[tonic::async_trait]
impl consent_service_server::ConsentService for Consents {
    async fn record_consent(
        &self,
        request: Request<RecordConsentRequest>,
    ) -> Result<Response<RecordConsentResponse>, Status> {
        let caller = Caller::authorised(&request, "record consent", &CARE)?;
        respond(self.0.record_consent(caller, request.get_ref()).await)
    }

    async fn withdraw_consent(
        &self,
        request: Request<WithdrawConsentRequest>,
    ) -> Result<Response<WithdrawConsentResponse>, Status> {
        let caller = Caller::authorised(&request, "withdraw consent", &CARE)?;
        respond(self.0.withdraw_consent(caller, request.get_ref()).await)
    }

    async fn list_consents(
        &self,
        request: Request<ListConsentsRequest>,
    ) -> Result<Response<ListConsentsResponse>, Status> {
        let caller = Caller::authorised(&request, "read consents", &CARE)?;
        respond(self.0.list_consents(caller, request.get_ref()).await)
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
        let caller = Caller::authorised(&request, "register agreements", &GOVERNANCE)?;
        respond(self.0.register_agreement(caller, request.get_ref()).await)
    }

    async fn revoke_agreement(
        &self,
        request: Request<RevokeAgreementRequest>,
    ) -> Result<Response<RevokeAgreementResponse>, Status> {
        let caller = Caller::authorised(&request, "revoke agreements", &GOVERNANCE)?;
        respond(self.0.revoke_agreement(caller, request.get_ref()).await)
    }

    async fn list_agreements(
        &self,
        request: Request<ListAgreementsRequest>,
    ) -> Result<Response<ListAgreementsResponse>, Status> {
        Caller::authorised(&request, "list agreements", &OVERSIGHT)?;
        respond(self.0.list_agreements(request.get_ref()).await)
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
        let caller = Caller::authorised(&request, "request disclosures", &CARE)?;
        respond(self.app.request_disclosure(caller, request.get_ref()).await)
    }

    type WatchDeliveriesStream =
        Pin<Box<dyn Stream<Item = Result<WatchDeliveriesResponse, Status>> + Send>>;

    async fn watch_deliveries(
        &self,
        request: Request<WatchDeliveriesRequest>,
    ) -> Result<Response<Self::WatchDeliveriesStream>, Status> {
        let caller = Caller::authorised(&request, "receive deliveries", &CARE)?.clone();
        let after = throughcare_platform::feed::parse_cursor(&request.get_ref().cursor)?;
        Ok(Response::new(Box::pin(self.app.watch_deliveries(
            caller,
            after,
            self.shutdown.clone(),
        ))))
    }

    async fn list_disclosures(
        &self,
        request: Request<ListDisclosuresRequest>,
    ) -> Result<Response<ListDisclosuresResponse>, Status> {
        Caller::authorised(&request, "answer subject access requests", &OVERSIGHT)?;
        respond(self.app.list_disclosures(request.get_ref()).await)
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
        Caller::authorised(&request, "verify the audit log", &AUDITORS)?;
        respond(self.0.verify_audit().await)
    }

    async fn list_audit_entries(
        &self,
        request: Request<ListAuditEntriesRequest>,
    ) -> Result<Response<ListAuditEntriesResponse>, Status> {
        Caller::authorised(&request, "read the audit log", &AUDITORS)?;
        respond(self.0.list_audit_entries(request.get_ref()).await)
    }
}
