//! Referrals: requested by probation (or prison healthcare), worked by the
//! receiving provider, visible only to the two of them.

use super::{App, Effects, Feed, decode_token, encode_token, new_id, page_size};
use crate::domain::fields::{self, timestamp_to_proto};
use crate::domain::observations;
use crate::domain::person::Person;
use crate::domain::referral::{Action, Party, ReferralState, transition};
use crate::domain::release::ReleaseState;
use crate::domain::task::{Task, TaskKind, TaskState};
use crate::error::{Error, Result};
use crate::store::rows::{StoredReferral, enum_name};
use crate::store::write;
use crate::store::{ReferralFilter, Side};
use chrono::{DateTime, Utc};
use throughcare_platform::db::Tx;
use throughcare_platform::idempotency::{IdempotencyKey, idempotent};
use throughcare_platform::identity::{Caller, OrganisationKind};
use throughcare_platform::validation::{FieldViolation, Violations};
use throughcare_proto::events::v1 as events;
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
        Ok(v.finish(|| {
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
        })?
        .ok_or_else(|| tonic::Status::internal("validated referral is incomplete"))?)
    }

    pub async fn request_referral(
        &self,
        caller: &Caller,
        request: &pb::RequestReferralRequest,
    ) -> Result<pb::RequestReferralResponse> {
        let command = self.validate_request(request)?;
        let key = IdempotencyKey::new(
            caller.code(),
            "RequestReferral",
            &request.idempotency_key,
            request,
        )?;
        let now = self.now();
        let command = &command;
        let response = idempotent(self.store.db(), &key, |mut tx| async move {
            let response = self.record_request(&mut tx, caller, command, now).await?;
            Ok::<_, Error>((tx, response))
        })
        .await?;
        self.committed();
        Ok(response)
    }

    async fn record_request(
        &self,
        tx: &mut Tx,
        caller: &Caller,
        c: &NewReferral,
        now: DateTime<Utc>,
    ) -> Result<pb::RequestReferralResponse> {
        let person = write::resolve_person(tx, &self.pseudonyms, &c.person, None, now).await?;
        let ids = person.ids()?.to_proto();
        let service = enum_name(c.service);
        let release_id = match &c.release_id {
            Some(id) => {
                let release = write::lock_release(tx, id)
                    .await?
                    .filter(|r| r.visible_to(caller.code()) && r.person_key == person.person_key)
                    .ok_or(Error::NotFound("release"))?;
                if release.state == ReleaseState::Reversed {
                    return Err(Error::Precondition {
                        subject: format!("release/{id}"),
                        message: "release was reversed".into(),
                    });
                }
                Some(release.release_id)
            }
            // A referral that answers a continuity task belongs to its release.
            None => write::pending_tasks(tx, &person.person_key, service)
                .await?
                .first()
                .map(|t| t.release_id.clone()),
        };
        if let Some(existing) =
            write::active_referral(tx, &person.person_key, service, &c.provider).await?
        {
            return Err(Error::AlreadyExists(format!(
                "referral {} is already active for this person, service and provider",
                existing.referral_id
            )));
        }
        let referral = StoredReferral {
            referral_id: new_id(),
            person_key: person.person_key.clone(),
            service: c.service,
            referrer: caller.code().to_owned(),
            provider: c.provider.clone(),
            state: ReferralState::Requested,
            urgency: c.urgency,
            release_id,
            appointment_at: None,
            rejection_reason: None,
            rejection_text: None,
            cancellation_reason: None,
            requested_at: now,
            updated_at: now,
            version: 1,
        };
        write::insert_referral(tx, &referral).await?;
        write::insert_history(tx, &referral, None, caller.code()).await?;
        let mut effects = Effects::default();
        let proto = self.referral_changed(&mut effects, &referral, &ids);
        effects.push(self.topics.lifecycle(
            &referral.person_key,
            &events::ReferralRequested {
                referral_id: referral.referral_id.clone(),
                person_key: referral.person_key.clone(),
                service: c.service as i32,
                referrer: referral.referrer.clone(),
                provider: referral.provider.clone(),
                release_id: referral.release_id.clone().unwrap_or_default(),
                requested_at: Some(timestamp_to_proto(now)),
            },
        ));
        let subject = self.referral_subject(&person, &referral)?;
        for observation in observations::for_referral(
            &subject,
            c.service,
            ReferralState::Requested,
            now,
            false,
            now,
        ) {
            effects.observe(observation);
        }
        effects.enqueue(tx, &self.topics).await?;
        let history = write::history(tx, &referral.referral_id).await?;
        Ok(pb::RequestReferralResponse {
            referral: Some(with_history(proto, history)?),
        })
    }

    pub async fn update_referral(
        &self,
        caller: &Caller,
        request: &pb::UpdateReferralRequest,
    ) -> Result<pb::UpdateReferralResponse> {
        let action = parse_action(request)?;
        let key = IdempotencyKey::new(
            caller.code(),
            "UpdateReferral",
            &request.idempotency_key,
            request,
        )?;
        let now = self.now();
        let action = &action;
        let response = idempotent(self.store.db(), &key, |mut tx| async move {
            let response = self
                .record_update(&mut tx, caller, &request.referral_id, action.clone(), now)
                .await?;
            Ok::<_, Error>((tx, response))
        })
        .await?;
        self.committed();
        Ok(response)
    }

    async fn record_update(
        &self,
        tx: &mut Tx,
        caller: &Caller,
        referral_id: &str,
        action: Action,
        now: DateTime<Utc>,
    ) -> Result<pb::UpdateReferralResponse> {
        let mut referral = write::lock_referral(tx, referral_id)
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

        let person = self.store_person(tx, &referral.person_key).await?;
        let ids = person.ids()?.to_proto();
        let mut effects = Effects::default();
        let closing = self.tasks_closed_by(tx, &mut referral).await?;
        write::update_referral(tx, &referral, from, caller.code()).await?;
        let proto = self.referral_changed(&mut effects, &referral, &ids);
        for task in closing {
            write::set_task_state(
                tx,
                &task,
                TaskState::Closed,
                now,
                Some(&referral.referral_id),
            )
            .await?;
            let closed = Task {
                state: TaskState::Closed,
                closed_at: Some(now),
                referral_id: Some(referral.referral_id.clone()),
                ..task
            };
            self.task_changed(&mut effects, &closed, &ids);
            effects.push(self.topics.lifecycle(
                &closed.person_key,
                &events::ContinuityTaskClosed {
                    task_id: closed.task_id.clone(),
                    release_id: closed.release_id.clone(),
                    person_key: closed.person_key.clone(),
                    referral_id: referral.referral_id.clone(),
                    closed_at: Some(timestamp_to_proto(now)),
                },
            ));
        }
        effects.push(self.topics.lifecycle(
            &referral.person_key,
            &state_changed(&referral, from, caller.code()),
        ));
        let since = match &referral.release_id {
            Some(release_id) => write::lock_release(tx, release_id)
                .await?
                .map_or(referral.requested_at, |r| {
                    observations::start_of(r.release_date)
                }),
            None => referral.requested_at,
        };
        let subject = self.referral_subject(&person, &referral)?;
        for observation in observations::for_referral(
            &subject,
            referral.service,
            referral.state,
            since,
            referral.release_id.is_some(),
            now,
        ) {
            effects.observe(observation);
        }
        effects.enqueue(tx, &self.topics).await?;
        let history = write::history(tx, &referral.referral_id).await?;
        Ok(pb::UpdateReferralResponse {
            referral: Some(with_history(proto, history)?),
        })
    }

    /// Pending continuity tasks this referral's new state satisfies. A referral
    /// not yet linked to a release joins the release of the task it closes.
    async fn tasks_closed_by(
        &self,
        tx: &mut Tx,
        referral: &mut StoredReferral,
    ) -> Result<Vec<Task>> {
        let candidates =
            write::pending_tasks(tx, &referral.person_key, enum_name(referral.service)).await?;
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
        tx: &mut Tx,
        effects: &mut Effects,
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
        write::update_referral(tx, &referral, from, actor).await?;
        self.referral_changed(effects, &referral, ids);
        effects.push(
            self.topics
                .lifecycle(&referral.person_key, &state_changed(&referral, from, actor)),
        );
        Ok(())
    }

    fn referral_subject(
        &self,
        person: &crate::store::rows::PersonRow,
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

    /// Records a referral change in both parties' feeds.
    fn referral_changed(
        &self,
        effects: &mut Effects,
        referral: &StoredReferral,
        ids: &PersonIdentifiers,
    ) -> pb::Referral {
        let proto = referral_to_proto(referral, ids);
        let snapshot = prost::Message::encode_to_vec(&proto);
        effects.feed(
            &referral.referrer,
            Feed::Referrals,
            &referral.referral_id,
            snapshot.clone(),
            referral.updated_at,
        );
        if referral.provider != referral.referrer {
            effects.feed(
                &referral.provider,
                Feed::Referrals,
                &referral.referral_id,
                snapshot,
                referral.updated_at,
            );
        }
        proto
    }

    pub async fn get_referral(
        &self,
        caller: &Caller,
        referral_id: &str,
    ) -> Result<pb::GetReferralResponse> {
        let referral = self
            .store
            .referral(referral_id)
            .await?
            .filter(|r| is_party(r, caller.code()))
            .ok_or(Error::NotFound("referral"))?;
        let person = self
            .store
            .person(&referral.person_key)
            .await?
            .ok_or(Error::NotFound("referral"))?;
        let history = self.store.history(referral_id).await?;
        Ok(pb::GetReferralResponse {
            referral: Some(with_history(
                referral_to_proto(&referral, &person.ids()?.to_proto()),
                history,
            )?),
        })
    }

    pub async fn list_referrals(
        &self,
        caller: &Caller,
        r: &pb::ListReferralsRequest,
    ) -> Result<pb::ListReferralsResponse> {
        let mut v = Violations::new();
        let side = match v.check(fields::optional_enum::<pb::ReferralRole>(r.role, "role")) {
            Some(pb::ReferralRole::Referrer) => Side::Referrer,
            Some(pb::ReferralRole::Provider) => Side::Provider,
            _ => Side::Either,
        };
        let states: Vec<ReferralState> = r
            .states
            .iter()
            .enumerate()
            .filter_map(|(i, s)| {
                let field = format!("states[{i}]");
                v.check(fields::required_enum::<pb::ReferralState>(*s, &field))
                    .and_then(ReferralState::from_proto)
            })
            .collect();
        let services: Vec<&'static str> = r
            .services
            .iter()
            .enumerate()
            .filter_map(|(i, s)| {
                v.check(fields::required_enum::<ServiceType>(
                    *s,
                    &format!("services[{i}]"),
                ))
            })
            .map(enum_name)
            .collect();
        let requested_after = v
            .check(fields::timestamp(
                r.requested_after.as_ref(),
                "requested_after",
            ))
            .flatten();
        let requested_before = v
            .check(fields::timestamp(
                r.requested_before.as_ref(),
                "requested_before",
            ))
            .flatten();
        let limit = v.check(
            page_size(r.page_size)
                .map_err(|_| FieldViolation::new("page_size", "must be between 0 and 500")),
        );
        let after = v.check(decode_token(&r.page_token)).flatten();
        v.finish(|| ())?;
        let limit = limit.unwrap_or(50);

        // The watch cursor is read first: a watcher starting there may see a
        // change the listing already shows, but never misses one.
        let watch_cursor = self
            .feeds
            .head(caller.code(), Feed::Referrals.name())
            .await?;
        let listed = self
            .store
            .list_referrals(&ReferralFilter {
                organisation: caller.code().to_owned(),
                side,
                states,
                services,
                requested_after,
                requested_before,
                after,
                limit,
            })
            .await?;
        let next_page_token = match listed.last() {
            Some(last) if listed.len() as i64 == limit => {
                encode_token(last.referral.requested_at, &last.referral.referral_id)
            }
            _ => String::new(),
        };
        Ok(pb::ListReferralsResponse {
            referrals: listed
                .iter()
                .map(|l| referral_to_proto(&l.referral, &l.person.to_proto()))
                .collect(),
            next_page_token,
            watch_cursor: watch_cursor.to_string(),
        })
    }
}

fn is_party(referral: &StoredReferral, organisation: &str) -> bool {
    referral.referrer == organisation || referral.provider == organisation
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

fn state_changed(
    referral: &StoredReferral,
    from: ReferralState,
    actor: &str,
) -> events::ReferralStateChanged {
    events::ReferralStateChanged {
        referral_id: referral.referral_id.clone(),
        person_key: referral.person_key.clone(),
        service: referral.service as i32,
        from_state: from.to_proto() as i32,
        to_state: referral.state.to_proto() as i32,
        actor: actor.to_owned(),
        referrer: referral.referrer.clone(),
        provider: referral.provider.clone(),
        rejection_reason: referral.rejection_reason.map_or(0, |r| r as i32),
        version: referral.version,
        changed_at: Some(timestamp_to_proto(referral.updated_at)),
    }
}

pub(crate) fn referral_to_proto(r: &StoredReferral, ids: &PersonIdentifiers) -> pb::Referral {
    pb::Referral {
        referral_id: r.referral_id.clone(),
        person: Some(ids.clone()),
        service: r.service as i32,
        referrer: r.referrer.clone(),
        provider: r.provider.clone(),
        state: r.state.to_proto() as i32,
        urgency: r.urgency as i32,
        release_id: r.release_id.clone().unwrap_or_default(),
        appointment_at: r.appointment_at.map(timestamp_to_proto),
        rejection_reason: r.rejection_reason.map_or(0, |x| x as i32),
        rejection_text: r.rejection_text.clone().unwrap_or_default(),
        cancellation_reason: r.cancellation_reason.map_or(0, |x| x as i32),
        requested_at: Some(timestamp_to_proto(r.requested_at)),
        updated_at: Some(timestamp_to_proto(r.updated_at)),
        version: r.version,
        history: Vec::new(),
    }
}

fn with_history(
    mut referral: pb::Referral,
    history: Vec<crate::store::rows::HistoryRow>,
) -> Result<pb::Referral> {
    referral.history = history
        .iter()
        .map(|h| h.to_proto())
        .collect::<std::result::Result<_, _>>()
        .map_err(crate::store::StoreError::from)?;
    Ok(referral)
}

/// The action of an `UpdateReferral` request, validated.
fn parse_action(r: &pb::UpdateReferralRequest) -> Result<Action> {
    use pb::update_referral_request::Action as A;
    if r.referral_id.is_empty() {
        return Err(FieldViolation::missing("referral_id").into());
    }
    let action = r
        .action
        .as_ref()
        .ok_or_else(|| FieldViolation::missing("action"))?;
    Ok(match action {
        A::Acknowledge(_) => Action::Acknowledge,
        A::Accept(_) => Action::Accept,
        A::Reject(reject) => {
            let reason =
                fields::required_enum::<pb::RejectionReason>(reject.reason, "reject.reason")?;
            let text = fields::text(&reject.reason_text, "reject.reason_text")?;
            if reason == pb::RejectionReason::Other && text.is_none() {
                return Err(FieldViolation::new(
                    "reject.reason_text",
                    "is required when the reason is OTHER",
                )
                .into());
            }
            Action::Reject { reason, text }
        }
        A::BookAppointment(book) => Action::BookAppointment {
            at: fields::timestamp(
                book.appointment_at.as_ref(),
                "book_appointment.appointment_at",
            )?
            .ok_or_else(|| FieldViolation::missing("book_appointment.appointment_at"))?,
        },
        A::RecordAttendance(_) => Action::RecordAttendance,
        A::RecordDidNotAttend(_) => Action::RecordDidNotAttend,
        A::Complete(_) => Action::Complete,
        A::Discharge(_) => Action::Discharge,
        A::Cancel(cancel) => {
            let reason =
                fields::required_enum::<pb::CancellationReason>(cancel.reason, "cancel.reason")?;
            if reason == pb::CancellationReason::ReleaseReversed {
                return Err(FieldViolation::new(
                    "cancel.reason",
                    "RELEASE_REVERSED is set only by a release reversal",
                )
                .into());
            }
            Action::Cancel { reason }
        }
        A::Decline(_) => Action::Decline,
    })
}
