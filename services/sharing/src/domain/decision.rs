//! The disclosure decision, as data in and data out.
//!
//! For each data category asked for, every consent in force and every lawful
//! basis that applies is consulted:
//!
//! - a consent answers through its provision tree, in the spirit of FHIR
//!   Consent: a provision that matches the request has the last word unless one
//!   of its nested exceptions also matches, in which case the exceptions decide;
//!   among matching exceptions, deny wins;
//! - an agreement or statutory basis permits when it covers the recipient,
//!   purpose, category and time — and only when the request carries a written
//!   justification;
//! - across everything that matched, **deny overrides permit**; with no permit
//!   at all the category is refused.
//!
//! Commissioning is never served person-level: it is refused whatever is
//! recorded.

use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, BTreeSet};
use throughcare_platform::identity::OrganisationKind;
use throughcare_proto::sharing::v1::{LawfulBasis, LawfulBasisType, Purpose};
use throughcare_proto::types::v1::DataCategory;

/// Every category a person's health information is divided into.
pub const ALL_CATEGORIES: [DataCategory; 11] = [
    DataCategory::GpRegistration,
    DataCategory::DentalRegistration,
    DataCategory::MentalHealth,
    DataCategory::SubstanceMisuse,
    DataCategory::SelfHarmRisk,
    DataCategory::Medication,
    DataCategory::Smoking,
    DataCategory::Vaccination,
    DataCategory::CommunicableDisease,
    DataCategory::Disability,
    DataCategory::PhysicalHealth,
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Effect {
    Permit,
    Deny,
}

/// A half-open time interval; an absent bound is unbounded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Period {
    pub start: Option<DateTime<Utc>>,
    pub end: Option<DateTime<Utc>>,
}

impl Period {
    pub fn contains(&self, at: DateTime<Utc>) -> bool {
        self.start.is_none_or(|s| s <= at) && self.end.is_none_or(|e| at < e)
    }
}

/// Who a provision or agreement covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recipient {
    Organisation(String),
    Kind(OrganisationKind),
}

/// What a provision or agreement covers; an empty list covers anything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope {
    pub recipients: Vec<Recipient>,
    pub purposes: Vec<Purpose>,
    pub categories: Vec<DataCategory>,
    pub period: Option<Period>,
}

impl Scope {
    pub fn covers(&self, request: &Request, category: DataCategory) -> bool {
        let recipient = self.recipients.is_empty()
            || self.recipients.iter().any(|r| match r {
                Recipient::Organisation(code) => *code == request.recipient,
                Recipient::Kind(kind) => *kind == request.recipient_kind,
            });
        recipient
            && (self.purposes.is_empty() || self.purposes.contains(&request.purpose))
            && (self.categories.is_empty() || self.categories.contains(&category))
            && self.period.is_none_or(|p| p.contains(request.at))
    }
}

/// A rule in a consent, with its nested exceptions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provision {
    pub effect: Effect,
    pub scope: Scope,
    pub exceptions: Vec<Provision>,
}

impl Provision {
    /// This provision's answer for one category, or `None` if it does not apply.
    pub fn answer(&self, request: &Request, category: DataCategory) -> Option<Effect> {
        if !self.scope.covers(request, category) {
            return None;
        }
        let mut exceptions = self
            .exceptions
            .iter()
            .filter_map(|e| e.answer(request, category))
            .peekable();
        if exceptions.peek().is_none() {
            return Some(self.effect);
        }
        Some(if exceptions.any(|e| e == Effect::Deny) {
            Effect::Deny
        } else {
            Effect::Permit
        })
    }
}

/// A consent as the decision sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consent {
    pub id: String,
    pub provision: Provision,
    pub period: Period,
    pub withdrawn_at: Option<DateTime<Utc>>,
}

impl Consent {
    pub fn in_force(&self, at: DateTime<Utc>) -> bool {
        self.period.contains(at) && self.withdrawn_at.is_none_or(|w| at < w)
    }
}

/// An information sharing agreement or statutory basis.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Agreement {
    pub id: String,
    pub basis: LawfulBasisType,
    pub scope: Scope,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl Agreement {
    pub fn in_force(&self, at: DateTime<Utc>) -> bool {
        self.revoked_at.is_none_or(|r| at < r)
    }
}

/// A request to see a person's information. The recipient comes from the
/// caller's identity, never from the request body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub recipient: String,
    pub recipient_kind: OrganisationKind,
    pub purpose: Purpose,
    /// Empty asks for every category.
    pub categories: Vec<DataCategory>,
    pub at: DateTime<Utc>,
    /// A written justification accompanies the request.
    pub justified: bool,
}

/// What a disclosure may rest on.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Basis {
    Consent(String),
    Agreement(LawfulBasisType, String),
}

/// The decision: which categories may be disclosed, each with the bases that
/// permit it; everything else asked for is refused.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    pub permitted: BTreeMap<DataCategory, BTreeSet<Basis>>,
    pub refused: BTreeSet<DataCategory>,
}

impl Outcome {
    pub fn permits(&self) -> bool {
        !self.permitted.is_empty()
    }

    /// Every basis the disclosure rests on.
    pub fn bases(&self) -> BTreeSet<Basis> {
        self.permitted.values().flatten().cloned().collect()
    }

    /// Every basis the disclosure rests on, as the contracts name them.
    pub fn lawful_bases(&self) -> Vec<LawfulBasis> {
        self.bases()
            .into_iter()
            .map(|basis| match basis {
                Basis::Consent(id) => LawfulBasis {
                    r#type: LawfulBasisType::Consent as i32,
                    basis_id: id,
                },
                Basis::Agreement(kind, id) => LawfulBasis {
                    r#type: kind as i32,
                    basis_id: id,
                },
            })
            .collect()
    }

    /// Rests on something other than consent: needs review.
    pub fn flagged(&self) -> bool {
        self.bases()
            .iter()
            .any(|b| matches!(b, Basis::Agreement(..)))
    }
}

/// The categories a request asks for: as listed (deduplicated), or all.
pub fn wanted(request: &Request) -> BTreeSet<DataCategory> {
    if request.categories.is_empty() {
        ALL_CATEGORIES.into_iter().collect()
    } else {
        request.categories.iter().copied().collect()
    }
}

/// Why a request was refused whole rather than category by category, as a
/// plain code for the audit log (never anything about the person).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// It could rest only on an agreement or statutory basis, which needs a
    /// written justification, and came without one.
    JustificationRequired,
}

impl Refusal {
    pub fn code(self) -> &'static str {
        match self {
            Refusal::JustificationRequired => "JUSTIFICATION_REQUIRED",
        }
    }
}

/// Whether a request that came without a justification would be permitted
/// more with one: it rests on an agreement or statutory basis, which needs it.
pub fn needs_justification(
    consents: &[Consent],
    agreements: &[Agreement],
    request: &Request,
    outcome: &Outcome,
) -> bool {
    let justified = Request {
        justified: true,
        ..request.clone()
    };
    !request.justified
        && decide(consents, agreements, &justified).permitted.len() > outcome.permitted.len()
}

/// The decision on a request someone made: as [`decide`], except that a
/// request which would be permitted more with a written justification and
/// came without one is refused whole — decided, audited and answered like any
/// other deny, so that whether it needed one (which depends on what the person
/// consented to) is never told to the caller — with the reason for the audit.
pub fn decide_requested(
    consents: &[Consent],
    agreements: &[Agreement],
    request: &Request,
) -> (Outcome, Option<Refusal>) {
    let outcome = decide(consents, agreements, request);
    if needs_justification(consents, agreements, request, &outcome) {
        let refused = Outcome {
            permitted: BTreeMap::new(),
            refused: wanted(request),
        };
        return (refused, Some(Refusal::JustificationRequired));
    }
    (outcome, None)
}

pub fn decide(consents: &[Consent], agreements: &[Agreement], request: &Request) -> Outcome {
    let mut outcome = Outcome::default();
    for category in wanted(request) {
        if request.purpose == Purpose::Commissioning {
            outcome.refused.insert(category);
            continue;
        }
        let mut denied = false;
        let mut bases = BTreeSet::new();
        for consent in consents.iter().filter(|c| c.in_force(request.at)) {
            match consent.provision.answer(request, category) {
                Some(Effect::Deny) => denied = true,
                Some(Effect::Permit) => {
                    bases.insert(Basis::Consent(consent.id.clone()));
                }
                None => {}
            }
        }
        if request.justified {
            for agreement in agreements
                .iter()
                .filter(|a| a.in_force(request.at) && a.scope.covers(request, category))
            {
                bases.insert(Basis::Agreement(agreement.basis, agreement.id.clone()));
            }
        }
        if denied || bases.is_empty() {
            outcome.refused.insert(category);
        } else {
            outcome.permitted.insert(category, bases);
        }
    }
    outcome
}
