//! The Throughcare platform: what every service stands on, written once and
//! proven once, so each service is only domain logic. Its floors stack one way
//! (each uses only those above it in this list; `tests/it/floors.rs`
//! holds it to that):
//!
//! - [`validation`], [`identifiers`], [`clock`], [`secret`]: field violations,
//!   valid-only identifiers and pseudonymous person keys, time as a
//!   dependency, secrets that are never printed.
//! - [`telemetry`]: tracing, OpenTelemetry, trace propagation, metrics.
//! - [`error`]: the one error type of every use case.
//! - [`identity`]: the caller (organisation, kind, role) from mTLS or bearer token.
//! - [`config`], [`shutdown`]: figment configuration (every floor's section
//!   gathered in one), the shutdown signal.
//! - [`sealing`]: AEAD for person-level records on shared topics.
//! - [`db`]: PostgreSQL or SQLite, migrated at start-up; SQL written once for both.
//! - [`bus`]: Kafka and in-process buses behind one narrow interface; CloudEvents;
//!   the consume loop with retries and dead-lettering.
//! - [`outbox`], [`feed`]: events published iff their transaction commits;
//!   per-organisation change feeds.
//! - [`work`]: the unit of work (state, events and feed entries in one
//!   transaction, the relay and watchers woken after commit).
//! - [`inbox`], [`idempotency`]: effectively-once consumers and replay-safe RPCs,
//!   both on top of a unit of work.
//! - [`grpc`]: the server scaffolding (health, reflection, auth, TLS, shutdown)
//!   and the one mapping from [`error::Error`] to a gRPC status.
//! - [`service`]: start-up and supervision of a whole service.
//! - [`testing`]: support for tests against the real parts.

pub mod bus;
pub mod clock;
pub mod config;
pub mod db;
pub mod error;
pub mod feed;
pub mod grpc;
pub mod idempotency;
pub mod identifiers;
pub mod identity;
pub mod inbox;
pub mod outbox;
pub mod sealing;
pub mod secret;
pub mod service;
pub mod shutdown;
pub mod telemetry;
pub mod testing;
pub mod validation;
pub mod work;
