//! The one error type of every use case, in terms any transport can answer:
//! what kind of failure it is, never how it is sent. The gRPC edge maps it to a
//! status in exactly one place ([`crate::grpc::status`]); domain and
//! application code never build a transport status.

use crate::validation::{FieldViolation, Invalid};

/// Why a request was not done. Messages are for the caller: they name fields
/// and rules, never identifiers or health facts.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request itself is wrong: every bad field, with why.
    #[error(transparent)]
    Invalid(#[from] Invalid),
    /// Nobody (known) is calling.
    #[error("{0}")]
    Unauthenticated(String),
    /// The caller may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// Not there, or not visible to the caller: the same answer either way.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// It exists already, or the same key was used for something else.
    #[error("{0}")]
    Conflict(String),
    /// The thing exists but is not in a state that allows this.
    #[error("{message}")]
    Precondition { subject: String, message: String },
    /// Not done now, may succeed if retried as it was.
    #[error("{0}")]
    Unavailable(String),
    /// Something that must not happen did (a broken invariant, stored data
    /// that cannot be read, the database failing): logged with its cause
    /// chain, answered without internals.
    #[error("{context}")]
    Internal {
        context: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An internal failure with its cause.
    pub fn internal(
        context: &'static str,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Error::Internal {
            context,
            source: source.into(),
        }
    }

    /// FAILED_PRECONDITION on `subject` (e.g. `referral`).
    pub fn precondition(subject: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Precondition {
            subject: subject.into(),
            message: message.into(),
        }
    }

    /// The full cause chain, for logs.
    pub fn chain(&self) -> String {
        let mut chain = self.to_string();
        let mut source = std::error::Error::source(self);
        while let Some(cause) = source {
            chain.push_str(": ");
            chain.push_str(&cause.to_string());
            source = cause.source();
        }
        chain
    }
}

impl From<FieldViolation> for Error {
    fn from(violation: FieldViolation) -> Self {
        Error::Invalid(violation.into())
    }
}

impl From<sqlx::Error> for Error {
    /// The database going away (a restart, a cut connection, an exhausted
    /// pool) is UNAVAILABLE, which callers retry; anything else is a fault.
    fn from(error: sqlx::Error) -> Self {
        if database_unreachable(&error) {
            tracing::warn!(%error, "the database is unreachable");
            Error::Unavailable("the database is unreachable; retry".into())
        } else {
            Error::internal("database", error)
        }
    }
}

/// Whether `error` says the database could not be reached or dropped the
/// connection, rather than that a statement failed.
pub fn database_unreachable(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        // The connection exceptions of class 08 (not 08P01, a protocol
        // violation, which a retry repeats); 53300, no connection slot free;
        // 57P01-03, the server shutting down, crashed or still starting.
        sqlx::Error::Database(e) => e.code().is_some_and(|c| {
            matches!(
                &*c,
                "08000"
                    | "08001"
                    | "08003"
                    | "08004"
                    | "08006"
                    | "53300"
                    | "57P01"
                    | "57P02"
                    | "57P03"
            )
        }),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chain_names_every_cause() {
        let error = Error::internal("store", std::io::Error::other("disk gone"));
        assert_eq!(error.chain(), "store: disk gone");
    }
}
