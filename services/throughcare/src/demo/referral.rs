//! A referral for each need, worked by the receiving provider through its
//! lifecycle.

use super::Authed;
use super::journey::Journey;
use super::ledger::Step;
use anyhow::{Context, anyhow};
use chrono::{Duration, Utc};
use throughcare_platform::clock::to_timestamp;
use throughcare_proto::referrals::v1 as refs;
use throughcare_proto::referrals::v1::referrals_service_client::ReferralsServiceClient;
use throughcare_proto::referrals::v1::update_referral_request::Action;
use throughcare_proto::types::v1 as types;

impl Journey<'_> {
    /// A referral for most needs, each worked by the receiving provider.
    pub(super) async fn referrals(&mut self, release_id: &str) -> anyhow::Result<()> {
        let site = self.site;
        let mut needs = Vec::new();
        if self.needs.drinking || self.needs.drugs {
            needs.push((
                types::ServiceType::SubstanceMisuseTreatment,
                site.substance_service,
            ));
        }
        if self.needs.mental {
            needs.push((
                types::ServiceType::MentalHealthTreatment,
                site.mental_health_trust,
            ));
        }
        if !self.needs.gp_registered {
            needs.push((types::ServiceType::GpRegistration, "C82010"));
        }
        for (service, provider) in needs {
            if !self.rng.chance(85) {
                continue; // not referred: shows in the "offered" indicators
            }
            let id = self.request_referral(service, provider, release_id).await?;
            self.work_referral(&id, service, provider).await?;
        }
        Ok(())
    }

    /// The probation practitioner refers the person; the referral's id.
    async fn request_referral(
        &mut self,
        service: types::ServiceType,
        provider: &str,
        release_id: &str,
    ) -> anyhow::Result<String> {
        let referral = self
            .system
            .referrals(self.site.unit, "practitioner")
            .request_referral(refs::RequestReferralRequest {
                idempotency_key: self.key(&format!("referral-{}", service as i32)),
                person: Some(self.details.clone()),
                service: service as i32,
                provider: provider.into(),
                urgency: refs::Urgency::Routine as i32,
                release_id: release_id.to_owned(),
            })
            .await
            .context("requesting a referral")?
            .into_inner()
            .referral
            .ok_or_else(|| anyhow!("a referral in the response"))?;
        self.tally.referrals += 1;
        self.ledger.referral(service, Step::Offered);
        Ok(referral.referral_id)
    }

    /// The referral's lifecycle: cancelled by probation, or acknowledged by
    /// the provider, then rejected, or accepted and booked, then attended
    /// (and sometimes completed) or missed and discharged.
    async fn work_referral(
        &mut self,
        id: &str,
        service: types::ServiceType,
        provider: &str,
    ) -> anyhow::Result<()> {
        if self.rng.chance(5) {
            let mut unit = self.system.referrals(self.site.unit, "practitioner");
            let reason = refs::CancellationReason::ReferredElsewhere as i32;
            let cancel = Action::Cancel(refs::CancelAction { reason });
            self.update(&mut unit, id, "cancel", cancel)
                .await
                .context("cancelling a referral")?;
            self.tally.cancelled += 1;
            return Ok(());
        }
        let mut provider = self.system.referrals(provider, "system");
        let acknowledge = Action::Acknowledge(refs::AcknowledgeAction {});
        self.update(&mut provider, id, "acknowledge", acknowledge)
            .await
            .context("acknowledging a referral")?;
        if self.rng.chance(15) {
            let reason = [
                refs::RejectionReason::CriteriaNotMet,
                refs::RejectionReason::NoCapacity,
                refs::RejectionReason::DualDiagnosis,
            ][self.rng.below(3) as usize] as i32;
            let reject = Action::Reject(refs::RejectAction {
                reason,
                reason_text: String::new(),
            });
            self.update(&mut provider, id, "reject", reject)
                .await
                .context("rejecting a referral")?;
            self.tally.rejected += 1;
            return Ok(());
        }
        let accept = Action::Accept(refs::AcceptAction {});
        self.update(&mut provider, id, "accept", accept)
            .await
            .context("accepting a referral")?;
        self.ledger.referral(service, Step::Accepted);
        self.appointment(&mut provider, id, service).await
    }

    /// The provider books an appointment, which is attended (and sometimes
    /// the referral completed) or missed (and the person discharged).
    async fn appointment(
        &mut self,
        provider: &mut ReferralsServiceClient<Authed>,
        id: &str,
        service: types::ServiceType,
    ) -> anyhow::Result<()> {
        let appointment = Utc::now() + Duration::days(1 + self.rng.below(14) as i64);
        let book = Action::BookAppointment(refs::BookAppointmentAction {
            appointment_at: Some(to_timestamp(appointment)),
        });
        self.update(provider, id, "book", book)
            .await
            .context("booking an appointment")?;
        if self.rng.chance(75) {
            let attended = Action::RecordAttendance(refs::RecordAttendanceAction {});
            self.update(provider, id, "attended", attended)
                .await
                .context("recording attendance")?;
            self.tally.attended += 1;
            self.ledger.referral(service, Step::Attended);
            if self.rng.chance(50) {
                let complete = Action::Complete(refs::CompleteAction {});
                self.update(provider, id, "complete", complete)
                    .await
                    .context("completing a referral")?;
            }
        } else {
            let missed = Action::RecordDidNotAttend(refs::RecordDidNotAttendAction {});
            self.update(provider, id, "dna", missed)
                .await
                .context("recording a did-not-attend")?;
            self.tally.did_not_attend += 1;
            let discharge = Action::Discharge(refs::DischargeAction {});
            self.update(provider, id, "discharge", discharge)
                .await
                .context("discharging")?;
        }
        Ok(())
    }

    /// Moves referral `id` on by `action`, as `client`'s caller.
    async fn update(
        &self,
        client: &mut ReferralsServiceClient<Authed>,
        id: &str,
        what: &str,
        action: Action,
    ) -> Result<(), tonic::Status> {
        client
            .update_referral(refs::UpdateReferralRequest {
                idempotency_key: self.key(&format!("{id}-{what}")),
                referral_id: id.to_owned(),
                action: Some(action),
            })
            .await?;
        Ok(())
    }
}
