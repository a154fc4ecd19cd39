//! Who the synthetic people are: identifiers, demographics and health on
//! release, drawn from each person's seeded generator.

use chrono::{Datelike, NaiveDate};
use throughcare_platform::identifiers::NhsNumber;
use throughcare_proto::types::v1 as types;

/// SplitMix64: small, fast and reproducible.
pub(super) struct Rng(pub(super) u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub(super) fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    pub(super) fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    /// An upper-case letter.
    pub(super) fn letter(&mut self) -> char {
        char::from(b'A' + self.below(26) as u8)
    }
}

/// A valid NHS number (modulus 11) for the `n`th synthetic person.
pub(super) fn nhs_number(n: u64) -> String {
    (n * 11..)
        .find_map(|candidate| {
            let body = format!("{:09}", 100_000_000 + candidate % 800_000_000);
            let first_nine = body.as_bytes().try_into().expect("nine digits");
            NhsNumber::check_digit(first_nine).map(|check| format!("{body}{check}"))
        })
        .expect("a valid number within eleven tries")
}

pub(super) fn date(d: NaiveDate) -> types::Date {
    types::Date {
        year: d.year(),
        month: d.month() as i32,
        day: d.day() as i32,
    }
}

/// `yes` if `first`, otherwise `no`, as a wire enum value.
fn either<E: Into<i32>>(first: bool, yes: E, no: E) -> i32 {
    if first { yes } else { no }.into()
}

/// What a person needs on release.
pub(super) struct Needs {
    pub(super) gp_registered: bool,
    pub(super) drinking: bool,
    pub(super) drugs: bool,
    pub(super) mental: bool,
}

/// The person's date of birth, sex and ethnic group.
pub(super) fn details(rng: &mut Rng, ids: &types::PersonIdentifiers) -> types::PersonDetails {
    let born = NaiveDate::from_ymd_opt(
        1950 + rng.below(55) as i32,
        1 + rng.below(12) as u32,
        1 + rng.below(28) as u32,
    )
    .expect("a date");
    types::PersonDetails {
        identifiers: Some(ids.clone()),
        date_of_birth: Some(date(born)),
        sex: either(rng.chance(91), types::Sex::Male, types::Sex::Female),
        ethnic_group: [
            types::EthnicGroup::White,
            types::EthnicGroup::White,
            types::EthnicGroup::White,
            types::EthnicGroup::Black,
            types::EthnicGroup::Asian,
            types::EthnicGroup::Mixed,
            types::EthnicGroup::Other,
        ][rng.below(7) as usize] as i32,
    }
}

/// What prison healthcare knows of the person's health on release.
pub(super) fn health(rng: &mut Rng, needs: &Needs) -> types::HealthSummary {
    use types::RegistrationStatus::{NotRegistered, Registered};
    let screening = |need: bool| {
        use types::ScreeningOutcome::{NeedIdentified, NoNeedIdentified};
        either(need, NeedIdentified, NoNeedIdentified)
    };
    let on_ost = needs.drugs && rng.chance(40);
    types::HealthSummary {
        gp_registration: Some(types::GpRegistration {
            status: either(needs.gp_registered, Registered, NotRegistered),
            practice_code: String::new(),
        }),
        dental_registration: Some(types::DentalRegistration {
            status: either(rng.chance(30), Registered, NotRegistered),
            practice_code: String::new(),
        }),
        mental_health: Some(types::MentalHealth {
            screening: screening(needs.mental),
            under_treatment: needs.mental && rng.chance(50),
            ..Default::default()
        }),
        substance_misuse: Some(types::SubstanceMisuse {
            alcohol_screening: screening(needs.drinking),
            drug_screening: screening(needs.drugs),
            in_treatment: on_ost,
            on_opioid_substitution_therapy: on_ost,
            ..Default::default()
        }),
        self_harm_risk: Some(types::SelfHarmRisk {
            level: either(
                rng.chance(10),
                types::SelfHarmRiskLevel::Medium,
                types::SelfHarmRiskLevel::NoneKnown,
            ),
            ..Default::default()
        }),
        smoking: Some(types::Smoking {
            status: either(
                rng.chance(60),
                types::SmokingStatus::CurrentSmoker,
                types::SmokingStatus::NeverSmoked,
            ),
        }),
        vaccination: Some(vaccination(rng.chance(50))),
        communicable_disease: Some(types::CommunicableDisease {
            screening: screening(rng.chance(5)),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn vaccination(needs_hepatitis_b: bool) -> types::Vaccination {
    let hepatitis_b = types::VaccinationNeed {
        vaccine: types::Vaccine::HepatitisB as i32,
        status: types::VaccinationStatus::Needed as i32,
    };
    types::Vaccination {
        need_assessed: true,
        needs: if needs_hepatitis_b {
            vec![hepatitis_b]
        } else {
            vec![]
        },
    }
}
