//! Disclosure on request and subject access, and what every permitted or
//! refused disclosure leaves behind (on request or pushed): its record and
//! its event.

use super::audit::commit_audited;
use super::{App, complete};
use crate::domain::audit::{Entry, NOT_WRITTEN};
use crate::domain::convert;
use crate::domain::decision::{self, Outcome, Request, decide_requested};
use crate::store::{self, Reader, join_names, people};
use std::collections::BTreeSet;
use throughcare_platform::bus::Event;
use throughcare_platform::clock::to_timestamp;
use throughcare_platform::error::Result;
use throughcare_platform::identifiers::{PersonIds, new_id};
use throughcare_platform::identity::Caller;
use throughcare_platform::validation::{FieldViolation, Violations};
use throughcare_platform::work::Work;
use throughcare_proto::events::v1 as events;
use throughcare_proto::sharing::v1 as pb;
use throughcare_proto::types::v1::{DataCategory, OrganisationKind};

const MAX_JUSTIFICATION: usize = 2000;

/// What a disclosure was made at: `request` (on request), or the `release` or
/// `referral` whose push made it.
pub(crate) fn trigger(kind: &str) -> pb::DeliveryTrigger {
    match kind {
        "release" => pb::DeliveryTrigger::Release,
        "referral" => pb::DeliveryTrigger::Referral,
        _ => pb::DeliveryTrigger::Unspecified,
    }
}

/// A permitted disclosure as recorded: what it rests on and what it carries.
#[derive(Debug)]
pub(crate) struct Disclosed {
    pub(crate) disclosure_id: String,
    pub(crate) bases: Vec<pb::LawfulBasis>,
    pub(crate) categories: Vec<i32>,
}

/// A request for a person's information, validated: who it names, the
/// decision's request, and the written justification.
fn asked<'r>(
    caller: &Caller,
    at: chrono::DateTime<chrono::Utc>,
    r: &'r pb::RequestDisclosureRequest,
) -> Result<(PersonIds, Request, &'r str)> {
    let mut v = Violations::new();
    let ids = v.check_all(convert::person(r.person.as_ref()));
    let purpose = v.check(convert::purpose(r.purpose, "purpose"));
    let categories = convert::categories(&r.categories, "categories", &mut v);
    let justification = r.justification.trim();
    if justification.chars().count() > MAX_JUSTIFICATION {
        v.push(FieldViolation::new(
            "justification",
            format!("must be at most {MAX_JUSTIFICATION} characters"),
        ));
    } else if justification.starts_with(NOT_WRITTEN) {
        v.push(FieldViolation::new(
            "justification",
            "may not begin with the marker of a justification nobody wrote",
        ));
    }
    let (ids, purpose) = complete(v.finish(|| ids.zip(purpose))?)?;
    let request = Request {
        recipient: caller.code().to_owned(),
        recipient_kind: caller.kind(),
        purpose,
        categories,
        at,
        justified: !justification.is_empty(),
    };
    Ok((ids, request, justification))
}

impl App {
    /// Decides, audits and — when permitted — discloses exactly the permitted
    /// categories. A deny says nothing more than "deny".
    pub async fn request_disclosure(
        &self,
        caller: &Caller,
        r: &pb::RequestDisclosureRequest,
    ) -> Result<pb::RequestDisclosureResponse> {
        let (ids, request, justification) = asked(caller, self.now(), r)?;
        let mut work = self.transactions.begin().await?;
        people::hold_keys(work.tx()).await?;
        let person = people::locate(Reader::Tx(work.tx()), &self.pseudonyms, &ids).await?;
        let (consents, agreements) = self.bases_for(&mut work, person.held_key()).await?;
        let (outcome, refusal) = decide_requested(&consents, &agreements, &request);
        let person_key = &person.key;
        let role = caller.role.as_str();
        let mut entry = match refusal {
            Some(why) => Entry::refused(role, person_key, &request, &outcome, why),
            None => Entry::decided(role, person_key, &request, &outcome, justification),
        };
        let response = if outcome.permits() {
            let permitted: BTreeSet<_> = outcome.permitted.keys().copied().collect();
            let health = match person.held_key() {
                Some(key) => self.permitted_health(&mut work, key, &permitted).await?,
                None => Default::default(),
            };
            let made = self
                .disclose(&mut work, person_key, &request, &outcome, ("request", ""))
                .await?;
            entry.disclosure_id = made.disclosure_id.clone();
            pb::RequestDisclosureResponse {
                decision: pb::Decision::Permit as i32,
                disclosure_id: made.disclosure_id,
                bases: made.bases,
                categories: made.categories,
                health: Some(health),
            }
        } else {
            let wanted = decision::wanted(&request).into_iter().map(|c| c as i32);
            work.publish(self.denied(person_key, &request, wanted.collect()));
            pb::RequestDisclosureResponse {
                decision: pb::Decision::Deny as i32,
                ..Default::default()
            }
        };
        commit_audited(work, entry).await?;
        Ok(response)
    }

    /// Records a permitted disclosure made at `trigger` (kind, id) and
    /// publishes that it was made.
    pub(crate) async fn disclose(
        &self,
        work: &mut Work,
        person_key: &str,
        request: &Request,
        outcome: &Outcome,
        trigger: (&str, &str),
    ) -> Result<Disclosed> {
        let permitted: Vec<DataCategory> = outcome.permitted.keys().copied().collect();
        let disclosed = Disclosed {
            disclosure_id: new_id(),
            bases: outcome.lawful_bases(),
            categories: permitted.iter().map(|c| *c as i32).collect(),
        };
        let row = people::DisclosureRow {
            disclosure_id: disclosed.disclosure_id.clone(),
            person_key: person_key.to_owned(),
            recipient: request.recipient.clone(),
            recipient_kind: request.recipient_kind.to_proto().as_str_name().to_owned(),
            purpose: request.purpose.as_str_name().to_owned(),
            bases: store::audit::bases_text(&disclosed.bases),
            categories: join_names(permitted.iter().map(|c| c.as_str_name())),
            trigger_kind: trigger.0.to_owned(),
            trigger_id: trigger.1.to_owned(),
            disclosed_at: request.at,
        };
        people::insert_disclosure(work.tx(), &row).await?;
        let made = events::DisclosureMade {
            disclosure_id: row.disclosure_id,
            person_key: row.person_key,
            recipient: row.recipient,
            recipient_kind: request.recipient_kind.to_proto() as i32,
            purpose: request.purpose as i32,
            bases: disclosed.bases.clone(),
            categories: disclosed.categories.clone(),
            trigger: self::trigger(trigger.0) as i32,
            disclosed_at: Some(to_timestamp(request.at)),
        };
        work.publish(self.event(person_key, &made));
        Ok(disclosed)
    }

    /// The event of a refused disclosure, naming `categories`.
    pub(crate) fn denied(
        &self,
        person_key: &str,
        request: &Request,
        categories: Vec<i32>,
    ) -> Event {
        let denied = events::DisclosureDenied {
            decision_id: new_id(),
            person_key: person_key.to_owned(),
            recipient: request.recipient.clone(),
            recipient_kind: request.recipient_kind.to_proto() as i32,
            purpose: request.purpose as i32,
            categories,
            decided_at: Some(to_timestamp(request.at)),
        };
        self.event(person_key, &denied)
    }

    /// Subject access: every disclosure made about a person.
    /// Run for national oversight about anyone, and for another
    /// organisation's oversight about a person it has a relationship with
    /// (audited; NOT_FOUND otherwise).
    pub async fn list_disclosures(
        &self,
        caller: &Caller,
        r: &pb::ListDisclosuresRequest,
    ) -> Result<pb::ListDisclosuresResponse> {
        let ids = convert::person(r.person.as_ref())?;
        let key = self
            .readable(caller, &ids, pb::AuditedAction::SubjectAccess)
            .await?;
        let disclosures = people::disclosures_of(self.db(), &key)
            .await?
            .into_iter()
            .map(disclosure_record)
            .collect();
        let refusals = store::audit::refusals_of(self.db(), &key)
            .await?
            .into_iter()
            .map(|e| {
                // A deny refused what was asked; a permit, what it left out.
                let refused = if e.decision == pb::Decision::Deny {
                    e.categories
                } else {
                    e.refused
                };
                pb::RefusalRecord {
                    recipient: e.actor_organisation,
                    recipient_kind: e.actor_kind as i32,
                    refused_at: Some(to_timestamp(e.at)),
                    purpose: e.purpose as i32,
                    bases: e.bases,
                    categories: refused.into_iter().map(|c| c as i32).collect(),
                }
            })
            .collect();
        Ok(pb::ListDisclosuresResponse {
            disclosures,
            refusals,
        })
    }
}

fn disclosure_record(d: people::DisclosureRow) -> pb::DisclosureRecord {
    pb::DisclosureRecord {
        disclosure_id: d.disclosure_id,
        recipient: d.recipient,
        recipient_kind: OrganisationKind::from_str_name(&d.recipient_kind).unwrap_or_default()
            as i32,
        disclosed_at: Some(to_timestamp(d.disclosed_at)),
        purpose: pb::Purpose::from_str_name(&d.purpose).unwrap_or_default() as i32,
        bases: store::audit::parse_bases(&d.bases).unwrap_or_default(),
        categories: store::split_names(&d.categories)
            .filter_map(DataCategory::from_str_name)
            .map(|c| c as i32)
            .collect(),
        trigger: trigger(&d.trigger_kind) as i32,
    }
}
