//! The audit log: every decision appended last in its unit of work, and the
//! auditors' RPCs that verify and page through it.

use super::App;
use crate::domain::audit::{Checkpoint, Entry};
use crate::store;
use std::time::Duration;
use throughcare_platform::clock::to_timestamp;
use throughcare_platform::error::Result;
use throughcare_platform::identity::{Caller, OrganisationKind};
use throughcare_platform::validation::FieldViolation;
use throughcare_platform::work::Work;
use throughcare_proto::events::v1 as events;
use throughcare_proto::sharing::v1 as pb;
use tokio_util::sync::CancellationToken;

/// Commits a decision's unit of work with its audit entry appended last: the
/// outbox and the feeds first, then the audit head, so the locks are always
/// taken in that order.
pub(crate) async fn commit_audited(mut work: Work, entry: Entry) -> Result<()> {
    work.flush().await?;
    store::audit::append(work.tx(), entry).await?;
    work.commit().await?;
    Ok(())
}

impl App {
    /// Signs the chain's head every `every` while it grows, until shutdown.
    pub async fn sign_checkpoints(
        &self,
        every: Duration,
        shutdown: CancellationToken,
    ) -> Result<()> {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                _ = tokio::time::sleep(every) => {}
            }
            if let Err(error) = self.checkpoint().await {
                tracing::warn!(%error, "signing an audit checkpoint failed; trying again later");
            }
        }
    }

    /// Signs the chain's head if it has grown since the last checkpoint:
    /// stored, and published on the sharing events topic. Returns it.
    pub async fn checkpoint(&self) -> Result<Option<Checkpoint>> {
        let mut work = self.transactions.begin().await?;
        let (seq, hash) = store::audit::head(work.tx()).await?;
        let stored = store::audit::latest_checkpoint(work.tx()).await?;
        let known = self.checkpoint.lock().expect("checkpoint lock").clone();
        let latest = stored.into_iter().chain(known).max_by_key(|c| c.seq);
        if let Some(latest) = &latest {
            // Never sign a chain that no longer agrees with what was signed
            // (a cut tail, or a rewritten entry): verification reports it.
            let agrees = store::audit::hash_at(work.tx(), latest.seq).await?;
            if seq < latest.seq || agrees.as_deref() != Some(latest.hash.as_slice()) {
                tracing::error!(
                    head = seq,
                    checkpoint = latest.seq,
                    "the audit chain no longer agrees with its latest checkpoint; not signing"
                );
                return Ok(None);
            }
        }
        if seq == 0 || latest.is_some_and(|latest| latest.seq >= seq) {
            return Ok(None);
        }
        let checkpoint = self.audit_key.sign(seq, &hash, self.now());
        store::audit::insert_checkpoint(work.tx(), &checkpoint).await?;
        let event = events::AuditCheckpointed {
            sequence: checkpoint.seq,
            hash: checkpoint.hash.clone(),
            at: Some(to_timestamp(checkpoint.at)),
            signature: checkpoint.signature.clone(),
            public_key: self.audit_key.public_key(),
        };
        work.publish(self.event("audit", &event));
        work.commit().await?;
        *self.checkpoint.lock().expect("checkpoint lock") = Some(checkpoint.clone());
        Ok(Some(checkpoint))
    }

    pub async fn verify_audit(&self) -> Result<pb::VerifyAuditChainResponse> {
        let known = self.checkpoint.lock().expect("checkpoint lock").clone();
        let public_key = self.audit_key.public_key();
        Ok(
            match store::audit::verify(self.db(), &public_key, known).await? {
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
            },
        )
    }

    /// A page of the entries the caller's organisation is the actor of, or of
    /// every entry for national oversight.
    pub async fn list_audit_entries(
        &self,
        caller: &Caller,
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
        let actor = (caller.kind() != OrganisationKind::National).then(|| caller.code());
        let entries = store::audit::entries(self.db(), r.flagged_only, actor, after, limit).await?;
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
