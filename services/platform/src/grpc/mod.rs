//! gRPC scaffolding every service reuses: authenticated services behind the
//! [`Authenticator`](crate::identity::Authenticator), grpc.health.v1, server
//! reflection, the identity service, tracing and latency metrics, mutual TLS,
//! and graceful shutdown.

mod bearer;
mod identity_service;
mod server;

pub use bearer::Bearer;
pub use identity_service::IdentityServiceImpl;
pub use server::{GrpcServer, ServeError};

/// A use case's result as a gRPC response: its error mapped to a status.
pub fn respond<T, E>(result: Result<T, E>) -> Result<tonic::Response<T>, tonic::Status>
where
    tonic::Status: From<E>,
{
    result
        .map(tonic::Response::new)
        .map_err(tonic::Status::from)
}

use tonic::Status;

/// INTERNAL for an unexpected failure: the cause chain is logged, the caller
/// learns nothing about internals.
pub fn internal(context: &str, error: &(dyn std::error::Error + 'static)) -> Status {
    let mut chain = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        chain.push_str(": ");
        chain.push_str(&cause.to_string());
        source = cause.source();
    }
    tracing::error!(error = %chain, "{context}");
    Status::internal("internal error")
}
