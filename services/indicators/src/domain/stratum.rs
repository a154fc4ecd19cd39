//! Strata: the whole population (0); one value of sex, age band or ethnic
//! group; or one pair of sex with ethnic group, or of sex with age band (the
//! groups the toolkit singles out), numbered 0 to 77 so a cell key keeps them
//! in 7 bits. Unknown and unstated values are strata of their own, so each
//! split adds up to the whole, and each combined split adds up to either of
//! its margins.

use throughcare_proto::indicators::v1 as pb;
use throughcare_proto::types::v1::{AgeBand, EthnicGroup, Sex};

pub type Stratum = u8;

/// How many values each characteristic takes (unspecified included).
const SEXES: u8 = 5;
const AGE_BANDS: u8 = 5;
const ETHNIC_GROUPS: u8 = 7;

pub const ALL: Stratum = 0;
const SEX: u8 = 1;
const AGE: u8 = SEX + SEXES;
const ETHNIC: u8 = AGE + AGE_BANDS;
const SEX_BY_ETHNIC: u8 = ETHNIC + ETHNIC_GROUPS;
const SEX_BY_AGE: u8 = SEX_BY_ETHNIC + SEXES * ETHNIC_GROUPS;
/// How many strata there are.
pub const COUNT: u8 = SEX_BY_AGE + SEXES * AGE_BANDS;

/// How many strata one person counts in.
pub const PER_PERSON: usize = 6;

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

    /// The strata a person counts in: all; their sex, age band and ethnic
    /// group; their sex with their ethnic group, and with their age band.
    pub fn strata(self) -> [Stratum; PER_PERSON] {
        [
            ALL,
            SEX + self.sex,
            AGE + self.age_band,
            ETHNIC + self.ethnic_group,
            SEX_BY_ETHNIC + self.sex * ETHNIC_GROUPS + self.ethnic_group,
            SEX_BY_AGE + self.sex * AGE_BANDS + self.age_band,
        ]
    }
}

/// Every stratum of a split, in order.
pub fn of_type(t: pb::StratumType) -> std::ops::Range<Stratum> {
    match t {
        pb::StratumType::Unspecified => 0..0,
        pb::StratumType::All => ALL..SEX,
        pb::StratumType::Sex => SEX..AGE,
        pb::StratumType::AgeBand => AGE..ETHNIC,
        pb::StratumType::EthnicGroup => ETHNIC..SEX_BY_ETHNIC,
        pb::StratumType::SexByEthnicGroup => SEX_BY_ETHNIC..SEX_BY_AGE,
        pb::StratumType::SexByAgeBand => SEX_BY_AGE..COUNT,
    }
}

/// The splits every stratum of which is one value of a single
/// characteristic: each adds up to the whole population.
pub const SINGLE: [pb::StratumType; 3] = [
    pb::StratumType::Sex,
    pb::StratumType::AgeBand,
    pb::StratumType::EthnicGroup,
];

/// The combined splits: each stratum a pair of values.
pub const COMBINED: [pb::StratumType; 2] = [
    pb::StratumType::SexByEthnicGroup,
    pb::StratumType::SexByAgeBand,
];

/// The two single strata a combined stratum lies in (its sex, and its
/// ethnic group or age band); `None` for any other stratum.
pub fn margins(s: Stratum) -> Option<[Stratum; 2]> {
    match stratum_type(s) {
        pb::StratumType::SexByEthnicGroup => {
            let pair = s - SEX_BY_ETHNIC;
            Some([SEX + pair / ETHNIC_GROUPS, ETHNIC + pair % ETHNIC_GROUPS])
        }
        pb::StratumType::SexByAgeBand => {
            let pair = s - SEX_BY_AGE;
            Some([SEX + pair / AGE_BANDS, AGE + pair % AGE_BANDS])
        }
        _ => None,
    }
}

/// The split a stratum belongs to.
pub fn stratum_type(s: Stratum) -> pb::StratumType {
    match s {
        ALL => pb::StratumType::All,
        s if s < AGE => pb::StratumType::Sex,
        s if s < ETHNIC => pb::StratumType::AgeBand,
        s if s < SEX_BY_ETHNIC => pb::StratumType::EthnicGroup,
        s if s < SEX_BY_AGE => pb::StratumType::SexByEthnicGroup,
        _ => pb::StratumType::SexByAgeBand,
    }
}

pub fn to_proto(s: Stratum) -> pb::Stratum {
    let mut out = pb::Stratum::default();
    for single in margins(s).map_or(vec![s], Vec::from) {
        match stratum_type(single) {
            pb::StratumType::Sex => out.sex = i32::from(single - SEX),
            pb::StratumType::AgeBand => out.age_band = i32::from(single - AGE),
            pb::StratumType::EthnicGroup => out.ethnic_group = i32::from(single - ETHNIC),
            _ => {}
        }
    }
    out
}

/// The stratum's split and value as words, e.g. `("sex", "female")`, or
/// `("sex_by_ethnic_group", "female/white")`.
pub fn label(s: Stratum) -> (&'static str, String) {
    if let Some([sex, other]) = margins(s) {
        let split = match stratum_type(s) {
            pb::StratumType::SexByEthnicGroup => "sex_by_ethnic_group",
            _ => "sex_by_age_band",
        };
        return (split, format!("{}/{}", label(sex).1, label(other).1));
    }
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
        let [all, sex, age, ethnic, sex_ethnic, sex_age] = d.strata();
        assert_eq!(all, ALL);
        assert_eq!(stratum_type(sex), pb::StratumType::Sex);
        assert_eq!(to_proto(sex).sex, Sex::Female as i32);
        assert_eq!(label(age), ("age_band", "50_and_over".into()));
        assert_eq!(label(ethnic), ("ethnic_group", "unspecified".into()));
        assert_eq!(margins(sex_ethnic), Some([sex, ethnic]));
        assert_eq!(margins(sex_age), Some([sex, age]));
        assert_eq!(
            label(sex_ethnic),
            ("sex_by_ethnic_group", "female/unspecified".into())
        );
        let both = to_proto(sex_age);
        assert_eq!(
            (both.sex, both.age_band),
            (Sex::Female as i32, AgeBand::AgeBand50AndOver as i32)
        );
        assert!(sex_age < COUNT);
    }

    #[test]
    fn every_stratum_is_in_exactly_one_split_and_combined_ones_in_both_margins() {
        let splits = SINGLE
            .iter()
            .chain(&COMBINED)
            .chain(&[pb::StratumType::All]);
        let mut seen = vec![0; usize::from(COUNT)];
        for &t in splits {
            for s in of_type(t) {
                assert_eq!(stratum_type(s), t);
                seen[usize::from(s)] += 1;
            }
        }
        assert!(seen.iter().all(|&n| n == 1));
        // Everyone is in one cell of each combined split, under their margins.
        for sex in 0..SEXES {
            for group in 0..ETHNIC_GROUPS {
                for band in 0..AGE_BANDS {
                    let d = Demographics {
                        sex,
                        age_band: band,
                        ethnic_group: group,
                    };
                    let [_, s, a, e, se, sa] = d.strata();
                    assert_eq!(margins(se), Some([s, e]));
                    assert_eq!(margins(sa), Some([s, a]));
                }
            }
        }
    }
}
