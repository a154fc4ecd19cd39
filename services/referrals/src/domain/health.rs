//! The coded health summary: validated at the edge (known codes, bounded
//! sizes, dates that make sense against the event), then read by the pathway
//! rules and the observation mapping. The summary itself only ever leaves this
//! service sealed for the sharing service.

use super::fields::{self, MAX_ITEMS, join};
use chrono::NaiveDate;
use throughcare_platform::identifiers::OdsCode;
use throughcare_platform::validation::{FieldViolation, Violations};
use throughcare_proto::types::v1 as pb;

const MAX_CODE_TEXT: usize = 200;

/// Validates a health summary recorded on `on` (release or assessment date).
pub fn validate(
    v: &mut Violations,
    summary: Option<&pb::HealthSummary>,
    field: &str,
    on: NaiveDate,
) -> pb::HealthSummary {
    let Some(h) = summary else {
        return pb::HealthSummary::default();
    };
    let mut c = Checks { v, field, on };
    if let Some(gp) = &h.gp_registration {
        c.registration(gp.status, &gp.practice_code, "gp_registration");
    }
    if let Some(dental) = &h.dental_registration {
        c.registration(dental.status, &dental.practice_code, "dental_registration");
    }
    if let Some(mh) = &h.mental_health {
        c.mental_health(mh);
    }
    if let Some(sm) = &h.substance_misuse {
        c.substance_misuse(sm);
    }
    if let Some(risk) = &h.self_harm_risk {
        c.check(known::<pb::SelfHarmRiskLevel>(
            risk.level,
            &c.f("self_harm_risk.level"),
        ));
        let last_incident = c.f("self_harm_risk.last_incident");
        c.check(not_after(risk.last_incident.as_ref(), on, &last_incident));
        let last_attempt = c.f("self_harm_risk.last_suicide_attempt");
        c.check(not_after(
            risk.last_suicide_attempt.as_ref(),
            on,
            &last_attempt,
        ));
    }
    if let Some(medication) = &h.medication {
        c.medication(medication);
    }
    if let Some(smoking) = &h.smoking {
        c.check(known::<pb::SmokingStatus>(
            smoking.status,
            &c.f("smoking.status"),
        ));
    }
    if let Some(vaccination) = &h.vaccination {
        c.vaccination(vaccination);
    }
    if let Some(cd) = &h.communicable_disease {
        c.communicable_disease(cd);
    }
    if let Some(disability) = &h.disability {
        c.check(codes(&disability.conditions, &c.f("disability.conditions")));
    }
    if let Some(physical) = &h.physical_health {
        let field = c.f("physical_health.long_term_conditions");
        c.check(codes(&physical.long_term_conditions, &field));
    }
    h.clone()
}

/// The checks of one summary: each violation is collected, the fields named
/// under the summary's own field.
struct Checks<'a> {
    v: &'a mut Violations,
    field: &'a str,
    on: NaiveDate,
}

impl Checks<'_> {
    fn f(&self, name: &str) -> String {
        join(self.field, name)
    }

    fn check(&mut self, result: Result<(), FieldViolation>) {
        let _ = self.v.check(result);
    }

    fn registration(&mut self, status: i32, practice_code: &str, field: &str) {
        let status_field = self.f(&format!("{field}.status"));
        self.check(known::<pb::RegistrationStatus>(status, &status_field));
        let code_field = self.f(&format!("{field}.practice_code"));
        self.check(practice(practice_code, &code_field));
    }

    fn mental_health(&mut self, mh: &pb::MentalHealth) {
        self.check(known::<pb::ScreeningOutcome>(
            mh.screening,
            &self.f("mental_health.screening"),
        ));
        self.check(codes(&mh.conditions, &self.f("mental_health.conditions")));
        self.check(practice(
            &mh.care_coordinator_organisation,
            &self.f("mental_health.care_coordinator_organisation"),
        ));
    }

    fn substance_misuse(&mut self, sm: &pb::SubstanceMisuse) {
        self.check(known::<pb::ScreeningOutcome>(
            sm.alcohol_screening,
            &self.f("substance_misuse.alcohol_screening"),
        ));
        self.check(known::<pb::ScreeningOutcome>(
            sm.drug_screening,
            &self.f("substance_misuse.drug_screening"),
        ));
        if let Some(code) = &sm.opioid_substitution_medicine {
            let field = self.f("substance_misuse.opioid_substitution_medicine");
            self.check(code_text(code, &field));
        }
        let last_dose = self.f("substance_misuse.last_opioid_substitution_dose");
        self.check(not_after(
            sm.last_opioid_substitution_dose.as_ref(),
            self.on,
            &last_dose,
        ));
    }

    fn medication(&mut self, medication: &pb::Medication) {
        let items = self.f("medication.items");
        self.check(fields::items(&medication.items, &items));
        for (i, item) in medication.items.iter().enumerate().take(MAX_ITEMS) {
            let item_field = format!("{items}[{i}]");
            if let Some(code) = &item.medicine {
                self.check(code_text(code, &join(&item_field, "medicine")));
            }
            self.check(fields::text(&item.dosage, &join(&item_field, "dosage")).map(drop));
            if !(0..=366).contains(&item.days_supplied) {
                self.check(Err(FieldViolation::new(
                    join(&item_field, "days_supplied"),
                    "must be between 0 and 366",
                )));
            }
        }
    }

    fn vaccination(&mut self, vaccination: &pb::Vaccination) {
        let needs = self.f("vaccination.needs");
        self.check(fields::items(&vaccination.needs, &needs));
        for (i, need) in vaccination.needs.iter().enumerate().take(MAX_ITEMS) {
            let vaccine = format!("{needs}[{i}].vaccine");
            self.check(fields::required_enum::<pb::Vaccine>(need.vaccine, &vaccine).map(drop));
            let status = format!("{needs}[{i}].status");
            self.check(known::<pb::VaccinationStatus>(need.status, &status));
        }
    }

    fn communicable_disease(&mut self, cd: &pb::CommunicableDisease) {
        self.check(known::<pb::ScreeningOutcome>(
            cd.screening,
            &self.f("communicable_disease.screening"),
        ));
        let infections = self.f("communicable_disease.infections");
        self.check(fields::items(&cd.infections, &infections));
        for (i, infection) in cd.infections.iter().enumerate().take(MAX_ITEMS) {
            let field = format!("{infections}[{i}]");
            self.check(fields::required_enum::<pb::Infection>(*infection, &field).map(drop));
        }
    }
}

fn known<E: TryFrom<i32>>(value: i32, field: &str) -> Result<(), FieldViolation> {
    fields::optional_enum::<E>(value, field).map(drop)
}

fn practice(code: &str, field: &str) -> Result<(), FieldViolation> {
    if code.is_empty() {
        return Ok(());
    }
    OdsCode::parse(code)
        .map(drop)
        .map_err(|e| FieldViolation::new(field, e.to_string()))
}

fn code_text(code: &pb::ClinicalCode, field: &str) -> Result<(), FieldViolation> {
    let too_long = [&code.system, &code.code, &code.display]
        .iter()
        .any(|s| s.chars().count() > MAX_CODE_TEXT);
    if code.code.is_empty() {
        Err(FieldViolation::missing(join(field, "code")))
    } else if too_long {
        Err(FieldViolation::new(
            field,
            format!("system, code and display must be at most {MAX_CODE_TEXT} characters"),
        ))
    } else {
        Ok(())
    }
}

fn codes(list: &[pb::ClinicalCode], field: &str) -> Result<(), FieldViolation> {
    fields::items(list, field)?;
    list.iter()
        .enumerate()
        .try_for_each(|(i, code)| code_text(code, &format!("{field}[{i}]")))
}

fn not_after(date: Option<&pb::Date>, on: NaiveDate, field: &str) -> Result<(), FieldViolation> {
    match fields::date(date, field)? {
        Some(d) if d > on => Err(FieldViolation::new(field, "is after the date of the event")),
        _ => Ok(()),
    }
}

/// Questions the pathway rules and observations ask of a summary.
pub trait Reading {
    fn summary(&self) -> &pb::HealthSummary;

    fn on_opioid_substitution(&self) -> bool {
        self.summary()
            .substance_misuse
            .as_ref()
            .is_some_and(|s| s.on_opioid_substitution_therapy)
    }

    fn gp_status(&self) -> pb::RegistrationStatus {
        self.summary()
            .gp_registration
            .as_ref()
            .map_or(pb::RegistrationStatus::Unspecified, |g| g.status())
    }

    fn dental_status(&self) -> pb::RegistrationStatus {
        self.summary()
            .dental_registration
            .as_ref()
            .map_or(pb::RegistrationStatus::Unspecified, |g| g.status())
    }

    fn in_mental_health_treatment(&self) -> bool {
        self.summary()
            .mental_health
            .as_ref()
            .is_some_and(|m| m.under_treatment)
    }

    fn mental_health_need(&self) -> bool {
        self.summary()
            .mental_health
            .as_ref()
            .is_some_and(|m| m.screening() == pb::ScreeningOutcome::NeedIdentified)
    }

    fn alcohol_need(&self) -> bool {
        self.summary()
            .substance_misuse
            .as_ref()
            .is_some_and(|s| s.alcohol_screening() == pb::ScreeningOutcome::NeedIdentified)
    }

    fn drug_need(&self) -> bool {
        self.summary()
            .substance_misuse
            .as_ref()
            .is_some_and(|s| s.drug_screening() == pb::ScreeningOutcome::NeedIdentified)
    }

    fn in_substance_misuse_treatment(&self) -> bool {
        self.summary()
            .substance_misuse
            .as_ref()
            .is_some_and(|s| s.in_treatment)
    }

    /// Released needing drug or alcohol treatment (the PHOF continuity-of-care cohort).
    fn substance_misuse_need(&self) -> bool {
        self.alcohol_need()
            || self.drug_need()
            || self.in_substance_misuse_treatment()
            || self.on_opioid_substitution()
    }

    fn self_harm_level(&self) -> pb::SelfHarmRiskLevel {
        self.summary()
            .self_harm_risk
            .as_ref()
            .map_or(pb::SelfHarmRiskLevel::Unspecified, |r| r.level())
    }

    fn open_case_plan(&self) -> bool {
        self.summary()
            .self_harm_risk
            .as_ref()
            .is_some_and(|r| r.open_case_plan)
    }

    fn smoking(&self) -> pb::SmokingStatus {
        self.summary()
            .smoking
            .as_ref()
            .map_or(pb::SmokingStatus::Unspecified, |s| s.status())
    }
}

impl Reading for pb::HealthSummary {
    fn summary(&self) -> &pb::HealthSummary {
        self
    }
}
