//! Disclosure decisions per second with the audit append (p50/p99 at 1 and 16
//! callers, over gRPC, PostgreSQL and the broker on this machine), and the
//! time to verify an audit chain of 1,000,000 entries. Prints, never asserts.
//! Run with `tests/bench.sh disclosure`.

use std::time::{Duration, Instant};
use throughcare_platform::bus::{Event, Publisher};
use throughcare_platform::db::Db;
use throughcare_platform::identity::{OrganisationKind, Role};
use throughcare_platform::sealing::Keyring;
use throughcare_proto::events::v1 as events;
use throughcare_proto::sharing::v1::consent_service_client::ConsentServiceClient;
use throughcare_proto::sharing::v1::disclosure_service_client::DisclosureServiceClient;
use throughcare_proto::sharing::v1::{self as pb, Purpose};
use throughcare_proto::types::v1 as types;
use throughcare_sharing::domain::audit::{Entry, GENESIS};
use throughcare_testkit::bench::drive;
use throughcare_testkit::health::four_categories;
use throughcare_testkit::{Organisation, Stack, bearer, count, nhs_number};

const ORGANISATIONS: &[Organisation] = &[(
    "EMR-LEI",
    OrganisationKind::Probation,
    Role::Practitioner,
    &[],
)];

const PEOPLE: u32 = 500;

fn nhs(n: u32) -> String {
    nhs_number(700_000_000 + n * 11)
}

fn ids(n: u32) -> types::PersonIdentifiers {
    types::PersonIdentifiers {
        nhs_number: nhs(n),
        ..Default::default()
    }
}

async fn decisions() {
    let stack = Stack::bench(ORGANISATIONS).await;
    let url = stack.database("sharing").await;
    let mut config = stack.sharing_config(&url);
    config.platform.database.max_connections = 32;
    let channel = stack.start_sharing(config).await.channel;

    // Seed: a sealed health record per person, as the referrals service sends them, and a consent each.
    let bus = &stack.bus;
    let keys =
        throughcare_platform::identifiers::PseudonymKey::from_hex(stack.pseudonym_key.expose())
            .unwrap();
    let keyring = Keyring::new(&stack.transport).unwrap();
    let topic = bus.topic(throughcare_proto::topics::HEALTH_RECORDS);
    let mut records = Vec::new();
    for n in 0..PEOPLE {
        let person_ids = throughcare_platform::identifiers::PersonIds::from_proto(&ids(n)).unwrap();
        let person_key = keys.person_key(&person_ids).as_str().to_owned();
        let record = events::HealthRecord {
            record_id: uuid::Uuid::now_v7().to_string(),
            source: events::HealthRecordSource::Release as i32,
            source_id: format!("release-{n}"),
            person_key: person_key.clone(),
            person: Some(types::PersonDetails {
                identifiers: Some(ids(n)),
                ..Default::default()
            }),
            destination: None,
            health: Some(four_categories()),
            recorded_by: "LEI".into(),
            recorded_at: None,
        };
        let binding =
            throughcare_proto::sealed_health_record_binding(&record.record_id, &person_key);
        let sealed = keyring.seal(&prost::Message::encode_to_vec(&record), &binding);
        let message = events::SealedHealthRecord {
            record_id: record.record_id,
            person_key: person_key.clone(),
            key_id: sealed.key_id,
            nonce: sealed.nonce,
            ciphertext: sealed.ciphertext,
        };
        records.push(Event::new(&topic, person_key, "/bench", &message).to_record());
    }
    bus.publish(&records).await.unwrap();
    let mut consents = ConsentServiceClient::with_interceptor(channel.clone(), bearer("EMR-LEI"));
    let permit = pb::Provision {
        r#type: pb::ProvisionType::Permit as i32,
        recipients: vec![pb::Recipient {
            recipient: Some(pb::recipient::Recipient::OrganisationKind(
                types::OrganisationKind::Probation as i32,
            )),
        }],
        purposes: vec![Purpose::DirectCare as i32],
        categories: vec![
            types::DataCategory::MentalHealth as i32,
            types::DataCategory::SubstanceMisuse as i32,
        ],
        ..Default::default()
    };
    for n in 0..PEOPLE {
        consents
            .record_consent(pb::RecordConsentRequest {
                idempotency_key: format!("c{n}"),
                person: Some(ids(n)),
                provision: Some(permit.clone()),
                period: None,
                method: 2,
            })
            .await
            .unwrap();
    }
    let db = Db::connect(&url, 2, throughcare_sharing::MIGRATIONS)
        .await
        .unwrap();
    let stored = "SELECT count(DISTINCT record_id) FROM health_records";
    while count(&db, stored).await < i64::from(PEOPLE) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let client = DisclosureServiceClient::with_interceptor(channel, bearer("EMR-LEI"));
    println!(
        "disclosure decisions: consent check, minimised answer, audit append, outbox event — one transaction each"
    );
    println!(
        "{:>11} | {:>13} {:>9} {:>9}",
        "concurrency", "decisions/s", "p50", "p99"
    );
    for concurrency in [1usize, 16] {
        let c = client.clone();
        let figures = drive(concurrency, 3_000, move |n| {
            let mut c = c.clone();
            async move {
                let request = pb::RequestDisclosureRequest {
                    person: Some(ids(n % PEOPLE)),
                    purpose: Purpose::DirectCare as i32,
                    categories: vec![],
                    justification: String::new(),
                };
                let answer = c
                    .request_disclosure(request)
                    .await
                    .expect("decision")
                    .into_inner();
                assert_eq!(answer.decision, pb::Decision::Permit as i32);
            }
        })
        .await;
        println!(
            "{concurrency:>11} | {:>13.0} {:>9.2?} {:>9.2?}",
            figures.per_second, figures.p50, figures.p99
        );
    }
    drop(stack);
}

async fn verify_a_million() {
    const ENTRIES: i64 = 1_000_000;
    let url = throughcare_platform::testing::fresh_postgres().await;
    let db = Db::connect(&url, 4, throughcare_sharing::MIGRATIONS)
        .await
        .unwrap();
    let throughcare_platform::db::Db::Postgres(pool) = &db else {
        unreachable!()
    };
    let started = Instant::now();
    let mut previous = GENESIS.to_vec();
    let mut batch = Vec::with_capacity(2_000);
    for seq in 1..=ENTRIES {
        let entry = Entry {
            seq,
            at: chrono::DateTime::from_timestamp(1_800_000_000 + seq, 0).unwrap(),
            actor_organisation: "EMR-LEI".into(),
            actor_kind: types::OrganisationKind::Probation,
            actor_role: "practitioner".into(),
            person_key: format!("{:032x}", seq % 50_000),
            purpose: Purpose::DirectCare,
            decision: if seq % 3 == 0 {
                pb::Decision::Deny
            } else {
                pb::Decision::Permit
            },
            bases: vec![pb::LawfulBasis {
                r#type: pb::LawfulBasisType::Consent as i32,
                basis_id: uuid::Uuid::now_v7().to_string(),
            }],
            categories: vec![
                types::DataCategory::MentalHealth,
                types::DataCategory::SubstanceMisuse,
            ],
            justification: String::new(),
            flagged: false,
            action: pb::AuditedAction::Unspecified,
            refused: Vec::new(),
            disclosure_id: String::new(),
            delivery_id: String::new(),
            trigger_kind: String::new(),
            trigger_id: String::new(),
        };
        let hash = entry.hash(&previous).to_vec();
        batch.push((entry, std::mem::replace(&mut previous, hash.clone()), hash));
        if batch.len() == 2_000 || seq == ENTRIES {
            let mut insert = sqlx::QueryBuilder::<sqlx::Postgres>::new(
                "INSERT INTO audit_log (seq, at, actor_organisation, actor_kind, actor_role, person_key, purpose, decision, bases, categories, justification, flagged, previous_hash, hash) ",
            );
            insert.push_values(batch.drain(..), |mut row, (e, prev, hash)| {
                row.push_bind(e.seq)
                    .push_bind(e.at)
                    .push_bind(e.actor_organisation)
                    .push_bind(e.actor_kind.as_str_name())
                    .push_bind(e.actor_role)
                    .push_bind(e.person_key)
                    .push_bind(e.purpose.as_str_name())
                    .push_bind(e.decision.as_str_name())
                    .push_bind(throughcare_sharing::store::audit::bases_text(&e.bases))
                    .push_bind(throughcare_sharing::store::join_names(
                        e.categories.iter().map(|c| c.as_str_name()),
                    ))
                    .push_bind(e.justification)
                    .push_bind(e.flagged)
                    .push_bind(prev)
                    .push_bind(hash);
            });
            insert.build().execute(pool).await.unwrap();
        }
    }
    sqlx::query("UPDATE audit_head SET last_seq = $1, last_hash = $2 WHERE id = 1")
        .bind(ENTRIES)
        .bind(&previous)
        .execute(pool)
        .await
        .unwrap();
    println!(
        "audit chain of {ENTRIES} entries written in {:.1?}",
        started.elapsed()
    );
    let started = Instant::now();
    // No checkpoints were signed: the links and the head are what is checked.
    let verified = throughcare_sharing::store::audit::verify(&db, &[], None)
        .await
        .unwrap();
    println!(
        "verified in {:.2?}: {verified:?} (target < 5 s)",
        started.elapsed()
    );
}

#[tokio::main]
async fn main() {
    decisions().await;
    verify_a_million().await;
}
