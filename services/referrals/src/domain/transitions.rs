//! Transitions other than release: receptions, transfers, community sentences
//! with health requirements, approved premises moves, ends of supervision and
//! deaths in the community.

use super::area::Destination;
use super::fields;
use super::person::Person;
use super::release::{near, prison_code, serves_prison};
use chrono::NaiveDate;
use throughcare_platform::error::Error;
use throughcare_platform::identity::{Caller, Registry};
use throughcare_platform::validation::{FieldViolation, Violations};
use throughcare_proto::events::v1::TransitionKind;
use throughcare_proto::referrals::v1 as pb;
use throughcare_proto::types::v1 as types;

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
    /// For a community or suspended sentence order: the day its supervision
    /// is due to end, when known.
    pub ends_on: Option<NaiveDate>,
}

/// What validating a transition needs besides the request.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// Who notifies it (custody moves must come from the prison's healthcare).
    pub caller: &'a Caller,
    pub registry: &'a Registry,
    pub today: NaiveDate,
}

/// A transition being validated: its kind, date and person so far, and every
/// violation found.
struct Draft {
    v: Violations,
    kind: TransitionKind,
    on: Option<NaiveDate>,
    person: Option<Person>,
}

impl Draft {
    /// A transition of `kind` about `person` on the date in `field`: within a
    /// year of today.
    fn new(
        kind: TransitionKind,
        date: Option<&types::Date>,
        field: &str,
        person: Option<&types::PersonDetails>,
        today: NaiveDate,
    ) -> Self {
        let mut v = Violations::new();
        let on = v
            .check(fields::required_date(date, field))
            .filter(|&date| v.check(near(date, today, field)).is_some());
        let person = Person::validate(&mut v, person, "person", on.unwrap_or(today));
        Self {
            v,
            kind,
            on,
            person,
        }
    }

    /// The area probation supervises the person in: it must name a probation
    /// delivery unit.
    fn supervising(
        &mut self,
        area: Option<&types::Destination>,
        field: &str,
        registry: &Registry,
    ) -> Option<Destination> {
        let area = Destination::validate(&mut self.v, area, field, registry)?;
        if area.probation_delivery_unit.is_none() {
            self.v.push(FieldViolation::missing(format!(
                "{field}.probation_delivery_unit"
            )));
            return None;
        }
        Some(area)
    }

    /// The transition, or every violation found.
    fn build(
        self,
        area: Option<Destination>,
        prison: Option<String>,
        details: Option<serde_json::Value>,
        death: Option<pb::DeathCategory>,
    ) -> Result<Transition, Error> {
        let Draft {
            v,
            kind,
            on,
            person,
        } = self;
        fields::complete(v, || {
            Some(Transition {
                kind,
                person: person?,
                occurred_on: on?,
                area: area?,
                prison,
                details: details?,
                death,
                ends_on: None,
            })
        })
    }
}

fn code_name<E>(value: Option<E>, name: fn(&E) -> &'static str) -> Option<&'static str> {
    value.as_ref().map(name)
}

pub fn reception(r: &pb::NotifyReceptionRequest, at: &Context<'_>) -> Result<Transition, Error> {
    let (caller, today) = (at.caller, at.today);
    let mut t = Draft::new(
        TransitionKind::Reception,
        r.received_on.as_ref(),
        "received_on",
        r.person.as_ref(),
        today,
    );
    let prison = t.v.check(prison_code(&r.prison, "prison"));
    let reception_type = t.v.check(fields::required_enum::<pb::ReceptionType>(
        r.reception_type,
        "reception_type",
    ));
    let details = code_name(reception_type, pb::ReceptionType::as_str_name)
        .map(|name| serde_json::json!({ "reception_type": name }));
    let t = t.build(Some(Destination::default()), prison, details, None)?;
    serves_prison(caller, t.prison.as_deref().unwrap_or_default())?;
    Ok(t)
}

pub fn transfer(r: &pb::NotifyTransferRequest, at: &Context<'_>) -> Result<Transition, Error> {
    let (caller, today) = (at.caller, at.today);
    let mut t = Draft::new(
        TransitionKind::Transfer,
        r.transferred_on.as_ref(),
        "transferred_on",
        r.person.as_ref(),
        today,
    );
    let from = t.v.check(prison_code(&r.from_prison, "from_prison"));
    let to = t.v.check(prison_code(&r.to_prison, "to_prison"));
    if from.is_some() && from == to {
        t.v.push(FieldViolation::new(
            "to_prison",
            "must differ from from_prison",
        ));
    }
    let details = from
        .as_ref()
        .map(|from| serde_json::json!({ "from_prison": from }));
    let t = t.build(Some(Destination::default()), to, details, None)?;
    let from = t.details["from_prison"].as_str().unwrap_or_default();
    serves_prison(caller, from)
        .or_else(|_| serves_prison(caller, t.prison.as_deref().unwrap_or_default()))?;
    Ok(t)
}

pub fn community_sentence(
    r: &pb::NotifyCommunitySentenceRequest,
    at: &Context<'_>,
) -> Result<Transition, Error> {
    let (registry, today) = (at.registry, at.today);
    let mut t = Draft::new(
        TransitionKind::CommunitySentence,
        r.start_date.as_ref(),
        "start_date",
        r.person.as_ref(),
        today,
    );
    let v = &mut t.v;
    let end = v
        .check(fields::date(r.end_date.as_ref(), "end_date"))
        .flatten();
    if let (Some(start), Some(end)) = (t.on, end)
        && end < start
    {
        v.push(FieldViolation::new("end_date", "is before start_date"));
    }
    let sentence = v.check(fields::required_enum::<pb::SentenceType>(
        r.sentence_type,
        "sentence_type",
    ));
    let _ = v.check(fields::items(&r.requirements, "requirements"));
    let requirements: Vec<&str> =
        fields::required_enums::<pb::HealthRequirement>(v, &r.requirements, "requirements")
            .iter()
            .map(pb::HealthRequirement::as_str_name)
            .collect();
    let area = t.supervising(r.supervising_area.as_ref(), "supervising_area", registry);
    let details = code_name(sentence, pb::SentenceType::as_str_name).map(|sentence| {
        serde_json::json!({
            "sentence_type": sentence,
            "requirements": requirements,
            "end_date": end.map(|d| d.to_string()),
        })
    });
    let mut transition = t.build(area, None, details, None)?;
    transition.ends_on = end;
    Ok(transition)
}

pub fn approved_premises_move(
    r: &pb::NotifyApprovedPremisesMoveRequest,
    at: &Context<'_>,
) -> Result<Transition, Error> {
    let (registry, today) = (at.registry, at.today);
    let mut t = Draft::new(
        TransitionKind::ApprovedPremisesMove,
        r.moved_on.as_ref(),
        "moved_on",
        r.person.as_ref(),
        today,
    );
    let area = t.supervising(r.destination.as_ref(), "destination", registry);
    if area.as_ref().is_some_and(|a| a.approved_premises.is_none()) {
        t.v.push(FieldViolation::missing("destination.approved_premises"));
    }
    t.build(area, None, Some(serde_json::json!({})), None)
}

pub fn supervision_end(
    r: &pb::NotifySupervisionEndRequest,
    at: &Context<'_>,
) -> Result<Transition, Error> {
    let (registry, today) = (at.registry, at.today);
    let mut t = Draft::new(
        TransitionKind::SupervisionEnd,
        r.ended_on.as_ref(),
        "ended_on",
        r.person.as_ref(),
        today,
    );
    let reason = t.v.check(fields::required_enum::<pb::SupervisionEndReason>(
        r.reason, "reason",
    ));
    let area = t.supervising(r.supervising_area.as_ref(), "supervising_area", registry);
    let details = code_name(reason, pb::SupervisionEndReason::as_str_name)
        .map(|reason| serde_json::json!({ "reason": reason }));
    t.build(area, None, details, None)
}

pub fn death(r: &pb::NotifyDeathRequest, at: &Context<'_>) -> Result<Transition, Error> {
    let (registry, today) = (at.registry, at.today);
    let mut t = Draft::new(
        TransitionKind::Death,
        r.date_of_death.as_ref(),
        "date_of_death",
        r.person.as_ref(),
        today,
    );
    if t.on.is_some_and(|d| d > today) {
        t.v.push(FieldViolation::new("date_of_death", "is in the future"));
    }
    let category = t.v.check(fields::required_enum::<pb::DeathCategory>(
        r.category, "category",
    ));
    let area = t.supervising(r.supervising_area.as_ref(), "supervising_area", registry);
    let details = code_name(category, pb::DeathCategory::as_str_name)
        .map(|category| serde_json::json!({ "category": category }));
    t.build(area, None, details, category)
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
