//! Self-reports: a person's own coded answers about their health and their
//! experience of services, told to the indicators and kept nowhere else.

use super::App;
use crate::domain::observations;
use crate::domain::self_report::SelfReport;
use crate::error::Result;
use crate::store::write::Placement;
use chrono::{DateTime, Utc};
use throughcare_platform::idempotency::once;
use throughcare_platform::identifiers::new_id;
use throughcare_platform::identity::Caller;
use throughcare_platform::work::Work;
use throughcare_proto::referrals::v1 as pb;
use throughcare_proto::types::v1 as types;

impl App {
    pub async fn record_self_report(
        &self,
        caller: &Caller,
        r: &pb::RecordSelfReportRequest,
    ) -> Result<pb::RecordSelfReportResponse> {
        let now = self.now();
        let report = SelfReport::validate(r, &self.registry, now.date_naive())?;
        let report = &report;
        once(&self.transactions, caller.code(), r, move |work| {
            self.store_self_report(work, report, now)
        })
        .await
    }

    async fn store_self_report(
        &self,
        mut work: Work,
        report: &SelfReport,
        now: DateTime<Utc>,
    ) -> Result<(Work, pb::RecordSelfReportResponse)> {
        let placement = Placement {
            area: &report.area,
            prison: None,
        };
        let row = self
            .person(&mut work, &report.person, Some(placement), now)
            .await?;
        let self_report_id = new_id();
        let subject = self.subject(
            &row,
            report.area.observation_areas(None),
            self.episode_key("self-report", &self_report_id),
            report.reported_on,
        )?;
        let at = observations::start_of(report.reported_on);
        let observed = report
            .facts()
            .into_iter()
            .map(|fact| subject.observe(fact, types::ServiceType::Unspecified, 0, at))
            .collect();
        self.observe(&mut work, observed);
        Ok((work, pb::RecordSelfReportResponse { self_report_id }))
    }
}
