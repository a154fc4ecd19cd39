//! Structure indicators: present or absent, recorded by each organisation
//! about itself only (a mortality review process, pathways into services, an
//! experience survey...). Not about people, so no disclosure control.

use super::App;
use super::scope::{Scope, refuse};
use crate::store::{self, StructureRow};
use chrono::{Datelike, NaiveDate};
use throughcare_platform::clock::to_timestamp;
use throughcare_platform::error::{Error, Result};
use throughcare_platform::idempotency::{IdempotencyKey, idempotent};
use throughcare_platform::identifiers::new_id;
use throughcare_platform::identity::{Caller, OrganisationKind};
use throughcare_platform::validation::{FieldViolation, Invalid, Violations};
use throughcare_proto::indicators::v1 as pb;
use throughcare_proto::types::v1 as types;

fn record_proto(row: &StructureRow) -> pb::StructureIndicatorRecord {
    pb::StructureIndicatorRecord {
        organisation: row.organisation.clone(),
        indicator_id: row.indicator_id.clone(),
        present: row.present,
        assessed_on: Some(types::Date {
            year: row.assessed_on.year(),
            month: row.assessed_on.month() as i32,
            day: row.assessed_on.day() as i32,
        }),
        recorded_at: Some(to_timestamp(row.recorded_at)),
    }
}

/// The assessment date of a record: a calendar date, not after `today`.
fn assessed_on(date: Option<&types::Date>, today: NaiveDate) -> Result<NaiveDate, FieldViolation> {
    let d = date.ok_or_else(|| FieldViolation::missing("assessed_on"))?;
    let day = u32::try_from(d.month)
        .ok()
        .zip(u32::try_from(d.day).ok())
        .and_then(|(m, day)| NaiveDate::from_ymd_opt(d.year, m, day))
        .ok_or_else(|| FieldViolation::new("assessed_on", "is not a calendar date"))?;
    if day > today {
        return Err(FieldViolation::new("assessed_on", "is in the future"));
    }
    Ok(day)
}

impl App {
    pub async fn record_structure(
        &self,
        caller: &Caller,
        request: &pb::RecordStructureIndicatorRequest,
    ) -> Result<pb::RecordStructureIndicatorResponse> {
        let (key, assessed_on) = self.check_record(caller, request)?;
        if request.organisation != caller.code() {
            return Err(Error::Forbidden(
                "an organisation records only its own structure indicators".into(),
            ));
        }
        let row = StructureRow {
            organisation: request.organisation.clone(),
            indicator_id: request.indicator_id.clone(),
            present: request.present,
            assessed_on,
            recorded_at: self.now(),
        };
        idempotent(&self.transactions, &key, |mut work| {
            let row = row.clone();
            async move {
                store::insert_structure(work.tx(), &new_id(), &row).await?;
                let record = Some(record_proto(&row));
                Ok::<_, Error>((work, pb::RecordStructureIndicatorResponse { record }))
            }
        })
        .await
    }

    /// Every violation of a record request; its idempotency key and date.
    fn check_record(
        &self,
        caller: &Caller,
        request: &pb::RecordStructureIndicatorRequest,
    ) -> Result<(IdempotencyKey, NaiveDate), Invalid> {
        let mut v = Violations::new();
        let key = v.check(IdempotencyKey::of(caller.code(), request));
        if request.organisation.is_empty() {
            v.push(FieldViolation::missing("organisation"));
        }
        if request.indicator_id.is_empty() {
            v.push(FieldViolation::missing("indicator_id"));
        } else if self.catalogue.structure(&request.indicator_id).is_none() {
            let reason = if self.catalogue.index(&request.indicator_id).is_some() {
                "is measured from observations, not recorded (it is not a structure indicator)"
            } else {
                "is not a known structure indicator (see ListIndicators)"
            };
            v.push(FieldViolation::new("indicator_id", reason));
        }
        let today = self.now().date_naive();
        let assessed_on = v.check(assessed_on(request.assessed_on.as_ref(), today));
        v.finish(|| ())?;
        match (key, assessed_on) {
            (Some(key), Some(assessed_on)) => Ok((key, assessed_on)),
            _ => unreachable!("no violations means both were valid"),
        }
    }

    /// The current structure indicators of the organisations the caller may
    /// see: its own, those covering any of its areas, or all for national users.
    pub async fn list_structures(
        &self,
        caller: &Caller,
        request: &pb::ListStructureIndicatorsRequest,
    ) -> Result<pb::ListStructureIndicatorsResponse> {
        let scope = Scope::of(caller);
        let visible = |code: &str| {
            code == caller.code()
                || caller.kind() == OrganisationKind::National
                || self
                    .registry
                    .get(code)
                    .is_some_and(|org| org.areas.iter().any(|a| scope.sees_config(a)))
        };
        let mut v = Violations::new();
        let mut denied = Vec::new();
        for (i, code) in request.organisations.iter().enumerate() {
            if self.registry.get(code).is_none() {
                v.push(FieldViolation::new(
                    format!("organisations[{i}]"),
                    "is not a known organisation",
                ));
            } else if !visible(code) {
                denied.push(format!("organisations[{i}]"));
            }
        }
        v.finish(|| ())?;
        refuse(&denied, "not visible to the caller")?;
        let records = store::current_structures(self.db())
            .await?
            .iter()
            .filter(|r| {
                if request.organisations.is_empty() {
                    visible(&r.organisation)
                } else {
                    request.organisations.contains(&r.organisation)
                }
            })
            .map(record_proto)
            .collect();
        Ok(pb::ListStructureIndicatorsResponse { records })
    }
}
