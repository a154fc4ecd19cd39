//! What the published figures should be, computed from the ledger alone: for
//! one probation delivery unit and month, each indicator's denominator and
//! numerator in every stratum, by the catalogue's rules as
//! `indicators.toml` states them (a same-period share; a follow-through
//! cohort; a median's population; the caseload derived from supervision).

use super::ledger::{Entry, Person};
use super::rules::Rules;
use chrono::NaiveDate;
use std::collections::HashMap;
use throughcare_indicators::catalogue::{Clock, Rule};
use throughcare_proto::events::v1::ObservedFact;
use throughcare_proto::indicators::v1 as ind;
use throughcare_proto::types::v1 as types;

/// A stratum as the indicators service publishes it: its split, and the
/// values that split names (the rest 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(super) struct Stratum {
    pub(super) split: ind::StratumType,
    pub(super) sex: i32,
    pub(super) age_band: i32,
    pub(super) ethnic_group: i32,
}

impl Stratum {
    pub(super) fn of(split: ind::StratumType, published: Option<&ind::Stratum>) -> Self {
        let s = published.copied().unwrap_or_default();
        Self {
            split,
            sex: s.sex,
            age_band: s.age_band,
            ethnic_group: s.ethnic_group,
        }
    }

    /// The strata someone of these characteristics counts in.
    fn all_of(sex: i32, age_band: i32, ethnic_group: i32) -> [Stratum; 6] {
        use ind::StratumType as T;
        let at = |split, sex, age_band, ethnic_group| Stratum {
            split,
            sex,
            age_band,
            ethnic_group,
        };
        [
            at(T::All, 0, 0, 0),
            at(T::Sex, sex, 0, 0),
            at(T::AgeBand, 0, age_band, 0),
            at(T::EthnicGroup, 0, 0, ethnic_group),
            at(T::SexByEthnicGroup, sex, 0, ethnic_group),
            at(T::SexByAgeBand, sex, age_band, 0),
        ]
    }
}

/// A true count pair.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Counts {
    pub(super) den: u32,
    pub(super) num: u32,
}

/// The tally: true counts by indicator index and stratum.
pub(super) type Tally = HashMap<(usize, Stratum), Counts>;

/// The counts the ledger gives for `unit` in the month `first..=last`.
pub(super) fn tally(
    ledger: &[Person],
    rules: &Rules,
    unit: &str,
    (first, last): (NaiveDate, NaiveDate),
) -> Tally {
    let mut out = Tally::new();
    for person in ledger.iter().filter(|p| p.unit == unit) {
        let Some(month) = Month::of(person, rules, (first, last)) else {
            continue;
        };
        let strata = Stratum::all_of(
            person.sex as i32,
            month.age_band as i32,
            person.ethnic_group as i32,
        );
        for (index, counted) in memberships(person, rules, &month) {
            for stratum in strata {
                let counts = out.entry((index, stratum)).or_default();
                counts.den += 1;
                counts.num += u32::from(counted);
            }
        }
    }
    out
}

/// One person's month: their facts' predicate bits, the bits set in the
/// month, and their age band there.
struct Month {
    first: NaiveDate,
    last: NaiveDate,
    masks: Vec<u64>,
    bits: u64,
    age_band: types::AgeBand,
}

impl Month {
    /// `None` when the person neither had a fact in the month nor was under
    /// supervision in it.
    fn of(person: &Person, rules: &Rules, (first, last): (NaiveDate, NaiveDate)) -> Option<Self> {
        let masks: Vec<u64> = person
            .facts
            .iter()
            .map(|f| rules.mask(f.fact, f.service))
            .collect();
        let mut bits = 0;
        let mut latest: Option<(NaiveDate, types::AgeBand)> = None;
        for (fact, mask) in person.facts.iter().zip(&masks) {
            if (first..=last).contains(&fact.day) {
                bits |= mask;
                latest = latest.max(Some((fact.day, fact.age_band)));
            }
        }
        // Supervision began on release and never ended: every month from
        // its start on is under supervision, in the unit released to.
        let spell = person
            .facts
            .iter()
            .find(|f| f.fact == ObservedFact::SupervisionStarted && f.day <= last);
        if let Some(spell) = spell.filter(|_| rules.caseload() != 0) {
            bits |= rules.caseload();
            latest = latest.or(Some((spell.day, spell.age_band)));
        }
        let (_, age_band) = latest?;
        Some(Self {
            first,
            last,
            masks,
            bits,
            age_band,
        })
    }

    fn contains(&self, day: NaiveDate) -> bool {
        (self.first..=self.last).contains(&day)
    }
}

/// The indicators a person counts in for the month (by index), and whether
/// in the numerator.
fn memberships(person: &Person, rules: &Rules, month: &Month) -> Vec<(usize, bool)> {
    let mut out = Vec::new();
    for (index, indicator) in rules.indicators().iter().enumerate() {
        let counted = match indicator.rule {
            Rule::SamePeriod { den, num } => {
                (month.bits & den != 0).then_some(month.bits & num != 0)
            }
            Rule::Cohort {
                den,
                num,
                within_days,
                clock,
            } => (month.bits & den != 0).then(|| {
                let follows = |d: &Entry, n: &Entry| match clock {
                    Clock::Observed => {
                        let days = (n.day - d.day).num_days();
                        days <= within_days && (days >= 0 || n.episode == d.episode)
                    }
                    Clock::DaysInValue => n.episode == d.episode && n.value <= within_days,
                };
                let facts = || person.facts.iter().zip(&month.masks);
                facts()
                    .filter(|(d, mask)| month.contains(d.day) && *mask & den != 0)
                    .any(|(d, _)| facts().any(|(n, mask)| mask & num != 0 && follows(d, n)))
            }),
            Rule::Median { measure } => (month.bits & measure != 0).then_some(true),
        };
        if let Some(counted) = counted {
            out.push((index, counted));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::demo::ledger::Step;
    use throughcare_proto::types::v1::ServiceType;

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    fn person() -> Person {
        let details = types::PersonDetails {
            date_of_birth: Some(types::Date {
                year: 1980,
                month: 1,
                day: 1,
            }),
            sex: types::Sex::Female as i32,
            ethnic_group: types::EthnicGroup::Asian as i32,
            ..Default::default()
        };
        Person::new("EMR-LEI", &details)
    }

    fn smoker() -> types::HealthSummary {
        types::HealthSummary {
            smoking: Some(types::Smoking {
                status: types::SmokingStatus::CurrentSmoker as i32,
            }),
            ..Default::default()
        }
    }

    #[test]
    fn a_release_counts_in_its_month_and_the_caseload_after_it() {
        let rules = Rules::standard();
        let mut p = person();
        p.released(day(2026, 1, 20), &smoker());
        let smoking = rules.index("smoking").unwrap();
        let mortality = rules.index("mortality").unwrap();
        let all = Stratum::of(ind::StratumType::All, None);
        let january = tally(
            std::slice::from_ref(&p),
            &rules,
            "EMR-LEI",
            (day(2026, 1, 1), day(2026, 1, 31)),
        );
        assert_eq!(january[&(smoking, all)], Counts { den: 1, num: 1 });
        let february = tally(
            std::slice::from_ref(&p),
            &rules,
            "EMR-LEI",
            (day(2026, 2, 1), day(2026, 2, 28)),
        );
        assert_eq!(february.get(&(smoking, all)), None);
        assert_eq!(february[&(mortality, all)], Counts { den: 1, num: 0 });
        let female = Stratum {
            split: ind::StratumType::Sex,
            sex: types::Sex::Female as i32,
            age_band: 0,
            ethnic_group: 0,
        };
        assert_eq!(february[&(mortality, female)].den, 1);
        assert!(tally(&[p], &rules, "EMR-NOT", (day(2026, 2, 1), day(2026, 2, 28))).is_empty());
    }

    #[test]
    fn a_reversed_release_counts_nowhere() {
        let rules = Rules::standard();
        let mut p = person();
        p.released(day(2026, 1, 20), &smoker());
        p.reversed();
        assert!(tally(&[p], &rules, "EMR-LEI", (day(2026, 1, 1), day(2026, 1, 31))).is_empty());
    }

    #[test]
    fn a_referral_follows_a_fact_only_within_its_window() {
        let rules = Rules::standard();
        let offered = rules.index("smokers-offered-cessation").unwrap();
        let all = Stratum::of(ind::StratumType::All, None);
        let today = chrono::Utc::now().date_naive();
        for (days_before, counted) in [(21, 1), (22, 0)] {
            let released = today - chrono::Duration::days(days_before);
            let mut p = person();
            p.released(released, &smoker());
            p.referral(ServiceType::SmokingCessation, Step::Offered);
            let month = (released, released);
            let t = tally(&[p], &rules, "EMR-LEI", month);
            assert_eq!(
                t[&(offered, all)],
                Counts {
                    den: 1,
                    num: counted
                }
            );
        }
    }
}
