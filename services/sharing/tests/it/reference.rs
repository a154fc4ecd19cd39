//! The service's disclosure decision against a deliberately simple reference
//! written separately here, on 100,000 random cases.
//!
//! The reference reads the rules straight off the domain notes, differently
//! from the service: it finds each consent's "frontier" — the matching
//! provisions none of whose exceptions match — with an explicit stack, says
//! deny if any frontier provision denies, and checks coverage with its own code.

use chrono::{DateTime, Utc};
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};
use throughcare_platform::identity::OrganisationKind;
use throughcare_proto::sharing::v1::{LawfulBasisType, Purpose};
use throughcare_proto::types::v1::DataCategory;
use throughcare_sharing::domain::decision::*;

const EVERY_CATEGORY: [DataCategory; 11] = ALL_CATEGORIES;

fn at(t: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000 + t * 3600, 0).unwrap()
}

fn reference_covers(scope: &Scope, r: &Request, category: DataCategory) -> bool {
    let mut recipient_ok = scope.recipients.is_empty();
    for recipient in &scope.recipients {
        match recipient {
            Recipient::Organisation(code) if code == &r.recipient => recipient_ok = true,
            Recipient::Kind(kind) if *kind == r.recipient_kind => recipient_ok = true,
            _ => {}
        }
    }
    let purpose_ok = scope.purposes.is_empty() || scope.purposes.contains(&r.purpose);
    let category_ok = scope.categories.is_empty() || scope.categories.contains(&category);
    let period_ok = match scope.period {
        None => true,
        Some(p) => {
            p.start.map(|s| s <= r.at).unwrap_or(true) && p.end.map(|e| r.at < e).unwrap_or(true)
        }
    };
    recipient_ok && purpose_ok && category_ok && period_ok
}

/// The effects of the matching provisions that have no matching exception.
fn frontier(root: &Provision, r: &Request, category: DataCategory) -> Vec<Effect> {
    let mut effects = Vec::new();
    if !reference_covers(&root.scope, r, category) {
        return effects;
    }
    let mut stack = vec![root];
    while let Some(node) = stack.pop() {
        let matching: Vec<&Provision> = node
            .exceptions
            .iter()
            .filter(|e| reference_covers(&e.scope, r, category))
            .collect();
        if matching.is_empty() {
            effects.push(node.effect);
        } else {
            stack.extend(matching);
        }
    }
    effects
}

fn reference(
    consents: &[Consent],
    agreements: &[Agreement],
    r: &Request,
) -> BTreeMap<DataCategory, BTreeSet<Basis>> {
    let mut permitted = BTreeMap::new();
    if r.purpose == Purpose::Commissioning {
        return permitted;
    }
    let wanted: BTreeSet<DataCategory> = if r.categories.is_empty() {
        EVERY_CATEGORY.into()
    } else {
        r.categories.iter().copied().collect()
    };
    for category in wanted {
        let mut any_deny = false;
        let mut bases = BTreeSet::new();
        for consent in consents {
            let started = consent.period.start.map(|s| s <= r.at).unwrap_or(true);
            let not_ended = consent.period.end.map(|e| r.at < e).unwrap_or(true);
            let not_withdrawn = consent.withdrawn_at.map(|w| r.at < w).unwrap_or(true);
            if !(started && not_ended && not_withdrawn) {
                continue;
            }
            let effects = frontier(&consent.provision, r, category);
            if effects.contains(&Effect::Deny) {
                any_deny = true;
            } else if !effects.is_empty() {
                bases.insert(Basis::Consent(consent.id.clone()));
            }
        }
        if r.justified {
            for agreement in agreements {
                let live = agreement.revoked_at.map(|t| r.at < t).unwrap_or(true);
                if live && reference_covers(&agreement.scope, r, category) {
                    bases.insert(Basis::Agreement(agreement.basis, agreement.id.clone()));
                }
            }
        }
        if !any_deny && !bases.is_empty() {
            permitted.insert(category, bases);
        }
    }
    permitted
}

// Generators over small universes, so that scopes overlap often.

fn organisation() -> impl Strategy<Value = (&'static str, OrganisationKind)> {
    prop_oneof![
        Just(("EMR-LEI", OrganisationKind::Probation)),
        Just(("EMR-NOT", OrganisationKind::Probation)),
        Just(("TP-LEI", OrganisationKind::Provider)),
        Just(("LEI", OrganisationKind::PrisonHealthcare)),
    ]
}

fn purpose() -> impl Strategy<Value = Purpose> {
    prop_oneof![
        Just(Purpose::DirectCare),
        Just(Purpose::RiskManagement),
        Just(Purpose::Safeguarding),
        Just(Purpose::Commissioning)
    ]
}

fn category() -> impl Strategy<Value = DataCategory> {
    prop_oneof![
        Just(DataCategory::MentalHealth),
        Just(DataCategory::SubstanceMisuse),
        Just(DataCategory::GpRegistration),
        Just(DataCategory::SelfHarmRisk),
    ]
}

fn period() -> impl Strategy<Value = Option<Period>> {
    prop_oneof![
        2 => Just(None),
        1 => (0i64..10, 1i64..10).prop_map(|(s, len)| Some(Period { start: Some(at(s)), end: Some(at(s + len)) })),
        1 => (0i64..10).prop_map(|s| Some(Period { start: Some(at(s)), end: None })),
    ]
}

fn scope() -> impl Strategy<Value = Scope> {
    let recipient = prop_oneof![
        organisation().prop_map(|(code, _)| Recipient::Organisation(code.to_owned())),
        organisation().prop_map(|(_, kind)| Recipient::Kind(kind)),
    ];
    (
        proptest::collection::vec(recipient, 0..3),
        proptest::collection::vec(purpose(), 0..3),
        proptest::collection::vec(category(), 0..3),
        period(),
    )
        .prop_map(|(recipients, purposes, categories, period)| Scope {
            recipients,
            purposes,
            categories,
            period,
        })
}

fn provision() -> impl Strategy<Value = Provision> {
    let effect = prop_oneof![Just(Effect::Permit), Just(Effect::Deny)];
    let leaf = (effect.clone(), scope()).prop_map(|(effect, scope)| Provision {
        effect,
        scope,
        exceptions: Vec::new(),
    });
    leaf.prop_recursive(3, 12, 3, move |inner| {
        (
            prop_oneof![Just(Effect::Permit), Just(Effect::Deny)],
            scope(),
            proptest::collection::vec(inner, 0..3),
        )
            .prop_map(|(effect, scope, exceptions)| Provision {
                effect,
                scope,
                exceptions,
            })
    })
}

fn consents() -> impl Strategy<Value = Vec<Consent>> {
    proptest::collection::vec(
        (provision(), period(), proptest::option::of(0i64..12))
            .prop_map(|(provision, period, withdrawn)| (provision, period, withdrawn)),
        0..4,
    )
    .prop_map(|items| {
        items
            .into_iter()
            .enumerate()
            .map(|(i, (provision, period, withdrawn))| Consent {
                id: format!("consent-{i}"),
                provision,
                period: period.unwrap_or_default(),
                withdrawn_at: withdrawn.map(at),
            })
            .collect()
    })
}

fn agreements() -> impl Strategy<Value = Vec<Agreement>> {
    let basis = prop_oneof![
        Just(LawfulBasisType::InformationSharingAgreement),
        Just(LawfulBasisType::Mappa),
        Just(LawfulBasisType::Safeguarding),
        Just(LawfulBasisType::StatutoryDuty),
    ];
    proptest::collection::vec((basis, scope(), proptest::option::of(0i64..12)), 0..3).prop_map(
        |items| {
            items
                .into_iter()
                .enumerate()
                .map(|(i, (basis, scope, revoked))| Agreement {
                    id: format!("agreement-{i}"),
                    basis,
                    scope,
                    revoked_at: revoked.map(at),
                })
                .collect()
        },
    )
}

fn request() -> impl Strategy<Value = Request> {
    (
        organisation(),
        purpose(),
        proptest::collection::vec(category(), 0..4),
        0i64..12,
        any::<bool>(),
    )
        .prop_map(
            |((code, kind), purpose, categories, t, justified)| Request {
                recipient: code.to_owned(),
                recipient_kind: kind,
                purpose,
                categories,
                at: at(t),
                justified,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 100_000, ..ProptestConfig::default() })]

    #[test]
    fn the_service_decides_as_the_reference_does(consents in consents(), agreements in agreements(), request in request()) {
        let outcome = decide(&consents, &agreements, &request);
        let expected = reference(&consents, &agreements, &request);
        prop_assert_eq!(&outcome.permitted, &expected);
        let wanted: BTreeSet<DataCategory> = if request.categories.is_empty() { EVERY_CATEGORY.into() } else { request.categories.iter().copied().collect() };
        let refused: BTreeSet<DataCategory> = wanted.difference(&expected.keys().copied().collect()).copied().collect();
        prop_assert_eq!(&outcome.refused, &refused);
    }
}

// Who may register an agreement, against the rule read off the issue: a
// caller matched by any recipient, by code or by kind, never may; otherwise
// governance of a disclosing party or national governance may.

fn caller() -> impl Strategy<Value = (&'static str, OrganisationKind, bool)> {
    let organisation = prop_oneof![
        4 => organisation(),
        1 => Just(("NHSE", OrganisationKind::National)),
        1 => Just(("QK1", OrganisationKind::Commissioner)),
    ];
    (organisation, any::<bool>()).prop_map(|((code, kind), governance)| (code, kind, governance))
}

fn parties() -> impl Strategy<Value = Vec<String>> {
    proptest::collection::vec(
        prop_oneof![Just("LEI"), Just("TP-LEI"), Just("NHSE"), Just("EMR-LEI")],
        0..3,
    )
    .prop_map(|codes| codes.into_iter().map(str::to_owned).collect())
}

fn recipients() -> impl Strategy<Value = Vec<Recipient>> {
    let recipient = prop_oneof![
        caller().prop_map(|(code, _, _)| Recipient::Organisation(code.to_owned())),
        caller().prop_map(|(_, kind, _)| Recipient::Kind(kind)),
    ];
    proptest::collection::vec(recipient, 0..3)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 20_000, ..ProptestConfig::default() })]

    #[test]
    fn no_recipient_ever_registers_an_agreement((code, kind, governance) in caller(), parties in parties(), recipients in recipients()) {
        use throughcare_sharing::domain::governance::{Grantor, may_register};
        let grantor = Grantor { code, kind, governance };
        let allowed = may_register(&grantor, &parties, &recipients).is_ok();
        let named = recipients.iter().any(|r| *r == Recipient::Organisation(code.to_owned()) || *r == Recipient::Kind(kind));
        let speaks_for_discloser = kind == OrganisationKind::National || parties.iter().any(|p| p == code);
        prop_assert!(!(allowed && named), "a recipient registered an agreement");
        prop_assert_eq!(allowed, governance && speaks_for_discloser && !named);
    }
}
