//! The CSV export: the selected published cells, header first, streamed a
//! page at a time.

use super::App;
use super::scope::Wanted;
use super::snapshot::area_of;
use super::stream::{self, STREAM_PAGE, Streamed};
use crate::domain::period::Period;
use crate::domain::stratum;
use crate::store::{self, CellFilter, CellRow};
use std::sync::Arc;
use throughcare_platform::error::Result;
use throughcare_platform::identity::Caller;
use throughcare_proto::indicators::v1 as pb;

/// The export's columns: one row per indicator, area, period and stratum.
/// A suppressed count is left empty and the row flagged; `revision` is 0 for
/// a period's first publication and counts its revisions after.
pub const CSV_HEADER: &str = "indicator_id,indicator,area_type,area_code,period,stratum_type,stratum,numerator,denominator,value,suppressed,revision\r\n";

impl App {
    /// The selected cells as CSV, header first, a page at a time.
    pub async fn export_csv(
        self: &Arc<Self>,
        caller: &Caller,
        request: &pb::ExportIndicatorsCsvRequest,
    ) -> Result<Streamed<pb::ExportIndicatorsCsvResponse>> {
        let filter = self.select(caller, Wanted::from(request)).await?;
        let mut filter = CellFilter {
            limit: STREAM_PAGE,
            ..filter
        };
        let app = self.clone();
        Ok(stream::spawn(2, |sink| async move {
            let chunk = |text: String| pb::ExportIndicatorsCsvResponse {
                chunk: text.into_bytes(),
            };
            sink.send(chunk(CSV_HEADER.to_owned())).await?;
            loop {
                let page = store::query_cells(app.db(), &filter).await?;
                let Some(last) = page.last() else {
                    return Ok(());
                };
                filter.after = last.cell_id;
                let text: String = page.iter().filter_map(|r| app.csv_row(r)).collect();
                sink.send(chunk(text)).await?;
            }
        }))
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
            row.revision.to_string(),
        ];
        let mut line = fields
            .iter()
            .map(|f| csv_field(f))
            .collect::<Vec<_>>()
            .join(",");
        line.push_str("\r\n");
        Some(line)
    }
}

/// RFC 4180 quoting where a field needs it.
fn csv_field(field: &str) -> String {
    if field.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field.to_owned()
    }
}
