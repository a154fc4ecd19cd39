//! The indicator catalogue: the toolkit's indicators as data
//! (`indicators.toml`), checked once at start-up and compiled into bit masks
//! over observed facts so the aggregation core only ever tests bits.

use serde::Deserialize;
use std::collections::HashMap;
use std::sync::LazyLock;
use throughcare_proto::indicators::v1 as pb;

mod parse;

const STANDARD: &str = include_str!("../indicators.toml");

/// The most indicators a catalogue may hold (they are numbered in 8 bits).
pub const MAX_INDICATORS: usize = 200;
/// The most distinct fact predicates the rules may use (one bit each).
const MAX_PREDICATES: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Dimension {
    Safety,
    Effectiveness,
    Experience,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Process,
    Outcome,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    Proportion,
    RatePerThousand,
    MedianDays,
}

/// How an indicator counts people, compiled to predicate masks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// Denominator: anyone with a `den` fact in the period and area. Numerator:
    /// those of them with a `num` fact anywhere in the same period.
    SamePeriod { den: u64, num: u64 },
    /// A follow-through cohort. Denominator: anyone with a `den` fact in the
    /// period and area (each counts in the period and area of that fact).
    /// Numerator: those of them who reached a `num` fact within `within_days`
    /// of it, as `clock` measures, whenever that fact arrives.
    Cohort {
        den: u64,
        num: u64,
        within_days: i64,
        clock: Clock,
    },
    /// Everyone with a `measure` fact in the period and area; the value is the
    /// median of each person's first measurement in the period.
    Median { measure: u64 },
}

/// How a cohort rule measures the time from its denominator fact to a
/// numerator fact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Clock {
    /// By when each was observed: the numerator fact comes at most
    /// `within_days` after the denominator fact — or before it, in the same
    /// episode (work done ahead of a release, as part of that release).
    Observed,
    /// The numerator fact, in the denominator fact's episode, carries its own
    /// days since the episode began (release day) as its value.
    DaysInValue,
}

/// A process or outcome indicator.
#[derive(Debug, Clone)]
pub struct Indicator {
    pub id: String,
    pub title: String,
    pub dimension: Dimension,
    pub kind: Kind,
    pub unit: Unit,
    pub numerator: String,
    pub denominator: String,
    pub rule: Rule,
    /// For a cohort rule: where its window comes from.
    pub window_source: Option<String>,
}

/// A structure indicator: present or absent, per organisation.
#[derive(Debug, Clone)]
pub struct Structure {
    pub id: String,
    pub title: String,
    pub dimension: Dimension,
}

/// The whole catalogue.
#[derive(Debug, Clone)]
pub struct Catalogue {
    pub indicators: Vec<Indicator>,
    pub structures: Vec<Structure>,
    by_id: HashMap<String, usize>,
    /// Predicate bits an observation sets, by `fact * SERVICES + service`.
    masks: Vec<u64>,
    services: usize,
    /// For each predicate bit, the longest observed-clock cohort window it
    /// is a numerator of, in days: how far back a new fact setting it may
    /// change a denominator's figures (0: it reaches back nowhere).
    reach_by_bit: [i64; MAX_PREDICATES],
    /// The caseload predicate's bit (`under_supervision`), 0 if unused: set
    /// for a period by a supervision spell that covers any of it, in the
    /// spell's area, and by a contact with probation in it.
    pub caseload: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum CatalogueError {
    #[error("indicator catalogue: {0}")]
    Parse(#[from] toml::de::Error),
    #[error("indicator catalogue: {0}")]
    Invalid(String),
}

static STANDARD_CATALOGUE: LazyLock<Catalogue> =
    LazyLock::new(|| Catalogue::parse(STANDARD).expect("the bundled indicators.toml is valid"));

impl Catalogue {
    /// The toolkit's catalogue, bundled with the service.
    pub fn standard() -> &'static Catalogue {
        &STANDARD_CATALOGUE
    }

    /// The predicate bits an observation of `fact` (for `service`) sets.
    #[inline]
    pub fn mask(&self, fact: u8, service: u8) -> u64 {
        self.masks
            .get(fact as usize * self.services + service as usize)
            .copied()
            .unwrap_or(0)
    }

    /// How many days before an observation of `fact` (for `service`) a
    /// denominator fact may be whose cohort figures it changes (besides
    /// those of its own episode): 0 for a fact no cohort follows up with.
    #[inline]
    pub fn reach_days(&self, fact: u8, service: u8) -> i64 {
        let mut mask = self.mask(fact, service);
        let mut days = 0;
        while mask != 0 {
            days = days.max(self.reach_by_bit[mask.trailing_zeros() as usize]);
            mask &= mask - 1;
        }
        days
    }

    /// The index of a process or outcome indicator.
    pub fn index(&self, id: &str) -> Option<usize> {
        self.by_id.get(id).copied()
    }

    pub fn structure(&self, id: &str) -> Option<&Structure> {
        self.structures.iter().find(|s| s.id == id)
    }

    /// Every indicator, process and outcome first, then structure.
    pub fn to_proto(&self) -> Vec<pb::Indicator> {
        let mut out: Vec<pb::Indicator> = self
            .indicators
            .iter()
            .map(|i| pb::Indicator {
                indicator_id: i.id.clone(),
                title: i.title.clone(),
                dimension: dimension(i.dimension) as i32,
                r#type: match i.kind {
                    Kind::Process => pb::DonabedianType::Process,
                    Kind::Outcome => pb::DonabedianType::Outcome,
                } as i32,
                unit: match i.unit {
                    Unit::Proportion => pb::IndicatorUnit::Proportion,
                    Unit::RatePerThousand => pb::IndicatorUnit::RatePerThousand,
                    Unit::MedianDays => pb::IndicatorUnit::MedianDays,
                } as i32,
                numerator_definition: i.numerator.clone(),
                denominator_definition: i.denominator.clone(),
                window_days: match i.rule {
                    Rule::Cohort { within_days, .. } => within_days as i32,
                    _ => 0,
                },
                window_source: i.window_source.clone().unwrap_or_default(),
            })
            .collect();
        out.extend(self.structures.iter().map(|s| pb::Indicator {
            indicator_id: s.id.clone(),
            title: s.title.clone(),
            dimension: dimension(s.dimension) as i32,
            r#type: pb::DonabedianType::Structure as i32,
            unit: pb::IndicatorUnit::Presence as i32,
            numerator_definition: "Present (recorded by the organisation itself)".into(),
            denominator_definition: "Each organisation".into(),
            window_days: 0,
            window_source: String::new(),
        }));
        out
    }
}

fn dimension(d: Dimension) -> pb::DarziDimension {
    match d {
        Dimension::Safety => pb::DarziDimension::Safety,
        Dimension::Effectiveness => pb::DarziDimension::Effectiveness,
        Dimension::Experience => pb::DarziDimension::Experience,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use throughcare_proto::events::v1::ObservedFact;
    use throughcare_proto::types::v1::ServiceType;

    #[test]
    fn the_bundled_catalogue_covers_the_toolkit() {
        let c = Catalogue::standard();
        assert!(c.indicators.len() >= 30, "{}", c.indicators.len());
        assert_eq!(c.structures.len(), 8);
        for id in [
            "gp-registered",
            "smokers-offered-cessation",
            "vaccinated",
            "timely-access",
            "mortality",
            "suicide",
            "self-harm",
            "continuity-of-care-after-release",
        ] {
            assert!(c.index(id).is_some(), "{id}");
        }
        let continuity = &c.indicators[c.index("continuity-of-care-after-release").unwrap()];
        assert!(matches!(
            continuity.rule,
            Rule::Cohort {
                within_days: 21,
                clock: Clock::DaysInValue,
                ..
            }
        ));
        assert_eq!(c.to_proto().len(), c.indicators.len() + 8);
    }

    #[test]
    fn a_service_narrows_a_fact() {
        let c = Catalogue::standard();
        let i = &c.indicators[c.index("smokers-offered-cessation").unwrap()];
        let Rule::Cohort { num, .. } = i.rule else {
            panic!("a follow-through cohort")
        };
        let offered = ObservedFact::ReferralOffered as u8;
        assert_ne!(
            c.mask(offered, ServiceType::SmokingCessation as u8) & num,
            0
        );
        assert_eq!(c.mask(offered, ServiceType::Vaccination as u8) & num, 0);
        assert_eq!(c.mask(200, 200), 0, "unknown facts set nothing");
    }

    #[test]
    fn a_fact_reaches_back_only_as_far_as_its_own_cohorts() {
        let c = Catalogue::standard();
        let reach =
            |fact: ObservedFact, service: ServiceType| c.reach_days(fact as u8, service as u8);
        assert_eq!(
            reach(
                ObservedFact::ReportsDrugMisuseReduced,
                ServiceType::Unspecified
            ),
            182
        );
        assert_eq!(
            reach(
                ObservedFact::ReferralAccepted,
                ServiceType::SmokingCessation
            ),
            21
        );
        assert_eq!(reach(ObservedFact::Died, ServiceType::Unspecified), 14);
        assert_eq!(reach(ObservedFact::InContact, ServiceType::Unspecified), 0);
    }

    #[test]
    fn mistakes_in_the_catalogue_are_named() {
        let base = |rule: &str| {
            format!(
                "[[indicator]]\nid = \"x\"\ntitle = \"t\"\ndimension = \"safety\"\ntype = \"outcome\"\nunit = \"proportion\"\nnumerator = \"n\"\ndenominator = \"d\"\nrule = {rule}\n"
            )
        };
        let error = |text: &str| Catalogue::parse(text).unwrap_err().to_string();
        assert!(
            error(&base(
                r#"{ kind = "same_period", denominator = [{ fact = "in_contact" }], numerator = [{ fact = "flying" }] }"#
            ))
            .contains("unknown fact \"flying\"")
        );
        assert!(
            error(&base(
                r#"{ kind = "same_period", denominator = [{ fact = "in_contact", service = "astrology" }], numerator = [{ fact = "died" }] }"#
            ))
            .contains("unknown service")
        );
        assert!(
            error(&base(
                r#"{ kind = "median", measure = { fact = "first_appointment_attended" } }"#
            ))
            .contains("median")
        );
        assert!(
            error(&base(
                r#"{ kind = "same_period", denominator = [], numerator = [{ fact = "died" }] }"#
            ))
            .contains("at least one fact")
        );
        assert!(
            error(&base(
                r#"{ kind = "cohort", denominator = [{ fact = "under_supervision" }], numerator = [{ fact = "died" }], within_days = 14, source = "s" }"#
            ))
            .contains("under_supervision is a population for same_period rules")
        );
        assert!(
            error(&base(
                r#"{ kind = "same_period", denominator = [{ fact = "under_supervision", service = "vaccination" }], numerator = [{ fact = "died" }] }"#
            ))
            .contains("under_supervision takes no service")
        );
        let twice = base(
            r#"{ kind = "same_period", denominator = [{ fact = "in_contact" }], numerator = [{ fact = "died" }] }"#,
        );
        assert!(error(&format!("{twice}{twice}")).contains("defined twice"));
    }
}
