//! Continuity pathway rules: data (TOML text, with built-in defaults; the
//! service reads the file), read against a release's health summary to open
//! continuity tasks.

use super::health::Reading;
use super::release::Pathway;
use super::task::{ClosesOn, TaskKind};
use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::Deserialize;
use std::collections::HashSet;
use throughcare_proto::types::v1 as pb;

const DEFAULT_RULES: &str = include_str!("../../pathways.toml");

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PathwayRules {
    pub rules: Vec<Rule>,
}

// No deny_unknown_fields here: serde does not support it beside `flatten`.
#[derive(Debug, Clone, Deserialize)]
pub struct Rule {
    pub id: String,
    #[serde(default)]
    pub description: String,
    pub when: Condition,
    /// The release pathways the rule applies to (the community's unless
    /// stated).
    #[serde(default = "community")]
    pub pathways: Vec<Pathway>,
    #[serde(flatten)]
    pub opens: Opens,
    pub due: Due,
}

/// What a rule opens.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Opens {
    /// A referral to `service` must reach `closes_on` (or further) by the deadline.
    Referral {
        service: Service,
        closes_on: ClosesOn,
    },
    /// The responsible organisation must acknowledge by the deadline.
    Alert,
}

/// Health services by configuration name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Service {
    MentalHealthAssessment,
    MentalHealthTreatment,
    SubstanceMisuseTreatment,
    GpRegistration,
    DentalRegistration,
    SmokingCessation,
    Vaccination,
    CommunicableDiseaseTreatment,
    SexualHealth,
}

impl Service {
    pub fn to_proto(self) -> pb::ServiceType {
        match self {
            Service::MentalHealthAssessment => pb::ServiceType::MentalHealthAssessment,
            Service::MentalHealthTreatment => pb::ServiceType::MentalHealthTreatment,
            Service::SubstanceMisuseTreatment => pb::ServiceType::SubstanceMisuseTreatment,
            Service::GpRegistration => pb::ServiceType::GpRegistration,
            Service::DentalRegistration => pb::ServiceType::DentalRegistration,
            Service::SmokingCessation => pb::ServiceType::SmokingCessation,
            Service::Vaccination => pb::ServiceType::Vaccination,
            Service::CommunicableDiseaseTreatment => pb::ServiceType::CommunicableDiseaseTreatment,
            Service::SexualHealth => pb::ServiceType::SexualHealth,
        }
    }
}

/// Conditions a rule can test on the health summary.
fn community() -> Vec<Pathway> {
    vec![Pathway::Community]
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Condition {
    /// Every release on the rule's pathways.
    Always,
    OnOpioidSubstitutionTherapy,
    SubstanceMisuseNeedWithoutOpioidSubstitution,
    NotRegisteredWithGp,
    NotRegisteredWithDentist,
    InMentalHealthTreatment,
    MentalHealthNeedNotInTreatment,
    /// Medium or high risk, or an open ACCT plan.
    SelfHarmRisk,
    CurrentSmoker,
    CommunicableDiseaseInTreatment,
}

impl Condition {
    pub fn holds(self, health: &pb::HealthSummary) -> bool {
        use pb::SelfHarmRiskLevel::{High, Medium};
        match self {
            Condition::Always => true,
            Condition::OnOpioidSubstitutionTherapy => health.on_opioid_substitution(),
            Condition::SubstanceMisuseNeedWithoutOpioidSubstitution => {
                health.substance_misuse_need() && !health.on_opioid_substitution()
            }
            Condition::NotRegisteredWithGp => {
                health.gp_status() == pb::RegistrationStatus::NotRegistered
            }
            Condition::NotRegisteredWithDentist => {
                health.dental_status() == pb::RegistrationStatus::NotRegistered
            }
            Condition::InMentalHealthTreatment => health.in_mental_health_treatment(),
            Condition::MentalHealthNeedNotInTreatment => {
                health.mental_health_need() && !health.in_mental_health_treatment()
            }
            Condition::SelfHarmRisk => {
                matches!(health.self_harm_level(), Medium | High) || health.open_case_plan()
            }
            Condition::CurrentSmoker => health.smoking() == pb::SmokingStatus::CurrentSmoker,
            Condition::CommunicableDiseaseInTreatment => health
                .communicable_disease
                .as_ref()
                .is_some_and(|c| c.in_treatment),
        }
    }
}

/// A deadline: whole days after the release day (due at the end of that day),
/// or a time after the notification.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Due {
    pub after: DueAfter,
    #[serde(default)]
    pub days: i64,
    #[serde(default)]
    pub hours: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DueAfter {
    ReleaseDay,
    Notification,
}

impl Due {
    pub fn at(&self, release_date: NaiveDate, notified_at: DateTime<Utc>) -> DateTime<Utc> {
        let offset = Duration::days(self.days) + Duration::hours(self.hours);
        match self.after {
            DueAfter::ReleaseDay => {
                let end_of_release_day = (release_date + Duration::days(1))
                    .and_hms_opt(0, 0, 0)
                    .expect("midnight")
                    .and_utc();
                end_of_release_day + offset
            }
            DueAfter::Notification => notified_at + offset,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    #[error("pathway rules: {0}")]
    Parse(#[from] toml::de::Error),
    #[error("pathway rules: rule id {0:?} appears twice")]
    Duplicate(String),
    #[error("pathway rules: rule {0:?} has a negative deadline")]
    NegativeDeadline(String),
}

/// A task a rule opens for one release.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedTask {
    pub rule_id: String,
    pub kind: TaskKind,
    pub service: Option<pb::ServiceType>,
    pub closes_on: Option<ClosesOn>,
    pub due_at: DateTime<Utc>,
}

impl PathwayRules {
    pub fn defaults() -> Self {
        Self::parse(DEFAULT_RULES).expect("the built-in pathway rules are valid")
    }

    pub fn parse(text: &str) -> Result<Self, RulesError> {
        let rules: PathwayRules = toml::from_str(text)?;
        let mut seen = HashSet::new();
        for rule in &rules.rules {
            if !seen.insert(rule.id.clone()) {
                return Err(RulesError::Duplicate(rule.id.clone()));
            }
            if rule.due.days < 0 || rule.due.hours < 0 {
                return Err(RulesError::NegativeDeadline(rule.id.clone()));
            }
        }
        Ok(rules)
    }

    /// The tasks a release on `pathway` (none: not a release anywhere a
    /// pathway applies) with this summary opens.
    pub fn plan(
        &self,
        pathway: Option<Pathway>,
        health: &pb::HealthSummary,
        release_date: NaiveDate,
        notified_at: DateTime<Utc>,
    ) -> Vec<PlannedTask> {
        let Some(pathway) = pathway else {
            return Vec::new();
        };
        self.rules
            .iter()
            .filter(|rule| rule.pathways.contains(&pathway) && rule.when.holds(health))
            .map(|rule| {
                let (kind, service, closes_on) = match &rule.opens {
                    Opens::Referral { service, closes_on } => (
                        TaskKind::Referral,
                        Some(service.to_proto()),
                        Some(*closes_on),
                    ),
                    Opens::Alert => (TaskKind::Alert, None, None),
                };
                PlannedTask {
                    rule_id: rule.id.clone(),
                    kind,
                    service,
                    closes_on,
                    due_at: rule.due.at(release_date, notified_at),
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::referral::ReferralState;
    use throughcare_proto::referrals::v1 as pb_referrals;

    fn summary() -> pb::HealthSummary {
        pb::HealthSummary {
            gp_registration: Some(pb::GpRegistration {
                status: pb::RegistrationStatus::NotRegistered as i32,
                practice_code: String::new(),
            }),
            substance_misuse: Some(pb::SubstanceMisuse {
                on_opioid_substitution_therapy: true,
                drug_screening: pb::ScreeningOutcome::NeedIdentified as i32,
                ..Default::default()
            }),
            mental_health: Some(pb::MentalHealth {
                under_treatment: true,
                ..Default::default()
            }),
            self_harm_risk: Some(pb::SelfHarmRisk {
                level: pb::SelfHarmRiskLevel::High as i32,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn the_defaults_open_the_tasks_the_domain_asks_for() {
        let release = NaiveDate::from_ymd_opt(2026, 3, 10).unwrap();
        let notified = release.and_hms_opt(9, 30, 0).unwrap().and_utc() - Duration::days(2);
        let community = Some(Pathway::Community);
        let tasks = PathwayRules::defaults().plan(community, &summary(), release, notified);
        let by_rule = |id: &str| {
            tasks
                .iter()
                .find(|t| t.rule_id == id)
                .unwrap_or_else(|| panic!("{id}"))
        };
        let ost = by_rule("opioid-substitution-continuity");
        assert_eq!(ost.service, Some(pb::ServiceType::SubstanceMisuseTreatment));
        assert_eq!(
            ost.due_at.to_rfc3339(),
            "2026-03-12T00:00:00+00:00",
            "before the end of release day + 1"
        );
        assert_eq!(
            by_rule("gp-registration").due_at.to_rfc3339(),
            "2026-03-18T00:00:00+00:00"
        );
        assert_eq!(
            by_rule("mental-health-continuity").service,
            Some(pb::ServiceType::MentalHealthTreatment)
        );
        let alert = by_rule("self-harm-alert");
        assert_eq!(alert.kind, TaskKind::Alert);
        assert_eq!(alert.due_at, notified + Duration::hours(24));
        assert!(
            tasks
                .iter()
                .all(|t| t.rule_id != "substance-misuse-continuity"),
            "OST has its own rule"
        );
        assert!(
            PathwayRules::defaults()
                .plan(community, &pb::HealthSummary::default(), release, notified)
                .is_empty()
        );
    }

    #[test]
    fn release_reasons_open_their_own_pathway_or_none() {
        use pb_referrals::ReleaseReason as R;
        let release = NaiveDate::from_ymd_opt(2026, 3, 10).unwrap();
        let notified = release.and_hms_opt(9, 30, 0).unwrap().and_utc();
        let rules = |reason| -> Vec<String> {
            PathwayRules::defaults()
                .plan(Pathway::of(reason), &summary(), release, notified)
                .into_iter()
                .map(|t| t.rule_id)
                .collect()
        };
        for reason in [R::OnLicence, R::SentenceEnd] {
            assert!(rules(reason).contains(&"gp-registration".to_owned()));
            assert!(!rules(reason).contains(&"hospital-handover".to_owned()));
        }
        let hospital = rules(R::ToHospital);
        assert!(hospital.contains(&"hospital-handover".to_owned()));
        assert!(hospital.contains(&"self-harm-alert".to_owned()));
        assert!(!hospital.contains(&"gp-registration".to_owned()));
        for reason in [R::TemporaryAbsence, R::SentToCourt, R::Transferred] {
            assert!(rules(reason).is_empty(), "{reason:?}");
        }
    }

    #[test]
    fn closing_states_count_later_progress() {
        assert!(ClosesOn::Accepted.satisfied_by(ReferralState::AppointmentBooked));
        assert!(ClosesOn::Attended.satisfied_by(ReferralState::Completed));
        assert!(!ClosesOn::Attended.satisfied_by(ReferralState::Accepted));
        assert!(!ClosesOn::Accepted.satisfied_by(ReferralState::Rejected));
        assert!(!ClosesOn::Accepted.satisfied_by(ReferralState::Discharged));
    }

    #[test]
    fn bad_rule_files_are_refused_with_the_reason() {
        let twice =
            "[[rules]]\nid='a'\nwhen='self_harm_risk'\nkind='alert'\ndue={after='notification'}\n"
                .repeat(2);
        assert!(matches!(
            PathwayRules::parse(&twice),
            Err(RulesError::Duplicate(_))
        ));
        let unknown =
            "[[rules]]\nid='a'\nwhen='likes_cats'\nkind='alert'\ndue={after='notification'}\n";
        assert!(matches!(
            PathwayRules::parse(unknown),
            Err(RulesError::Parse(_))
        ));
    }
}
