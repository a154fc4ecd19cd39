//! What the sharing service learns from the referrals service: sealed health
//! records to store, and transition points that owe a push.

use super::{App, Effects, new_id};
use crate::domain::minimise;
use crate::error::Error;
use crate::store::{people, records};
use chrono::{DateTime, NaiveDate, Utc};
use std::sync::Arc;
use throughcare_platform::bus::{Event, HandleError, Handler};
use throughcare_platform::db::Tx;
use throughcare_platform::identifiers::{PersonIds, age_band};
use throughcare_platform::sealing::Sealed;
use throughcare_proto::events::v1 as events;
use throughcare_proto::referrals::v1::ReferralState;
use throughcare_proto::types::v1::Date;

/// The inbox name of this consumer.
const INBOX: &str = "sharing";

#[derive(Debug, Clone)]
pub struct Consumer(pub Arc<App>);

fn transient(error: impl std::fmt::Display) -> HandleError {
    HandleError::Transient(error.to_string())
}

impl Handler for Consumer {
    async fn handle(&self, event: &Event) -> Result<(), HandleError> {
        let app = &self.0;
        let outcome = if event.is::<events::SealedHealthRecord>() {
            app.store_record(event).await
        } else if event.is::<events::ReleaseNotified>() {
            let notified: events::ReleaseNotified = decode(event)?;
            let pdu = notified
                .destination
                .as_ref()
                .map(|d| d.probation_delivery_unit.clone())
                .filter(|p| !p.is_empty());
            let released_at = notified
                .release_date
                .as_ref()
                .and_then(calendar_date)
                .and_then(|day| day.and_hms_opt(0, 0, 0))
                .map(|start| start.and_utc());
            app.apply(event, |app, tx, effects| {
                Box::pin(async move {
                    people::insert_release(
                        tx,
                        &notified.release_id,
                        &notified.person_key,
                        pdu.as_deref(),
                        released_at,
                    )
                    .await?;
                    if let Some(pdu) = &pdu {
                        app.owe(
                            tx,
                            effects,
                            pdu,
                            &notified.person_key,
                            ("release", &notified.release_id),
                        )
                        .await?;
                    }
                    Ok(())
                })
            })
            .await
        } else if event.is::<events::ReleaseReversed>() {
            let reversed: events::ReleaseReversed = decode(event)?;
            app.apply(event, |app, tx, _| {
                Box::pin(async move {
                    people::reverse_release(tx, &reversed.release_id).await?;
                    people::withdraw_for_trigger(tx, "release", &reversed.release_id, app.now())
                        .await?;
                    Ok(())
                })
            })
            .await
        } else if event.is::<events::ReferralRequested>() {
            let requested: events::ReferralRequested = decode(event)?;
            app.apply(event, |app, tx, effects| {
                Box::pin(async move {
                    app.owe(
                        tx,
                        effects,
                        &requested.provider,
                        &requested.person_key,
                        ("referral", &requested.referral_id),
                    )
                    .await
                })
            })
            .await
        } else if event.is::<events::ReferralStateChanged>() {
            let changed: events::ReferralStateChanged = decode(event)?;
            let ended = [
                ReferralState::Cancelled,
                ReferralState::Rejected,
                ReferralState::Declined,
            ]
            .iter()
            .any(|s| *s as i32 == changed.to_state);
            if !ended {
                return Ok(());
            }
            app.apply(event, |app, tx, _| {
                Box::pin(async move {
                    people::withdraw_for_trigger(tx, "referral", &changed.referral_id, app.now())
                        .await?;
                    Ok(())
                })
            })
            .await
        } else {
            return Ok(());
        };
        outcome.map_err(|error| match error {
            Error::Rejected(status) => HandleError::Permanent(status.message().to_owned()),
            other => transient(other),
        })
    }
}

fn decode<M: prost::Message + prost::Name + Default>(event: &Event) -> Result<M, HandleError> {
    event
        .decode()
        .map_err(|e| HandleError::Permanent(e.to_string()))
}

type Step<'a> =
    std::pin::Pin<Box<dyn std::future::Future<Output = crate::error::Result<()>> + Send + 'a>>;

impl App {
    /// Applies one event's effect in a transaction with its inbox entry.
    async fn apply<F>(&self, event: &Event, effect: F) -> crate::error::Result<()>
    where
        F: for<'a> FnOnce(&'a App, &'a mut Tx, &'a mut Effects) -> Step<'a>,
    {
        let mut tx = self.db.begin().await?;
        if !tx.record_inbox(INBOX, event.id).await? {
            return Ok(());
        }
        let mut effects = Effects::default();
        effect(self, &mut tx, &mut effects).await?;
        effects.write(&mut tx).await?;
        tx.commit().await?;
        self.committed();
        Ok(())
    }

    /// A push owed to `recipient`, announced on its feed now if the person's
    /// record is here, else when it arrives.
    async fn owe(
        &self,
        tx: &mut Tx,
        effects: &mut Effects,
        recipient: &str,
        person_key: &str,
        trigger: (&str, &str),
    ) -> crate::error::Result<()> {
        let delivery_id = new_id();
        let created =
            people::insert_delivery(tx, &delivery_id, recipient, person_key, trigger, self.now())
                .await?;
        if created && people::has_records(tx, person_key).await? {
            people::mark_announced(tx, &delivery_id).await?;
            effects.announce(recipient, &delivery_id, self.now());
        }
        Ok(())
    }

    /// Opens a sealed record, stores each category sealed at rest, and
    /// announces the person's deliveries that were waiting for it.
    async fn store_record(&self, event: &Event) -> crate::error::Result<()> {
        let permanent =
            |reason: &str| Error::Rejected(tonic::Status::invalid_argument(reason.to_owned()));
        let sealed: events::SealedHealthRecord = event
            .decode()
            .map_err(|_| permanent("sealed record does not decode"))?;
        let binding =
            throughcare_proto::sealed_health_record_binding(&sealed.record_id, &sealed.person_key);
        let body = Sealed {
            key_id: sealed.key_id,
            nonce: sealed.nonce,
            ciphertext: sealed.ciphertext,
        };
        let plain = self
            .transport
            .open(&body, &binding)
            .map_err(|e| permanent(&e.to_string()))?;
        let record: events::HealthRecord = prost::Message::decode(plain.as_slice())
            .map_err(|_| permanent("health record does not decode"))?;
        let ids = record
            .person
            .as_ref()
            .and_then(|p| p.identifiers.as_ref())
            .and_then(|ids| PersonIds::from_proto(ids).ok())
            .ok_or_else(|| permanent("health record names no valid person"))?;
        let health = record.health.clone().unwrap_or_default();
        let source = match events::HealthRecordSource::try_from(record.source) {
            Ok(events::HealthRecordSource::Assessment) => "assessment",
            _ => "release",
        };
        let recorded_at = record
            .recorded_at
            .as_ref()
            .and_then(|t| chrono::DateTime::from_timestamp(t.seconds, t.nanos as u32))
            .unwrap_or_else(|| self.now());
        let mut tx = self.db.begin().await?;
        if !tx.record_inbox(INBOX, event.id).await? {
            return Ok(());
        }
        people::adopt(&mut tx, &record.person_key, &ids, self.now()).await?;
        for category in minimise::present(&health) {
            let name = category.as_str_name();
            let part = prost::Message::encode_to_vec(&minimise::only(&health, category));
            records::insert_part(
                &mut tx,
                &records::Part {
                    record_id: &record.record_id,
                    category: name,
                    person_key: &record.person_key,
                    source,
                    source_id: &record.source_id,
                    recorded_by: &record.recorded_by,
                    recorded_at,
                    sealed: self
                        .at_rest
                        .seal(&part, &records::at_rest_binding(&record.record_id, name)),
                },
            )
            .await?;
        }
        // Only a release's subject is ever observed (what reached probation at
        // release), so only a release's is kept.
        if let Some(subject) = subject(&record, recorded_at).filter(|_| source == "release") {
            let bytes = prost::Message::encode_to_vec(&subject);
            let sealed = self
                .at_rest
                .seal(&bytes, &records::subject_binding(&record.record_id));
            records::insert_subject(&mut tx, &record.record_id, &record.source_id, &sealed).await?;
        }
        let mut effects = Effects::default();
        for waiting in people::unannounced_for_person(&mut tx, &record.person_key).await? {
            people::mark_announced(&mut tx, &waiting.delivery_id).await?;
            effects.announce(&waiting.recipient, &waiting.delivery_id, self.now());
        }
        effects.write(&mut tx).await?;
        tx.commit().await?;
        self.committed();
        Ok(())
    }
}

/// Who and where a health record places its person, as an observation with no
/// fact yet: the destination's areas, sex, age band on the day it was recorded
/// and ethnic group. `None` when the record names no person details.
fn subject(
    record: &events::HealthRecord,
    recorded_at: DateTime<Utc>,
) -> Option<events::Observation> {
    let person = record.person.as_ref()?;
    let date_of_birth = person.date_of_birth.as_ref().and_then(calendar_date);
    let destination = record.destination.clone().unwrap_or_default();
    Some(events::Observation {
        areas: Some(events::ObservationAreas {
            probation_region: destination.probation_region,
            probation_delivery_unit: destination.probation_delivery_unit,
            integrated_care_board: destination.integrated_care_board,
            local_authority: destination.local_authority,
            prison: String::new(),
        }),
        sex: person.sex,
        age_band: age_band(date_of_birth, recorded_at.date_naive()) as i32,
        ethnic_group: person.ethnic_group,
        ..Default::default()
    })
}

/// A date from the contracts, if it is a real one (the referrals service
/// validated it before publishing).
fn calendar_date(d: &Date) -> Option<NaiveDate> {
    let (month, day) = (u32::try_from(d.month).ok()?, u32::try_from(d.day).ok()?);
    NaiveDate::from_ymd_opt(d.year, month, day)
}
