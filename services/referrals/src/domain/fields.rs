//! Converting wire fields to domain values once, at the edge, naming the field
//! in every violation.

use chrono::NaiveDate;
use throughcare_platform::clock::from_timestamp;
use throughcare_platform::error::Error;
use throughcare_platform::validation::{FieldViolation, Violations};
use throughcare_proto::types::v1 as pb;

/// Longest free-text field accepted anywhere (rejection reasons, dosages).
pub const MAX_TEXT: usize = 500;
/// Most items accepted in any repeated field.
pub const MAX_ITEMS: usize = 50;

pub fn join(parent: &str, field: &str) -> String {
    if parent.is_empty() {
        field.to_owned()
    } else {
        format!("{parent}.{field}")
    }
}

pub fn date(value: Option<&pb::Date>, field: &str) -> Result<Option<NaiveDate>, FieldViolation> {
    match value {
        None => Ok(None),
        Some(d) => NaiveDate::from_ymd_opt(d.year, d.month as u32, d.day as u32)
            .filter(|_| d.month > 0 && d.day > 0 && (1900..=2200).contains(&d.year))
            .map(Some)
            .ok_or_else(|| FieldViolation::new(field, "is not a real calendar date")),
    }
}

pub fn required_date(value: Option<&pb::Date>, field: &str) -> Result<NaiveDate, FieldViolation> {
    date(value, field)?.ok_or_else(|| FieldViolation::missing(field))
}

pub fn date_to_proto(date: NaiveDate) -> pb::Date {
    use chrono::Datelike;
    pb::Date {
        year: date.year(),
        month: date.month() as i32,
        day: date.day() as i32,
    }
}

/// A proto enum field that must hold a known, specified value.
pub fn required_enum<E>(value: i32, field: &str) -> Result<E, FieldViolation>
where
    E: TryFrom<i32> + PartialEq + Default,
{
    match E::try_from(value) {
        Ok(e) if e != E::default() => Ok(e),
        Ok(_) => Err(FieldViolation::missing(field)),
        Err(_) => Err(FieldViolation::new(field, "is not a known value")),
    }
}

/// Every value of a repeated enum field, each known and specified; a
/// violation for each that is not, naming it (`states[2]`).
pub fn required_enums<E>(v: &mut Violations, values: &[i32], field: &str) -> Vec<E>
where
    E: TryFrom<i32> + PartialEq + Default,
{
    values
        .iter()
        .enumerate()
        .filter_map(|(i, value)| v.check(required_enum(*value, &format!("{field}[{i}]"))))
        .collect()
}

/// A proto enum field that may be unspecified but must be a known value.
pub fn optional_enum<E: TryFrom<i32>>(value: i32, field: &str) -> Result<E, FieldViolation> {
    E::try_from(value).map_err(|_| FieldViolation::new(field, "is not a known value"))
}

/// Free text: at most [`MAX_TEXT`] characters.
pub fn text(value: &str, field: &str) -> Result<Option<String>, FieldViolation> {
    match value.trim() {
        "" => Ok(None),
        t if t.chars().count() > MAX_TEXT => Err(FieldViolation::new(
            field,
            format!("must be at most {MAX_TEXT} characters"),
        )),
        t => Ok(Some(t.to_owned())),
    }
}

pub fn items<T>(values: &[T], field: &str) -> Result<(), FieldViolation> {
    if values.len() > MAX_ITEMS {
        Err(FieldViolation::new(
            field,
            format!("must have at most {MAX_ITEMS} items"),
        ))
    } else {
        Ok(())
    }
}

/// What `built` makes of a request validated into `v`: every violation if
/// there were any; otherwise `built` must have everything it needs.
pub fn complete<T>(v: Violations, built: impl FnOnce() -> Option<T>) -> Result<T, Error> {
    v.finish(built)?
        .ok_or_else(|| Error::internal("validation", "a validated request is incomplete"))
}

/// An optional timestamp field, at microsecond precision.
pub fn timestamp(
    value: Option<&prost_types::Timestamp>,
    field: &str,
) -> Result<Option<chrono::DateTime<chrono::Utc>>, FieldViolation> {
    value.map(|t| from_timestamp(t, field)).transpose()
}
