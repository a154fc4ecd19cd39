//! Data minimisation: a health summary reduced to exactly the permitted
//! categories. Each category is one field of the summary.

use std::collections::BTreeSet;
use throughcare_proto::types::v1::{DataCategory, HealthSummary};

/// The part of `summary` that belongs to `category`, as a summary of its own.
pub fn only(summary: &HealthSummary, category: DataCategory) -> HealthSummary {
    let mut part = HealthSummary::default();
    match category {
        DataCategory::GpRegistration => part.gp_registration = summary.gp_registration.clone(),
        DataCategory::DentalRegistration => {
            part.dental_registration = summary.dental_registration.clone()
        }
        DataCategory::MentalHealth => part.mental_health = summary.mental_health.clone(),
        DataCategory::SubstanceMisuse => part.substance_misuse = summary.substance_misuse.clone(),
        DataCategory::SelfHarmRisk => part.self_harm_risk = summary.self_harm_risk,
        DataCategory::Medication => part.medication = summary.medication.clone(),
        DataCategory::Smoking => part.smoking = summary.smoking,
        DataCategory::Vaccination => part.vaccination = summary.vaccination.clone(),
        DataCategory::CommunicableDisease => {
            part.communicable_disease = summary.communicable_disease.clone()
        }
        DataCategory::Disability => part.disability = summary.disability.clone(),
        DataCategory::PhysicalHealth => part.physical_health = summary.physical_health.clone(),
        DataCategory::Unspecified => {}
    }
    part
}

/// The categories `summary` holds anything for.
pub fn present(summary: &HealthSummary) -> BTreeSet<DataCategory> {
    super::decision::ALL_CATEGORIES
        .into_iter()
        .filter(|c| only(summary, *c) != HealthSummary::default())
        .collect()
}

/// Merges category parts into one summary (later parts win per category).
pub fn merge(parts: impl IntoIterator<Item = HealthSummary>) -> HealthSummary {
    let mut merged = HealthSummary::default();
    for part in parts {
        macro_rules! take {
            ($($field:ident),*) => {$( if part.$field.is_some() { merged.$field = part.$field; } )*};
        }
        take!(
            gp_registration,
            dental_registration,
            mental_health,
            substance_misuse,
            self_harm_risk,
            medication,
            smoking,
            vaccination,
            communicable_disease,
            disability,
            physical_health
        );
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;
    use throughcare_proto::types::v1 as pb;

    fn full() -> HealthSummary {
        HealthSummary {
            gp_registration: Some(pb::GpRegistration {
                status: 2,
                practice_code: String::new(),
            }),
            mental_health: Some(pb::MentalHealth {
                under_treatment: true,
                ..Default::default()
            }),
            substance_misuse: Some(pb::SubstanceMisuse {
                on_opioid_substitution_therapy: true,
                ..Default::default()
            }),
            smoking: Some(pb::Smoking { status: 3 }),
            ..Default::default()
        }
    }

    #[test]
    fn each_category_is_exactly_one_field() {
        let summary = full();
        assert_eq!(
            present(&summary),
            [
                DataCategory::GpRegistration,
                DataCategory::MentalHealth,
                DataCategory::SubstanceMisuse,
                DataCategory::Smoking
            ]
            .into()
        );
        let parts: Vec<_> = present(&summary)
            .into_iter()
            .map(|c| only(&summary, c))
            .collect();
        assert!(parts.iter().all(|p| present(p).len() == 1));
        assert_eq!(merge(parts), summary, "the parts rebuild the whole");
        let minimised = merge([DataCategory::Smoking].map(|c| only(&summary, c)));
        assert_eq!(present(&minimised), [DataCategory::Smoking].into());
    }
}
