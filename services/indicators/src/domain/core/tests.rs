//! The aggregation core: distinct people, duplicates, withdrawals, cohorts,
//! medians and strata; and incremental counting equal to counting afresh,
//! whatever the order, duplication or withdrawal of the input.

use super::*;
use crate::domain::area::AreaKind;
use crate::domain::person::Input;
use crate::domain::stratum::Demographics;
use proptest::prelude::*;
use prost_types::Timestamp;
use throughcare_proto::events::v1::{
    Observation, ObservationAreas, ObservationsRecorded, ObservationsRetracted, ObservedFact as F,
    PersonsLinked,
};
use throughcare_proto::types::v1::ServiceType;

fn catalogue() -> &'static Catalogue {
    Catalogue::standard()
}

fn at(month: u32, day: u32) -> Timestamp {
    let t = chrono::NaiveDate::from_ymd_opt(2026, month, day)
        .unwrap()
        .and_hms_opt(9, 0, 0)
        .unwrap()
        .and_utc();
    Timestamp {
        seconds: t.timestamp(),
        nanos: 0,
    }
}

fn obs(fact: F, month: u32, day: u32, episode: &str) -> Observation {
    Observation {
        areas: Some(ObservationAreas {
            probation_region: "EMR".into(),
            probation_delivery_unit: "EMR-LEI".into(),
            integrated_care_board: "QK1".into(),
            local_authority: "E06000016".into(),
            prison: "LEI".into(),
        }),
        sex: 2,
        age_band: 4,
        ethnic_group: 4,
        fact: fact as i32,
        observed_at: Some(at(month, day)),
        episode_key: episode.into(),
        ..Default::default()
    }
}

fn recorded(person: &str, observations: Vec<Observation>) -> Input {
    Input::Recorded(ObservationsRecorded {
        person_key: person.into(),
        observations,
    })
}

fn retracted(person: &str, episode: &str) -> Input {
    Input::Retracted(ObservationsRetracted {
        person_key: person.into(),
        episode_key: episode.into(),
        retracted_at: None,
    })
}

fn linked(survivor: &str, merged: &[&str]) -> Input {
    Input::Linked(PersonsLinked {
        surviving_key: survivor.into(),
        merged_keys: merged.iter().map(|m| (*m).to_owned()).collect(),
        linked_at: None,
    })
}

fn tally(core: &Aggregator, indicator: &str, period: Period, area: &Area, stratum: u8) -> Tally {
    let index = catalogue().index(indicator).unwrap() as u8;
    core.all_cells()
        .into_iter()
        .find(|(n, _)| {
            n.indicator == index && n.period == period && n.area == *area && n.stratum == stratum
        })
        .map(|(_, f)| Tally {
            den_key: 0,
            num_key: 0,
            ..f.tally
        })
        .unwrap_or_default()
}

const MARCH: Period = Period::Month(2026 * 12 + 2);

fn pdu() -> Area {
    Area {
        kind: AreaKind::ProbationDeliveryUnit,
        code: "EMR-LEI".into(),
    }
}

#[test]
fn people_are_counted_once_however_often_they_are_observed() {
    let mut core = Aggregator::new(catalogue());
    let released = vec![
        obs(F::InContact, 3, 2, "r1"),
        obs(F::GpRegistrationRecorded, 3, 2, "r1"),
        obs(F::GpRegistered, 3, 2, "r1"),
    ];
    assert!(core.ingest(&recorded("p1", released.clone())).unwrap());
    assert!(
        !core.ingest(&recorded("p1", released)).unwrap(),
        "a duplicate changes nothing"
    );
    core.ingest(&recorded("p1", vec![obs(F::InContact, 3, 20, "a1")]))
        .unwrap();
    core.ingest(&recorded("p2", vec![obs(F::InContact, 3, 5, "r2")]))
        .unwrap();
    for area in [Area::national(), pdu()] {
        assert_eq!(
            tally(&core, "gp-registration-recorded", MARCH, &area, 0),
            Tally {
                den: 2,
                num: 1,
                ..Tally::default()
            },
            "{area:?}"
        );
    }
    assert_eq!(
        tally(
            &core,
            "gp-registration-recorded",
            Period::Quarter(2026 * 4),
            &pdu(),
            0
        ),
        Tally {
            den: 2,
            num: 1,
            ..Tally::default()
        }
    );
    let [_, male, over_50, white, ..] = Demographics::new(2, 4, 4).strata();
    for stratum in [male, over_50, white] {
        assert_eq!(tally(&core, "gp-registered", MARCH, &pdu(), stratum).num, 1);
    }
}

#[test]
fn people_found_to_be_one_are_counted_once_whenever_the_link_comes() {
    let release = vec![
        obs(F::InContact, 3, 2, "r1"),
        obs(F::GpRegistrationRecorded, 3, 2, "r1"),
    ];
    let later = vec![obs(F::GpRegistered, 3, 9, "r1")];
    // Known under two keys, then linked; linked first, then observed under
    // the old key; and all under one key from the start.
    let mut before = Aggregator::new(catalogue());
    before
        .ingest(&recorded("by-prison", release.clone()))
        .unwrap();
    before.ingest(&recorded("by-nhs", later.clone())).unwrap();
    assert_eq!(before.people(), 2, "two keys, two people, until linked");
    assert!(before.ingest(&linked("by-nhs", &["by-prison"])).unwrap());
    assert!(
        !before.ingest(&linked("by-nhs", &["by-prison"])).unwrap(),
        "a link applied twice changes nothing"
    );
    let mut after = Aggregator::new(catalogue());
    after.ingest(&linked("by-nhs", &["by-prison"])).unwrap();
    after
        .ingest(&recorded("by-prison", release.clone()))
        .unwrap();
    after.ingest(&recorded("by-nhs", later.clone())).unwrap();
    let mut one = Aggregator::new(catalogue());
    one.ingest(&recorded("by-nhs", release)).unwrap();
    one.ingest(&recorded("by-nhs", later)).unwrap();
    for core in [&before, &after] {
        assert_eq!(core.all_cells(), one.all_cells());
        assert_eq!(core.people(), 1);
    }
    assert_eq!(
        tally(&one, "gp-registration-recorded", MARCH, &pdu(), 0),
        Tally {
            den: 1,
            num: 1,
            ..Tally::default()
        }
    );
}

#[test]
fn a_withdrawn_episode_is_uncounted_and_stays_withdrawn() {
    let mut core = Aggregator::new(catalogue());
    core.ingest(&recorded(
        "p1",
        vec![obs(F::InContact, 3, 2, "r1"), obs(F::Smoker, 3, 2, "r1")],
    ))
    .unwrap();
    core.ingest(&recorded("p1", vec![obs(F::InContact, 3, 9, "a1")]))
        .unwrap();
    core.ingest(&retracted("p1", "r1")).unwrap();
    assert_eq!(
        tally(&core, "mortality", MARCH, &pdu(), 0).den,
        1,
        "a1 remains"
    );
    assert_eq!(
        tally(&core, "smokers-offered-cessation", MARCH, &pdu(), 0).den,
        0
    );
    // A late copy of the withdrawn record is ignored.
    assert!(
        !core
            .ingest(&recorded("p1", vec![obs(F::Smoker, 3, 2, "r1")]))
            .unwrap()
    );
    core.ingest(&retracted("p1", "a1")).unwrap();
    assert!(core.all_cells().is_empty());
    assert_eq!(core.observations(), 0);
}

#[test]
fn continuity_counts_engagement_within_21_days_in_the_release_period() {
    let mut core = Aggregator::new(catalogue());
    let engaged = |days: i64, month, day, episode: &str| Observation {
        value: days,
        service: ServiceType::SubstanceMisuseTreatment as i32,
        ..obs(F::EngagedWithCommunityTreatment, month, day, episode)
    };
    core.ingest(&recorded(
        "p1",
        vec![obs(F::ReleasedWithSubstanceNeed, 3, 25, "r1")],
    ))
    .unwrap();
    core.ingest(&recorded(
        "p2",
        vec![obs(F::ReleasedWithSubstanceNeed, 3, 25, "r2")],
    ))
    .unwrap();
    core.ingest(&recorded(
        "p3",
        vec![obs(F::ReleasedWithSubstanceNeed, 3, 25, "r3")],
    ))
    .unwrap();
    // Engagement arrives in April, counted against the March release.
    core.ingest(&recorded("p1", vec![engaged(14, 4, 8, "r1")]))
        .unwrap();
    core.ingest(&recorded("p2", vec![engaged(30, 4, 24, "r2")]))
        .unwrap();
    // Engagement under another episode does not count.
    core.ingest(&recorded("p3", vec![engaged(3, 4, 1, "other")]))
        .unwrap();
    assert_eq!(
        tally(&core, "continuity-of-care-after-release", MARCH, &pdu(), 0),
        Tally {
            den: 3,
            num: 1,
            ..Tally::default()
        }
    );
    let april = Period::Month(2026 * 12 + 3);
    assert_eq!(
        tally(&core, "continuity-of-care-after-release", april, &pdu(), 0).den,
        0
    );
}

#[test]
fn follow_through_counts_in_the_period_of_the_denominator_whenever_it_comes() {
    let mut core = Aggregator::new(catalogue());
    let accepted = |month, day, episode: &str| Observation {
        service: ServiceType::GpRegistration as i32,
        ..obs(F::ReferralAccepted, month, day, episode)
    };
    for person in ["p1", "p2", "p3", "p4", "p5"] {
        let episode = format!("r-{person}");
        core.ingest(&recorded(
            person,
            vec![obs(F::GpNotRegistered, 3, 30, &episode)],
        ))
        .unwrap();
    }
    // 30 March to 3 April (4 days) counts in March; to 8 April (9 days) is
    // outside the 7-day window; accepted ahead of release day for this release
    // counts; accepted ahead of it for something else does not; a later record
    // saying they are registered counts.
    core.ingest(&recorded("p1", vec![accepted(4, 3, "r-p1")]))
        .unwrap();
    core.ingest(&recorded("p2", vec![accepted(4, 8, "r-p2")]))
        .unwrap();
    core.ingest(&recorded("p3", vec![accepted(3, 20, "r-p3")]))
        .unwrap();
    core.ingest(&recorded("p4", vec![accepted(3, 20, "other")]))
        .unwrap();
    core.ingest(&recorded("p5", vec![obs(F::GpRegistered, 4, 6, "a-p5")]))
        .unwrap();
    assert_eq!(
        tally(&core, "gp-unregistered-go-on-to-register", MARCH, &pdu(), 0),
        Tally {
            den: 5,
            num: 3,
            ..Tally::default()
        }
    );
    let april = Period::Month(2026 * 12 + 3);
    assert_eq!(
        tally(&core, "gp-unregistered-go-on-to-register", april, &pdu(), 0),
        Tally::default(),
        "the follow-up is not a denominator of its own month"
    );
    // Withdrawing the acceptance takes the person out of March's numerator.
    core.ingest(&retracted("p1", "r-p1")).unwrap();
    assert_eq!(
        tally(&core, "gp-unregistered-go-on-to-register", MARCH, &pdu(), 0),
        Tally {
            den: 4,
            num: 2,
            ..Tally::default()
        }
    );
}

#[test]
fn a_death_soon_after_release_counts_against_the_release_month() {
    let mut core = Aggregator::new(catalogue());
    for person in ["p1", "p2", "p3"] {
        let episode = format!("r-{person}");
        core.ingest(&recorded(person, vec![obs(F::Released, 3, 28, &episode)]))
            .unwrap();
    }
    // Died on 3 April (6 days), on 20 April (23 days); p3 lives.
    core.ingest(&recorded("p1", vec![obs(F::Died, 4, 3, "death-p1")]))
        .unwrap();
    core.ingest(&recorded("p2", vec![obs(F::Died, 4, 20, "death-p2")]))
        .unwrap();
    assert_eq!(
        tally(&core, "mortality-after-release", MARCH, &pdu(), 0),
        Tally {
            den: 3,
            num: 1,
            ..Tally::default()
        }
    );
}

#[test]
fn health_information_counts_when_it_reached_probation_by_the_day_after_release() {
    let mut core = Aggregator::new(catalogue());
    let shared = |days: i64, month, day, episode: &str| Observation {
        value: days,
        ..obs(F::HealthInformationSharedAtRelease, month, day, episode)
    };
    for person in ["p1", "p2", "p3", "p4"] {
        let episode = format!("r-{person}");
        core.ingest(&recorded(person, vec![obs(F::Released, 3, 2, &episode)]))
            .unwrap();
    }
    // Pushed ahead of release (in February), the day after, three days late,
    // and under another episode.
    core.ingest(&recorded("p1", vec![shared(-2, 2, 28, "r-p1")]))
        .unwrap();
    core.ingest(&recorded("p2", vec![shared(1, 3, 3, "r-p2")]))
        .unwrap();
    core.ingest(&recorded("p3", vec![shared(3, 3, 5, "r-p3")]))
        .unwrap();
    core.ingest(&recorded("p4", vec![shared(0, 3, 2, "other")]))
        .unwrap();
    assert_eq!(
        tally(
            &core,
            "health-information-shared-at-release",
            MARCH,
            &pdu(),
            0
        ),
        Tally {
            den: 4,
            num: 2,
            ..Tally::default()
        }
    );
}

#[test]
fn timely_access_is_the_median_of_first_appointments() {
    let mut core = Aggregator::new(catalogue());
    for (person, days) in [("p1", 3), ("p2", 10), ("p3", 4), ("p4", 30)] {
        core.ingest(&recorded(
            person,
            vec![Observation {
                value: days,
                ..obs(F::FirstAppointmentAttended, 3, 20, "x")
            }],
        ))
        .unwrap();
    }
    // A later appointment in the period does not change p1's first.
    core.ingest(&recorded(
        "p1",
        vec![Observation {
            value: 90,
            ..obs(F::FirstAppointmentAttended, 3, 28, "y")
        }],
    ))
    .unwrap();
    let index = catalogue().index("timely-access").unwrap() as u8;
    let (_, figures) = core
        .all_cells()
        .into_iter()
        .find(|(n, _)| {
            n.indicator == index && n.period == MARCH && n.area == pdu() && n.stratum == 0
        })
        .unwrap();
    assert_eq!((figures.tally.den, figures.tally.num), (4, 4));
    assert_eq!(figures.median, Some(7.0), "median of 3, 4, 10, 30");
}

#[test]
fn malformed_observations_are_refused_whole() {
    let mut core = Aggregator::new(catalogue());
    let mut bad = obs(F::InContact, 3, 2, "r1");
    bad.areas.as_mut().unwrap().local_authority = "nowhere".into();
    let error = core
        .ingest(&recorded("p1", vec![obs(F::InContact, 3, 2, "r1"), bad]))
        .unwrap_err();
    assert!(
        error.0.starts_with("observations[1].areas.local_authority"),
        "{error}"
    );
    let mut undated = obs(F::InContact, 3, 2, "r1");
    undated.observed_at = None;
    assert!(core.ingest(&recorded("p1", vec![undated])).is_err());
    assert!(core.ingest(&recorded("", vec![])).is_err());
    assert!(core.all_cells().is_empty(), "nothing half-applied");
}

// ---------------------------------------------------------------- caseload

fn month(m: u32) -> Period {
    Period::Month(2026 * 12 + m - 1)
}

fn den_num(core: &Aggregator, indicator: &str, period: Period, area: &Area) -> (u32, u32) {
    let t = tally(core, indicator, period, area, 0);
    (t.den, t.num)
}

fn in_area(mut o: Observation, pdu: &str) -> Observation {
    if let Some(areas) = o.areas.as_mut() {
        areas.probation_delivery_unit = pdu.into();
    }
    o
}

/// A core that staged `inputs` and counted everyone once, in the month
/// `horizon`.
fn counted_afresh<'a>(inputs: impl IntoIterator<Item = &'a Input>, horizon: u32) -> Aggregator {
    let mut core = Aggregator::new(catalogue());
    core.stage();
    core.set_horizon(horizon);
    for input in inputs {
        core.ingest(input).unwrap();
    }
    core.count_all();
    core
}

#[test]
fn the_caseload_is_everyone_under_supervision_at_any_time_in_the_period() {
    let mut core = Aggregator::new(catalogue());
    core.set_horizon(2026 * 12 + 5); // June
    let inputs = [
        // Released on licence in January; died in March.
        recorded(
            "p1",
            vec![
                obs(F::Released, 1, 10, "r1"),
                obs(F::InContact, 1, 10, "r1"),
                obs(F::SupervisionStarted, 1, 10, "r1"),
            ],
        ),
        recorded(
            "p1",
            vec![
                obs(F::Died, 3, 20, "d1"),
                obs(F::SupervisionEnded, 3, 20, "d1"),
            ],
        ),
        // A community order in February, still running.
        recorded("p2", vec![obs(F::SupervisionStarted, 2, 3, "c2")]),
        // Released in January and recalled the same month.
        recorded(
            "p3",
            vec![
                obs(F::SupervisionStarted, 1, 5, "r3"),
                obs(F::SupervisionEnded, 1, 25, "x3"),
            ],
        ),
        // Supervised elsewhere: counted there, and nationally.
        recorded(
            "p4",
            vec![in_area(obs(F::SupervisionStarted, 2, 14, "r4"), "EMR-NOT")],
        ),
    ];
    for input in &inputs {
        core.ingest(input).unwrap();
    }
    let national = Area::national();
    assert_eq!(den_num(&core, "mortality", month(1), &pdu()), (2, 0));
    assert_eq!(den_num(&core, "mortality", month(2), &pdu()), (2, 0));
    // The death in March, two months after the release, counts.
    assert_eq!(den_num(&core, "mortality", month(3), &pdu()), (2, 1));
    assert_eq!(den_num(&core, "mortality", month(3), &national), (3, 1));
    assert_eq!(den_num(&core, "mortality", month(4), &pdu()), (1, 0));
    assert_eq!(den_num(&core, "mortality", month(6), &pdu()), (1, 0));
    assert_eq!(
        den_num(&core, "mortality", month(7), &pdu()),
        (0, 0),
        "after the current month"
    );
    assert_eq!(
        den_num(&core, "mortality", Period::quarter(2026, 1), &pdu()),
        (3, 1)
    );
    // New to probation is its own population: the screening shares still
    // count only contacts in the period.
    assert_eq!(
        den_num(&core, "gp-registration-recorded", month(2), &pdu()),
        (0, 0)
    );

    // The months pass: the open spells are counted in each as it begins,
    // exactly as counting afresh in the later month does.
    core.set_horizon(2026 * 12 + 7); // August
    assert_eq!(den_num(&core, "mortality", month(8), &pdu()), (1, 0));
    let afresh = counted_afresh(&inputs, 2026 * 12 + 7);
    assert_eq!(core.fingerprint(), afresh.fingerprint());

    // A change prepared before the month moved and counted after it (the
    // service makes it durable in between) is counted in the new month too.
    let late = recorded("p5", vec![obs(F::SupervisionStarted, 7, 30, "r5")]);
    let change = core.prepare(&late).unwrap().unwrap();
    core.set_horizon(2026 * 12 + 8); // September
    core.apply(change);
    let afresh = counted_afresh(inputs.iter().chain([&late]), 2026 * 12 + 8);
    assert_eq!(den_num(&core, "mortality", month(9), &pdu()), (2, 0));
    assert_eq!(core.fingerprint(), afresh.fingerprint());

    // A reversal of the release that began a spell withdraws the spell.
    core.ingest(&retracted("p2", "c2")).unwrap();
    assert_eq!(
        den_num(&core, "mortality", month(8), &pdu()),
        (1, 0),
        "p5 alone"
    );
    assert_eq!(den_num(&core, "mortality", month(2), &pdu()), (1, 0));
}

#[test]
fn an_order_ends_when_it_is_due_unless_another_has_taken_over() {
    let mut core = Aggregator::new(catalogue());
    core.set_horizon(2026 * 12 + 2); // March
    // A community order from February, due to end in May (its own episode).
    core.ingest(&recorded(
        "p1",
        vec![
            obs(F::SupervisionStarted, 2, 1, "o1"),
            obs(F::SupervisionEnded, 5, 31, "o1"),
        ],
    ))
    .unwrap();
    // Another from February, due to end in April, replaced in March by a
    // new order: the first's due end does not end the second.
    core.ingest(&recorded(
        "p2",
        vec![
            obs(F::SupervisionStarted, 2, 1, "o2"),
            obs(F::SupervisionEnded, 4, 30, "o2"),
            obs(F::SupervisionStarted, 3, 15, "o3"),
        ],
    ))
    .unwrap();
    // Released and dead the same day (facts of one day share a moment):
    // counted in that month only.
    core.ingest(&recorded(
        "p3",
        vec![
            obs(F::SupervisionStarted, 2, 10, "r3"),
            obs(F::Died, 2, 10, "d3"),
            obs(F::SupervisionEnded, 2, 10, "d3"),
        ],
    ))
    .unwrap();
    // An order ended and a new one made the same day: still supervised.
    core.ingest(&recorded(
        "p4",
        vec![
            obs(F::SupervisionStarted, 1, 5, "o4"),
            obs(F::SupervisionEnded, 2, 20, "x4"),
            obs(F::SupervisionStarted, 2, 20, "o5"),
        ],
    ))
    .unwrap();
    let caseload = |core: &Aggregator, m| den_num(core, "mortality", month(m), &pdu()).0;
    assert_eq!(
        den_num(&core, "mortality", month(2), &pdu()),
        (4, 1),
        "p1, p2, p3 (died), p4"
    );
    // Counted only as far as the current month.
    assert_eq!((caseload(&core, 3), caseload(&core, 4)), (3, 0));
    core.set_horizon(2026 * 12 + 6); // July
    assert_eq!(
        (1..=7).map(|m| caseload(&core, m)).collect::<Vec<_>>(),
        vec![1, 4, 3, 3, 3, 2, 2]
    );
}

// ------------------------------------------------------------- equivalence

#[derive(Debug, Clone)]
enum Step {
    Record(usize, Vec<(F, u32, u32, usize)>),
    Retract(usize, usize),
    /// The second person's key is found to name the first's.
    Link(usize, usize),
    /// The current month moves (to this month of 2026).
    Horizon(u32),
}

/// The current month the equivalence tests start in: April 2026.
const START_HORIZON: u32 = 2026 * 12 + 3;

/// A core in the starting month, counting as it goes.
fn live_core() -> Aggregator {
    let mut core = Aggregator::new(catalogue());
    core.set_horizon(START_HORIZON);
    core
}

/// The current month once every step has been taken.
fn final_horizon(steps: &[Step]) -> u32 {
    steps
        .iter()
        .rev()
        .find_map(|s| match s {
            Step::Horizon(m) => Some(2026 * 12 + m - 1),
            _ => None,
        })
        .unwrap_or(START_HORIZON)
}

/// Takes one step in a core that counts as it goes.
fn take(core: &mut Aggregator, step: &Step) {
    match step {
        Step::Horizon(m) => core.set_horizon(2026 * 12 + m - 1),
        _ => {
            core.ingest(&input_of(step)).unwrap();
        }
    }
}

fn step() -> impl Strategy<Value = Step> {
    let fact = prop_oneof![
        Just(F::InContact),
        Just(F::GpRegistrationRecorded),
        Just(F::GpRegistered),
        Just(F::Smoker),
        Just(F::ReleasedWithSubstanceNeed),
        Just(F::EngagedWithCommunityTreatment),
        Just(F::FirstAppointmentAttended),
        Just(F::HazardousDrinking),
        Just(F::ReferralOffered),
        Just(F::SupervisionStarted),
        Just(F::SupervisionEnded),
        Just(F::Died),
    ];
    prop_oneof![
        4 => (0..6usize, proptest::collection::vec((fact, 1..5u32, 1..28u32, 0..3usize), 1..4))
            .prop_map(|(p, o)| Step::Record(p, o)),
        1 => (0..6usize, 0..3usize).prop_map(|(p, e)| Step::Retract(p, e)),
        1 => (0..6usize, 0..6usize).prop_map(|(a, b)| Step::Link(a, b)),
        1 => (1..9u32).prop_map(Step::Horizon),
    ]
}

fn input_of(step: &Step) -> Input {
    match step {
        Step::Record(p, observations) => recorded(
            &format!("p{p}"),
            observations
                .iter()
                .map(|&(fact, month, day, episode)| Observation {
                    value: i64::from(day),
                    sex: (day % 3) as i32,
                    service: ServiceType::SubstanceMisuseTreatment as i32,
                    ..obs(fact, month, day, &format!("e{episode}"))
                })
                .collect(),
        ),
        Step::Retract(p, e) => retracted(&format!("p{p}"), &format!("e{e}")),
        Step::Link(a, b) => linked(&format!("p{a}"), &[&format!("p{b}")]),
        Step::Horizon(_) => unreachable!("the horizon is no input"),
    }
}

/// Each person's label once every link is known: the least of the people
/// linked with them.
fn one_per_person(steps: &[Step]) -> Vec<usize> {
    let mut root: Vec<usize> = (0..6).collect();
    fn find(root: &mut [usize], p: usize) -> usize {
        if root[p] == p {
            p
        } else {
            let r = find(root, root[p]);
            root[p] = r;
            r
        }
    }
    for s in steps {
        if let Step::Link(a, b) = *s {
            let (ra, rb) = (find(&mut root, a), find(&mut root, b));
            root[ra.max(rb)] = ra.min(rb);
        }
    }
    (0..6).map(|p| find(&mut root, p)).collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Counting change by change gives what counting everyone once gives,
    /// and replaying the log (with every record twice) gives it again.
    #[test]
    fn incremental_counting_equals_counting_afresh(steps in proptest::collection::vec(step(), 1..40)) {
        let mut live = live_core();
        for s in &steps {
            take(&mut live, s);
        }
        let horizon = final_horizon(&steps);
        let mut rebuilt = Aggregator::new(catalogue());
        rebuilt.stage();
        rebuilt.set_horizon(horizon);
        for s in steps.iter().filter(|s| !matches!(s, Step::Horizon(_))).flat_map(|s| [s, s]) {
            rebuilt.ingest(&input_of(s)).unwrap();
        }
        rebuilt.count_all();
        let (a, b) = (live.all_cells(), rebuilt.all_cells());
        let only_live: Vec<_> = a.iter().filter(|c| !b.contains(c)).collect();
        let only_rebuilt: Vec<_> = b.iter().filter(|c| !a.contains(c)).collect();
        prop_assert!(only_live.is_empty() && only_rebuilt.is_empty(), "live only {:?}\nrebuilt only {:?}", only_live, only_rebuilt);
        prop_assert_eq!(live.fingerprint(), rebuilt.fingerprint());
        // The caseload's runs give what counting every period one by one gives.
        prop_assert_eq!(live.all_cells(), period_by_period(&live));

        let mut reloaded = Aggregator::new(catalogue());
        reloaded.stage();
        reloaded.set_horizon(horizon);
        for (merged, survivor) in live.each_alias() {
            reloaded.alias(merged, survivor);
        }
        let stored: Vec<_> = live.each_person().map(|(k, p)| (k.to_owned(), p.to_stored(live.areas()))).collect();
        for (key, person) in stored {
            let person = Person::from_stored(person, reloaded.areas_mut()).unwrap();
            reloaded.load(&key, person);
        }
        reloaded.count_all();
        prop_assert_eq!(live.all_cells(), reloaded.all_cells());

        // Links in any order count each real person once: the same figures
        // as every observation recorded under one key per person from the start.
        let label = one_per_person(&steps);
        let mut reference = live_core();
        for s in &steps {
            let relabelled = match s {
                Step::Record(p, o) => Step::Record(label[*p], o.clone()),
                Step::Retract(p, e) => Step::Retract(label[*p], *e),
                Step::Horizon(m) => Step::Horizon(*m),
                Step::Link(..) => continue,
            };
            take(&mut reference, &relabelled);
        }
        // (Its people have other keys, so other cell keys.)
        prop_assert_eq!(counts(&live), counts(&reference));
    }
}

/// Every cell's counts and median, without its cell keys.
fn counts(core: &Aggregator) -> Vec<(CellName, u32, u32, Option<f64>)> {
    core.all_cells()
        .into_iter()
        .map(|(n, f)| (n, f.tally.den, f.tally.num, f.median))
        .collect()
}

/// Every cell counted the plain way, period by period in every period each
/// person is observed or supervised in: what counting bare periods by
/// ranges must agree with.
fn period_by_period(core: &Aggregator) -> Vec<(CellName, CellFigures)> {
    let mut plain = Aggregator::new(core.catalogue);
    plain.areas = core.areas.clone();
    let (mut spells, mut periods) = (Vec::new(), Vec::new());
    let (mut members, mut buffers) = (Vec::new(), membership::Buffers::default());
    for (id, person) in core.people.iter().enumerate() {
        person.spells(&mut spells);
        person.periods(&spells, core.horizon, &mut periods);
        for &period in &periods {
            let period = Period::from_id(period);
            let h = core.horizon;
            let counted = membership::members(
                core.catalogue,
                person,
                &spells,
                period,
                h,
                &mut members,
                &mut buffers,
            );
            let Some(demographics) = counted else {
                continue;
            };
            for member in &members {
                plain.add(member, demographics.strata(), true, core.record_keys[id]);
            }
        }
    }
    plain.all_cells()
}
