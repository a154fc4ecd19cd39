//! The sharing service's one error type and its mapping to gRPC status.

use crate::store::StoreError;
use throughcare_platform::idempotency::IdempotencyError;
use throughcare_platform::validation::FieldViolation;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Already a complete answer (validation or authorisation at the edge).
    #[error("{}", .0.message())]
    Rejected(Status),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0}")]
    Precondition(String),
    #[error(transparent)]
    Idempotency(#[from] IdempotencyError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Internal(String),
}

impl From<Status> for Error {
    fn from(status: Status) -> Self {
        Error::Rejected(status)
    }
}

impl From<FieldViolation> for Error {
    fn from(violation: FieldViolation) -> Self {
        Error::Rejected(violation.into())
    }
}

impl From<sqlx::Error> for Error {
    fn from(error: sqlx::Error) -> Self {
        Error::Store(StoreError::Database(error))
    }
}

impl From<Error> for Status {
    fn from(error: Error) -> Self {
        match error {
            Error::Rejected(status) => status,
            Error::NotFound(what) => Status::not_found(format!("{what} not found")),
            Error::Precondition(message) => {
                let mut details = ErrorDetails::new();
                details.add_precondition_failure_violation("STATE", "sharing", message.clone());
                Status::with_error_details(Code::FailedPrecondition, message, details)
            }
            Error::Idempotency(e) => e.into(),
            Error::Store(e) => throughcare_platform::grpc::internal("sharing store", &e),
            Error::Internal(message) => {
                tracing::error!(error = %message, "sharing");
                Status::internal("internal error")
            }
        }
    }
}

pub type Result<T> = std::result::Result<T, Error>;
