//! gRPC scaffolding every service reuses: authenticated services behind the
//! [`Authenticator`](crate::identity::Authenticator), grpc.health.v1, server
//! reflection, the identity service, tracing and latency metrics, mutual TLS,
//! and graceful shutdown.

mod admission;
mod bearer;
mod identity_service;
mod server;

pub use crate::config::InFlightLimits;
pub use admission::Admission;
pub use bearer::Bearer;
pub use identity_service::IdentityServiceImpl;
pub use server::{DEAD_LETTERS_HEALTH, GrpcServer, ServeError};

use crate::error::Error;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// A use case's result as a gRPC response: its error mapped by [`status`].
pub fn respond<T>(result: Result<T, Error>) -> Result<tonic::Response<T>, Status> {
    result.map(tonic::Response::new).map_err(status)
}

impl From<Error> for Status {
    fn from(error: Error) -> Self {
        status(error)
    }
}

/// The one place an error becomes a gRPC status: a stable code per kind,
/// `google.rpc.BadRequest` field details for invalid requests,
/// `PreconditionFailure` details for wrong states. Internal errors are logged
/// with their cause chain and answered without internals.
pub fn status(error: Error) -> Status {
    match error {
        Error::Invalid(invalid) => {
            let mut details = ErrorDetails::new();
            for v in invalid.violations() {
                details.add_bad_request_violation(v.field.clone(), v.description.clone());
            }
            Status::with_error_details(Code::InvalidArgument, invalid.to_string(), details)
        }
        Error::Unauthenticated(message) => Status::unauthenticated(message),
        Error::Forbidden(message) => Status::permission_denied(message),
        Error::NotFound(what) => Status::not_found(format!("{what} not found")),
        Error::Conflict(message) => Status::already_exists(message),
        Error::Precondition { subject, message } => {
            let mut details = ErrorDetails::new();
            details.add_precondition_failure_violation("STATE", subject, message.clone());
            Status::with_error_details(Code::FailedPrecondition, message, details)
        }
        Error::Unavailable(message) => Status::unavailable(message),
        internal @ Error::Internal { .. } => {
            tracing::error!(error = %internal.chain(), "internal error");
            Status::internal("internal error")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validation::FieldViolation;

    #[test]
    fn invalid_requests_name_the_field_in_bad_request_details() {
        let error: Error = FieldViolation::new("nhs_number", "nhs number fails its check digit")
            .within("person.identifiers")
            .into();
        let status = status(error);
        assert_eq!(status.code(), Code::InvalidArgument);
        assert!(status.message().contains("person.identifiers.nhs_number"));
        let details = status.get_error_details();
        let bad = details.bad_request().expect("bad request details");
        assert_eq!(
            bad.field_violations[0].field,
            "person.identifiers.nhs_number"
        );
    }

    #[test]
    fn internal_errors_say_nothing_of_their_cause() {
        let status = status(Error::internal(
            "store",
            std::io::Error::other("row 7 of people"),
        ));
        assert_eq!(status.code(), Code::Internal);
        assert_eq!(status.message(), "internal error");
    }

    #[test]
    fn wrong_states_carry_precondition_details() {
        let status = status(Error::precondition("referral", "referral is completed"));
        assert_eq!(status.code(), Code::FailedPrecondition);
        let details = status.get_error_details();
        assert_eq!(
            details.precondition_failure().unwrap().violations[0].subject,
            "referral"
        );
    }
}
