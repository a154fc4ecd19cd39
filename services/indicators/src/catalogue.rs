//! The indicator catalogue: the toolkit's indicators as data
//! (`indicators.toml`), checked once at start-up and compiled into bit masks
//! over observed facts so the aggregation core only ever tests bits.

use serde::Deserialize;
use std::collections::HashMap;
use std::sync::LazyLock;
use throughcare_proto::events::v1::ObservedFact;
use throughcare_proto::indicators::v1 as pb;
use throughcare_proto::types::v1::ServiceType;

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
    /// Denominator: anyone with a `den` fact in the period and area. Numerator:
    /// those whose `num` fact in the same episode came within `within_days`.
    Cohort {
        den: u64,
        num: u64,
        within_days: i64,
    },
    /// Everyone with a `measure` fact in the period and area; the value is the
    /// median of each person's first measurement in the period.
    Median { measure: u64 },
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
}

#[derive(Debug, thiserror::Error)]
pub enum CatalogueError {
    #[error("indicator catalogue: {0}")]
    Parse(#[from] toml::de::Error),
    #[error("indicator catalogue: {0}")]
    Invalid(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    indicator: Vec<IndicatorDef>,
    #[serde(default)]
    structure: Vec<StructureDef>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IndicatorDef {
    id: String,
    title: String,
    dimension: Dimension,
    #[serde(rename = "type")]
    kind: Kind,
    unit: Unit,
    numerator: String,
    denominator: String,
    rule: RuleDef,
}

#[derive(Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
enum RuleDef {
    SamePeriod {
        denominator: Vec<FactDef>,
        numerator: Vec<FactDef>,
    },
    Cohort {
        denominator: FactDef,
        numerator: FactDef,
        within_days: i64,
    },
    Median {
        measure: FactDef,
    },
}

#[derive(Deserialize, Clone, PartialEq, Eq, Hash)]
#[serde(deny_unknown_fields)]
struct FactDef {
    fact: String,
    service: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StructureDef {
    id: String,
    title: String,
    dimension: Dimension,
}

/// A compiled predicate: a fact, narrowed to one service or not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Predicate {
    fact: i32,
    service: Option<i32>,
}

static STANDARD_CATALOGUE: LazyLock<Catalogue> =
    LazyLock::new(|| Catalogue::parse(STANDARD).expect("the bundled indicators.toml is valid"));

impl Catalogue {
    /// The toolkit's catalogue, bundled with the service.
    pub fn standard() -> &'static Catalogue {
        &STANDARD_CATALOGUE
    }

    pub fn parse(text: &str) -> Result<Self, CatalogueError> {
        let file: File = toml::from_str(text)?;
        let invalid = |m: String| CatalogueError::Invalid(m);
        if file.indicator.len() > MAX_INDICATORS {
            return Err(invalid(format!(
                "{} indicators; at most {MAX_INDICATORS}",
                file.indicator.len()
            )));
        }
        let mut predicates: Vec<Predicate> = Vec::new();
        let mut bit = |def: &FactDef, id: &str| -> Result<u64, CatalogueError> {
            let predicate = compile(def).map_err(|e| invalid(format!("{id}: {e}")))?;
            let index = match predicates.iter().position(|p| *p == predicate) {
                Some(i) => i,
                None => {
                    predicates.push(predicate);
                    predicates.len() - 1
                }
            };
            if index >= MAX_PREDICATES {
                return Err(invalid(format!(
                    "more than {MAX_PREDICATES} distinct facts"
                )));
            }
            Ok(1 << index)
        };
        let mut by_id = HashMap::new();
        let mut indicators = Vec::with_capacity(file.indicator.len());
        for def in file.indicator {
            check_id(&def.id).map_err(invalid)?;
            let any =
                |defs: &[FactDef], bit: &mut dyn FnMut(&FactDef) -> Result<u64, CatalogueError>| {
                    if defs.is_empty() {
                        return Err(invalid(format!(
                            "{}: a rule needs at least one fact",
                            def.id
                        )));
                    }
                    defs.iter().try_fold(0u64, |mask, d| Ok(mask | bit(d)?))
                };
            let id = def.id.clone();
            let mut bit = |d: &FactDef| bit(d, &id);
            let rule = match &def.rule {
                RuleDef::SamePeriod {
                    denominator,
                    numerator,
                } => Rule::SamePeriod {
                    den: any(denominator, &mut bit)?,
                    num: any(numerator, &mut bit)?,
                },
                RuleDef::Cohort {
                    denominator,
                    numerator,
                    within_days,
                } => {
                    if *within_days <= 0 {
                        return Err(invalid(format!("{id}: within_days must be positive")));
                    }
                    Rule::Cohort {
                        den: bit(denominator)?,
                        num: bit(numerator)?,
                        within_days: *within_days,
                    }
                }
                RuleDef::Median { measure } => Rule::Median {
                    measure: bit(measure)?,
                },
            };
            if matches!(rule, Rule::Median { .. }) != (def.unit == Unit::MedianDays) {
                return Err(invalid(format!(
                    "{id}: a median rule and the median_days unit go together"
                )));
            }
            if by_id.insert(def.id.clone(), indicators.len()).is_some() {
                return Err(invalid(format!("{id}: defined twice")));
            }
            indicators.push(Indicator {
                id: def.id,
                title: def.title,
                dimension: def.dimension,
                kind: def.kind,
                unit: def.unit,
                numerator: def.numerator,
                denominator: def.denominator,
                rule,
            });
        }
        let mut structures = Vec::with_capacity(file.structure.len());
        for def in file.structure {
            check_id(&def.id).map_err(invalid)?;
            if by_id.contains_key(&def.id) || structures.iter().any(|s: &Structure| s.id == def.id)
            {
                return Err(invalid(format!("{}: defined twice", def.id)));
            }
            structures.push(Structure {
                id: def.id,
                title: def.title,
                dimension: def.dimension,
            });
        }
        let services = ServiceType::SexualHealth as usize + 1;
        // Facts no predicate uses fall outside the table, and `mask` gives 0.
        let facts = predicates.iter().map(|p| p.fact as usize + 1).max();
        let facts = facts.unwrap_or(0);
        let mut masks = vec![0u64; facts * services];
        for (index, predicate) in predicates.iter().enumerate() {
            for service in 0..services {
                if predicate.service.is_none_or(|s| s as usize == service) {
                    masks[predicate.fact as usize * services + service] |= 1 << index;
                }
            }
        }
        Ok(Self {
            indicators,
            structures,
            by_id,
            masks,
            services,
        })
    }

    /// The predicate bits an observation of `fact` (for `service`) sets.
    #[inline]
    pub fn mask(&self, fact: u8, service: u8) -> u64 {
        self.masks
            .get(fact as usize * self.services + service as usize)
            .copied()
            .unwrap_or(0)
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

fn check_id(id: &str) -> Result<(), String> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{id:?}: ids are 1 to 64 lower-case letters, digits and hyphens"
        ))
    }
}

fn compile(def: &FactDef) -> Result<Predicate, String> {
    let fact = ObservedFact::from_str_name(&format!("OBSERVED_FACT_{}", def.fact.to_uppercase()))
        .filter(|f| *f != ObservedFact::Unspecified)
        .ok_or_else(|| format!("unknown fact {:?}", def.fact))?;
    let service = match &def.service {
        None => None,
        Some(name) => Some(
            ServiceType::from_str_name(&format!("SERVICE_TYPE_{}", name.to_uppercase()))
                .filter(|s| *s != ServiceType::Unspecified)
                .ok_or_else(|| format!("unknown service {name:?}"))? as i32,
        ),
    };
    Ok(Predicate {
        fact: fact as i32,
        service,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bundled_catalogue_covers_the_toolkit() {
        let c = Catalogue::standard();
        assert!(c.indicators.len() >= 30, "{}", c.indicators.len());
        assert_eq!(c.structures.len(), 7);
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
                ..
            }
        ));
        assert_eq!(c.to_proto().len(), c.indicators.len() + 7);
    }

    #[test]
    fn a_service_narrows_a_fact() {
        let c = Catalogue::standard();
        let i = &c.indicators[c.index("smokers-offered-cessation").unwrap()];
        let Rule::SamePeriod { num, .. } = i.rule else {
            panic!("same period")
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
        let twice = base(
            r#"{ kind = "same_period", denominator = [{ fact = "in_contact" }], numerator = [{ fact = "died" }] }"#,
        );
        assert!(error(&format!("{twice}{twice}")).contains("defined twice"));
    }
}
