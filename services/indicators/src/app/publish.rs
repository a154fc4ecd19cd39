//! Publication: when a month closes (its end plus the grace days), its cells —
//! and its quarter's, when it ends a quarter — go through disclosure control
//! once, are stored and frozen, and go out on the snapshots topic. A period
//! is never published again, so successive snapshots cannot be differenced.

use super::{App, SOURCE, timestamp};
use crate::domain::area::{Area, AreaKind};
use crate::domain::core::CellName;
use crate::domain::disclosure::{self, Count, Frozen, Published};
use crate::domain::period::Period;
use crate::error::Result;
use crate::store::{self, CellRow, SnapshotRow};
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use throughcare_platform::bus::Event;
use throughcare_platform::service::RunError;
use throughcare_proto::events::v1 as events;
use throughcare_proto::indicators::v1 as pb;
use tokio_util::sync::CancellationToken;

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
        let latest = store::latest_snapshot(&self.db).await?;
        let Some(closed) = closed_through(now, self.publication.grace_days) else {
            return Ok(None);
        };
        let first = match &latest {
            Some(s) => s.through_month as u32 + 1,
            None => match self.core().earliest_month() {
                Some(Period::Month(m)) => m,
                _ => return Ok(None),
            },
        };
        let Some(through) = settled_through(first, closed, self.busy_months()) else {
            tracing::info!("a closed month is still changing: publication held until it settles");
            return Ok(None);
        };
        if first > through {
            return Ok(None);
        }
        let months: Vec<Period> = (first..=through).map(Period::Month).collect();
        let quarters: Vec<Period> = (first..=through)
            .filter(|m| m % 3 == 2)
            .map(Period::quarter_of_month)
            .collect();
        // Earlier months of a quarter now closing were published before: the
        // quarter must be protected together with what they showed.
        let frozen_months: Vec<Period> = quarters
            .iter()
            .flat_map(|q| q.months())
            .filter(|&m| m < first)
            .map(Period::Month)
            .collect();
        let frozen_ids: Vec<i32> = frozen_months.iter().map(|p| p.id() as i32).collect();
        let frozen_rows = if frozen_ids.is_empty() {
            Vec::new()
        } else {
            store::cells_of_periods(&self.db, &frozen_ids).await?
        };
        let periods: Vec<Period> = months.iter().chain(&quarters).copied().collect();
        let (cells, truths, areas) = {
            let core = self.core();
            (
                core.cells(&periods),
                core.cells(&frozen_months),
                core.areas().clone(),
            )
        };
        let mut truths: HashMap<CellName, _> = truths.into_iter().collect();
        let frozen: Vec<Frozen> = frozen_rows
            .iter()
            .filter_map(|row| {
                let name = self.name_of(row)?;
                Some(Frozen {
                    truth: truths.remove(&name),
                    name,
                    published: published_of(row),
                })
            })
            .collect();
        let catalogue = self.catalogue;
        let region_of = move |area: &Area| {
            let id = areas.id(area)?;
            areas.region_of(id).map(|r| areas.get(r).code.clone())
        };
        let parents = region_of.clone();
        let published = tokio::task::spawn_blocking(move || {
            disclosure::protect(catalogue, cells, frozen, region_of)
        })
        .await
        .expect("disclosure control");

        let sequence = latest.as_ref().map_or(1, |s| s.sequence + 1);
        let snapshot = SnapshotRow {
            sequence,
            snapshot_id: uuid::Uuid::now_v7().to_string(),
            published_at: now,
            through_month: through as i32,
            periods: periods
                .iter()
                .map(|p| p.id().to_string())
                .collect::<Vec<_>>()
                .join(","),
        };
        let mut rows: Vec<(CellName, CellRow)> = published
            .into_iter()
            .map(|(name, p)| {
                let parent = (name.area.kind == AreaKind::ProbationDeliveryUnit)
                    .then(|| parents(&name.area).map(String::from))
                    .flatten();
                let row = CellRow {
                    cell_id: 0,
                    sequence,
                    indicator_id: self.catalogue.indicators[usize::from(name.indicator)]
                        .id
                        .clone(),
                    area_type: name.area.kind.number(),
                    area_code: name.area.code.to_string(),
                    parent_code: parent,
                    period: name.period.id() as i32,
                    stratum: i16::from(name.stratum),
                    numerator: p.numerator.value,
                    numerator_suppressed: p.numerator.suppressed,
                    denominator: p.denominator.value,
                    denominator_suppressed: p.denominator.suppressed,
                    value: p.value,
                };
                (name, row)
            })
            .collect();
        // Stored (and so read) area by area, each in period, indicator, stratum order.
        rows.sort_by(|(a, _), (b, _)| {
            (&a.area, a.period, a.indicator, a.stratum).cmp(&(
                &b.area,
                b.period,
                b.indicator,
                b.stratum,
            ))
        });
        let rows: Vec<CellRow> = rows.into_iter().map(|(_, row)| row).collect();
        let events = self.snapshot_events(&snapshot, &rows, &periods);

        let mut tx = self.db.begin().await?;
        match store::insert_snapshot(&mut tx, &snapshot).await {
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                return Ok(None); // another instance published it
            }
            other => other?,
        }
        store::insert_cells(&mut tx, &rows).await?;
        tx.enqueue_all(&events).await?;
        tx.commit().await?;
        self.waker.wake();
        self.published.send_replace(sequence);
        tracing::info!(
            sequence,
            cells = rows.len(),
            periods = %periods.iter().map(ToString::to_string).collect::<Vec<_>>().join(" "),
            "indicators published"
        );
        Ok(Some(sequence))
    }

    /// One event per area (or one, empty, when nothing was published).
    fn snapshot_events(
        &self,
        snapshot: &SnapshotRow,
        rows: &[CellRow],
        periods: &[Period],
    ) -> Vec<Event> {
        let header = pb::Snapshot {
            snapshot_id: snapshot.snapshot_id.clone(),
            sequence: snapshot.sequence,
            published_at: Some(timestamp(snapshot.published_at)),
            cells: Vec::new(),
            periods: periods.iter().map(|p| p.to_proto()).collect(),
        };
        let parts: Vec<&[CellRow]> = if rows.is_empty() {
            vec![&[]]
        } else {
            rows.chunk_by(|a, b| a.area_type == b.area_type && a.area_code == b.area_code)
                .collect()
        };
        let count = parts.len() as i32;
        parts
            .into_iter()
            .enumerate()
            .map(|(i, part)| {
                let message = events::SnapshotPublished {
                    snapshot: Some(pb::Snapshot {
                        cells: part.iter().filter_map(|r| self.cell_proto(r)).collect(),
                        ..header.clone()
                    }),
                    area: part.first().and_then(area_of).map(|a| a.to_proto()),
                    part: i as i32 + 1,
                    parts: count,
                };
                Event::new(
                    &self.snapshots_topic,
                    &snapshot.snapshot_id,
                    SOURCE,
                    &message,
                )
            })
            .collect()
    }

    fn name_of(&self, row: &CellRow) -> Option<CellName> {
        Some(CellName {
            indicator: self.catalogue.index(&row.indicator_id)? as u8,
            period: Period::from_id(row.period as u32),
            area: area_of(row)?,
            stratum: u8::try_from(row.stratum).ok()?,
        })
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

pub(super) fn area_of(row: &CellRow) -> Option<Area> {
    Some(Area {
        kind: AreaKind::from_number(row.area_type)?,
        code: row.area_code.as_str().into(),
    })
}

fn published_of(row: &CellRow) -> Published {
    Published {
        numerator: Count {
            value: row.numerator,
            suppressed: row.numerator_suppressed,
        },
        denominator: Count {
            value: row.denominator,
            suppressed: row.denominator_suppressed,
        },
        value: row.value,
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
