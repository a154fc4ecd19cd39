//! The gRPC surface: authenticate (the platform did), authorise by organisation
//! kind and role, delegate to the app, and answer its errors through the
//! platform's one mapping ([`status`]). No domain logic here, and the only
//! module (with `lib.rs`'s server wiring) that knows tonic.

use crate::app::transitions::TransitionRequest;
use crate::app::{Feed, SharedApp};
use crate::error::Error;
use std::pin::Pin;
use throughcare_platform::grpc::{respond, status};
use throughcare_platform::identity::{Caller, OrganisationKind as K, Permission, Role as R};
use throughcare_proto::referrals::v1::*;
use tokio_stream::{Stream, StreamExt};
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

/// Largest request body accepted; field limits reject smaller abuse by name.
pub const MAX_MESSAGE_BYTES: usize = 1 << 20;

const PRISON_SYSTEMS: Permission = Permission {
    kinds: &[K::PrisonHealthcare],
    roles: &[R::System, R::Practitioner],
};
const PROBATION_SYSTEMS: Permission = Permission {
    kinds: &[K::Probation],
    roles: &[R::System, R::Practitioner],
};
const RELEASE_READERS: Permission = Permission {
    kinds: &[K::PrisonHealthcare, K::Probation],
    roles: &[R::System, R::Practitioner, R::HealthLead],
};
const REFERRERS: Permission = Permission {
    kinds: &[K::Probation, K::PrisonHealthcare],
    roles: &[R::System, R::Practitioner],
};
const REFERRAL_PARTIES: Permission = Permission {
    kinds: &[K::Probation, K::PrisonHealthcare, K::Provider],
    roles: &[R::System, R::Practitioner],
};

type Watch<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

/// Streams the caller's copy of a feed from the request's cursor, each
/// snapshot decoded and wrapped as the response type.
fn watch<T, M>(
    app: &SharedApp,
    caller: &Caller,
    feed: Feed,
    cursor: &str,
    shutdown: &CancellationToken,
    wrap: fn(String, M) -> T,
) -> Result<Response<Watch<T>>, Status>
where
    T: Send + 'static,
    M: prost::Message + Default + 'static,
{
    let after = throughcare_platform::feed::parse_cursor(cursor).map_err(Error::from)?;
    let stream = app
        .watch(caller.code(), feed, after, shutdown.clone())
        .map(move |item| {
            item.map(|(cursor, message)| wrap(cursor, message))
                .map_err(status)
        });
    Ok(Response::new(Box::pin(stream)))
}

#[derive(Debug, Clone)]
/// The transitions service: the app, and the shutdown that ends its release
/// watches.
pub struct Transitions(pub SharedApp, pub CancellationToken);

impl Transitions {
    /// Records a transition other than release for an authorised caller.
    async fn record<Q, R>(
        &self,
        request: Request<Q>,
        action: &str,
        permission: &Permission,
        wrap: fn(String) -> R,
    ) -> Result<Response<R>, Status>
    where
        Q: TransitionRequest,
        R: prost::Message + Default,
    {
        let caller = Caller::authorised(&request, action, permission)?;
        respond(
            self.0
                .record_transition(caller, request.get_ref(), wrap)
                .await,
        )
    }
}

#[tonic::async_trait]
impl transitions_service_server::TransitionsService for Transitions {
    async fn notify_release(
        &self,
        request: Request<NotifyReleaseRequest>,
    ) -> Result<Response<NotifyReleaseResponse>, Status> {
        let caller = Caller::authorised(&request, "notify releases", &PRISON_SYSTEMS)?;
        respond(self.0.notify_release(caller, request.get_ref()).await)
    }

    async fn reverse_release(
        &self,
        request: Request<ReverseReleaseRequest>,
    ) -> Result<Response<ReverseReleaseResponse>, Status> {
        let caller = Caller::authorised(&request, "reverse releases", &PRISON_SYSTEMS)?;
        respond(self.0.reverse_release(caller, request.get_ref()).await)
    }

    async fn get_release(
        &self,
        request: Request<GetReleaseRequest>,
    ) -> Result<Response<GetReleaseResponse>, Status> {
        let caller = Caller::authorised(&request, "read releases", &RELEASE_READERS)?;
        let release_id = &request.get_ref().release_id;
        respond(self.0.get_release(caller, release_id).await)
    }

    async fn list_releases(
        &self,
        request: Request<ListReleasesRequest>,
    ) -> Result<Response<ListReleasesResponse>, Status> {
        let caller = Caller::authorised(&request, "list releases", &RELEASE_READERS)?;
        respond(self.0.list_releases(caller, request.get_ref()).await)
    }

    type WatchReleasesStream = Watch<WatchReleasesResponse>;

    async fn watch_releases(
        &self,
        request: Request<WatchReleasesRequest>,
    ) -> Result<Response<Self::WatchReleasesStream>, Status> {
        let caller = Caller::authorised(&request, "watch releases", &RELEASE_READERS)?;
        let cursor = &request.get_ref().cursor;
        watch(
            &self.0,
            caller,
            Feed::Releases,
            cursor,
            &self.1,
            |cursor, release| WatchReleasesResponse {
                cursor,
                release: Some(release),
            },
        )
    }

    async fn notify_reception(
        &self,
        request: Request<NotifyReceptionRequest>,
    ) -> Result<Response<NotifyReceptionResponse>, Status> {
        self.record(request, "notify receptions", &PRISON_SYSTEMS, |id| {
            NotifyReceptionResponse { transition_id: id }
        })
        .await
    }

    async fn notify_transfer(
        &self,
        request: Request<NotifyTransferRequest>,
    ) -> Result<Response<NotifyTransferResponse>, Status> {
        self.record(request, "notify transfers", &PRISON_SYSTEMS, |id| {
            NotifyTransferResponse { transition_id: id }
        })
        .await
    }

    async fn notify_community_sentence(
        &self,
        request: Request<NotifyCommunitySentenceRequest>,
    ) -> Result<Response<NotifyCommunitySentenceResponse>, Status> {
        let action = "notify community sentences";
        self.record(request, action, &PROBATION_SYSTEMS, |id| {
            NotifyCommunitySentenceResponse { transition_id: id }
        })
        .await
    }

    async fn notify_approved_premises_move(
        &self,
        request: Request<NotifyApprovedPremisesMoveRequest>,
    ) -> Result<Response<NotifyApprovedPremisesMoveResponse>, Status> {
        let action = "notify approved premises moves";
        self.record(request, action, &PROBATION_SYSTEMS, |id| {
            NotifyApprovedPremisesMoveResponse { transition_id: id }
        })
        .await
    }

    async fn notify_supervision_end(
        &self,
        request: Request<NotifySupervisionEndRequest>,
    ) -> Result<Response<NotifySupervisionEndResponse>, Status> {
        let action = "notify ends of supervision";
        self.record(request, action, &PROBATION_SYSTEMS, |id| {
            NotifySupervisionEndResponse { transition_id: id }
        })
        .await
    }

    async fn notify_death(
        &self,
        request: Request<NotifyDeathRequest>,
    ) -> Result<Response<NotifyDeathResponse>, Status> {
        self.record(request, "notify deaths", &PROBATION_SYSTEMS, |id| {
            NotifyDeathResponse { transition_id: id }
        })
        .await
    }
}

#[derive(Debug, Clone)]
pub struct Assessments(pub SharedApp);

#[tonic::async_trait]
impl assessments_service_server::AssessmentsService for Assessments {
    async fn record_assessment(
        &self,
        request: Request<RecordAssessmentRequest>,
    ) -> Result<Response<RecordAssessmentResponse>, Status> {
        let caller = Caller::authorised(&request, "record assessments", &PROBATION_SYSTEMS)?;
        respond(self.0.record_assessment(caller, request.get_ref()).await)
    }

    async fn list_assessments(
        &self,
        request: Request<ListAssessmentsRequest>,
    ) -> Result<Response<ListAssessmentsResponse>, Status> {
        let caller = Caller::authorised(&request, "read assessments", &PROBATION_SYSTEMS)?;
        respond(self.0.list_assessments(caller, request.get_ref()).await)
    }

    async fn record_self_report(
        &self,
        request: Request<RecordSelfReportRequest>,
    ) -> Result<Response<RecordSelfReportResponse>, Status> {
        let caller = Caller::authorised(&request, "record self-reports", &PROBATION_SYSTEMS)?;
        respond(self.0.record_self_report(caller, request.get_ref()).await)
    }
}

#[derive(Debug, Clone)]
pub struct Referrals {
    pub app: SharedApp,
    pub shutdown: CancellationToken,
}

#[tonic::async_trait]
impl referrals_service_server::ReferralsService for Referrals {
    async fn request_referral(
        &self,
        request: Request<RequestReferralRequest>,
    ) -> Result<Response<RequestReferralResponse>, Status> {
        let caller = Caller::authorised(&request, "request referrals", &REFERRERS)?;
        respond(self.app.request_referral(caller, request.get_ref()).await)
    }

    async fn update_referral(
        &self,
        request: Request<UpdateReferralRequest>,
    ) -> Result<Response<UpdateReferralResponse>, Status> {
        let caller = Caller::authorised(&request, "update referrals", &REFERRAL_PARTIES)?;
        respond(self.app.update_referral(caller, request.get_ref()).await)
    }

    async fn get_referral(
        &self,
        request: Request<GetReferralRequest>,
    ) -> Result<Response<GetReferralResponse>, Status> {
        let caller = Caller::authorised(&request, "read referrals", &REFERRAL_PARTIES)?;
        let referral_id = &request.get_ref().referral_id;
        respond(self.app.get_referral(caller, referral_id).await)
    }

    async fn list_referrals(
        &self,
        request: Request<ListReferralsRequest>,
    ) -> Result<Response<ListReferralsResponse>, Status> {
        let caller = Caller::authorised(&request, "list referrals", &REFERRAL_PARTIES)?;
        respond(self.app.list_referrals(caller, request.get_ref()).await)
    }

    type WatchReferralsStream = Watch<WatchReferralsResponse>;

    async fn watch_referrals(
        &self,
        request: Request<WatchReferralsRequest>,
    ) -> Result<Response<Self::WatchReferralsStream>, Status> {
        let caller = Caller::authorised(&request, "watch referrals", &REFERRAL_PARTIES)?;
        let cursor = &request.get_ref().cursor;
        watch(
            &self.app,
            caller,
            Feed::Referrals,
            cursor,
            &self.shutdown,
            |cursor, referral| WatchReferralsResponse {
                cursor,
                referral: Some(referral),
            },
        )
    }
}

#[derive(Debug, Clone)]
pub struct Continuity {
    pub app: SharedApp,
    pub shutdown: CancellationToken,
}

#[tonic::async_trait]
impl continuity_service_server::ContinuityService for Continuity {
    async fn list_continuity_tasks(
        &self,
        request: Request<ListContinuityTasksRequest>,
    ) -> Result<Response<ListContinuityTasksResponse>, Status> {
        let caller = Caller::authorised(&request, "list continuity tasks", &REFERRERS)?;
        respond(self.app.list_tasks(caller, request.get_ref()).await)
    }

    type WatchContinuityTasksStream = Watch<WatchContinuityTasksResponse>;

    async fn watch_continuity_tasks(
        &self,
        request: Request<WatchContinuityTasksRequest>,
    ) -> Result<Response<Self::WatchContinuityTasksStream>, Status> {
        let caller = Caller::authorised(&request, "watch continuity tasks", &REFERRERS)?;
        let cursor = &request.get_ref().cursor;
        watch(
            &self.app,
            caller,
            Feed::Tasks,
            cursor,
            &self.shutdown,
            |cursor, task| WatchContinuityTasksResponse {
                cursor,
                task: Some(task),
            },
        )
    }

    async fn acknowledge_alert(
        &self,
        request: Request<AcknowledgeAlertRequest>,
    ) -> Result<Response<AcknowledgeAlertResponse>, Status> {
        let caller = Caller::authorised(&request, "acknowledge alerts", &REFERRERS)?;
        respond(self.app.acknowledge_alert(caller, request.get_ref()).await)
    }
}
