//! The referrals service's one error type and its one mapping to gRPC status.

use crate::domain::referral::TransitionError;
use crate::store::StoreError;
use throughcare_platform::idempotency::IdempotencyError;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Already a complete answer: validation (INVALID_ARGUMENT with field
    /// details) or authorisation (PERMISSION_DENIED) at the edge.
    #[error("{}", .0.message())]
    Rejected(Status),
    /// Not there, or not visible to the caller: the same answer either way.
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error(transparent)]
    Transition(#[from] TransitionError),
    /// The thing exists but is not in a state that allows this.
    #[error("{message}")]
    Precondition { subject: String, message: String },
    #[error("{0}")]
    AlreadyExists(String),
    #[error(transparent)]
    Idempotency(#[from] IdempotencyError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<Status> for Error {
    fn from(status: Status) -> Self {
        Error::Rejected(status)
    }
}

impl From<crate::store::rows::CorruptRow> for Error {
    fn from(error: crate::store::rows::CorruptRow) -> Self {
        Error::Store(StoreError::Corrupt(error))
    }
}

impl From<sqlx::Error> for Error {
    fn from(error: sqlx::Error) -> Self {
        Error::Store(StoreError::Database(error))
    }
}

fn precondition(subject: &str, message: String) -> Status {
    let mut details = ErrorDetails::new();
    details.add_precondition_failure_violation("STATE", subject, message.clone());
    Status::with_error_details(Code::FailedPrecondition, message, details)
}

impl From<Error> for Status {
    fn from(error: Error) -> Self {
        match error {
            Error::Rejected(status) => status,
            Error::NotFound(what) => Status::not_found(format!("{what} not found")),
            Error::Transition(e @ TransitionError::WrongParty { .. }) => {
                Status::permission_denied(e.to_string())
            }
            Error::Transition(e @ TransitionError::WrongState { .. }) => {
                precondition("referral", e.to_string())
            }
            Error::Precondition { subject, message } => precondition(&subject, message),
            Error::AlreadyExists(message) => Status::already_exists(message),
            Error::Idempotency(e) => e.into(),
            Error::Store(StoreError::Conflict(message)) => Status::already_exists(message),
            Error::Store(e) => throughcare_platform::grpc::internal("referrals store", &e),
        }
    }
}

pub type Result<T> = std::result::Result<T, Error>;
