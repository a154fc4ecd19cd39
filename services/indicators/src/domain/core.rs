//! The aggregation core: distinct-person numerators and denominators for every
//! indicator × area × period × stratum, kept up to date as observations
//! arrive and are withdrawn.
//!
//! Each person's contribution to one period is a sorted list of memberships
//! (indicator, area; in the numerator or not; their measurement). A change to a
//! person recomputes the lists of only the periods it touches, before and
//! after, and applies the difference — so counting stays exact (distinct
//! people, duplicates ignored, withdrawals undone) at a cost proportional to
//! the change. A rebuild stages every person first and counts each once.
//! The months and quarters in which someone is under supervision but nothing
//! of theirs was observed are counted by ranges instead ([`coverage`]).

mod coverage;
mod membership;

pub(crate) use membership::day;

use super::area::{Area, Areas};
use super::period::Period;
use super::person::{Input, Obs, ObservationError, Person, Spell, month_index, push_periods};
use super::stratum::{PER_PERSON, Stratum};
use crate::catalogue::Catalogue;
use coverage::{Coverage, Run};
use rustc_hash::FxHashMap;
use std::cmp::Ordering;

/// A distinct-person count pair. For a median indicator both are the number
/// of people measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Tally {
    pub den: u32,
    pub num: u32,
    /// The cell keys: the sums, modulo 256, of the record keys of the
    /// people counted in `den` and in `num` (see [`RecordKeys`]).
    pub den_key: u8,
    pub num_key: u8,
}

/// Every person's record key, for the cell key method: a byte drawn from a
/// keyed hash of their pseudonymous key, so it is the same in every run and
/// rebuild and cannot be worked out by anyone without the secret (the
/// pseudonyms themselves travel on the observations topic). A cell's key is
/// the sum of its people's record keys, so the same people always give the
/// same key and any other set of people an unrelated one.
#[derive(Debug, Clone)]
pub struct RecordKeys(ring::hmac::Key);

impl RecordKeys {
    /// Keys drawn with `secret` (the service keeps one, made at its first start).
    pub fn new(secret: &[u8]) -> Self {
        Self(ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret))
    }

    /// Keys drawn with a fixed secret everyone can read: for tests and
    /// benchmarks only.
    pub fn public() -> Self {
        Self::new(b"throughcare public test secret")
    }

    /// The record key of the person `key` names.
    pub fn of(&self, key: &str) -> u8 {
        ring::hmac::sign(&self.0, key.as_bytes()).as_ref()[0]
    }
}

/// One cell by name: what the core's packed key stands for.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CellName {
    /// Index into the catalogue's indicators.
    pub indicator: u8,
    pub period: Period,
    pub area: Area,
    pub stratum: Stratum,
}

/// A cell's true figures, before disclosure control.
#[derive(Debug, Clone, PartialEq)]
pub struct CellFigures {
    pub tally: Tally,
    /// Median days, for a median indicator.
    pub median: Option<f64>,
}

// A cell key packs indicator (8 bits), period id (18), area (24) and
// stratum (7); ordering by key groups cells by indicator, then period.
const STRATUM_BITS: u32 = 7;
const _: () = assert!(super::stratum::COUNT as u32 <= 1 << STRATUM_BITS);
const AREA_BITS: u32 = 24;
const PERIOD_SHIFT: u32 = STRATUM_BITS + AREA_BITS;
const INDICATOR_SHIFT: u32 = PERIOD_SHIFT + 18;

#[inline]
fn key(indicator: usize, period: u32, area: u32) -> u64 {
    (indicator as u64) << INDICATOR_SHIFT
        | u64::from(period) << PERIOD_SHIFT
        | u64::from(area) << STRATUM_BITS
}

fn unpack(key: u64) -> (u8, u32, u32, Stratum) {
    (
        (key >> INDICATOR_SHIFT) as u8,
        ((key >> PERIOD_SHIFT) & ((1 << 18) - 1)) as u32,
        ((key >> STRATUM_BITS) & ((1 << AREA_BITS) - 1)) as u32,
        (key & ((1 << STRATUM_BITS) - 1)) as u8,
    )
}

/// One person's place in one indicator and area for one period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Member {
    /// The cell key with stratum 0.
    base: u64,
    num: bool,
    /// The person's measurement, for a median indicator.
    measure: Option<i32>,
}

/// Counts of values, sorted by value: enough to take a median.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Histogram(Vec<(i32, u32)>);

impl Histogram {
    fn add(&mut self, value: i32) {
        match self.0.binary_search_by_key(&value, |e| e.0) {
            Ok(i) => self.0[i].1 += 1,
            Err(i) => self.0.insert(i, (value, 1)),
        }
    }

    fn remove(&mut self, value: i32) {
        if let Ok(i) = self.0.binary_search_by_key(&value, |e| e.0) {
            self.0[i].1 -= 1;
            if self.0[i].1 == 0 {
                self.0.remove(i);
            }
        }
    }

    fn median(&self) -> Option<f64> {
        let n: u32 = self.0.iter().map(|e| e.1).sum();
        if n == 0 {
            return None;
        }
        // The values at 0-based ranks (n-1)/2 and n/2, averaged.
        let at = |rank: u32| {
            let mut seen = 0;
            self.0
                .iter()
                .find(|e| {
                    seen += e.1;
                    seen > rank
                })
                .map(|e| f64::from(e.0))
        };
        Some((at((n - 1) / 2)? + at(n / 2)?) / 2.0)
    }
}

/// A change to one person, prepared but not yet counted (so it can be made
/// durable first).
#[derive(Debug, Clone)]
pub struct Change {
    /// The person's key (the surviving one, if theirs was linked).
    pub person_key: Box<str>,
    pub person: Person,
    /// Ids of the periods whose figures may change.
    touched: Vec<u32>,
    /// Keys that name this person from now on (a link).
    pub merged: Vec<Box<str>>,
    /// Keys whose people were taken into this one, and are emptied.
    pub absorbed: Vec<Box<str>>,
    /// The current month when it was prepared.
    horizon: u32,
}

impl Change {
    /// The months (indices) whose figures may change.
    pub fn months(&self) -> impl Iterator<Item = u32> + '_ {
        self.touched
            .iter()
            .filter_map(|&id| match Period::from_id(id) {
                Period::Month(m) => Some(m),
                Period::Quarter(_) => None,
            })
    }
}

#[derive(Debug, Default)]
struct Scratch {
    old: Vec<Member>,
    new: Vec<Member>,
    buffers: membership::Buffers,
    periods: Vec<u32>,
    spells: [Vec<Spell>; 2],
    runs: [Vec<Run>; 2],
}

/// The aggregation core.
#[derive(Debug)]
pub struct Aggregator {
    catalogue: &'static Catalogue,
    areas: Areas,
    index: FxHashMap<Box<str>, u32>,
    people: Vec<Person>,
    /// Keys linked to another person's: merged key to surviving key, kept
    /// path-compressed (no surviving key is itself merged).
    aliases: FxHashMap<Box<str>, Box<str>>,
    /// Record keys, by person id.
    record_keys: Vec<u8>,
    keys: RecordKeys,
    counts: FxHashMap<u64, Tally>,
    measures: FxHashMap<u64, Histogram>,
    /// The caseload in periods nothing was observed in, by ranges.
    coverage: Coverage,
    /// Whether the counts reflect every person (false while staging).
    counted: bool,
    earliest_month: Option<u32>,
    /// The current month: open spells of supervision run through it.
    horizon: u32,
    observations: usize,
    scratch: Scratch,
}

impl Aggregator {
    /// A core whose record keys come from a fixed, public secret: for tests
    /// and benchmarks. The service uses [`Aggregator::keyed`].
    pub fn new(catalogue: &'static Catalogue) -> Self {
        Self::keyed(catalogue, RecordKeys::public())
    }

    /// A core drawing record keys with `keys`.
    pub fn keyed(catalogue: &'static Catalogue, keys: RecordKeys) -> Self {
        Self {
            catalogue,
            areas: Areas::default(),
            index: FxHashMap::default(),
            people: Vec::new(),
            aliases: FxHashMap::default(),
            record_keys: Vec::new(),
            keys,
            counts: FxHashMap::default(),
            measures: FxHashMap::default(),
            coverage: Coverage::default(),
            counted: true,
            earliest_month: None,
            horizon: month_index(chrono::Utc::now().date_naive()),
            observations: 0,
            scratch: Scratch::default(),
        }
    }

    pub fn catalogue(&self) -> &'static Catalogue {
        self.catalogue
    }

    pub fn areas(&self) -> &Areas {
        &self.areas
    }

    pub fn people(&self) -> usize {
        self.people.iter().filter(|p| !p.obs.is_empty()).count()
    }

    /// Observations currently held (withdrawn ones excluded).
    pub fn observations(&self) -> usize {
        self.observations
    }

    /// The current month (an index), through which open spells of
    /// supervision count.
    pub fn horizon(&self) -> u32 {
        self.horizon
    }

    /// Moves the current month to `horizon`: people in a spell of
    /// supervision still running are counted in the months it gains (or not
    /// in those it loses). Only spells running past the earlier of the two
    /// depend on the move, and only in the months between them.
    pub fn set_horizon(&mut self, horizon: u32) {
        let old = std::mem::replace(&mut self.horizon, horizon);
        if old == horizon || !self.counted || self.catalogue.caseload == 0 {
            return;
        }
        let (low, high) = (old.min(horizon), old.max(horizon));
        let mut spells = std::mem::take(&mut self.scratch.spells[0]);
        let mut periods = std::mem::take(&mut self.scratch.periods);
        for id in 0..self.people.len() {
            self.people[id].spells(&mut spells);
            if !spells
                .iter()
                .any(|s| s.runs_past(low) && s.start.month < high)
            {
                continue;
            }
            let person = std::mem::take(&mut self.people[id]);
            let key = self.record_keys[id];
            self.move_runs((&person, &spells, old), (&person, &spells, horizon), key);
            // Periods with observations in them are counted one by one.
            periods.clear();
            for month in low + 1..=high {
                push_periods(month, &mut periods);
            }
            periods.retain(|&p| person.observed_in(Period::from_id(p)));
            for &period in &periods {
                self.count(
                    (&person, &spells, old),
                    (&person, &spells, horizon),
                    Period::from_id(period),
                    self.record_keys[id],
                );
            }
            self.people[id] = person;
        }
        self.scratch.spells[0] = spells;
        self.scratch.periods = periods;
    }

    /// Moves one person's runs of bare caseload periods from `old` (as
    /// counted with its spells and horizon) to `new`.
    fn move_runs(
        &mut self,
        (old, old_spells, old_horizon): (&Person, &[Spell], u32),
        (new, new_spells, new_horizon): (&Person, &[Spell], u32),
        key: u8,
    ) {
        let [mut before, mut after] = std::mem::take(&mut self.scratch.runs);
        coverage::runs(old, old_spells, old_horizon, &mut before);
        coverage::runs(new, new_spells, new_horizon, &mut after);
        if before != after {
            self.coverage.apply(&before, key, false);
            self.coverage.apply(&after, key, true);
        }
        self.scratch.runs = [before, after];
    }

    /// The earliest month anything was observed in.
    pub fn earliest_month(&self) -> Option<Period> {
        self.earliest_month.map(Period::Month)
    }

    pub fn person(&self, key: &str) -> Option<&Person> {
        self.index.get(key).map(|&i| &self.people[i as usize])
    }

    /// The key `key` names now: the surviving key it was linked to, or itself.
    pub fn canonical<'a>(&'a self, key: &'a str) -> &'a str {
        self.aliases.get(key).map_or(key, |survivor| &**survivor)
    }

    /// Every linked key with the key it names, for storing.
    pub fn each_alias(&self) -> impl Iterator<Item = (&str, &str)> {
        self.aliases.iter().map(|(m, s)| (&**m, &**s))
    }

    /// Records a stored link (while staging, before people are counted).
    pub fn alias(&mut self, merged: &str, survivor: &str) {
        if merged != survivor {
            self.aliases.insert(merged.into(), survivor.into());
        }
    }

    /// Works out what `input` changes, without counting it yet. `None` when
    /// it changes nothing (a duplicate).
    pub fn prepare(&mut self, input: &Input) -> Result<Option<Change>, ObservationError> {
        input.check()?;
        let key: Box<str> = self.canonical(input.person_key()).into();
        let reach = Some(self.catalogue);
        let mut person = self.person(&key).cloned().unwrap_or_default();
        let before = person.clone();
        let mut touched = Vec::new();
        let (mut merged, mut absorbed): (Vec<Box<str>>, Vec<Box<str>>) = (Vec::new(), Vec::new());
        match input {
            Input::Recorded(record) => {
                person.record(record, &mut self.areas, reach, &mut touched)?
            }
            Input::Retracted(retraction) => {
                person.retract(&retraction.episode_key, reach, &mut touched)
            }
            Input::Linked(link) => {
                for m in link.merged_keys.iter().filter(|m| **m != *key) {
                    let current = self.canonical(m);
                    if current != &*key {
                        if let Some(other) = self.person(current).filter(|p| !p.is_empty()) {
                            person.absorb(other)?;
                            absorbed.push(current.into());
                        }
                        merged.push(current.into());
                    }
                    if self.aliases.get(m.as_str()).is_none_or(|s| *s != key) {
                        merged.push(m.as_str().into());
                    }
                }
                merged.sort();
                merged.dedup();
                let absorbed_people = absorbed.iter().filter_map(|a| self.person(a));
                let people: Vec<&Person> = absorbed_people.chain([&before, &person]).collect();
                self.touch_every_period(&people, &mut touched);
            }
        }
        if person == before && merged.is_empty() {
            return Ok(None);
        }
        self.touch_spells(&before, &person, &mut touched);
        Ok(Some(Change {
            person_key: key,
            person,
            touched,
            merged,
            absorbed,
            horizon: self.horizon,
        }))
    }

    /// When a change moves the person's spells of supervision, every month
    /// of their spells before and after it may count them differently.
    fn touch_spells(&mut self, before: &Person, after: &Person, touched: &mut Vec<u32>) {
        if self.catalogue.caseload == 0 {
            return;
        }
        let [old, new] = &mut self.scratch.spells;
        before.spells(old);
        after.spells(new);
        if old == new {
            return;
        }
        // Only the months whose covering spells differ count differently.
        let h = self.horizon;
        let months = old.iter().chain(new.iter()).map(|s| s.months(h));
        let first = months.clone().map(|m| *m.start()).min().unwrap_or(0);
        let last = months.map(|m| *m.end()).max().unwrap_or(0);
        fn covering(spells: &[Spell], month: u32, h: u32) -> impl Iterator<Item = Obs> + '_ {
            spells
                .iter()
                .filter(move |s| s.months(h).contains(&month))
                .map(|s| s.start)
        }
        for month in first..=last {
            if !covering(old, month, h).eq(covering(new, month, h)) {
                push_periods(month, touched);
            }
        }
        touched.sort_unstable();
        touched.dedup();
    }

    /// Adds every period any of `people` counts in now to `touched`.
    fn touch_every_period(&self, people: &[&Person], touched: &mut Vec<u32>) {
        let (mut spells, mut periods) = (Vec::new(), Vec::new());
        for person in people {
            person.spells(&mut spells);
            person.periods(&spells, self.horizon, &mut periods);
            touched.extend_from_slice(&periods);
        }
        touched.sort_unstable();
        touched.dedup();
    }

    /// Counts a prepared change.
    pub fn apply(&mut self, mut change: Change) {
        if change.horizon != self.horizon {
            // The current month moved since it was prepared: the months an
            // open spell of the person's gained (or lost) are touched too.
            let stored = change
                .absorbed
                .iter()
                .chain([&change.person_key])
                .filter_map(|key| self.person(key));
            let people: Vec<&Person> = stored.chain([&change.person]).collect();
            self.touch_every_period(&people, &mut change.touched);
        }
        let empty = Person::default();
        for absorbed in &change.absorbed {
            let id = self.person_id(absorbed);
            let old = std::mem::take(&mut self.people[id]);
            self.observations -= old.obs.len();
            if self.counted {
                let h = self.horizon;
                let mut spells = std::mem::take(&mut self.scratch.spells[0]);
                old.spells(&mut spells);
                let key = self.record_keys[id];
                for &period in &change.touched {
                    self.count(
                        (&old, &spells, h),
                        (&empty, &[], h),
                        Period::from_id(period),
                        key,
                    );
                }
                self.move_runs((&old, &spells, h), (&empty, &[], h), key);
                self.scratch.spells[0] = spells;
            }
        }
        for survivor in self.aliases.values_mut() {
            if change.absorbed.contains(survivor) || change.merged.contains(survivor) {
                *survivor = change.person_key.clone();
            }
        }
        for merged in &change.merged {
            self.aliases
                .insert(merged.clone(), change.person_key.clone());
        }
        let id = self.person_id(&change.person_key);
        let old = std::mem::replace(&mut self.people[id], change.person);
        let new = std::mem::take(&mut self.people[id]);
        self.observations = self.observations + new.obs.len() - old.obs.len();
        self.note_months(&new);
        if self.counted {
            let h = self.horizon;
            let [mut old_spells, mut new_spells] = std::mem::take(&mut self.scratch.spells);
            old.spells(&mut old_spells);
            new.spells(&mut new_spells);
            let key = self.record_keys[id];
            for &period in &change.touched {
                self.count(
                    (&old, &old_spells, h),
                    (&new, &new_spells, h),
                    Period::from_id(period),
                    key,
                );
            }
            self.move_runs((&old, &old_spells, h), (&new, &new_spells, h), key);
            self.scratch.spells = [old_spells, new_spells];
        }
        self.people[id] = new;
    }

    /// Prepares and counts `input`; `false` when it changed nothing. While
    /// staging, it only changes the person (in place) and always says `true`.
    pub fn ingest(&mut self, input: &Input) -> Result<bool, ObservationError> {
        if !self.counted && !matches!(input, Input::Linked(_)) {
            self.stage_input(input)?;
            return Ok(true);
        }
        Ok(match self.prepare(input)? {
            Some(change) => {
                self.apply(change);
                true
            }
            None => false,
        })
    }

    /// Starts a rebuild: people are added with [`Aggregator::ingest`] or
    /// [`Aggregator::load`] without being counted until [`Aggregator::count_all`].
    pub fn stage(&mut self) {
        self.counted = false;
        self.counts.clear();
        self.measures.clear();
        self.coverage.clear();
    }

    fn stage_input(&mut self, input: &Input) -> Result<(), ObservationError> {
        input.check()?;
        let key: Box<str> = self.canonical(input.person_key()).into();
        let id = self.person_id(&key);
        let mut person = std::mem::take(&mut self.people[id]);
        let before = person.obs.len();
        let mut touched = std::mem::take(&mut self.scratch.periods);
        touched.clear();
        let result = match input {
            Input::Recorded(record) => person.record(record, &mut self.areas, None, &mut touched),
            Input::Retracted(retraction) => {
                person.retract(&retraction.episode_key, None, &mut touched);
                Ok(())
            }
            Input::Linked(_) => unreachable!("links are applied through prepare"),
        };
        self.observations = self.observations + person.obs.len() - before;
        self.note_months(&person);
        self.people[id] = person;
        self.scratch.periods = touched;
        result
    }

    /// Adds a stored person (from the database) while staging.
    pub fn load(&mut self, key: &str, person: Person) {
        debug_assert!(!self.counted, "load only while staging");
        let id = self.person_id(key);
        self.observations += person.obs.len();
        self.note_months(&person);
        self.people[id] = person;
    }

    pub fn areas_mut(&mut self) -> &mut Areas {
        &mut self.areas
    }

    /// Counts every staged person once.
    pub fn count_all(&mut self) {
        let empty = Person::default();
        let mut periods = std::mem::take(&mut self.scratch.periods);
        let mut spells = std::mem::take(&mut self.scratch.spells[0]);
        for id in 0..self.people.len() {
            let person = std::mem::take(&mut self.people[id]);
            let h = self.horizon;
            person.spells(&mut spells);
            person.observed_periods(&mut periods);
            let key = self.record_keys[id];
            for &period in &periods {
                self.count(
                    (&empty, &[], h),
                    (&person, &spells, h),
                    Period::from_id(period),
                    key,
                );
            }
            self.move_runs((&empty, &[], h), (&person, &spells, h), key);
            self.people[id] = person;
        }
        self.scratch.periods = periods;
        self.scratch.spells[0] = spells;
        self.counted = true;
    }

    /// Every stored person, for writing them back (a rebuild that replaces).
    pub fn each_person(&self) -> impl Iterator<Item = (&str, &Person)> {
        self.index
            .iter()
            .map(|(k, &i)| (&**k, &self.people[i as usize]))
            .filter(|(_, p)| !p.is_empty())
    }

    fn person_id(&mut self, key: &str) -> usize {
        if let Some(&id) = self.index.get(key) {
            return id as usize;
        }
        let id = self.people.len();
        self.people.push(Person::default());
        self.record_keys.push(self.keys.of(key));
        self.index.insert(key.into(), id as u32);
        id
    }

    fn note_months(&mut self, person: &Person) {
        if let Some(first) = person.obs.iter().map(|o| o.month).min() {
            self.earliest_month = Some(self.earliest_month.map_or(first, |e| e.min(first)));
        }
    }

    /// Moves one person's counts for `period` from `old` (as counted with
    /// the horizon `old_horizon`) to `new` (with `new_horizon`). A period
    /// nothing of theirs was observed in is counted by ranges, not here.
    fn count(
        &mut self,
        (old, old_spells, old_horizon): (&Person, &[Spell], u32),
        (new, new_spells, new_horizon): (&Person, &[Spell], u32),
        period: Period,
        record_key: u8,
    ) {
        let (was, is) = (old.observed_in(period), new.observed_in(period));
        if !was && !is {
            return;
        }
        let mut scratch = std::mem::take(&mut self.scratch);
        let before = if was {
            membership::members(
                self.catalogue,
                old,
                old_spells,
                period,
                old_horizon,
                &mut scratch.old,
                &mut scratch.buffers,
            )
        } else {
            None
        };
        let after = if is {
            membership::members(
                self.catalogue,
                new,
                new_spells,
                period,
                new_horizon,
                &mut scratch.new,
                &mut scratch.buffers,
            )
        } else {
            None
        };
        match (before, after) {
            (Some(b), Some(a)) if b == a => {
                let strata = a.strata();
                let (mut i, mut j) = (0, 0);
                let (old, new) = (&scratch.old, &scratch.new);
                while i < old.len() || j < new.len() {
                    let order = match (old.get(i), new.get(j)) {
                        (Some(o), Some(n)) => o.base.cmp(&n.base),
                        (Some(_), None) => Ordering::Less,
                        _ => Ordering::Greater,
                    };
                    match order {
                        Ordering::Less => {
                            self.add(&old[i], strata, false, record_key);
                            i += 1;
                        }
                        Ordering::Greater => {
                            self.add(&new[j], strata, true, record_key);
                            j += 1;
                        }
                        Ordering::Equal => {
                            if old[i] != new[j] {
                                self.add(&old[i], strata, false, record_key);
                                self.add(&new[j], strata, true, record_key);
                            }
                            i += 1;
                            j += 1;
                        }
                    }
                }
            }
            (b, a) => {
                if let Some(b) = b {
                    for m in &scratch.old {
                        self.add(m, b.strata(), false, record_key);
                    }
                }
                if let Some(a) = a {
                    for m in &scratch.new {
                        self.add(m, a.strata(), true, record_key);
                    }
                }
            }
        }
        self.scratch = scratch;
    }

    #[inline]
    fn add(&mut self, member: &Member, strata: [Stratum; PER_PERSON], add: bool, record_key: u8) {
        let num_key = if member.num { record_key } else { 0 };
        for stratum in strata {
            let key = member.base | u64::from(stratum);
            let tally = self.counts.entry(key).or_default();
            if add {
                tally.den += 1;
                tally.num += u32::from(member.num);
                tally.den_key = tally.den_key.wrapping_add(record_key);
                tally.num_key = tally.num_key.wrapping_add(num_key);
            } else {
                tally.den -= 1;
                tally.num -= u32::from(member.num);
                tally.den_key = tally.den_key.wrapping_sub(record_key);
                tally.num_key = tally.num_key.wrapping_sub(num_key);
                if tally.den == 0 {
                    self.counts.remove(&key);
                }
            }
            if let Some(value) = member.measure {
                let histogram = self.measures.entry(key).or_default();
                if add {
                    histogram.add(value);
                } else {
                    histogram.remove(value);
                    if histogram.0.is_empty() {
                        self.measures.remove(&key);
                    }
                }
            }
        }
    }

    /// The true figures of every cell in `periods`.
    pub fn cells(&self, periods: &[Period]) -> Vec<(CellName, CellFigures)> {
        let ids: Vec<u32> = periods.iter().map(|p| p.id()).collect();
        self.tallies(|period| ids.contains(&period))
            .into_iter()
            .map(|(k, t)| self.named(k, t))
            .collect()
    }

    /// Every cell, sorted by name: what a restart or a rebuild must reproduce.
    pub fn all_cells(&self) -> Vec<(CellName, CellFigures)> {
        let mut cells: Vec<_> = self
            .tallies(|_| true)
            .into_iter()
            .map(|(k, t)| self.named(k, t))
            .collect();
        cells.sort_by(|a, b| a.0.cmp(&b.0));
        cells
    }

    /// The tallies of every cell in the periods `wanted` (by id): those
    /// counted period by period with the caseload's runs added.
    fn tallies(&self, wanted: impl Fn(u32) -> bool) -> FxHashMap<u64, Tally> {
        let mut cells: FxHashMap<u64, Tally> = self
            .counts
            .iter()
            .filter(|(k, _)| wanted(unpack(**k).1))
            .map(|(k, t)| (*k, *t))
            .collect();
        self.coverage.add_to(self.catalogue, wanted, &mut cells);
        cells
    }

    /// A digest of [`Aggregator::all_cells`].
    pub fn fingerprint(&self) -> String {
        let mut context = ring::digest::Context::new(&ring::digest::SHA256);
        for (name, figures) in self.all_cells() {
            context.update(
                format!(
                    "{}|{}|{}|{}|{}|{}|{}|{:?}\n",
                    name.indicator,
                    name.period,
                    name.area.kind.as_str(),
                    name.area.code,
                    name.stratum,
                    figures.tally.den,
                    figures.tally.num,
                    figures.median
                )
                .as_bytes(),
            );
        }
        context
            .finish()
            .as_ref()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    fn named(&self, key: u64, tally: Tally) -> (CellName, CellFigures) {
        let (indicator, period, area, stratum) = unpack(key);
        (
            CellName {
                indicator,
                period: Period::from_id(period),
                area: self.areas.get(area).clone(),
                stratum,
            },
            CellFigures {
                tally,
                median: self.measures.get(&key).and_then(Histogram::median),
            },
        )
    }
}

#[cfg(test)]
mod tests;
