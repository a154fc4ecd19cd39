//! Consent: recorded, listed and withdrawn on the person's behalf.

use super::{App, Effects, new_id, timestamp};
use crate::domain::convert;
use crate::domain::decision::{self, Consent};
use crate::error::{Error, Result};
use crate::store::{self, ConsentRow, people};
use throughcare_platform::idempotency::{IdempotencyKey, idempotent};
use throughcare_platform::identifiers::PersonIds;
use throughcare_platform::identity::Caller;
use throughcare_platform::validation::{FieldViolation, Violations};
use throughcare_proto::events::v1 as events;
use throughcare_proto::sharing::v1 as pb;
use throughcare_proto::types::v1::TimeRange;

pub(crate) fn person(
    v: &mut Violations,
    ids: Option<&throughcare_proto::types::v1::PersonIdentifiers>,
) -> Option<PersonIds> {
    match ids {
        None => {
            v.push(FieldViolation::missing("person"));
            None
        }
        Some(ids) => v.check(PersonIds::from_proto(ids).map_err(|e| e.within("person"))),
    }
}

/// A stored consent as the decision sees it.
pub(crate) fn stored_consent(row: &ConsentRow) -> Result<Consent> {
    let provision: pb::Provision = prost::Message::decode(row.provision.as_slice())
        .map_err(|_| Error::Internal("a stored consent does not decode".into()))?;
    Ok(Consent {
        id: row.consent_id.clone(),
        provision: convert::stored_provision(&provision),
        period: decision::Period {
            start: row.period_start,
            end: row.period_end,
        },
        withdrawn_at: row.withdrawn_at,
    })
}

fn consent_proto(row: &ConsentRow, ids: &PersonIds) -> Result<pb::Consent> {
    let provision: pb::Provision = prost::Message::decode(row.provision.as_slice())
        .map_err(|_| Error::Internal("a stored consent does not decode".into()))?;
    Ok(pb::Consent {
        consent_id: row.consent_id.clone(),
        person: Some(ids.to_proto()),
        provision: Some(provision),
        period: Some(TimeRange {
            start: row.period_start.map(timestamp),
            end: row.period_end.map(timestamp),
        }),
        method: pb::ConsentMethod::from_str_name(&row.method).unwrap_or_default() as i32,
        state: if row.withdrawn_at.is_some() {
            pb::ConsentState::Withdrawn
        } else {
            pb::ConsentState::Active
        } as i32,
        recorded_by: row.recorded_by.clone(),
        recorded_at: Some(timestamp(row.recorded_at)),
        withdrawn_at: row.withdrawn_at.map(timestamp),
    })
}

impl App {
    pub async fn record_consent(
        &self,
        caller: &Caller,
        r: &pb::RecordConsentRequest,
    ) -> Result<pb::RecordConsentResponse> {
        let now = self.now();
        let mut v = Violations::new();
        let ids = person(&mut v, r.person.as_ref());
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
        let (ids, _, method) = v
            .finish(|| Some((ids?, provision?, method?)))?
            .ok_or_else(|| Error::Internal("incomplete consent".into()))?;
        let key = IdempotencyKey::new(caller.code(), "RecordConsent", &r.idempotency_key, r)?;
        let (ids, body) = (&ids, r.provision.clone().unwrap_or_default());
        let body = &body;
        let response = idempotent(&self.db, &key, |mut tx| async move {
            let person_key = people::resolve(&mut tx, &self.pseudonyms, ids, now).await?;
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
            store::insert_consent(&mut tx, &row).await?;
            let mut effects = Effects::default();
            effects.event(
                self,
                &person_key,
                &events::ConsentRecorded {
                    consent_id: row.consent_id.clone(),
                    person_key: person_key.clone(),
                    recorded_by: row.recorded_by.clone(),
                    recorded_at: Some(timestamp(now)),
                },
            );
            effects.write(&mut tx).await?;
            let consent = consent_proto(&row, ids)?;
            Ok::<_, Error>((
                tx,
                pb::RecordConsentResponse {
                    consent: Some(consent),
                },
            ))
        })
        .await?;
        self.committed();
        Ok(response)
    }

    /// Withdraws a consent at once: every delivery not yet made for the person
    /// is withdrawn with it, and every later decision is taken without it.
    pub async fn withdraw_consent(
        &self,
        caller: &Caller,
        r: &pb::WithdrawConsentRequest,
    ) -> Result<pb::WithdrawConsentResponse> {
        if r.consent_id.is_empty() {
            return Err(FieldViolation::missing("consent_id").into());
        }
        let now = self.now();
        let key = IdempotencyKey::new(caller.code(), "WithdrawConsent", &r.idempotency_key, r)?;
        let response = idempotent(&self.db, &key, |mut tx| async move {
            let mut row = store::lock_consent(&mut tx, &r.consent_id)
                .await?
                .ok_or(Error::NotFound("consent"))?;
            if row.withdrawn_at.is_some() {
                return Err(Error::Precondition("consent is already withdrawn".into()));
            }
            store::withdraw_consent(&mut tx, &row.consent_id, now).await?;
            row.withdrawn_at = Some(now);
            let withdrawn = people::withdraw_for_person(&mut tx, &row.person_key, now).await?;
            let ids = people::ids(&mut tx, &row.person_key)
                .await?
                .ok_or(Error::NotFound("consent"))?;
            let mut effects = Effects::default();
            effects.event(
                self,
                &row.person_key,
                &events::ConsentWithdrawn {
                    consent_id: row.consent_id.clone(),
                    person_key: row.person_key.clone(),
                    withdrawn_at: Some(timestamp(now)),
                    deliveries_withdrawn: withdrawn as i32,
                },
            );
            effects.write(&mut tx).await?;
            let response = pb::WithdrawConsentResponse {
                consent: Some(consent_proto(&row, &ids)?),
                deliveries_withdrawn: withdrawn as i32,
            };
            Ok::<_, Error>((tx, response))
        })
        .await?;
        self.committed();
        Ok(response)
    }

    pub async fn list_consents(
        &self,
        _caller: &Caller,
        r: &pb::ListConsentsRequest,
    ) -> Result<pb::ListConsentsResponse> {
        let mut v = Violations::new();
        let ids = person(&mut v, r.person.as_ref());
        let ids = v
            .finish(|| ids)?
            .ok_or_else(|| Error::Internal("identifiers missing".into()))?;
        let Some(key) = people::key_of_read(&self.db, &ids).await? else {
            return Ok(pb::ListConsentsResponse::default());
        };
        let consents = store::consents_of(&self.db, &key)
            .await?
            .iter()
            .map(|row| consent_proto(row, &ids))
            .collect::<Result<_>>()?;
        Ok(pb::ListConsentsResponse { consents })
    }
}
