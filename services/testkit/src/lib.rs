//! One test kit for the services' integration tests and benches: starts any
//! service on port 0 on either backend — PostgreSQL with the Kafka broker, or
//! SQLite with the in-process bus — with the organisations, tokens and clock
//! a suite asks for, and waits on what the services do instead of sleeping.
//!
//! A suite keeps only what is its own: who it acts as, its requests, its
//! assertions. It builds a [`Stack`] for a [`Backend`], starts the services it
//! needs on it ([`Stack::serve`], or `start_referrals`/`start_sharing` with
//! those features), and lists its tests once in [`on_both_backends!`].

mod auth;
pub mod bench;
mod clock;
mod events;
pub mod health;
pub mod organisations;
mod people;
mod stack;
mod status;

#[cfg(feature = "referrals")]
mod referrals;
#[cfg(feature = "referrals")]
pub use referrals::REFERRALS_HEALTH;
#[cfg(feature = "sharing")]
mod sharing;
#[cfg(feature = "sharing")]
pub use sharing::SHARING_HEALTH;

pub use auth::{Authed, Organisation, bearer, token};
pub use clock::TestClock;
pub use events::EventLog;
pub use people::{date, nhs_number, start};
pub use stack::{Backend, Running, Stack, count, wait_serving};
pub use status::bad_request_fields;
pub use throughcare_platform::testing::{eventually, unique};

use std::time::Duration;

/// How long a test waits for an asynchronous effect before it fails.
pub const WAIT: Duration = Duration::from_secs(30);

/// Runs each listed test on both backends: `on_both_backends!(Rig; module::test, ...)`
/// makes `postgres_kafka::test` and `sqlite_in_process::test`, each calling
/// `module::test(Rig::start(backend).await)` (`module` beside the macro call).
#[macro_export]
macro_rules! on_both_backends {
    ($rig:ty; $($module:ident :: $test:ident),* $(,)?) => {
        $crate::on_both_backends!(@backend postgres_kafka, PostgresKafka, $rig; $($module::$test),*);
        $crate::on_both_backends!(@backend sqlite_in_process, SqliteInProcess, $rig; $($module::$test),*);
    };
    (@backend $name:ident, $backend:ident, $rig:ty; $($module:ident :: $test:ident),*) => {
        mod $name {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$module::$test(<$rig>::start($crate::Backend::$backend).await).await
                }
            )*
        }
    };
}
