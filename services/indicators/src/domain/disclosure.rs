//! Statistical disclosure control on everything that leaves the service.
//!
//! 1. **Primary suppression**: a count of 1 to 7 is suppressed; so is a
//!    numerator whose complement (denominator − numerator) is 1 to 7, since
//!    subtracting it from its denominator would reveal a small count; and so
//!    is every numerator over a small denominator — even 0, because "none of
//!    these few" (or "all of them") discloses as much as a small count.
//! 2. **Rounding by cell key**: every other count is rounded to a multiple
//!    of 5, up or down as the cell's key decides (the cell key method of ONS
//!    Census 2021 and ABS TableBuilder): up with probability (count mod 5)/5,
//!    so the figure is unbiased and within 4 of the truth. The key is the sum
//!    of the record keys of the people counted ([`super::core::RecordKeys`]),
//!    so the same people always give the same figure however often a table is
//!    published, and a revision that adds or removes anyone draws afresh: the
//!    difference between two releases of a cell does not count the records
//!    that changed it. Values (proportions, rates) are computed from the
//!    rounded figures.
//! 3. **Secondary suppression**: counts are tied together — each stratum split
//!    adds up to the whole; areas add up to the nation and delivery units to
//!    their region; months add up to their quarter. In every such relation a
//!    lone suppressed count could be recovered by subtraction, so another is
//!    suppressed (the smallest, not yet published), until no relation has
//!    exactly one.
//! 4. **Audit**: an attacker who knows every relation (as equalities wherever
//!    they hold exactly) and every published figure (±2 for rounding) narrows
//!    each count to an interval. Any primary-suppressed count it can prove to be
//!    at least 1 gets more suppression around it, and the steps repeat.
//!
//! A published total of 0 (or of all) still says the same of every part of
//! it: "no deaths among 100 people" implies none among the three women in
//! it. That is the figure itself, not a small count recovered, and holding
//! back every zero total would blank the rare-event indicators; the parts
//! themselves are never published as an exact 0 over a small denominator.
//!
//! Cells already published (earlier months of a quarter) are frozen: they are
//! never changed, only reasoned about.
//!
//! **Revisions.** A period whose figures change after it was published (late
//! records) is published again, whole, with a revision number. The attacker
//! then also holds every earlier release of each revised cell, and what it
//! could prove about the cell then ([`Before`], kept with the publication).
//! A revised count whose change since the last release is small (1 to 7 in
//! either direction) must not be provably changed: if the attacker's interval
//! for it now does not overlap its interval then, it is suppressed (and the
//! audit widens around it as for a small count), so one late person's record
//! cannot be read off as the difference between two releases.

mod bounds;
mod relations;

use super::area::Area;
use super::core::{CellFigures, CellName};
use crate::catalogue::{Catalogue, Unit};
use bounds::{Constraint, Contradiction, propagate};
use relations::{groups, twins};
use std::collections::HashMap;

/// Counts from 1 up to this are suppressed.
pub const THRESHOLD: u32 = 7;
/// Published counts are multiples of this.
pub const BASE: i64 = 5;

/// Why a publication is held rather than published: disclosure control
/// fails closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Held {
    /// Figures already published contradict the relations among today's
    /// counts (a late record changed a published count), so the audit
    /// cannot be trusted.
    #[error("published figures contradict today's counts; the audit cannot be trusted")]
    Contradiction,
    /// The audit can still narrow a suppressed count, and nothing left may
    /// be suppressed to stop it.
    #[error("a suppressed count stays narrowable")]
    Exposed,
}

impl From<Contradiction> for Held {
    fn from(_: Contradiction) -> Self {
        Held::Contradiction
    }
}

/// A published count: rounded, or suppressed (value 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Count {
    pub value: i64,
    pub suppressed: bool,
}

/// A cell as published.
#[derive(Debug, Clone, PartialEq)]
pub struct Published {
    pub numerator: Count,
    pub denominator: Count,
    pub value: Option<f64>,
}

/// A count rounded to a multiple of 5 by its cell key: up with probability
/// (count mod 5)/5 over the keys, so the same count and key always give the
/// same figure, within 4 of the count. A count above the threshold never
/// shows as 5, which would read as a small count: 8 and 9 show as 10.
pub fn round(count: u32, cell_key: u8) -> i64 {
    let smallest = 2 * BASE;
    let count = i64::from(count);
    let below = count - count % BASE;
    let rest = count % BASE;
    // Up when the key falls in the first rest/BASE of 0..=255.
    let rounded = if rest > 0 && i64::from(cell_key) * BASE < rest * 256 {
        below + BASE
    } else {
        below
    };
    if count > i64::from(THRESHOLD) {
        rounded.max(smallest)
    } else {
        rounded
    }
}

fn small(count: u32) -> bool {
    (1..=THRESHOLD).contains(&count)
}

/// A cell published before, still related to the cells being published.
#[derive(Debug, Clone)]
pub struct Frozen {
    pub name: CellName,
    pub published: Published,
    /// Its true figures now, when the core still has them.
    pub truth: Option<CellFigures>,
}

/// What was true of a cell, and what the attacker could prove, when it was
/// last published: kept with the publication, never shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Before {
    /// The true denominator and numerator then.
    pub truth: [u32; 2],
    /// The attacker's intervals for them then, `[den, num]`.
    pub known: [(i64, i64); 2],
}

impl Before {
    /// A cell that was not published: it had nobody in it, as everyone
    /// can tell from its absence.
    pub const ABSENT: Before = Before {
        truth: [0, 0],
        known: [(0, 0), (0, 0)],
    };
}

/// A cell as published, with what the next revision must know of it.
#[derive(Debug, Clone, PartialEq)]
pub struct Protected {
    pub name: CellName,
    pub published: Published,
    pub before_next: Before,
}

const DEN: usize = 0;
const NUM: usize = 1;
const INFINITE: i64 = i64::MAX / 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Relation {
    /// The parent is exactly the sum of the children (a stratum split).
    Sum,
    /// The parent counts distinct people across the children, so it is at
    /// most their sum (areas, months in a quarter); exact when no one is in
    /// two children.
    Union,
}

#[derive(Debug)]
struct Group {
    relation: Relation,
    parent: usize,
    children: Vec<usize>,
}

/// One count of one cell.
#[derive(Debug, Clone, Copy)]
struct Var {
    truth: Option<u32>,
    suppressed: bool,
    frozen: bool,
    /// The published value, when not suppressed.
    published: i64,
    /// For a count being revised: its truth and the attacker's interval at
    /// its last release.
    before: Option<(u32, (i64, i64))>,
}

/// Disclosure control over one publication.
#[derive(Debug)]
pub(crate) struct Protector {
    names: Vec<CellName>,
    figures: Vec<Option<CellFigures>>,
    /// `vars[cell * 2 + DEN or NUM]`.
    vars: Vec<Var>,
    groups: Vec<Group>,
    /// Counts that are equal by definition (indicators sharing a
    /// denominator; a median's numerator and denominator): suppressed together.
    twins: Vec<Vec<usize>>,
    current: usize,
}

/// Protects `cells` (everything a first publication covers) and returns
/// them as published, sorted by name — or why the publication must be held.
pub fn protect(
    catalogue: &Catalogue,
    cells: Vec<(CellName, CellFigures)>,
    frozen: Vec<Frozen>,
    region_of: impl Fn(&Area) -> Option<Box<str>>,
) -> Result<Vec<(CellName, Published)>, Held> {
    let protected = publish(catalogue, cells, frozen, &HashMap::new(), region_of)?;
    Ok(protected
        .into_iter()
        .map(|p| (p.name, p.published))
        .collect())
}

/// Protects `cells`, where those of revised periods are named in `before`
/// (with [`Before::ABSENT`] for what is new in them), and returns them as
/// published, sorted by name, each with what the next revision must know —
/// or why the publication must be held.
pub fn publish(
    catalogue: &Catalogue,
    cells: Vec<(CellName, CellFigures)>,
    frozen: Vec<Frozen>,
    before: &HashMap<CellName, Before>,
    region_of: impl Fn(&Area) -> Option<Box<str>>,
) -> Result<Vec<Protected>, Held> {
    let mut protector = Protector::new(catalogue, cells, frozen, region_of);
    protector.revising(before);
    protector.primary();
    protector.secondary_and_audit()?;
    protector.finish(catalogue)
}

impl Protector {
    pub(crate) fn new(
        catalogue: &Catalogue,
        mut cells: Vec<(CellName, CellFigures)>,
        mut frozen: Vec<Frozen>,
        region_of: impl Fn(&Area) -> Option<Box<str>>,
    ) -> Self {
        cells.sort_by(|a, b| a.0.cmp(&b.0));
        frozen.sort_by(|a, b| a.name.cmp(&b.name));
        let current = cells.len();
        let mut names = Vec::with_capacity(cells.len() + frozen.len());
        let mut figures = Vec::with_capacity(names.capacity());
        let mut vars = Vec::with_capacity(names.capacity() * 2);
        for (name, f) in cells {
            let t = f.tally;
            for (count, key) in [(t.den, t.den_key), (t.num, t.num_key)] {
                vars.push(Var {
                    truth: Some(count),
                    suppressed: false,
                    frozen: false,
                    published: round(count, key),
                    before: None,
                });
            }
            names.push(name);
            figures.push(Some(f));
        }
        for f in frozen {
            let truth = f.truth.as_ref().map(|t| [t.tally.den, t.tally.num]);
            for (i, count) in [f.published.denominator, f.published.numerator]
                .into_iter()
                .enumerate()
            {
                vars.push(Var {
                    truth: truth.map(|t| t[i]),
                    suppressed: count.suppressed,
                    frozen: true,
                    published: count.value,
                    before: None,
                });
            }
            names.push(f.name);
            figures.push(f.truth);
        }
        let groups = groups(&names, current, region_of);
        let twins = twins(catalogue, &names);
        Self {
            names,
            figures,
            vars,
            groups,
            twins,
            current,
        }
    }

    /// Marks the counts of revised cells with their last release.
    fn revising(&mut self, before: &HashMap<CellName, Before>) {
        for cell in 0..self.current {
            if let Some(b) = before.get(&self.names[cell]) {
                for m in [DEN, NUM] {
                    self.vars[cell * 2 + m].before = Some((b.truth[m], b.known[m]));
                }
            }
        }
    }

    /// Suppresses every twin of a suppressed count; true if anything changed.
    fn sync_twins(&mut self) -> bool {
        let mut changed = false;
        for class in &self.twins {
            if class.iter().any(|&v| self.vars[v].suppressed) {
                for &v in class {
                    if !self.vars[v].suppressed && !self.vars[v].frozen {
                        self.vars[v].suppressed = true;
                        changed = true;
                    }
                }
            }
        }
        changed
    }

    /// Suppresses small counts and numerators with small complements.
    pub(crate) fn primary(&mut self) {
        for cell in 0..self.current {
            let (den, num) = (cell * 2 + DEN, cell * 2 + NUM);
            for v in [den, num] {
                if self.vars[v].truth.is_some_and(small) {
                    self.vars[v].suppressed = true;
                }
            }
            let (d, n) = (self.vars[den], self.vars[num]);
            if d.truth.is_some_and(small) {
                self.vars[num].suppressed = true;
            } else if let (Some(dt), Some(nt)) = (d.truth, n.truth)
                && !d.suppressed
                && !n.suppressed
                && small(dt - nt)
            {
                self.vars[num].suppressed = true;
            }
        }
    }

    /// Secondary suppression and the audit, repeated until the audit finds
    /// nothing exposed; held when it finds something it cannot fix, or
    /// cannot be trusted.
    pub(crate) fn secondary_and_audit(&mut self) -> Result<(), Held> {
        loop {
            self.secondary();
            let exposed = self.exposed()?;
            if exposed.is_empty() {
                return Ok(());
            }
            let mut groups_of: Vec<Vec<usize>> = vec![Vec::new(); self.names.len()];
            for g in 0..self.groups.len() {
                for c in self.members(g) {
                    groups_of[c].push(g);
                }
            }
            let mut twin_of: HashMap<usize, usize> = HashMap::new();
            for (k, class) in self.twins.iter().enumerate() {
                for &v in class {
                    twin_of.insert(v, k);
                }
            }
            let mut progressed = false;
            for v in exposed {
                // A revised count shown changed: hide it first.
                if !self.vars[v].suppressed {
                    self.vars[v].suppressed = true;
                    progressed = true;
                    continue;
                }
                progressed |= self.widen(v, &groups_of, &twin_of);
            }
            if !progressed {
                return Err(Held::Exposed);
            }
        }
    }

    /// Suppresses more around an exposed count: in the relations it is in,
    /// or — where those have nothing left to suppress — in the relations of
    /// their members, and so on outwards. True if anything was suppressed.
    fn widen(
        &mut self,
        exposed: usize,
        groups_of: &[Vec<usize>],
        twin_of: &HashMap<usize, usize>,
    ) -> bool {
        let mut frontier = vec![exposed];
        let mut seen_vars = std::collections::HashSet::from([exposed]);
        let mut seen_groups = std::collections::HashSet::new();
        while !frontier.is_empty() {
            let mut picked = false;
            let mut next = Vec::new();
            for v in frontier {
                let (cell, measure) = (v / 2, v % 2);
                for &g in &groups_of[cell] {
                    if !seen_groups.insert((g, measure)) {
                        continue;
                    }
                    if let Some(pick) = self.pick(g, measure) {
                        self.vars[pick].suppressed = true;
                        picked = true;
                    }
                    for c in self.members(g) {
                        if seen_vars.insert(c * 2 + measure) {
                            next.push(c * 2 + measure);
                        }
                    }
                }
                // Bounds also travel between a numerator and its denominator,
                // and between twins.
                let partner = cell * 2 + (1 - measure);
                let twins = twin_of.get(&v).map_or(&[][..], |&k| &self.twins[k][..]);
                for &w in std::iter::once(&partner).chain(twins) {
                    if seen_vars.insert(w) {
                        next.push(w);
                    }
                }
            }
            if picked {
                return true;
            }
            frontier = next;
        }
        false
    }

    /// Until no relation has exactly one suppressed count (and twins agree).
    fn secondary(&mut self) {
        loop {
            let mut changed = self.sync_twins();
            for g in 0..self.groups.len() {
                for measure in [DEN, NUM] {
                    // A published total of 0 says every part is 0: nothing
                    // more suppressed in it would hide anything (see above).
                    let parent = self.vars[self.groups[g].parent * 2 + measure];
                    if !parent.suppressed && parent.truth == Some(0) {
                        continue;
                    }
                    let suppressed = self
                        .members(g)
                        .filter(|&c| self.vars[c * 2 + measure].suppressed)
                        .count();
                    if suppressed == 1
                        && let Some(pick) = self.pick(g, measure)
                    {
                        self.vars[pick].suppressed = true;
                        changed = true;
                    }
                }
            }
            if !changed {
                return;
            }
        }
    }

    fn members(&self, g: usize) -> impl Iterator<Item = usize> + '_ {
        let group = &self.groups[g];
        std::iter::once(group.parent).chain(group.children.iter().copied())
    }

    /// The count to suppress next in a group: the smallest non-zero one not
    /// yet suppressed or frozen (then a zero one), first by name on a tie.
    fn pick(&self, g: usize, measure: usize) -> Option<usize> {
        self.members(g)
            .map(|c| c * 2 + measure)
            .filter(|&v| !self.vars[v].suppressed && !self.vars[v].frozen)
            .min_by_key(|&v| {
                let truth = self.vars[v].truth.unwrap_or(0);
                (truth == 0, truth, v)
            })
    }

    /// Primary-suppressed counts the attacker can prove to be at least 1,
    /// and revised counts it can prove to have changed by a little.
    fn exposed(&self) -> Result<Vec<usize>, Contradiction> {
        let (lo, hi) = self.attack()?;
        Ok((0..self.vars.len())
            .filter(|&v| {
                let var = &self.vars[v];
                let small_count = var.suppressed && var.truth.is_some_and(small) && lo[v] >= 1;
                let small_change = match (var.before, var.truth) {
                    (Some((then, (lo_then, hi_then))), Some(now)) => {
                        small(now.abs_diff(then)) && (lo[v] > hi_then || hi[v] < lo_then)
                    }
                    _ => false,
                };
                small_count || small_change
            })
            .collect())
    }

    /// The attacker: interval bounds on every count from the published
    /// figures and the relations, propagated to a fixed point.
    fn attack(&self) -> Result<(Vec<i64>, Vec<i64>), Contradiction> {
        let mut lo = vec![0; self.vars.len()];
        let mut hi = vec![INFINITE; self.vars.len()];
        for (v, var) in self.vars.iter().enumerate() {
            if !var.suppressed {
                (lo[v], hi[v]) = bounds_of(var.published);
            }
        }
        let mut constraints = Vec::new();
        for g in &self.groups {
            for measure in [DEN, NUM] {
                let parent = g.parent * 2 + measure;
                let children: Vec<usize> = g.children.iter().map(|c| c * 2 + measure).collect();
                let exact = match g.relation {
                    Relation::Sum => true,
                    // Exact when it holds in truth: assume the attacker knows.
                    Relation::Union => {
                        let truth = |v: usize| self.vars[v].truth;
                        let sum: Option<u32> = children.iter().map(|&c| truth(c)).sum();
                        truth(parent).is_some() && truth(parent) == sum
                    }
                };
                constraints.push(Constraint {
                    parent,
                    children,
                    exact,
                });
            }
        }
        for class in &self.twins {
            for pair in class.windows(2) {
                constraints.push(Constraint {
                    parent: pair[0],
                    children: vec![pair[1]],
                    exact: true,
                });
            }
        }
        let pairs: Vec<(usize, usize)> = (0..self.names.len())
            .map(|c| (c * 2 + NUM, c * 2 + DEN))
            .collect();
        propagate(&mut lo, &mut hi, &constraints, &pairs)?;
        Ok((lo, hi))
    }

    /// The publication: every current cell, rounded or suppressed, with what
    /// the attacker can prove about it once published.
    pub(crate) fn finish(self, catalogue: &Catalogue) -> Result<Vec<Protected>, Held> {
        let (lo, hi) = self.attack()?;
        let mut out = Vec::with_capacity(self.current);
        for (cell, name) in self.names.into_iter().take(self.current).enumerate() {
            let count = |v: &Var| Count {
                value: if v.suppressed { 0 } else { v.published },
                suppressed: v.suppressed,
            };
            let (denominator, numerator) = (
                count(&self.vars[cell * 2 + DEN]),
                count(&self.vars[cell * 2 + NUM]),
            );
            let indicator = &catalogue.indicators[usize::from(name.indicator)];
            let shown = !denominator.suppressed && !numerator.suppressed && denominator.value > 0;
            let ratio = numerator.value as f64 / denominator.value as f64;
            let value = shown
                .then(|| match indicator.unit {
                    Unit::Proportion => Some(ratio),
                    Unit::RatePerThousand => Some(ratio * 1000.0),
                    Unit::MedianDays => self.figures[cell].as_ref().and_then(|f| f.median),
                })
                .flatten();
            let [den, num] = [cell * 2 + DEN, cell * 2 + NUM];
            let truth = |v: usize| self.vars[v].truth.unwrap_or(0);
            out.push(Protected {
                name,
                published: Published {
                    numerator,
                    denominator,
                    value,
                },
                before_next: Before {
                    truth: [truth(den), truth(num)],
                    known: [(lo[den], hi[den]), (lo[num], hi[num])],
                },
            });
        }
        Ok(out)
    }
}

/// What a published figure tells the attacker: 0 is exact; anything else was
/// rounded from within 4 either side, and is not a small count.
fn bounds_of(published: i64) -> (i64, i64) {
    if published == 0 {
        (0, 0)
    } else {
        (
            (published - (BASE - 1)).max(i64::from(THRESHOLD) + 1),
            published + (BASE - 1),
        )
    }
}

#[cfg(test)]
mod tests;
