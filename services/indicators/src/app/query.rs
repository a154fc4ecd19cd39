//! Reading what was published, a page at a time: nothing unpublished is ever
//! read, and only within the caller's scope.

use super::App;
use super::scope::Wanted;
use crate::store::{self, CellFilter};
use throughcare_platform::clock::to_timestamp;
use throughcare_platform::error::Result;
use throughcare_platform::identity::Caller;
use throughcare_platform::validation::{FieldViolation, Violations};
use throughcare_proto::indicators::v1 as pb;

const DEFAULT_PAGE: i64 = 1_000;
const MAX_PAGE: i32 = 10_000;

impl App {
    pub async fn query(
        &self,
        caller: &Caller,
        request: &pb::QueryIndicatorsRequest,
    ) -> Result<pb::QueryIndicatorsResponse> {
        let (limit, after) = paging(request)?;
        let filter = self.select(caller, Wanted::from(request)).await?;
        let latest = store::latest_snapshot(self.db()).await?;
        // Read one more than a page to know whether another follows.
        let filter = CellFilter {
            after,
            limit: limit + 1,
            ..filter
        };
        let mut rows = store::query_cells(self.db(), &filter).await?;
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
            published_at: latest.as_ref().map(|s| to_timestamp(s.published_at)),
            cells: rows.iter().filter_map(|r| self.cell_proto(r)).collect(),
            next_page_token,
        })
    }
}

/// The page size and the cell id the page starts after.
fn paging(request: &pb::QueryIndicatorsRequest) -> Result<(i64, i64)> {
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
    Ok(v.finish(|| (limit, after))?)
}
