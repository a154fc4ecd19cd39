//! What the indicators service learns: coded facts about a pseudonymous person
//! in an area at a time. Never an identifier in clear, never free text.

use super::health::Reading;
use super::referral::ReferralState;
use super::release::{Pathway, ReleaseNotification};
use chrono::{DateTime, NaiveDate, Utc};
use throughcare_platform::clock::to_timestamp;
use throughcare_proto::events::v1::{Observation, ObservationAreas, ObservedFact as Fact};
use throughcare_proto::types::v1 as pb;

/// Who and where an observation is about, and which episode produced it.
#[derive(Debug, Clone)]
pub struct Subject {
    pub person_key: String,
    pub areas: ObservationAreas,
    pub sex: pb::Sex,
    pub age_band: pb::AgeBand,
    pub ethnic_group: pb::EthnicGroup,
    /// Pseudonymous key of the release, assessment or referral: a reversal
    /// retracts everything carrying its episode key.
    pub episode_key: String,
}

impl Subject {
    pub fn observe(
        &self,
        fact: Fact,
        service: pb::ServiceType,
        value: i64,
        at: DateTime<Utc>,
    ) -> Observation {
        Observation {
            person_key: self.person_key.clone(),
            areas: Some(self.areas.clone()),
            sex: self.sex as i32,
            age_band: self.age_band as i32,
            ethnic_group: self.ethnic_group as i32,
            fact: fact as i32,
            service: service as i32,
            value,
            observed_at: Some(to_timestamp(at)),
            episode_key: self.episode_key.clone(),
        }
    }
}

/// Facts in a health summary (at a release or an assessment), observed at `at`.
pub fn from_health(
    subject: &Subject,
    health: &pb::HealthSummary,
    at: DateTime<Utc>,
) -> Vec<Observation> {
    use pb::ServiceType as S;
    let mut facts: Vec<(Fact, S)> = recorded(health)
        .into_iter()
        .map(|f| (f, S::Unspecified))
        .collect();
    facts.extend(treatments(health));
    facts.extend(vaccination(health));
    let mut observations: Vec<Observation> = facts
        .into_iter()
        .map(|(f, s)| subject.observe(f, s, 0, at))
        .collect();
    // Incidents count on the day they happened.
    if let Some(risk) = &health.self_harm_risk {
        for (fact, day) in [
            (Fact::SelfHarm, &risk.last_incident),
            (Fact::SuicideAttempt, &risk.last_suicide_attempt),
        ] {
            if let Ok(Some(day)) = super::fields::date(day.as_ref(), "") {
                observations.push(subject.observe(fact, S::Unspecified, 0, start_of(day)));
            }
        }
    }
    observations
}

/// What a summary records or screens, of no particular service.
fn recorded(health: &pb::HealthSummary) -> Vec<Fact> {
    let mut facts = Vec::new();
    let mut fact = |f: Fact| facts.push(f);
    registration(
        &mut fact,
        health.gp_status(),
        [
            Fact::GpRegistrationRecorded,
            Fact::GpRegistered,
            Fact::GpNotRegistered,
        ],
    );
    registration(
        &mut fact,
        health.dental_status(),
        [
            Fact::DentalRegistrationRecorded,
            Fact::DentalRegistered,
            Fact::DentalNotRegistered,
        ],
    );
    screenings(&mut fact, health);
    match health.smoking() {
        pb::SmokingStatus::Unspecified => {}
        pb::SmokingStatus::CurrentSmoker => {
            fact(Fact::SmokingStatusRecorded);
            fact(Fact::Smoker);
        }
        _ => fact(Fact::SmokingStatusRecorded),
    }
    if let Some(cd) = &health.communicable_disease {
        screened(
            &mut fact,
            cd.screening(),
            Fact::CommunicableDiseaseScreened,
            Fact::CommunicableDiseaseFound,
        );
        if !cd.infections.is_empty() && cd.screening() != pb::ScreeningOutcome::NeedIdentified {
            fact(Fact::CommunicableDiseaseFound);
        }
    }
    if let Some(physical) = &health.physical_health {
        if physical.measures_recorded {
            fact(Fact::PhysicalHealthMeasured);
        }
        if physical.safe_sex_education_offered {
            fact(Fact::SafeSexEducationOffered);
        }
    }
    facts
}

/// The substance misuse and mental health screenings, and what they found.
fn screenings(fact: &mut impl FnMut(Fact), health: &pb::HealthSummary) {
    if let Some(sm) = &health.substance_misuse {
        screened(
            fact,
            sm.alcohol_screening(),
            Fact::AlcoholScreened,
            Fact::HazardousDrinking,
        );
        screened(
            fact,
            sm.drug_screening(),
            Fact::DrugScreened,
            Fact::DrugMisuse,
        );
    }
    if let Some(mh) = &health.mental_health {
        screened(
            fact,
            mh.screening(),
            Fact::MentalIllnessScreened,
            Fact::MentalIllnessIdentified,
        );
    }
}

/// A registration status as facts: recorded, and registered or not.
fn registration(
    fact: &mut impl FnMut(Fact),
    status: pb::RegistrationStatus,
    [recorded, registered, not_registered]: [Fact; 3],
) {
    let outcome = match status {
        pb::RegistrationStatus::Registered => registered,
        pb::RegistrationStatus::NotRegistered => not_registered,
        pb::RegistrationStatus::Unspecified => return,
    };
    fact(recorded);
    fact(outcome);
}

/// The services the person is in treatment with.
fn treatments(health: &pb::HealthSummary) -> Vec<(Fact, pb::ServiceType)> {
    use pb::ServiceType as S;
    let in_treatment = [
        (
            health.in_mental_health_treatment(),
            S::MentalHealthTreatment,
        ),
        (
            health.in_substance_misuse_treatment() || health.on_opioid_substitution(),
            S::SubstanceMisuseTreatment,
        ),
        (
            health
                .communicable_disease
                .as_ref()
                .is_some_and(|c| c.in_treatment),
            S::CommunicableDiseaseTreatment,
        ),
    ];
    in_treatment
        .into_iter()
        .filter(|(treated, _)| *treated)
        .map(|(_, service)| (Fact::InTreatment, service))
        .collect()
}

fn screened(
    fact: &mut impl FnMut(Fact),
    outcome: pb::ScreeningOutcome,
    screened: Fact,
    found: Fact,
) {
    match outcome {
        pb::ScreeningOutcome::NoNeedIdentified => fact(screened),
        pb::ScreeningOutcome::NeedIdentified => {
            fact(screened);
            fact(found);
        }
        _ => {}
    }
}

fn vaccination(health: &pb::HealthSummary) -> Vec<(Fact, pb::ServiceType)> {
    use pb::VaccinationStatus as V;
    let Some(v) = &health.vaccination else {
        return Vec::new();
    };
    let any = |statuses: &[V]| v.needs.iter().any(|n| statuses.contains(&n.status()));
    let service = pb::ServiceType::Vaccination;
    let mut facts = Vec::new();
    if v.need_assessed {
        facts.push((Fact::VaccinationNeedRecorded, pb::ServiceType::Unspecified));
    }
    if any(&[V::Needed, V::Offered, V::Declined, V::Given]) {
        facts.push((Fact::VaccinationNeeded, pb::ServiceType::Unspecified));
    }
    if any(&[V::Offered, V::Declined, V::Given]) {
        facts.push((Fact::ReferralOffered, service));
    }
    if any(&[V::Given]) {
        facts.push((Fact::ReferralAccepted, service));
        facts.push((Fact::Vaccinated, pb::ServiceType::Unspecified));
    }
    if any(&[V::Declined]) {
        facts.push((Fact::ReferralDeclined, service));
    }
    facts
}

/// A release into the community: released (from the prison), in contact
/// and a supervision spell begun when supervised (licence or post-sentence
/// supervision), the continuity-of-care cohort when there is a substance
/// misuse need, and the summary's facts. A release to hospital is only that;
/// temporary absence, court and transfer are no release into the community,
/// and tell the indicators nothing.
pub fn for_release(
    subject: &Subject,
    release: &ReleaseNotification,
    at: DateTime<Utc>,
) -> Vec<Observation> {
    let health = &release.health;
    let unspecified = pb::ServiceType::Unspecified;
    match release.pathway() {
        Some(Pathway::Community) => {}
        Some(Pathway::Hospital) => {
            return vec![subject.observe(Fact::ReleasedToHospital, unspecified, 0, at)];
        }
        None => return Vec::new(),
    }
    let mut observations = vec![subject.observe(Fact::Released, unspecified, 0, at)];
    if release.supervised() {
        for fact in [Fact::InContact, Fact::SupervisionStarted] {
            observations.push(subject.observe(fact, unspecified, 0, at));
        }
        // Its due end, in the release's own episode (it ends this spell only).
        if let Some(end) = release.supervision_ends_on {
            let end = start_of(end);
            observations.push(subject.observe(Fact::SupervisionEnded, unspecified, 0, end));
        }
    }
    if health.substance_misuse_need() {
        observations.push(subject.observe(
            Fact::ReleasedWithSubstanceNeed,
            pb::ServiceType::Unspecified,
            0,
            at,
        ));
    }
    observations.extend(from_health(subject, health, at));
    observations
}

/// A referral moving to `to`. `since` is the release (or the request) that
/// timeliness counts from; `first_attendance` says whether this is the first
/// appointment attended.
pub fn for_referral(
    subject: &Subject,
    service: pb::ServiceType,
    to: ReferralState,
    since: DateTime<Utc>,
    release_linked: bool,
    at: DateTime<Utc>,
) -> Vec<Observation> {
    let days = (at - since).num_days().max(0);
    match to {
        ReferralState::Requested => vec![subject.observe(Fact::ReferralOffered, service, 0, at)],
        ReferralState::Accepted => vec![subject.observe(Fact::ReferralAccepted, service, 0, at)],
        ReferralState::Declined => vec![subject.observe(Fact::ReferralDeclined, service, 0, at)],
        ReferralState::DidNotAttend => vec![subject.observe(Fact::DidNotAttend, service, 0, at)],
        ReferralState::Attended => {
            let mut facts =
                vec![subject.observe(Fact::FirstAppointmentAttended, service, days, at)];
            if release_linked && service == pb::ServiceType::SubstanceMisuseTreatment {
                facts.push(subject.observe(Fact::EngagedWithCommunityTreatment, service, days, at));
            }
            facts
        }
        _ => Vec::new(),
    }
}

pub fn start_of(day: NaiveDate) -> DateTime<Utc> {
    day.and_hms_opt(0, 0, 0).expect("midnight").and_utc()
}
