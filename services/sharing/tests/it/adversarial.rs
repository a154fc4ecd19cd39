//! Attacks that must not succeed: an insider who can write the sharing
//! database, and a curious organisation with valid credentials.

use crate::fixtures::*;
use crate::harness::Rig;
use throughcare_platform::on_db;
use throughcare_proto::sharing::v1::{self as pb, LawfulBasisType as B, Purpose};
use throughcare_proto::types::v1::DataCategory as C;
use throughcare_sharing::domain::audit::{Entry, GENESIS};
use throughcare_sharing::store::audit::AuditRow;
use tonic::Code;

/// `n` decided requests, then waits until a checkpoint signs the head.
async fn decide_and_checkpoint(rig: &Rig, from: u32, n: u32) -> i64 {
    for i in from..from + n {
        rig.disclosures("EMR-LEI")
            .request_disclosure(ask(i, Purpose::DirectCare, &[], ""))
            .await
            .unwrap();
    }
    let head = rig.count("SELECT last_seq FROM audit_head").await;
    rig.wait_count(
        "a checkpoint of the head",
        "SELECT coalesce(max(seq), 0) FROM audit_checkpoints",
        head,
    )
    .await;
    head
}

async fn verify(rig: &Rig) -> pb::VerifyAuditChainResponse {
    rig.audit("NHSE-HJ")
        .verify_audit_chain(pb::VerifyAuditChainRequest {})
        .await
        .unwrap()
        .into_inner()
}

async fn rows(rig: &Rig) -> Vec<AuditRow> {
    on_db!(&rig.db, p => sqlx::query_as(
        "SELECT seq, at, actor_organisation, actor_kind, actor_role, person_key, purpose, decision, bases,
                categories, justification, flagged, previous_hash, hash, action, refused_categories,
                disclosure_id, delivery_id, trigger_kind, trigger_id
         FROM audit_log ORDER BY seq")
        .fetch_all(p).await.unwrap())
}

async fn execute(rig: &Rig, sql: &'static str) {
    on_db!(&rig.db, p => sqlx::query(sql).execute(p).await.unwrap().rows_affected());
}

/// The insider cuts the last entries and moves the head back: every link
/// still holds, but a signed checkpoint names a later entry.
pub async fn an_insider_cutting_the_tail_is_found(rig: Rig) {
    let head = decide_and_checkpoint(&rig, 200, 6).await;
    assert!(verify(&rig).await.intact);
    let kept = rows(&rig).await[3].clone();
    execute(&rig, "DELETE FROM audit_log WHERE seq > 4").await;
    on_db!(&rig.db, p => sqlx::query("UPDATE audit_head SET last_seq = 4, last_hash = $1")
        .bind(&kept.hash).execute(p).await.unwrap().rows_affected());
    // And the checkpoints table too: the service still holds the latest.
    execute(&rig, "DELETE FROM audit_checkpoints").await;
    let verified = verify(&rig).await;
    assert!(!verified.intact, "{verified:?}");
    assert_eq!(verified.first_broken_sequence, 5, "{verified:?}");
    assert!(head > 4);
}

/// The insider alters an entry and recomputes every hash after it and the
/// head: the chain is self-consistent, but not what was signed.
pub async fn an_insider_recomputing_the_chain_is_found_at_the_entry_changed(rig: Rig) {
    let before = decide_and_checkpoint(&rig, 210, 3).await;
    decide_and_checkpoint(&rig, 213, 3).await;
    let rows = rows(&rig).await;
    let altered = before as usize + 1;
    let mut previous = rows[altered - 2].hash.clone();
    for row in &rows[altered - 1..] {
        let mut entry: Entry = row.entry().unwrap();
        if entry.seq == altered as i64 {
            entry.actor_organisation = "SOMEONE-ELSE".into();
        }
        let hash = entry.hash(&previous).to_vec();
        on_db!(&rig.db, p => sqlx::query(
            "UPDATE audit_log SET actor_organisation = $1, previous_hash = $2, hash = $3 WHERE seq = $4")
            .bind(&entry.actor_organisation).bind(&previous).bind(&hash).bind(entry.seq)
            .execute(p).await.unwrap().rows_affected());
        previous = hash;
    }
    on_db!(&rig.db, p => sqlx::query("UPDATE audit_head SET last_hash = $1")
        .bind(&previous).execute(p).await.unwrap().rows_affected());
    assert_ne!(previous, GENESIS.to_vec());
    let verified = verify(&rig).await;
    assert!(!verified.intact, "{verified:?}");
    assert_eq!(
        verified.first_broken_sequence, altered as i64,
        "{verified:?}"
    );
    let cli = rig.verify_audit_cli();
    assert_eq!(cli.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&cli.stdout).contains(&format!("broken at entry {altered}")),
        "{}",
        String::from_utf8_lossy(&cli.stdout)
    );
}

/// The insider writes a checkpoint of their own: it carries no signature of
/// the service's, and verification says so.
pub async fn an_insider_forging_a_checkpoint_is_found(rig: Rig) {
    decide_and_checkpoint(&rig, 220, 2).await;
    execute(
        &rig,
        "UPDATE audit_checkpoints SET signature = hash WHERE seq = (SELECT max(seq) FROM audit_checkpoints)",
    )
    .await;
    let verified = verify(&rig).await;
    assert!(!verified.intact, "{verified:?}");
    assert!(verified.reason.contains("signature"), "{verified:?}");
}

/// A curious organisation with valid credentials: it cannot grant itself a
/// basis, read or withdraw the consents of someone it has no relationship
/// with, nor tell a refusal from a person never seen.
pub async fn a_curious_organisation_learns_nothing_and_grants_itself_nothing(rig: Rig) {
    let refusal = consent(
        "refusal-230",
        230,
        provision(
            pb::ProvisionType::Deny,
            vec![to_org("RT5")],
            &[Purpose::DirectCare],
            &[C::MentalHealth],
            vec![],
        ),
    );
    let consent_id = rig
        .consents("EMR-LEI")
        .record_consent(refusal)
        .await
        .unwrap()
        .into_inner()
        .consent
        .unwrap()
        .consent_id;
    // Its governance names itself as recipient: refused.
    let granted = rig
        .agreements("C82010")
        .register_agreement(agreement(
            "self",
            B::InformationSharingAgreement,
            vec![to_org("C82010")],
            &[C::MentalHealth],
            &["C82010"],
        ))
        .await
        .unwrap_err();
    assert_eq!(granted.code(), Code::PermissionDenied);
    // It reads and withdraws someone else's consents: they do not exist.
    let read = rig
        .consents("RT5")
        .list_consents(pb::ListConsentsRequest {
            person: Some(ids(230)),
        })
        .await
        .unwrap_err();
    assert_eq!(read.code(), Code::NotFound);
    let withdrawn = rig
        .consents("RT5")
        .withdraw_consent(pb::WithdrawConsentRequest {
            idempotency_key: "curious".into(),
            consent_id,
        })
        .await
        .unwrap_err();
    assert_eq!(withdrawn.code(), Code::NotFound);
    // It asks about the person who refused it and about one never seen:
    // the same bare deny.
    let rig = &rig;
    let ask_about = |n| async move {
        rig.disclosures("RT5")
            .request_disclosure(ask(n, Purpose::DirectCare, &[C::MentalHealth], ""))
            .await
            .unwrap()
            .into_inner()
    };
    assert_eq!(ask_about(230).await, ask_about(231).await);
}
