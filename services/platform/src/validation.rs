//! Field-level validation errors: which field, and which rule it broke. Plain
//! data, free of any transport; the gRPC edge answers them as INVALID_ARGUMENT
//! with `google.rpc.BadRequest` details.

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

/// A request that broke one or more rules: every violation, so a client sees
/// every problem at once. Plain data: the gRPC edge turns it into
/// INVALID_ARGUMENT with `google.rpc.BadRequest` details.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid(pub Vec<FieldViolation>);

impl Invalid {
    pub fn violations(&self) -> &[FieldViolation] {
        &self.0
    }

    /// The same violations placed under `parent` (see [`FieldViolation::within`]).
    pub fn within(self, parent: &str) -> Self {
        Invalid(self.0.into_iter().map(|v| v.within(parent)).collect())
    }
}

impl std::fmt::Display for Invalid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("invalid request: ")?;
        for (i, v) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{} {}", v.field, v.description)?;
        }
        Ok(())
    }
}

impl std::error::Error for Invalid {}

impl From<FieldViolation> for Invalid {
    fn from(violation: FieldViolation) -> Self {
        Invalid(vec![violation])
    }
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

    /// Keeps the value of a successful check, records every violation of a
    /// failed one that itself collected several (e.g. a nested message).
    pub fn check_all<T>(&mut self, result: Result<T, Invalid>) -> Option<T> {
        result.map_err(|invalid| self.0.extend(invalid.0)).ok()
    }

    /// `Ok(value)` when nothing was violated, otherwise every violation.
    pub fn finish<T>(self, value: impl FnOnce() -> T) -> Result<T, Invalid> {
        if self.0.is_empty() {
            Ok(value())
        } else {
            Err(Invalid(self.0))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn violations_are_placed_under_their_parent_and_named() {
        let invalid: Invalid =
            FieldViolation::new("nhs_number", "nhs number fails its check digit")
                .within("person.identifiers")
                .into();
        assert_eq!(invalid.0[0].field, "person.identifiers.nhs_number");
        assert!(
            invalid
                .to_string()
                .contains("person.identifiers.nhs_number")
        );
    }

    #[test]
    fn violations_collect_and_finish() {
        let mut v = Violations::new();
        assert_eq!(v.check::<u8>(Err(FieldViolation::missing("a"))), None);
        v.push(FieldViolation::missing("b"));
        let invalid = v.finish(|| ()).unwrap_err();
        assert_eq!(invalid.violations().len(), 2);
        assert_eq!(Violations::new().finish(|| 5).unwrap(), 5);
    }
}
