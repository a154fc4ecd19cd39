//! Time as a dependency: services read it from a [`Clock`] so tests can move it
//! (deadlines, overdue tasks) without sleeping.

use chrono::{DateTime, SubsecRound, Utc};
use std::fmt::Debug;
use std::sync::{Arc, Mutex};

pub trait Clock: Send + Sync + Debug {
    /// Now, at microsecond precision (what PostgreSQL and the event headers keep).
    fn now(&self) -> DateTime<Utc>;
}

pub type SharedClock = Arc<dyn Clock>;

/// The real clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now().trunc_subsecs(6)
    }
}

/// A clock that moves only when told to (tests).
#[derive(Debug)]
pub struct ManualClock(Mutex<DateTime<Utc>>);

impl ManualClock {
    pub fn new(start: DateTime<Utc>) -> Arc<Self> {
        Arc::new(Self(Mutex::new(start.trunc_subsecs(6))))
    }

    pub fn advance(&self, by: chrono::Duration) {
        *self.0.lock().expect("clock") += by;
    }

    pub fn set(&self, to: DateTime<Utc>) {
        *self.0.lock().expect("clock") = to.trunc_subsecs(6);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().expect("clock")
    }
}

/// `at` as a protobuf timestamp.
pub fn to_timestamp(at: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: at.timestamp(),
        nanos: at.timestamp_subsec_nanos() as i32,
    }
}

/// A protobuf timestamp from a request, at microsecond precision; a violation
/// naming `field` if it is out of range.
pub fn from_timestamp(
    t: &prost_types::Timestamp,
    field: &str,
) -> Result<DateTime<Utc>, crate::validation::FieldViolation> {
    DateTime::from_timestamp(t.seconds, u32::try_from(t.nanos).unwrap_or(u32::MAX))
        .map(|t| t.trunc_subsecs(6))
        .ok_or_else(|| crate::validation::FieldViolation::new(field, "is not a valid timestamp"))
}
