//! The test population: valid identifiers and dates on the wire.

use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Utc};
use throughcare_platform::identifiers::NhsNumber;
use throughcare_proto::types::v1 as types;

/// The tests' first morning, where every test clock starts: 2 March 2026, 09:00.
pub fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap()
}

/// The first valid NHS number from `from` on (nine digits and a check digit).
pub fn nhs_number(from: u32) -> String {
    (from..)
        .map(|n| format!("{n:09}"))
        .find_map(|prefix| {
            let digits: [u8; 9] = prefix.as_bytes().try_into().expect("nine digits");
            NhsNumber::check_digit(&digits).map(|check| format!("{prefix}{check}"))
        })
        .expect("a valid NHS number")
}

/// A day as the contracts carry it.
pub fn date(day: NaiveDate) -> types::Date {
    types::Date {
        year: day.year(),
        month: day.month() as i32,
        day: day.day() as i32,
    }
}
