//! Transitions other than release: receptions, transfers, community sentences
//! with health requirements, approved premises moves, ends of supervision and
//! deaths in the community.

use super::area::Destination;
use super::fields;
use super::person::Person;
use super::release::{near, prison_code, serves_prison};
use chrono::NaiveDate;
use throughcare_platform::identity::{Caller, Registry};
use throughcare_platform::validation::{FieldViolation, Violations};
use throughcare_proto::events::v1::TransitionKind;
use throughcare_proto::referrals::v1 as pb;
use tonic::Status;

/// A validated transition, whatever its kind.
#[derive(Debug, Clone)]
pub struct Transition {
    pub kind: TransitionKind,
    pub person: Person,
    pub occurred_on: NaiveDate,
    /// Where the transition places the person (empty for custody moves).
    pub area: Destination,
    /// The prison, for receptions and transfers (the receiving prison).
    pub prison: Option<String>,
    /// Kind-specific codes, kept for the record (never free text).
    pub details: serde_json::Value,
    /// Set for deaths: the classification.
    pub death: Option<pb::DeathCategory>,
}

fn finish(v: Violations, built: impl FnOnce() -> Option<Transition>) -> Result<Transition, Status> {
    v.finish(built)?
        .ok_or_else(|| Status::internal("validated transition is incomplete"))
}

fn dated(
    v: &mut Violations,
    date: Option<&throughcare_proto::types::v1::Date>,
    field: &str,
    today: NaiveDate,
) -> Option<NaiveDate> {
    let date = v.check(fields::required_date(date, field))?;
    v.check(near(date, today, field)).map(|_| date)
}

pub fn reception(
    r: &pb::NotifyReceptionRequest,
    caller: &Caller,
    today: NaiveDate,
) -> Result<Transition, Status> {
    let mut v = Violations::new();
    let on = dated(&mut v, r.received_on.as_ref(), "received_on", today);
    let person = Person::validate(&mut v, r.person.as_ref(), "person", on.unwrap_or(today));
    let prison = v.check(prison_code(&r.prison, "prison"));
    let reception_type = v.check(fields::required_enum::<pb::ReceptionType>(
        r.reception_type,
        "reception_type",
    ));
    let t = finish(v, || {
        Some(Transition {
            kind: TransitionKind::Reception,
            person: person?,
            occurred_on: on?,
            area: Destination::default(),
            prison: Some(prison?),
            details: serde_json::json!({ "reception_type": reception_type?.as_str_name() }),
            death: None,
        })
    })?;
    serves_prison(caller, t.prison.as_deref().unwrap_or_default())?;
    Ok(t)
}

pub fn transfer(
    r: &pb::NotifyTransferRequest,
    caller: &Caller,
    today: NaiveDate,
) -> Result<Transition, Status> {
    let mut v = Violations::new();
    let on = dated(&mut v, r.transferred_on.as_ref(), "transferred_on", today);
    let person = Person::validate(&mut v, r.person.as_ref(), "person", on.unwrap_or(today));
    let from = v.check(prison_code(&r.from_prison, "from_prison"));
    let to = v.check(prison_code(&r.to_prison, "to_prison"));
    if from.is_some() && from == to {
        v.push(FieldViolation::new(
            "to_prison",
            "must differ from from_prison",
        ));
    }
    let t = finish(v, || {
        let from = from?;
        Some(Transition {
            kind: TransitionKind::Transfer,
            person: person?,
            occurred_on: on?,
            area: Destination::default(),
            details: serde_json::json!({ "from_prison": from }),
            prison: Some(to?),
            death: None,
        })
    })?;
    let from = t.details["from_prison"].as_str().unwrap_or_default();
    serves_prison(caller, from)
        .or_else(|_| serves_prison(caller, t.prison.as_deref().unwrap_or_default()))?;
    Ok(t)
}

fn supervising(
    v: &mut Violations,
    area: Option<&throughcare_proto::types::v1::Destination>,
    field: &str,
    registry: &Registry,
) -> Option<Destination> {
    let area = Destination::validate(v, area, field, registry)?;
    if area.probation_delivery_unit.is_none() {
        v.push(FieldViolation::missing(format!(
            "{field}.probation_delivery_unit"
        )));
        return None;
    }
    Some(area)
}

pub fn community_sentence(
    r: &pb::NotifyCommunitySentenceRequest,
    registry: &Registry,
    today: NaiveDate,
) -> Result<Transition, Status> {
    let mut v = Violations::new();
    let start = dated(&mut v, r.start_date.as_ref(), "start_date", today);
    let end = v
        .check(fields::date(r.end_date.as_ref(), "end_date"))
        .flatten();
    if let (Some(start), Some(end)) = (start, end)
        && end < start
    {
        v.push(FieldViolation::new("end_date", "is before start_date"));
    }
    let person = Person::validate(&mut v, r.person.as_ref(), "person", start.unwrap_or(today));
    let sentence = v.check(fields::required_enum::<pb::SentenceType>(
        r.sentence_type,
        "sentence_type",
    ));
    let _ = v.check(fields::items(&r.requirements, "requirements"));
    let requirements: Vec<&str> = r
        .requirements
        .iter()
        .enumerate()
        .filter_map(|(i, req)| {
            v.check(fields::required_enum::<pb::HealthRequirement>(
                *req,
                &format!("requirements[{i}]"),
            ))
        })
        .map(|req| req.as_str_name())
        .collect();
    let area = supervising(
        &mut v,
        r.supervising_area.as_ref(),
        "supervising_area",
        registry,
    );
    finish(v, || {
        Some(Transition {
            kind: TransitionKind::CommunitySentence,
            person: person?,
            occurred_on: start?,
            area: area?,
            prison: None,
            details: serde_json::json!({
                "sentence_type": sentence?.as_str_name(),
                "requirements": requirements,
                "end_date": end.map(|d| d.to_string()),
            }),
            death: None,
        })
    })
}

pub fn approved_premises_move(
    r: &pb::NotifyApprovedPremisesMoveRequest,
    registry: &Registry,
    today: NaiveDate,
) -> Result<Transition, Status> {
    let mut v = Violations::new();
    let on = dated(&mut v, r.moved_on.as_ref(), "moved_on", today);
    let person = Person::validate(&mut v, r.person.as_ref(), "person", on.unwrap_or(today));
    let area = supervising(&mut v, r.destination.as_ref(), "destination", registry);
    if area.as_ref().is_some_and(|a| a.approved_premises.is_none()) {
        v.push(FieldViolation::missing("destination.approved_premises"));
    }
    finish(v, || {
        Some(Transition {
            kind: TransitionKind::ApprovedPremisesMove,
            person: person?,
            occurred_on: on?,
            area: area?,
            prison: None,
            details: serde_json::json!({}),
            death: None,
        })
    })
}

pub fn supervision_end(
    r: &pb::NotifySupervisionEndRequest,
    registry: &Registry,
    today: NaiveDate,
) -> Result<Transition, Status> {
    let mut v = Violations::new();
    let on = dated(&mut v, r.ended_on.as_ref(), "ended_on", today);
    let person = Person::validate(&mut v, r.person.as_ref(), "person", on.unwrap_or(today));
    let reason = v.check(fields::required_enum::<pb::SupervisionEndReason>(
        r.reason, "reason",
    ));
    let area = supervising(
        &mut v,
        r.supervising_area.as_ref(),
        "supervising_area",
        registry,
    );
    finish(v, || {
        Some(Transition {
            kind: TransitionKind::SupervisionEnd,
            person: person?,
            occurred_on: on?,
            area: area?,
            prison: None,
            details: serde_json::json!({ "reason": reason?.as_str_name() }),
            death: None,
        })
    })
}

pub fn death(
    r: &pb::NotifyDeathRequest,
    registry: &Registry,
    today: NaiveDate,
) -> Result<Transition, Status> {
    let mut v = Violations::new();
    let on = dated(&mut v, r.date_of_death.as_ref(), "date_of_death", today);
    if on.is_some_and(|d| d > today) {
        v.push(FieldViolation::new("date_of_death", "is in the future"));
    }
    let person = Person::validate(&mut v, r.person.as_ref(), "person", on.unwrap_or(today));
    let category = v.check(fields::required_enum::<pb::DeathCategory>(
        r.category, "category",
    ));
    let area = supervising(
        &mut v,
        r.supervising_area.as_ref(),
        "supervising_area",
        registry,
    );
    finish(v, || {
        let category = category?;
        Some(Transition {
            kind: TransitionKind::Death,
            person: person?,
            occurred_on: on?,
            area: area?,
            prison: None,
            details: serde_json::json!({ "category": category.as_str_name() }),
            death: Some(category),
        })
    })
}

pub fn kind_name(kind: TransitionKind) -> &'static str {
    match kind {
        TransitionKind::Reception => "reception",
        TransitionKind::Transfer => "transfer",
        TransitionKind::CommunitySentence => "community_sentence",
        TransitionKind::ApprovedPremisesMove => "approved_premises_move",
        TransitionKind::SupervisionEnd => "supervision_end",
        TransitionKind::Death => "death",
        TransitionKind::Unspecified => "unspecified",
    }
}
