//! A snapshot's parts as stored and as shown: published cells as rows, as
//! API cells and as the events announcing a publication.

use super::{App, SOURCE};
use crate::domain::area::{Area, AreaKind};
use crate::domain::core::CellName;
use crate::domain::disclosure::{Count, Published};
use crate::domain::period::Period;
use crate::domain::stratum;
use crate::store::{CellRow, SnapshotRow};
use throughcare_platform::bus::Event;
use throughcare_platform::clock::to_timestamp;
use throughcare_proto::events::v1 as events;
use throughcare_proto::indicators::v1 as pb;

/// A snapshot without its cells.
pub(super) fn header(snapshot: &SnapshotRow) -> pb::Snapshot {
    pb::Snapshot {
        snapshot_id: snapshot.snapshot_id.clone(),
        sequence: snapshot.sequence,
        published_at: Some(to_timestamp(snapshot.published_at)),
        cells: Vec::new(),
        periods: snapshot
            .period_ids()
            .into_iter()
            .map(|id| Period::from_id(id).to_proto())
            .collect(),
        revised_periods: snapshot
            .revised_ids()
            .into_iter()
            .map(|id| Period::from_id(id).to_proto())
            .collect(),
    }
}

pub(super) fn area_of(row: &CellRow) -> Option<Area> {
    Some(Area {
        kind: AreaKind::from_number(row.area_type)?,
        code: row.area_code.as_str().into(),
    })
}

/// What a stored cell showed.
pub(super) fn published_of(row: &CellRow) -> Published {
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

impl App {
    /// A published cell as the API shows it.
    pub(super) fn cell_proto(&self, row: &CellRow) -> Option<pb::Cell> {
        let count = |value, suppressed| Some(pb::PublishedCount { value, suppressed });
        Some(pb::Cell {
            indicator_id: row.indicator_id.clone(),
            area: Some(area_of(row)?.to_proto()),
            period: Some(Period::from_id(row.period as u32).to_proto()),
            stratum: Some(stratum::to_proto(u8::try_from(row.stratum).ok()?)),
            numerator: count(row.numerator, row.numerator_suppressed),
            denominator: count(row.denominator, row.denominator_suppressed),
            value: row.value,
            revision: row.revision as u32,
        })
    }

    /// The cell a stored row is for.
    pub(super) fn name_of(&self, row: &CellRow) -> Option<CellName> {
        Some(CellName {
            indicator: self.catalogue.index(&row.indicator_id)? as u8,
            period: Period::from_id(row.period as u32),
            area: area_of(row)?,
            stratum: u8::try_from(row.stratum).ok()?,
        })
    }

    /// A published cell as stored in snapshot `sequence`, as revision
    /// `revision` of its period; `parent_code` is a delivery unit's region.
    pub(super) fn cell_row(
        &self,
        sequence: i64,
        revision: i32,
        name: &CellName,
        published: &Published,
        parent_code: Option<String>,
    ) -> CellRow {
        CellRow {
            cell_id: 0,
            sequence,
            indicator_id: self.catalogue.indicators[usize::from(name.indicator)]
                .id
                .clone(),
            area_type: name.area.kind.number(),
            area_code: name.area.code.to_string(),
            parent_code,
            period: name.period.id() as i32,
            stratum: i16::from(name.stratum),
            numerator: published.numerator.value,
            numerator_suppressed: published.numerator.suppressed,
            denominator: published.denominator.value,
            denominator_suppressed: published.denominator.suppressed,
            value: published.value,
            revision,
        }
    }

    /// One event per area (or one, empty, when nothing was published).
    pub(super) fn snapshot_events(&self, snapshot: &SnapshotRow, rows: &[CellRow]) -> Vec<Event> {
        let header = header(snapshot);
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
}
