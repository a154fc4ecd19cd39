//! Identifiers as domain types that can only be built valid.
//!
//! Person identifiers ([`NhsNumber`], [`PrisonNumber`], [`Crn`]) redact themselves in
//! `Debug` and have no `Display`, so they cannot slip into a log line by accident;
//! read them with `as_str` where they are genuinely needed. Organisation and area
//! codes are not personal and print normally.

mod codes;
mod nhs_number;
mod person;

pub use codes::{Crn, LocalAuthorityCode, OdsCode, OrganisationCode, PrisonCode, PrisonNumber};
pub use nhs_number::NhsNumber;
pub use person::{PersonIds, PersonKey, PseudonymKey, PseudonymKeyError};

/// A new id for something Throughcare records (a release, a referral, a
/// consent...): a UUIDv7, so ids sort by creation time, as text.
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// Why a string is not a valid identifier. The message names the identifier and
/// the rule, never the rejected value (which may be personal data).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} {rule}")]
pub struct IdentifierError {
    /// The identifier, e.g. "nhs number".
    pub what: &'static str,
    /// The broken rule, e.g. "must be 10 digits".
    pub rule: &'static str,
}

impl IdentifierError {
    pub(crate) const fn new(what: &'static str, rule: &'static str) -> Self {
        Self { what, rule }
    }
}

/// Checks `value` against a pattern of character classes, one per position:
/// `A` an ASCII capital letter, `9` an ASCII digit, `X` either.
pub(crate) fn matches_pattern(value: &str, pattern: &str) -> bool {
    value.len() == pattern.len()
        && value.bytes().zip(pattern.bytes()).all(|(c, p)| match p {
            b'A' => c.is_ascii_uppercase(),
            b'9' => c.is_ascii_digit(),
            b'X' => c.is_ascii_uppercase() || c.is_ascii_digit(),
            _ => false,
        })
}
