//! Strata: the whole population (0), or one value of sex, age band or ethnic
//! group, numbered 0 to 17 so a cell key keeps them in 5 bits. Unknown and
//! unstated values are strata of their own, so each split adds up to the whole.

use throughcare_proto::indicators::v1 as pb;
use throughcare_proto::types::v1::{AgeBand, EthnicGroup, Sex};

pub type Stratum = u8;

pub const ALL: Stratum = 0;
const SEX: u8 = 1;
const AGE: u8 = SEX + 5;
const ETHNIC: u8 = AGE + 5;
/// How many strata there are.
pub const COUNT: u8 = ETHNIC + 7;

/// A person's demographics, each clamped to a known value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Demographics {
    pub sex: u8,
    pub age_band: u8,
    pub ethnic_group: u8,
}

impl Demographics {
    /// From wire values; anything unknown is taken as unspecified.
    pub fn new(sex: i32, age_band: i32, ethnic_group: i32) -> Self {
        let clamp = |v: i32, n: i32| if (0..n).contains(&v) { v as u8 } else { 0 };
        Self {
            sex: clamp(sex, 5),
            age_band: clamp(age_band, 5),
            ethnic_group: clamp(ethnic_group, 7),
        }
    }

    /// The four strata a person counts in: all, their sex, age band and ethnic group.
    pub fn strata(self) -> [Stratum; 4] {
        [
            ALL,
            SEX + self.sex,
            AGE + self.age_band,
            ETHNIC + self.ethnic_group,
        ]
    }
}

/// The split a stratum belongs to.
pub fn stratum_type(s: Stratum) -> pb::StratumType {
    match s {
        ALL => pb::StratumType::All,
        s if s < AGE => pb::StratumType::Sex,
        s if s < ETHNIC => pb::StratumType::AgeBand,
        _ => pb::StratumType::EthnicGroup,
    }
}

pub fn to_proto(s: Stratum) -> pb::Stratum {
    let mut out = pb::Stratum::default();
    match stratum_type(s) {
        pb::StratumType::Sex => out.sex = i32::from(s - SEX),
        pb::StratumType::AgeBand => out.age_band = i32::from(s - AGE),
        pb::StratumType::EthnicGroup => out.ethnic_group = i32::from(s - ETHNIC),
        _ => {}
    }
    out
}

/// The stratum's split and value as words, e.g. `("sex", "female")`.
pub fn label(s: Stratum) -> (&'static str, String) {
    let value = |first: u8| i32::from(s - first);
    let (split, name) = match stratum_type(s) {
        pb::StratumType::Sex => {
            let sex = Sex::try_from(value(SEX)).unwrap_or_default();
            ("sex", sex.as_str_name())
        }
        pb::StratumType::AgeBand => {
            let band = AgeBand::try_from(value(AGE)).unwrap_or_default();
            ("age_band", band.as_str_name())
        }
        pb::StratumType::EthnicGroup => {
            let group = EthnicGroup::try_from(value(ETHNIC)).unwrap_or_default();
            ("ethnic_group", group.as_str_name())
        }
        _ => return ("all", "all".into()),
    };
    // Enum value names are prefixed with their type: SEX_FEMALE.
    let prefix = format!("{}_", split.to_ascii_uppercase());
    (split, name.trim_start_matches(&prefix).to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strata_partition_each_split() {
        let d = Demographics::new(Sex::Female as i32, AgeBand::AgeBand50AndOver as i32, 99);
        let [all, sex, age, ethnic] = d.strata();
        assert_eq!(all, ALL);
        assert_eq!(stratum_type(sex), pb::StratumType::Sex);
        assert_eq!(to_proto(sex).sex, Sex::Female as i32);
        assert_eq!(label(age), ("age_band", "50_and_over".into()));
        assert_eq!(label(ethnic), ("ethnic_group", "unspecified".into()));
        assert!(ethnic < COUNT);
    }
}
