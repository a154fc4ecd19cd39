//! One person, whatever identifiers arrive when: people often leave prison
//! with no NHS number known, and probation may record their consent with one
//! before the referrals service has linked it to the prison number. When
//! referrals learns the identifiers are one person it says so, and sharing
//! joins everything it held apart — a refusal keeps counting, and no record is
//! lost.

use crate::fixtures::*;
use crate::harness::{Rig, nhs};
use throughcare_proto::referrals::v1 as referrals;
use throughcare_proto::sharing::v1::{self as pb, Purpose};
use throughcare_proto::types::v1::{self as types, DataCategory as C};

fn nhs_only(n: u32) -> types::PersonIdentifiers {
    types::PersonIdentifiers {
        nhs_number: nhs(n),
        ..Default::default()
    }
}

fn prison_only(n: u32) -> types::PersonIdentifiers {
    types::PersonIdentifiers {
        prison_number: ids(n).prison_number,
        ..Default::default()
    }
}

/// The person refuses sharing with the provider (recorded with their NHS
/// number); an earlier permit for it was recorded with their prison number.
async fn refusal_and_permit_under_different_identifiers(rig: &Rig, n: u32) {
    let to_provider = |kind| {
        provision(
            kind,
            vec![to_org("TP-LEI")],
            &[Purpose::DirectCare],
            &[C::SubstanceMisuse],
            vec![],
        )
    };
    let mut permit = consent(
        &format!("permit-{n}"),
        n,
        to_provider(pb::ProvisionType::Permit),
    );
    permit.person = Some(prison_only(n));
    let mut refusal = consent(
        &format!("refusal-{n}"),
        n,
        to_provider(pb::ProvisionType::Deny),
    );
    refusal.person = Some(nhs_only(n));
    for request in [permit, refusal] {
        rig.consents("EMR-LEI")
            .record_consent(request)
            .await
            .unwrap();
    }
}

/// Released knowing only the prison number; waits for the record.
async fn released_by_prison_number(rig: &Rig, n: u32, key: &str, records: i64) -> String {
    let mut request = release(n);
    request.idempotency_key = key.into();
    request.person.as_mut().unwrap().identifiers = Some(prison_only(n));
    let release_id = rig
        .transitions("LEI")
        .notify_release(request)
        .await
        .unwrap()
        .into_inner()
        .release
        .unwrap()
        .release_id;
    rig.wait_count(
        "the release's record",
        "SELECT count(DISTINCT record_id) FROM health_records",
        records,
    )
    .await;
    release_id
}

/// The consents sharing lists for these identifiers.
async fn consents_of(rig: &Rig, person: types::PersonIdentifiers) -> usize {
    rig.consents("EMR-LEI")
        .list_consents(pb::ListConsentsRequest {
            person: Some(person),
        })
        .await
        .unwrap()
        .into_inner()
        .consents
        .len()
}

pub async fn a_refusal_keeps_counting_when_referrals_links_the_identifiers(rig: Rig) {
    refusal_and_permit_under_different_identifiers(&rig, 40).await;
    released_by_prison_number(&rig, 40, "first-release-40", 1).await;
    assert_eq!(rig.count("SELECT count(*) FROM persons").await, 2);

    // Probation refers them with both identifiers: referrals learns the NHS
    // number belongs to the person it knew by prison number, and says so.
    let mut provider = rig
        .disclosures("TP-LEI")
        .watch_deliveries(pb::WatchDeliveriesRequest::default())
        .await
        .unwrap()
        .into_inner();
    rig.referrals("EMR-LEI")
        .request_referral(referral_to_the_provider("ref-40", 40))
        .await
        .unwrap();
    rig.wait_count(
        "the provider's push to be decided",
        "SELECT count(*) FROM deliveries WHERE state <> 'pending'",
        1,
    )
    .await;
    assert_eq!(
        rig.count("SELECT count(*) FROM deliveries WHERE state = 'refused'")
            .await,
        1,
        "the refusal recorded under the NHS number still wins over the permit"
    );
    assert_eq!(rig.count("SELECT count(*) FROM persons").await, 1);
    assert_eq!(
        rig.count("SELECT count(DISTINCT person_key) FROM consents")
            .await,
        1
    );
    for person in [nhs_only(40), prison_only(40), ids(40)] {
        assert_eq!(
            consents_of(&rig, person).await,
            2,
            "one person, both consents"
        );
    }
    // Nothing was sent, so nothing waits on the stream.
    let nothing = tokio::time::timeout(std::time::Duration::from_millis(200), async {
        tokio_stream::StreamExt::next(&mut provider).await
    })
    .await;
    assert!(nothing.is_err(), "no delivery was made: {nothing:?}");
}

pub async fn a_record_joining_two_known_people_is_stored_not_lost(rig: Rig) {
    refusal_and_permit_under_different_identifiers(&rig, 41).await;
    // The provider asks, naming the NHS number only: refused, and audited
    // under the key sharing knows that number by.
    let mut by_nhs = ask(41, Purpose::DirectCare, &[C::SubstanceMisuse], "");
    by_nhs.person = Some(nhs_only(41));
    let refused = rig
        .disclosures("TP-LEI")
        .request_disclosure(by_nhs)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(refused.decision, pb::Decision::Deny as i32);
    let first = released_by_prison_number(&rig, 41, "first-release-41", 1).await;
    rig.transitions("LEI")
        .reverse_release(referrals::ReverseReleaseRequest {
            idempotency_key: "reverse-41".into(),
            release_id: first,
            reason: referrals::ReversalReason::NotifiedInError as i32,
        })
        .await
        .unwrap();
    // Released again, now with the NHS number too: the sealed record names
    // both identifiers, each of which sharing holds under its own key.
    rig.transitions("LEI")
        .notify_release(release(41))
        .await
        .unwrap();
    rig.wait_count(
        "the second record",
        "SELECT count(DISTINCT record_id) FROM health_records",
        2,
    )
    .await;
    rig.wait_count("the link", "SELECT count(*) FROM person_links", 1)
        .await;
    assert_eq!(rig.count("SELECT count(*) FROM persons").await, 1);
    assert_eq!(
        rig.count("SELECT count(DISTINCT person_key) FROM health_records")
            .await,
        1
    );
    for person in [nhs_only(41), prison_only(41)] {
        assert_eq!(consents_of(&rig, person).await, 2);
    }
    let asked = rig
        .disclosures("TP-LEI")
        .request_disclosure(ask(41, Purpose::DirectCare, &[C::SubstanceMisuse], ""))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        asked.decision,
        pb::Decision::Deny as i32,
        "the refusal counts"
    );
    // Subject access by the prison number lists both refusals, the one
    // audited under the NHS number's key included.
    let subject = rig
        .disclosures("NHSE-HJ")
        .list_disclosures(pb::ListDisclosuresRequest {
            person: Some(prison_only(41)),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(subject.refusals.len(), 2, "{:?}", subject.refusals);
    assert!(subject.refusals.iter().all(|r| r.recipient == "TP-LEI"));
}

// ------------------------------------------------------------- property

/// What happens to one of three real people, each with an NHS number, a
/// prison number and a CRN; `mask` picks which identifiers a step names (bit
/// 0 NHS, 1 prison, 2 CRN).
#[derive(Debug, Clone)]
enum Step {
    /// A consent recorded naming these identifiers.
    Consent(usize, u8),
    /// A health record naming these identifiers, keyed as referrals keyed a
    /// first sighting by the `key` subset of them.
    Record(usize, u8, u8),
    /// Referrals says the keys of these identifiers name the person it
    /// keyed by the first subset.
    Link(usize, u8, u8),
}

fn person_ids(person: usize, mask: u8) -> throughcare_platform::identifiers::PersonIds {
    use throughcare_platform::identifiers::{Crn, NhsNumber, PersonIds, PrisonNumber};
    let n = 300 + person as u32;
    PersonIds::new(
        (mask & 1 != 0).then(|| NhsNumber::parse(&nhs(n)).unwrap()),
        (mask & 2 != 0).then(|| PrisonNumber::parse(&format!("B{n:04}CD")).unwrap()),
        (mask & 4 != 0).then(|| Crn::parse(&format!("X{n:06}")).unwrap()),
    )
    .unwrap()
}

fn step() -> impl proptest::strategy::Strategy<Value = Step> {
    use proptest::prelude::*;
    let person = 0..3usize;
    let mask = 1..8u8;
    prop_oneof![
        (person.clone(), mask.clone()).prop_map(|(p, m)| Step::Consent(p, m)),
        (person.clone(), mask.clone(), mask.clone()).prop_map(|(p, m, k)| Step::Record(p, m, k)),
        (person, mask.clone(), mask).prop_map(|(p, s, m)| Step::Link(p, s, m)),
    ]
}

/// Runs `steps` on a fresh SQLite sharing store, then referrals' final word on
/// each person (the keys of all their identifiers name one of them), and
/// checks there is one person per real person holding all their consents.
async fn one_person_per_real_person(steps: Vec<Step>, last: [u8; 3]) {
    use throughcare_platform::db::Db;
    use throughcare_platform::identifiers::PseudonymKey;
    use throughcare_sharing::store::{self, ConsentRow, Reader, people};
    let path = std::env::temp_dir().join(format!("linking-{}.db", uuid::Uuid::now_v7()));
    let db = Db::connect(
        &format!("sqlite://{}", path.display()),
        1,
        throughcare_sharing::MIGRATIONS,
    )
    .await
    .unwrap();
    let keys = PseudonymKey::from_hex(&"ab".repeat(32)).unwrap();
    let now = crate::harness::start();
    let key = |p: usize, m: u8| keys.person_key(&person_ids(p, m)).as_str().to_owned();
    let mut consents = [0usize; 3];
    let mut seen = [false; 3];
    let finals = last.iter().enumerate().map(|(p, m)| Step::Link(p, *m, 7));
    for (i, step) in steps.iter().cloned().chain(finals).enumerate() {
        let mut tx = db.begin().await.unwrap();
        match step {
            Step::Consent(p, m) => {
                let person_key = people::resolve(&mut tx, &keys, &person_ids(p, m), now)
                    .await
                    .unwrap();
                let row = ConsentRow {
                    consent_id: format!("p{p}-{i}"),
                    person_key,
                    provision: Vec::new(),
                    period_start: Some(now),
                    period_end: None,
                    method: "CONSENT_METHOD_WRITTEN".into(),
                    recorded_by: "EMR-LEI".into(),
                    recorded_at: now,
                    withdrawn_at: None,
                };
                store::insert_consent(&mut tx, &row).await.unwrap();
                consents[p] += 1;
                seen[p] = true;
            }
            Step::Record(p, m, k) => {
                let k = if k & m == 0 { m } else { k & m };
                people::adopt(&mut tx, &key(p, k), &person_ids(p, m), now)
                    .await
                    .unwrap();
                seen[p] = true;
            }
            Step::Link(p, s, m) => {
                let merged: Vec<String> = keys
                    .sighting_keys(&person_ids(p, s | m))
                    .iter()
                    .map(|k| k.as_str().to_owned())
                    .collect();
                people::link(&mut tx, &key(p, s), &merged, now)
                    .await
                    .unwrap();
            }
        }
        tx.commit().await.unwrap();
    }
    let mut people_held = 0;
    for p in (0..3).filter(|p| seen[*p]) {
        people_held += 1;
        let mut tx = db.begin().await.unwrap();
        let mut found = std::collections::BTreeSet::new();
        for m in 1..8u8 {
            let at = people::locate(Reader::Tx(&mut tx), &keys, &person_ids(p, m))
                .await
                .unwrap();
            assert!(at.held, "every identifier names the person");
            found.insert(at.key);
        }
        assert_eq!(found.len(), 1, "person {p} is one key, whatever names them");
        let key = found.pop_first().unwrap();
        let held = store::consents(Reader::Tx(&mut tx), &key).await.unwrap();
        assert_eq!(
            held.len(),
            consents[p],
            "every consent of person {p} applies"
        );
    }
    let rows = throughcare_testkit::count(&db, "SELECT count(*) FROM persons").await;
    assert_eq!(rows, people_held, "one stored person per real person");
    db.close().await;
    let _ = std::fs::remove_file(&path);
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 48, ..Default::default() })]

    /// Random interleavings of consents, records and links naming
    /// overlapping subsets of three people's identifiers always end with one
    /// person per real person and every consent applied (no step fails, so
    /// nothing would be dead-lettered).
    #[test]
    fn identifiers_in_any_order_end_as_one_person(
        steps in proptest::collection::vec(step(), 1..24),
        last in [1..8u8, 1..8u8, 1..8u8],
    ) {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(one_person_per_real_person(steps, last));
    }
}
