//! The Throughcare platform: what every service stands on, written once and
//! proven once, so each service is only domain logic.
//!
//! - [`config`]: figment configuration (defaults, file, `THROUGHCARE_` env).
//! - [`identifiers`]: NHS number, prison number, CRN and organisation codes that
//!   can only be built valid; pseudonymous person keys.
//! - [`identity`]: the caller (organisation, kind, role) from mTLS or bearer token.
//! - [`bus`]: Kafka and in-process buses behind one narrow interface, and the
//!   consume loop with retries and dead-lettering.
//! - [`outbox`] and [`inbox`]: effectively-once effects across services.
//! - [`db`]: PostgreSQL or SQLite, migrated at start-up; SQL written once for both.
//! - [`idempotency`]: replay-safe mutating RPCs.
//! - [`sealing`]: AEAD for person-level records on shared topics.
//! - [`clock`]: time as a dependency.
//! - [`grpc`]: the server scaffolding (health, reflection, auth, TLS, shutdown).
//! - [`telemetry`]: tracing, OpenTelemetry, trace propagation, metrics.

pub mod bus;
pub mod clock;
pub mod config;
pub mod db;
pub mod feed;
pub mod grpc;
pub mod idempotency;
pub mod identifiers;
pub mod identity;
pub mod inbox;
pub mod outbox;
pub mod sealing;
pub mod service;
pub mod shutdown;
pub mod telemetry;
pub mod testing;
pub mod validation;
