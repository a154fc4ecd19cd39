//! A person's memberships of the cells of one period: which indicators'
//! denominators (and numerators) they count in, in which areas.

use super::{Member, key};
use crate::catalogue::{Catalogue, Clock, Rule};
use crate::domain::period::Period;
use crate::domain::person::{Obs, Person};
use crate::domain::stratum::Demographics;

/// Fills `out` with a person's memberships for `period`, sorted by key, and
/// returns their demographics there (from their latest observation in the
/// period); `None` when they have no observation in it.
pub(super) fn members(
    catalogue: &Catalogue,
    person: &Person,
    period: Period,
    out: &mut Vec<Member>,
    areas: &mut Vec<(u32, u64)>,
) -> Option<Demographics> {
    out.clear();
    let (all, demographics) = period_masks(catalogue, person, period, areas)?;
    let period_id = period.id();
    let in_period = |o: &&Obs| period.contains_month(o.month);
    for (index, indicator) in catalogue.indicators.iter().enumerate() {
        match indicator.rule {
            Rule::SamePeriod { den, num } => {
                if all & den == 0 {
                    continue;
                }
                let num = all & num != 0;
                for &(area, _) in areas.iter().filter(|(_, bits)| bits & den != 0) {
                    out.push(Member {
                        base: key(index, period_id, area),
                        num,
                        measure: None,
                    });
                }
            }
            Rule::Cohort {
                den,
                num,
                within_days,
                clock,
            } => {
                if all & den == 0 {
                    continue;
                }
                let cohort = Cohort {
                    den,
                    num,
                    within_days,
                    clock,
                };
                for &(area, _) in areas.iter().filter(|(_, bits)| bits & den != 0) {
                    let num = cohort.reached(catalogue, person, period, area);
                    out.push(Member {
                        base: key(index, period_id, area),
                        num,
                        measure: None,
                    });
                }
            }
            Rule::Median { measure } => {
                if all & measure == 0 {
                    continue;
                }
                let first = person
                    .obs
                    .iter()
                    .filter(in_period)
                    .filter(|o| catalogue.mask(o.fact, o.service) & measure != 0)
                    .min_by_key(|o| (o.at, o.value))
                    .map(|o| o.value);
                for &(area, _) in areas.iter().filter(|(_, bits)| bits & measure != 0) {
                    out.push(Member {
                        base: key(index, period_id, area),
                        num: true,
                        measure: first,
                    });
                }
            }
        }
    }
    Some(demographics)
}

/// Fills `areas` with the predicate bits a person's observations in `period`
/// set in each of their areas (0, the nation, included), sorted by area, and
/// returns every bit set and their demographics there (from their latest
/// observation in the period); `None` when they have no observation in it.
fn period_masks(
    catalogue: &Catalogue,
    person: &Person,
    period: Period,
    areas: &mut Vec<(u32, u64)>,
) -> Option<(u64, Demographics)> {
    areas.clear();
    let mut all = 0u64;
    let mut latest: Option<(i64, Demographics)> = None;
    let mut add_bits = |area: u32, mask: u64| match areas.iter_mut().find(|(a, _)| *a == area) {
        Some(entry) => entry.1 |= mask,
        None => areas.push((area, mask)),
    };
    for o in person.obs.iter().filter(|o| period.contains_month(o.month)) {
        if latest.is_none_or(|l| (o.at, o.demographics) > l) {
            latest = Some((o.at, o.demographics));
        }
        let mask = catalogue.mask(o.fact, o.service);
        if mask == 0 {
            continue;
        }
        all |= mask;
        add_bits(0, mask);
        for &area in &person.places[o.place as usize].0 {
            if area != 0 {
                add_bits(area, mask);
            }
        }
    }
    let (_, demographics) = latest?;
    areas.sort_unstable_by_key(|a| a.0);
    Some((all, demographics))
}

/// A cohort rule: of those with a denominator fact, who reached a numerator
/// fact within so many days of it.
struct Cohort {
    den: u64,
    num: u64,
    within_days: i64,
    clock: Clock,
}

impl Cohort {
    /// Whether a person with a denominator observation in `period` at `area`
    /// (0: anywhere) reached the numerator from any such observation.
    fn reached(&self, catalogue: &Catalogue, person: &Person, period: Period, area: u32) -> bool {
        let is = |o: &Obs, mask: u64| catalogue.mask(o.fact, o.service) & mask != 0;
        let follows = |d: &Obs, n: &Obs| match self.clock {
            Clock::Observed => {
                let (start, end) = (day(d.at), day(n.at));
                end - start <= self.within_days && (end >= start || n.episode == d.episode)
            }
            Clock::DaysInValue => n.episode == d.episode && i64::from(n.value) <= self.within_days,
        };
        let at_area = |o: &Obs| area == 0 || person.places[o.place as usize].0.contains(&area);
        person.obs.iter().any(|d| {
            period.contains_month(d.month)
                && is(d, self.den)
                && at_area(d)
                && person.obs.iter().any(|n| is(n, self.num) && follows(d, n))
        })
    }
}

/// The calendar day (UTC, days since the epoch) of a time in microseconds.
pub(crate) fn day(at: i64) -> i64 {
    at.div_euclid(86_400_000_000)
}
