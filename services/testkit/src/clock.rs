//! The clock the kit gives the services: moved by the test, and watched, so a
//! test can wait until a periodic job has run on the new time instead of
//! sleeping and hoping it did.

use crate::{WAIT, eventually};
use chrono::{DateTime, SubsecRound, Utc};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use throughcare_platform::clock::Clock;
use tokio::task::Id;

/// A test clock: manual (moves only when told to, and counts which tasks read
/// it since it last moved) or the system's.
#[derive(Debug)]
pub struct TestClock(Mutex<State>);

#[derive(Debug)]
struct State {
    /// `None`: the system clock.
    manual: Option<DateTime<Utc>>,
    /// Reads per task since the clock last moved.
    reads: HashMap<Id, u32>,
}

impl TestClock {
    /// A clock at `at` that moves only when told to.
    pub fn manual(at: DateTime<Utc>) -> Arc<Self> {
        Self::with(Some(at.trunc_subsecs(6)))
    }

    /// The system clock (for benchmarks).
    pub fn system() -> Arc<Self> {
        Self::with(None)
    }

    fn with(manual: Option<DateTime<Utc>>) -> Arc<Self> {
        Arc::new(Self(Mutex::new(State {
            manual,
            reads: HashMap::new(),
        })))
    }

    pub fn advance(&self, by: chrono::Duration) {
        let mut state = self.0.lock().expect("clock");
        let now = state.manual.expect("a manual clock");
        state.manual = Some(now + by);
        state.reads.clear();
    }

    pub fn set(&self, to: DateTime<Utc>) {
        let mut state = self.0.lock().expect("clock");
        assert!(state.manual.is_some(), "a manual clock");
        state.manual = Some(to.trunc_subsecs(6));
        state.reads.clear();
    }

    /// Waits until a periodic job — one task that reads the clock once at the
    /// start of each run and runs one after another, like the referrals
    /// overdue sweep or the indicators publisher — has finished `runs` whole
    /// runs on the time the clock was last moved to: until one task has read
    /// it `runs + 1` times since. Call it while the test sends nothing else.
    pub async fn wait_for_periodic_runs(&self, runs: u32, what: &str) {
        eventually(WAIT, what, || async {
            let state = self.0.lock().expect("clock");
            (state.reads.values().max().copied().unwrap_or(0) > runs).then_some(())
        })
        .await;
    }
}

impl Clock for TestClock {
    fn now(&self) -> DateTime<Utc> {
        let mut state = self.0.lock().expect("clock");
        let Some(now) = state.manual else {
            return Utc::now().trunc_subsecs(6);
        };
        if let Some(task) = tokio::task::try_id() {
            *state.reads.entry(task).or_default() += 1;
        }
        now
    }
}
