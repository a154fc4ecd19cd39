//! One synthetic person's journey through the system, step by step: who they
//! are, their consent, their release (sometimes reversed), probation's
//! assessment, a referral for each need worked through its lifecycle, a
//! disclosure request and sometimes a withdrawal of consent. Every choice
//! comes from the person's own seeded generator, in the same order every
//! time, so a seed always gives the same people and journeys.

use super::ledger;
use super::people::{Needs, Rng, date, details, health, nhs_number};
use super::{Authed, SITES, Site, System};
use crate::client::Service;
use anyhow::{Context, anyhow};
use chrono::{Duration, NaiveDate, Utc};
use throughcare_proto::referrals::v1 as refs;
use throughcare_proto::referrals::v1::assessments_service_client::AssessmentsServiceClient;
use throughcare_proto::sharing::v1 as sh;
use throughcare_proto::sharing::v1::consent_service_client::ConsentServiceClient;
use throughcare_proto::sharing::v1::disclosure_service_client::DisclosureServiceClient;
use throughcare_proto::types::v1 as types;

/// Counts of what the demo did, for its summary.
#[derive(Debug, Default)]
pub(super) struct Tally {
    pub(super) releases: u64,
    pub(super) reversals: u64,
    pub(super) assessments: u64,
    pub(super) consents: u64,
    pub(super) withdrawals: u64,
    pub(super) referrals: u64,
    pub(super) rejected: u64,
    pub(super) attended: u64,
    pub(super) did_not_attend: u64,
    pub(super) cancelled: u64,
    pub(super) disclosures_permitted: u64,
    pub(super) disclosures_denied: u64,
    pub(super) surveys_offered: u64,
    pub(super) surveys_returned: u64,
}

impl Tally {
    pub(super) fn add(&mut self, other: &Tally) {
        self.releases += other.releases;
        self.reversals += other.reversals;
        self.assessments += other.assessments;
        self.consents += other.consents;
        self.withdrawals += other.withdrawals;
        self.referrals += other.referrals;
        self.rejected += other.rejected;
        self.attended += other.attended;
        self.did_not_attend += other.did_not_attend;
        self.cancelled += other.cancelled;
        self.disclosures_permitted += other.disclosures_permitted;
        self.disclosures_denied += other.disclosures_denied;
        self.surveys_offered += other.surveys_offered;
        self.surveys_returned += other.surveys_returned;
    }
}

/// One person on their way through the system, and what was done so far.
pub(super) struct Journey<'a> {
    pub(super) system: &'a System,
    pub(super) rng: Rng,
    /// This person's idempotency keys start with it.
    keys: String,
    pub(super) site: &'static Site,
    ids: types::PersonIdentifiers,
    pub(super) details: types::PersonDetails,
    released: NaiveDate,
    pub(super) needs: Needs,
    health: types::HealthSummary,
    destination: types::Destination,
    pub(super) tally: Tally,
    /// The facts this journey caused, for the demo's own tally.
    pub(super) ledger: ledger::Person,
}

/// One person's journey (the `n`th of run `run`, released between `first`
/// and `last`); what it did, in counts and as the facts it caused.
pub(super) async fn person(
    system: &System,
    run: u64,
    n: u64,
    first: NaiveDate,
    last: NaiveDate,
) -> anyhow::Result<(Tally, ledger::Person)> {
    let mut journey = Journey::new(system, run, n, first, last);
    let consent_id = journey.consent().await?;
    let Some(release_id) = journey.release().await? else {
        return Ok((journey.tally, journey.ledger)); // reversed: nothing follows
    };
    journey.assessment().await?;
    journey.referrals(&release_id).await?;
    journey.self_report().await?;
    journey.disclosure().await?;
    journey.withdrawal(consent_id).await?;
    Ok((journey.tally, journey.ledger))
}

impl<'a> Journey<'a> {
    /// Who the person is, where they are released to and what they need.
    fn new(system: &'a System, run: u64, n: u64, first: NaiveDate, last: NaiveDate) -> Self {
        let mut rng = Rng(run ^ n.wrapping_mul(0x2545_F491_4F6C_DD1D));
        let site = &SITES[rng.below(SITES.len() as u64) as usize];
        let ids = types::PersonIdentifiers {
            nhs_number: nhs_number(run % 1_000_000 * 300_000 + n),
            prison_number: format!(
                "{}{:04}{}{}",
                rng.letter(),
                rng.below(10_000),
                rng.letter(),
                rng.letter()
            ),
            crn: String::new(),
        };
        let days = rng.below((last - first).num_days() as u64 + 1);
        let released = first + Duration::days(days as i64);
        let details = details(&mut rng, &ids);
        let needs = Needs {
            gp_registered: rng.chance(55),
            drinking: rng.chance(30),
            drugs: rng.chance(40),
            mental: rng.chance(35),
        };
        let health = health(&mut rng, &needs);
        let ledger = ledger::Person::new(site.unit, &details);
        Self {
            system,
            rng,
            keys: format!("demo-{run:x}-{n}"),
            site,
            ids,
            details,
            released,
            needs,
            health,
            destination: site.destination(),
            tally: Tally::default(),
            ledger,
        }
    }

    pub(super) fn key(&self, what: &str) -> String {
        format!("{}-{what}", self.keys)
    }

    fn consents(&self) -> ConsentServiceClient<Authed> {
        let unit = self
            .system
            .authed(Service::Sharing, self.site.unit, "practitioner");
        ConsentServiceClient::new(unit)
    }

    /// The person's consent, recorded by their probation practitioner (most
    /// people give it); its id.
    async fn consent(&mut self) -> anyhow::Result<Option<String>> {
        if !self.rng.chance(60) {
            return Ok(None);
        }
        let recipients = [
            types::OrganisationKind::Probation,
            types::OrganisationKind::Provider,
        ]
        .map(|kind| sh::Recipient {
            recipient: Some(sh::recipient::Recipient::OrganisationKind(kind as i32)),
        });
        let consent = self
            .consents()
            .record_consent(sh::RecordConsentRequest {
                idempotency_key: self.key("consent"),
                person: Some(self.ids.clone()),
                provision: Some(sh::Provision {
                    r#type: sh::ProvisionType::Permit as i32,
                    recipients: recipients.into(),
                    purposes: vec![sh::Purpose::DirectCare as i32],
                    categories: vec![
                        types::DataCategory::MentalHealth as i32,
                        types::DataCategory::SubstanceMisuse as i32,
                        types::DataCategory::SelfHarmRisk as i32,
                    ],
                    period: None,
                    exceptions: vec![],
                }),
                period: None,
                method: sh::ConsentMethod::Written as i32,
            })
            .await
            .context("recording consent")?
            .into_inner()
            .consent
            .map(|c| c.consent_id);
        self.tally.consents += 1;
        Ok(consent)
    }

    /// The prison notifies the release; a few are reversed at once. The
    /// release's id, unless it was reversed.
    async fn release(&mut self) -> anyhow::Result<Option<String>> {
        let prison = self.site.prison;
        let release = self
            .system
            .transitions(prison)
            .notify_release(refs::NotifyReleaseRequest {
                idempotency_key: self.key("release"),
                person: Some(self.details.clone()),
                release_date: Some(date(self.released)),
                reason: refs::ReleaseReason::OnLicence as i32,
                releasing_prison: prison.into(),
                destination: Some(self.destination.clone()),
                health: Some(self.health.clone()),
                supervision_ends_on: None,
            })
            .await
            .context("notifying the release")?
            .into_inner()
            .release
            .ok_or_else(|| anyhow!("a release in the response"))?;
        self.tally.releases += 1;
        self.ledger.released(self.released, &self.health);
        if !self.rng.chance(3) {
            return Ok(Some(release.release_id));
        }
        self.system
            .transitions(prison)
            .reverse_release(refs::ReverseReleaseRequest {
                idempotency_key: self.key("reversal"),
                release_id: release.release_id,
                reason: refs::ReversalReason::FurtherCharges as i32,
            })
            .await
            .context("reversing the release")?;
        self.tally.reversals += 1;
        self.ledger.reversed();
        Ok(None)
    }

    /// Probation's own assessment a few days after release.
    async fn assessment(&mut self) -> anyhow::Result<()> {
        let today = Utc::now().date_naive();
        if !self.rng.chance(70) {
            return Ok(());
        }
        let days = 2 + self.rng.below(8) as i64;
        let assessed = (self.released + Duration::days(days)).min(today);
        let unit = self
            .system
            .authed(Service::Referrals, self.site.unit, "practitioner");
        AssessmentsServiceClient::new(unit)
            .record_assessment(refs::RecordAssessmentRequest {
                idempotency_key: self.key("assessment"),
                person: Some(self.details.clone()),
                assessed_on: Some(date(assessed)),
                area: Some(self.destination.clone()),
                findings: Some(self.health.clone()),
            })
            .await
            .context("recording the assessment")?;
        self.tally.assessments += 1;
        self.ledger.assessed(assessed, &self.health);
        Ok(())
    }

    /// A month or so after release, probation offers most people the
    /// outcome and experience survey; most return it.
    async fn self_report(&mut self) -> anyhow::Result<()> {
        use refs::SelfReportAnswer::{No, Yes};
        if !self.rng.chance(60) {
            return Ok(());
        }
        let today = Utc::now().date_naive();
        let days = 20 + self.rng.below(20) as i64;
        let reported = (self.released + Duration::days(days)).min(today);
        fn yes(rng: &mut Rng, percent: u64) -> i32 {
            (if rng.chance(percent) { Yes } else { No }) as i32
        }
        let rng = &mut self.rng;
        let (status, answers) = match rng.below(100) {
            0..75 => (
                refs::SelfReportStatus::Returned,
                Some(refs::SelfReportAnswers {
                    mental_health_well_managed: yes(rng, 55),
                    physical_health_well_managed: yes(rng, 65),
                    practising_safe_sex: yes(rng, 60),
                    barriers_to_access: yes(rng, 40),
                    experience: if rng.chance(60) {
                        refs::ExperienceRating::Positive
                    } else {
                        refs::ExperienceRating::Neutral
                    } as i32,
                    drug_use: if !self.needs.drugs {
                        refs::DrugUseChange::NotUsing
                    } else if rng.chance(45) {
                        refs::DrugUseChange::Reduced
                    } else {
                        refs::DrugUseChange::Unchanged
                    } as i32,
                }),
            ),
            75..90 => (refs::SelfReportStatus::Declined, None),
            _ => (refs::SelfReportStatus::Offered, None),
        };
        let unit = self
            .system
            .authed(Service::Referrals, self.site.unit, "practitioner");
        AssessmentsServiceClient::new(unit)
            .record_self_report(refs::RecordSelfReportRequest {
                idempotency_key: self.key("self-report"),
                person: Some(self.details.clone()),
                reported_on: Some(date(reported)),
                area: Some(self.destination.clone()),
                status: status as i32,
                answers,
            })
            .await
            .context("recording the self-report")?;
        self.tally.surveys_offered += 1;
        self.tally.surveys_returned += u64::from(status == refs::SelfReportStatus::Returned);
        self.ledger.self_reported(reported, answers.as_ref());
        Ok(())
    }

    /// Probation sometimes asks to see what it may.
    async fn disclosure(&mut self) -> anyhow::Result<()> {
        if !self.rng.chance(20) {
            return Ok(());
        }
        let unit = self
            .system
            .authed(Service::Sharing, self.site.unit, "practitioner");
        let decision = DisclosureServiceClient::new(unit)
            .request_disclosure(sh::RequestDisclosureRequest {
                person: Some(self.ids.clone()),
                purpose: sh::Purpose::DirectCare as i32,
                categories: vec![
                    types::DataCategory::MentalHealth as i32,
                    types::DataCategory::SubstanceMisuse as i32,
                ],
                justification: String::new(),
            })
            .await
            .context("requesting a disclosure")?
            .into_inner();
        if decision.categories.is_empty() {
            self.tally.disclosures_denied += 1;
        } else {
            self.tally.disclosures_permitted += 1;
        }
        Ok(())
    }

    /// A few people later withdraw the consent they gave.
    async fn withdrawal(&mut self, consent_id: Option<String>) -> anyhow::Result<()> {
        let Some(consent_id) = consent_id else {
            return Ok(());
        };
        if !self.rng.chance(5) {
            return Ok(());
        }
        self.consents()
            .withdraw_consent(sh::WithdrawConsentRequest {
                idempotency_key: self.key("withdrawal"),
                consent_id,
            })
            .await
            .context("withdrawing consent")?;
        self.tally.withdrawals += 1;
        Ok(())
    }
}
