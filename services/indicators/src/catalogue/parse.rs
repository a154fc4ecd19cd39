//! Reading the catalogue: the TOML definitions, checked and compiled into
//! the predicates whose bits the aggregation core tests.

use super::{
    Catalogue, CatalogueError, Clock, Dimension, Indicator, Kind, MAX_INDICATORS, MAX_PREDICATES,
    Rule, Structure, Unit,
};
use serde::Deserialize;
use std::collections::HashMap;
use throughcare_proto::events::v1::ObservedFact;
use throughcare_proto::types::v1::ServiceType;

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
        denominator: Vec<FactDef>,
        numerator: Vec<FactDef>,
        within_days: i64,
        #[serde(default = "observed")]
        clock: Clock,
        /// Where the window comes from: required, so every window is sourced.
        source: String,
    },
    Median {
        measure: FactDef,
    },
}

fn observed() -> Clock {
    Clock::Observed
}

/// The longest cohort window a catalogue may set (a year).
const MAX_WINDOW_DAYS: i64 = 366;

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

/// A compiled predicate: a fact, narrowed to one service or not; or the
/// caseload, which is derived rather than observed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Predicate {
    Fact {
        fact: i32,
        service: Option<i32>,
    },
    /// `under_supervision`: in a supervision spell at any time in the period,
    /// or in contact with probation in it (see [`Catalogue::caseload`]).
    UnderSupervision,
}

/// The name of the caseload predicate in `indicators.toml`.
const UNDER_SUPERVISION: &str = "under_supervision";

impl Catalogue {
    pub fn parse(text: &str) -> Result<Self, CatalogueError> {
        let file: File = toml::from_str(text)?;
        if file.indicator.len() > MAX_INDICATORS {
            return Err(invalid(format!(
                "{} indicators; at most {MAX_INDICATORS}",
                file.indicator.len()
            )));
        }
        let mut predicates = Predicates::default();
        let mut by_id = HashMap::new();
        let mut indicators = Vec::with_capacity(file.indicator.len());
        for def in file.indicator {
            check_id(&def.id).map_err(invalid)?;
            let rule = predicates.rule(&def)?;
            if by_id.insert(def.id.clone(), indicators.len()).is_some() {
                return Err(invalid(format!("{}: defined twice", def.id)));
            }
            let window_source = match &def.rule {
                RuleDef::Cohort { source, .. } => Some(source.trim().to_owned()),
                _ => None,
            };
            indicators.push(Indicator {
                id: def.id,
                title: def.title,
                dimension: def.dimension,
                kind: def.kind,
                unit: def.unit,
                numerator: def.numerator,
                denominator: def.denominator,
                rule,
                window_source,
            });
        }
        let mut reach_by_bit = [0i64; MAX_PREDICATES];
        for indicator in &indicators {
            if let Rule::Cohort {
                num,
                within_days,
                clock: Clock::Observed,
                ..
            } = indicator.rule
            {
                for (bit, reach) in reach_by_bit.iter_mut().enumerate() {
                    if num & (1 << bit) != 0 {
                        *reach = (*reach).max(within_days);
                    }
                }
            }
        }
        let structures = structures(file.structure, &by_id)?;
        let (masks, services) = predicates.masks();
        let caseload = predicates.caseload();
        Ok(Self {
            indicators,
            structures,
            by_id,
            masks,
            services,
            reach_by_bit,
            caseload,
        })
    }
}

fn invalid(message: String) -> CatalogueError {
    CatalogueError::Invalid(message)
}

/// The structure indicators, whose ids must differ from each other and from
/// the measured indicators'.
fn structures(
    defs: Vec<StructureDef>,
    by_id: &HashMap<String, usize>,
) -> Result<Vec<Structure>, CatalogueError> {
    let mut structures: Vec<Structure> = Vec::with_capacity(defs.len());
    for def in defs {
        check_id(&def.id).map_err(invalid)?;
        if by_id.contains_key(&def.id) || structures.iter().any(|s| s.id == def.id) {
            return Err(invalid(format!("{}: defined twice", def.id)));
        }
        structures.push(Structure {
            id: def.id,
            title: def.title,
            dimension: def.dimension,
        });
    }
    Ok(structures)
}

/// The distinct predicates the indicators use, in order of first use: each
/// is one bit of a person's mask.
#[derive(Default)]
struct Predicates(Vec<Predicate>);

impl Predicates {
    /// The bit of `def`'s predicate (indicator `id`'s), new if not seen before.
    fn bit(&mut self, def: &FactDef, id: &str) -> Result<u64, CatalogueError> {
        let predicate = compile(def).map_err(|e| invalid(format!("{id}: {e}")))?;
        let index = match self.0.iter().position(|p| *p == predicate) {
            Some(i) => i,
            None => {
                self.0.push(predicate);
                self.0.len() - 1
            }
        };
        if index >= MAX_PREDICATES {
            return Err(invalid(format!(
                "more than {MAX_PREDICATES} distinct facts"
            )));
        }
        Ok(1 << index)
    }

    /// The bits of any of `defs` (at least one).
    fn any(&mut self, defs: &[FactDef], id: &str) -> Result<u64, CatalogueError> {
        if defs.is_empty() {
            return Err(invalid(format!("{id}: a rule needs at least one fact")));
        }
        defs.iter()
            .try_fold(0u64, |mask, d| Ok(mask | self.bit(d, id)?))
    }

    /// An indicator's rule over the predicates.
    fn rule(&mut self, def: &IndicatorDef) -> Result<Rule, CatalogueError> {
        let id = def.id.as_str();
        let rule = match &def.rule {
            RuleDef::SamePeriod {
                denominator,
                numerator,
            } => Rule::SamePeriod {
                den: self.any(denominator, id)?,
                num: self.any(numerator, id)?,
            },
            RuleDef::Cohort {
                denominator,
                numerator,
                within_days,
                clock,
                source,
            } => {
                if !(1..=MAX_WINDOW_DAYS).contains(within_days) {
                    return Err(invalid(format!(
                        "{id}: within_days must be from 1 to {MAX_WINDOW_DAYS}"
                    )));
                }
                if source.trim().is_empty() {
                    return Err(invalid(format!(
                        "{id}: a cohort rule names the source of its window"
                    )));
                }
                Rule::Cohort {
                    den: self.any(denominator, id)?,
                    num: self.any(numerator, id)?,
                    within_days: *within_days,
                    clock: *clock,
                }
            }
            RuleDef::Median { measure } => Rule::Median {
                measure: self.bit(measure, id)?,
            },
        };
        let caseload = self.caseload();
        let follows_facts = match rule {
            Rule::SamePeriod { .. } => 0,
            Rule::Cohort { den, num, .. } => den | num,
            Rule::Median { measure } => measure,
        };
        if follows_facts & caseload != 0 {
            return Err(invalid(format!(
                "{id}: {UNDER_SUPERVISION} is a population for same_period rules, not a fact to follow up or measure"
            )));
        }
        if matches!(rule, Rule::Median { .. }) != (def.unit == Unit::MedianDays) {
            return Err(invalid(format!(
                "{id}: a median rule and the median_days unit go together"
            )));
        }
        Ok(rule)
    }

    /// For each fact and service, the predicate bits an observation sets;
    /// and how many services there are. A contact with probation sets the
    /// caseload's bit in its own month: it shows supervision even where no
    /// spell was recorded.
    fn masks(&self) -> (Vec<u64>, usize) {
        let services = ServiceType::SexualHealth as usize + 1;
        let observed = |p: &Predicate| match *p {
            Predicate::Fact { fact, service } => (fact, service),
            Predicate::UnderSupervision => (ObservedFact::InContact as i32, None),
        };
        // Facts no predicate uses fall outside the table, and `mask` gives 0.
        let facts = self.0.iter().map(|p| observed(p).0 as usize + 1).max();
        let facts = facts.unwrap_or(0);
        let mut masks = vec![0u64; facts * services];
        for (index, predicate) in self.0.iter().enumerate() {
            let (fact, narrowed) = observed(predicate);
            for service in 0..services {
                if narrowed.is_none_or(|s| s as usize == service) {
                    masks[fact as usize * services + service] |= 1 << index;
                }
            }
        }
        (masks, services)
    }

    /// The caseload predicate's bit, or 0 if no indicator uses it.
    fn caseload(&self) -> u64 {
        self.0
            .iter()
            .position(|p| *p == Predicate::UnderSupervision)
            .map_or(0, |i| 1 << i)
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
    if def.fact == UNDER_SUPERVISION {
        return match def.service {
            None => Ok(Predicate::UnderSupervision),
            Some(_) => Err(format!("{UNDER_SUPERVISION} takes no service")),
        };
    }
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
    Ok(Predicate::Fact {
        fact: fact as i32,
        service,
    })
}
