//! Reading what was published: a commissioner sees only their own areas (and
//! a region's delivery units), national users see all; nothing unpublished is
//! ever read. Queries page, exports stream CSV, watchers follow snapshots.

use super::publish::area_of;
use super::{App, timestamp};
use crate::domain::area::{Area, AreaKind};
use crate::domain::period::Period;
use crate::domain::stratum;
use crate::error::{Error, Result};
use crate::store::{self, CellFilter, CellRow, SnapshotRow};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;
use throughcare_platform::identity::{AreaConfig, Caller, OrganisationKind};
use throughcare_platform::validation::{FieldViolation, Violations};
use throughcare_proto::indicators::v1 as pb;
use throughcare_proto::types::v1 as types;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::Status;

const DEFAULT_PAGE: i64 = 1_000;
const MAX_PAGE: i32 = 10_000;
/// Rows read per page while exporting or watching.
const STREAM_PAGE: i64 = 2_000;
/// How often a watcher looks for snapshots another instance published.
const WATCH_POLL: Duration = Duration::from_secs(5);

/// What a caller may see.
#[derive(Debug, Clone)]
pub(crate) struct Scope {
    national: bool,
    areas: BTreeSet<Area>,
    /// Regions whose delivery units the caller also sees.
    regions: Vec<String>,
}

impl Scope {
    pub(crate) fn of(caller: &Caller) -> Self {
        let areas: BTreeSet<Area> = caller
            .organisation
            .areas
            .iter()
            .map(|a| Area {
                kind: AreaKind::from_config(a.area_type),
                code: a.code.as_str().into(),
            })
            .collect();
        Scope {
            national: caller.kind() == OrganisationKind::National
                || areas.iter().any(|a| a.kind == AreaKind::National),
            regions: areas
                .iter()
                .filter(|a| a.kind == AreaKind::ProbationRegion)
                .map(|a| a.code.to_string())
                .collect(),
            areas,
        }
    }

    /// Whether the caller sees an area as configured for an organisation.
    pub(crate) fn sees_config(&self, area: &AreaConfig) -> bool {
        let area = Area {
            kind: AreaKind::from_config(area.area_type),
            code: area.code.as_str().into(),
        };
        self.sees(&area, None)
    }

    fn sees(&self, area: &Area, region: Option<&str>) -> bool {
        self.national
            || self.areas.contains(area)
            || (area.kind == AreaKind::ProbationDeliveryUnit
                && region.is_some_and(|r| self.regions.iter().any(|own| own == r)))
    }
}

/// A validated cell filter (without paging).
struct Selection {
    filter: CellFilter,
}

impl App {
    /// Areas anyone could ask about: what was observed, published or configured.
    fn known(&self, area: &Area) -> (bool, Option<String>) {
        let core = self.core();
        let areas = core.areas();
        let region = areas
            .id(area)
            .and_then(|id| areas.region_of(id))
            .map(|r| areas.get(r).code.to_string());
        let known = areas.id(area).is_some()
            || self.registry.organisations().any(|o| {
                o.areas.iter().any(|a| {
                    AreaKind::from_config(a.area_type) == area.kind && *a.code == *area.code
                })
            });
        (known, region)
    }

    /// Checks a request's filters; the caller's own areas when it names none.
    async fn select(
        &self,
        scope: &Scope,
        indicator_ids: &[String],
        areas: &[types::Area],
        periods: &[types::Period],
        strata: &[i32],
    ) -> Result<Selection> {
        let mut v = Violations::new();
        for (i, id) in indicator_ids.iter().enumerate() {
            if self.catalogue.index(id).is_none() {
                let reason = if self.catalogue.structure(id).is_some() {
                    "is a structure indicator (see ListStructureIndicators)"
                } else {
                    "is not a known indicator (see ListIndicators)"
                };
                v.push(FieldViolation::new(format!("indicator_ids[{i}]"), reason));
            }
        }
        let mut period_ids = Vec::new();
        for (i, p) in periods.iter().enumerate() {
            match Period::from_proto(p) {
                Ok(p) => period_ids.push(p.id() as i32),
                Err(reason) => v.push(FieldViolation::new(format!("periods[{i}]"), reason)),
            }
        }
        let mut stratum_values: Vec<i16> = Vec::new();
        for (i, s) in strata.iter().enumerate() {
            match pb::StratumType::try_from(*s) {
                Ok(t) if t != pb::StratumType::Unspecified => stratum_values.extend(
                    (0..stratum::COUNT)
                        .filter(|&x| stratum::stratum_type(x) == t)
                        .map(i16::from),
                ),
                _ => v.push(FieldViolation::new(
                    format!("strata[{i}]"),
                    "must be all, sex, age band or ethnic group",
                )),
            }
        }
        if strata.is_empty() {
            stratum_values.push(i16::from(stratum::ALL));
        }
        let published = if areas.is_empty() {
            Vec::new()
        } else {
            store::published_areas(&self.db).await?
        };
        let mut wanted = Vec::new();
        let mut denied = Vec::new();
        for (i, a) in areas.iter().enumerate() {
            let field = format!("areas[{i}]");
            let Some(kind) = types::AreaType::try_from(a.r#type)
                .ok()
                .and_then(AreaKind::from_proto)
            else {
                v.push(FieldViolation::new(
                    format!("{field}.type"),
                    "must be a known area type",
                ));
                continue;
            };
            if let Err(reason) = kind.check(&a.code) {
                v.push(FieldViolation::new(format!("{field}.code"), reason));
                continue;
            }
            let area = Area {
                kind,
                code: a.code.as_str().into(),
            };
            let (known, region) = self.known(&area);
            let known = known
                || kind == AreaKind::National
                || published
                    .iter()
                    .any(|(t, c)| *t == kind.number() && *c == a.code);
            if !known {
                v.push(FieldViolation::new(
                    format!("{field}.code"),
                    "is not a known area",
                ));
                continue;
            }
            if !scope.sees(&area, region.as_deref()) {
                denied.push(field);
                continue;
            }
            wanted.push((kind.number(), a.code.clone()));
        }
        v.finish(|| ())?;
        if !denied.is_empty() {
            return Err(Status::permission_denied(format!(
                "{} not among the caller's areas",
                denied.join(", ")
            ))
            .into());
        }
        let (areas, regions) = match (areas.is_empty(), scope.national) {
            (false, _) => (Some(wanted), Vec::new()),
            (true, true) => (None, Vec::new()),
            (true, false) => (
                Some(
                    scope
                        .areas
                        .iter()
                        .map(|a| (a.kind.number(), a.code.to_string()))
                        .collect(),
                ),
                scope.regions.clone(),
            ),
        };
        Ok(Selection {
            filter: CellFilter {
                indicator_ids: indicator_ids.to_vec(),
                areas,
                regions,
                periods: period_ids,
                strata: stratum_values,
                ..CellFilter::default()
            },
        })
    }

    pub async fn query(
        &self,
        caller: &Caller,
        request: &pb::QueryIndicatorsRequest,
    ) -> Result<pb::QueryIndicatorsResponse> {
        let mut v = Violations::new();
        let limit = match request.page_size {
            0 => DEFAULT_PAGE,
            n if (1..=MAX_PAGE).contains(&n) => i64::from(n),
            _ => {
                v.push(FieldViolation::new(
                    "page_size",
                    format!("must be from 0 to {MAX_PAGE}"),
                ));
                0
            }
        };
        let after = match request.page_token.as_str() {
            "" => 0,
            token => token
                .parse::<i64>()
                .ok()
                .filter(|&t| t >= 0)
                .unwrap_or_else(|| {
                    v.push(FieldViolation::new(
                        "page_token",
                        "is not a token from a previous response",
                    ));
                    0
                }),
        };
        v.finish(|| ())?;
        let selection = self
            .select(
                &Scope::of(caller),
                &request.indicator_ids,
                &request.areas,
                &request.periods,
                &request.strata,
            )
            .await?;
        let latest = store::latest_snapshot(&self.db).await?;
        // Read one more than a page to know whether another follows.
        let mut rows = store::query_cells(
            &self.db,
            &CellFilter {
                after,
                limit: limit + 1,
                ..selection.filter
            },
        )
        .await?;
        let next_page_token = if rows.len() as i64 > limit {
            rows.truncate(limit as usize);
            rows.last()
                .map(|r| r.cell_id.to_string())
                .unwrap_or_default()
        } else {
            String::new()
        };
        Ok(pb::QueryIndicatorsResponse {
            snapshot_id: latest
                .as_ref()
                .map(|s| s.snapshot_id.clone())
                .unwrap_or_default(),
            sequence: latest.as_ref().map_or(0, |s| s.sequence),
            published_at: latest.as_ref().map(|s| timestamp(s.published_at)),
            cells: rows.iter().filter_map(|r| self.cell_proto(r)).collect(),
            next_page_token,
        })
    }

    /// A published cell as the API shows it.
    pub(crate) fn cell_proto(&self, row: &CellRow) -> Option<pb::Cell> {
        Some(pb::Cell {
            indicator_id: row.indicator_id.clone(),
            area: Some(area_of(row)?.to_proto()),
            period: Some(Period::from_id(row.period as u32).to_proto()),
            stratum: Some(stratum::to_proto(u8::try_from(row.stratum).ok()?)),
            numerator: Some(pb::PublishedCount {
                value: row.numerator,
                suppressed: row.numerator_suppressed,
            }),
            denominator: Some(pb::PublishedCount {
                value: row.denominator,
                suppressed: row.denominator_suppressed,
            }),
            value: row.value,
        })
    }

    /// The selected cells as CSV, header first, a page at a time.
    pub async fn export_csv(
        self: &Arc<Self>,
        caller: &Caller,
        request: &pb::ExportIndicatorsCsvRequest,
    ) -> Result<ReceiverStream<std::result::Result<pb::ExportIndicatorsCsvResponse, Status>>> {
        let selection = self
            .select(
                &Scope::of(caller),
                &request.indicator_ids,
                &request.areas,
                &request.periods,
                &request.strata,
            )
            .await?;
        let (sender, receiver) = mpsc::channel(2);
        let app = self.clone();
        tokio::spawn(async move {
            let chunk = |text: String| pb::ExportIndicatorsCsvResponse {
                chunk: text.into_bytes(),
            };
            if sender.send(Ok(chunk(CSV_HEADER.to_owned()))).await.is_err() {
                return;
            }
            let mut filter = CellFilter {
                limit: STREAM_PAGE,
                ..selection.filter
            };
            loop {
                let page = match store::query_cells(&app.db, &filter).await {
                    Ok(page) => page,
                    Err(error) => {
                        let _ = sender.send(Err(Status::from(Error::from(error)))).await;
                        return;
                    }
                };
                let Some(last) = page.last() else {
                    return;
                };
                filter.after = last.cell_id;
                let text: String = page.iter().filter_map(|r| app.csv_row(r)).collect();
                if sender.send(Ok(chunk(text))).await.is_err() {
                    return;
                }
            }
        });
        Ok(ReceiverStream::new(receiver))
    }

    fn csv_row(&self, row: &CellRow) -> Option<String> {
        let indicator = &self.catalogue.indicators[self.catalogue.index(&row.indicator_id)?];
        let (stratum_type, stratum) = stratum::label(u8::try_from(row.stratum).ok()?);
        let count = |value: i64, suppressed: bool| {
            if suppressed {
                String::new()
            } else {
                value.to_string()
            }
        };
        let fields = [
            row.indicator_id.clone(),
            indicator.title.clone(),
            area_of(row)?.kind.as_str().to_owned(),
            row.area_code.clone(),
            Period::from_id(row.period as u32).to_string(),
            stratum_type.to_owned(),
            stratum,
            count(row.numerator, row.numerator_suppressed),
            count(row.denominator, row.denominator_suppressed),
            row.value.map(|v| format!("{v:.4}")).unwrap_or_default(),
            (row.numerator_suppressed || row.denominator_suppressed).to_string(),
        ];
        let mut line = fields
            .iter()
            .map(|f| csv_field(f))
            .collect::<Vec<_>>()
            .join(",");
        line.push_str("\r\n");
        Some(line)
    }

    /// Each snapshot after `after_sequence` (or the latest, then each new
    /// one), restricted to the selected areas, one message per area.
    pub async fn watch(
        self: &Arc<Self>,
        caller: &Caller,
        request: &pb::WatchSnapshotsRequest,
        shutdown: CancellationToken,
    ) -> Result<ReceiverStream<std::result::Result<pb::WatchSnapshotsResponse, Status>>> {
        if request.after_sequence < 0 {
            return Err(FieldViolation::new("after_sequence", "must not be negative").into());
        }
        let selection = self
            .select(&Scope::of(caller), &[], &request.areas, &[], &[])
            .await?;
        // Every stratum of every indicator, in the selected areas.
        let filter = CellFilter {
            strata: Vec::new(),
            ..selection.filter
        };
        let mut after = match request.after_sequence {
            0 => store::latest_snapshot(&self.db)
                .await?
                .map_or(0, |s| s.sequence - 1),
            n => n,
        };
        let (sender, receiver) = mpsc::channel(1);
        let app = self.clone();
        let mut published = self.published.subscribe();
        tokio::spawn(async move {
            loop {
                let snapshots = match store::snapshots_after(&app.db, after, 16).await {
                    Ok(s) => s,
                    Err(error) => {
                        let _ = sender.send(Err(Status::from(Error::from(error)))).await;
                        return;
                    }
                };
                for snapshot in &snapshots {
                    if let Err(error) = app.send_snapshot(snapshot, &filter, &sender).await {
                        let _ = sender.send(Err(error)).await;
                        return;
                    }
                    after = snapshot.sequence;
                }
                if sender.is_closed() {
                    return;
                }
                if snapshots.is_empty() {
                    tokio::select! {
                        _ = shutdown.cancelled() => {
                            let _ = sender.send(Err(Status::unavailable(
                                "server is shutting down; resume after the last sequence received",
                            ))).await;
                            return;
                        }
                        _ = published.changed() => {}
                        _ = tokio::time::sleep(WATCH_POLL) => {}
                    }
                }
            }
        });
        Ok(ReceiverStream::new(receiver))
    }

    /// Sends one snapshot's parts; Err when the stream has gone or a read failed.
    async fn send_snapshot(
        &self,
        snapshot: &SnapshotRow,
        filter: &CellFilter,
        sender: &mpsc::Sender<std::result::Result<pb::WatchSnapshotsResponse, Status>>,
    ) -> std::result::Result<(), Status> {
        let header = pb::Snapshot {
            snapshot_id: snapshot.snapshot_id.clone(),
            sequence: snapshot.sequence,
            published_at: Some(timestamp(snapshot.published_at)),
            cells: Vec::new(),
            periods: snapshot
                .period_ids()
                .into_iter()
                .map(|id| Period::from_id(id).to_proto())
                .collect(),
        };
        let gone = || Status::cancelled("the watcher went away");
        let mut filter = CellFilter {
            sequence: Some(snapshot.sequence),
            limit: STREAM_PAGE,
            after: 0,
            ..filter.clone()
        };
        // The part being gathered: its area and cells.
        let mut part: Option<(Area, Vec<pb::Cell>)> = None;
        loop {
            let page = store::query_cells(&self.db, &filter)
                .await
                .map_err(|e| Status::from(Error::from(e)))?;
            let Some(last) = page.last() else {
                break;
            };
            filter.after = last.cell_id;
            for row in &page {
                let (Some(area), Some(cell)) = (area_of(row), self.cell_proto(row)) else {
                    continue;
                };
                match &mut part {
                    Some((current, cells)) if *current == area => cells.push(cell),
                    _ => {
                        if let Some((area, cells)) = part.replace((area, vec![cell])) {
                            let message = part_message(&header, Some(&area), cells, false);
                            sender.send(Ok(message)).await.map_err(|_| gone())?;
                        }
                    }
                }
            }
        }
        let message = match part {
            Some((area, cells)) => part_message(&header, Some(&area), cells, true),
            None => part_message(&header, None, Vec::new(), true),
        };
        sender.send(Ok(message)).await.map_err(|_| gone())
    }
}

fn part_message(
    header: &pb::Snapshot,
    area: Option<&Area>,
    cells: Vec<pb::Cell>,
    last: bool,
) -> pb::WatchSnapshotsResponse {
    pb::WatchSnapshotsResponse {
        snapshot: Some(pb::Snapshot {
            cells,
            ..header.clone()
        }),
        area: area.map(Area::to_proto),
        last,
    }
}

/// The export's columns: one row per indicator, area, period and stratum.
/// A suppressed count is left empty and the row flagged.
pub const CSV_HEADER: &str = "indicator_id,indicator,area_type,area_code,period,stratum_type,stratum,numerator,denominator,value,suppressed\r\n";

/// RFC 4180 quoting where a field needs it.
fn csv_field(field: &str) -> String {
    if field.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field.to_owned()
    }
}
