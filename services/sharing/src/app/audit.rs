//! The audit log: every decision appended last in its unit of work, and the
//! auditors' RPCs that verify and page through it.

use super::App;
use crate::domain::audit::Entry;
use crate::store;
use throughcare_platform::error::Result;
use throughcare_platform::identity::{Caller, OrganisationKind};
use throughcare_platform::validation::FieldViolation;
use throughcare_platform::work::Work;
use throughcare_proto::sharing::v1 as pb;

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
    pub async fn verify_audit(&self) -> Result<pb::VerifyAuditChainResponse> {
        Ok(match store::audit::verify(self.db()).await? {
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
