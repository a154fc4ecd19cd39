//! A person's memberships of the cells of one period: which indicators'
//! denominators (and numerators) they count in, in which areas.

use super::{Member, key};
use crate::catalogue::{Catalogue, Clock, Rule};
use crate::domain::area::AreaKind;
use crate::domain::period::Period;
use crate::domain::person::{Obs, Person, Spell};
use crate::domain::stratum::Demographics;

/// Reusable buffers for [`members`].
#[derive(Debug, Default)]
pub(super) struct Buffers {
    pub(super) areas: Vec<(u32, u64)>,
    /// Each observation's predicate bits.
    masks: Vec<u64>,
    /// A cohort's denominator facts in the period: their place, and whether
    /// the numerator followed.
    cohort: Vec<(u16, bool)>,
}

/// Fills `out` with a person's memberships for `period`, sorted by key, and
/// returns their demographics there (from their latest observation in the
/// period, or else from the start of their latest spell of supervision that
/// covers it); `None` when they have neither. `spells` are the person's
/// ([`Person::spells`]); open ones run through the month `horizon`.
pub(super) fn members(
    catalogue: &Catalogue,
    person: &Person,
    spells: &[Spell],
    period: Period,
    horizon: u32,
    out: &mut Vec<Member>,
    buffers: &mut Buffers,
) -> Option<Demographics> {
    out.clear();
    let Buffers {
        areas,
        masks,
        cohort,
    } = buffers;
    masks.clear();
    masks.extend(person.obs.iter().map(|o| catalogue.mask(o.fact, o.service)));
    let (mut all, mut demographics) =
        period_masks(person, masks, catalogue.caseload, period, areas);
    if catalogue.caseload != 0 {
        let latest = add_caseload(catalogue.caseload, person, spells, period, horizon, areas);
        if latest.is_some() {
            all |= catalogue.caseload;
        }
        demographics = demographics.or(latest);
    }
    let demographics = demographics?;
    let period_id = period.id();
    for (index, indicator) in catalogue.indicators.iter().enumerate() {
        let base = |area| key(index, period_id, area);
        match indicator.rule {
            Rule::SamePeriod { den, num } if all & den != 0 => {
                let num = all & num != 0;
                each_area(out, areas, den, |area| Member {
                    base: base(area),
                    num,
                    measure: None,
                });
            }
            Rule::Cohort {
                den,
                num,
                within_days,
                clock,
            } if all & den != 0 => {
                let rule = Cohort {
                    num,
                    within_days,
                    clock,
                };
                rule.follow_up(person, masks, period, den, cohort);
                each_area(out, areas, den, |area| Member {
                    base: base(area),
                    num: followed_in(person, cohort, area),
                    measure: None,
                });
            }
            Rule::Median { measure } if all & measure != 0 => {
                let first = first_value(person, masks, period, measure);
                each_area(out, areas, measure, |area| Member {
                    base: base(area),
                    num: true,
                    measure: first,
                });
            }
            // Nothing of the person's in the period sets its bits.
            _ => {}
        }
    }
    Some(demographics)
}

/// The indicators someone counts in, in a period in which they are under
/// supervision but nothing of theirs was observed (a bare period, counted by
/// ranges): by index, and whether they count in its numerator too. The same
/// as [`members`] gives with the caseload bit alone.
pub(super) fn bare_members(catalogue: &Catalogue) -> Vec<(usize, bool)> {
    let caseload = catalogue.caseload;
    if caseload == 0 {
        return Vec::new();
    }
    catalogue
        .indicators
        .iter()
        .enumerate()
        .filter_map(|(index, indicator)| match indicator.rule {
            Rule::SamePeriod { den, num } => {
                (den & caseload != 0).then_some((index, num & caseload != 0))
            }
            // No denominator fact was observed, so none was followed up.
            Rule::Cohort { den, .. } => (den & caseload != 0).then_some((index, false)),
            Rule::Median { measure } => (measure & caseload != 0).then_some((index, true)),
        })
        .collect()
}

/// Adds `caseload` to every area of each supervision spell that covers
/// `period` (the nation, and the community areas of the place it starts at:
/// supervised in the community, not in the releasing prison), then sorts
/// `areas`; returns the demographics at the start of the latest such spell,
/// `None` when no spell covers the period.
fn add_caseload(
    caseload: u64,
    person: &Person,
    spells: &[Spell],
    period: Period,
    horizon: u32,
    areas: &mut Vec<(u32, u64)>,
) -> Option<Demographics> {
    let months = period.months();
    let mut latest: Option<&Spell> = None;
    for spell in spells.iter().filter(|s| {
        let covers = s.months(horizon);
        *covers.start() < months.end && *covers.end() >= months.start
    }) {
        add_bits(areas, 0, caseload);
        let place = &person.places[usize::from(spell.start.place)].0;
        for (&area, _) in place
            .iter()
            .zip(AreaKind::PLACED)
            .filter(|(_, kind)| *kind != AreaKind::Prison)
        {
            if area != 0 {
                add_bits(areas, area, caseload);
            }
        }
        latest = Some(spell);
    }
    areas.sort_unstable_by_key(|a| a.0);
    latest.map(|s| s.start.demographics)
}

/// Adds `member(area)` for each of `areas` in which a person has any of `bits`.
fn each_area(
    out: &mut Vec<Member>,
    areas: &[(u32, u64)],
    bits: u64,
    member: impl FnMut(u32) -> Member,
) {
    out.extend(
        areas
            .iter()
            .filter(|(_, b)| b & bits != 0)
            .map(|&(area, _)| area)
            .map(member),
    );
}

/// The value of a person's first `measure` observation in `period` (the
/// earliest; the smaller value on a tie).
fn first_value(person: &Person, masks: &[u64], period: Period, measure: u64) -> Option<i32> {
    person
        .obs
        .iter()
        .zip(masks.iter())
        .filter(|(o, mask)| period.contains_month(o.month) && *mask & measure != 0)
        .map(|(o, _)| o)
        .min_by_key(|o| (o.at, o.value))
        .map(|o| o.value)
}

/// Whether any of a cohort's denominator facts placed in `area` (every one,
/// for the nation, area 0) was followed by its numerator.
fn followed_in(person: &Person, cohort: &[(u16, bool)], area: u32) -> bool {
    cohort.iter().any(|&(place, followed)| {
        followed && (area == 0 || person.places[usize::from(place)].0.contains(&area))
    })
}

/// Adds `mask` to an area's bits.
fn add_bits(areas: &mut Vec<(u32, u64)>, area: u32, mask: u64) {
    match areas.iter_mut().find(|(a, _)| *a == area) {
        Some(entry) => entry.1 |= mask,
        None => areas.push((area, mask)),
    }
}

/// Fills `areas` with the predicate bits a person's observations in `period`
/// set in each of their areas (0, the nation, included), sorted by area, and
/// returns every bit set and their demographics there (from their latest
/// observation in the period; `None` when they have no observation in it).
/// The `caseload` bit is never set in a prison: supervision is in the
/// community.
fn period_masks(
    person: &Person,
    masks: &[u64],
    caseload: u64,
    period: Period,
    areas: &mut Vec<(u32, u64)>,
) -> (u64, Option<Demographics>) {
    areas.clear();
    let mut all = 0u64;
    let mut latest: Option<(i64, Demographics)> = None;
    for (o, &mask) in person
        .obs
        .iter()
        .zip(masks)
        .filter(|(o, _)| period.contains_month(o.month))
    {
        if latest.is_none_or(|l| (o.at, o.demographics) > l) {
            latest = Some((o.at, o.demographics));
        }
        if mask == 0 {
            continue;
        }
        all |= mask;
        add_bits(areas, 0, mask);
        for (&area, kind) in person.places[o.place as usize]
            .0
            .iter()
            .zip(AreaKind::PLACED)
        {
            let mask = if kind == AreaKind::Prison {
                mask & !caseload
            } else {
                mask
            };
            if area != 0 && mask != 0 {
                add_bits(areas, area, mask);
            }
        }
    }
    areas.sort_unstable_by_key(|a| a.0);
    (all, latest.map(|(_, d)| d))
}

/// A cohort rule's follow-up: a numerator fact within so many days of a
/// denominator fact.
struct Cohort {
    num: u64,
    within_days: i64,
    clock: Clock,
}

impl Cohort {
    /// Fills `cohort` with each of the person's denominator facts (`den`) in
    /// `period` — its place, and whether the numerator followed it: each
    /// fact is followed up once; an area's numerator is whether any of its
    /// facts was.
    fn follow_up(
        &self,
        person: &Person,
        masks: &[u64],
        period: Period,
        den: u64,
        cohort: &mut Vec<(u16, bool)>,
    ) {
        cohort.clear();
        for (d, _) in person
            .obs
            .iter()
            .zip(masks.iter())
            .filter(|(d, mask)| period.contains_month(d.month) && *mask & den != 0)
        {
            cohort.push((d.place, self.followed(person, masks, d)));
        }
    }

    /// Whether the numerator followed the denominator fact `d` in time.
    fn followed(&self, person: &Person, masks: &[u64], d: &Obs) -> bool {
        let follows = |n: &Obs| match self.clock {
            Clock::Observed => {
                let (start, end) = (day(d.at), day(n.at));
                end - start <= self.within_days && (end >= start || n.episode == d.episode)
            }
            Clock::DaysInValue => n.episode == d.episode && i64::from(n.value) <= self.within_days,
        };
        person
            .obs
            .iter()
            .zip(masks)
            .any(|(n, mask)| mask & self.num != 0 && follows(n))
    }
}

/// The calendar day (UTC, days since the epoch) of a time in microseconds.
pub(crate) fn day(at: i64) -> i64 {
    at.div_euclid(86_400_000_000)
}
