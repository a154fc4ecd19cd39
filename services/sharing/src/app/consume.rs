//! What the sharing service learns from the referrals service: sealed health
//! records to store, and transition points that owe a push or withdraw one.
//! Each event is decoded once into what sharing acts on, then applied by its
//! use case in one unit of work with its inbox entry.

use super::{App, delivery_entry};
use crate::domain::minimise;
use crate::store::{Reader, people, records};
use chrono::{DateTime, NaiveDate, Utc};
use std::sync::Arc;
use throughcare_platform::bus::{Event, HandleError, Handler};
use throughcare_platform::clock::from_timestamp;
use throughcare_platform::identifiers::{PersonIds, new_id};
use throughcare_platform::inbox::Inbox;
use throughcare_platform::sealing::{Keyring, Sealed};
use throughcare_platform::work::Work;
use throughcare_proto::events::v1 as events;
use throughcare_proto::referrals::v1::ReferralState;
use throughcare_proto::types::v1::{AgeBand, Date};

/// The inbox name of this consumer.
const INBOX: &str = "sharing";

/// The events of the referrals service that sharing acts on.
enum Incoming {
    /// A health record, opened from its seal: stored sealed at rest.
    HealthRecord(Box<Received>),
    ReleaseNotified(events::ReleaseNotified),
    ReleaseReversed(events::ReleaseReversed),
    ReferralRequested(events::ReferralRequested),
    /// A referral that ended without being taken up.
    ReferralEnded(events::ReferralStateChanged),
    /// Keys found to name one person.
    PersonsLinked(events::PersonsLinked),
}

/// A health record opened from its seal, naming a valid person.
struct Received {
    record: events::HealthRecord,
    ids: PersonIds,
}

fn permanent(reason: impl ToString) -> HandleError {
    HandleError::Permanent(reason.to_string())
}

fn decode<M: prost::Message + prost::Name + Default>(event: &Event) -> Result<M, HandleError> {
    event.decode().map_err(permanent)
}

impl Incoming {
    /// What `event` asks of sharing, decoded once; `None` when it asks
    /// nothing. What cannot be decoded or opened never will be: permanent.
    fn of(event: &Event, transport: &Keyring) -> Result<Option<Self>, HandleError> {
        Ok(Some(if event.is::<events::SealedHealthRecord>() {
            Incoming::HealthRecord(Box::new(open(decode(event)?, transport)?))
        } else if event.is::<events::ReleaseNotified>() {
            Incoming::ReleaseNotified(decode(event)?)
        } else if event.is::<events::ReleaseReversed>() {
            Incoming::ReleaseReversed(decode(event)?)
        } else if event.is::<events::ReferralRequested>() {
            Incoming::ReferralRequested(decode(event)?)
        } else if event.is::<events::PersonsLinked>() {
            let linked: events::PersonsLinked = decode(event)?;
            if linked.surviving_key.is_empty() || linked.merged_keys.iter().any(String::is_empty) {
                return Err(permanent("a link names an empty key"));
            }
            Incoming::PersonsLinked(linked)
        } else if event.is::<events::ReferralStateChanged>() {
            let changed: events::ReferralStateChanged = decode(event)?;
            let ended = [
                ReferralState::Cancelled,
                ReferralState::Rejected,
                ReferralState::Declined,
            ];
            if !ended.iter().any(|s| *s as i32 == changed.to_state) {
                return Ok(None);
            }
            Incoming::ReferralEnded(changed)
        } else {
            return Ok(None);
        }))
    }
}

/// Opens a sealed health record (only this service holds the key).
fn open(sealed: events::SealedHealthRecord, transport: &Keyring) -> Result<Received, HandleError> {
    let binding =
        throughcare_proto::sealed_health_record_binding(&sealed.record_id, &sealed.person_key);
    let body = Sealed {
        key_id: sealed.key_id,
        nonce: sealed.nonce,
        ciphertext: sealed.ciphertext,
    };
    let plain = transport.open(&body, &binding).map_err(permanent)?;
    let record: events::HealthRecord = prost::Message::decode(plain.as_slice())
        .map_err(|_| permanent("health record does not decode"))?;
    let ids = record
        .person
        .as_ref()
        .and_then(|p| p.identifiers.as_ref())
        .and_then(|ids| PersonIds::from_proto(ids).ok())
        .ok_or_else(|| permanent("health record names no valid person"))?;
    Ok(Received { record, ids })
}

/// Hands each event to its use case, recorded in this service's inbox.
#[derive(Debug, Clone)]
pub struct Consumer(Arc<App>);

impl Consumer {
    pub fn new(app: Arc<App>) -> Self {
        Self(app)
    }

    fn inbox(&self) -> Inbox {
        Inbox::new(INBOX, self.0.transactions.clone())
    }
}

impl Handler for Consumer {
    async fn handle(&self, event: &Event) -> Result<(), HandleError> {
        let Some(incoming) = Incoming::of(event, &self.0.transport)? else {
            return Ok(());
        };
        let Some(mut work) = self.inbox().begin(event).await? else {
            return Ok(());
        };
        self.0.apply(&mut work, incoming).await?;
        work.commit().await?;
        Ok(())
    }
}

/// The use cases of the consumer. Each writes into the event's unit of work;
/// all they can fail on is the database, which may recover (transient).
impl App {
    /// Applies one incoming event through its use case.
    async fn apply(&self, work: &mut Work, incoming: Incoming) -> sqlx::Result<()> {
        match incoming {
            Incoming::HealthRecord(received) => self.store_record(work, *received).await,
            Incoming::ReleaseNotified(notified) => self.release_notified(work, &notified).await,
            Incoming::ReleaseReversed(reversed) => self.release_reversed(work, &reversed).await,
            Incoming::ReferralRequested(requested) => {
                self.referral_requested(work, &requested).await
            }
            Incoming::ReferralEnded(changed) => self.referral_ended(work, &changed).await,
            Incoming::PersonsLinked(linked) => self.persons_linked(work, &linked).await,
        }
    }

    /// Keys found to name one person: everything held under them joins the
    /// survivor, and pushes owed to them that were waiting for a record are
    /// announced if the survivor has one.
    async fn persons_linked(
        &self,
        work: &mut Work,
        linked: &events::PersonsLinked,
    ) -> sqlx::Result<()> {
        let now = self.now();
        let survivor =
            people::link(work.tx(), &linked.surviving_key, &linked.merged_keys, now).await?;
        if !people::has_records(work.tx(), &survivor).await? {
            return Ok(());
        }
        self.announce_waiting(work, &survivor, now).await
    }

    /// Announces the person's pushes that were waiting for their record.
    async fn announce_waiting(
        &self,
        work: &mut Work,
        person_key: &str,
        now: DateTime<Utc>,
    ) -> sqlx::Result<()> {
        for waiting in people::unannounced_for_person(work.tx(), person_key).await? {
            people::mark_announced(work.tx(), &waiting.delivery_id).await?;
            work.announce(delivery_entry(
                &waiting.recipient,
                &waiting.delivery_id,
                now,
            ));
        }
        Ok(())
    }

    /// The key a person named by an event is held under here.
    async fn held_as(&self, work: &mut Work, person_key: &str) -> sqlx::Result<String> {
        people::hold_keys(work.tx()).await?;
        people::canonical(Reader::Tx(work.tx()), person_key).await
    }

    /// A release owes a push to the probation delivery unit it goes to.
    async fn release_notified(
        &self,
        work: &mut Work,
        notified: &events::ReleaseNotified,
    ) -> sqlx::Result<()> {
        let pdu = notified
            .destination
            .as_ref()
            .map(|d| d.probation_delivery_unit.as_str())
            .filter(|p| !p.is_empty());
        let released_at = notified
            .release_date
            .as_ref()
            .and_then(calendar_date)
            .and_then(|day| day.and_hms_opt(0, 0, 0))
            .map(|start| start.and_utc());
        let release_id = &notified.release_id;
        let person_key = &self.held_as(work, &notified.person_key).await?;
        let release = people::NewRelease {
            release_id,
            person_key,
            releasing_prison: &notified.releasing_prison,
            probation_delivery_unit: pdu,
            released_at,
        };
        let stands = people::insert_release(work.tx(), release).await?;
        if let Some(pdu) = pdu.filter(|_| stands) {
            let due_by = self.due_at_release(released_at);
            self.owe(work, pdu, person_key, ("release", release_id), due_by)
                .await?;
        }
        Ok(())
    }

    /// A reversed release withdraws every push it caused that is not yet made.
    async fn release_reversed(
        &self,
        work: &mut Work,
        reversed: &events::ReleaseReversed,
    ) -> sqlx::Result<()> {
        let person_key = &self.held_as(work, &reversed.person_key).await?;
        people::reverse_release(work.tx(), &reversed.release_id, person_key).await?;
        let withdrawn =
            people::withdraw_for_trigger(work.tx(), "release", &reversed.release_id, self.now())
                .await?;
        self.receipts_changed(work, &withdrawn);
        Ok(())
    }

    /// A referral owes a push to the provider it asks.
    async fn referral_requested(
        &self,
        work: &mut Work,
        requested: &events::ReferralRequested,
    ) -> sqlx::Result<()> {
        let trigger = ("referral", requested.referral_id.as_str());
        let person_key = self.held_as(work, &requested.person_key).await?;
        // One that serves a release is due no sooner than that release's push.
        let released_at = match requested.release_id.as_str() {
            "" => None,
            release_id => people::released_at(work.tx(), release_id).await?,
        };
        let due_by = self.due_at_release(released_at);
        self.owe(work, &requested.provider, &person_key, trigger, due_by)
            .await
    }

    /// An ended referral withdraws its push if it is not yet made; one whose
    /// request has not come yet owes none when it does.
    async fn referral_ended(
        &self,
        work: &mut Work,
        changed: &events::ReferralStateChanged,
    ) -> sqlx::Result<()> {
        let (trigger, now) = (("referral", changed.referral_id.as_str()), self.now());
        let withdrawn = people::withdraw_for_trigger(work.tx(), trigger.0, trigger.1, now).await?;
        self.receipts_changed(work, &withdrawn);
        let person_key = self.held_as(work, &changed.person_key).await?;
        let provider = &changed.provider;
        let (id, withdrawn) = (new_id(), people::Owed::Withdrawn);
        people::insert_delivery(
            work.tx(),
            &id,
            provider,
            &person_key,
            trigger,
            now,
            now,
            withdrawn,
        )
        .await?;
        Ok(())
    }

    /// When a push falls due: the configured time after it is owed, and for
    /// one at (or for a referral serving) a release, no sooner than the end
    /// of the day after the release, in UTC (the toolkit's "health information
    /// reaching probation by the day after release").
    fn due_at_release(&self, released_at: Option<DateTime<Utc>>) -> DateTime<Utc> {
        let soonest = self.now() + self.delivery_due;
        released_at
            .map(|day_start| day_start + chrono::Duration::days(2))
            .map_or(soonest, |day_after| day_after.max(soonest))
    }

    /// A push owed to `recipient`, due by `due_by`, announced on its feed
    /// now if the person's record is here, else when it arrives.
    async fn owe(
        &self,
        work: &mut Work,
        recipient: &str,
        person_key: &str,
        trigger: (&str, &str),
        due_by: DateTime<Utc>,
    ) -> sqlx::Result<()> {
        let (id, now) = (new_id(), self.now());
        let created = people::insert_delivery(
            work.tx(),
            &id,
            recipient,
            person_key,
            trigger,
            now,
            due_by,
            people::Owed::Pending,
        )
        .await?;
        let Some(created) = created else {
            return Ok(());
        };
        self.receipts_changed(work, std::slice::from_ref(&created));
        if people::has_records(work.tx(), person_key).await? {
            people::mark_announced(work.tx(), &id).await?;
            work.announce(delivery_entry(recipient, &id, now));
        }
        Ok(())
    }

    /// Stores each category of an opened record sealed at rest (and a
    /// release's subject), and announces the person's deliveries that were
    /// waiting for it.
    async fn store_record(&self, work: &mut Work, received: Received) -> sqlx::Result<()> {
        let Received { mut record, ids } = received;
        let now = self.now();
        let recorded_at = record
            .recorded_at
            .as_ref()
            .and_then(|t| from_timestamp(t, "recorded_at").ok())
            .unwrap_or(now);
        let source = match events::HealthRecordSource::try_from(record.source) {
            Ok(events::HealthRecordSource::Assessment) => "assessment",
            _ => "release",
        };
        record.person_key = people::adopt(work.tx(), &record.person_key, &ids, now).await?;
        self.store_parts(work, &record, source, recorded_at).await?;
        // Only a release's subject is ever observed (what reached probation at
        // release), so only a release's is kept.
        if let Some(subject) = subject(&record, recorded_at).filter(|_| source == "release") {
            let bytes = prost::Message::encode_to_vec(&subject);
            let binding = records::subject_binding(&record.record_id);
            let sealed = self.at_rest.seal(&bytes, &binding);
            records::insert_subject(work.tx(), &record.record_id, &record.source_id, &sealed)
                .await?;
        }
        self.announce_waiting(work, &record.person_key, now).await
    }

    /// One row per category the record holds anything for, sealed at rest.
    async fn store_parts(
        &self,
        work: &mut Work,
        record: &events::HealthRecord,
        source: &'static str,
        recorded_at: DateTime<Utc>,
    ) -> sqlx::Result<()> {
        let health = record.health.clone().unwrap_or_default();
        for category in minimise::present(&health) {
            let name = category.as_str_name();
            let part = prost::Message::encode_to_vec(&minimise::only(&health, category));
            let binding = records::at_rest_binding(&record.record_id, name);
            let part = records::Part {
                record_id: &record.record_id,
                category: name,
                person_key: &record.person_key,
                source,
                source_id: &record.source_id,
                recorded_by: &record.recorded_by,
                recorded_at,
                sealed: self.at_rest.seal(&part, &binding),
            };
            records::insert_part(work.tx(), &part).await?;
        }
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
        age_band: AgeBand::on(date_of_birth, recorded_at.date_naive()) as i32,
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
