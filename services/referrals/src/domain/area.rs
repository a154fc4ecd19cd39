//! Where a person is placed: validated codes, checked against the registry
//! where the registry is the authority (probation delivery units and regions).

use super::fields::{self, join};
use super::person::Person;
use super::release::near;
use chrono::NaiveDate;
use throughcare_platform::identifiers::{
    IdentifierError, LocalAuthorityCode, OdsCode, OrganisationCode,
};
use throughcare_platform::identity::{AreaType, OrganisationKind, Registry};
use throughcare_platform::validation::{FieldViolation, Violations};
use throughcare_proto::events::v1::ObservationAreas;
use throughcare_proto::types::v1 as pb;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Destination {
    pub local_authority: Option<String>,
    pub probation_region: Option<String>,
    pub probation_delivery_unit: Option<String>,
    pub integrated_care_board: Option<String>,
    pub approved_premises: Option<String>,
}

/// `code` (in `field.name`) must be a registered probation organisation.
fn probation(
    registry: &Registry,
    code: &str,
    field: &str,
    name: &str,
) -> Result<(), FieldViolation> {
    match registry.get(code) {
        Some(org) if org.kind == OrganisationKind::Probation => Ok(()),
        Some(_) => Err(FieldViolation::new(
            join(field, name),
            "is not a probation organisation",
        )),
        None => Err(FieldViolation::new(
            join(field, name),
            "is not a known organisation",
        )),
    }
}

impl Destination {
    /// Validates a `Destination` field. A probation delivery unit must be a
    /// registered probation organisation; its region, when not given, is the
    /// one the registry records for it.
    pub fn validate(
        v: &mut Violations,
        d: Option<&pb::Destination>,
        field: &str,
        registry: &Registry,
    ) -> Option<Self> {
        let Some(d) = d else {
            return Some(Self::default());
        };
        let mut ok = true;
        let mut check = |result: Result<(), FieldViolation>| {
            if let Err(violation) = result {
                v.push(violation);
                ok = false;
            }
        };
        let code = |value: &str, name: &str, parse: fn(&str) -> Result<(), IdentifierError>| {
            if value.is_empty() {
                return Ok(());
            }
            parse(value).map_err(|e| FieldViolation::new(join(field, name), e.to_string()))
        };
        check(code(&d.local_authority, "local_authority", |c| {
            LocalAuthorityCode::parse(c).map(drop)
        }));
        check(code(
            &d.integrated_care_board,
            "integrated_care_board",
            |c| OdsCode::parse(c).map(drop),
        ));
        check(code(&d.approved_premises, "approved_premises", |c| {
            OrganisationCode::parse(c).map(drop)
        }));
        let non_empty = |s: &str| (!s.is_empty()).then(|| s.to_owned());
        let pdu = non_empty(&d.probation_delivery_unit);
        if let Some(pdu) = &pdu {
            check(probation(registry, pdu, field, "probation_delivery_unit"));
        }
        let mut region = non_empty(&d.probation_region);
        if let Some(region) = &region {
            check(probation(registry, region, field, "probation_region"));
        } else if let Some(org) = pdu.as_deref().and_then(|p| registry.get(p)) {
            region = org
                .areas
                .iter()
                .find(|a| a.area_type == AreaType::ProbationRegion)
                .map(|a| a.code.clone());
        }
        ok.then(|| Self {
            local_authority: non_empty(&d.local_authority),
            probation_region: region,
            probation_delivery_unit: pdu,
            integrated_care_board: non_empty(&d.integrated_care_board),
            approved_premises: non_empty(&d.approved_premises),
        })
    }

    pub fn to_proto(&self) -> pb::Destination {
        let s = |o: &Option<String>| o.clone().unwrap_or_default();
        pb::Destination {
            local_authority: s(&self.local_authority),
            probation_region: s(&self.probation_region),
            probation_delivery_unit: s(&self.probation_delivery_unit),
            integrated_care_board: s(&self.integrated_care_board),
            approved_premises: s(&self.approved_premises),
        }
    }

    /// The areas an observation about a person placed here counts towards.
    pub fn observation_areas(&self, prison: Option<&str>) -> ObservationAreas {
        let s = |o: &Option<String>| o.clone().unwrap_or_default();
        ObservationAreas {
            probation_region: s(&self.probation_region),
            probation_delivery_unit: s(&self.probation_delivery_unit),
            integrated_care_board: s(&self.integrated_care_board),
            local_authority: s(&self.local_authority),
            prison: prison.unwrap_or_default().to_owned(),
        }
    }
}

/// What probation records about a person on a day (an assessment, a
/// self-report), validated into `v`: the day (in `date_field`; not in the
/// future, within a year), the person as known then, and the supervising
/// area, whose probation delivery unit is required.
pub fn probation_record(
    v: &mut Violations,
    (date, date_field): (Option<&pb::Date>, &str),
    person: Option<&pb::PersonDetails>,
    area: Option<&pb::Destination>,
    registry: &Registry,
    today: NaiveDate,
) -> (Option<NaiveDate>, Option<Person>, Option<Destination>) {
    let on = v.check(fields::required_date(date, date_field));
    if let Some(date) = on {
        if date > today {
            v.push(FieldViolation::new(date_field, "is in the future"));
        } else {
            v.check(near(date, today, date_field));
        }
    }
    let person = Person::validate(v, person, "person", on.unwrap_or(today));
    let area = Destination::validate(v, area, "area", registry);
    if area
        .as_ref()
        .is_some_and(|a| a.probation_delivery_unit.is_none())
    {
        v.push(FieldViolation::missing("area.probation_delivery_unit"));
    }
    (on, person, area)
}
