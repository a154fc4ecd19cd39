//! Disclosure on request, subject access, and the audit log's RPCs.

use super::{App, Effects, consents::person, lawful_bases, new_id, timestamp};
use crate::domain::convert;
use crate::domain::decision::{Request, decide};
use crate::error::{Error, Result};
use crate::store::{self, join_names, people};
use std::collections::BTreeSet;
use throughcare_platform::identity::Caller;
use throughcare_platform::validation::{FieldViolation, Violations};
use throughcare_proto::events::v1 as events;
use throughcare_proto::sharing::v1 as pb;

const MAX_JUSTIFICATION: usize = 2000;

impl App {
    /// Decides, audits and — when permitted — discloses exactly the permitted
    /// categories. A deny says nothing more than "deny".
    pub async fn request_disclosure(
        &self,
        caller: &Caller,
        r: &pb::RequestDisclosureRequest,
    ) -> Result<pb::RequestDisclosureResponse> {
        let now = self.now();
        let mut v = Violations::new();
        let ids = person(&mut v, r.person.as_ref());
        let purpose = v.check(convert::purpose(r.purpose, "purpose"));
        let categories = convert::categories(&r.categories, "categories", &mut v);
        let justification = r.justification.trim();
        if justification.chars().count() > MAX_JUSTIFICATION {
            v.push(FieldViolation::new(
                "justification",
                format!("must be at most {MAX_JUSTIFICATION} characters"),
            ));
        }
        let (ids, purpose) = v
            .finish(|| Some((ids?, purpose?)))?
            .ok_or_else(|| Error::Internal("incomplete request".into()))?;
        let request = Request {
            recipient: caller.code().to_owned(),
            recipient_kind: caller.kind(),
            purpose,
            categories,
            at: now,
            justified: !justification.is_empty(),
        };

        let mut tx = self.db.begin().await?;
        let known = people::key_of(&mut tx, &ids).await?;
        let (consents, agreements) = self.bases_for(&mut tx, known.as_deref()).await?;
        let outcome = decide(&consents, &agreements, &request);
        if !request.justified {
            let with = decide(
                &consents,
                &agreements,
                &Request {
                    justified: true,
                    ..request.clone()
                },
            );
            if with.permitted.len() > outcome.permitted.len() {
                return Err(FieldViolation::new(
                    "justification",
                    "is required: this disclosure can only rest on an agreement or statutory basis",
                )
                .into());
            }
        }
        let person_key = known
            .clone()
            .unwrap_or_else(|| self.pseudonyms.person_key(&ids).as_str().to_owned());
        let mut effects = Effects::default();
        effects.audit(self.audit_entry(caller, &person_key, &request, &outcome, justification));
        let response = if outcome.permits() {
            let permitted: BTreeSet<_> = outcome.permitted.keys().copied().collect();
            let health = match &known {
                Some(key) => self.permitted_health(&mut tx, key, &permitted).await?,
                None => Default::default(),
            };
            let disclosure_id = new_id();
            let bases = lawful_bases(&outcome);
            store::people::insert_disclosure(
                &mut tx,
                &store::people::DisclosureRow {
                    disclosure_id: disclosure_id.clone(),
                    person_key: person_key.clone(),
                    recipient: caller.code().to_owned(),
                    recipient_kind: caller.kind().to_proto().as_str_name().to_owned(),
                    purpose: purpose.as_str_name().to_owned(),
                    bases: store::audit::bases_text(&bases),
                    categories: join_names(permitted.iter().map(|c| c.as_str_name())),
                    trigger_kind: "request".into(),
                    trigger_id: String::new(),
                    disclosed_at: now,
                },
            )
            .await?;
            effects.event(
                self,
                &person_key,
                &events::DisclosureMade {
                    disclosure_id: disclosure_id.clone(),
                    person_key: person_key.clone(),
                    recipient: caller.code().to_owned(),
                    recipient_kind: caller.kind().to_proto() as i32,
                    purpose: purpose as i32,
                    bases: bases.clone(),
                    categories: permitted.iter().map(|c| *c as i32).collect(),
                    trigger: pb::DeliveryTrigger::Unspecified as i32,
                    disclosed_at: Some(timestamp(now)),
                },
            );
            pb::RequestDisclosureResponse {
                decision: pb::Decision::Permit as i32,
                disclosure_id,
                bases,
                categories: permitted.iter().map(|c| *c as i32).collect(),
                health: Some(health),
            }
        } else {
            effects.event(
                self,
                &person_key,
                &events::DisclosureDenied {
                    decision_id: new_id(),
                    person_key: person_key.clone(),
                    recipient: caller.code().to_owned(),
                    recipient_kind: caller.kind().to_proto() as i32,
                    purpose: purpose as i32,
                    categories: crate::domain::decision::wanted(&request)
                        .iter()
                        .map(|c| *c as i32)
                        .collect(),
                    decided_at: Some(timestamp(now)),
                },
            );
            pb::RequestDisclosureResponse {
                decision: pb::Decision::Deny as i32,
                ..Default::default()
            }
        };
        effects.write(&mut tx).await?;
        tx.commit().await?;
        self.committed();
        Ok(response)
    }

    /// Subject access: every disclosure made about a person.
    pub async fn list_disclosures(
        &self,
        r: &pb::ListDisclosuresRequest,
    ) -> Result<pb::ListDisclosuresResponse> {
        let mut v = Violations::new();
        let ids = person(&mut v, r.person.as_ref());
        let ids = v
            .finish(|| ids)?
            .ok_or_else(|| Error::Internal("identifiers missing".into()))?;
        let key = match people::key_of_read(&self.db, &ids).await? {
            Some(key) => key,
            None => self.pseudonyms.person_key(&ids).as_str().to_owned(),
        };
        let disclosures = people::disclosures_of(&self.db, &key)
            .await?
            .into_iter()
            .map(|d| pb::DisclosureRecord {
                disclosure_id: d.disclosure_id,
                recipient: d.recipient,
                recipient_kind: throughcare_proto::types::v1::OrganisationKind::from_str_name(
                    &d.recipient_kind,
                )
                .unwrap_or_default() as i32,
                disclosed_at: Some(timestamp(d.disclosed_at)),
                purpose: pb::Purpose::from_str_name(&d.purpose).unwrap_or_default() as i32,
                bases: store::audit::parse_bases(&d.bases).unwrap_or_default(),
                categories: store::split_names(&d.categories)
                    .filter_map(throughcare_proto::types::v1::DataCategory::from_str_name)
                    .map(|c| c as i32)
                    .collect(),
                trigger: match d.trigger_kind.as_str() {
                    "release" => pb::DeliveryTrigger::Release,
                    "referral" => pb::DeliveryTrigger::Referral,
                    _ => pb::DeliveryTrigger::Unspecified,
                } as i32,
            })
            .collect();
        Ok(pb::ListDisclosuresResponse { disclosures })
    }

    pub async fn verify_audit(&self) -> Result<pb::VerifyAuditChainResponse> {
        Ok(match store::audit::verify(&self.db).await? {
            Ok(checked) => pb::VerifyAuditChainResponse {
                intact: true,
                entries_verified: checked,
                ..Default::default()
            },
            Err(broken) => pb::VerifyAuditChainResponse {
                intact: false,
                entries_verified: broken.seq - 1,
                first_broken_sequence: broken.seq,
                reason: broken.reason.to_owned(),
            },
        })
    }

    pub async fn list_audit_entries(
        &self,
        r: &pb::ListAuditEntriesRequest,
    ) -> Result<pb::ListAuditEntriesResponse> {
        let limit = match r.page_size {
            0 => 100,
            1..=1000 => i64::from(r.page_size),
            _ => return Err(FieldViolation::new("page_size", "must be between 0 and 1000").into()),
        };
        let after = match r.page_token.as_str() {
            "" => 0,
            token => token.parse::<i64>().map_err(|_| {
                FieldViolation::new("page_token", "is not a page token this service issued")
            })?,
        };
        let entries = store::audit::entries(&self.db, r.flagged_only, after, limit).await?;
        let next_page_token = match entries.last() {
            Some(last) if entries.len() as i64 == limit => last.sequence.to_string(),
            _ => String::new(),
        };
        Ok(pb::ListAuditEntriesResponse {
            entries,
            next_page_token,
        })
    }
}
