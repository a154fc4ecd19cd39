//! Throughcare's protocol contracts, generated at build time from `proto/throughcare`.
//!
//! Packages map to modules: `throughcare.referrals.v1` is [`referrals::v1`], events
//! crossing Kafka are in [`events::v1`], shared types in [`types::v1`].

#![allow(clippy::large_enum_variant, clippy::derive_partial_eq_without_eq)]
#![allow(missing_docs, unreachable_pub, missing_debug_implementations)]

/// The encoded `FileDescriptorSet` of every Throughcare proto, for gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/throughcare_descriptor.bin"));

pub mod types {
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/throughcare.types.v1.rs"));
    }
}

pub mod identity {
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/throughcare.identity.v1.rs"));
    }
}

pub mod referrals {
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/throughcare.referrals.v1.rs"));
    }
}

pub mod sharing {
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/throughcare.sharing.v1.rs"));
    }
}

pub mod indicators {
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/throughcare.indicators.v1.rs"));
    }
}

pub mod events {
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/throughcare.events.v1.rs"));
    }
}

/// Where an observation places a person by age: one definition, beside the
/// contract that carries it, so every service that places a person in a
/// stratum places them alike.
mod age {
    use crate::types::v1::AgeBand;
    use chrono::NaiveDate;

    impl AgeBand {
        /// The band of someone born on `date_of_birth`, on the day `on`:
        /// unspecified when the date of birth is unknown or they are under 18.
        pub fn on(date_of_birth: Option<NaiveDate>, on: NaiveDate) -> Self {
            let Some(dob) = date_of_birth else {
                return AgeBand::Unspecified;
            };
            match on.years_since(dob).unwrap_or(0) {
                0..18 => AgeBand::Unspecified,
                18..25 => AgeBand::AgeBand18To24,
                25..35 => AgeBand::AgeBand25To34,
                35..50 => AgeBand::AgeBand35To49,
                _ => AgeBand::AgeBand50AndOver,
            }
        }
    }
}

/// Redacted `Debug` for the messages that carry identifiers or health facts.
mod redacted {
    use crate::types::v1::{HealthSummary, PersonDetails, PersonIdentifiers};
    use std::fmt;

    impl fmt::Debug for PersonIdentifiers {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.debug_struct("PersonIdentifiers").finish_non_exhaustive()
        }
    }

    impl fmt::Debug for PersonDetails {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.debug_struct("PersonDetails").finish_non_exhaustive()
        }
    }

    impl fmt::Debug for HealthSummary {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.debug_struct("HealthSummary").finish_non_exhaustive()
        }
    }

    impl fmt::Debug for crate::referrals::v1::SelfReportAnswers {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.debug_struct("SelfReportAnswers").finish_non_exhaustive()
        }
    }
}

/// A mutating request that carries the caller's idempotency key: retried
/// with the same key it takes effect once.
pub trait IdempotentRequest: prost::Message + prost::Name {
    fn idempotency_key(&self) -> &str;
}

macro_rules! idempotent_requests {
    ($($request:ty),* $(,)?) => {$(
        impl IdempotentRequest for $request {
            fn idempotency_key(&self) -> &str {
                &self.idempotency_key
            }
        }
    )*};
}

idempotent_requests!(
    referrals::v1::NotifyReleaseRequest,
    referrals::v1::ReverseReleaseRequest,
    referrals::v1::NotifyReceptionRequest,
    referrals::v1::NotifyTransferRequest,
    referrals::v1::NotifyCommunitySentenceRequest,
    referrals::v1::NotifyApprovedPremisesMoveRequest,
    referrals::v1::NotifySupervisionEndRequest,
    referrals::v1::NotifyDeathRequest,
    referrals::v1::RecordAssessmentRequest,
    referrals::v1::RecordSelfReportRequest,
    referrals::v1::RequestReferralRequest,
    referrals::v1::UpdateReferralRequest,
    referrals::v1::AcknowledgeAlertRequest,
    sharing::v1::RecordConsentRequest,
    sharing::v1::WithdrawConsentRequest,
    sharing::v1::RegisterAgreementRequest,
    sharing::v1::RevokeAgreementRequest,
    indicators::v1::RecordStructureIndicatorRequest,
);

/// Kafka topic names (before any deployment prefix), as documented in the
/// event contracts.
pub mod topics {
    /// Pseudonymised lifecycle events from the referrals service.
    pub const REFERRALS_EVENTS: &str = "throughcare.referrals.events";
    /// Sealed person-level health records, read only by the sharing service.
    pub const HEALTH_RECORDS: &str = "throughcare.referrals.health-records";
    /// Pseudonymised, coded observations for the indicators service.
    pub const OBSERVATIONS: &str = "throughcare.observations";
    /// Consent and disclosure events from the sharing service.
    pub const SHARING_EVENTS: &str = "throughcare.sharing.events";
    /// Published indicator snapshots, already under disclosure control.
    pub const INDICATOR_SNAPSHOTS: &str = "throughcare.indicators.snapshots";
}

/// The associated data a `SealedHealthRecord` is sealed with: binds the
/// ciphertext to its record id and person key, so a sealed body cannot be
/// replayed under another record. Sealer and opener must both use this.
pub fn sealed_health_record_binding(record_id: &str, person_key: &str) -> Vec<u8> {
    format!("throughcare.health-record\u{1f}{record_id}\u{1f}{person_key}").into_bytes()
}
