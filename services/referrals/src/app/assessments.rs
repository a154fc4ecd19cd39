//! Probation's health assessments: findings validated, sealed at rest and
//! for the sharing service, observed for the indicators, and read back only
//! by the organisation that recorded them.

use super::App;
use crate::domain::area::{Destination, probation_record};
use crate::domain::fields::{self, date_to_proto};
use crate::domain::health;
use crate::domain::observations;
use crate::domain::person::Person;
use crate::error::{Error, Result};
use crate::events::{self, Recorded};
use crate::store::AssessmentRow;
use crate::store::rows::PersonRow;
use crate::store::write::{self, NewAssessment, Placement};
use chrono::{DateTime, NaiveDate, Utc};
use throughcare_platform::clock::to_timestamp;
use throughcare_platform::idempotency::once;
use throughcare_platform::identifiers::new_id;
use throughcare_platform::identity::Caller;
use throughcare_platform::sealing::{Keyring, Sealed};
use throughcare_platform::validation::Violations;
use throughcare_platform::work::Work;
use throughcare_proto::events::v1::{self as pb_events, ObservedFact};
use throughcare_proto::referrals::v1 as pb;
use throughcare_proto::types::v1 as types;

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

impl App {
    pub async fn record_assessment(
        &self,
        caller: &Caller,
        r: &pb::RecordAssessmentRequest,
    ) -> Result<pb::RecordAssessmentResponse> {
        let now = self.now();
        let today = now.date_naive();
        let mut v = Violations::new();
        let (assessed_on, person, area) = probation_record(
            &mut v,
            (r.assessed_on.as_ref(), "assessed_on"),
            r.person.as_ref(),
            r.area.as_ref(),
            &self.registry,
            today,
        );
        let on = assessed_on.unwrap_or(today);
        let findings = health::validate(&mut v, r.findings.as_ref(), "findings", on);
        let (person, area, assessed_on) =
            fields::complete(v, || Some((person?, area?, assessed_on?)))?;
        let assessment = NewFindings {
            person: &person,
            area: &area,
            assessed_on,
            findings: &findings,
        };
        once(&self.transactions, caller.code(), r, move |work| {
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
        let row = self
            .person(&mut work, a.person, Some(placement), now)
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
