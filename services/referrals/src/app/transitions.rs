//! Transitions other than release, and probation's health assessments.

use super::App;
use crate::domain::area::Destination;
use crate::domain::fields::{self, date_to_proto};
use crate::domain::observations;
use crate::domain::person::Person;
use crate::domain::release::near;
use crate::domain::transitions::{Context, Transition};
use crate::domain::{health, transitions};
use crate::error::{Error, Result};
use crate::events::{self, Recorded};
use crate::store::AssessmentRow;
use crate::store::rows::PersonRow;
use crate::store::write::{self, NewAssessment, Placement};
use chrono::{DateTime, NaiveDate, Utc};
use throughcare_platform::clock::to_timestamp;
use throughcare_platform::identifiers::new_id;
use throughcare_platform::identity::Caller;
use throughcare_platform::sealing::{Keyring, Sealed};
use throughcare_platform::validation::{FieldViolation, Violations};
use throughcare_platform::work::Work;
use throughcare_proto::events::v1::{self as pb_events, ObservedFact, TransitionKind};
use throughcare_proto::referrals::v1 as pb;
use throughcare_proto::types::v1 as types;

/// A request that records a transition other than release.
pub trait TransitionRequest: prost::Message + prost::Name + Sized {
    fn idempotency_key(&self) -> &str;

    /// The transition it asks for, validated.
    fn validate(&self, context: &Context<'_>) -> Result<Transition>;
}

/// Each request type with the domain function that validates it.
macro_rules! transition_request {
    ($($request:ty => $validate:path),* $(,)?) => {$(
        impl TransitionRequest for $request {
            fn idempotency_key(&self) -> &str {
                &self.idempotency_key
            }

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

/// A validated assessment, borrowed into its transaction.
#[derive(Debug, Clone, Copy)]
struct NewFindings<'a> {
    person: &'a Person,
    area: &'a Destination,
    assessed_on: NaiveDate,
    findings: &'a types::HealthSummary,
}

fn findings_binding(assessment_id: &str, person_key: &str) -> Vec<u8> {
    format!("throughcare.assessment-findings\u{1f}{assessment_id}\u{1f}{person_key}").into_bytes()
}

/// Opens an assessment's findings, sealed at rest. Findings that cannot be
/// opened or decoded are stored data this service cannot read: an internal
/// error, never the caller's.
fn open_findings(
    keyring: &Keyring,
    assessment_id: &str,
    person_key: &str,
    sealed: &Sealed,
) -> Result<types::HealthSummary> {
    let bytes = keyring
        .open(sealed, &findings_binding(assessment_id, person_key))
        .map_err(|e| Error::internal("opening stored assessment findings", e))?;
    prost::Message::decode(bytes.as_slice())
        .map_err(|e| Error::internal("decoding stored assessment findings", e))
}

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

/// The facts a transition itself tells the indicators.
fn facts(transition: &Transition) -> Vec<ObservedFact> {
    match transition.kind {
        TransitionKind::CommunitySentence => vec![ObservedFact::InContact],
        TransitionKind::Death if transition.death == Some(pb::DeathCategory::SelfInflicted) => {
            vec![ObservedFact::Died, ObservedFact::DiedSelfInflicted]
        }
        TransitionKind::Death => vec![ObservedFact::Died],
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
        self.once(caller, request.idempotency_key(), request, move |work| {
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
        let person = write::resolve_person(
            work.tx(),
            &self.pseudonyms,
            &transition.person,
            placement(transition),
            now,
        )
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
        Ok(facts(transition)
            .into_iter()
            .map(|fact| subject.observe(fact, types::ServiceType::Unspecified, 0, at))
            .collect())
    }

    pub async fn record_assessment(
        &self,
        caller: &Caller,
        r: &pb::RecordAssessmentRequest,
    ) -> Result<pb::RecordAssessmentResponse> {
        let now = self.now();
        let today = now.date_naive();
        let mut v = Violations::new();
        let assessed_on = v.check(fields::required_date(r.assessed_on.as_ref(), "assessed_on"));
        if let Some(date) = assessed_on {
            if date > today {
                v.push(FieldViolation::new("assessed_on", "is in the future"));
            } else {
                v.check(near(date, today, "assessed_on"));
            }
        }
        let on = assessed_on.unwrap_or(today);
        let person = Person::validate(&mut v, r.person.as_ref(), "person", on);
        let area = Destination::validate(&mut v, r.area.as_ref(), "area", &self.registry);
        if area
            .as_ref()
            .is_some_and(|a| a.probation_delivery_unit.is_none())
        {
            v.push(FieldViolation::missing("area.probation_delivery_unit"));
        }
        let findings = health::validate(&mut v, r.findings.as_ref(), "findings", on);
        let (person, area, assessed_on) =
            fields::complete(v, || Some((person?, area?, assessed_on?)))?;
        let assessment = NewFindings {
            person: &person,
            area: &area,
            assessed_on,
            findings: &findings,
        };
        self.once(caller, &r.idempotency_key, r, move |work| {
            self.store_assessment(work, caller, assessment, now)
        })
        .await
    }

    async fn store_assessment(
        &self,
        mut work: Work,
        caller: &Caller,
        a: NewFindings<'_>,
        now: DateTime<Utc>,
    ) -> Result<(Work, pb::RecordAssessmentResponse)> {
        let placement = Placement {
            area: a.area,
            prison: None,
        };
        let row =
            write::resolve_person(work.tx(), &self.pseudonyms, a.person, Some(placement), now)
                .await?;
        let ids = row.ids()?.to_proto();
        let assessment_id = new_id();
        let sealed = self.keyring.seal(
            &prost::Message::encode_to_vec(a.findings),
            &findings_binding(&assessment_id, &row.person_key),
        );
        write::insert_assessment(
            work.tx(),
            NewAssessment {
                assessment_id: &assessment_id,
                person_key: &row.person_key,
                assessed_on: a.assessed_on,
                area: a.area,
                sealed: &sealed,
                recorded_by: caller.code(),
                recorded_at: now,
            },
        )
        .await?;
        let assessment = pb::Assessment {
            assessment_id,
            person: Some(ids),
            assessed_on: Some(date_to_proto(a.assessed_on)),
            area: Some(a.area.to_proto()),
            findings: Some(a.findings.clone()),
            recorded_by: caller.code().to_owned(),
            recorded_at: Some(to_timestamp(now)),
        };
        self.announce_assessment(&mut work, &row, a, &assessment, now)?;
        let response = pb::RecordAssessmentResponse {
            assessment: Some(assessment),
        };
        Ok((work, response))
    }

    /// What a recorded assessment announces: the event, the sealed record and
    /// its observations.
    fn announce_assessment(
        &self,
        work: &mut Work,
        row: &PersonRow,
        a: NewFindings<'_>,
        assessment: &pb::Assessment,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let id = &assessment.assessment_id;
        work.publish(self.topics.lifecycle(
            &row.person_key,
            &pb_events::AssessmentRecorded {
                assessment_id: id.clone(),
                person_key: row.person_key.clone(),
                assessed_on: assessment.assessed_on,
                area: assessment.area.clone(),
                recorded_by: assessment.recorded_by.clone(),
                recorded_at: assessment.recorded_at,
            },
        ));
        let record = events::health_record(
            new_id(),
            Recorded {
                source: pb_events::HealthRecordSource::Assessment,
                source_id: id,
                person_key: &row.person_key,
                ids: assessment.person.as_ref().expect("set above"),
                person: a.person,
                area: a.area,
                health: a.findings,
                recorded_by: &assessment.recorded_by,
                at: now,
            },
        );
        work.publish(self.topics.sealed_record(&self.keyring, &record));
        let subject = self.subject(
            row,
            a.area.observation_areas(None),
            self.episode_key("assessment", id),
            a.assessed_on,
        )?;
        let at = observations::start_of(a.assessed_on);
        let in_contact = subject.observe(
            ObservedFact::InContact,
            types::ServiceType::Unspecified,
            0,
            at,
        );
        let mut observed = vec![in_contact];
        observed.extend(observations::from_health(&subject, a.findings, at));
        self.observe(work, observed);
        Ok(())
    }

    /// The assessments the caller recorded for a person, findings opened.
    pub async fn list_assessments(
        &self,
        caller: &Caller,
        r: &pb::ListAssessmentsRequest,
    ) -> Result<pb::ListAssessmentsResponse> {
        let mut v = Violations::new();
        let ids = Person::ids(&mut v, r.person.as_ref(), "person");
        let ids = fields::complete(v, || ids)?;
        let Some(person_key) = self.store.person_key_of(&ids).await? else {
            return Ok(pb::ListAssessmentsResponse::default());
        };
        let person = ids.to_proto();
        let assessments = self
            .store
            .assessments(&person_key, caller.code())
            .await?
            .into_iter()
            .map(|a| self.assessment_to_proto(a, &person_key, &person, caller.code()))
            .collect::<Result<_>>()?;
        Ok(pb::ListAssessmentsResponse { assessments })
    }

    fn assessment_to_proto(
        &self,
        a: AssessmentRow,
        person_key: &str,
        person: &types::PersonIdentifiers,
        recorded_by: &str,
    ) -> Result<pb::Assessment> {
        let sealed = Sealed {
            key_id: a.findings_key_id,
            nonce: a.findings_nonce,
            ciphertext: a.findings,
        };
        let findings = open_findings(&self.keyring, &a.assessment_id, person_key, &sealed)?;
        let area = Destination {
            local_authority: a.local_authority,
            probation_region: a.probation_region,
            probation_delivery_unit: a.probation_delivery_unit,
            integrated_care_board: a.integrated_care_board,
            approved_premises: None,
        };
        Ok(pb::Assessment {
            assessment_id: a.assessment_id,
            person: Some(person.clone()),
            assessed_on: Some(date_to_proto(a.assessed_on)),
            area: Some(area.to_proto()),
            findings: Some(findings),
            recorded_by: recorded_by.to_owned(),
            recorded_at: Some(to_timestamp(a.recorded_at)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use throughcare_platform::config::Secret;
    use throughcare_platform::sealing::SealingConfig;

    fn keyring() -> Keyring {
        Keyring::new(&SealingConfig {
            current: "k1".into(),
            keys: [("k1".to_owned(), Secret::generate(32))].into(),
        })
        .unwrap()
    }

    #[test]
    fn findings_that_cannot_be_opened_are_an_internal_error() {
        let keyring = keyring();
        let findings = types::HealthSummary::default();
        let sealed = keyring.seal(
            &prost::Message::encode_to_vec(&findings),
            &findings_binding("a1", "p1"),
        );
        assert_eq!(
            open_findings(&keyring, "a1", "p1", &sealed).unwrap(),
            findings
        );
        // Moved to another assessment, or sealed with a key no longer held.
        let moved = open_findings(&keyring, "a2", "p1", &sealed).unwrap_err();
        assert!(matches!(moved, Error::Internal { .. }), "{moved:?}");
        let other_key = open_findings(&self::keyring(), "a1", "p1", &sealed).unwrap_err();
        assert!(matches!(other_key, Error::Internal { .. }));
    }

    #[test]
    fn findings_that_do_not_decode_are_an_internal_error() {
        let keyring = keyring();
        let sealed = keyring.seal(&[0xff, 0xff, 0xff], &findings_binding("a1", "p1"));
        let error = open_findings(&keyring, "a1", "p1", &sealed).unwrap_err();
        assert!(matches!(error, Error::Internal { .. }));
    }
}
