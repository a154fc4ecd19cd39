//! Reporting periods: calendar months and quarters (January to March is
//! quarter 1), numbered so the aggregation core can pack them into keys.

use chrono::{Datelike, NaiveDate};
use std::fmt;
use throughcare_proto::types::v1 as pb;

/// The earliest and latest years a period may be in.
pub const YEARS: std::ops::RangeInclusive<i32> = 1990..=2200;

const QUARTER_FLAG: u32 = 1 << 17;

/// A month or a quarter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Period {
    /// `index` is `year * 12 + month - 1`.
    Month(u32),
    /// `index` is `year * 4 + quarter - 1`.
    Quarter(u32),
}

impl Period {
    pub fn month(year: i32, month: u32) -> Self {
        Period::Month(year as u32 * 12 + month - 1)
    }

    pub fn quarter(year: i32, quarter: u32) -> Self {
        Period::Quarter(year as u32 * 4 + quarter - 1)
    }

    /// The month a date falls in (its year must be in [`YEARS`]).
    pub fn month_of(date: NaiveDate) -> Self {
        Self::month(date.year(), date.month())
    }

    /// The index of the month a date falls in ([`Period::Month`]'s).
    pub fn month_index_of(date: NaiveDate) -> u32 {
        date.year() as u32 * 12 + date.month0()
    }

    /// The quarter a month index falls in.
    pub fn quarter_of_month(month: u32) -> Self {
        Period::Quarter(month / 3)
    }

    /// A compact number (18 bits) that also says which kind of period it is.
    pub fn id(self) -> u32 {
        match self {
            Period::Month(i) => i,
            Period::Quarter(i) => QUARTER_FLAG | i,
        }
    }

    pub fn from_id(id: u32) -> Self {
        if id & QUARTER_FLAG != 0 {
            Period::Quarter(id & !QUARTER_FLAG)
        } else {
            Period::Month(id)
        }
    }

    pub fn year(self) -> i32 {
        match self {
            Period::Month(i) => (i / 12) as i32,
            Period::Quarter(i) => (i / 4) as i32,
        }
    }

    /// The month (1 to 12) or quarter (1 to 4) within the year.
    pub fn number(self) -> u32 {
        match self {
            Period::Month(i) => i % 12 + 1,
            Period::Quarter(i) => i % 4 + 1,
        }
    }

    pub fn is_quarter(self) -> bool {
        matches!(self, Period::Quarter(_))
    }

    /// The month indices the period spans.
    pub fn months(self) -> std::ops::Range<u32> {
        match self {
            Period::Month(i) => i..i + 1,
            Period::Quarter(i) => i * 3..i * 3 + 3,
        }
    }

    /// Whether the month with this index falls in the period.
    #[inline]
    pub fn contains_month(self, month: u32) -> bool {
        match self {
            Period::Month(i) => i == month,
            Period::Quarter(i) => month / 3 == i,
        }
    }

    /// The first day after the period.
    pub fn end(self) -> NaiveDate {
        let next = self.months().end;
        NaiveDate::from_ymd_opt((next / 12) as i32, next % 12 + 1, 1).expect("a month start")
    }

    pub fn to_proto(self) -> pb::Period {
        pb::Period {
            granularity: if self.is_quarter() {
                pb::PeriodGranularity::Quarter
            } else {
                pb::PeriodGranularity::Month
            } as i32,
            year: self.year(),
            number: self.number() as i32,
        }
    }

    /// A period from a request; the error says what is wrong with it.
    pub fn from_proto(period: &pb::Period) -> Result<Self, String> {
        if !YEARS.contains(&period.year) {
            return Err(format!(
                "year must be from {} to {}",
                YEARS.start(),
                YEARS.end()
            ));
        }
        let number = u32::try_from(period.number).unwrap_or(0);
        match pb::PeriodGranularity::try_from(period.granularity) {
            Ok(pb::PeriodGranularity::Month) if (1..=12).contains(&number) => {
                Ok(Self::month(period.year, number))
            }
            Ok(pb::PeriodGranularity::Month) => Err("a month is numbered 1 to 12".into()),
            Ok(pb::PeriodGranularity::Quarter) if (1..=4).contains(&number) => {
                Ok(Self::quarter(period.year, number))
            }
            Ok(pb::PeriodGranularity::Quarter) => Err("a quarter is numbered 1 to 4".into()),
            _ => Err("granularity must be month or quarter".into()),
        }
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Period::Month(_) => write!(f, "{}-{:02}", self.year(), self.number()),
            Period::Quarter(_) => write!(f, "{}-Q{}", self.year(), self.number()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_and_quarters_round_trip() {
        let march = Period::month_of(NaiveDate::from_ymd_opt(2026, 3, 31).unwrap());
        assert_eq!(march.to_string(), "2026-03");
        assert_eq!(Period::from_id(march.id()), march);
        let q1 = Period::quarter_of_month(march.months().start);
        assert_eq!(q1.to_string(), "2026-Q1");
        assert_eq!(Period::from_id(q1.id()), q1);
        assert!(q1.contains_month(march.months().start));
        assert_eq!(q1.end(), NaiveDate::from_ymd_opt(2026, 4, 1).unwrap());
        assert_eq!(
            Period::month(2026, 12).end(),
            NaiveDate::from_ymd_opt(2027, 1, 1).unwrap()
        );
        assert_eq!(Period::from_proto(&march.to_proto()), Ok(march));
        assert!(q1.id() < 1 << 18);
    }

    #[test]
    fn malformed_periods_are_refused_with_a_reason() {
        let p = |granularity: pb::PeriodGranularity, year, number| pb::Period {
            granularity: granularity as i32,
            year,
            number,
        };
        use pb::PeriodGranularity as G;
        assert!(Period::from_proto(&p(G::Month, 2026, 13)).is_err());
        assert!(Period::from_proto(&p(G::Quarter, 2026, 5)).is_err());
        assert!(Period::from_proto(&p(G::Quarter, 2026, 0)).is_err());
        assert!(Period::from_proto(&p(G::Unspecified, 2026, 1)).is_err());
        assert!(Period::from_proto(&p(G::Month, 20260, 1)).is_err());
    }
}
