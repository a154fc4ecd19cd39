//! The indicators service's error type and its mapping to gRPC status.

use throughcare_platform::idempotency::IdempotencyError;
use throughcare_platform::validation::FieldViolation;
use tonic::Status;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Already a complete answer (validation or authorisation at the edge).
    #[error("{}", .0.message())]
    Rejected(Status),
    #[error(transparent)]
    Idempotency(#[from] IdempotencyError),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
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

impl From<Error> for Status {
    fn from(error: Error) -> Self {
        match error {
            Error::Rejected(status) => status,
            Error::Idempotency(e) => e.into(),
            Error::Database(e) => throughcare_platform::grpc::internal("indicators store", &e),
        }
    }
}

pub type Result<T> = std::result::Result<T, Error>;
