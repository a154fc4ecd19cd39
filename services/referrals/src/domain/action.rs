//! What the parties do to a referral: each action, who may take it, from
//! which states, to which state; and the action an update request asks for.

use super::fields;
use super::referral::{Party, ReferralState, ReferralState::*};
use throughcare_platform::validation::FieldViolation;
use throughcare_proto::referrals::v1 as pb;

/// What one of the parties does to a referral.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Acknowledge,
    Accept,
    Reject {
        reason: pb::RejectionReason,
        text: Option<String>,
    },
    BookAppointment {
        at: chrono::DateTime<chrono::Utc>,
    },
    RecordAttendance,
    RecordDidNotAttend,
    Complete,
    Discharge,
    Cancel {
        reason: pb::CancellationReason,
    },
    Decline,
}

impl Action {
    pub fn name(&self) -> &'static str {
        match self {
            Action::Acknowledge => "acknowledge",
            Action::Accept => "accept",
            Action::Reject { .. } => "reject",
            Action::BookAppointment { .. } => "book an appointment for",
            Action::RecordAttendance => "record attendance on",
            Action::RecordDidNotAttend => "record non-attendance on",
            Action::Complete => "complete",
            Action::Discharge => "discharge",
            Action::Cancel { .. } => "cancel",
            Action::Decline => "record a decline on",
        }
    }

    /// Who may take this action.
    pub fn parties(&self) -> &'static [Party] {
        match self {
            Action::Cancel { .. } => &[Party::Referrer],
            Action::Decline => &[Party::Referrer, Party::Provider],
            _ => &[Party::Provider],
        }
    }

    /// The states this action may be taken from.
    pub fn from_states(&self) -> &'static [ReferralState] {
        match self {
            Action::Acknowledge => &[Requested],
            Action::Accept | Action::Reject { .. } => &[Acknowledged],
            Action::BookAppointment { .. } => &[Accepted, DidNotAttend],
            Action::RecordAttendance | Action::RecordDidNotAttend => &[AppointmentBooked],
            Action::Complete => &[Attended],
            Action::Discharge => &[Attended, DidNotAttend],
            Action::Cancel { .. } => &ReferralState::ACTIVE,
            Action::Decline => &[
                Requested,
                Acknowledged,
                Accepted,
                AppointmentBooked,
                DidNotAttend,
            ],
        }
    }

    pub fn target(&self) -> ReferralState {
        match self {
            Action::Acknowledge => Acknowledged,
            Action::Accept => Accepted,
            Action::Reject { .. } => Rejected,
            Action::BookAppointment { .. } => AppointmentBooked,
            Action::RecordAttendance => Attended,
            Action::RecordDidNotAttend => DidNotAttend,
            Action::Complete => Completed,
            Action::Discharge => Discharged,
            Action::Cancel { .. } => Cancelled,
            Action::Decline => Declined,
        }
    }
}

/// The action an `UpdateReferral` request asks for, validated, naming the
/// bad field.
impl TryFrom<&pb::UpdateReferralRequest> for Action {
    type Error = FieldViolation;

    fn try_from(r: &pb::UpdateReferralRequest) -> Result<Self, FieldViolation> {
        use pb::update_referral_request::Action as A;
        if r.referral_id.is_empty() {
            return Err(FieldViolation::missing("referral_id"));
        }
        let action = r
            .action
            .as_ref()
            .ok_or_else(|| FieldViolation::missing("action"))?;
        Ok(match action {
            A::Acknowledge(_) => Action::Acknowledge,
            A::Accept(_) => Action::Accept,
            A::Reject(reject) => {
                let reason =
                    fields::required_enum::<pb::RejectionReason>(reject.reason, "reject.reason")?;
                let text = fields::text(&reject.reason_text, "reject.reason_text")?;
                if reason == pb::RejectionReason::Other && text.is_none() {
                    return Err(FieldViolation::new(
                        "reject.reason_text",
                        "is required when the reason is OTHER",
                    ));
                }
                Action::Reject { reason, text }
            }
            A::BookAppointment(book) => Action::BookAppointment {
                at: fields::timestamp(
                    book.appointment_at.as_ref(),
                    "book_appointment.appointment_at",
                )?
                .ok_or_else(|| FieldViolation::missing("book_appointment.appointment_at"))?,
            },
            A::RecordAttendance(_) => Action::RecordAttendance,
            A::RecordDidNotAttend(_) => Action::RecordDidNotAttend,
            A::Complete(_) => Action::Complete,
            A::Discharge(_) => Action::Discharge,
            A::Cancel(cancel) => {
                let reason = fields::required_enum::<pb::CancellationReason>(
                    cancel.reason,
                    "cancel.reason",
                )?;
                if reason == pb::CancellationReason::ReleaseReversed {
                    return Err(FieldViolation::new(
                        "cancel.reason",
                        "RELEASE_REVERSED is set only by a release reversal",
                    ));
                }
                Action::Cancel { reason }
            }
            A::Decline(_) => Action::Decline,
        })
    }
}
