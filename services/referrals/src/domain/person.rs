//! The person a transition or referral is about.

use super::fields::{self, join};
use chrono::{Datelike, NaiveDate};
use throughcare_platform::identifiers::PersonIds;
use throughcare_platform::validation::{FieldViolation, Violations};
use throughcare_proto::types::v1 as pb;

#[derive(Debug, Clone, PartialEq)]
pub struct Person {
    pub ids: PersonIds,
    pub date_of_birth: Option<NaiveDate>,
    pub sex: pb::Sex,
    pub ethnic_group: pb::EthnicGroup,
}

impl Person {
    /// Validates `field` (a `PersonDetails`) as known on `on`.
    pub fn validate(
        v: &mut Violations,
        details: Option<&pb::PersonDetails>,
        field: &str,
        on: NaiveDate,
    ) -> Option<Self> {
        let Some(details) = details else {
            v.push(FieldViolation::missing(field));
            return None;
        };
        let ids = Self::ids(v, details.identifiers.as_ref(), &join(field, "identifiers"));
        let dob_field = join(field, "date_of_birth");
        let date_of_birth = v
            .check(fields::date(details.date_of_birth.as_ref(), &dob_field))
            .flatten();
        if let Some(dob) = date_of_birth {
            if dob > on {
                v.push(FieldViolation::new(
                    &dob_field,
                    "is after the date of the event",
                ));
            } else if on.year() - dob.year() > 120 {
                v.push(FieldViolation::new(
                    &dob_field,
                    "is more than 120 years before the event",
                ));
            }
        }
        let sex = v.check(fields::optional_enum(details.sex, &join(field, "sex")));
        let ethnic_group = v.check(fields::optional_enum(
            details.ethnic_group,
            &join(field, "ethnic_group"),
        ));
        Some(Self {
            ids: ids?,
            date_of_birth,
            sex: sex?,
            ethnic_group: ethnic_group?,
        })
    }

    /// Validates a bare `PersonIdentifiers` field.
    pub fn ids(
        v: &mut Violations,
        ids: Option<&pb::PersonIdentifiers>,
        field: &str,
    ) -> Option<PersonIds> {
        match ids {
            None => {
                v.push(FieldViolation::missing(field));
                None
            }
            Some(ids) => v.check(PersonIds::from_proto(ids).map_err(|e| e.within(field))),
        }
    }

    /// The indicator age band on `on`; unspecified when the date of birth is
    /// unknown or the person is under 18.
    pub fn age_band(&self, on: NaiveDate) -> pb::AgeBand {
        pb::AgeBand::on(self.date_of_birth, on)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn details(dob: Option<pb::Date>) -> pb::PersonDetails {
        pb::PersonDetails {
            identifiers: Some(pb::PersonIdentifiers {
                nhs_number: "943 476 5919".into(),
                ..Default::default()
            }),
            date_of_birth: dob,
            sex: pb::Sex::Female as i32,
            ethnic_group: pb::EthnicGroup::Black as i32,
        }
    }

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn age_bands_include_fifty_and_over() {
        let mut v = Violations::new();
        let dob = pb::Date {
            year: 1975,
            month: 6,
            day: 1,
        };
        let person =
            Person::validate(&mut v, Some(&details(Some(dob))), "person", day(2026, 1, 1)).unwrap();
        assert_eq!(
            person.age_band(day(2025, 5, 31)),
            pb::AgeBand::AgeBand35To49
        );
        assert_eq!(
            person.age_band(day(2025, 6, 1)),
            pb::AgeBand::AgeBand50AndOver
        );
    }

    #[test]
    fn impossible_dates_and_missing_identifiers_are_named() {
        let mut v = Violations::new();
        let future = pb::Date {
            year: 2030,
            month: 1,
            day: 1,
        };
        assert!(
            Person::validate(
                &mut v,
                Some(&details(Some(future))),
                "person",
                day(2026, 1, 1)
            )
            .is_some()
        );
        let mut no_ids = details(None);
        no_ids.identifiers = Some(pb::PersonIdentifiers::default());
        assert!(Person::validate(&mut v, Some(&no_ids), "person", day(2026, 1, 1)).is_none());
        let not_a_day = pb::Date {
            year: 2001,
            month: 2,
            day: 30,
        };
        Person::validate(
            &mut v,
            Some(&details(Some(not_a_day))),
            "person",
            day(2026, 1, 1),
        );
        let invalid = v.finish(|| ()).unwrap_err();
        let fields: Vec<String> = invalid
            .violations()
            .iter()
            .map(|f| f.field.clone())
            .collect();
        assert_eq!(
            fields,
            [
                "person.date_of_birth",
                "person.identifiers",
                "person.date_of_birth"
            ]
        );
    }
}
