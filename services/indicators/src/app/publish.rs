//! Publication: when a month closes (its end plus the grace days), its cells —
//! and its quarter's, when it ends a quarter — go through disclosure control,
//! are stored and go out on the snapshots topic. When a published month's
//! figures change later (late records) and settle, it is published again as
//! a revision, with its quarter if that was published: the whole period,
//! numbered, protected against differencing with every earlier release (see
//! [`crate::domain::disclosure`]). Published months that are not revised are
//! frozen: a quarter is protected consistently with what they showed.

use super::App;
use super::snapshot::published_of;
use crate::domain::area::{Area, AreaKind};
use crate::domain::core::{CellFigures, CellName};
use crate::domain::disclosure::{self, Before, Frozen};
use crate::domain::period::Period;
use crate::store::{self, AuditRow, CellRow, SnapshotRow};
use chrono::{DateTime, Utc};
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};
use throughcare_platform::error::Result;
use throughcare_platform::identifiers::new_id;
use throughcare_platform::service::RunError;
use tokio_util::sync::CancellationToken;

/// What one publication covers.
#[derive(Debug, Default)]
struct Plan {
    /// The last month published, for the first time, by now.
    through: u32,
    /// The months, then the quarters, published now.
    periods: Vec<Period>,
    /// Of those, the ones published before: revised now.
    revised: Vec<Period>,
    /// Months published before and not revised now, whose quarter is
    /// published now.
    frozen_months: Vec<Period>,
}

impl Plan {
    /// What publishing `fresh` (closed months not yet published, through
    /// `through`) and the changed months `changed` (up to the last month
    /// published) covers, given the periods published before.
    fn new(fresh: &[u32], changed: &[u32], published: &BTreeSet<Period>, through: u32) -> Self {
        let was_published = |p: Period| published.contains(&p);
        let months: BTreeSet<u32> = fresh.iter().chain(changed).copied().collect();
        // A quarter is published once its last month is; revised with any
        // of its months once it was.
        let quarters: BTreeSet<Period> = months
            .iter()
            .map(|&m| (m, Period::quarter_of_month(m)))
            .filter(|&(m, q)| m % 3 == 2 || was_published(q))
            .map(|(_, q)| q)
            .collect();
        let periods: Vec<Period> = months
            .iter()
            .map(|&m| Period::Month(m))
            .chain(quarters.iter().copied())
            .collect();
        let revised = periods
            .iter()
            .copied()
            .filter(|&p| was_published(p))
            .collect();
        let frozen_months = quarters
            .iter()
            .flat_map(|q| q.months())
            .filter(|m| !months.contains(m))
            .map(Period::Month)
            .filter(|&m| was_published(m))
            .collect();
        Self {
            through,
            periods,
            revised,
            frozen_months,
        }
    }
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
        let mut dirty = self.dirty.lock().expect("publication state");
        for month in months {
            changed.insert(month, now);
            dirty.insert(month, now);
        }
    }

    /// The months changed within the settle time.
    fn busy_months(&self) -> Vec<u32> {
        let settle = Duration::from_millis(self.publication.settle_ms);
        let mut changed = self.changed.lock().expect("publication state");
        changed.retain(|_, at| at.elapsed() < settle);
        changed.keys().copied().collect()
    }

    /// Publishes every period that has closed since the last publication,
    /// and revises every published one that has changed since and settled;
    /// the new snapshot's sequence, if there was anything to publish.
    pub async fn publish_due(&self) -> Result<Option<i64>> {
        let now = self.now();
        let snapshots = store::snapshots(self.db()).await?;
        let latest = snapshots.last();
        let published = latest.map(|s| s.through_month as u32);
        let fresh = self.fresh(now, latest);
        let published_periods: BTreeSet<Period> = snapshots
            .iter()
            .flat_map(|s| s.period_ids())
            .map(Period::from_id)
            .collect();
        let (revised, compared_at) = self.revisions_due(published, &published_periods).await?;
        if fresh.is_empty() && revised.is_empty() {
            return Ok(None);
        }
        let through = fresh.last().copied().or(published).unwrap_or(0);
        let plan = Plan::new(&fresh, &revised, &published_periods, through);
        let sequence = latest.map_or(1, |s| s.sequence + 1);
        let Some(rows) = self.protect(&plan, sequence, &snapshots).await? else {
            return Ok(None);
        };
        let ids = |periods: &[Period]| {
            periods
                .iter()
                .map(|p| p.id().to_string())
                .collect::<Vec<_>>()
                .join(",")
        };
        let snapshot = SnapshotRow {
            sequence,
            snapshot_id: new_id(),
            published_at: now,
            through_month: plan.through as i32,
            periods: ids(&plan.periods),
            revised: ids(&plan.revised),
        };
        if !self.store(&snapshot, &plan, &rows).await? {
            return Ok(None); // another instance published it
        }
        self.compared(&revised, compared_at);
        self.published.send_replace(sequence);
        let names = |periods: &[Period]| {
            periods
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(" ")
        };
        tracing::info!(
            sequence,
            cells = rows.len(),
            periods = %names(&plan.periods),
            revised = %names(&plan.revised),
            "indicators published"
        );
        Ok(Some(sequence))
    }

    /// The closed, settled months not yet published, after `latest`.
    fn fresh(&self, now: DateTime<Utc>, latest: Option<&SnapshotRow>) -> Vec<u32> {
        let Some(closed) = closed_through(now, self.publication.grace_days) else {
            return Vec::new();
        };
        let first = match latest {
            Some(s) => s.through_month as u32 + 1,
            None => match self.core().earliest_month() {
                Some(Period::Month(m)) => m,
                _ => return Vec::new(),
            },
        };
        let Some(through) = settled_through(first, closed, self.busy_months()) else {
            tracing::info!("a closed month is still changing: publication held until it settles");
            return Vec::new();
        };
        (first..=through).collect()
    }

    /// The months up to the last published (`published`) that changed since
    /// their last release and have settled, and when they were compared. A
    /// month whose figures (and its published quarter's) are what was
    /// released needs no revision; one that was never published but has
    /// figures now (records older than anything published) is published.
    async fn revisions_due(
        &self,
        published: Option<u32>,
        published_periods: &BTreeSet<Period>,
    ) -> Result<(Vec<u32>, Instant)> {
        let compared_at = Instant::now();
        let Some(published) = published else {
            return Ok((Vec::new(), compared_at));
        };
        let busy = self.busy_months();
        let candidates: Vec<u32> = {
            let dirty = self.dirty.lock().expect("publication state");
            dirty
                .keys()
                .copied()
                .filter(|&m| m <= published && !busy.contains(&m))
                .collect()
        };
        let mut due = Vec::new();
        for month in candidates {
            let quarter = Period::quarter_of_month(month);
            let mut periods = vec![Period::Month(month)];
            if published_periods.contains(&quarter) {
                periods.push(quarter);
            }
            let ids: Vec<i32> = periods.iter().map(|p| p.id() as i32).collect();
            let audits = store::audits_of_periods(self.db(), &ids).await?;
            let released: HashMap<CellName, [u32; 2]> = audits
                .iter()
                .filter_map(|a| Some((self.audit_name(a)?, before_of(a).truth)))
                .collect();
            let now: HashMap<CellName, [u32; 2]> = self
                .core()
                .cells(&periods)
                .into_iter()
                .map(|(name, f)| (name, [f.tally.den, f.tally.num]))
                .collect();
            if now == released {
                self.compared(&[month], compared_at);
            } else {
                due.push(month);
            }
        }
        Ok((due, compared_at))
    }

    /// These months were compared with their release (and revised if they
    /// differed) at `at`: they are clean unless they changed since.
    fn compared(&self, months: &[u32], at: Instant) {
        let mut dirty = self.dirty.lock().expect("publication state");
        for month in months {
            if dirty.get(month).is_some_and(|&changed| changed <= at) {
                dirty.remove(month);
            }
        }
    }

    /// The cell an audit row is for.
    fn audit_name(&self, row: &AuditRow) -> Option<CellName> {
        Some(CellName {
            indicator: self.catalogue.index(&row.indicator_id)? as u8,
            period: Period::from_id(row.period as u32),
            area: Area {
                kind: AreaKind::from_number(row.area_type)?,
                code: row.area_code.as_str().into(),
            },
            stratum: u8::try_from(row.stratum).ok()?,
        })
    }

    /// The plan's cells through disclosure control, consistent with what the
    /// frozen months showed and (for revised periods) with every earlier
    /// release, as snapshot `sequence` stores them: area by area, each in
    /// period, indicator, stratum order, with their audits. `None` when
    /// disclosure control holds the publication: it fails closed, with an
    /// alert, and is tried again at the next check.
    async fn protect(
        &self,
        plan: &Plan,
        sequence: i64,
        snapshots: &[SnapshotRow],
    ) -> Result<Option<Vec<(CellRow, AuditRow)>>> {
        let frozen_ids: Vec<i32> = plan.frozen_months.iter().map(|p| p.id() as i32).collect();
        let frozen_rows = if frozen_ids.is_empty() {
            Vec::new()
        } else {
            store::cells_of_periods(self.db(), &frozen_ids).await?
        };
        let revised_ids: Vec<i32> = plan.revised.iter().map(|p| p.id() as i32).collect();
        let mut before: HashMap<CellName, Before> =
            store::audits_of_periods(self.db(), &revised_ids)
                .await?
                .iter()
                .filter_map(|a| Some((self.audit_name(a)?, before_of(a))))
                .collect();
        let (cells, truths, areas) = {
            let core = self.core();
            (
                core.cells(&plan.periods),
                core.cells(&plan.frozen_months),
                core.areas().clone(),
            )
        };
        let frozen = self.frozen(&frozen_rows, truths);
        // What is new in a revised period was absent, so known to be empty.
        for (name, _) in &cells {
            if plan.revised.contains(&name.period) {
                before.entry(name.clone()).or_insert(Before::ABSENT);
            }
        }
        let catalogue = self.catalogue;
        let region_of = move |area: &Area| {
            let id = areas.id(area)?;
            areas.region_of(id).map(|r| areas.get(r).code.clone())
        };
        let parent_of = region_of.clone();
        let published = tokio::task::spawn_blocking(move || {
            disclosure::publish(catalogue, cells, frozen, &before, region_of)
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
        // A period's revision: how many times it was published before.
        let revision = |period: Period| {
            snapshots
                .iter()
                .filter(|s| s.period_ids().contains(&period.id()))
                .count() as i32
        };
        let mut published: Vec<_> = published
            .into_iter()
            .map(|p| {
                let name = p.name;
                let parent = (name.area.kind == AreaKind::ProbationDeliveryUnit)
                    .then(|| parent_of(&name.area).map(String::from))
                    .flatten();
                let row =
                    self.cell_row(sequence, revision(name.period), &name, &p.published, parent);
                let audit = audit_of(&row, &p.before_next);
                (name, (row, audit))
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

    /// Stores the snapshot and its cells (superseding the cells its revised
    /// periods had) and publishes its events, in one unit of work; false if
    /// another instance published it first.
    async fn store(
        &self,
        snapshot: &SnapshotRow,
        plan: &Plan,
        rows: &[(CellRow, AuditRow)],
    ) -> Result<bool> {
        let mut work = self.transactions.begin().await?;
        match store::insert_snapshot(work.tx(), snapshot).await {
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => return Ok(false),
            other => other?,
        }
        let revised: Vec<i32> = plan.revised.iter().map(|p| p.id() as i32).collect();
        store::supersede(work.tx(), &revised, snapshot.sequence).await?;
        store::insert_cells(work.tx(), rows).await?;
        let cells: Vec<CellRow> = rows.iter().map(|(row, _)| row.clone()).collect();
        for event in self.snapshot_events(snapshot, &cells) {
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
            self.advance_horizon();
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

/// What a cell's audit row says the next revision must know.
fn before_of(row: &AuditRow) -> Before {
    let count = |n: i64| u32::try_from(n).unwrap_or(0);
    Before {
        truth: [count(row.true_denominator), count(row.true_numerator)],
        known: [
            (row.known_den_lo, row.known_den_hi),
            (row.known_num_lo, row.known_num_hi),
        ],
    }
}

/// The audit row of a cell published as `row`.
fn audit_of(row: &CellRow, before: &Before) -> AuditRow {
    AuditRow {
        indicator_id: row.indicator_id.clone(),
        area_type: row.area_type,
        area_code: row.area_code.clone(),
        period: row.period,
        stratum: row.stratum,
        true_denominator: i64::from(before.truth[0]),
        true_numerator: i64::from(before.truth[1]),
        known_den_lo: before.known[0].0,
        known_den_hi: before.known[0].1,
        known_num_lo: before.known[1].0,
        known_num_hi: before.known[1].1,
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
