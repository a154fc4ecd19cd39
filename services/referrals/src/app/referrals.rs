//! Referrals: requested by probation (or prison healthcare), worked by the
//! receiving provider, visible only to the two of them.

use super::worklist::is_party;
use super::{App, Feed};
use crate::domain::fields;
use crate::domain::observations;
use crate::domain::person::Person;
use crate::domain::referral::{Action, Party, ReferralState, transition};
use crate::domain::release::ReleaseState;
use crate::domain::task::{Task, TaskKind};
use crate::error::{Error, Result};
use crate::events;
use crate::store::receipts;
use crate::store::rows::{PersonRow, StoredReferral, enum_name};
use crate::store::write;
use chrono::{DateTime, Utc};
use throughcare_platform::idempotency::once;
use throughcare_platform::identifiers::new_id;
use throughcare_platform::identity::{Caller, OrganisationKind};
use throughcare_platform::validation::{FieldViolation, Violations};
use throughcare_platform::work::Work;
use throughcare_proto::referrals::v1 as pb;
use throughcare_proto::types::v1::{PersonIdentifiers, ServiceType};

/// A validated referral request.
struct NewReferral {
    person: Person,
    service: ServiceType,
    provider: String,
    urgency: pb::Urgency,
    release_id: Option<String>,
}

impl NewReferral {
    /// The referral as first stored: requested by `referrer` now.
    fn referral(
        &self,
        referrer: &str,
        person_key: &str,
        release_id: Option<String>,
        now: DateTime<Utc>,
    ) -> StoredReferral {
        StoredReferral {
            referral_id: new_id(),
            person_key: person_key.to_owned(),
            service: self.service,
            referrer: referrer.to_owned(),
            provider: self.provider.clone(),
            state: ReferralState::Requested,
            urgency: self.urgency,
            release_id,
            appointment_at: None,
            rejection_reason: None,
            rejection_text: None,
            cancellation_reason: None,
            requested_at: now,
            updated_at: now,
            version: 1,
        }
    }
}

impl App {
    fn validate_request(&self, r: &pb::RequestReferralRequest) -> Result<NewReferral> {
        let mut v = Violations::new();
        let person = Person::validate(&mut v, r.person.as_ref(), "person", self.now().date_naive());
        let service = v.check(fields::required_enum::<ServiceType>(r.service, "service"));
        let provider = match self.registry.get(&r.provider) {
            _ if r.provider.is_empty() => v.check(Err(FieldViolation::missing("provider"))),
            Some(org) if org.kind == OrganisationKind::Provider => Some(r.provider.clone()),
            Some(_) => v.check(Err(FieldViolation::new("provider", "is not a provider"))),
            None => v.check(Err(FieldViolation::new(
                "provider",
                "is not a known organisation",
            ))),
        };
        let urgency = v.check(fields::optional_enum::<pb::Urgency>(r.urgency, "urgency"));
        if r.release_id.len() > 64 {
            v.push(FieldViolation::new("release_id", "is not a release id"));
        }
        fields::complete(v, || {
            Some(NewReferral {
                person: person?,
                service: service?,
                provider: provider?,
                urgency: match urgency? {
                    pb::Urgency::Unspecified => pb::Urgency::Routine,
                    u => u,
                },
                release_id: (!r.release_id.is_empty()).then(|| r.release_id.clone()),
            })
        })
    }

    pub async fn request_referral(
        &self,
        caller: &Caller,
        request: &pb::RequestReferralRequest,
    ) -> Result<pb::RequestReferralResponse> {
        let command = &self.validate_request(request)?;
        let now = self.now();
        once(&self.transactions, caller.code(), request, move |work| {
            self.record_request(work, caller, command, now)
        })
        .await
    }

    async fn record_request(
        &self,
        mut work: Work,
        caller: &Caller,
        c: &NewReferral,
        now: DateTime<Utc>,
    ) -> Result<(Work, pb::RequestReferralResponse)> {
        let person = self.person(&mut work, &c.person, None, now).await?;
        let ids = person.ids()?.to_proto();
        let service = enum_name(c.service);
        let release_id = self
            .release_of_request(&mut work, caller, c, &person)
            .await?;
        if let Some(existing) =
            write::active_referral(work.tx(), &person.person_key, service, &c.provider).await?
        {
            return Err(Error::Conflict(format!(
                "referral {} is already active for this person, service and provider",
                existing.referral_id
            )));
        }
        let referral = c.referral(caller.code(), &person.person_key, release_id, now);
        write::insert_referral(work.tx(), &referral).await?;
        write::insert_history(work.tx(), &referral, None, caller.code()).await?;
        let proto = self.referral_changed(&mut work, &referral, &ids).await?;
        work.publish(
            self.topics
                .lifecycle(&referral.person_key, &events::referral_requested(&referral)),
        );
        let subject = self.referral_subject(&person, &referral)?;
        let observed = observations::for_referral(
            &subject,
            c.service,
            ReferralState::Requested,
            now,
            false,
            now,
        );
        self.observe(&mut work, observed);
        let history = write::history(work.tx(), &referral.referral_id).await?;
        let referral = super::worklist::with_history(proto, history)?;
        Ok((
            work,
            pb::RequestReferralResponse {
                referral: Some(referral),
            },
        ))
    }

    /// The release a new referral belongs to: the one it names (visible to
    /// the caller, about the same person, not reversed), or else the release
    /// of a continuity task it answers.
    async fn release_of_request(
        &self,
        work: &mut Work,
        caller: &Caller,
        c: &NewReferral,
        person: &PersonRow,
    ) -> Result<Option<String>> {
        let Some(id) = &c.release_id else {
            let pending =
                write::pending_tasks(work.tx(), &person.person_key, enum_name(c.service)).await?;
            return Ok(pending.first().map(|t| t.release_id.clone()));
        };
        let release = write::lock_release(work.tx(), id)
            .await?
            .filter(|r| r.visible_to(caller.code()) && r.person_key == person.person_key)
            .ok_or(Error::NotFound("release"))?;
        if release.state == ReleaseState::Reversed {
            return Err(Error::precondition(
                format!("release/{id}"),
                "release was reversed",
            ));
        }
        Ok(Some(release.release_id))
    }

    pub async fn update_referral(
        &self,
        caller: &Caller,
        request: &pb::UpdateReferralRequest,
    ) -> Result<pb::UpdateReferralResponse> {
        let action = &Action::try_from(request)?;
        let now = self.now();
        once(&self.transactions, caller.code(), request, move |work| {
            self.record_update(work, caller, &request.referral_id, action.clone(), now)
        })
        .await
    }

    async fn record_update(
        &self,
        mut work: Work,
        caller: &Caller,
        referral_id: &str,
        action: Action,
        now: DateTime<Utc>,
    ) -> Result<(Work, pb::UpdateReferralResponse)> {
        let mut referral = write::lock_referral(work.tx(), referral_id)
            .await?
            .filter(|r| is_party(r, caller.code()))
            .ok_or(Error::NotFound("referral"))?;
        let from = referral.state;
        referral.state = transition(from, &action, &sides(&referral, caller.code()))?;
        match action {
            Action::Reject { reason, text } => {
                referral.rejection_reason = Some(reason);
                referral.rejection_text = text;
            }
            Action::BookAppointment { at } => referral.appointment_at = Some(at),
            Action::Cancel { reason } => referral.cancellation_reason = Some(reason),
            _ => {}
        }
        referral.version += 1;
        referral.updated_at = now;

        let person = self.store_person(&mut work, &referral.person_key).await?;
        let ids = person.ids()?.to_proto();
        let closing = self.tasks_closed_by(&mut work, &mut referral).await?;
        write::update_referral(work.tx(), &referral, from, caller.code()).await?;
        let proto = self.referral_changed(&mut work, &referral, &ids).await?;
        for task in closing {
            self.close_task(&mut work, task, Some(&referral.referral_id), now, &ids)
                .await?;
        }
        let changed = events::referral_state_changed(&referral, from, caller.code());
        work.publish(self.topics.lifecycle(&referral.person_key, &changed));
        self.observe_referral(&mut work, &person, &referral, now)
            .await?;
        let history = write::history(work.tx(), &referral.referral_id).await?;
        let referral = super::worklist::with_history(proto, history)?;
        Ok((
            work,
            pb::UpdateReferralResponse {
                referral: Some(referral),
            },
        ))
    }

    /// What the indicators learn from a referral's new state, counted from
    /// its release day when it belongs to a release.
    async fn observe_referral(
        &self,
        work: &mut Work,
        person: &PersonRow,
        referral: &StoredReferral,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let since = match &referral.release_id {
            Some(release_id) => write::lock_release(work.tx(), release_id)
                .await?
                .map_or(referral.requested_at, |r| {
                    observations::start_of(r.release_date)
                }),
            None => referral.requested_at,
        };
        let subject = self.referral_subject(person, referral)?;
        let observed = observations::for_referral(
            &subject,
            referral.service,
            referral.state,
            since,
            referral.release_id.is_some(),
            now,
        );
        self.observe(work, observed);
        Ok(())
    }

    /// Pending continuity tasks this referral's new state satisfies. A referral
    /// not yet linked to a release joins the release of the task it closes.
    async fn tasks_closed_by(
        &self,
        work: &mut Work,
        referral: &mut StoredReferral,
    ) -> Result<Vec<Task>> {
        let candidates =
            write::pending_tasks(work.tx(), &referral.person_key, enum_name(referral.service))
                .await?;
        let closing: Vec<Task> = candidates
            .into_iter()
            .filter(|t| t.kind == TaskKind::Referral)
            .filter(|t| t.closes_on.is_some_and(|c| c.satisfied_by(referral.state)))
            .filter(|t| {
                referral
                    .release_id
                    .as_ref()
                    .is_none_or(|r| *r == t.release_id)
            })
            .collect();
        if referral.release_id.is_none() {
            referral.release_id = closing.first().map(|t| t.release_id.clone());
        }
        Ok(closing)
    }

    /// Cancels a referral because the release that started it was reversed.
    pub(crate) async fn cancel_for_reversal(
        &self,
        work: &mut Work,
        mut referral: StoredReferral,
        actor: &str,
        now: DateTime<Utc>,
        ids: &PersonIdentifiers,
    ) -> Result<()> {
        let from = referral.state;
        referral.state = ReferralState::Cancelled;
        referral.cancellation_reason = Some(pb::CancellationReason::ReleaseReversed);
        referral.version += 1;
        referral.updated_at = now;
        write::update_referral(work.tx(), &referral, from, actor).await?;
        self.referral_changed(work, &referral, ids).await?;
        let changed = events::referral_state_changed(&referral, from, actor);
        work.publish(self.topics.lifecycle(&referral.person_key, &changed));
        Ok(())
    }

    fn referral_subject(
        &self,
        person: &PersonRow,
        referral: &StoredReferral,
    ) -> Result<observations::Subject> {
        let episode = match &referral.release_id {
            Some(release_id) => self.episode_key("release", release_id),
            None => self.episode_key("referral", &referral.referral_id),
        };
        let areas = person
            .placement()
            .observation_areas(person.prison.as_deref());
        self.subject(person, areas, episode, self.now().date_naive())
    }

    /// Records a referral change — or a change in what became of its push —
    /// in both parties' feeds, with its receipts as they now stand.
    pub(super) async fn referral_changed(
        &self,
        work: &mut Work,
        referral: &StoredReferral,
        ids: &PersonIdentifiers,
    ) -> Result<pb::Referral> {
        let mut proto = super::worklist::referral_to_proto(referral, ids);
        let trigger = ("referral", referral.referral_id.as_str());
        proto.deliveries = receipts::of_trigger(work.tx(), trigger).await?;
        let mut parties = vec![&referral.referrer];
        if referral.provider != referral.referrer {
            parties.push(&referral.provider);
        }
        for party in parties {
            let id = &referral.referral_id;
            work.announce(Feed::Referrals.entry(party, id, &proto, referral.updated_at));
        }
        Ok(proto)
    }
}

fn sides(referral: &StoredReferral, organisation: &str) -> Vec<Party> {
    let mut sides = Vec::new();
    if referral.referrer == organisation {
        sides.push(Party::Referrer);
    }
    if referral.provider == organisation {
        sides.push(Party::Provider);
    }
    sides
}
