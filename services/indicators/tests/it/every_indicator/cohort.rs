//! The synthetic cohort, driven through the referrals service day by day
//! from 2 March to 11 April 2026 (and one late record on 16 April). "Day n"
//! counts from the fact a cohort follows up: the release, or the
//! assessment that found the need. Windows are pinned where they can be (a
//! fact on their last day counts, one a day later does not), and each way
//! into a numerator is, for someone, the only way they got there.
//!
//! 1. Released 5 March on licence. Not registered with a GP or a dentist,
//!    drinking hazardously and misusing drugs, a smoker, vaccinated at
//!    release, physically measured and offered safe sex education; a
//!    suicide attempt on 1 March. Substance misuse treatment offered and
//!    accepted day 5, first appointment day 10; GP accepted day 8 (outside
//!    7); a sexual health appointment on day 20 (not their first in
//!    March); dentist accepted day 21; stop smoking offered day 22 (outside
//!    21). Survey returned 20 March: drug use reduced.
//! 2. Released 30 March on licence: not registered with a GP, misusing
//!    drugs, mentally ill. Across the month end: on 3 April (day 4)
//!    substance misuse treatment offered and accepted and a mental health
//!    assessment accepted; GP accepted 6 April (day 7); first appointment
//!    10 April (day 11). Survey declined 31 March.
//! 3. Released 10 March on licence: not registered with a GP, drinking
//!    hazardously and misusing drugs, mentally ill and communicable disease
//!    found, in treatment for all three, a smoker, needing a vaccine;
//!    self-harm on 2 March, a suicide attempt in February. Assessed
//!    registered with a GP on day 2; stop smoking accepted day 2; vaccine
//!    offered day 2 and accepted day 21; sexual health first appointment
//!    day 14; substance misuse treatment offered, accepted and attended day
//!    22 (outside). Survey returned, drug use unchanged.
//! 4. Released 28 March on licence, not registered with a dentist; assessed
//!    registered on 1 April (day 4); died 11 April (day 14).
//! 5. Released 3 March on licence: registered with a GP, communicable
//!    disease found, no vaccine needed. Sexual health first appointment
//!    day 9; survey returned; died 18 March (day 15).
//! 6. A community order from 5 March (EMR-NOT), assessed 12 March: drinking
//!    hazardously, misusing drugs, mentally ill, a smoker, needing a
//!    vaccine. Stop smoking and substance misuse treatment offered day 21,
//!    the treatment accepted day 22; mental health treatment offered day 22.
//!    Survey offered 20 March, returned 10 April: drug use reduced.
//! 7. Released 20 February on licence, still supervised, nothing recorded
//!    in March.
//! 8. Released 15 March at sentence end, unsupervised (no probation
//!    delivery unit, so not in contact): not registered with a GP,
//!    drinking hazardously, misusing drugs, a smoker. Substance misuse
//!    treatment offered, accepted and attended day 21.
//! 9. Released 20 March on licence: registered with a GP, mentally ill and
//!    communicable disease found (treatment for each accepted day 4),
//!    self-harm on 18 March. Dies by suicide on 26 March, notified on 16
//!    April, after March was published: the late record.
//! 10. Assessed 12 March (EMR-LEI), never released: not registered with a
//!     dentist (accepted day 22), drinking hazardously and misusing drugs
//!     (treatment offered day 22), mentally ill and communicable disease
//!     found (treatment for each offered day 21), a smoker offered only
//!     other services, needing a vaccine (offered day 0, accepted day 22).
//!     Survey returned.
//! 11. Released 2 February on licence, supervised until 25 February.

use super::calls::*;
use throughcare_proto::referrals::v1::{
    DeathCategory, DrugUseChange, ExperienceRating, SelfReportAnswer, SelfReportStatus,
};
use throughcare_proto::types::v1::{
    HealthSummary, Infection, RegistrationStatus, ScreeningOutcome, ServiceType as S,
    SmokingStatus, VaccinationStatus, Vaccine,
};

use RegistrationStatus::{NotRegistered, Registered};
use ScreeningOutcome::{
    NeedIdentified as Need, NoNeedIdentified as NoNeed, Unspecified as Unscreened,
};
use SelfReportAnswer::{No, Unspecified as Unanswered, Yes};

/// Offered, accepted, booked and attended on one day.
const ATTENDED: &[Step] = &[Step::Acknowledge, Step::Accept, Step::Book, Step::Attend];

/// Records everything up to 11 April: all of March, as first published.
pub async fn drive(calls: &mut Calls<'_>) {
    february(calls).await;
    early_march(calls).await;
    assessments(calls).await;
    mid_march(calls).await;
    late_march(calls).await;
    month_end(calls).await;
    april(calls).await;
}

/// The late record: person 9's suicide on 26 March, notified 16 April.
pub async fn late_death(calls: &mut Calls<'_>) {
    calls.at(4, 16);
    calls.die(9, day(3, 26), DeathCategory::SelfInflicted).await;
}

async fn february(calls: &mut Calls<'_>) {
    let registered = || HealthSummary {
        gp_registration: gp(Registered),
        ..Default::default()
    };
    let mut eleven = on_licence(11, day(2, 2), registered());
    eleven.supervision_ends_on = Some(crate::fixtures::date(day(2, 25)));
    calls.release(11, eleven).await;
    calls
        .release(7, on_licence(7, day(2, 20), registered()))
        .await;
}

async fn early_march(calls: &mut Calls<'_>) {
    calls.at(3, 3);
    let five = HealthSummary {
        gp_registration: gp(Registered),
        smoking: smoking(SmokingStatus::NeverSmoked),
        vaccination: vaccine(Vaccine::Mmr, VaccinationStatus::NotNeeded),
        communicable_disease: infections(Need, &[Infection::HepatitisB], false),
        ..Default::default()
    };
    calls.release(5, on_licence(5, day(3, 3), five)).await;
    calls.at(3, 5);
    let one = HealthSummary {
        gp_registration: gp(NotRegistered),
        dental_registration: dentist(NotRegistered),
        substance_misuse: substances(Need, Need, false),
        mental_health: mind(NoNeed, false),
        smoking: smoking(SmokingStatus::CurrentSmoker),
        vaccination: vaccine(Vaccine::HepatitisB, VaccinationStatus::Given),
        communicable_disease: infections(NoNeed, &[], false),
        physical_health: physical(true, true),
        self_harm_risk: incidents(None, Some(day(3, 1))),
        ..Default::default()
    };
    calls.release(1, on_licence(1, day(3, 5), one)).await;
    calls.order(6, "EMR-NOT").await;
    calls.refer(5, S::SexualHealth, BOOK).await;
    calls.at(3, 10);
    let three = HealthSummary {
        gp_registration: gp(NotRegistered),
        substance_misuse: substances(Need, Need, true),
        mental_health: mind(Need, true),
        smoking: smoking(SmokingStatus::CurrentSmoker),
        vaccination: vaccine(Vaccine::Influenza, VaccinationStatus::Needed),
        communicable_disease: infections(Need, &[Infection::Hiv], true),
        physical_health: physical(true, false),
        self_harm_risk: incidents(Some(day(3, 2)), Some(day(2, 10))),
        ..Default::default()
    };
    calls.release(3, on_licence(3, day(3, 10), three)).await;
    calls
        .refer(1, S::DentalRegistration, &[Step::Acknowledge])
        .await;
    calls.refer(1, S::SubstanceMisuseTreatment, BOOK).await;
}

/// 12 March: three assessments, and what follows from them.
async fn assessments(calls: &mut Calls<'_>) {
    calls.at(3, 12);
    let registered = HealthSummary {
        gp_registration: gp(Registered),
        ..Default::default()
    };
    calls.assess(3, "EMR-LEI", registered).await;
    let six = HealthSummary {
        substance_misuse: substances(Need, Need, false),
        mental_health: mind(Need, false),
        smoking: smoking(SmokingStatus::CurrentSmoker),
        vaccination: vaccine(Vaccine::HepatitisA, VaccinationStatus::Needed),
        ..Default::default()
    };
    calls.assess(6, "EMR-NOT", six).await;
    let ten = HealthSummary {
        dental_registration: dentist(NotRegistered),
        substance_misuse: substances(Need, Need, false),
        mental_health: mind(Need, false),
        smoking: smoking(SmokingStatus::CurrentSmoker),
        vaccination: vaccine(Vaccine::HepatitisA, VaccinationStatus::Needed),
        communicable_disease: infections(Need, &[Infection::HepatitisC], false),
        ..Default::default()
    };
    calls.assess(10, "EMR-LEI", ten).await;
    calls.refer(3, S::SmokingCessation, ACCEPT).await;
    calls.refer(3, S::Vaccination, &[Step::Acknowledge]).await;
    calls.refer(3, S::SexualHealth, BOOK).await;
    calls.act(5, S::SexualHealth, &[Step::Attend]).await;
    calls.refer(10, S::SexualHealth, &[]).await;
    calls
        .refer(10, S::DentalRegistration, &[Step::Acknowledge])
        .await;
    calls.refer(10, S::Vaccination, &[Step::Acknowledge]).await;
    calls.at(3, 13);
    calls.refer(1, S::GpRegistration, ACCEPT).await;
}

async fn mid_march(calls: &mut Calls<'_>) {
    calls.at(3, 15);
    let eight = HealthSummary {
        gp_registration: gp(NotRegistered),
        substance_misuse: substances(Need, Need, false),
        smoking: smoking(SmokingStatus::CurrentSmoker),
        ..Default::default()
    };
    calls
        .release(8, at_sentence_end(8, day(3, 15), eight))
        .await;
    calls
        .act(1, S::SubstanceMisuseTreatment, &[Step::Attend])
        .await;
    let five = answers(
        [Yes, No, Yes, Yes],
        ExperienceRating::Positive,
        DrugUseChange::Unspecified,
    );
    calls.survey(5, SelfReportStatus::Returned, five).await;
    calls.at(3, 18);
    calls.die(5, day(3, 18), DeathCategory::NaturalCauses).await;
    calls.at(3, 20);
    let nine = HealthSummary {
        gp_registration: gp(Registered),
        mental_health: mind(Need, false),
        communicable_disease: infections(Need, &[Infection::HepatitisC], false),
        self_harm_risk: incidents(Some(day(3, 18)), None),
        ..Default::default()
    };
    calls.release(9, on_licence(9, day(3, 20), nine)).await;
    let one = answers(
        [Yes, No, Yes, No],
        ExperienceRating::Positive,
        DrugUseChange::Reduced,
    );
    calls.survey(1, SelfReportStatus::Returned, one).await;
    calls.survey(6, SelfReportStatus::Offered, None).await;
    calls.refer(1, S::SexualHealth, BOOK).await;
}

async fn late_march(calls: &mut Calls<'_>) {
    calls.at(3, 24);
    calls.act(3, S::SexualHealth, &[Step::Attend]).await;
    calls
        .refer(9, S::CommunicableDiseaseTreatment, ACCEPT)
        .await;
    calls.refer(9, S::MentalHealthTreatment, ACCEPT).await;
    calls.at(3, 25);
    calls.act(1, S::SexualHealth, &[Step::Attend]).await;
    let three = answers(
        [Yes, Yes, Unanswered, Yes],
        ExperienceRating::Negative,
        DrugUseChange::Unchanged,
    );
    calls.survey(3, SelfReportStatus::Returned, three).await;
    let ten = answers(
        [No, No, No, Yes],
        ExperienceRating::Negative,
        DrugUseChange::Unspecified,
    );
    calls.survey(10, SelfReportStatus::Returned, ten).await;
    calls.at(3, 26);
    calls.act(1, S::DentalRegistration, &[Step::Accept]).await;
    calls.at(3, 27);
    calls.refer(1, S::SmokingCessation, &[]).await;
    calls.at(3, 28);
    let four = HealthSummary {
        dental_registration: dentist(NotRegistered),
        substance_misuse: substances(Unscreened, NoNeed, false),
        smoking: smoking(SmokingStatus::ExSmoker),
        ..Default::default()
    };
    calls.release(4, on_licence(4, day(3, 28), four)).await;
}

/// Around the month end: March's last release and what follows into April.
async fn month_end(calls: &mut Calls<'_>) {
    calls.at(3, 30);
    let two = HealthSummary {
        gp_registration: gp(NotRegistered),
        dental_registration: dentist(Registered),
        substance_misuse: substances(NoNeed, Need, false),
        mental_health: mind(Need, false),
        smoking: smoking(SmokingStatus::NeverSmoked),
        ..Default::default()
    };
    calls.release(2, on_licence(2, day(3, 30), two)).await;
    calls.at(3, 31);
    calls.survey(2, SelfReportStatus::Declined, None).await;
    calls.act(3, S::Vaccination, &[Step::Accept]).await;
    calls.at(4, 1);
    calls.refer(3, S::SubstanceMisuseTreatment, ATTENDED).await;
    let registered = HealthSummary {
        dental_registration: dentist(Registered),
        ..Default::default()
    };
    calls.assess(4, "EMR-LEI", registered).await;
    calls.at(4, 2);
    calls.refer(6, S::SmokingCessation, &[]).await;
    calls
        .refer(6, S::SubstanceMisuseTreatment, &[Step::Acknowledge])
        .await;
    calls.refer(10, S::MentalHealthTreatment, &[]).await;
    calls.refer(10, S::CommunicableDiseaseTreatment, &[]).await;
}

/// Before March closes (15 April): follow-ups reaching back into March.
async fn april(calls: &mut Calls<'_>) {
    calls.at(4, 3);
    calls
        .refer(2, S::GpRegistration, &[Step::Acknowledge])
        .await;
    calls.refer(2, S::SubstanceMisuseTreatment, BOOK).await;
    calls.refer(2, S::MentalHealthAssessment, ACCEPT).await;
    calls
        .act(6, S::SubstanceMisuseTreatment, &[Step::Accept])
        .await;
    calls.refer(6, S::MentalHealthTreatment, &[]).await;
    calls.act(10, S::DentalRegistration, &[Step::Accept]).await;
    calls.act(10, S::Vaccination, &[Step::Accept]).await;
    calls.refer(10, S::SubstanceMisuseTreatment, &[]).await;
    calls.at(4, 5);
    calls.refer(8, S::SubstanceMisuseTreatment, ATTENDED).await;
    calls.at(4, 6);
    calls.act(2, S::GpRegistration, &[Step::Accept]).await;
    calls.at(4, 10);
    calls
        .act(2, S::SubstanceMisuseTreatment, &[Step::Attend])
        .await;
    let six = answers(
        [Unanswered; 4],
        ExperienceRating::Unspecified,
        DrugUseChange::Reduced,
    );
    calls.survey(6, SelfReportStatus::Returned, six).await;
    calls.at(4, 11);
    calls.die(4, day(4, 11), DeathCategory::NaturalCauses).await;
}
