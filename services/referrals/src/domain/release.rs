//! Release notifications: the most important transition. Validated here into a
//! command; the application opens tasks and publishes events from it.

use super::area::Destination;
use super::fields;
use super::health;
use super::person::Person;
use chrono::{DateTime, NaiveDate, Utc};
use throughcare_platform::clock::to_timestamp;
use throughcare_platform::error::Error;
use throughcare_platform::identifiers::PrisonCode;
use throughcare_platform::identity::{AreaType, Caller, Registry};
use throughcare_platform::validation::{FieldViolation, Violations};
use throughcare_proto::referrals::v1 as pb;
use throughcare_proto::types::v1 as types;

/// How far from today a release or transition date may be.
pub const DATE_WINDOW_DAYS: i64 = 366;

#[derive(Debug, Clone)]
pub struct ReleaseNotification {
    pub person: Person,
    pub release_date: NaiveDate,
    pub reason: pb::ReleaseReason,
    pub releasing_prison: String,
    pub destination: Destination,
    pub health: types::HealthSummary,
    /// When supervision is due to end (licence or PSS expiry), if known.
    pub supervision_ends_on: Option<NaiveDate>,
}

/// `supervision_ends_on`, if given: not before the release, and only for a
/// release a probation delivery unit supervises.
fn supervision_end(
    v: &mut Violations,
    given: Option<&types::Date>,
    release_date: Option<NaiveDate>,
    reason: Option<pb::ReleaseReason>,
    destination: Option<&Destination>,
) -> Option<NaiveDate> {
    let end = v
        .check(fields::date(given, "supervision_ends_on"))
        .flatten()?;
    let supervised = reason.and_then(Pathway::of) == Some(Pathway::Community)
        && destination.is_some_and(|d| d.probation_delivery_unit.is_some());
    if release_date.is_some_and(|release| end < release) {
        v.push(FieldViolation::new(
            "supervision_ends_on",
            "is before release_date",
        ));
    } else if reason.is_some() && destination.is_some() && !supervised {
        v.push(FieldViolation::new(
            "supervision_ends_on",
            "is only for a release a probation delivery unit supervises",
        ));
    }
    Some(end)
}

impl ReleaseNotification {
    pub fn validate(
        request: &pb::NotifyReleaseRequest,
        caller: &Caller,
        registry: &Registry,
        today: NaiveDate,
    ) -> Result<Self, Error> {
        let mut v = Violations::new();
        let release_date = v.check(fields::required_date(
            request.release_date.as_ref(),
            "release_date",
        ));
        if let Some(date) = release_date {
            v.check(near(date, today, "release_date"));
        }
        let on = release_date.unwrap_or(today);
        let person = Person::validate(&mut v, request.person.as_ref(), "person", on);
        let reason = v.check(fields::required_enum::<pb::ReleaseReason>(
            request.reason,
            "reason",
        ));
        let prison = v.check(prison_code(&request.releasing_prison, "releasing_prison"));
        let destination = Destination::validate(
            &mut v,
            request.destination.as_ref(),
            "destination",
            registry,
        );
        if reason == Some(pb::ReleaseReason::OnLicence)
            && destination
                .as_ref()
                .is_some_and(|d| d.probation_delivery_unit.is_none())
        {
            v.push(FieldViolation::new(
                "destination.probation_delivery_unit",
                "is required for a release on licence",
            ));
        }
        let health = health::validate(&mut v, request.health.as_ref(), "health", on);
        let ends_on = supervision_end(
            &mut v,
            request.supervision_ends_on.as_ref(),
            release_date,
            reason,
            destination.as_ref(),
        );
        let command = fields::complete(v, || {
            Some(Self {
                person: person?,
                release_date: release_date?,
                reason: reason?,
                releasing_prison: prison?,
                destination: destination?,
                health,
                supervision_ends_on: ends_on,
            })
        })?;
        serves_prison(caller, &command.releasing_prison)?;
        Ok(command)
    }

    /// Whether a probation delivery unit will supervise the person (only
    /// after a release into the community).
    pub fn supervised(&self) -> bool {
        self.pathway() == Some(Pathway::Community)
            && self.destination.probation_delivery_unit.is_some()
    }

    /// The pathway the release opens, if any: see [`Pathway::of`].
    pub fn pathway(&self) -> Option<Pathway> {
        Pathway::of(self.reason)
    }

    /// Who must act on the continuity tasks: the supervising probation delivery
    /// unit, or the releasing prison's healthcare when nobody supervises.
    pub fn responsible(&self) -> String {
        self.destination
            .probation_delivery_unit
            .clone()
            .unwrap_or_else(|| self.releasing_prison.clone())
    }
}

/// Where a release takes the person, which decides the continuity rules
/// that apply and what the indicators count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Pathway {
    /// Into the community, on licence or at sentence end: the community
    /// pathway, a probation spell when supervised, and counted as released.
    Community,
    /// To hospital (e.g. under the Mental Health Act): its own rules, no
    /// probation spell, not a release into the community.
    Hospital,
}

impl Pathway {
    /// The pathway a release reason opens. Temporary absence (ROTL), court
    /// and transfer are not releases into the community: none.
    pub fn of(reason: pb::ReleaseReason) -> Option<Pathway> {
        use pb::ReleaseReason as R;
        match reason {
            R::OnLicence | R::SentenceEnd => Some(Pathway::Community),
            R::ToHospital => Some(Pathway::Hospital),
            R::TemporaryAbsence | R::SentToCourt | R::Transferred | R::Unspecified => None,
        }
    }
}

pub fn prison_code(value: &str, field: &str) -> Result<String, FieldViolation> {
    if value.is_empty() {
        return Err(FieldViolation::missing(field));
    }
    PrisonCode::parse(value)
        .map(|c| c.as_str().to_owned())
        .map_err(|e| FieldViolation::new(field, e.to_string()))
}

/// A date within a year either side of today (later or earlier is a mistake).
pub fn near(date: NaiveDate, today: NaiveDate, field: &str) -> Result<(), FieldViolation> {
    if (date - today).num_days().abs() > DATE_WINDOW_DAYS {
        Err(FieldViolation::new(field, "must be within a year of today"))
    } else {
        Ok(())
    }
}

/// Forbidden unless the caller is, or serves, `prison`.
pub fn serves_prison(caller: &Caller, prison: &str) -> Result<(), Error> {
    let serves = caller.code() == prison
        || caller
            .organisation
            .areas
            .iter()
            .any(|a| a.area_type == AreaType::Prison && a.code == prison);
    if serves {
        Ok(())
    } else {
        Err(Error::Forbidden(format!(
            "organisation {} does not provide healthcare at prison {prison}",
            caller.code()
        )))
    }
}

/// Whether a release or reversal is still current.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReleaseState {
    Notified,
    Reversed,
}

impl ReleaseState {
    pub fn as_str(self) -> &'static str {
        match self {
            ReleaseState::Notified => "notified",
            ReleaseState::Reversed => "reversed",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        [ReleaseState::Notified, ReleaseState::Reversed]
            .into_iter()
            .find(|s| s.as_str() == value)
    }
}

/// A release as stored.
#[derive(Debug, Clone)]
pub struct Release {
    pub release_id: String,
    pub person_key: String,
    pub release_date: NaiveDate,
    pub reason: pb::ReleaseReason,
    pub releasing_prison: String,
    pub destination: Destination,
    pub state: ReleaseState,
    pub notified_by: String,
    pub notified_at: DateTime<Utc>,
    pub reversed_at: Option<DateTime<Utc>>,
}

impl Release {
    /// Who may see it: the notifying organisation, the releasing prison and the
    /// supervising probation delivery unit.
    pub fn visible_to(&self, organisation: &str) -> bool {
        organisation == self.notified_by
            || organisation == self.releasing_prison
            || self.destination.probation_delivery_unit.as_deref() == Some(organisation)
    }

    pub fn to_proto(&self, person: types::PersonIdentifiers) -> pb::Release {
        pb::Release {
            release_id: self.release_id.clone(),
            person: Some(person),
            release_date: Some(fields::date_to_proto(self.release_date)),
            reason: self.reason as i32,
            releasing_prison: self.releasing_prison.clone(),
            destination: Some(self.destination.to_proto()),
            state: match self.state {
                ReleaseState::Notified => pb::ReleaseState::Notified,
                ReleaseState::Reversed => pb::ReleaseState::Reversed,
            } as i32,
            notified_at: Some(to_timestamp(self.notified_at)),
            reversed_at: self.reversed_at.map(to_timestamp),
            notified_by: self.notified_by.clone(),
            deliveries: Vec::new(),
        }
    }
}
