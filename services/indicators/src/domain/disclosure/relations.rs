//! The relations among a publication's cells that an attacker could use:
//! counts equal by definition, stratum splits, area families and quarters.

use super::{DEN, Group, NUM, Relation};
use crate::catalogue::{Catalogue, Clock, Rule};
use crate::domain::area::{Area, AreaKind};
use crate::domain::core::CellName;
use crate::domain::period::Period;
use crate::domain::stratum::{self, Stratum};
use std::collections::{BTreeMap, HashMap};

/// What a count counts: the rule's kind and its masks (and window).
type Definition = (u8, u64, u64, i64);

/// Classes of counts equal by definition, as variable indices: for each
/// period, area and stratum, the denominators of indicators with the same
/// denominator rule, and the numerators of indicators with the same whole
/// rule; a median indicator's numerator is its denominator.
pub(super) fn twins(catalogue: &Catalogue, names: &[CellName]) -> Vec<Vec<usize>> {
    let mut classes: HashMap<(Period, &Area, Stratum, Definition), Vec<usize>> = HashMap::new();
    for (cell, name) in names.iter().enumerate() {
        let rule = catalogue.indicators[usize::from(name.indicator)].rule;
        let (den, num) = match rule {
            Rule::SamePeriod { den, num } => ((0, den, 0, 0), (0, den, num, 0)),
            Rule::Cohort {
                den,
                num,
                within_days,
                clock,
            } => {
                // Both rules' denominators are the people with a `den` fact
                // in the period and area: the same count.
                let kind = match clock {
                    Clock::Observed => 1,
                    Clock::DaysInValue => 3,
                };
                ((0, den, 0, 0), (kind, den, num, within_days))
            }
            Rule::Median { measure } => ((2, measure, 0, 0), (2, measure, 0, 0)),
        };
        for (definition, v) in [(den, cell * 2 + DEN), (num, cell * 2 + NUM)] {
            classes
                .entry((name.period, &name.area, name.stratum, definition))
                .or_default()
                .push(v);
        }
    }
    let mut twins: Vec<Vec<usize>> = classes.into_values().filter(|c| c.len() > 1).collect();
    twins.sort();
    twins
}

/// The relations among the cells: stratum splits, area families, delivery
/// units within regions, and months within quarters.
pub(super) fn groups(
    names: &[CellName],
    current: usize,
    region_of: impl Fn(&Area) -> Option<Box<str>>,
) -> Vec<Group> {
    let mut groups = Groups(Vec::new());
    groups.strata(names);
    groups.areas(names, region_of);
    groups.quarters(names, current);
    groups.0
}

/// Relations being gathered.
struct Groups(Vec<Group>);

impl Groups {
    /// Adds `parent`'s relation to `children`, if there are any.
    fn add(&mut self, relation: Relation, parent: usize, children: Vec<usize>) {
        if !children.is_empty() {
            self.0.push(Group {
                relation,
                parent,
                children,
            });
        }
    }

    /// Stratum splits: per indicator, period and area, each split of the
    /// whole population sums to it, and each combined split sums to each of
    /// its margins (everyone of one sex across ethnic groups, everyone of one
    /// ethnic group across sexes).
    fn strata(&mut self, names: &[CellName]) {
        let mut by_place: BTreeMap<(u8, Period, &Area), Vec<usize>> = BTreeMap::new();
        for (i, n) in names.iter().enumerate() {
            by_place
                .entry((n.indicator, n.period, &n.area))
                .or_default()
                .push(i);
        }
        for members in by_place.values() {
            let find = |s: Stratum| members.iter().copied().find(|&m| names[m].stratum == s);
            if let Some(all) = find(stratum::ALL) {
                for split in stratum::SINGLE {
                    let children = members
                        .iter()
                        .copied()
                        .filter(|&m| stratum::stratum_type(names[m].stratum) == split)
                        .collect();
                    self.add(Relation::Sum, all, children);
                }
            }
            let mut by_margin: BTreeMap<(Stratum, i32), Vec<usize>> = BTreeMap::new();
            for &m in members {
                let split = stratum::stratum_type(names[m].stratum) as i32;
                for margin in stratum::margins(names[m].stratum).into_iter().flatten() {
                    by_margin.entry((margin, split)).or_default().push(m);
                }
            }
            for ((margin, _), children) in by_margin {
                if let Some(parent) = find(margin) {
                    self.add(Relation::Sum, parent, children);
                }
            }
        }
    }

    /// Areas: per indicator, period and stratum, the nation is the union of
    /// each kind of area, and a region of its delivery units.
    fn areas(&mut self, names: &[CellName], region_of: impl Fn(&Area) -> Option<Box<str>>) {
        let mut by_cut: BTreeMap<(u8, Period, Stratum), Vec<usize>> = BTreeMap::new();
        for (i, n) in names.iter().enumerate() {
            by_cut
                .entry((n.indicator, n.period, n.stratum))
                .or_default()
                .push(i);
        }
        for members in by_cut.values() {
            let of_kind = |kind: AreaKind| {
                members
                    .iter()
                    .copied()
                    .filter(move |&m| names[m].area.kind == kind)
            };
            if let Some(national) = of_kind(AreaKind::National).next() {
                for kind in [
                    AreaKind::ProbationRegion,
                    AreaKind::IntegratedCareBoard,
                    AreaKind::LocalAuthority,
                    AreaKind::Prison,
                ] {
                    self.add(Relation::Union, national, of_kind(kind).collect());
                }
            }
            for region in of_kind(AreaKind::ProbationRegion) {
                let children = of_kind(AreaKind::ProbationDeliveryUnit)
                    .filter(|&m| {
                        region_of(&names[m].area).as_deref() == Some(&*names[region].area.code)
                    })
                    .collect();
                self.add(Relation::Union, region, children);
            }
        }
    }

    /// Months within a quarter: per indicator, area and stratum, a quarter
    /// (among the first `current` cells) is the union of its months.
    fn quarters(&mut self, names: &[CellName], current: usize) {
        let index: HashMap<&CellName, usize> =
            names.iter().enumerate().map(|(i, n)| (n, i)).collect();
        for (q, n) in names.iter().enumerate().take(current) {
            if let Period::Quarter(_) = n.period {
                let children = n
                    .period
                    .months()
                    .filter_map(|m| {
                        index
                            .get(&CellName {
                                period: Period::Month(m),
                                ..n.clone()
                            })
                            .copied()
                    })
                    .collect();
                self.add(Relation::Union, q, children);
            }
        }
    }
}
