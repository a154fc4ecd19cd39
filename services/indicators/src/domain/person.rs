//! What the service keeps about one pseudonymous person: their coded
//! observations, compactly, and the episodes withdrawn from them. This is the
//! only per-person state; every indicator is derived from it.

use super::area::{AreaKind, Areas, Place};
use super::core::day;
use super::period::{Period, YEARS};
use super::stratum::Demographics;
use crate::catalogue::Catalogue;
use chrono::{DateTime, Datelike};
use throughcare_platform::clock::from_timestamp;
use throughcare_proto::events::v1::{
    Observation, ObservationsRecorded, ObservationsRetracted, ObservedFact, PersonsLinked,
};
use throughcare_proto::types::v1::ServiceType;

const MAX_KEY_LEN: usize = 128;

/// One observation, as the core keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Obs {
    /// Microseconds since the Unix epoch.
    pub at: i64,
    /// The month index ([`Period::Month`]) `at` falls in.
    pub month: u32,
    pub value: i32,
    pub fact: u8,
    pub service: u8,
    /// Index into the person's episodes.
    pub episode: u16,
    /// Index into the person's places.
    pub place: u16,
    pub demographics: Demographics,
}

/// One person's state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Person {
    pub obs: Vec<Obs>,
    pub places: Vec<Place>,
    pub episodes: Vec<Box<str>>,
    /// Episodes withdrawn: their observations are gone and stay gone, even
    /// if a record of them arrives late.
    pub retracted: Vec<Box<str>>,
}

/// A spell of probation supervision: from a start fact to the next end fact,
/// or to the next start (which takes the supervision over), by month.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spell {
    /// The observation that began it: the spell is in its place, and the
    /// person has its demographics in months they have no observation in.
    pub start: Obs,
    /// The month it ended in; `None` while it is open.
    pub end: Option<u32>,
}

impl Spell {
    /// The months it covers so far: to its end, but no further than
    /// `horizon` (the current month: an order's end may be set ahead), and
    /// always its own first month.
    #[inline]
    pub fn months(&self, horizon: u32) -> std::ops::RangeInclusive<u32> {
        let last = self.end.map_or(horizon, |end| end.min(horizon));
        self.start.month..=last.max(self.start.month)
    }

    /// Whether the months it covers depend on the current month being
    /// after `month`.
    #[inline]
    pub fn runs_past(&self, month: u32) -> bool {
        self.end.is_none_or(|end| end > month)
    }
}

const SUPERVISION_STARTED: u8 = ObservedFact::SupervisionStarted as u8;
const SUPERVISION_ENDED: u8 = ObservedFact::SupervisionEnded as u8;

/// Why a record of observations cannot be used. Never names a person.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ObservationError(pub String);

/// A record from the observations topic.
#[derive(Debug, Clone)]
pub enum Input {
    Recorded(ObservationsRecorded),
    Retracted(ObservationsRetracted),
    /// Keys found to name one person: what is held under them joins the
    /// surviving key's person, who is counted once.
    Linked(PersonsLinked),
}

impl Input {
    pub fn person_key(&self) -> &str {
        match self {
            Input::Recorded(r) => &r.person_key,
            Input::Retracted(r) => &r.person_key,
            Input::Linked(l) => &l.surviving_key,
        }
    }

    /// Checks the parts every input needs.
    pub fn check(&self) -> Result<(), ObservationError> {
        let key = |name: &str, value: &str| {
            if value.is_empty() {
                Err(ObservationError(format!("{name}: missing")))
            } else if value.len() > MAX_KEY_LEN {
                Err(ObservationError(format!(
                    "{name}: longer than {MAX_KEY_LEN} characters"
                )))
            } else {
                Ok(())
            }
        };
        key("person_key", self.person_key())?;
        match self {
            Input::Retracted(r) => key("episode_key", &r.episode_key)?,
            Input::Linked(l) => {
                for (i, merged) in l.merged_keys.iter().enumerate() {
                    key(&format!("merged_keys[{i}]"), merged)?;
                }
            }
            Input::Recorded(_) => {}
        }
        Ok(())
    }
}

/// An observation checked and resolved, before it joins a person.
struct Incoming<'a> {
    at: i64,
    month: u32,
    value: i32,
    fact: u8,
    service: u8,
    episode: &'a str,
    place: Place,
    demographics: Demographics,
}

fn check<'a>(
    o: &'a Observation,
    person_key: &str,
    areas: &mut Areas,
) -> Result<Incoming<'a>, String> {
    if !o.person_key.is_empty() && o.person_key != person_key {
        return Err("person_key: differs from the record's".into());
    }
    let fact = ObservedFact::try_from(o.fact)
        .ok()
        .filter(|f| *f != ObservedFact::Unspecified)
        .ok_or("fact: unknown")?;
    let service = ServiceType::try_from(o.service).map_err(|_| "service: unknown")?;
    let observed = o.observed_at.as_ref().ok_or("observed_at: missing")?;
    let at = from_timestamp(observed, "observed_at")
        .ok()
        .filter(|t| YEARS.contains(&t.year()))
        .ok_or("observed_at: out of range")?;
    if o.episode_key.len() > MAX_KEY_LEN {
        return Err(format!("episode_key: longer than {MAX_KEY_LEN} characters"));
    }
    Ok(Incoming {
        at: at.timestamp_micros(),
        month: month_index(at.date_naive()),
        value: o.value.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32,
        fact: fact as u8,
        service: service as u8,
        episode: &o.episode_key,
        place: areas.place(o.areas.as_ref())?,
        demographics: Demographics::new(o.sex, o.age_band, o.ethnic_group),
    })
}

impl Person {
    /// Adds a record's observations (all of them, or none if any is
    /// malformed). Identical observations are kept once, and observations of
    /// a withdrawn episode are ignored. Pushes the ids of the periods whose
    /// figures may change onto `touched`: a fact may complete a cohort whose
    /// denominator fact came some days before it, as `reach` (the catalogue;
    /// `None` while staging, when nothing is counted) says.
    pub fn record(
        &mut self,
        record: &ObservationsRecorded,
        areas: &mut Areas,
        reach: Option<&Catalogue>,
        touched: &mut Vec<u32>,
    ) -> Result<(), ObservationError> {
        let incoming = record
            .observations
            .iter()
            .enumerate()
            .map(|(i, o)| {
                check(o, &record.person_key, areas)
                    .map_err(|e| ObservationError(format!("observations[{i}].{e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        for o in incoming {
            if self.retracted.iter().any(|r| **r == *o.episode) {
                continue;
            }
            let episode = intern(
                &mut self.episodes,
                |e| **e == *o.episode,
                || o.episode.into(),
            )?;
            let place = intern(&mut self.places, |p| *p == o.place, || o.place)?;
            let obs = Obs {
                at: o.at,
                month: o.month,
                value: o.value,
                fact: o.fact,
                service: o.service,
                episode,
                place,
                demographics: o.demographics,
            };
            if self.obs.contains(&obs) {
                continue;
            }
            self.obs.push(obs);
            self.touch_episode(episode, reach, touched);
        }
        Ok(())
    }

    /// Takes in everything `other` holds — the same person, known under
    /// another key: their withdrawn episodes stay withdrawn for both, and an
    /// observation both hold is kept once.
    pub fn absorb(&mut self, other: &Person) -> Result<(), ObservationError> {
        let mut touched = Vec::new();
        for episode in &other.retracted {
            self.retract(episode, None, &mut touched);
        }
        for o in &other.obs {
            let name = &other.episodes[usize::from(o.episode)];
            if self.retracted.iter().any(|r| r == name) {
                continue;
            }
            let episode = intern(&mut self.episodes, |e| e == name, || name.clone())?;
            let at = other.places[usize::from(o.place)];
            let place = intern(&mut self.places, |p| *p == at, || at)?;
            let obs = Obs {
                episode,
                place,
                ..*o
            };
            if !self.obs.contains(&obs) {
                self.obs.push(obs);
            }
        }
        Ok(())
    }

    /// Withdraws every observation of `episode`, now and later.
    pub fn retract(&mut self, episode: &str, reach: Option<&Catalogue>, touched: &mut Vec<u32>) {
        if !self.retracted.iter().any(|r| **r == *episode) {
            self.retracted.push(episode.into());
        }
        if let Some(index) = self.episodes.iter().position(|e| **e == *episode) {
            self.touch_episode(index as u16, reach, touched);
            self.obs.retain(|o| o.episode as usize != index);
        }
    }

    /// The periods whose figures a change to the episode may move: those of
    /// its observations (a cohort counts a later fact of the same episode in
    /// the period of its first), and of any day as far before each as a
    /// cohort following up with its fact reaches (a cohort counts a fact of
    /// any episode within its window).
    fn touch_episode(&self, episode: u16, reach: Option<&Catalogue>, touched: &mut Vec<u32>) {
        for o in self.obs.iter().filter(|o| o.episode == episode) {
            let days = reach.map_or(0, |c| c.reach_days(o.fact, o.service));
            let earliest = month_of_day(day(o.at) - days).min(o.month);
            for month in earliest..=o.month {
                push_periods(month, touched);
            }
        }
    }

    /// Whether anything of the person's was observed in `period`.
    pub fn observed_in(&self, period: Period) -> bool {
        self.obs.iter().any(|o| period.contains_month(o.month))
    }

    /// The ids of every period the person has an observation in.
    pub fn observed_periods(&self, out: &mut Vec<u32>) {
        out.clear();
        for o in &self.obs {
            push_periods(o.month, out);
        }
        out.sort_unstable();
        out.dedup();
    }

    /// The ids of every period the person has an observation in, or is
    /// under supervision in: `spells` are theirs ([`Person::spells`]),
    /// counted through `horizon`.
    pub fn periods(&self, spells: &[Spell], horizon: u32, out: &mut Vec<u32>) {
        out.clear();
        for o in &self.obs {
            push_periods(o.month, out);
        }
        for spell in spells {
            for month in spell.months(horizon) {
                push_periods(month, out);
            }
        }
        out.sort_unstable();
        out.dedup();
    }

    /// Fills `out` with the person's supervision spells, in order. Facts at
    /// the same moment are taken ends first, so a spell that ends the day
    /// another begins does not swallow it. An end in a start's own episode
    /// (an order's due end) ends that spell only; any other end (a death, a
    /// reception, an end of supervision) ends whichever spell is open.
    pub fn spells(&self, out: &mut Vec<Spell>) {
        out.clear();
        let mut marks: Vec<&Obs> = self
            .obs
            .iter()
            .filter(|o| o.fact == SUPERVISION_STARTED || o.fact == SUPERVISION_ENDED)
            .collect();
        if marks.is_empty() {
            return;
        }
        marks.sort_unstable_by_key(|o| {
            (
                o.at,
                o.fact == SUPERVISION_STARTED,
                &self.episodes[usize::from(o.episode)],
            )
        });
        let starts_episode = |episode: u16| {
            marks
                .iter()
                .any(|s| s.fact == SUPERVISION_STARTED && s.episode == episode)
        };
        // Facts of one moment (a day: referrals dates them at midnight):
        // an end then ends what was open before it; starts follow; an end
        // that found nothing open ends what began that day (a death on the
        // day of release); a spell's own due end comes last.
        let mut open: Option<Obs> = None;
        let mut close = |open: &mut Option<Obs>, end: Option<Obs>, month: u32| {
            if let Some(start) = end.or_else(|| open.take()) {
                out.push(Spell {
                    start,
                    end: Some(month),
                });
            }
        };
        for moment in marks.chunk_by(|a, b| a.at == b.at) {
            let month = moment[0].month;
            let due = |o: &&&Obs| o.fact == SUPERVISION_ENDED && starts_episode(o.episode);
            let notified = moment
                .iter()
                .any(|o| o.fact == SUPERVISION_ENDED && !due(&o));
            let mut ended_before = false;
            if notified && open.is_some() {
                close(&mut open, None, month);
                ended_before = true;
            }
            for start in moment.iter().filter(|o| o.fact == SUPERVISION_STARTED) {
                let previous = open.replace(**start);
                close(&mut None, previous, month);
            }
            if notified && !ended_before && open.is_some() {
                close(&mut open, None, month);
            }
            for end in moment.iter().filter(due) {
                if open.is_some_and(|s| s.episode == end.episode) {
                    close(&mut open, None, month);
                }
            }
        }
        if let Some(start) = open {
            out.push(Spell { start, end: None });
        }
    }

    pub fn is_empty(&self) -> bool {
        self.obs.is_empty() && self.retracted.is_empty()
    }

    /// The stored form.
    pub fn to_stored(&self, areas: &Areas) -> StoredPerson {
        StoredPerson {
            places: self
                .places
                .iter()
                .map(|p| StoredPlace {
                    codes: p
                        .0
                        .iter()
                        .map(|&id| {
                            if id == 0 {
                                String::new()
                            } else {
                                areas.get(id).code.to_string()
                            }
                        })
                        .collect(),
                })
                .collect(),
            episodes: self.episodes.iter().map(|e| e.to_string()).collect(),
            retracted: self.retracted.iter().map(|e| e.to_string()).collect(),
            observations: self
                .obs
                .iter()
                .map(|o| StoredObservation {
                    at: o.at,
                    month: o.month,
                    value: o.value,
                    fact: u32::from(o.fact),
                    service: u32::from(o.service),
                    episode: u32::from(o.episode),
                    place: u32::from(o.place),
                    sex: u32::from(o.demographics.sex),
                    age_band: u32::from(o.demographics.age_band),
                    ethnic_group: u32::from(o.demographics.ethnic_group),
                })
                .collect(),
        }
    }

    /// Back from the stored form; `None` if it is inconsistent.
    pub fn from_stored(stored: StoredPerson, areas: &mut Areas) -> Option<Person> {
        let places = stored
            .places
            .iter()
            .map(|p| {
                let mut place = Place::default();
                for ((slot, kind), code) in place.0.iter_mut().zip(AreaKind::PLACED).zip(&p.codes) {
                    if !code.is_empty() {
                        *slot = areas.intern(super::area::Area {
                            kind,
                            code: code.as_str().into(),
                        });
                    }
                }
                place
            })
            .collect::<Vec<_>>();
        let obs = stored
            .observations
            .iter()
            .map(|o| {
                let small = |v: u32| u8::try_from(v).ok();
                let episode = u16::try_from(o.episode).ok()?;
                let place = u16::try_from(o.place).ok()?;
                ((episode as usize) < stored.episodes.len() && (place as usize) < places.len())
                    .then_some(())?;
                Some(Obs {
                    at: o.at,
                    month: o.month,
                    value: o.value,
                    fact: small(o.fact)?,
                    service: small(o.service)?,
                    episode,
                    place,
                    demographics: Demographics::new(
                        o.sex as i32,
                        o.age_band as i32,
                        o.ethnic_group as i32,
                    ),
                })
            })
            .collect::<Option<Vec<_>>>()?;
        Some(Person {
            obs,
            places,
            episodes: stored.episodes.into_iter().map(Into::into).collect(),
            retracted: stored.retracted.into_iter().map(Into::into).collect(),
        })
    }
}

/// The month index ([`Period::Month`]) a date falls in.
pub(crate) fn month_index(date: chrono::NaiveDate) -> u32 {
    match Period::month_of(date) {
        Period::Month(m) => m,
        Period::Quarter(_) => unreachable!("month_of gives a month"),
    }
}

/// The month index of a calendar day (days since the epoch).
fn month_of_day(day: i64) -> u32 {
    month_index(DateTime::from_timestamp(day * 86_400, 0).map_or(
        chrono::NaiveDate::from_ymd_opt(*YEARS.start(), 1, 1).expect("a date"),
        |t| t.date_naive(),
    ))
}

/// Adds the ids of a month and its quarter, each at most once.
pub(crate) fn push_periods(month: u32, out: &mut Vec<u32>) {
    for id in [
        Period::Month(month).id(),
        Period::quarter_of_month(month).id(),
    ] {
        if !out.contains(&id) {
            out.push(id);
        }
    }
}

/// The index of the item matching `is`, adding `make()` if there is none.
fn intern<T>(
    items: &mut Vec<T>,
    is: impl Fn(&T) -> bool,
    make: impl FnOnce() -> T,
) -> Result<u16, ObservationError> {
    if let Some(i) = items.iter().position(is) {
        return Ok(i as u16);
    }
    if items.len() >= usize::from(u16::MAX) {
        return Err(ObservationError(
            "too many episodes or places for one person".into(),
        ));
    }
    items.push(make());
    Ok((items.len() - 1) as u16)
}

/// A person as stored in the database (protobuf, so it can evolve).
#[derive(Clone, PartialEq, prost::Message)]
pub struct StoredPerson {
    #[prost(message, repeated, tag = "1")]
    pub places: Vec<StoredPlace>,
    #[prost(string, repeated, tag = "2")]
    pub episodes: Vec<String>,
    #[prost(string, repeated, tag = "3")]
    pub retracted: Vec<String>,
    #[prost(message, repeated, tag = "4")]
    pub observations: Vec<StoredObservation>,
}

/// Area codes in [`AreaKind::PLACED`] order, empty where unknown.
#[derive(Clone, PartialEq, prost::Message)]
pub struct StoredPlace {
    #[prost(string, repeated, tag = "1")]
    pub codes: Vec<String>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct StoredObservation {
    #[prost(int64, tag = "1")]
    pub at: i64,
    #[prost(uint32, tag = "2")]
    pub month: u32,
    #[prost(int32, tag = "3")]
    pub value: i32,
    #[prost(uint32, tag = "4")]
    pub fact: u32,
    #[prost(uint32, tag = "5")]
    pub service: u32,
    #[prost(uint32, tag = "6")]
    pub episode: u32,
    #[prost(uint32, tag = "7")]
    pub place: u32,
    #[prost(uint32, tag = "8")]
    pub sex: u32,
    #[prost(uint32, tag = "9")]
    pub age_band: u32,
    #[prost(uint32, tag = "10")]
    pub ethnic_group: u32,
}
