//! Watchers follow the snapshots: each one after a sequence (or the latest,
//! then each new one), restricted to the selected areas, one message per area.

use super::App;
use super::scope::Wanted;
use super::snapshot::{area_of, header};
use super::stream::{self, STREAM_PAGE, Sink, Stop, Streamed};
use crate::domain::area::Area;
use crate::store::{self, CellFilter, SnapshotRow};
use std::sync::Arc;
use std::time::Duration;
use throughcare_platform::error::{Error, Result};
use throughcare_platform::identity::Caller;
use throughcare_platform::validation::FieldViolation;
use throughcare_proto::indicators::v1 as pb;
use tokio_util::sync::CancellationToken;

/// How often a watcher looks for snapshots another instance published.
const WATCH_POLL: Duration = Duration::from_secs(5);

impl App {
    /// Each snapshot after `after_sequence` (or the latest, then each new
    /// one), restricted to the selected areas, one message per area.
    pub async fn watch(
        self: &Arc<Self>,
        caller: &Caller,
        request: &pb::WatchSnapshotsRequest,
        shutdown: CancellationToken,
    ) -> Result<Streamed<pb::WatchSnapshotsResponse>> {
        if request.after_sequence < 0 {
            return Err(FieldViolation::new("after_sequence", "must not be negative").into());
        }
        let filter = self.select(caller, Wanted::areas(&request.areas)).await?;
        // Every stratum of every indicator, in the selected areas.
        let filter = CellFilter {
            strata: Vec::new(),
            ..filter
        };
        let after = match request.after_sequence {
            0 => store::latest_snapshot(self.db())
                .await?
                .map_or(0, |s| s.sequence - 1),
            n => n,
        };
        let app = self.clone();
        Ok(stream::spawn(1, move |sink| async move {
            app.follow(after, filter, sink, shutdown).await
        }))
    }

    /// Sends each snapshot after `after` as it is published, until the
    /// watcher goes away or the server shuts down.
    async fn follow(
        &self,
        mut after: i64,
        filter: CellFilter,
        sink: Sink<pb::WatchSnapshotsResponse>,
        shutdown: CancellationToken,
    ) -> Result<(), Stop> {
        let mut published = self.published.subscribe();
        loop {
            let snapshots = store::snapshots_after(self.db(), after, 16).await?;
            for snapshot in &snapshots {
                self.send_snapshot(snapshot, &filter, &sink).await?;
                after = snapshot.sequence;
            }
            if sink.is_closed() {
                return Err(Stop::Gone);
            }
            if snapshots.is_empty() {
                tokio::select! {
                    _ = shutdown.cancelled() => {
                        return Err(Error::Unavailable(
                            "server is shutting down; resume after the last sequence received"
                                .into(),
                        )
                        .into());
                    }
                    _ = published.changed() => {}
                    _ = tokio::time::sleep(WATCH_POLL) => {}
                }
            }
        }
    }

    /// Sends one snapshot's parts, an area at a time.
    async fn send_snapshot(
        &self,
        snapshot: &SnapshotRow,
        filter: &CellFilter,
        sink: &Sink<pb::WatchSnapshotsResponse>,
    ) -> Result<(), Stop> {
        let header = header(snapshot);
        let mut filter = CellFilter {
            sequence: Some(snapshot.sequence),
            limit: STREAM_PAGE,
            after: 0,
            ..filter.clone()
        };
        // The part being gathered: its area and cells.
        let mut part: Option<(Area, Vec<pb::Cell>)> = None;
        loop {
            let page = store::query_cells(self.db(), &filter).await?;
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
                            sink.send(part_message(&header, Some(&area), cells, false))
                                .await?;
                        }
                    }
                }
            }
        }
        let message = match part {
            Some((area, cells)) => part_message(&header, Some(&area), cells, true),
            None => part_message(&header, None, Vec::new(), true),
        };
        sink.send(message).await
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
