//! Admission: a bounded number of calls in flight per caller organisation and
//! in all, so that beyond capacity a call is answered at once —
//! RESOURCE_EXHAUSTED when its organisation has too many in flight (one
//! prison estate cannot starve another), UNAVAILABLE when the service has —
//! with a `google.rpc.RetryInfo` hint, instead of queueing into its deadline.
//! A call holds its place until its handler answers: for a server stream,
//! until the stream is open (open streams are not bounded here).

use crate::config::InFlightLimits;
use crate::identity::Caller;
use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tonic::body::Body;
use tonic::server::NamedService;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// When a refused caller should try again.
const RETRY_AFTER: Duration = Duration::from_millis(200);

/// The calls in flight, shared by every service of one server.
#[derive(Debug, Clone, Default)]
pub struct Admission(Arc<Mutex<State>>);

#[derive(Debug, Default)]
struct State {
    limits: InFlightLimits,
    total: usize,
    by_organisation: HashMap<String, usize>,
}

impl Admission {
    pub fn set_limits(&self, limits: InFlightLimits) {
        self.state().limits = limits;
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.0.lock().expect("admission lock")
    }

    /// A place for a call from `organisation`, or the status refusing it.
    fn admit(&self, organisation: &str) -> Result<Place, Status> {
        let mut state = self.state();
        if state.total >= state.limits.total {
            return Err(refusal(
                Code::Unavailable,
                "the service is at capacity; retry shortly",
            ));
        }
        let limit = state.limits.per_organisation;
        let held = state
            .by_organisation
            .entry(organisation.to_owned())
            .or_default();
        if *held >= limit {
            return Err(refusal(
                Code::ResourceExhausted,
                "too many calls in flight for this organisation; retry shortly",
            ));
        }
        *held += 1;
        state.total += 1;
        Ok(Place {
            admission: self.clone(),
            organisation: organisation.to_owned(),
        })
    }
}

fn refusal(code: Code, message: &str) -> Status {
    Status::with_error_details(
        code,
        message,
        ErrorDetails::with_retry_info(Some(RETRY_AFTER)),
    )
}

/// A call's place, given back when dropped.
struct Place {
    admission: Admission,
    organisation: String,
}

impl Drop for Place {
    fn drop(&mut self) {
        let mut state = self.admission.state();
        state.total -= 1;
        if let Some(held) = state.by_organisation.get_mut(&self.organisation) {
            *held -= 1;
            if *held == 0 {
                state.by_organisation.remove(&self.organisation);
            }
        }
    }
}

/// A service whose calls are admitted first (after authentication, which
/// put the caller in the request's extensions).
#[derive(Debug, Clone)]
pub(super) struct Admitted<S> {
    inner: S,
    admission: Admission,
}

impl<S> Admitted<S> {
    pub(super) fn new(inner: S, admission: Admission) -> Self {
        Self { inner, admission }
    }
}

impl<S: NamedService> NamedService for Admitted<S> {
    const NAME: &'static str = S::NAME;
}

type Answer = Pin<Box<dyn Future<Output = Result<http::Response<Body>, Infallible>> + Send>>;

impl<S> tower::Service<http::Request<Body>> for Admitted<S>
where
    S: tower::Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = Answer;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let organisation = request
            .extensions()
            .get::<Caller>()
            .map_or("", |caller| caller.code());
        match self.admission.admit(organisation) {
            Ok(place) => {
                let answer = self.inner.call(request);
                Box::pin(async move {
                    let response = answer.await;
                    drop(place);
                    response
                })
            }
            Err(status) => Box::pin(async move { Ok(status.into_http()) }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_organisation_and_the_whole_are_bounded() {
        let admission = Admission::default();
        admission.set_limits(InFlightLimits {
            per_organisation: 2,
            total: 3,
        });
        let a1 = admission.admit("LEI").unwrap();
        let _a2 = admission.admit("LEI").unwrap();
        let refused = admission.admit("LEI").err().unwrap();
        assert_eq!(refused.code(), Code::ResourceExhausted);
        assert!(refused.get_error_details().retry_info().is_some());
        let _b1 = admission.admit("NMI").unwrap();
        assert_eq!(
            admission.admit("NMI").err().unwrap().code(),
            Code::Unavailable
        );
        drop(a1);
        assert!(
            admission.admit("NMI").is_ok(),
            "a place given back is free again"
        );
    }
}
