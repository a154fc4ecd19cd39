//! A person's own report of their health and of their experience of
//! services, recorded by probation: the toolkit's self-reported outcome and
//! experience indicators.
//! Only coded answers; what the indicators are told of them.

use super::area::{Destination, probation_record};
use super::fields::{self, optional_enum, required_enum};
use super::person::Person;
use crate::error::Result;
use chrono::NaiveDate;
use throughcare_platform::identity::Registry;
use throughcare_platform::validation::{FieldViolation, Violations};
use throughcare_proto::events::v1::ObservedFact as Fact;
use throughcare_proto::referrals::v1 as pb;

/// A self-report, validated.
#[derive(Debug, Clone)]
pub struct SelfReport {
    pub person: Person,
    pub area: Destination,
    pub reported_on: NaiveDate,
    pub status: pb::SelfReportStatus,
    /// The answers of a returned survey.
    pub answers: Option<pb::SelfReportAnswers>,
}

impl SelfReport {
    /// Validates a request made on `today`: every violation, by field.
    pub fn validate(
        r: &pb::RecordSelfReportRequest,
        registry: &Registry,
        today: NaiveDate,
    ) -> Result<Self> {
        let mut v = Violations::new();
        let (reported_on, person, area) = probation_record(
            &mut v,
            (r.reported_on.as_ref(), "reported_on"),
            r.person.as_ref(),
            r.area.as_ref(),
            registry,
            today,
        );
        let status = v.check(required_enum::<pb::SelfReportStatus>(r.status, "status"));
        let returned = status == Some(pb::SelfReportStatus::Returned);
        match &r.answers {
            None if returned => v.push(FieldViolation::missing("answers")),
            Some(_) if status.is_some() && !returned => v.push(FieldViolation::new(
                "answers",
                "only a returned survey has answers",
            )),
            Some(answers) => check_answers(&mut v, answers),
            None => {}
        }
        fields::complete(v, || {
            Some(SelfReport {
                person: person?,
                area: area?,
                reported_on: reported_on?,
                status: status?,
                answers: r.answers.filter(|_| returned),
            })
        })
    }

    /// What the indicators are told of it.
    pub fn facts(&self) -> Vec<Fact> {
        facts(self.answers.as_ref())
    }
}

/// What the indicators are told of a survey with these answers (`None`
/// unless returned): offered (whatever became of it), returned, and each
/// answer that counts towards an indicator. Public so the demo's ledger
/// states the same mapping rather than a copy of it.
pub fn facts(answers: Option<&pb::SelfReportAnswers>) -> Vec<Fact> {
    use pb::SelfReportAnswer::Yes;
    let mut facts = vec![Fact::SelfReportOffered];
    let Some(a) = answers else {
        return facts;
    };
    facts.push(Fact::SelfReportReturned);
    for (answer, fact) in [
        (
            a.mental_health_well_managed(),
            Fact::ReportsMentalHealthWellManaged,
        ),
        (
            a.physical_health_well_managed(),
            Fact::ReportsPhysicalHealthWellManaged,
        ),
        (a.practising_safe_sex(), Fact::ReportsPractisingSafeSex),
        (a.barriers_to_access(), Fact::ReportsBarriersToAccess),
    ] {
        if answer == Yes {
            facts.push(fact);
        }
    }
    if a.experience() == pb::ExperienceRating::Positive {
        facts.push(Fact::ReportsPositiveExperience);
    }
    if matches!(
        a.drug_use(),
        pb::DrugUseChange::Reduced | pb::DrugUseChange::Stopped
    ) {
        facts.push(Fact::ReportsDrugMisuseReduced);
    }
    facts
}

/// Every answer is a known value (unanswered is allowed).
fn check_answers(v: &mut Violations, a: &pb::SelfReportAnswers) {
    for (value, field) in [
        (a.mental_health_well_managed, "mental_health_well_managed"),
        (
            a.physical_health_well_managed,
            "physical_health_well_managed",
        ),
        (a.practising_safe_sex, "practising_safe_sex"),
        (a.barriers_to_access, "barriers_to_access"),
    ] {
        v.check(optional_enum::<pb::SelfReportAnswer>(
            value,
            &format!("answers.{field}"),
        ));
    }
    v.check(optional_enum::<pb::ExperienceRating>(
        a.experience,
        "answers.experience",
    ));
    v.check(optional_enum::<pb::DrugUseChange>(
        a.drug_use,
        "answers.drug_use",
    ));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_returned_survey_tells_its_yes_answers_and_nothing_else() {
        use pb::SelfReportAnswer::{No, Yes};
        let answers = pb::SelfReportAnswers {
            mental_health_well_managed: Yes as i32,
            physical_health_well_managed: No as i32,
            practising_safe_sex: 0,
            experience: pb::ExperienceRating::Positive as i32,
            barriers_to_access: Yes as i32,
            drug_use: pb::DrugUseChange::Stopped as i32,
        };
        assert_eq!(
            facts(Some(&answers)),
            vec![
                Fact::SelfReportOffered,
                Fact::SelfReportReturned,
                Fact::ReportsMentalHealthWellManaged,
                Fact::ReportsBarriersToAccess,
                Fact::ReportsPositiveExperience,
                Fact::ReportsDrugMisuseReduced,
            ]
        );
        assert_eq!(facts(None), vec![Fact::SelfReportOffered]);
    }
}
