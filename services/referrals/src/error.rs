//! The referrals service's failures as the platform's one error type: each
//! local error says once which kind of failure it is, and the gRPC edge
//! ([`throughcare_platform::grpc::status`]) says once how that is answered.

use crate::domain::referral::TransitionError;
use crate::store::StoreError;
use crate::store::rows::CorruptRow;

pub use throughcare_platform::error::{Error, Result};

impl From<TransitionError> for Error {
    fn from(error: TransitionError) -> Self {
        match error {
            TransitionError::WrongParty { .. } => Error::Forbidden(error.to_string()),
            TransitionError::WrongState { .. } => {
                Error::precondition("referral", error.to_string())
            }
        }
    }
}

impl From<StoreError> for Error {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Conflict(message) => Error::Conflict(message),
            StoreError::Database(error) => error.into(),
            other => Error::internal("referrals store", other),
        }
    }
}

impl From<CorruptRow> for Error {
    fn from(error: CorruptRow) -> Self {
        Error::internal("referrals store", error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::referral::{Action, Party, ReferralState, transition};

    #[test]
    fn wrong_parties_are_forbidden_and_wrong_states_a_referral_precondition() {
        let party = transition(
            ReferralState::Acknowledged,
            &Action::Accept,
            &[Party::Referrer],
        );
        assert!(matches!(
            Error::from(party.unwrap_err()),
            Error::Forbidden(_)
        ));
        let state = transition(
            ReferralState::Requested,
            &Action::Accept,
            &[Party::Provider],
        );
        assert!(matches!(
            Error::from(state.unwrap_err()),
            Error::Precondition { subject, .. } if subject == "referral"
        ));
    }

    #[test]
    fn store_conflicts_are_conflicts_and_corrupt_rows_internal() {
        let conflict = Error::from(StoreError::Conflict("taken".into()));
        assert!(matches!(conflict, Error::Conflict(m) if m == "taken"));
        let corrupt = Error::from(CorruptRow { what: "sex" });
        assert!(matches!(corrupt, Error::Internal { .. }));
    }
}
