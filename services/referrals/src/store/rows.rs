//! Rows as both backends return them, and their mapping to domain values.

use crate::domain::area::Destination;
use crate::domain::referral::ReferralState;
use crate::domain::release::{Release, ReleaseState};
use crate::domain::task::ClosesOn;
use crate::domain::task::{Task, TaskKind, TaskState};
use chrono::{DateTime, NaiveDate, Utc};
use throughcare_platform::clock::to_timestamp;
use throughcare_platform::identifiers::{Crn, NhsNumber, PersonIds, PrisonNumber};
use throughcare_proto::referrals::v1 as pb;
use throughcare_proto::types::v1 as types;

/// A stored value that does not parse: the database was written by something
/// else. Names what was wrong, never the value (it may be an identifier).
#[derive(Debug, thiserror::Error)]
#[error("a stored {what} is not valid")]
pub struct CorruptRow {
    pub what: &'static str,
}

fn corrupt(what: &'static str, _value: &str) -> CorruptRow {
    CorruptRow { what }
}

/// A domain value as read back from its row.
pub trait Stored: Sized {
    type Row: super::Row;

    fn parse(row: Self::Row) -> Result<Self, CorruptRow>;
}

/// Rows parsed into their domain values; the first that does not parse fails all.
pub fn parse_all<T: Stored>(rows: Vec<T::Row>) -> Result<Vec<T>, CorruptRow> {
    rows.into_iter().map(T::parse).collect()
}

/// A proto enum stored by its name.
pub fn enum_name<E: ProtoEnum>(value: E) -> &'static str {
    value.name()
}

pub fn parse_enum<E: ProtoEnum>(what: &'static str, value: &str) -> Result<E, CorruptRow> {
    E::from_name(value).ok_or_else(|| corrupt(what, value))
}

/// The prost enums stored by name.
pub trait ProtoEnum: Sized + Copy {
    fn name(self) -> &'static str;
    fn from_name(name: &str) -> Option<Self>;
}

macro_rules! proto_enum {
    ($($t:ty),*) => {$(
        impl ProtoEnum for $t {
            fn name(self) -> &'static str { self.as_str_name() }
            fn from_name(name: &str) -> Option<Self> { Self::from_str_name(name) }
        }
    )*};
}

proto_enum!(
    types::Sex,
    types::EthnicGroup,
    types::ServiceType,
    pb::ReleaseReason,
    pb::ReversalReason,
    pb::Urgency,
    pb::RejectionReason,
    pb::CancellationReason
);

/// A person's stored identifiers, parsed back into domain types.
pub fn person_ids(
    person_key: &str,
    nhs: &Option<String>,
    noms: &Option<String>,
    crn: &Option<String>,
) -> Result<PersonIds, CorruptRow> {
    fn parse<T, E>(
        value: &Option<String>,
        what: &'static str,
        f: fn(&str) -> Result<T, E>,
    ) -> Result<Option<T>, CorruptRow> {
        value
            .as_deref()
            .map(|v| f(v).map_err(|_| corrupt(what, v)))
            .transpose()
    }
    PersonIds::new(
        parse(nhs, "nhs number", NhsNumber::parse)?,
        parse(noms, "prison number", PrisonNumber::parse)?,
        parse(crn, "crn", Crn::parse)?,
    )
    .map_err(|_| corrupt("person", person_key))
}

#[derive(Debug, sqlx::FromRow)]
pub struct PersonRow {
    pub person_key: String,
    pub nhs_number: Option<String>,
    pub prison_number: Option<String>,
    pub crn: Option<String>,
    pub date_of_birth: Option<NaiveDate>,
    pub sex: String,
    pub ethnic_group: String,
    pub probation_region: Option<String>,
    pub probation_delivery_unit: Option<String>,
    pub integrated_care_board: Option<String>,
    pub local_authority: Option<String>,
    pub prison: Option<String>,
}

impl PersonRow {
    pub fn ids(&self) -> Result<PersonIds, CorruptRow> {
        person_ids(
            &self.person_key,
            &self.nhs_number,
            &self.prison_number,
            &self.crn,
        )
    }

    pub fn placement(&self) -> Destination {
        Destination {
            local_authority: self.local_authority.clone(),
            probation_region: self.probation_region.clone(),
            probation_delivery_unit: self.probation_delivery_unit.clone(),
            integrated_care_board: self.integrated_care_board.clone(),
            approved_premises: None,
        }
    }

    pub fn sex(&self) -> Result<types::Sex, CorruptRow> {
        parse_enum("sex", &self.sex)
    }

    pub fn ethnic_group(&self) -> Result<types::EthnicGroup, CorruptRow> {
        parse_enum("ethnic group", &self.ethnic_group)
    }
}

#[derive(Debug, sqlx::FromRow)]
pub struct ReleaseRow {
    pub release_id: String,
    pub person_key: String,
    pub release_date: NaiveDate,
    pub reason: String,
    pub releasing_prison: String,
    pub local_authority: Option<String>,
    pub probation_region: Option<String>,
    pub probation_delivery_unit: Option<String>,
    pub integrated_care_board: Option<String>,
    pub approved_premises: Option<String>,
    pub state: String,
    pub notified_by: String,
    pub notified_at: DateTime<Utc>,
    pub reversed_at: Option<DateTime<Utc>>,
}

impl Stored for Release {
    type Row = ReleaseRow;

    fn parse(r: ReleaseRow) -> Result<Self, CorruptRow> {
        Ok(Release {
            reason: parse_enum("release reason", &r.reason)?,
            state: ReleaseState::parse(&r.state)
                .ok_or_else(|| corrupt("release state", &r.state))?,
            destination: Destination {
                local_authority: r.local_authority,
                probation_region: r.probation_region,
                probation_delivery_unit: r.probation_delivery_unit,
                integrated_care_board: r.integrated_care_board,
                approved_premises: r.approved_premises,
            },
            release_id: r.release_id,
            person_key: r.person_key,
            release_date: r.release_date,
            releasing_prison: r.releasing_prison,
            notified_by: r.notified_by,
            notified_at: r.notified_at,
            reversed_at: r.reversed_at,
        })
    }
}

#[derive(Debug, sqlx::FromRow)]
pub struct TaskRow {
    pub task_id: String,
    pub release_id: String,
    pub person_key: String,
    pub rule_id: String,
    pub kind: String,
    pub service: Option<String>,
    pub closes_on: Option<String>,
    pub responsible: String,
    pub state: String,
    pub opened_at: DateTime<Utc>,
    pub due_at: DateTime<Utc>,
    pub closed_at: Option<DateTime<Utc>>,
    pub referral_id: Option<String>,
}

impl Stored for Task {
    type Row = TaskRow;

    fn parse(r: TaskRow) -> Result<Self, CorruptRow> {
        Ok(Task {
            kind: TaskKind::parse(&r.kind).ok_or_else(|| corrupt("task kind", &r.kind))?,
            state: TaskState::parse(&r.state).ok_or_else(|| corrupt("task state", &r.state))?,
            service: r
                .service
                .as_deref()
                .map(|s| parse_enum("service", s))
                .transpose()?,
            closes_on: r
                .closes_on
                .as_deref()
                .map(|c| ClosesOn::parse(c).ok_or_else(|| corrupt("closing state", c)))
                .transpose()?,
            task_id: r.task_id,
            release_id: r.release_id,
            person_key: r.person_key,
            rule_id: r.rule_id,
            responsible: r.responsible,
            opened_at: r.opened_at,
            due_at: r.due_at,
            closed_at: r.closed_at,
            referral_id: r.referral_id,
        })
    }
}

/// A referral as stored (identifiers live on the person).
#[derive(Debug, Clone, PartialEq)]
pub struct StoredReferral {
    pub referral_id: String,
    pub person_key: String,
    pub service: types::ServiceType,
    pub referrer: String,
    pub provider: String,
    pub state: ReferralState,
    pub urgency: pb::Urgency,
    pub release_id: Option<String>,
    pub appointment_at: Option<DateTime<Utc>>,
    pub rejection_reason: Option<pb::RejectionReason>,
    pub rejection_text: Option<String>,
    pub cancellation_reason: Option<pb::CancellationReason>,
    pub requested_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
}

#[derive(Debug, sqlx::FromRow)]
pub struct ReferralRow {
    pub referral_id: String,
    pub person_key: String,
    pub service: String,
    pub referrer: String,
    pub provider: String,
    pub state: String,
    pub urgency: String,
    pub release_id: Option<String>,
    pub appointment_at: Option<DateTime<Utc>>,
    pub rejection_reason: Option<String>,
    pub rejection_text: Option<String>,
    pub cancellation_reason: Option<String>,
    pub requested_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
}

impl Stored for StoredReferral {
    type Row = ReferralRow;

    fn parse(r: ReferralRow) -> Result<Self, CorruptRow> {
        Ok(StoredReferral {
            service: parse_enum("service", &r.service)?,
            state: ReferralState::parse(&r.state)
                .ok_or_else(|| corrupt("referral state", &r.state))?,
            urgency: parse_enum("urgency", &r.urgency)?,
            rejection_reason: r
                .rejection_reason
                .as_deref()
                .map(|v| parse_enum("rejection reason", v))
                .transpose()?,
            cancellation_reason: r
                .cancellation_reason
                .as_deref()
                .map(|v| parse_enum("cancellation reason", v))
                .transpose()?,
            referral_id: r.referral_id,
            person_key: r.person_key,
            referrer: r.referrer,
            provider: r.provider,
            release_id: r.release_id,
            appointment_at: r.appointment_at,
            rejection_text: r.rejection_text,
            requested_at: r.requested_at,
            updated_at: r.updated_at,
            version: r.version,
        })
    }
}

#[derive(Debug, sqlx::FromRow)]
pub struct HistoryRow {
    pub from_state: Option<String>,
    pub to_state: String,
    pub actor: String,
    pub at: DateTime<Utc>,
}

impl HistoryRow {
    pub fn to_proto(&self) -> Result<pb::ReferralHistoryEntry, CorruptRow> {
        let state = |s: &str| ReferralState::parse(s).ok_or_else(|| corrupt("referral state", s));
        Ok(pb::ReferralHistoryEntry {
            from_state: self
                .from_state
                .as_deref()
                .map(state)
                .transpose()?
                .map_or(0, |s| s.to_proto() as i32),
            to_state: state(&self.to_state)?.to_proto() as i32,
            actor: self.actor.clone(),
            at: Some(to_timestamp(self.at)),
        })
    }
}
