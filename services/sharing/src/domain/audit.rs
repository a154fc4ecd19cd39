//! The tamper-evident audit log. Each entry's hash is SHA-256 over the previous
//! entry's hash and the entry's canonical bytes (its protobuf encoding with the
//! hash fields empty), so changing, removing or reordering any entry breaks
//! every hash after it, and the first broken entry is where the log was touched.

use super::decision::{self, Outcome, Refusal, Request};
use chrono::{DateTime, SubsecRound, Utc};
use ring::digest;
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use throughcare_platform::clock::to_timestamp;
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
    /// Categories refused when others were permitted.
    pub refused: Vec<DataCategory>,
    /// The disclosure a permit made.
    pub disclosure_id: String,
    /// The pushed delivery decided.
    pub delivery_id: String,
    /// What the decision was taken at: `request`, or a push's trigger.
    pub trigger_kind: String,
    pub trigger_id: String,
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
            refused: Vec::new(),
            disclosure_id: String::new(),
            delivery_id: String::new(),
            trigger_kind: String::new(),
            trigger_id: String::new(),
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
        let (decision, categories, refused) = if outcome.permits() {
            let permitted = outcome.permitted.keys().copied().collect();
            let refused = outcome.refused.iter().copied().collect();
            (pb::Decision::Permit, permitted, refused)
        } else {
            let wanted = decision::wanted(request).into_iter().collect();
            (pb::Decision::Deny, wanted, Vec::new())
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
            refused,
            disclosure_id: String::new(),
            delivery_id: String::new(),
            trigger_kind: "request".to_owned(),
            trigger_id: String::new(),
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
        delivery_id: &str,
    ) -> Self {
        let (kind, id) = trigger;
        let marker = format!("{NOT_WRITTEN} automatic disclosure at {kind} {id}");
        Entry {
            delivery_id: delivery_id.to_owned(),
            trigger_kind: kind.to_owned(),
            trigger_id: id.to_owned(),
            ..Self::decided(role, person_key, request, outcome, &marker)
        }
    }

    pub fn to_proto(&self, previous_hash: Vec<u8>, hash: Vec<u8>) -> pb::AuditEntry {
        pb::AuditEntry {
            sequence: self.seq,
            // Microseconds, as stored: the hash covers what is stored.
            at: Some(to_timestamp(self.at.trunc_subsecs(6))),
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
            refused_categories: self.refused.iter().map(|c| *c as i32).collect(),
            disclosure_id: self.disclosure_id.clone(),
            delivery_id: self.delivery_id.clone(),
            trigger_kind: self.trigger_kind.clone(),
            trigger_id: self.trigger_id.clone(),
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

/// A signed statement of the chain's head: the sharing service's key says
/// entry `seq` had chain hash `hash` at `at`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub seq: i64,
    pub hash: Vec<u8>,
    pub at: DateTime<Utc>,
    pub signature: Vec<u8>,
}

impl Checkpoint {
    fn signed_bytes(seq: i64, hash: &[u8], at: DateTime<Utc>) -> Vec<u8> {
        format!(
            "throughcare.audit-checkpoint\u{1f}{seq}\u{1f}{}\u{1f}{}",
            hex::encode(hash),
            at.timestamp_micros()
        )
        .into_bytes()
    }

    /// Whether `public_key` signed exactly this.
    pub fn is_signed_by(&self, public_key: &[u8]) -> bool {
        UnparsedPublicKey::new(&ED25519, public_key)
            .verify(
                &Self::signed_bytes(self.seq, &self.hash, self.at),
                &self.signature,
            )
            .is_ok()
    }
}

/// The sharing service's Ed25519 key for checkpoints, held by no one else.
pub struct CheckpointKey(Ed25519KeyPair);

impl std::fmt::Debug for CheckpointKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CheckpointKey { .. }")
    }
}

impl CheckpointKey {
    /// From its 32-byte seed in hex.
    pub fn from_hex(seed: &str) -> Result<Self, &'static str> {
        let seed = hex::decode(seed.trim()).map_err(|_| "must be hex")?;
        if seed.len() != 32 {
            return Err("must be 32 bytes (64 hex characters)");
        }
        Ed25519KeyPair::from_seed_unchecked(&seed)
            .map(Self)
            .map_err(|_| "is not an Ed25519 seed")
    }

    pub fn public_key(&self) -> Vec<u8> {
        self.0.public_key().as_ref().to_vec()
    }

    pub fn sign(&self, seq: i64, hash: &[u8], at: DateTime<Utc>) -> Checkpoint {
        // Stored and signed to the microsecond, so it verifies as read back.
        let at = DateTime::from_timestamp_micros(at.timestamp_micros()).unwrap_or(at);
        let signature = self.0.sign(&Checkpoint::signed_bytes(seq, hash, at));
        Checkpoint {
            seq,
            hash: hash.to_vec(),
            at,
            signature: signature.as_ref().to_vec(),
        }
    }
}

/// Checks entries in order and stops at the first that does not chain, nor
/// agree with a signed checkpoint.
#[derive(Debug)]
pub struct Verifier {
    previous: Vec<u8>,
    next_seq: i64,
    checked: i64,
    /// Checkpoints not yet reached, latest first.
    checkpoints: Vec<Checkpoint>,
    /// The last checkpoint the chain agreed with.
    agreed: i64,
}

impl Default for Verifier {
    fn default() -> Self {
        Self::against(Vec::new())
    }
}

/// Why an entry does not chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broken {
    pub seq: i64,
    pub reason: &'static str,
}

impl Verifier {
    /// A verifier that also holds the chain to `checkpoints` (each already
    /// known to carry the service's signature).
    pub fn against(mut checkpoints: Vec<Checkpoint>) -> Self {
        checkpoints.sort_by_key(|c| std::cmp::Reverse(c.seq));
        Self {
            previous: GENESIS.to_vec(),
            next_seq: 1,
            checked: 0,
            checkpoints,
            agreed: 0,
        }
    }

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
        while let Some(checkpoint) = self.checkpoints.last().filter(|c| c.seq == entry.seq) {
            if checkpoint.hash != hash {
                return Err(Broken {
                    seq: self.agreed + 1,
                    reason: "entries from here on differ from what a signed checkpoint \
                             recorded: the chain was rewritten",
                });
            }
            self.agreed = entry.seq;
            self.checkpoints.pop();
        }
        self.previous = hash.to_vec();
        self.next_seq += 1;
        self.checked += 1;
        Ok(())
    }

    /// After the last entry: the head recorded separately must match, or entries
    /// were cut off the end.
    pub fn finish(&self, head_seq: i64, head_hash: &[u8]) -> Result<i64, Broken> {
        let signed_later = self.checkpoints.iter().any(|c| c.seq > self.checked);
        if signed_later || head_seq != self.checked || head_hash != self.previous.as_slice() {
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
            refused: vec![DataCategory::SubstanceMisuse],
            disclosure_id: format!("d{seq}"),
            delivery_id: String::new(),
            trigger_kind: "request".into(),
            trigger_id: String::new(),
        }
    }

    #[test]
    fn the_hash_covers_every_field_of_a_decision() {
        let base = entry(1);
        let changed = [
            Entry {
                refused: vec![],
                ..base.clone()
            },
            Entry {
                disclosure_id: "other".into(),
                ..base.clone()
            },
            Entry {
                delivery_id: "d".into(),
                ..base.clone()
            },
            Entry {
                trigger_kind: "release".into(),
                ..base.clone()
            },
            Entry {
                trigger_id: "r1".into(),
                ..base.clone()
            },
            Entry {
                action: pb::AuditedAction::SubjectAccess,
                ..base.clone()
            },
        ];
        for other in changed {
            assert_ne!(other.hash(&GENESIS), base.hash(&GENESIS), "{other:?}");
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
        verify_against(rows, Vec::new())
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

    fn key() -> CheckpointKey {
        CheckpointKey::from_hex(&"17".repeat(32)).unwrap()
    }

    fn signed(rows: &[(Entry, Vec<u8>, Vec<u8>)], seq: i64) -> Checkpoint {
        let (_, _, hash) = &rows[seq as usize - 1];
        key().sign(
            seq,
            hash,
            DateTime::from_timestamp(1_800_001_000, 0).unwrap(),
        )
    }

    /// A chain recomputed from entry `from` on, after altering it.
    fn recomputed(
        rows: &[(Entry, Vec<u8>, Vec<u8>)],
        from: usize,
    ) -> Vec<(Entry, Vec<u8>, Vec<u8>)> {
        let mut rows = rows.to_vec();
        rows[from - 1].0.justification = "rewritten".into();
        let mut previous = rows[from - 2].2.clone();
        for row in &mut rows[from - 1..] {
            row.1 = previous.clone();
            row.2 = row.0.hash(&previous).to_vec();
            previous = row.2.clone();
        }
        rows
    }

    fn verify_against(
        rows: &[(Entry, Vec<u8>, Vec<u8>)],
        checkpoints: Vec<Checkpoint>,
    ) -> Result<i64, Broken> {
        let mut verifier = Verifier::against(checkpoints);
        for (e, p, h) in rows {
            verifier.check(e, p, h)?;
        }
        let (seq, hash) = rows
            .last()
            .map_or((0, GENESIS.to_vec()), |(e, _, h)| (e.seq, h.clone()));
        verifier.finish(seq, &hash)
    }

    #[test]
    fn checkpoints_are_signed_by_the_key_alone() {
        let rows = chain(5);
        let checkpoint = signed(&rows, 5);
        assert!(checkpoint.is_signed_by(&key().public_key()));
        let other = CheckpointKey::from_hex(&"29".repeat(32)).unwrap();
        assert!(!checkpoint.is_signed_by(&other.public_key()));
        let mut moved = checkpoint.clone();
        moved.seq = 4;
        assert!(
            !moved.is_signed_by(&key().public_key()),
            "a signature covers its sequence"
        );
        assert!(CheckpointKey::from_hex("abc").is_err());
    }

    #[test]
    fn a_cut_tail_with_its_head_moved_back_is_found_by_a_checkpoint() {
        let rows = chain(10);
        let checkpoints = vec![signed(&rows, 4), signed(&rows, 10)];
        assert_eq!(verify_against(&rows, checkpoints.clone()), Ok(10));
        // The head moved back to entry 7: the links all hold...
        assert_eq!(verify(&rows[..7]), Ok(7));
        // ...but a checkpoint signed entry 10.
        assert_eq!(verify_against(&rows[..7], checkpoints).unwrap_err().seq, 8);
    }

    #[test]
    fn a_recomputed_chain_is_found_from_the_last_checkpoint_it_agrees_with() {
        let rows = chain(10);
        let checkpoints = vec![signed(&rows, 4), signed(&rows, 10)];
        let rewritten = recomputed(&rows, 5);
        assert_eq!(verify(&rewritten), Ok(10), "self-consistent");
        let broken = verify_against(&rewritten, checkpoints).unwrap_err();
        assert_eq!(broken.seq, 5, "{broken:?}");
    }
}
