use super::{IdentifierError, matches_pattern};
use std::fmt;

/// Declares a validated code type: a newtype over `String` whose only
/// constructor is `parse`.
macro_rules! code_type {
    ($(#[$doc:meta])* $name:ident, $what:literal, redacted = $redacted:literal, $check:expr) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            pub fn parse(input: &str) -> Result<Self, IdentifierError> {
                let check: fn(&str) -> Result<(), &'static str> = $check;
                check(input).map_err(|rule| IdentifierError::new($what, rule))?;
                Ok(Self(input.to_owned()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                if $redacted {
                    write!(f, concat!(stringify!($name), "(<redacted>)"))
                } else {
                    write!(f, concat!(stringify!($name), "({})"), self.0)
                }
            }
        }
    };
}

code_type!(
    /// A prison (NOMS) number, `[A-Z][0-9]{4}[A-Z]{2}`, e.g. `A1234BC`. Personal: redacted.
    PrisonNumber, "prison number", redacted = true,
    |s| if matches_pattern(s, "A9999AA") { Ok(()) } else { Err("must be a letter, 4 digits and 2 letters, e.g. A1234BC") }
);

code_type!(
    /// A probation case reference number, `[A-Z][0-9]{6}`, e.g. `X123456`. Personal: redacted.
    Crn, "crn", redacted = true,
    |s| if matches_pattern(s, "A999999") { Ok(()) } else { Err("must be a letter and 6 digits, e.g. X123456") }
);

code_type!(
    /// A prison code, `[A-Z]{3}`, e.g. `LEI`.
    PrisonCode, "prison code", redacted = false,
    |s| if matches_pattern(s, "AAA") { Ok(()) } else { Err("must be 3 capital letters, e.g. LEI") }
);

code_type!(
    /// An NHS ODS organisation code: 3 characters (trusts, ICBs, e.g. `RXT`, `QHM`),
    /// 5 (trust sites, e.g. `RXT01`) or 6 (GP practices, e.g. `M85063`), capital
    /// letters and digits with at least one letter.
    OdsCode, "ods code", redacted = false,
    |s| {
        let shape = matches!(s.len(), 3 | 5 | 6)
            && s.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
            && s.bytes().any(|b| b.is_ascii_uppercase());
        if shape { Ok(()) } else { Err("must be 3, 5 or 6 capital letters and digits, e.g. RXT or M85063") }
    }
);

code_type!(
    /// A local authority ONS (GSS) code: a country letter, an entity code for a
    /// local authority (E06, E07, E08, E09, E10, W06, S12, N09) and 6 digits, e.g. `E06000015`.
    LocalAuthorityCode, "local authority code", redacted = false,
    |s| {
        const ENTITIES: [&str; 8] = ["E06", "E07", "E08", "E09", "E10", "W06", "S12", "N09"];
        if !matches_pattern(s, "A99999999") {
            Err("must be a letter and 8 digits, e.g. E06000015")
        } else if !ENTITIES.contains(&&s[..3]) {
            Err("is not a local authority entity code (E06-E10, W06, S12, N09)")
        } else {
            Ok(())
        }
    }
);

code_type!(
    /// Any organisation's code as the organisation registry knows it: ODS codes,
    /// prison codes, probation region and delivery unit codes. 2 to 12 capital
    /// letters, digits, hyphens or underscores; the registry decides whether it exists.
    OrganisationCode, "organisation code", redacted = false,
    |s| {
        let shape = (2..=12).contains(&s.len())
            && s.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if shape { Ok(()) } else { Err("must be 2 to 12 capital letters, digits, '-' or '_'") }
    }
);

impl fmt::Display for PrisonCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for OdsCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for LocalAuthorityCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for OrganisationCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn examples_from_the_domain_parse() {
        assert!(PrisonNumber::parse("A1234BC").is_ok());
        assert!(Crn::parse("X123456").is_ok());
        assert!(PrisonCode::parse("LEI").is_ok());
        for ods in ["RXT", "RXT01", "M85063", "08K", "QHM"] {
            assert!(OdsCode::parse(ods).is_ok(), "{ods}");
        }
        assert!(LocalAuthorityCode::parse("E06000015").is_ok());
        assert!(LocalAuthorityCode::parse("W06000022").is_ok());
    }

    #[test]
    fn near_misses_are_rejected_with_the_rule() {
        assert!(PrisonNumber::parse("a1234BC").is_err());
        assert!(PrisonNumber::parse("A123BC").is_err());
        assert!(PrisonNumber::parse("A1234BC ").is_err());
        assert!(Crn::parse("X12345").is_err());
        assert!(Crn::parse("12345678").is_err());
        assert!(PrisonCode::parse("LE1").is_err());
        assert!(OdsCode::parse("RX").is_err());
        assert!(OdsCode::parse("RXT0").is_err());
        assert!(OdsCode::parse("123").is_err());
        let err = LocalAuthorityCode::parse("E05000015").unwrap_err();
        assert_eq!(err.what, "local authority code");
        assert!(err.rule.contains("entity code"));
    }

    #[test]
    fn person_identifiers_are_redacted_in_debug() {
        let p = PrisonNumber::parse("A1234BC").unwrap();
        let c = Crn::parse("X123456").unwrap();
        assert!(!format!("{p:?}{c:?}").contains("1234"));
        assert_eq!(
            format!("{:?}", PrisonCode::parse("LEI").unwrap()),
            "PrisonCode(LEI)"
        );
    }

    proptest! {
        #[test]
        fn prison_numbers_match_the_pattern(s in "[A-Z][0-9]{4}[A-Z]{2}") {
            let parsed = PrisonNumber::parse(&s).unwrap();
            prop_assert_eq!(parsed.as_str(), s.as_str());
        }

        #[test]
        fn crns_match_the_pattern(s in "[A-Z][0-9]{6}") {
            prop_assert!(Crn::parse(&s).is_ok());
        }

        #[test]
        fn prison_numbers_reject_anything_else(s in "\\PC{0,10}") {
            let re_match = s.len() == 7
                && s.as_bytes()[0].is_ascii_uppercase()
                && s.as_bytes()[1..5].iter().all(u8::is_ascii_digit)
                && s.as_bytes()[5..].iter().all(u8::is_ascii_uppercase);
            prop_assert_eq!(PrisonNumber::parse(&s).is_ok(), re_match);
        }

        #[test]
        fn crns_reject_anything_else(s in "\\PC{0,10}") {
            let re_match = s.len() == 7
                && s.as_bytes()[0].is_ascii_uppercase()
                && s.as_bytes()[1..].iter().all(u8::is_ascii_digit);
            prop_assert_eq!(Crn::parse(&s).is_ok(), re_match);
        }

        #[test]
        fn local_authority_codes(entity in "(E0[6-9]|E10|W06|S12|N09)", digits in "[0-9]{6}") {
            let code = format!("{entity}{digits}");
            prop_assert!(LocalAuthorityCode::parse(&code).is_ok());
        }

        #[test]
        fn ods_codes_of_allowed_lengths(s in "[A-Z][A-Z0-9]{2}([A-Z0-9]{2,3})?") {
            prop_assert!(OdsCode::parse(&s).is_ok());
        }
    }
}
