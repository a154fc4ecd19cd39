//! The referral lifecycle as an explicit state machine, drawing on the NHS
//! Booking and Referral Standard and HMPPS's referral service:
//!
//! ```text
//! requested -> acknowledged -> accepted | rejected(reason)
//! accepted -> appointment booked -> attended | did not attend
//! attended -> completed | discharged;   did not attend -> discharged | rebooked
//! cancelled by the referrer while active; declined by the person (either party records it)
//! ```
//!
//! Each action belongs to a party (the receiving provider accepts, the referrer
//! cancels) and is allowed only from certain states.

pub use super::action::Action;
use throughcare_proto::referrals::v1 as pb;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ReferralState {
    Requested,
    Acknowledged,
    Accepted,
    Rejected,
    AppointmentBooked,
    Attended,
    DidNotAttend,
    Completed,
    Discharged,
    Cancelled,
    Declined,
}

use ReferralState::*;

impl ReferralState {
    /// States from which the referral can still move; "one active referral per
    /// person, service and provider" counts these.
    pub const ACTIVE: [ReferralState; 6] = [
        Requested,
        Acknowledged,
        Accepted,
        AppointmentBooked,
        Attended,
        DidNotAttend,
    ];

    /// States a referral never leaves.
    pub const ENDED: [ReferralState; 5] = [Rejected, Completed, Discharged, Cancelled, Declined];

    /// Every state: the active ones, then the endings.
    pub const ALL: [ReferralState; 11] = {
        let [a, b, c, d, e, f] = Self::ACTIVE;
        let [g, h, i, j, k] = Self::ENDED;
        [a, b, c, d, e, f, g, h, i, j, k]
    };

    pub fn is_active(self) -> bool {
        Self::ACTIVE.contains(&self)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Requested => "requested",
            Acknowledged => "acknowledged",
            Accepted => "accepted",
            Rejected => "rejected",
            AppointmentBooked => "appointment_booked",
            Attended => "attended",
            DidNotAttend => "did_not_attend",
            Completed => "completed",
            Discharged => "discharged",
            Cancelled => "cancelled",
            Declined => "declined",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == value)
    }

    pub fn to_proto(self) -> pb::ReferralState {
        match self {
            Requested => pb::ReferralState::Requested,
            Acknowledged => pb::ReferralState::Acknowledged,
            Accepted => pb::ReferralState::Accepted,
            Rejected => pb::ReferralState::Rejected,
            AppointmentBooked => pb::ReferralState::AppointmentBooked,
            Attended => pb::ReferralState::Attended,
            DidNotAttend => pb::ReferralState::DidNotAttend,
            Completed => pb::ReferralState::Completed,
            Discharged => pb::ReferralState::Discharged,
            Cancelled => pb::ReferralState::Cancelled,
            Declined => pb::ReferralState::Declined,
        }
    }

    pub fn from_proto(state: pb::ReferralState) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.to_proto() == state)
    }

    /// How far along the path to care a state is, for "reached at least": a
    /// continuity task that closes on acceptance also closes on a later booking
    /// or attendance. Refusals and endings without care rank nowhere.
    pub fn progress(self) -> Option<u8> {
        match self {
            Accepted => Some(1),
            AppointmentBooked => Some(2),
            Attended => Some(3),
            Completed => Some(4),
            _ => None,
        }
    }
}

/// The side of a referral an organisation is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Party {
    Referrer,
    Provider,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    #[error("only the {} may {action} a referral", party_names(.allowed))]
    WrongParty {
        action: &'static str,
        allowed: &'static [Party],
    },
    #[error("cannot {action} a referral that is {}", .current.as_str())]
    WrongState {
        action: &'static str,
        current: ReferralState,
    },
}

fn party_names(parties: &[Party]) -> &'static str {
    match parties {
        [Party::Provider] => "receiving provider",
        [Party::Referrer] => "referrer",
        _ => "referrer or receiving provider",
    }
}

/// The state after `action`, taken by an organisation on `sides` of the
/// referral (both, when it referred to itself), from `current`.
pub fn transition(
    current: ReferralState,
    action: &Action,
    sides: &[Party],
) -> Result<ReferralState, TransitionError> {
    if !action.parties().iter().any(|p| sides.contains(p)) {
        return Err(TransitionError::WrongParty {
            action: action.name(),
            allowed: action.parties(),
        });
    }
    if !action.from_states().contains(&current) {
        return Err(TransitionError::WrongState {
            action: action.name(),
            current,
        });
    }
    Ok(action.target())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The lifecycle written out independently, as (from, action, party) -> to.
    fn reference(from: ReferralState, action: &str, party: Party) -> Option<ReferralState> {
        use Party::*;
        let table: &[(ReferralState, &str, Party, ReferralState)] = &[
            (Requested, "acknowledge", Provider, Acknowledged),
            (Acknowledged, "accept", Provider, Accepted),
            (Acknowledged, "reject", Provider, Rejected),
            (Accepted, "book", Provider, AppointmentBooked),
            (DidNotAttend, "book", Provider, AppointmentBooked),
            (AppointmentBooked, "attend", Provider, Attended),
            (AppointmentBooked, "dna", Provider, DidNotAttend),
            (Attended, "complete", Provider, Completed),
            (Attended, "discharge", Provider, Discharged),
            (DidNotAttend, "discharge", Provider, Discharged),
        ];
        if let Some(row) = table
            .iter()
            .find(|r| r.0 == from && r.1 == action && r.2 == party)
        {
            return Some(row.3);
        }
        let active = !matches!(
            from,
            Rejected | Completed | Discharged | Cancelled | Declined
        );
        match (action, party) {
            ("cancel", Referrer) if active => Some(Cancelled),
            ("decline", _) if active && from != Attended => Some(Declined),
            _ => None,
        }
    }

    fn actions() -> Vec<(&'static str, Action)> {
        vec![
            ("acknowledge", Action::Acknowledge),
            ("accept", Action::Accept),
            (
                "reject",
                Action::Reject {
                    reason: pb::RejectionReason::NoCapacity,
                    text: None,
                },
            ),
            (
                "book",
                Action::BookAppointment {
                    at: chrono::Utc::now(),
                },
            ),
            ("attend", Action::RecordAttendance),
            ("dna", Action::RecordDidNotAttend),
            ("complete", Action::Complete),
            ("discharge", Action::Discharge),
            (
                "cancel",
                Action::Cancel {
                    reason: pb::CancellationReason::NoLongerNeeded,
                },
            ),
            ("decline", Action::Decline),
        ]
    }

    #[test]
    fn every_state_action_and_party_agrees_with_the_reference_table() {
        for from in ReferralState::ALL {
            for (name, action) in actions() {
                for party in [Party::Referrer, Party::Provider] {
                    let ours = transition(from, &action, &[party]).ok();
                    assert_eq!(
                        ours,
                        reference(from, name, party),
                        "{from:?} --{name} by {party:?}-->"
                    );
                }
            }
        }
    }

    #[test]
    fn errors_say_who_may_act_and_the_current_state() {
        let wrong_party =
            transition(Acknowledged, &Action::Accept, &[Party::Referrer]).unwrap_err();
        assert_eq!(
            wrong_party.to_string(),
            "only the receiving provider may accept a referral"
        );
        let wrong_state = transition(Requested, &Action::Accept, &[Party::Provider]).unwrap_err();
        assert_eq!(
            wrong_state.to_string(),
            "cannot accept a referral that is requested"
        );
        // An organisation that referred to itself holds both sides.
        assert_eq!(
            transition(
                Requested,
                &Action::Cancel {
                    reason: pb::CancellationReason::Other
                },
                &[Party::Referrer, Party::Provider]
            ),
            Ok(Cancelled)
        );
    }

    #[test]
    fn terminal_states_allow_nothing() {
        for from in ReferralState::ALL.into_iter().filter(|s| !s.is_active()) {
            for (_, action) in actions() {
                assert!(transition(from, &action, &[Party::Referrer, Party::Provider]).is_err());
            }
        }
    }

    proptest! {
        /// Any sequence of attempted actions only ever walks reference edges,
        /// and once a referral is no longer active it never moves again.
        #[test]
        fn random_walks_follow_the_reference(steps in proptest::collection::vec((0usize..10, any::<bool>()), 0..40)) {
            let all = actions();
            let mut state = Requested;
            for (index, provider) in steps {
                let (name, action) = &all[index];
                let party = if provider { Party::Provider } else { Party::Referrer };
                let before = state;
                if let Ok(next) = transition(state, action, &[party]) {
                    prop_assert!(before.is_active());
                    prop_assert_eq!(Some(next), reference(before, name, party));
                    state = next;
                }
            }
        }

        #[test]
        fn state_names_round_trip(index in 0usize..11) {
            let state = ReferralState::ALL[index];
            prop_assert_eq!(ReferralState::parse(state.as_str()), Some(state));
            prop_assert_eq!(ReferralState::from_proto(state.to_proto()), Some(state));
        }
    }
}
