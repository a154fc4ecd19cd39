//! The gRPC surface: authorise by organisation kind and role, delegate.

use crate::app::{App, Streamed};
use std::pin::Pin;
use std::sync::Arc;
use throughcare_platform::error::Error;
use throughcare_platform::grpc::{respond, status};
use throughcare_platform::identity::{Caller, OrganisationKind as K, Permission, Role as R};
use throughcare_proto::indicators::v1::*;
use tokio_stream::{Stream, StreamExt};
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

/// Largest request body accepted.
pub const MAX_MESSAGE_BYTES: usize = 1 << 20;

/// Anyone known may read the catalogue.
const ANYONE: Permission = Permission {
    kinds: &[],
    roles: &R::ALL,
};
/// Commissioners, public health, national users and probation areas'
/// offender health leads, through their analysts and health leads.
const COMMISSIONING: Permission = Permission {
    kinds: &[K::Commissioner, K::PublicHealth, K::National, K::Probation],
    roles: &[R::Analyst, R::HealthLead],
};
/// Who records an organisation's structure indicators.
const STRUCTURE: Permission = Permission {
    kinds: &[],
    roles: &[R::HealthLead, R::Governance],
};
const STRUCTURE_READERS: Permission = Permission {
    kinds: &[],
    roles: &[R::Analyst, R::HealthLead, R::Governance, R::Auditor],
};

type Statuses<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

/// A use case's stream as a gRPC response: each error mapped by [`status`].
fn stream<T: Send + 'static>(
    result: Result<Streamed<T>, Error>,
) -> Result<Response<Statuses<T>>, Status> {
    let stream = result?.map(|item| item.map_err(status));
    Ok(Response::new(Box::pin(stream)))
}

#[derive(Debug, Clone)]
pub struct Indicators {
    pub app: Arc<App>,
    pub shutdown: CancellationToken,
}

#[tonic::async_trait]
impl indicators_service_server::IndicatorsService for Indicators {
    async fn list_indicators(
        &self,
        request: Request<ListIndicatorsRequest>,
    ) -> Result<Response<ListIndicatorsResponse>, Status> {
        Caller::authorised(&request, "read the indicator catalogue", &ANYONE)?;
        Ok(Response::new(ListIndicatorsResponse {
            indicators: self.app.catalogue.to_proto(),
        }))
    }

    async fn record_structure_indicator(
        &self,
        request: Request<RecordStructureIndicatorRequest>,
    ) -> Result<Response<RecordStructureIndicatorResponse>, Status> {
        let caller = Caller::authorised(&request, "record structure indicators", &STRUCTURE)?;
        respond(self.app.record_structure(caller, request.get_ref()).await)
    }

    async fn list_structure_indicators(
        &self,
        request: Request<ListStructureIndicatorsRequest>,
    ) -> Result<Response<ListStructureIndicatorsResponse>, Status> {
        let caller = Caller::authorised(&request, "read structure indicators", &STRUCTURE_READERS)?;
        respond(self.app.list_structures(caller, request.get_ref()).await)
    }

    async fn query_indicators(
        &self,
        request: Request<QueryIndicatorsRequest>,
    ) -> Result<Response<QueryIndicatorsResponse>, Status> {
        let caller = Caller::authorised(&request, "read indicators", &COMMISSIONING)?;
        respond(self.app.query(caller, request.get_ref()).await)
    }

    type WatchSnapshotsStream = Statuses<WatchSnapshotsResponse>;

    async fn watch_snapshots(
        &self,
        request: Request<WatchSnapshotsRequest>,
    ) -> Result<Response<Self::WatchSnapshotsStream>, Status> {
        let caller = Caller::authorised(&request, "watch indicator snapshots", &COMMISSIONING)?;
        let shutdown = self.shutdown.clone();
        stream(self.app.watch(caller, request.get_ref(), shutdown).await)
    }

    type ExportIndicatorsCsvStream = Statuses<ExportIndicatorsCsvResponse>;

    async fn export_indicators_csv(
        &self,
        request: Request<ExportIndicatorsCsvRequest>,
    ) -> Result<Response<Self::ExportIndicatorsCsvStream>, Status> {
        let caller = Caller::authorised(&request, "export indicators", &COMMISSIONING)?;
        stream(self.app.export_csv(caller, request.get_ref()).await)
    }
}
