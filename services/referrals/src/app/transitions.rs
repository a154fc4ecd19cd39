//! Transitions other than release, and probation's health assessments.

use super::{App, Effects, new_id};
use crate::domain::area::Destination;
use crate::domain::fields::{self, date_to_proto, timestamp_to_proto};
use crate::domain::observations;
use crate::domain::person::Person;
use crate::domain::release::near;
use crate::domain::transitions::Transition;
use crate::domain::{health, transitions};
use crate::error::{Error, Result};
use crate::store::write::{self, NewAssessment, Placement};
use chrono::{DateTime, Utc};
use throughcare_platform::db::Tx;
use throughcare_platform::idempotency::{IdempotencyKey, idempotent};
use throughcare_platform::identity::Caller;
use throughcare_platform::sealing::Sealed;
use throughcare_platform::validation::{FieldViolation, Violations};
use throughcare_proto::events::v1::{self as events, ObservedFact, TransitionKind};
use throughcare_proto::referrals::v1 as pb;
use throughcare_proto::types::v1 as types;

/// A validated assessment, borrowed into its transaction.
#[derive(Debug, Clone, Copy)]
struct NewFindings<'a> {
    person: &'a Person,
    area: &'a Destination,
    assessed_on: chrono::NaiveDate,
    findings: &'a types::HealthSummary,
}

fn findings_binding(assessment_id: &str, person_key: &str) -> Vec<u8> {
    format!("throughcare.assessment-findings\u{1f}{assessment_id}\u{1f}{person_key}").into_bytes()
}

impl App {
    /// Records a transition other than release; `wrap` builds the response
    /// from the new transition id (so replays return exactly it).
    pub async fn record_transition<R>(
        &self,
        caller: &Caller,
        operation: &'static str,
        idempotency_key: &str,
        request: &impl prost::Message,
        transition: Transition,
        wrap: fn(String) -> R,
    ) -> Result<R>
    where
        R: prost::Message + Default,
    {
        let key = IdempotencyKey::new(caller.code(), operation, idempotency_key, request)?;
        let now = self.now();
        let transition = &transition;
        let response = idempotent(self.store.db(), &key, |mut tx| async move {
            let id = self
                .store_transition(&mut tx, caller, transition, now)
                .await?;
            Ok::<_, Error>((tx, wrap(id)))
        })
        .await?;
        self.committed();
        Ok(response)
    }

    async fn store_transition(
        &self,
        tx: &mut Tx,
        caller: &Caller,
        transition: &Transition,
        now: DateTime<Utc>,
    ) -> Result<String> {
        let placement = match transition.kind {
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
        };
        let person =
            write::resolve_person(tx, &self.pseudonyms, &transition.person, placement, now).await?;
        let transition_id = new_id();
        write::insert_transition(
            tx,
            &transition_id,
            &person.person_key,
            transition,
            caller.code(),
            now,
        )
        .await?;
        let mut effects = Effects::default();
        effects.push(self.topics.lifecycle(
            &person.person_key,
            &events::TransitionRecorded {
                transition_id: transition_id.clone(),
                person_key: person.person_key.clone(),
                kind: transition.kind as i32,
                occurred_on: Some(date_to_proto(transition.occurred_on)),
                area: Some(transition.area.to_proto()),
                prison: transition.prison.clone().unwrap_or_default(),
                recorded_at: Some(timestamp_to_proto(now)),
            },
        ));
        let areas = if transition.area.probation_delivery_unit.is_some() {
            transition.area.observation_areas(None)
        } else {
            person
                .placement()
                .observation_areas(person.prison.as_deref())
        };
        let subject = self.subject(
            &person,
            areas,
            self.episode_key("transition", &transition_id),
            transition.occurred_on,
        )?;
        let at = observations::start_of(transition.occurred_on);
        let mut facts = Vec::new();
        match transition.kind {
            TransitionKind::CommunitySentence => facts.push(ObservedFact::InContact),
            TransitionKind::Death => {
                facts.push(ObservedFact::Died);
                if transition.death == Some(pb::DeathCategory::SelfInflicted) {
                    facts.push(ObservedFact::DiedSelfInflicted);
                }
            }
            _ => {}
        }
        for fact in facts {
            effects.observe(subject.observe(fact, types::ServiceType::Unspecified, 0, at));
        }
        effects.enqueue(tx, &self.topics).await?;
        Ok(transition_id)
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
        let (person, area, assessed_on) = v
            .finish(|| Some((person?, area?, assessed_on?)))?
            .ok_or_else(|| tonic::Status::internal("validated assessment is incomplete"))?;
        let key = IdempotencyKey::new(caller.code(), "RecordAssessment", &r.idempotency_key, r)?;
        let assessment = NewFindings {
            person: &person,
            area: &area,
            assessed_on,
            findings: &findings,
        };
        let response = idempotent(self.store.db(), &key, |mut tx| async move {
            let response = self
                .store_assessment(&mut tx, caller, assessment, now)
                .await?;
            Ok::<_, Error>((tx, response))
        })
        .await?;
        self.committed();
        Ok(response)
    }

    async fn store_assessment(
        &self,
        tx: &mut Tx,
        caller: &Caller,
        a: NewFindings<'_>,
        now: DateTime<Utc>,
    ) -> Result<pb::RecordAssessmentResponse> {
        let (person, area, findings, assessed_on) = (a.person, a.area, a.findings, a.assessed_on);
        let row = write::resolve_person(
            tx,
            &self.pseudonyms,
            person,
            Some(Placement { area, prison: None }),
            now,
        )
        .await?;
        let ids = row.ids()?.to_proto();
        let assessment_id = new_id();
        let sealed = self.keyring.seal(
            &prost::Message::encode_to_vec(findings),
            &findings_binding(&assessment_id, &row.person_key),
        );
        write::insert_assessment(
            tx,
            NewAssessment {
                assessment_id: &assessment_id,
                person_key: &row.person_key,
                assessed_on,
                area,
                sealed: &sealed,
                recorded_by: caller.code(),
                recorded_at: now,
            },
        )
        .await?;
        let mut effects = Effects::default();
        effects.push(self.topics.lifecycle(
            &row.person_key,
            &events::AssessmentRecorded {
                assessment_id: assessment_id.clone(),
                person_key: row.person_key.clone(),
                assessed_on: Some(date_to_proto(assessed_on)),
                area: Some(area.to_proto()),
                recorded_by: caller.code().to_owned(),
                recorded_at: Some(timestamp_to_proto(now)),
            },
        ));
        effects.push(self.topics.sealed_record(
            &self.keyring,
            &events::HealthRecord {
                record_id: new_id(),
                source: events::HealthRecordSource::Assessment as i32,
                source_id: assessment_id.clone(),
                person_key: row.person_key.clone(),
                person: Some(types::PersonDetails {
                    identifiers: Some(ids.clone()),
                    date_of_birth: person.date_of_birth.map(date_to_proto),
                    sex: person.sex as i32,
                    ethnic_group: person.ethnic_group as i32,
                }),
                destination: Some(area.to_proto()),
                health: Some(findings.clone()),
                recorded_by: caller.code().to_owned(),
                recorded_at: Some(timestamp_to_proto(now)),
            },
        ));
        let subject = self.subject(
            &row,
            area.observation_areas(None),
            self.episode_key("assessment", &assessment_id),
            assessed_on,
        )?;
        let at = observations::start_of(assessed_on);
        effects.observe(subject.observe(
            ObservedFact::InContact,
            types::ServiceType::Unspecified,
            0,
            at,
        ));
        for observation in observations::from_health(&subject, findings, at) {
            effects.observe(observation);
        }
        effects.enqueue(tx, &self.topics).await?;
        Ok(pb::RecordAssessmentResponse {
            assessment: Some(pb::Assessment {
                assessment_id,
                person: Some(ids),
                assessed_on: Some(date_to_proto(assessed_on)),
                area: Some(area.to_proto()),
                findings: Some(findings.clone()),
                recorded_by: caller.code().to_owned(),
                recorded_at: Some(timestamp_to_proto(now)),
            }),
        })
    }

    /// The assessments the caller recorded for a person, findings opened.
    pub async fn list_assessments(
        &self,
        caller: &Caller,
        r: &pb::ListAssessmentsRequest,
    ) -> Result<pb::ListAssessmentsResponse> {
        let mut v = Violations::new();
        let ids = Person::ids(&mut v, r.person.as_ref(), "person");
        let ids = v
            .finish(|| ids)?
            .ok_or_else(|| tonic::Status::internal("validated identifiers are missing"))?;
        let Some(person_key) = self.store.person_key_of(&ids).await? else {
            return Ok(pb::ListAssessmentsResponse::default());
        };
        let mut assessments = Vec::new();
        for a in self.store.assessments(&person_key, caller.code()).await? {
            let sealed = Sealed {
                key_id: a.findings_key_id,
                nonce: a.findings_nonce,
                ciphertext: a.findings,
            };
            let bytes = self
                .keyring
                .open(&sealed, &findings_binding(&a.assessment_id, &person_key))
                .map_err(|e| Error::Store(crate::store::StoreError::Conflict(e.to_string())))?;
            let findings: types::HealthSummary =
                prost::Message::decode(bytes.as_slice()).map_err(|_| {
                    Error::Store(crate::store::StoreError::Conflict(
                        "stored findings do not decode".into(),
                    ))
                })?;
            assessments.push(pb::Assessment {
                assessment_id: a.assessment_id,
                person: Some(ids.to_proto()),
                assessed_on: Some(date_to_proto(a.assessed_on)),
                area: Some(
                    Destination {
                        local_authority: a.local_authority,
                        probation_region: a.probation_region,
                        probation_delivery_unit: a.probation_delivery_unit,
                        integrated_care_board: a.integrated_care_board,
                        approved_premises: None,
                    }
                    .to_proto(),
                ),
                findings: Some(findings),
                recorded_by: caller.code().to_owned(),
                recorded_at: Some(timestamp_to_proto(a.recorded_at)),
            });
        }
        Ok(pb::ListAssessmentsResponse { assessments })
    }
}

/// Validation entry points for the transition RPCs, so the gRPC layer stays thin.
pub fn validate(caller: &Caller, app: &App, request: TransitionRequest<'_>) -> Result<Transition> {
    let today = app.now().date_naive();
    Ok(match request {
        TransitionRequest::Reception(r) => transitions::reception(r, caller, today)?,
        TransitionRequest::Transfer(r) => transitions::transfer(r, caller, today)?,
        TransitionRequest::CommunitySentence(r) => {
            transitions::community_sentence(r, &app.registry, today)?
        }
        TransitionRequest::ApprovedPremisesMove(r) => {
            transitions::approved_premises_move(r, &app.registry, today)?
        }
        TransitionRequest::SupervisionEnd(r) => {
            transitions::supervision_end(r, &app.registry, today)?
        }
        TransitionRequest::Death(r) => transitions::death(r, &app.registry, today)?,
    })
}

#[derive(Debug, Clone, Copy)]
pub enum TransitionRequest<'a> {
    Reception(&'a pb::NotifyReceptionRequest),
    Transfer(&'a pb::NotifyTransferRequest),
    CommunitySentence(&'a pb::NotifyCommunitySentenceRequest),
    ApprovedPremisesMove(&'a pb::NotifyApprovedPremisesMoveRequest),
    SupervisionEnd(&'a pb::NotifySupervisionEndRequest),
    Death(&'a pb::NotifyDeathRequest),
}
