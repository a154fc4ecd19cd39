//! Structure indicators: present or absent, recorded by each organisation
//! about itself only (a mortality review process, pathways into services, an
//! experience survey...). Not about people, so no disclosure control.

use super::query::Scope;
use super::{App, timestamp};
use crate::error::Result;
use crate::store::{self, StructureRow};
use chrono::NaiveDate;
use throughcare_platform::idempotency::{IdempotencyKey, idempotent};
use throughcare_platform::identity::{Caller, OrganisationKind};
use throughcare_platform::validation::{FieldViolation, Violations};
use throughcare_proto::indicators::v1 as pb;
use throughcare_proto::types::v1 as types;
use tonic::Status;

fn record_proto(row: &StructureRow) -> pb::StructureIndicatorRecord {
    pb::StructureIndicatorRecord {
        organisation: row.organisation.clone(),
        indicator_id: row.indicator_id.clone(),
        present: row.present,
        assessed_on: Some(types::Date {
            year: chrono::Datelike::year(&row.assessed_on),
            month: chrono::Datelike::month(&row.assessed_on) as i32,
            day: chrono::Datelike::day(&row.assessed_on) as i32,
        }),
        recorded_at: Some(timestamp(row.recorded_at)),
    }
}

impl App {
    pub async fn record_structure(
        &self,
        caller: &Caller,
        request: &pb::RecordStructureIndicatorRequest,
    ) -> Result<pb::RecordStructureIndicatorResponse> {
        let mut v = Violations::new();
        let key = v.check(IdempotencyKey::new(
            caller.code(),
            "RecordStructureIndicator",
            &request.idempotency_key,
            request,
        ));
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
        let assessed_on = match &request.assessed_on {
            None => {
                v.push(FieldViolation::missing("assessed_on"));
                None
            }
            Some(d) => match u32::try_from(d.month)
                .ok()
                .zip(u32::try_from(d.day).ok())
                .and_then(|(m, day)| NaiveDate::from_ymd_opt(d.year, m, day))
            {
                None => {
                    v.push(FieldViolation::new("assessed_on", "is not a calendar date"));
                    None
                }
                Some(day) if day > today => {
                    v.push(FieldViolation::new("assessed_on", "is in the future"));
                    None
                }
                Some(day) => Some(day),
            },
        };
        let (key, assessed_on) = v.finish(|| (key, assessed_on))?;
        let (Some(key), Some(assessed_on)) = (key, assessed_on) else {
            unreachable!("no violations means both were valid");
        };
        if request.organisation != caller.code() {
            return Err(Status::permission_denied(
                "an organisation records only its own structure indicators",
            )
            .into());
        }
        let row = StructureRow {
            organisation: request.organisation.clone(),
            indicator_id: request.indicator_id.clone(),
            present: request.present,
            assessed_on,
            recorded_at: self.now(),
        };
        idempotent(&self.db, &key, |mut tx| {
            let row = row.clone();
            async move {
                let id = uuid::Uuid::now_v7().to_string();
                store::insert_structure(&mut tx, &id, &row).await?;
                Ok::<_, crate::error::Error>((
                    tx,
                    pb::RecordStructureIndicatorResponse {
                        record: Some(record_proto(&row)),
                    },
                ))
            }
        })
        .await
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
        if !denied.is_empty() {
            return Err(Status::permission_denied(format!(
                "{} not visible to the caller",
                denied.join(", ")
            ))
            .into());
        }
        let records = store::current_structures(&self.db)
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
