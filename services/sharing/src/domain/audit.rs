//! The tamper-evident audit log. Each entry's hash is SHA-256 over the previous
//! entry's hash and the entry's canonical bytes (its protobuf encoding with the
//! hash fields empty), so changing, removing or reordering any entry breaks
//! every hash after it, and the first broken entry is where the log was touched.

use super::decision::{self, Outcome, Refusal, Request};
use chrono::{DateTime, Utc};
use ring::digest;
use throughcare_proto::sharing::v1 as pb;
use throughcare_proto::types::v1::{DataCategory, OrganisationKind};

/// The "previous hash" of the first entry.
pub const GENESIS: [u8; 32] = [0; 32];

/// How a justification no person wrote begins: a pushed delivery's, made at
/// a transition point with nobody asking. A person's justification may not
/// begin so, so the two are never confused.
pub const NOT_WRITTEN: &str = "[no written justification]";

/// One audited decision, as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub seq: i64,
    pub at: DateTime<Utc>,
    pub actor_organisation: String,
    pub actor_kind: OrganisationKind,
    pub actor_role: String,
    pub person_key: String,
    pub purpose: pb::Purpose,
    pub decision: pb::Decision,
    pub bases: Vec<pb::LawfulBasis>,
    pub categories: Vec<DataCategory>,
    pub justification: String,
    pub flagged: bool,
    pub action: pb::AuditedAction,
}

impl Entry {
    /// The entry for a read of what is held about a person (`action`: their
    /// consents, or subject access) by an organisation acting in `role`:
    /// PERMIT when it may, DENY when it has no relationship with them.
    pub fn read(
        action: pb::AuditedAction,
        reader: (&str, OrganisationKind, &str),
        person_key: &str,
        at: DateTime<Utc>,
        allowed: bool,
    ) -> Self {
        let (organisation, kind, role) = reader;
        Entry {
            seq: 0,
            at,
            actor_organisation: organisation.to_owned(),
            actor_kind: kind,
            actor_role: role.to_owned(),
            person_key: person_key.to_owned(),
            purpose: pb::Purpose::Unspecified,
            decision: if allowed {
                pb::Decision::Permit
            } else {
                pb::Decision::Deny
            },
            bases: Vec::new(),
            categories: Vec::new(),
            justification: String::new(),
            flagged: false,
            action,
        }
    }

    /// The entry for a decision on `request`, taken for a caller acting in
    /// `role`: a permit names the permitted categories, a deny those asked for.
    pub fn decided(
        role: &str,
        person_key: &str,
        request: &Request,
        outcome: &Outcome,
        justification: &str,
    ) -> Self {
        let (decision, categories) = if outcome.permits() {
            let permitted = outcome.permitted.keys().copied().collect();
            (pb::Decision::Permit, permitted)
        } else {
            let wanted = decision::wanted(request).into_iter().collect();
            (pb::Decision::Deny, wanted)
        };
        Entry {
            seq: 0,
            at: request.at,
            actor_organisation: request.recipient.clone(),
            actor_kind: request.recipient_kind.to_proto(),
            actor_role: role.to_owned(),
            person_key: person_key.to_owned(),
            purpose: request.purpose,
            decision,
            bases: outcome.lawful_bases(),
            categories,
            justification: justification.to_owned(),
            flagged: outcome.flagged(),
            action: pb::AuditedAction::Unspecified,
        }
    }

    /// The entry for a request refused whole for `refusal`: a deny of what was
    /// asked for, whose justification says, after the marker of one nobody
    /// wrote, why in a plain code.
    pub fn refused(
        role: &str,
        person_key: &str,
        request: &Request,
        outcome: &Outcome,
        refusal: Refusal,
    ) -> Self {
        let marker = format!("{NOT_WRITTEN} refused: {}", refusal.code());
        Self::decided(role, person_key, request, outcome, &marker)
    }

    /// The entry for a push made at `trigger` (kind, id): nobody wrote a
    /// justification, and the entry says so. One that rests on an agreement
    /// or statutory basis names it among its bases and is flagged for review,
    /// like any use of one.
    pub fn pushed(
        role: &str,
        person_key: &str,
        request: &Request,
        outcome: &Outcome,
        trigger: (&str, &str),
    ) -> Self {
        let (kind, id) = trigger;
        let marker = format!("{NOT_WRITTEN} automatic disclosure at {kind} {id}");
        Self::decided(role, person_key, request, outcome, &marker)
    }

    pub fn to_proto(&self, previous_hash: Vec<u8>, hash: Vec<u8>) -> pb::AuditEntry {
        pb::AuditEntry {
            sequence: self.seq,
            at: Some(prost_types::Timestamp {
                seconds: self.at.timestamp(),
                nanos: self.at.timestamp_subsec_micros() as i32 * 1000,
            }),
            actor_organisation: self.actor_organisation.clone(),
            actor_kind: self.actor_kind as i32,
            actor_role: self.actor_role.clone(),
            person_key: self.person_key.clone(),
            purpose: self.purpose as i32,
            decision: self.decision as i32,
            bases: self.bases.clone(),
            categories: self.categories.iter().map(|c| *c as i32).collect(),
            justification: self.justification.clone(),
            flagged_for_review: self.flagged,
            previous_hash,
            hash,
            action: self.action as i32,
        }
    }

    pub fn canonical_bytes(&self) -> Vec<u8> {
        prost::Message::encode_to_vec(&self.to_proto(Vec::new(), Vec::new()))
    }

    /// This entry's hash, chained to `previous`.
    pub fn hash(&self, previous: &[u8]) -> [u8; 32] {
        let mut context = digest::Context::new(&digest::SHA256);
        context.update(previous);
        context.update(&self.canonical_bytes());
        context
            .finish()
            .as_ref()
            .try_into()
            .expect("sha-256 is 32 bytes")
    }
}

/// Checks entries in order and stops at the first that does not chain.
#[derive(Debug)]
pub struct Verifier {
    previous: Vec<u8>,
    next_seq: i64,
    checked: i64,
}

impl Default for Verifier {
    fn default() -> Self {
        Self {
            previous: GENESIS.to_vec(),
            next_seq: 1,
            checked: 0,
        }
    }
}

/// Why an entry does not chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broken {
    pub seq: i64,
    pub reason: &'static str,
}

impl Verifier {
    pub fn check(
        &mut self,
        entry: &Entry,
        previous_hash: &[u8],
        hash: &[u8],
    ) -> Result<(), Broken> {
        let broken = |reason| Broken {
            seq: entry.seq,
            reason,
        };
        if entry.seq != self.next_seq {
            return Err(Broken {
                seq: self.next_seq,
                reason: "entry is missing",
            });
        }
        if previous_hash != self.previous.as_slice() {
            return Err(broken("previous hash does not match the entry before it"));
        }
        if hash != entry.hash(previous_hash).as_slice() {
            return Err(broken(
                "entry was altered: its hash does not match its content",
            ));
        }
        self.previous = hash.to_vec();
        self.next_seq += 1;
        self.checked += 1;
        Ok(())
    }

    /// After the last entry: the head recorded separately must match, or entries
    /// were cut off the end.
    pub fn finish(&self, head_seq: i64, head_hash: &[u8]) -> Result<i64, Broken> {
        if head_seq != self.checked || head_hash != self.previous.as_slice() {
            return Err(Broken {
                seq: self.checked + 1,
                reason: "entries after this point were removed",
            });
        }
        Ok(self.checked)
    }

    pub fn checked(&self) -> i64 {
        self.checked
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(seq: i64) -> Entry {
        Entry {
            seq,
            at: DateTime::from_timestamp(1_800_000_000 + seq, 123_000).unwrap(),
            actor_organisation: "EMR-LEI".into(),
            actor_kind: OrganisationKind::Probation,
            actor_role: "practitioner".into(),
            person_key: "0".repeat(32),
            purpose: pb::Purpose::DirectCare,
            decision: pb::Decision::Permit,
            bases: vec![pb::LawfulBasis {
                r#type: 1,
                basis_id: "c1".into(),
            }],
            categories: vec![DataCategory::MentalHealth],
            justification: String::new(),
            flagged: false,
            action: pb::AuditedAction::Unspecified,
        }
    }

    fn chain(n: i64) -> Vec<(Entry, Vec<u8>, Vec<u8>)> {
        let mut previous = GENESIS.to_vec();
        (1..=n)
            .map(|seq| {
                let e = entry(seq);
                let hash = e.hash(&previous).to_vec();
                let row = (e, previous.clone(), hash.clone());
                previous = hash;
                row
            })
            .collect()
    }

    fn verify(rows: &[(Entry, Vec<u8>, Vec<u8>)]) -> Result<i64, Broken> {
        let mut verifier = Verifier::default();
        for (e, p, h) in rows {
            verifier.check(e, p, h)?;
        }
        let (seq, hash) = rows
            .last()
            .map_or((0, GENESIS.to_vec()), |(e, _, h)| (e.seq, h.clone()));
        verifier.finish(seq, &hash)
    }

    #[test]
    fn an_intact_chain_verifies() {
        assert_eq!(verify(&chain(50)), Ok(50));
    }

    #[test]
    fn the_first_altered_entry_is_reported() {
        let mut rows = chain(10);
        rows[6].0.justification = "edited later".into();
        assert_eq!(verify(&rows).unwrap_err().seq, 7);
        let mut rows = chain(10);
        rows[3].0.categories.push(DataCategory::Medication);
        assert_eq!(verify(&rows).unwrap_err().seq, 4);
    }

    #[test]
    fn removed_or_reordered_entries_are_reported() {
        let mut rows = chain(10);
        rows.remove(4);
        assert_eq!(verify(&rows).unwrap_err().seq, 5);
        let mut rows = chain(10);
        rows.swap(2, 3);
        assert_eq!(verify(&rows).unwrap_err().seq, 3);
        let rows = chain(10);
        let mut verifier = Verifier::default();
        for (e, p, h) in &rows[..8] {
            verifier.check(e, p, h).unwrap();
        }
        assert_eq!(
            verifier.finish(10, &rows[9].2).unwrap_err().seq,
            9,
            "the tail was cut"
        );
    }
}
