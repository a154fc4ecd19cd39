//! Parts of the health summaries the tests and benchmarks send.

use throughcare_proto::types::v1 as types;

/// Not registered with a GP.
pub fn gp_not_registered() -> Option<types::GpRegistration> {
    Some(types::GpRegistration {
        status: types::RegistrationStatus::NotRegistered as i32,
        practice_code: String::new(),
    })
}

/// Screened with a mental health need and under treatment.
pub fn mental_health_treated() -> Option<types::MentalHealth> {
    Some(types::MentalHealth {
        screening: types::ScreeningOutcome::NeedIdentified as i32,
        under_treatment: true,
        ..Default::default()
    })
}

/// At `level` risk of self-harm, nothing more known.
pub fn self_harm(level: types::SelfHarmRiskLevel) -> Option<types::SelfHarmRisk> {
    Some(types::SelfHarmRisk {
        level: level as i32,
        ..Default::default()
    })
}

/// A current smoker.
pub fn smoker() -> Option<types::Smoking> {
    Some(types::Smoking {
        status: types::SmokingStatus::CurrentSmoker as i32,
    })
}

/// Only what `gp_registration` says: not registered with a GP.
pub fn gp_only() -> types::HealthSummary {
    types::HealthSummary {
        gp_registration: gp_not_registered(),
        ..Default::default()
    }
}

/// Mental health, substance misuse (on opioid substitution therapy),
/// self-harm risk and GP registration: four categories.
pub fn four_categories() -> types::HealthSummary {
    types::HealthSummary {
        gp_registration: gp_not_registered(),
        mental_health: mental_health_treated(),
        substance_misuse: Some(types::SubstanceMisuse {
            on_opioid_substitution_therapy: true,
            ..Default::default()
        }),
        self_harm_risk: self_harm(types::SelfHarmRiskLevel::Medium),
        ..Default::default()
    }
}
