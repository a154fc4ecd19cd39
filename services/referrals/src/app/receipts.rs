//! What became of the health information a release or referral caused to be
//! pushed, as the sharing service reports it (`DeliveryReceiptChanged`):
//! kept per push, shown on the release and the referral (and announced on
//! their parties' feeds), and — when a push is not read in time — raised as
//! a continuity alert: a push at release to the prison that sent it and the
//! unit that should have read it; a referral's to its referrer, on the
//! release it serves.

use super::App;
use crate::domain::release::{Release, ReleaseState};
use crate::domain::task::{Task, TaskKind, TaskState};
use crate::error::Result;
use crate::events;
use crate::store::receipts::{self, Trigger};
use crate::store::write;
use chrono::{DateTime, Utc};
use prost_types::Timestamp;
use throughcare_platform::identifiers::new_id;
use throughcare_platform::work::Work;
use throughcare_proto::types::v1::{DeliveryReceipt, DeliveryStatus, PersonIdentifiers};

/// The rule id of the alert raised when a push at release is overdue.
pub const OVERDUE_RULE: &str = "health-information-overdue";

/// How long the organisations alerted have to acknowledge the alert.
const ALERT_WITHIN: chrono::TimeDelta = chrono::TimeDelta::days(1);

/// Where a push stands, from the times its receipt holds.
fn status(r: &DeliveryReceipt) -> DeliveryStatus {
    if r.processed_at.is_some() {
        DeliveryStatus::Processed
    } else if r.delivered_at.is_some() {
        DeliveryStatus::Delivered
    } else if r.withheld_at.is_some() {
        DeliveryStatus::Withheld
    } else if r.overdue_at.is_some() {
        DeliveryStatus::Overdue
    } else {
        DeliveryStatus::Pending
    }
}

/// The receipt `held` becomes with `incoming`, whichever was sent first:
/// each time is kept as first known, and the status is the furthest those
/// times show. Receipts that arrive out of order, or twice, come to the same.
pub(crate) fn merge(held: Option<DeliveryReceipt>, incoming: DeliveryReceipt) -> DeliveryReceipt {
    let Some(held) = held else {
        let status = status(&incoming);
        return DeliveryReceipt {
            status: status as i32,
            ..incoming
        };
    };
    let first = |a: &Option<Timestamp>, b: &Option<Timestamp>| a.or(*b);
    let mut merged = DeliveryReceipt {
        delivery_id: held.delivery_id.clone(),
        recipient: held.recipient.clone(),
        status: 0,
        owed_at: first(&held.owed_at, &incoming.owed_at),
        due_by: first(&held.due_by, &incoming.due_by),
        delivered_at: first(&held.delivered_at, &incoming.delivered_at),
        processed_at: first(&held.processed_at, &incoming.processed_at),
        overdue_at: first(&held.overdue_at, &incoming.overdue_at),
        withheld_at: first(&held.withheld_at, &incoming.withheld_at),
    };
    merged.status = status(&merged) as i32;
    merged
}

impl App {
    /// Keeps a push's new receipt, shows its release or referral again to
    /// their parties, and raises the continuity alerts when the push is first
    /// found overdue (not once it is read or withheld: receipts may come late).
    pub(crate) async fn receipt_changed(
        &self,
        work: &mut Work,
        trigger: Trigger<'_>,
        incoming: DeliveryReceipt,
    ) -> Result<()> {
        let held = receipts::lock(work.tx(), trigger, &incoming.delivery_id).await?;
        let was_overdue = held.as_ref().is_some_and(|h| h.overdue_at.is_some());
        let merged = merge(held, incoming);
        receipts::put(work.tx(), trigger, &merged).await?;
        let first_overdue = status(&merged) == DeliveryStatus::Overdue && !was_overdue;
        match trigger {
            ("release", release_id) => {
                let late = first_overdue.then_some(merged.recipient.as_str());
                self.release_receipt_changed(work, release_id, late).await
            }
            ("referral", referral_id) => {
                self.referral_receipt_changed(work, referral_id, first_overdue)
                    .await
            }
            _ => Ok(()),
        }
    }

    /// The release, with its receipts now, on its parties' feeds; and, when
    /// its push to `late` is first found overdue and the release stands, an
    /// alert to the prison that notified it and to that unit.
    async fn release_receipt_changed(
        &self,
        work: &mut Work,
        release_id: &str,
        late: Option<&str>,
    ) -> Result<()> {
        let Some(release) = write::lock_release(work.tx(), release_id).await? else {
            return Ok(()); // its release is not here
        };
        let ids = self
            .store_person(work, &release.person_key)
            .await?
            .ids()?
            .to_proto();
        if let Some(recipient) = late.filter(|_| release.state != ReleaseState::Reversed) {
            let mut responsible = vec![release.notified_by.clone()];
            if recipient != release.notified_by {
                responsible.push(recipient.to_owned());
            }
            self.open_alerts(work, &release, responsible, None, &ids)
                .await?;
        }
        let proto = self.release_proto(work, &release, ids).await?;
        self.release_changed(work, &release, &proto);
        Ok(())
    }
    /// The referral, with its receipts now, on both parties' worklists; and,
    /// when its push is first found overdue while it is active and serves a
    /// release that stands, an alert on that release to the referrer
    /// (continuity tasks are the referrers'; the provider sees it late on its
    /// worklist, as does a referral outside any release).
    async fn referral_receipt_changed(
        &self,
        work: &mut Work,
        referral_id: &str,
        first_overdue: bool,
    ) -> Result<()> {
        // The release first, then the referral: the order a reversal locks them.
        let release_id = match first_overdue {
            true => write::release_of_referral(work.tx(), referral_id).await?,
            false => None,
        };
        let release = match release_id {
            Some(release_id) => write::lock_release(work.tx(), &release_id).await?,
            None => None,
        };
        let Some(referral) = write::lock_referral(work.tx(), referral_id).await? else {
            return Ok(()); // its referral is not here
        };
        let ids = self
            .store_person(work, &referral.person_key)
            .await?
            .ids()?
            .to_proto();
        let standing = release.filter(|r| r.state != ReleaseState::Reversed);
        if let Some(release) = standing.filter(|_| referral.state.is_active()) {
            let responsible = vec![referral.referrer.clone()];
            self.open_alerts(work, &release, responsible, Some(referral_id), &ids)
                .await?;
        }
        self.referral_changed(work, &referral, &ids).await?;
        Ok(())
    }

    /// Overdue alerts on `release` for each of `responsible`, naming the
    /// referral whose push is late, if it was a referral's.
    async fn open_alerts(
        &self,
        work: &mut Work,
        release: &Release,
        responsible: Vec<String>,
        referral_id: Option<&str>,
        ids: &PersonIdentifiers,
    ) -> Result<()> {
        let now = self.now();
        let alerts: Vec<Task> = responsible
            .into_iter()
            .map(|responsible| Task {
                referral_id: referral_id.map(str::to_owned),
                ..overdue_alert(&release.release_id, &release.person_key, responsible, now)
            })
            .collect();
        write::insert_tasks(work.tx(), &alerts).await?;
        for alert in &alerts {
            self.task_changed(work, alert, ids);
            let opened = events::task_opened(alert);
            work.publish(self.topics.lifecycle(&alert.person_key, &opened));
        }
        Ok(())
    }
}

fn overdue_alert(
    release_id: &str,
    person_key: &str,
    responsible: String,
    now: DateTime<Utc>,
) -> Task {
    Task {
        task_id: new_id(),
        release_id: release_id.to_owned(),
        person_key: person_key.to_owned(),
        rule_id: OVERDUE_RULE.to_owned(),
        kind: TaskKind::Alert,
        service: None,
        closes_on: None,
        responsible,
        state: TaskState::Open,
        opened_at: now,
        due_at: now + ALERT_WITHIN,
        closed_at: None,
        referral_id: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> Option<Timestamp> {
        Some(Timestamp { seconds, nanos: 0 })
    }

    fn receipt(
        delivered: Option<Timestamp>,
        processed: Option<Timestamp>,
        overdue: Option<Timestamp>,
    ) -> DeliveryReceipt {
        DeliveryReceipt {
            delivery_id: "d".into(),
            recipient: "EMR-LEI".into(),
            status: 0,
            owed_at: at(1),
            due_by: at(2),
            delivered_at: delivered,
            processed_at: processed,
            overdue_at: overdue,
            withheld_at: None,
        }
    }

    #[test]
    fn receipts_in_any_order_come_to_the_same() {
        let sent = [
            receipt(None, None, None),
            receipt(None, None, at(3)),
            receipt(at(4), None, at(3)),
            receipt(at(4), at(5), at(3)),
        ];
        let in_order = sent
            .iter()
            .cloned()
            .fold(None, |held, r| Some(merge(held, r)));
        let reversed = sent
            .iter()
            .rev()
            .cloned()
            .fold(None, |held, r| Some(merge(held, r)));
        let processed = in_order.unwrap();
        assert_eq!(processed.status(), DeliveryStatus::Processed);
        assert_eq!(Some(processed.clone()), reversed);
        assert_eq!(
            (processed.overdue_at, processed.delivered_at),
            (at(3), at(4))
        );
        // A late, lesser receipt moves nothing back.
        assert_eq!(merge(Some(processed.clone()), sent[0].clone()), processed);
    }
}
