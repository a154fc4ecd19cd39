//! Consent: recorded, listed and withdrawn on the person's behalf.

use super::{App, complete};
use crate::domain::convert;
use crate::domain::decision::{self, Consent};
use crate::store::{self, ConsentRow, Reader, people};
use throughcare_platform::clock::to_timestamp;
use throughcare_platform::error::{Error, Result};
use throughcare_platform::idempotency::once;
use throughcare_platform::identifiers::{PersonIds, new_id};
use throughcare_platform::identity::Caller;
use throughcare_platform::validation::{FieldViolation, Violations};
use throughcare_proto::events::v1 as events;
use throughcare_proto::sharing::v1 as pb;
use throughcare_proto::types::v1::TimeRange;

/// A stored consent's provision, as recorded (validated then).
fn provision(row: &ConsentRow) -> Result<pb::Provision> {
    prost::Message::decode(row.provision.as_slice())
        .map_err(|e| Error::internal("decoding a stored consent", e))
}

/// A stored consent as the decision sees it.
pub(crate) fn stored_consent(row: &ConsentRow) -> Result<Consent> {
    Ok(Consent {
        id: row.consent_id.clone(),
        provision: convert::stored_provision(&provision(row)?),
        period: decision::Period {
            start: row.period_start,
            end: row.period_end,
        },
        withdrawn_at: row.withdrawn_at,
    })
}

fn consent_proto(row: &ConsentRow, ids: &PersonIds) -> Result<pb::Consent> {
    Ok(pb::Consent {
        consent_id: row.consent_id.clone(),
        person: Some(ids.to_proto()),
        provision: Some(provision(row)?),
        period: Some(TimeRange {
            start: row.period_start.map(to_timestamp),
            end: row.period_end.map(to_timestamp),
        }),
        method: pb::ConsentMethod::from_str_name(&row.method).unwrap_or_default() as i32,
        state: if row.withdrawn_at.is_some() {
            pb::ConsentState::Withdrawn
        } else {
            pb::ConsentState::Active
        } as i32,
        recorded_by: row.recorded_by.clone(),
        recorded_at: Some(to_timestamp(row.recorded_at)),
        withdrawn_at: row.withdrawn_at.map(to_timestamp),
    })
}

impl App {
    /// A consent to record, validated: whose, for when, and how it was given.
    fn consent_asked(
        &self,
        r: &pb::RecordConsentRequest,
    ) -> Result<(PersonIds, decision::Period, pb::ConsentMethod)> {
        let mut v = Violations::new();
        let ids = v.check_all(convert::person(r.person.as_ref()));
        let provision =
            convert::provision(&mut v, r.provision.as_ref(), "provision", &self.registry);
        let period = v
            .check(convert::period(r.period.as_ref(), "period"))
            .flatten()
            .unwrap_or_default();
        let method = match pb::ConsentMethod::try_from(r.method) {
            Ok(pb::ConsentMethod::Unspecified) | Err(_) => {
                v.push(FieldViolation::new(
                    "method",
                    "must be VERBAL, WRITTEN or ELECTRONIC",
                ));
                None
            }
            Ok(m) => Some(m),
        };
        let (ids, _, method) = complete(v.finish(|| Some((ids?, provision?, method?)))?)?;
        Ok((ids, period, method))
    }

    pub async fn record_consent(
        &self,
        caller: &Caller,
        r: &pb::RecordConsentRequest,
    ) -> Result<pb::RecordConsentResponse> {
        let now = self.now();
        let (ids, period, method) = self.consent_asked(r)?;
        let (ids, body) = (&ids, &r.provision.clone().unwrap_or_default());
        once(
            &self.transactions,
            caller.code(),
            r,
            |mut work| async move {
                let person_key = people::resolve(work.tx(), &self.pseudonyms, ids, now).await?;
                let row = ConsentRow {
                    consent_id: new_id(),
                    person_key: person_key.clone(),
                    provision: prost::Message::encode_to_vec(body),
                    period_start: Some(period.start.unwrap_or(now)),
                    period_end: period.end,
                    method: method.as_str_name().to_owned(),
                    recorded_by: caller.code().to_owned(),
                    recorded_at: now,
                    withdrawn_at: None,
                };
                store::insert_consent(work.tx(), &row).await?;
                let recorded = events::ConsentRecorded {
                    consent_id: row.consent_id.clone(),
                    person_key: person_key.clone(),
                    recorded_by: row.recorded_by.clone(),
                    recorded_at: Some(to_timestamp(now)),
                };
                work.publish(self.event(&person_key, &recorded));
                let consent = Some(consent_proto(&row, ids)?);
                Ok((work, pb::RecordConsentResponse { consent }))
            },
        )
        .await
    }

    /// Withdraws a consent at once: every delivery not yet made for the person
    /// that no remaining basis covers is withdrawn with it, and every later
    /// decision is taken without it.
    pub async fn withdraw_consent(
        &self,
        caller: &Caller,
        r: &pb::WithdrawConsentRequest,
    ) -> Result<pb::WithdrawConsentResponse> {
        if r.consent_id.is_empty() {
            return Err(FieldViolation::missing("consent_id").into());
        }
        let now = self.now();
        once(
            &self.transactions,
            caller.code(),
            r,
            |mut work| async move {
                let mut row = store::lock_consent(work.tx(), &r.consent_id)
                    .await?
                    .ok_or(Error::NotFound("consent"))?;
                // Only an organisation with a relationship with the person
                // may withdraw it; to any other it does not exist.
                let key = &row.person_key;
                if !people::related(Reader::Tx(work.tx()), key, caller.code()).await? {
                    return Err(Error::NotFound("consent"));
                }
                if row.withdrawn_at.is_some() {
                    return Err(Error::precondition(
                        "consent",
                        "consent is already withdrawn",
                    ));
                }
                store::withdraw_consent(work.tx(), &row.consent_id, now).await?;
                row.withdrawn_at = Some(now);
                let withdrawn = self
                    .withdraw_uncovered(&mut work, &row.person_key, now)
                    .await?;
                let ids = people::ids(work.tx(), &row.person_key)
                    .await?
                    .ok_or(Error::NotFound("consent"))?;
                let event = events::ConsentWithdrawn {
                    consent_id: row.consent_id.clone(),
                    person_key: row.person_key.clone(),
                    withdrawn_at: Some(to_timestamp(now)),
                    deliveries_withdrawn: withdrawn as i32,
                };
                work.publish(self.event(&row.person_key, &event));
                let response = pb::WithdrawConsentResponse {
                    consent: Some(consent_proto(&row, &ids)?),
                    deliveries_withdrawn: withdrawn as i32,
                };
                Ok((work, response))
            },
        )
        .await
    }

    /// The person's consents, for an organisation with a relationship with
    /// them (audited; NOT_FOUND for any other).
    pub async fn list_consents(
        &self,
        caller: &Caller,
        r: &pb::ListConsentsRequest,
    ) -> Result<pb::ListConsentsResponse> {
        let ids = convert::person(r.person.as_ref())?;
        let key = self
            .readable(caller, &ids, pb::AuditedAction::ConsentsRead)
            .await?;
        let consents = store::consents(Reader::Db(self.db()), &key)
            .await?
            .iter()
            .map(|row| consent_proto(row, &ids))
            .collect::<Result<_>>()?;
        Ok(pb::ListConsentsResponse { consents })
    }
}
