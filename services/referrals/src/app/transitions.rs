//! Transitions other than release: receptions, transfers, community
//! sentences, approved premises moves, ends of supervision and deaths.

use super::App;
use crate::domain::fields::date_to_proto;
use crate::domain::observations;
use crate::domain::transitions::{self, Context, Transition};
use crate::error::Result;
use crate::store::rows::PersonRow;
use crate::store::write::{self, Placement};
use chrono::{DateTime, Utc};
use throughcare_platform::clock::to_timestamp;
use throughcare_platform::idempotency::once;
use throughcare_platform::identifiers::new_id;
use throughcare_platform::identity::Caller;
use throughcare_platform::work::Work;
use throughcare_proto::IdempotentRequest;
use throughcare_proto::events::v1::{self as pb_events, ObservedFact, TransitionKind};
use throughcare_proto::referrals::v1 as pb;
use throughcare_proto::types::v1 as types;

/// A request that records a transition other than release.
pub trait TransitionRequest: IdempotentRequest + Sized {
    /// The transition it asks for, validated.
    fn validate(&self, context: &Context<'_>) -> Result<Transition>;
}

/// Each request type with the domain function that validates it.
macro_rules! transition_request {
    ($($request:ty => $validate:path),* $(,)?) => {$(
        impl TransitionRequest for $request {
            fn validate(&self, context: &Context<'_>) -> Result<Transition> {
                $validate(self, context)
            }
        }
    )*};
}

transition_request!(
    pb::NotifyReceptionRequest => transitions::reception,
    pb::NotifyTransferRequest => transitions::transfer,
    pb::NotifyCommunitySentenceRequest => transitions::community_sentence,
    pb::NotifyApprovedPremisesMoveRequest => transitions::approved_premises_move,
    pb::NotifySupervisionEndRequest => transitions::supervision_end,
    pb::NotifyDeathRequest => transitions::death,
);

/// Where a transition places the person, if anywhere.
fn placement(transition: &Transition) -> Option<Placement<'_>> {
    match transition.kind {
        TransitionKind::Reception | TransitionKind::Transfer => Some(Placement {
            area: &transition.area,
            prison: transition.prison.as_deref(),
        }),
        TransitionKind::CommunitySentence | TransitionKind::ApprovedPremisesMove => {
            Some(Placement {
                area: &transition.area,
                prison: None,
            })
        }
        _ => None,
    }
}

/// The facts a transition itself tells the indicators. A community or
/// suspended sentence order begins a supervision spell; a sentenced
/// reception or a recall, an end of supervision and a death end any spell
/// the person is in (a remand does not: an order runs on through it).
fn facts(transition: &Transition) -> Vec<ObservedFact> {
    use ObservedFact as F;
    let remand = transition.details.get("reception_type")
        == Some(&serde_json::json!(pb::ReceptionType::Remand.as_str_name()));
    match transition.kind {
        TransitionKind::CommunitySentence => vec![F::InContact, F::SupervisionStarted],
        TransitionKind::Reception if remand => Vec::new(),
        TransitionKind::Reception | TransitionKind::SupervisionEnd => vec![F::SupervisionEnded],
        TransitionKind::Death if transition.death == Some(pb::DeathCategory::SelfInflicted) => {
            vec![F::Died, F::DiedSelfInflicted, F::SupervisionEnded]
        }
        TransitionKind::Death => vec![F::Died, F::SupervisionEnded],
        _ => Vec::new(),
    }
}

impl App {
    /// Records a transition other than release; `wrap` builds the response
    /// from the new transition id (so replays return exactly it).
    pub async fn record_transition<Q, R>(
        &self,
        caller: &Caller,
        request: &Q,
        wrap: fn(String) -> R,
    ) -> Result<R>
    where
        Q: TransitionRequest,
        R: prost::Message + Default,
    {
        let transition = request.validate(&Context {
            caller,
            registry: &self.registry,
            today: self.now().date_naive(),
        })?;
        let now = self.now();
        let transition = &transition;
        once(&self.transactions, caller.code(), request, move |work| {
            self.store_transition(work, caller, transition, now, wrap)
        })
        .await
    }

    async fn store_transition<R>(
        &self,
        mut work: Work,
        caller: &Caller,
        transition: &Transition,
        now: DateTime<Utc>,
        wrap: fn(String) -> R,
    ) -> Result<(Work, R)> {
        let person = self
            .person(&mut work, &transition.person, placement(transition), now)
            .await?;
        let transition_id = new_id();
        write::insert_transition(
            work.tx(),
            &transition_id,
            &person.person_key,
            transition,
            caller.code(),
            now,
        )
        .await?;
        work.publish(self.topics.lifecycle(
            &person.person_key,
            &pb_events::TransitionRecorded {
                transition_id: transition_id.clone(),
                person_key: person.person_key.clone(),
                kind: transition.kind as i32,
                occurred_on: Some(date_to_proto(transition.occurred_on)),
                area: Some(transition.area.to_proto()),
                prison: transition.prison.clone().unwrap_or_default(),
                recorded_at: Some(to_timestamp(now)),
            },
        ));
        let observed = self.transition_observations(&person, transition, &transition_id)?;
        self.observe(&mut work, observed);
        Ok((work, wrap(transition_id)))
    }

    fn transition_observations(
        &self,
        person: &PersonRow,
        transition: &Transition,
        transition_id: &str,
    ) -> Result<Vec<pb_events::Observation>> {
        let areas = if transition.area.probation_delivery_unit.is_some() {
            transition.area.observation_areas(None)
        } else {
            person
                .placement()
                .observation_areas(person.prison.as_deref())
        };
        let subject = self.subject(
            person,
            areas,
            self.episode_key("transition", transition_id),
            transition.occurred_on,
        )?;
        let at = observations::start_of(transition.occurred_on);
        let mut observed: Vec<_> = facts(transition)
            .into_iter()
            .map(|fact| subject.observe(fact, types::ServiceType::Unspecified, 0, at))
            .collect();
        // An order's supervision ends when it is due to, unless something
        // ends it first: the end is part of the order's own episode.
        if let Some(ends_on) = transition.ends_on {
            observed.push(subject.observe(
                ObservedFact::SupervisionEnded,
                types::ServiceType::Unspecified,
                0,
                observations::start_of(ends_on),
            ));
        }
        Ok(observed)
    }
}
