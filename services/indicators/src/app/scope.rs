//! What a caller may see, and which published cells a reading request
//! selects: a commissioner sees only their own areas (and a region's delivery
//! units), national users see all.

use super::App;
use crate::domain::area::{Area, AreaKind};
use crate::domain::period::Period;
use crate::domain::stratum;
use crate::store::{self, CellFilter};
use std::collections::BTreeSet;
use throughcare_platform::error::{Error, Result};
use throughcare_platform::identity::{AreaConfig, Caller, OrganisationKind};
use throughcare_platform::validation::{FieldViolation, Violations};
use throughcare_proto::indicators::v1 as pb;
use throughcare_proto::types::v1 as types;

/// What a caller may see.
#[derive(Debug, Clone)]
pub(super) struct Scope {
    national: bool,
    areas: BTreeSet<Area>,
    /// Regions whose delivery units the caller also sees.
    regions: Vec<String>,
}

impl Scope {
    pub(super) fn of(caller: &Caller) -> Self {
        let areas: BTreeSet<Area> = caller.organisation.areas.iter().map(area_of).collect();
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
    pub(super) fn sees_config(&self, area: &AreaConfig) -> bool {
        self.sees(&area_of(area), None)
    }

    fn sees(&self, area: &Area, region: Option<&str>) -> bool {
        self.national
            || self.areas.contains(area)
            || (area.kind == AreaKind::ProbationDeliveryUnit
                && region.is_some_and(|r| self.regions.iter().any(|own| own == r)))
    }
}

/// An area as configured for an organisation.
fn area_of(area: &AreaConfig) -> Area {
    Area {
        kind: AreaKind::from_config(area.area_type),
        code: area.code.as_str().into(),
    }
}

/// PERMISSION_DENIED naming each field the caller may not see, if any.
pub(super) fn refuse(denied: &[String], why: &str) -> Result<()> {
    if denied.is_empty() {
        Ok(())
    } else {
        Err(Error::Forbidden(format!("{} {why}", denied.join(", "))))
    }
}

/// The filters a reading request names; an empty one means "any".
#[derive(Debug, Clone, Copy)]
pub(super) struct Wanted<'a> {
    indicator_ids: &'a [String],
    areas: &'a [types::Area],
    periods: &'a [types::Period],
    strata: &'a [i32],
}

impl<'a> Wanted<'a> {
    fn new(
        ids: &'a [String],
        areas: &'a [types::Area],
        periods: &'a [types::Period],
        strata: &'a [i32],
    ) -> Self {
        Self {
            indicator_ids: ids,
            areas,
            periods,
            strata,
        }
    }

    /// Only areas (a watcher's filter).
    pub(super) fn areas(areas: &'a [types::Area]) -> Self {
        Self::new(&[], areas, &[], &[])
    }
}

impl<'a> From<&'a pb::QueryIndicatorsRequest> for Wanted<'a> {
    fn from(r: &'a pb::QueryIndicatorsRequest) -> Self {
        Self::new(&r.indicator_ids, &r.areas, &r.periods, &r.strata)
    }
}

impl<'a> From<&'a pb::ExportIndicatorsCsvRequest> for Wanted<'a> {
    fn from(r: &'a pb::ExportIndicatorsCsvRequest) -> Self {
        Self::new(&r.indicator_ids, &r.areas, &r.periods, &r.strata)
    }
}

impl App {
    /// Areas anyone could ask about: what was observed or configured (and the
    /// region of an observed delivery unit).
    fn known(&self, area: &Area) -> (bool, Option<String>) {
        let core = self.core();
        let areas = core.areas();
        let region = areas
            .id(area)
            .and_then(|id| areas.region_of(id))
            .map(|r| areas.get(r).code.to_string());
        let known = areas.id(area).is_some()
            || self
                .registry
                .organisations()
                .any(|o| o.areas.iter().any(|a| area_of(a) == *area));
        (known, region)
    }

    /// Checks a request's filters; the caller's own areas when it names none.
    pub(super) async fn select(&self, caller: &Caller, wanted: Wanted<'_>) -> Result<CellFilter> {
        let scope = Scope::of(caller);
        let mut v = Violations::new();
        self.check_indicators(wanted.indicator_ids, &mut v);
        let periods = period_ids(wanted.periods, &mut v);
        let strata = stratum_values(wanted.strata, &mut v);
        let (areas, denied) = self.check_areas(&scope, wanted.areas, &mut v).await?;
        v.finish(|| ())?;
        refuse(&denied, "not among the caller's areas")?;
        let (areas, regions) = match (wanted.areas.is_empty(), scope.national) {
            (false, _) => (Some(areas), Vec::new()),
            (true, true) => (None, Vec::new()),
            (true, false) => (
                Some(
                    scope
                        .areas
                        .iter()
                        .map(|a| (a.kind.number(), a.code.to_string()))
                        .collect(),
                ),
                scope.regions,
            ),
        };
        Ok(CellFilter {
            indicator_ids: wanted.indicator_ids.to_vec(),
            areas,
            regions,
            periods,
            strata,
            ..CellFilter::default()
        })
    }

    fn check_indicators(&self, indicator_ids: &[String], v: &mut Violations) {
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
    }

    /// The requested areas (type number, code) the caller may see, and the
    /// fields of those it may not.
    async fn check_areas(
        &self,
        scope: &Scope,
        areas: &[types::Area],
        v: &mut Violations,
    ) -> Result<(Vec<(i16, String)>, Vec<String>)> {
        let published = if areas.is_empty() {
            Vec::new()
        } else {
            store::published_areas(self.db()).await?
        };
        let mut wanted = Vec::new();
        let mut denied = Vec::new();
        for (i, a) in areas.iter().enumerate() {
            let field = format!("areas[{i}]");
            let area = match requested_area(a) {
                Ok(area) => area,
                Err(violation) => {
                    v.push(violation.within(&field));
                    continue;
                }
            };
            let (known, region) = self.known(&area);
            let kind = area.kind.number();
            let known = known
                || area.kind == AreaKind::National
                || published.iter().any(|(t, c)| *t == kind && *c == a.code);
            if !known {
                v.push(FieldViolation::new(
                    format!("{field}.code"),
                    "is not a known area",
                ));
            } else if scope.sees(&area, region.as_deref()) {
                wanted.push((kind, a.code.clone()));
            } else {
                denied.push(field);
            }
        }
        Ok((wanted, denied))
    }
}

/// An area as a request names it, if its type and code are well formed.
fn requested_area(a: &types::Area) -> Result<Area, FieldViolation> {
    let kind = types::AreaType::try_from(a.r#type)
        .ok()
        .and_then(AreaKind::from_proto)
        .ok_or_else(|| FieldViolation::new("type", "must be a known area type"))?;
    kind.check(&a.code)
        .map_err(|reason| FieldViolation::new("code", reason))?;
    Ok(Area {
        kind,
        code: a.code.as_str().into(),
    })
}

fn period_ids(periods: &[types::Period], v: &mut Violations) -> Vec<i32> {
    let mut ids = Vec::new();
    for (i, p) in periods.iter().enumerate() {
        match Period::from_proto(p) {
            Ok(p) => ids.push(p.id() as i32),
            Err(reason) => v.push(FieldViolation::new(format!("periods[{i}]"), reason)),
        }
    }
    ids
}

/// Every stratum of the requested splits; the whole population when none.
fn stratum_values(strata: &[i32], v: &mut Violations) -> Vec<i16> {
    if strata.is_empty() {
        return vec![i16::from(stratum::ALL)];
    }
    let mut values = Vec::new();
    for (i, s) in strata.iter().enumerate() {
        match pb::StratumType::try_from(*s) {
            Ok(t) if t != pb::StratumType::Unspecified => {
                values.extend(stratum::of_type(t).map(i16::from))
            }
            _ => v.push(FieldViolation::new(
                format!("strata[{i}]"),
                "must be all, sex, age band, ethnic group, sex by ethnic group or sex by age band",
            )),
        }
    }
    values
}
