//! Publication: when a month closes (its end plus the grace days), its cells —
//! and its quarter's, when it ends a quarter — go through disclosure control
//! once, are stored and frozen, and go out on the snapshots topic. A period
//! is never published again, so successive snapshots cannot be differenced.

use super::App;
use super::snapshot::published_of;
use crate::domain::area::{Area, AreaKind};
use crate::domain::core::{CellFigures, CellName};
use crate::domain::disclosure::{self, Frozen};
use crate::domain::period::Period;
use crate::store::{self, CellRow, SnapshotRow};
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use throughcare_platform::error::Result;
use throughcare_platform::identifiers::new_id;
use throughcare_platform::service::RunError;
use tokio_util::sync::CancellationToken;

/// What one publication covers.
#[derive(Debug)]
struct Plan {
    /// The last month published.
    through: u32,
    /// The months, then the quarters, published now.
    periods: Vec<Period>,
    /// Months published before, whose quarter is published now.
    frozen_months: Vec<Period>,
}

/// The last month (index) that has closed by `now`.
fn closed_through(now: DateTime<Utc>, grace_days: u32) -> Option<u32> {
    let day = (now - chrono::Duration::days(i64::from(grace_days))).date_naive();
    match Period::month_of(day) {
        Period::Month(m) => m.checked_sub(1),
        Period::Quarter(_) => None,
    }
}

/// Of the months `first..=through` (closed, not yet published), the last
/// that may be published now: the one before the first still changing (`busy`).
fn settled_through(first: u32, through: u32, busy: impl IntoIterator<Item = u32>) -> Option<u32> {
    let held = busy
        .into_iter()
        .filter(|m| (first..=through).contains(m))
        .min();
    match held {
        Some(month) => month.checked_sub(1),
        None => Some(through),
    }
}

impl App {
    /// Records that these months' figures just changed.
    pub(super) fn changed(&self, months: impl Iterator<Item = u32>) {
        let now = Instant::now();
        let mut changed = self.changed.lock().expect("publication state");
        for month in months {
            changed.insert(month, now);
        }
    }

    /// The months changed within the settle time.
    fn busy_months(&self) -> Vec<u32> {
        let settle = Duration::from_millis(self.publication.settle_ms);
        let mut changed = self.changed.lock().expect("publication state");
        changed.retain(|_, at| at.elapsed() < settle);
        changed.keys().copied().collect()
    }

    /// Publishes every period that has closed since the last publication;
    /// the new snapshot's sequence, if there was anything to publish.
    pub async fn publish_due(&self) -> Result<Option<i64>> {
        let now = self.now();
        let latest = store::latest_snapshot(self.db()).await?;
        let Some(plan) = self.plan(now, latest.as_ref()) else {
            return Ok(None);
        };
        let sequence = latest.as_ref().map_or(1, |s| s.sequence + 1);
        let Some(rows) = self.protect(&plan, sequence).await? else {
            return Ok(None);
        };
        let snapshot = SnapshotRow {
            sequence,
            snapshot_id: new_id(),
            published_at: now,
            through_month: plan.through as i32,
            periods: plan
                .periods
                .iter()
                .map(|p| p.id().to_string())
                .collect::<Vec<_>>()
                .join(","),
        };
        if !self.store(&snapshot, &rows).await? {
            return Ok(None); // another instance published it
        }
        self.published.send_replace(sequence);
        tracing::info!(
            sequence,
            cells = rows.len(),
            periods = %plan.periods.iter().map(ToString::to_string).collect::<Vec<_>>().join(" "),
            "indicators published"
        );
        Ok(Some(sequence))
    }

    /// What to publish now, after `latest`: nothing until a month has closed
    /// and settled.
    fn plan(&self, now: DateTime<Utc>, latest: Option<&SnapshotRow>) -> Option<Plan> {
        let closed = closed_through(now, self.publication.grace_days)?;
        let first = match latest {
            Some(s) => s.through_month as u32 + 1,
            None => match self.core().earliest_month() {
                Some(Period::Month(m)) => m,
                _ => return None,
            },
        };
        let Some(through) = settled_through(first, closed, self.busy_months()) else {
            tracing::info!("a closed month is still changing: publication held until it settles");
            return None;
        };
        if first > through {
            return None;
        }
        let quarters: Vec<Period> = (first..=through)
            .filter(|m| m % 3 == 2)
            .map(Period::quarter_of_month)
            .collect();
        // Earlier months of a quarter now closing were published before: the
        // quarter must be protected together with what they showed.
        let frozen_months = quarters
            .iter()
            .flat_map(|q| q.months())
            .filter(|&m| m < first)
            .map(Period::Month)
            .collect();
        let periods = (first..=through)
            .map(Period::Month)
            .chain(quarters)
            .collect();
        Some(Plan {
            through,
            periods,
            frozen_months,
        })
    }

    /// The plan's cells through disclosure control, consistent with what the
    /// frozen months showed, as snapshot `sequence` stores them: area by
    /// area, each in period, indicator, stratum order. `None` when
    /// disclosure control holds the publication: it fails closed, with an
    /// alert, and is tried again at the next check.
    async fn protect(&self, plan: &Plan, sequence: i64) -> Result<Option<Vec<CellRow>>> {
        let frozen_ids: Vec<i32> = plan.frozen_months.iter().map(|p| p.id() as i32).collect();
        let frozen_rows = if frozen_ids.is_empty() {
            Vec::new()
        } else {
            store::cells_of_periods(self.db(), &frozen_ids).await?
        };
        let (cells, truths, areas) = {
            let core = self.core();
            (
                core.cells(&plan.periods),
                core.cells(&plan.frozen_months),
                core.areas().clone(),
            )
        };
        let frozen = self.frozen(&frozen_rows, truths);
        let catalogue = self.catalogue;
        let region_of = move |area: &Area| {
            let id = areas.id(area)?;
            areas.region_of(id).map(|r| areas.get(r).code.clone())
        };
        let parent_of = region_of.clone();
        let published = tokio::task::spawn_blocking(move || {
            disclosure::protect(catalogue, cells, frozen, region_of)
        })
        .await
        .expect("disclosure control");
        let published = match published {
            Ok(published) => published,
            Err(held) => {
                let mut alerted = self.held.lock().expect("publication state");
                if *alerted != Some(sequence) {
                    *alerted = Some(sequence);
                    tracing::error!(
                        alert = "indicators_publication_held",
                        sequence,
                        reason = %held,
                        "indicator publication held by disclosure control; nothing published"
                    );
                }
                return Ok(None);
            }
        };
        let mut published: Vec<_> = published
            .into_iter()
            .map(|(name, p)| {
                let parent = (name.area.kind == AreaKind::ProbationDeliveryUnit)
                    .then(|| parent_of(&name.area).map(String::from))
                    .flatten();
                let row = self.cell_row(sequence, &name, &p, parent);
                (name, row)
            })
            .collect();
        published.sort_by(|(a, _), (b, _)| {
            (&a.area, a.period, a.indicator, a.stratum).cmp(&(
                &b.area,
                b.period,
                b.indicator,
                b.stratum,
            ))
        });
        Ok(Some(published.into_iter().map(|(_, row)| row).collect()))
    }

    /// The published cells of the frozen months, with their true figures now.
    fn frozen(&self, rows: &[CellRow], truths: Vec<(CellName, CellFigures)>) -> Vec<Frozen> {
        let mut truths: HashMap<CellName, _> = truths.into_iter().collect();
        rows.iter()
            .filter_map(|row| {
                let name = self.name_of(row)?;
                Some(Frozen {
                    truth: truths.remove(&name),
                    name,
                    published: published_of(row),
                })
            })
            .collect()
    }

    /// Stores the snapshot and its cells and publishes its events, in one
    /// unit of work; false if another instance published it first.
    async fn store(&self, snapshot: &SnapshotRow, rows: &[CellRow]) -> Result<bool> {
        let mut work = self.transactions.begin().await?;
        match store::insert_snapshot(work.tx(), snapshot).await {
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => return Ok(false),
            other => other?,
        }
        store::insert_cells(work.tx(), rows).await?;
        for event in self.snapshot_events(snapshot, rows) {
            work.publish(event);
        }
        work.commit().await?;
        Ok(true)
    }

    /// Publishes as periods close, until shutdown.
    pub async fn run_publisher(
        self: Arc<Self>,
        shutdown: CancellationToken,
    ) -> std::result::Result<(), RunError> {
        let interval = Duration::from_millis(self.publication.check_interval_ms.max(10));
        loop {
            if let Err(error) = self.publish_due().await {
                tracing::warn!(%error, "publishing indicators failed; will retry");
            }
            tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                _ = tokio::time::sleep(interval) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn a_month_closes_after_its_grace_days() {
        let at = |m, d| Utc.with_ymd_and_hms(2026, m, d, 0, 0, 0).unwrap();
        let february = Period::month(2026, 2);
        let march = Period::month(2026, 3);
        assert_eq!(
            closed_through(at(4, 14), 14).map(Period::Month),
            Some(february)
        );
        assert_eq!(
            closed_through(at(4, 15), 14).map(Period::Month),
            Some(march)
        );
        assert_eq!(closed_through(at(4, 1), 0).map(Period::Month), Some(march));
    }

    #[test]
    fn a_month_still_changing_holds_itself_and_every_later_month() {
        // January (0) to April (3) closed; February (1) still changing.
        assert_eq!(settled_through(0, 3, [1, 5]), Some(0));
        assert_eq!(settled_through(0, 3, [0]), None);
        assert_eq!(settled_through(0, 3, []), Some(3));
        // Changes to months already published (before `first`) or not yet
        // closed hold nothing.
        assert_eq!(settled_through(2, 3, [0, 1, 4]), Some(3));
    }
}
