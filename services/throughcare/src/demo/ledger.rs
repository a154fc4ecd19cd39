//! The demo's own record of what it did to each person, as the coded facts
//! the indicators service should learn from it: who the person is (the
//! characteristics the indicators stratify by), where they were released to,
//! and each fact with its day, service, value and episode.
//!
//! The mapping is the demo's own statement of the observation contract
//! (`proto/throughcare/events/v1/observations.proto`): which facts each of
//! its requests should cause, kept apart from the services' code so the
//! tally is a second opinion on the published figures — except a survey's
//! answers, whose facts are referrals' own mapping
//! ([`self_report::facts`]), since a code-by-code copy would only agree
//! with itself. Only the fields the demo fills are mapped. Facts the demo causes but does not follow (what
//! the sharing service tells the indicators of its own deliveries) are
//! named in [`UNTALLIED`], and the indicators that use them are not tallied.
//!
//! A ledger entry holds synthetic demographics; it stays in memory and is
//! never printed or logged.

use chrono::{NaiveDate, Utc};
use throughcare_proto::events::v1::ObservedFact as Fact;
use throughcare_proto::referrals::v1 as refs;
use throughcare_proto::types::v1 as types;
use throughcare_proto::types::v1::ServiceType as S;
use throughcare_referrals::domain::self_report;

/// Facts the demo causes without following them: the sharing service
/// observes its own delivery of a consenting person's health summary at
/// release, which depends on consent decisions the ledger does not model.
pub(super) const UNTALLIED: &[Fact] = &[Fact::HealthInformationSharedAtRelease];

/// Which of a person's records a fact belongs to: a reversal retracts the
/// release's, and a referral made for a release is in the release's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Episode {
    Release,
    Assessment,
    SelfReport,
}

/// One fact the demo caused.
#[derive(Debug, Clone, Copy)]
pub(super) struct Entry {
    pub(super) fact: Fact,
    pub(super) service: S,
    /// The day it was observed on (UTC).
    pub(super) day: NaiveDate,
    /// Days since release, where the fact carries them.
    pub(super) value: i64,
    pub(super) episode: Episode,
    /// The person's age band on the record's date.
    pub(super) age_band: types::AgeBand,
}

/// Everything the demo did to one person that the indicators should count.
#[derive(Debug, Clone)]
pub(super) struct Person {
    /// The probation delivery unit they were released to.
    pub(super) unit: &'static str,
    pub(super) sex: types::Sex,
    pub(super) ethnic_group: types::EthnicGroup,
    date_of_birth: Option<NaiveDate>,
    released: Option<NaiveDate>,
    pub(super) facts: Vec<Entry>,
}

impl Person {
    pub(super) fn new(unit: &'static str, details: &types::PersonDetails) -> Self {
        let date_of_birth = details
            .date_of_birth
            .as_ref()
            .and_then(|d| NaiveDate::from_ymd_opt(d.year, d.month as u32, d.day as u32));
        Self {
            unit,
            sex: details.sex(),
            ethnic_group: details.ethnic_group(),
            date_of_birth,
            released: None,
            facts: Vec::new(),
        }
    }

    fn push(&mut self, episode: Episode, day: NaiveDate, facts: &[(Fact, S)], value: i64) {
        let age_band = types::AgeBand::on(self.date_of_birth, day);
        self.facts
            .extend(facts.iter().map(|&(fact, service)| Entry {
                fact,
                service,
                day,
                value,
                episode,
                age_band,
            }));
    }

    /// A release on licence into the community, supervised by the unit.
    pub(super) fn released(&mut self, on: NaiveDate, health: &types::HealthSummary) {
        self.released = Some(on);
        let mut facts = vec![
            (Fact::Released, S::Unspecified),
            (Fact::InContact, S::Unspecified),
            (Fact::SupervisionStarted, S::Unspecified),
        ];
        if substance_need(health) {
            facts.push((Fact::ReleasedWithSubstanceNeed, S::Unspecified));
        }
        facts.extend(health_facts(health));
        self.push(Episode::Release, on, &facts, 0);
    }

    /// The release was reversed: everything of its episode is withdrawn.
    pub(super) fn reversed(&mut self) {
        self.facts.retain(|f| f.episode != Episode::Release);
        self.released = None;
    }

    /// Probation's assessment, with the same findings as at release.
    pub(super) fn assessed(&mut self, on: NaiveDate, findings: &types::HealthSummary) {
        let mut facts = vec![(Fact::InContact, S::Unspecified)];
        facts.extend(health_facts(findings));
        self.push(Episode::Assessment, on, &facts, 0);
    }

    /// A self-report survey offered, with its answers when returned.
    pub(super) fn self_reported(
        &mut self,
        on: NaiveDate,
        answers: Option<&refs::SelfReportAnswers>,
    ) {
        let facts: Vec<(Fact, S)> = self_report::facts(answers)
            .into_iter()
            .map(|f| (f, S::Unspecified))
            .collect();
        self.push(Episode::SelfReport, on, &facts, 0);
    }

    /// A referral for the release moved on, today: offered (requested),
    /// accepted, or its first appointment attended.
    pub(super) fn referral(&mut self, service: S, step: Step) {
        let today = Utc::now().date_naive();
        let days = self.released.map_or(0, |r| (today - r).num_days().max(0));
        let mut facts = vec![match step {
            Step::Offered => (Fact::ReferralOffered, service),
            Step::Accepted => (Fact::ReferralAccepted, service),
            Step::Attended => (Fact::FirstAppointmentAttended, service),
        }];
        // Attending substance misuse treatment after a release is engaging
        // with community treatment (the continuity-of-care indicator).
        if matches!(step, Step::Attended) && service == S::SubstanceMisuseTreatment {
            facts.push((Fact::EngagedWithCommunityTreatment, service));
        }
        self.push(Episode::Release, today, &facts, days);
    }
}

/// The steps of a referral's lifecycle the indicators hear of.
#[derive(Debug, Clone, Copy)]
pub(super) enum Step {
    Offered,
    Accepted,
    Attended,
}

/// Needing drug or alcohol treatment on release, or in it already.
fn substance_need(health: &types::HealthSummary) -> bool {
    health.substance_misuse.as_ref().is_some_and(|s| {
        s.alcohol_screening() == types::ScreeningOutcome::NeedIdentified
            || s.drug_screening() == types::ScreeningOutcome::NeedIdentified
            || s.in_treatment
            || s.on_opioid_substitution_therapy
    })
}

/// What a health summary records, for the fields the demo fills.
fn health_facts(h: &types::HealthSummary) -> Vec<(Fact, S)> {
    let mut out = Vec::new();
    let mut fact = |f: Fact| out.push((f, S::Unspecified));
    registrations(h, &mut fact);
    screenings(h, &mut fact);
    smoking_and_vaccination(h, &mut fact);
    out.extend(treatments(h));
    out
}

/// GP and dentist registration: recorded, and registered or not.
fn registrations(h: &types::HealthSummary, fact: &mut dyn FnMut(Fact)) {
    use types::RegistrationStatus as R;
    let mut registration = |status: R, [recorded, yes, no]: [Fact; 3]| match status {
        R::Registered => [recorded, yes].into_iter().for_each(&mut *fact),
        R::NotRegistered => [recorded, no].into_iter().for_each(&mut *fact),
        R::Unspecified => {}
    };
    if let Some(gp) = &h.gp_registration {
        let facts = [
            Fact::GpRegistrationRecorded,
            Fact::GpRegistered,
            Fact::GpNotRegistered,
        ];
        registration(gp.status(), facts);
    }
    if let Some(dental) = &h.dental_registration {
        let facts = [
            Fact::DentalRegistrationRecorded,
            Fact::DentalRegistered,
            Fact::DentalNotRegistered,
        ];
        registration(dental.status(), facts);
    }
}

/// The substance misuse, mental health and communicable disease screenings.
fn screenings(h: &types::HealthSummary, fact: &mut dyn FnMut(Fact)) {
    if let Some(sm) = &h.substance_misuse {
        let (screened, found) = (Fact::AlcoholScreened, Fact::HazardousDrinking);
        screening(sm.alcohol_screening(), screened, found, fact);
        let (screened, found) = (Fact::DrugScreened, Fact::DrugMisuse);
        screening(sm.drug_screening(), screened, found, fact);
    }
    if let Some(mh) = &h.mental_health {
        let (screened, found) = (Fact::MentalIllnessScreened, Fact::MentalIllnessIdentified);
        screening(mh.screening(), screened, found, fact);
    }
    if let Some(cd) = &h.communicable_disease {
        let (screened, found) = (
            Fact::CommunicableDiseaseScreened,
            Fact::CommunicableDiseaseFound,
        );
        screening(cd.screening(), screened, found, fact);
    }
}

/// Smoking status, and the vaccination need (the demo records only needs).
fn smoking_and_vaccination(h: &types::HealthSummary, fact: &mut dyn FnMut(Fact)) {
    match h.smoking.as_ref().map(|s| s.status()) {
        Some(types::SmokingStatus::CurrentSmoker) => {
            fact(Fact::SmokingStatusRecorded);
            fact(Fact::Smoker);
        }
        Some(types::SmokingStatus::Unspecified) | None => {}
        Some(_) => fact(Fact::SmokingStatusRecorded),
    }
    if let Some(v) = &h.vaccination {
        if v.need_assessed {
            fact(Fact::VaccinationNeedRecorded);
        }
        let needed = |n: &types::VaccinationNeed| n.status() == types::VaccinationStatus::Needed;
        if v.needs.iter().any(needed) {
            fact(Fact::VaccinationNeeded);
        }
    }
}

/// The services the person is in treatment with on the summary's date.
fn treatments(h: &types::HealthSummary) -> Vec<(Fact, S)> {
    let treated = [
        (
            h.mental_health.as_ref().is_some_and(|m| m.under_treatment),
            S::MentalHealthTreatment,
        ),
        (
            h.substance_misuse
                .as_ref()
                .is_some_and(|s| s.in_treatment || s.on_opioid_substitution_therapy),
            S::SubstanceMisuseTreatment,
        ),
    ];
    treated
        .into_iter()
        .filter(|(yes, _)| *yes)
        .map(|(_, service)| (Fact::InTreatment, service))
        .collect()
}

/// A screening's facts: screened, and found when a need was identified.
fn screening(
    outcome: types::ScreeningOutcome,
    screened: Fact,
    found: Fact,
    fact: &mut dyn FnMut(Fact),
) {
    match outcome {
        types::ScreeningOutcome::NoNeedIdentified => fact(screened),
        types::ScreeningOutcome::NeedIdentified => {
            fact(screened);
            fact(found);
        }
        _ => {}
    }
}
