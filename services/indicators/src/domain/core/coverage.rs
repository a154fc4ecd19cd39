//! The caseload counted by ranges.
//!
//! Someone under supervision counts in every month and quarter of their
//! spells, though in most of those periods nothing is observed about them.
//! In such a bare period their memberships are always the same — the
//! caseload's denominators, in the areas of the spells covering it, in the
//! strata of the latest one's start — so instead of counting them period by
//! period the core keeps, per area and stratum, a difference array over
//! period indices: +1 where a run of bare periods begins, −1 after it ends
//! (and the record keys summed the same way). A cell's caseload count is the
//! running sum at its period, taken when the cell is read. Periods with an
//! observation of the person are counted one by one, as before, since what
//! was observed decides their memberships.

use super::membership::bare_members;
use super::{AREA_BITS, STRATUM_BITS, Tally, key};
use crate::catalogue::Catalogue;
use crate::domain::area::AreaKind;
use crate::domain::period::Period;
use crate::domain::person::{Person, Spell};
use crate::domain::stratum::Demographics;
use rustc_hash::FxHashMap;
use std::collections::BTreeMap;

/// A run of consecutive bare periods (months, or quarters) in which a person
/// counts in the caseload of one area with the same demographics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Run {
    quarter: bool,
    area: u32,
    first: u32,
    last: u32,
    demographics: Demographics,
}

/// The change at one period index of one series.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Step {
    people: i32,
    keys: u8,
}

/// The caseload's difference arrays, by series (area, stratum, and whether
/// it counts quarters).
#[derive(Debug, Default)]
pub(super) struct Coverage {
    series: FxHashMap<u64, BTreeMap<u32, Step>>,
}

const QUARTER_BIT: u32 = AREA_BITS + STRATUM_BITS;

impl Coverage {
    pub(super) fn clear(&mut self) {
        self.series.clear();
    }

    /// Adds (or, with `add` false, takes away) one person's runs.
    pub(super) fn apply(&mut self, runs: &[Run], record_key: u8, add: bool) {
        let sign = if add { 1 } else { -1 };
        for run in runs {
            for stratum in run.demographics.strata() {
                let series = u64::from(run.quarter) << QUARTER_BIT
                    | u64::from(run.area) << STRATUM_BITS
                    | u64::from(stratum);
                let steps = self.series.entry(series).or_default();
                shift(steps, run.first, sign, record_key);
                shift(steps, run.last + 1, -sign, record_key);
                if steps.is_empty() {
                    self.series.remove(&series);
                }
            }
        }
    }

    /// Adds the caseload's figures to `cells` for every period `wanted`
    /// (by id), for each indicator the caseload counts in.
    pub(super) fn add_to(
        &self,
        catalogue: &Catalogue,
        wanted: impl Fn(u32) -> bool,
        cells: &mut FxHashMap<u64, Tally>,
    ) {
        let members = bare_members(catalogue);
        if members.is_empty() {
            return;
        }
        for (&series, steps) in &self.series {
            let quarter = series >> QUARTER_BIT == 1;
            let area = ((series >> STRATUM_BITS) & ((1 << AREA_BITS) - 1)) as u32;
            let stratum = series & ((1 << STRATUM_BITS) - 1);
            let (mut people, mut keys) = (0i32, 0u8);
            let mut steps = steps.iter().peekable();
            while let Some((&index, step)) = steps.next() {
                people += step.people;
                keys = keys.wrapping_add(step.keys);
                let next = steps.peek().map_or(index + 1, |&(&next, _)| next);
                if people <= 0 {
                    continue;
                }
                for at in index..next {
                    let period = if quarter {
                        Period::Quarter(at)
                    } else {
                        Period::Month(at)
                    };
                    if !wanted(period.id()) {
                        continue;
                    }
                    for &(indicator, num) in &members {
                        let cell = key(indicator, period.id(), area) | stratum;
                        let tally = cells.entry(cell).or_default();
                        tally.den += people as u32;
                        tally.den_key = tally.den_key.wrapping_add(keys);
                        if num {
                            tally.num += people as u32;
                            tally.num_key = tally.num_key.wrapping_add(keys);
                        }
                    }
                }
            }
        }
    }
}

/// Adds `sign` people with `record_key` from `index` on.
fn shift(steps: &mut BTreeMap<u32, Step>, index: u32, sign: i32, record_key: u8) {
    let step = steps.entry(index).or_default();
    step.people += sign;
    step.keys = if sign > 0 {
        step.keys.wrapping_add(record_key)
    } else {
        step.keys.wrapping_sub(record_key)
    };
    if *step == Step::default() {
        steps.remove(&index);
    }
}

/// Fills `out` with a person's runs of bare periods: the months and
/// quarters their `spells` (open ones through the month `horizon`) cover in
/// which nothing of theirs was observed, sorted.
pub(super) fn runs(person: &Person, spells: &[Spell], horizon: u32, out: &mut Vec<Run>) {
    out.clear();
    if spells.is_empty() {
        return;
    }
    let first = spells.iter().map(|s| s.start.month).min().unwrap_or(0);
    let last = spells
        .iter()
        .map(|s| *s.months(horizon).end())
        .max()
        .unwrap_or(0);
    for (quarter, range) in [(false, first..=last), (true, first / 3..=last / 3)] {
        for index in range {
            let period = if quarter {
                Period::Quarter(index)
            } else {
                Period::Month(index)
            };
            if person.observed_in(period) {
                continue;
            }
            let months = period.months();
            let mut latest = None;
            for spell in spells.iter().filter(|s| {
                let covers = s.months(horizon);
                *covers.start() < months.end && *covers.end() >= months.start
            }) {
                latest = Some(spell);
            }
            let Some(latest) = latest else { continue };
            let demographics = latest.start.demographics;
            let covering = spells.iter().filter(|s| {
                let covers = s.months(horizon);
                *covers.start() < months.end && *covers.end() >= months.start
            });
            let areas = covering.flat_map(|s| community_areas(person, s));
            let mut seen = Vec::with_capacity(4);
            for area in std::iter::once(0).chain(areas) {
                if seen.contains(&area) {
                    continue;
                }
                seen.push(area);
                extend(out, quarter, area, index, demographics);
            }
        }
    }
    out.sort_unstable();
}

/// The areas a spell is supervised in: those of its place other than the
/// releasing prison.
fn community_areas<'a>(person: &'a Person, spell: &Spell) -> impl Iterator<Item = u32> + 'a {
    person.places[usize::from(spell.start.place)]
        .0
        .iter()
        .zip(AreaKind::PLACED)
        .filter(|&(&area, kind)| kind != AreaKind::Prison && area != 0)
        .map(|(&area, _)| area)
}

/// Adds the period `index` to the run it continues, or starts one.
fn extend(out: &mut Vec<Run>, quarter: bool, area: u32, index: u32, demographics: Demographics) {
    let continues = out.iter_mut().rev().find(|r| {
        r.quarter == quarter
            && r.area == area
            && r.last + 1 == index
            && r.demographics == demographics
    });
    match continues {
        Some(run) => run.last = index,
        None => out.push(Run {
            quarter,
            area,
            first: index,
            last: index,
            demographics,
        }),
    }
}
