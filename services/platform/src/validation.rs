//! Field-level validation errors and their gRPC form: INVALID_ARGUMENT carrying
//! `google.rpc.BadRequest` details, so a client learns which field and why.

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// One invalid field: its path in the request (e.g. `person.identifiers.nhs_number`)
/// and the rule it broke. Descriptions never repeat the rejected value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldViolation {
    pub field: String,
    pub description: String,
}

impl FieldViolation {
    pub fn new(field: impl Into<String>, description: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            description: description.into(),
        }
    }

    /// A required field that is absent or empty.
    pub fn missing(field: impl Into<String>) -> Self {
        Self::new(field, "is required")
    }

    /// Places this violation under `parent`: `nhs_number` within `person.identifiers`
    /// becomes `person.identifiers.nhs_number`.
    pub fn within(mut self, parent: &str) -> Self {
        self.field = match (parent.is_empty(), self.field.is_empty()) {
            (true, _) => self.field,
            (false, true) => parent.to_owned(),
            (false, false) => format!("{parent}.{}", self.field),
        };
        self
    }
}

impl From<FieldViolation> for Status {
    fn from(violation: FieldViolation) -> Self {
        invalid_argument(vec![violation])
    }
}

/// INVALID_ARGUMENT naming every violation, with `google.rpc.BadRequest` details.
pub fn invalid_argument(violations: Vec<FieldViolation>) -> Status {
    let message = violations
        .iter()
        .map(|v| format!("{} {}", v.field, v.description))
        .collect::<Vec<_>>()
        .join("; ");
    let mut details = ErrorDetails::new();
    for v in &violations {
        details.add_bad_request_violation(v.field.clone(), v.description.clone());
    }
    Status::with_error_details(
        Code::InvalidArgument,
        format!("invalid request: {message}"),
        details,
    )
}

/// Collects violations while validating a whole request, so a client sees every
/// problem at once rather than one per round trip.
#[derive(Debug, Default)]
pub struct Violations(Vec<FieldViolation>);

impl Violations {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn push(&mut self, violation: FieldViolation) {
        self.0.push(violation);
    }

    /// Keeps the value of a successful check, records the violation of a failed one.
    pub fn check<T>(&mut self, result: Result<T, FieldViolation>) -> Option<T> {
        result.map_err(|v| self.0.push(v)).ok()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `Ok(value)` when nothing was violated, otherwise INVALID_ARGUMENT.
    pub fn finish<T>(self, value: impl FnOnce() -> T) -> Result<T, Status> {
        if self.0.is_empty() {
            Ok(value())
        } else {
            Err(invalid_argument(self.0))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_names_the_field_and_carries_bad_request_details() {
        let status: Status = FieldViolation::new("nhs_number", "nhs number fails its check digit")
            .within("person.identifiers")
            .into();
        assert_eq!(status.code(), Code::InvalidArgument);
        assert!(status.message().contains("person.identifiers.nhs_number"));
        let details = status.get_error_details();
        let bad = details.bad_request().expect("bad request details");
        assert_eq!(
            bad.field_violations[0].field,
            "person.identifiers.nhs_number"
        );
    }

    #[test]
    fn violations_collect_and_finish() {
        let mut v = Violations::new();
        assert_eq!(v.check::<u8>(Err(FieldViolation::missing("a"))), None);
        v.push(FieldViolation::missing("b"));
        let status = v.finish(|| ()).unwrap_err();
        assert_eq!(
            status
                .get_error_details()
                .bad_request()
                .unwrap()
                .field_violations
                .len(),
            2
        );
        assert_eq!(Violations::new().finish(|| 5).unwrap(), 5);
    }
}
