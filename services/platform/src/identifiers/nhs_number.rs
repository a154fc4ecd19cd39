use super::IdentifierError;
use std::fmt;

/// An NHS number: 10 digits whose last is a modulus 11 check digit.
///
/// Accepts the number with or without spaces ("943 476 5919" or "9434765919").
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct NhsNumber(String);

const WHAT: &str = "nhs number";

impl NhsNumber {
    pub fn parse(input: &str) -> Result<Self, IdentifierError> {
        let digits: String = input.chars().filter(|c| *c != ' ').collect();
        if digits.len() != 10 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(IdentifierError::new(WHAT, "must be 10 digits"));
        }
        let bytes = digits.as_bytes();
        let expected = Self::check_digit(bytes[..9].try_into().expect("nine digits"))
            .ok_or(IdentifierError::new(WHAT, "has no valid check digit"))?;
        if bytes[9] - b'0' != expected {
            return Err(IdentifierError::new(WHAT, "fails its check digit"));
        }
        Ok(Self(digits))
    }

    /// The 10 digits, no spaces.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The modulus 11 check digit of the first nine ASCII digits, or `None` when the
    /// remainder makes it 10 (such numbers are never issued).
    pub fn check_digit(first_nine: &[u8; 9]) -> Option<u8> {
        let sum: u32 = first_nine
            .iter()
            .zip((2..=10).rev())
            .map(|(digit, weight)| u32::from(digit - b'0') * weight)
            .sum();
        match 11 - (sum % 11) {
            11 => Some(0),
            10 => None,
            check => Some(check as u8),
        }
    }

    /// The display form, "943 476 5919".
    pub fn formatted(&self) -> String {
        format!("{} {} {}", &self.0[..3], &self.0[3..6], &self.0[6..])
    }
}

impl fmt::Debug for NhsNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NhsNumber(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepts_a_valid_number_with_or_without_spaces() {
        let plain = NhsNumber::parse("9434765919").unwrap();
        let spaced = NhsNumber::parse("943 476 5919").unwrap();
        assert_eq!(plain, spaced);
        assert_eq!(plain.as_str(), "9434765919");
        assert_eq!(plain.formatted(), "943 476 5919");
    }

    #[test]
    fn rejects_a_wrong_check_digit_and_bad_shapes() {
        assert_eq!(
            NhsNumber::parse("9434765918").unwrap_err().rule,
            "fails its check digit"
        );
        for bad in ["", "943476591", "94347659190", "943-476-5919", "94347659a9"] {
            assert_eq!(NhsNumber::parse(bad).unwrap_err().rule, "must be 10 digits");
        }
    }

    #[test]
    fn rejects_numbers_whose_check_value_is_ten() {
        // A nine-digit prefix whose check value is 10: no final digit makes it valid.
        let nine = (0..1_000_000_000u64)
            .step_by(7_919)
            .map(|n| format!("{n:09}"))
            .find(|s| NhsNumber::check_digit(s.as_bytes().try_into().unwrap()).is_none())
            .expect("some prefix has check value 10");
        for last in 0..=9 {
            let candidate = format!("{nine}{last}");
            assert_eq!(
                NhsNumber::parse(&candidate).unwrap_err().rule,
                "has no valid check digit"
            );
        }
    }

    #[test]
    fn debug_never_shows_the_number() {
        let n = NhsNumber::parse("9434765919").unwrap();
        assert!(!format!("{n:?}").contains("943"));
    }

    proptest! {
        #[test]
        fn every_prefix_with_its_check_digit_parses(first in "[0-9]{9}") {
            let prefix: [u8; 9] = first.as_bytes().try_into().unwrap();
            match NhsNumber::check_digit(&prefix) {
                Some(check) => {
                    let number = format!("{first}{check}");
                    let parsed = NhsNumber::parse(&number).unwrap();
                    prop_assert_eq!(parsed.as_str(), number.as_str());
                    let spaced = parsed.formatted();
                    prop_assert_eq!(NhsNumber::parse(&spaced).unwrap(), parsed);
                }
                None => {
                    let candidate = format!("{first}0");
                    prop_assert!(NhsNumber::parse(&candidate).is_err());
                }
            }
        }

        #[test]
        fn exactly_one_final_digit_is_accepted(first in "[0-9]{9}") {
            let accepted = (0..=9)
                .filter(|d| NhsNumber::parse(&format!("{first}{d}")).is_ok())
                .count();
            let prefix: [u8; 9] = first.as_bytes().try_into().unwrap();
            prop_assert_eq!(accepted, usize::from(NhsNumber::check_digit(&prefix).is_some()));
        }

        #[test]
        fn arbitrary_strings_never_panic(s in "\\PC{0,20}") {
            let _ = NhsNumber::parse(&s);
        }
    }
}
