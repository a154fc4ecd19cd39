//! Disclosure control against small examples and, in property tests, against
//! random caseloads run through the real aggregation core and attacked by an
//! adversary written separately from the service's own audit.

use super::*;
use crate::catalogue::{Catalogue, Rule};
use crate::domain::area::AreaKind;
use crate::domain::core::{Aggregator, Tally};
use crate::domain::period::Period;
use crate::domain::person::Input;
use crate::domain::stratum::{self, Stratum};
use proptest::prelude::*;
use prost_types::Timestamp;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use throughcare_proto::events::v1::{
    Observation, ObservationAreas, ObservationsRecorded, ObservedFact,
};

fn catalogue() -> &'static Catalogue {
    Catalogue::standard()
}

fn ind(id: &str) -> u8 {
    catalogue().index(id).unwrap() as u8
}

fn area(kind: AreaKind, code: &str) -> Area {
    Area {
        kind,
        code: code.into(),
    }
}

fn name(indicator: &str, period: Period, area: &Area, stratum: Stratum) -> CellName {
    CellName {
        indicator: ind(indicator),
        period,
        area: area.clone(),
        stratum,
    }
}

fn figures(den: u32, num: u32) -> CellFigures {
    CellFigures {
        tally: Tally {
            den,
            num,
            den_key: DOWN,
            num_key: DOWN,
        },
        median: None,
    }
}

fn published<'a>(out: &'a [(CellName, Published)], name: &CellName) -> &'a Published {
    &out.iter()
        .find(|(n, _)| n == name)
        .expect("published cell")
        .1
}

const MARCH: Period = Period::Month(2026 * 12 + 2);

const SUPPRESSED: Count = Count {
    value: 0,
    suppressed: true,
};

/// A count as published unsuppressed, rounded.
fn shown(count: u32) -> Count {
    Count {
        value: round(count, DOWN),
        suppressed: false,
    }
}

/// National mortality in an earlier month, published with no deaths and
/// `denominator`, whose true denominator is now `now`.
fn frozen_deaths(period: Period, denominator: Count, now: u32) -> Frozen {
    Frozen {
        name: name("mortality", period, &Area::national(), 0),
        published: Published {
            numerator: shown(0),
            denominator,
            value: None,
        },
        truth: Some(figures(now, 0)),
    }
}

/// A cell key that rounds every count down.
const DOWN: u8 = 255;

#[test]
fn rounding_by_cell_key_is_unbiased_consistent_and_within_four() {
    assert_eq!(
        [0, 8, 10, 12, 13, 17, 18, 102].map(|c| round(c, DOWN)),
        [0, 10, 10, 10, 10, 15, 15, 100]
    );
    assert_eq!(
        [0, 8, 10, 12, 13, 17, 18, 102].map(|c| round(c, 0)),
        [0, 10, 10, 15, 15, 20, 20, 105]
    );
    for count in 10..200u32 {
        let figures: Vec<i64> = (0..=255u8).map(|key| round(count, key)).collect();
        assert!(figures.iter().all(|f| f % BASE == 0));
        assert!(figures.iter().all(|f| (f - i64::from(count)).abs() < BASE));
        // Over all keys the mean is the count, to within one key's weight.
        let mean = figures.iter().sum::<i64>() as f64 / 256.0;
        assert!(
            (mean - f64::from(count)).abs() <= 5.0 / 256.0 * 4.0,
            "{count}: {mean}"
        );
    }
}

#[test]
fn small_counts_and_small_complements_are_suppressed_and_the_rest_rounded() {
    let national = Area::national();
    let cells = vec![
        (name("gp-registered", MARCH, &national, 0), figures(102, 3)),
        (name("smoking", MARCH, &national, 0), figures(51, 47)),
        (name("mortality", MARCH, &national, 0), figures(1003, 0)),
    ];
    let out = protect(catalogue(), cells, Vec::new(), |_| None).unwrap();
    let gp = published(&out, &name("gp-registered", MARCH, &national, 0));
    assert_eq!(
        gp.denominator,
        Count {
            value: 100,
            suppressed: false
        }
    );
    assert_eq!(
        gp.numerator,
        Count {
            value: 0,
            suppressed: true
        }
    );
    assert_eq!(gp.value, None);
    let smoking = published(&out, &name("smoking", MARCH, &national, 0));
    assert!(
        smoking.numerator.suppressed,
        "51 - 47 = 4 would reveal four non-smokers"
    );
    let mortality = published(&out, &name("mortality", MARCH, &national, 0));
    assert_eq!(
        mortality.numerator,
        Count {
            value: 0,
            suppressed: false
        }
    );
    assert_eq!(
        mortality.value,
        Some(0.0),
        "a rate per thousand; none of a thousand discloses no one"
    );
}

#[test]
fn a_numerator_over_a_small_denominator_is_never_published_even_as_zero() {
    let national = Area::national();
    let [_, female, ..] = stratum::Demographics::new(1, 0, 0).strata();
    let [_, male, ..] = stratum::Demographics::new(2, 0, 0).strata();
    let cells = vec![
        // Three women, none registered; 40 men, 20 registered.
        (
            name("gp-registered", MARCH, &national, stratum::ALL),
            figures(43, 20),
        ),
        (
            name("gp-registered", MARCH, &national, female),
            figures(3, 0),
        ),
        (
            name("gp-registered", MARCH, &national, male),
            figures(40, 20),
        ),
        // Two people, none of whom died: an exact 0 would say it of both.
        (
            name("mortality", MARCH, &national, stratum::ALL),
            figures(2, 0),
        ),
    ];
    let out = protect(catalogue(), cells, Vec::new(), |_| None).unwrap();
    let women = published(&out, &name("gp-registered", MARCH, &national, female));
    assert!(women.denominator.suppressed && women.numerator.suppressed);
    assert_eq!(women.value, None);
    let deaths = published(&out, &name("mortality", MARCH, &national, stratum::ALL));
    assert!(
        deaths.numerator.suppressed,
        "not an exact 0 over a suppressed 2"
    );
}

#[test]
fn a_publication_contradicted_by_a_late_record_is_held_not_published_unaudited() {
    let national = Area::national();
    let q1 = Period::Quarter(2026 * 4);
    let (jan, feb) = (Period::Month(2026 * 12), Period::Month(2026 * 12 + 1));
    // January was published as 20; records that came late make it 40 now.
    let cells = vec![
        (name("mortality", q1, &national, 0), figures(80, 0)),
        (name("mortality", MARCH, &national, 0), figures(20, 0)),
    ];
    let held = protect(
        catalogue(),
        cells,
        vec![
            frozen_deaths(jan, shown(20), 40),
            frozen_deaths(feb, shown(20), 20),
        ],
        |_| None,
    );
    assert_eq!(held.unwrap_err(), Held::Contradiction);
}

#[test]
fn a_lone_suppressed_stratum_is_joined_by_its_smallest_sibling() {
    let national = Area::national();
    let [_, female, ..] = stratum::Demographics::new(1, 0, 0).strata();
    let [_, male, ..] = stratum::Demographics::new(2, 0, 0).strata();
    let [_, not_known, ..] = stratum::Demographics::new(4, 0, 0).strata();
    let cells = vec![
        (
            name("mortality", MARCH, &national, stratum::ALL),
            figures(80, 0),
        ),
        (name("mortality", MARCH, &national, female), figures(3, 0)),
        (name("mortality", MARCH, &national, male), figures(57, 0)),
        (
            name("mortality", MARCH, &national, not_known),
            figures(20, 0),
        ),
    ];
    let out = protect(catalogue(), cells, Vec::new(), |_| None).unwrap();
    let den = |s| published(&out, &name("mortality", MARCH, &national, s)).denominator;
    assert!(den(female).suppressed);
    assert!(
        den(not_known).suppressed,
        "the smallest other count is suppressed too"
    );
    assert!(!den(male).suppressed);
    assert_eq!(den(stratum::ALL).value, 80);
}

#[test]
fn a_quarter_is_suppressed_where_a_frozen_month_was() {
    let national = Area::national();
    let q1 = Period::Quarter(2026 * 4);
    let (jan, feb) = (Period::Month(2026 * 12), Period::Month(2026 * 12 + 1));
    let cells = vec![
        (name("mortality", q1, &national, 0), figures(43, 0)),
        (name("mortality", MARCH, &national, 0), figures(20, 0)),
    ];
    let out = protect(
        catalogue(),
        cells,
        vec![
            frozen_deaths(jan, SUPPRESSED, 3),
            frozen_deaths(feb, shown(20), 20),
        ],
        |_| None,
    )
    .unwrap();
    let den = |p| published(&out, &name("mortality", p, &national, 0)).denominator;
    assert!(
        den(MARCH).suppressed,
        "January can no longer be protected, so March (smaller than the quarter) is"
    );
    assert!(!den(q1).suppressed);
}

// ----------------------------------------------------------------- properties

/// A synthetic person: one place, one month, fixed demographics, some facts.
#[derive(Debug, Clone)]
struct Synthetic {
    region: usize,
    unit: usize,
    icb: usize,
    la: usize,
    prison: usize,
    month: u32,
    sex: i32,
    age: i32,
    ethnic: i32,
    facts: Vec<ObservedFact>,
}

const REGIONS: [&str; 2] = ["NER", "SWR"];
const UNITS: [[&str; 2]; 2] = [["NER-A", "NER-B"], ["SWR-A", "SWR-B"]];
const ICBS: [&str; 2] = ["QHM", "QK1"];
const LAS: [&str; 3] = ["E06000015", "E06000016", "E08000021"];
const PRISONS: [&str; 2] = ["LEI", "DMI"];

fn synthetic() -> impl Strategy<Value = Synthetic> {
    use ObservedFact as F;
    (
        (0..2usize, 0..2usize, 0..2usize, 0..3usize, 0..2usize),
        0..3u32,
        (1..3i32, 1..5i32, prop_oneof![Just(4), 1..7i32]),
        proptest::sample::subsequence(
            vec![
                F::GpRegistrationRecorded,
                F::GpRegistered,
                F::Smoker,
                F::SmokingStatusRecorded,
                F::Died,
            ],
            0..5,
        ),
    )
        .prop_map(
            |((region, unit, icb, la, prison), month, (sex, age, ethnic), facts)| {
                let mut all = vec![F::InContact];
                all.extend(facts);
                Synthetic {
                    region,
                    unit,
                    icb,
                    la,
                    prison,
                    month,
                    sex,
                    age,
                    ethnic,
                    facts: all,
                }
            },
        )
}

fn input(index: usize, s: &Synthetic) -> Input {
    let areas = ObservationAreas {
        probation_region: REGIONS[s.region].into(),
        probation_delivery_unit: UNITS[s.region][s.unit].into(),
        integrated_care_board: ICBS[s.icb].into(),
        local_authority: LAS[s.la].into(),
        prison: PRISONS[s.prison].into(),
    };
    let at = chrono::NaiveDate::from_ymd_opt(2026, s.month + 1, 10)
        .unwrap()
        .and_hms_opt(12, 0, 0)
        .unwrap()
        .and_utc();
    Input::Recorded(ObservationsRecorded {
        person_key: format!("p{index}"),
        observations: s
            .facts
            .iter()
            .map(|f| Observation {
                person_key: format!("p{index}"),
                areas: Some(areas.clone()),
                sex: s.sex,
                age_band: s.age,
                ethnic_group: s.ethnic,
                fact: *f as i32,
                observed_at: Some(Timestamp {
                    seconds: at.timestamp(),
                    nanos: 0,
                }),
                episode_key: format!("e{index}"),
                ..Default::default()
            })
            .collect(),
    })
}

/// The region of each delivery unit, as the core learnt it.
fn region_of(core: &Aggregator) -> impl Fn(&Area) -> Option<Box<str>> + use<> {
    let areas = core.areas().clone();
    move |a: &Area| {
        let id = areas.id(a)?;
        areas.region_of(id).map(|r| areas.get(r).code.clone())
    }
}

/// Runs a caseload through the core and publishes January and February
/// first, then March with the quarter, as the service would.
fn publish_quarter(people: &[Synthetic]) -> (Aggregator, Vec<Vec<(CellName, Published)>>) {
    let mut core = Aggregator::new(catalogue());
    for (i, p) in people.iter().enumerate() {
        core.ingest(&input(i, p)).unwrap();
    }
    let months: Vec<Period> = (0..3).map(|m| Period::Month(2026 * 12 + m)).collect();
    let first = protect(
        catalogue(),
        core.cells(&months[..2]),
        Vec::new(),
        region_of(&core),
    )
    .expect("publishable");
    let mut truth: HashMap<CellName, CellFigures> = core.cells(&months[..2]).into_iter().collect();
    let frozen = first
        .iter()
        .map(|(name, published)| Frozen {
            name: name.clone(),
            published: published.clone(),
            truth: truth.remove(name),
        })
        .collect();
    let second = protect(
        catalogue(),
        core.cells(&[months[2], Period::Quarter(2026 * 4)]),
        frozen,
        region_of(&core),
    )
    .expect("publishable");
    (core, vec![first, second])
}

/// The adversary: every published count as an interval, every relation a
/// commissioner could know about this caseload (written from how it was
/// generated: one place and one month per person, so every relation is an
/// equality, and identically defined denominators are equal), propagated to
/// a fixed point. Returns the counts it proves to be at least one.
fn attack(
    truth: &HashMap<(CellName, usize), u32>,
    snapshots: &[Vec<(CellName, Published)>],
) -> Vec<(CellName, usize, u32)> {
    attack_with(truth, snapshots, BASE - 1)
}

/// [`attack`], knowing every published figure to within `noise`.
fn attack_with(
    truth: &HashMap<(CellName, usize), u32>,
    snapshots: &[Vec<(CellName, Published)>],
    noise: i64,
) -> Vec<(CellName, usize, u32)> {
    // Every count the attacker reasons about, published or not (absent = 0).
    let mut ids: HashMap<(CellName, usize), usize> = HashMap::new();
    let mut bounds: Vec<(i64, i64)> = Vec::new();
    let var = |key: (CellName, usize), ids: &mut HashMap<_, _>, bounds: &mut Vec<_>| {
        *ids.entry(key).or_insert_with(|| {
            bounds.push((0, 0));
            bounds.len() - 1
        })
    };
    let mut suppressed = Vec::new();
    let published_periods: BTreeSet<Period> =
        snapshots.iter().flatten().map(|(n, _)| n.period).collect();
    for snapshot in snapshots {
        for (name, p) in snapshot {
            for (measure, count) in [(0, p.denominator), (1, p.numerator)] {
                let v = var((name.clone(), measure), &mut ids, &mut bounds);
                bounds[v] = if count.suppressed {
                    suppressed.push((name.clone(), measure));
                    (0, i64::MAX / 8)
                } else if count.value == 0 {
                    (0, 0)
                } else {
                    // Rounded by cell key from within 4, and not small.
                    ((count.value - noise).max(8), count.value + noise)
                };
            }
        }
    }
    // Indicators with nothing published have nothing to attack.
    let indicators: BTreeSet<u8> = snapshots
        .iter()
        .flatten()
        .map(|(n, _)| n.indicator)
        .collect();
    let months: Vec<Period> = (0..3).map(|m| Period::Month(2026 * 12 + m)).collect();
    let periods: Vec<Period> = months
        .iter()
        .copied()
        .chain([Period::Quarter(2026 * 4)])
        .collect();
    let mut areas = vec![Area::national()];
    areas.extend(REGIONS.iter().map(|c| area(AreaKind::ProbationRegion, c)));
    areas.extend(
        UNITS
            .iter()
            .flatten()
            .map(|c| area(AreaKind::ProbationDeliveryUnit, c)),
    );
    areas.extend(ICBS.iter().map(|c| area(AreaKind::IntegratedCareBoard, c)));
    areas.extend(LAS.iter().map(|c| area(AreaKind::LocalAuthority, c)));
    areas.extend(PRISONS.iter().map(|c| area(AreaKind::Prison, c)));
    // (parent stratum, children strata): each split of the whole population,
    // and each combined split under each of its margins.
    let mut splits: Vec<(Stratum, Vec<Stratum>)> = stratum::SINGLE
        .iter()
        .map(|&t| (stratum::ALL, stratum::of_type(t).collect()))
        .collect();
    for t in stratum::COMBINED {
        for side in 0..2 {
            let mut by_margin: BTreeMap<Stratum, Vec<Stratum>> = BTreeMap::new();
            for s in stratum::of_type(t) {
                let margins = stratum::margins(s).expect("a combined stratum");
                by_margin.entry(margins[side]).or_default().push(s);
            }
            splits.extend(by_margin);
        }
    }
    let cell = |i: u8, period: Period, area: &Area, stratum: Stratum| CellName {
        indicator: i,
        period,
        area: area.clone(),
        stratum,
    };
    // (parent, children): parent = Σ children.
    let mut sums: Vec<(usize, Vec<usize>)> = Vec::new();
    for &i in &indicators {
        // The caseload is supervised in the community, never in a prison:
        // its national figures are no sum over prisons.
        let supervised = matches!(
            catalogue().indicators[usize::from(i)].rule,
            Rule::SamePeriod { den, .. } if den & catalogue().caseload != 0
        );
        for measure in 0..2 {
            let mut v = |n: CellName| var((n, measure), &mut ids, &mut bounds);
            for &period in &periods {
                for a in &areas {
                    for (parent, split) in &splits {
                        let parent = v(cell(i, period, a, *parent));
                        let children = split.iter().map(|&s| v(cell(i, period, a, s))).collect();
                        sums.push((parent, children));
                    }
                }
                let strata: Vec<Stratum> = (0..stratum::COUNT).collect();
                for &s in &strata {
                    let national = v(cell(i, period, &Area::national(), s));
                    let of = |kind: AreaKind| areas.iter().filter(move |a| a.kind == kind);
                    for kind in [
                        AreaKind::ProbationRegion,
                        AreaKind::IntegratedCareBoard,
                        AreaKind::LocalAuthority,
                        AreaKind::Prison,
                    ]
                    .into_iter()
                    .filter(|k| !(supervised && *k == AreaKind::Prison))
                    {
                        let children = of(kind).map(|a| v(cell(i, period, a, s))).collect();
                        sums.push((national, children));
                    }
                    for (r, region) in REGIONS.iter().enumerate() {
                        let parent =
                            v(cell(i, period, &area(AreaKind::ProbationRegion, region), s));
                        let children = UNITS[r]
                            .iter()
                            .map(|u| {
                                v(cell(
                                    i,
                                    period,
                                    &area(AreaKind::ProbationDeliveryUnit, u),
                                    s,
                                ))
                            })
                            .collect();
                        sums.push((parent, children));
                    }
                }
            }
            for a in &areas {
                for s in 0..stratum::COUNT {
                    let quarter = v(cell(i, periods[3], a, s));
                    let children = months.iter().map(|&m| v(cell(i, m, a, s))).collect();
                    sums.push((quarter, children));
                }
            }
        }
    }
    // Numerator ≤ denominator, and identically defined denominators are equal.
    let mut pairs: Vec<(usize, usize)> = Vec::new();
    let mut equal: Vec<(usize, usize)> = Vec::new();
    for &period in &periods {
        for a in &areas {
            for s in 0..stratum::COUNT {
                let mut by_definition: HashMap<(u8, u64), usize> = HashMap::new();
                for &i in &indicators {
                    let den = var((cell(i, period, a, s), 0), &mut ids, &mut bounds);
                    let num = var((cell(i, period, a, s), 1), &mut ids, &mut bounds);
                    pairs.push((num, den));
                    let definition = match catalogue().indicators[usize::from(i)].rule {
                        Rule::SamePeriod { den, .. } => (0, den),
                        Rule::Cohort { den, .. } => (0, den),
                        Rule::Median { measure } => (2, measure),
                    };
                    if let Some(&same) = by_definition.get(&definition) {
                        equal.push((same, den));
                    } else {
                        by_definition.insert(definition, den);
                    }
                }
            }
        }
    }
    // What was never published (a period not released) is unknown, not zero.
    for (key, &v) in &ids {
        if !published_periods.contains(&key.0.period) {
            bounds[v] = (0, i64::MAX / 8);
        }
    }
    let (mut lo, mut hi): (Vec<i64>, Vec<i64>) = bounds.iter().copied().unzip();
    let big = i64::MAX / 8;
    loop {
        let before = (lo.clone(), hi.clone());
        for (parent, children) in &sums {
            let sum_lo: i64 = children.iter().map(|&c| lo[c]).sum();
            let sum_hi = saturating_sum(children.iter().map(|&c| hi[c]), big);
            lo[*parent] = lo[*parent].max(sum_lo);
            hi[*parent] = hi[*parent].min(sum_hi);
            for &c in children {
                let others_lo = sum_lo - lo[c];
                let others_hi =
                    saturating_sum(children.iter().filter(|&&o| o != c).map(|&o| hi[o]), big);
                lo[c] = lo[c].max(lo[*parent] - others_hi);
                if hi[*parent] < big {
                    hi[c] = hi[c].min(hi[*parent] - others_lo);
                }
            }
        }
        for &(num, den) in &pairs {
            hi[num] = hi[num].min(hi[den]);
            lo[den] = lo[den].max(lo[num]);
        }
        for &(a, b) in &equal {
            let (l, h) = (lo[a].max(lo[b]), hi[a].min(hi[b]));
            (lo[a], hi[a], lo[b], hi[b]) = (l, h, l, h);
        }
        for (key, &v) in &ids {
            let t = i64::from(truth.get(key).copied().unwrap_or(0));
            assert!(
                lo[v] <= t && t <= hi[v],
                "the attacker's reasoning is unsound at {key:?}: {} <= {t} <= {}; start {:?}",
                lo[v],
                hi[v],
                bounds[v]
            );
        }
        if (lo.clone(), hi.clone()) == before {
            break;
        }
    }
    let small = |t: u32| (1..=THRESHOLD).contains(&t);
    suppressed
        .into_iter()
        .filter_map(|key| {
            let t = truth.get(&key).copied().unwrap_or(0);
            let v = ids[&key];
            (small(t) && lo[v] >= 1).then_some((key.0, key.1, t))
        })
        .collect()
}

fn saturating_sum(values: impl Iterator<Item = i64>, big: i64) -> i64 {
    values.fold(0i64, |sum, v| sum.saturating_add(v)).min(big)
}

fn truths(core: &Aggregator) -> HashMap<(CellName, usize), u32> {
    core.all_cells()
        .into_iter()
        .flat_map(|(n, f)| [((n.clone(), 0), f.tally.den), ((n, 1), f.tally.num)])
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn published_counts_are_never_small_and_always_multiples_of_five(
        people in proptest::collection::vec(synthetic(), 1..150)
    ) {
        let (core, snapshots) = publish_quarter(&people);
        let truth = truths(&core);
        for (name, p) in snapshots.iter().flatten() {
            let den = truth.get(&(name.clone(), 0)).copied().unwrap_or(0);
            prop_assert!(
                !(1..=THRESHOLD).contains(&den) || p.numerator.suppressed,
                "a numerator over a small denominator is published: {:?} {:?}", name, p
            );
            for count in [p.numerator, p.denominator] {
                if count.suppressed {
                    prop_assert_eq!(count.value, 0);
                } else {
                    prop_assert!(!(1..=7).contains(&count.value), "{name:?} {count:?}");
                    prop_assert_eq!(count.value % 5, 0, "{:?}", name);
                }
            }
            prop_assert!(p.numerator.value <= p.denominator.value || p.denominator.suppressed);
        }
    }

    #[test]
    fn the_attacker_recovers_nothing_from_totals_siblings_or_successive_snapshots(
        people in proptest::collection::vec(synthetic(), 1..150)
    ) {
        let (core, snapshots) = publish_quarter(&people);
        // Successive snapshots never publish a cell twice, so there is
        // nothing to difference between them.
        let first: BTreeSet<&CellName> = snapshots[0].iter().map(|(n, _)| n).collect();
        prop_assert!(snapshots[1].iter().all(|(n, _)| !first.contains(n)));
        let exposed = attack(&truths(&core), &snapshots);
        prop_assert!(exposed.is_empty(), "recovered: {:?}", &exposed[..exposed.len().min(3)]);
    }
}

/// One release: the true figures when it was made, and what it published.
type Release = (HashMap<(CellName, usize), u32>, Vec<(CellName, Published)>);

/// The caseload published as a quarter (its months and the quarter at
/// once), then revised once per batch of late records: each release that was
/// published, with the true figures when it was. A release disclosure control
/// holds ends the chain (nothing more is published).
fn publish_and_revise(batches: &[&[Synthetic]]) -> Vec<Release> {
    let mut core = Aggregator::new(catalogue());
    let periods: Vec<Period> = (0..3)
        .map(|m| Period::Month(2026 * 12 + m))
        .chain([Period::Quarter(2026 * 4)])
        .collect();
    let mut known: Option<HashMap<CellName, Before>> = None;
    let mut releases = Vec::new();
    let mut next = 0;
    for batch in batches {
        for person in *batch {
            core.ingest(&input(next, person)).unwrap();
            next += 1;
        }
        let cells = core.cells(&periods);
        // A revision names every cell of its periods: what was there before,
        // with what the attacker knew of it, and what is new.
        let before: HashMap<CellName, Before> = match &known {
            None => HashMap::new(),
            Some(known) => cells
                .iter()
                .map(|(n, _)| (n.clone(), known.get(n).copied().unwrap_or(Before::ABSENT)))
                .collect(),
        };
        let Ok(out) = publish(catalogue(), cells, Vec::new(), &before, region_of(&core)) else {
            break;
        };
        known = Some(
            out.iter()
                .map(|p| (p.name.clone(), p.before_next))
                .collect(),
        );
        releases.push((
            truths(&core),
            out.into_iter().map(|p| (p.name, p.published)).collect(),
        ));
    }
    releases
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    /// An attacker holding the first release and every revision recovers no
    /// suppressed small count from any of them, and no change of one to
    /// seven people between two releases of a cell shows in what they
    /// published (each published figure is known to within 4).
    #[test]
    fn a_chain_of_revisions_reveals_no_small_count_and_no_small_change(
        base in proptest::collection::vec(synthetic(), 20..100),
        late in proptest::collection::vec(proptest::collection::vec(synthetic(), 1..25), 2),
    ) {
        let releases = publish_and_revise(&[&base, &late[0], &late[1]]);
        prop_assert!(!releases.is_empty(), "the first release is publishable");
        for (truth, snapshot) in &releases {
            let exposed = attack(truth, std::slice::from_ref(snapshot));
            prop_assert!(exposed.is_empty(), "recovered: {:?}", &exposed[..exposed.len().min(3)]);
        }
        let interval = |c: Count| {
            if c.value == 0 { (0, 0) } else { ((c.value - 4).max(8), c.value + 4) }
        };
        for pair in releases.windows(2) {
            let ((was, then), (is, now)) = (&pair[0], &pair[1]);
            let then: HashMap<&CellName, &Published> = then.iter().map(|(n, p)| (n, p)).collect();
            for (name, p) in now {
                let Some(q) = then.get(name) else { continue };
                for (measure, (old, new)) in [(q.denominator, p.denominator), (q.numerator, p.numerator)].into_iter().enumerate() {
                    if old.suppressed || new.suppressed {
                        continue;
                    }
                    let key = (name.clone(), measure);
                    let change = i64::from(is.get(&key).copied().unwrap_or(0))
                        - i64::from(was.get(&key).copied().unwrap_or(0));
                    let ((lo1, hi1), (lo2, hi2)) = (interval(old), interval(new));
                    prop_assert!(
                        !(1..=7).contains(&change) || (lo2 <= hi1 && lo1 <= hi2),
                        "a change of {} shows at {:?}: {:?} then {:?}", change, key, old, new
                    );
                }
            }
        }
    }
}

/// The same attacker does recover small counts when only primary suppression
/// is applied and the rest published exactly — so the property above has
/// teeth. (Rounding by cell key alone already defeats most differencing: it
/// leaves 4 either side of every figure.)
#[test]
fn without_secondary_suppression_the_attacker_recovers_small_counts() {
    let people: Vec<Synthetic> = (0..60)
        .map(|i| Synthetic {
            region: i % 2,
            unit: (i / 2) % 2,
            icb: i % 2,
            la: i % 3,
            prison: i % 2,
            month: 0,
            // Three women among 57 men.
            sex: if i < 3 { 1 } else { 2 },
            age: 1 + (i % 4) as i32,
            ethnic: 4,
            facts: vec![ObservedFact::InContact],
        })
        .collect();
    let mut core = Aggregator::new(catalogue());
    for (i, p) in people.iter().enumerate() {
        core.ingest(&input(i, p)).unwrap();
    }
    let months = [Period::Month(2026 * 12)];
    let mut naive = Protector::new(
        catalogue(),
        core.cells(&months),
        Vec::new(),
        region_of(&core),
    );
    naive.primary();
    let exact = |count: Count, truth: u32| Count {
        value: if count.suppressed {
            0
        } else {
            i64::from(truth)
        },
        ..count
    };
    let naive: Vec<_> = naive
        .finish(catalogue())
        .unwrap()
        .into_iter()
        .map(|p| {
            let [den, num] = p.before_next.truth;
            let published = Published {
                denominator: exact(p.published.denominator, den),
                numerator: exact(p.published.numerator, num),
                ..p.published
            };
            (p.name, published)
        })
        .collect();
    assert!(
        !attack_with(&truths(&core), &[naive], 0).is_empty(),
        "primary suppression alone leaks"
    );
    let protected = protect(
        catalogue(),
        core.cells(&months),
        Vec::new(),
        region_of(&core),
    )
    .expect("publishable");
    assert!(attack(&truths(&core), &[protected]).is_empty());
}

/// A revision may not show that a cell changed by a little: the difference
/// between two releases would count the late records in it.
#[test]
fn a_revision_hides_a_small_change_it_would_show() {
    let national = Area::national();
    let mortality = name("mortality", MARCH, &national, 0);
    // Published at 10 (the attacker knows 8 to 14), with nobody dying.
    let before = HashMap::from([(
        mortality.clone(),
        Before {
            truth: [10, 0],
            known: [(8, 14), (0, 0)],
        },
    )]);
    let now = |key: u8| {
        vec![(
            mortality.clone(),
            CellFigures {
                tally: Tally {
                    den: 17,
                    num: 0,
                    den_key: key,
                    num_key: 0,
                },
                median: None,
            },
        )]
    };
    let revise = |key| {
        let out = publish(catalogue(), now(key), Vec::new(), &before, |_| None).unwrap();
        out[0].published.clone()
    };
    // Rounded down to 15 (11 to 19), the change cannot be told from none.
    assert_eq!(revise(DOWN).denominator, shown(17));
    // Rounded up to 20 (16 to 24) it would prove seven late records.
    assert_eq!(round(17, 0), 20);
    assert_eq!(revise(0).denominator, SUPPRESSED);
    // A large change may show: 40 more people.
    let mut cells = now(0);
    cells[0].1.tally.den = 50;
    let out = publish(catalogue(), cells, Vec::new(), &before, |_| None).unwrap();
    assert_eq!(out[0].published.denominator.value, 50);
    assert_eq!(out[0].before_next.truth, [50, 0]);
}
