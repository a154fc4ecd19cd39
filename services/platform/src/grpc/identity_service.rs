use crate::identity::Caller;
use throughcare_proto::identity::v1::identity_service_server::IdentityService;
use throughcare_proto::identity::v1::{WhoAmIRequest, WhoAmIResponse};
use throughcare_proto::types::v1 as pb;
use tonic::{Request, Response, Status};

/// `throughcare.identity.v1.IdentityService`: tells callers who they are taken to be.
#[derive(Debug, Clone, Default)]
pub struct IdentityServiceImpl;

#[tonic::async_trait]
impl IdentityService for IdentityServiceImpl {
    async fn who_am_i(
        &self,
        request: Request<WhoAmIRequest>,
    ) -> Result<Response<WhoAmIResponse>, Status> {
        let caller = Caller::of(&request)?;
        let organisation = &caller.organisation;
        Ok(Response::new(WhoAmIResponse {
            organisation: organisation.code.as_str().to_owned(),
            organisation_name: organisation.name.clone(),
            kind: organisation.kind.to_proto() as i32,
            role: caller.role.as_str().to_owned(),
            areas: organisation
                .areas
                .iter()
                .map(|a| pb::Area {
                    r#type: a.area_type.to_proto() as i32,
                    code: a.code.clone(),
                })
                .collect(),
        }))
    }
}
