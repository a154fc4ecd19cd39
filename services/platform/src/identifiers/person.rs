use super::{Crn, IdentifierError, NhsNumber, PrisonNumber};
use crate::validation::FieldViolation;
use ring::hmac;
use std::fmt;
use throughcare_proto::types::v1 as pb;

/// The identifiers one person is known by; at least one is present.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct PersonIds {
    nhs_number: Option<NhsNumber>,
    prison_number: Option<PrisonNumber>,
    crn: Option<Crn>,
}

impl PersonIds {
    pub fn new(
        nhs_number: Option<NhsNumber>,
        prison_number: Option<PrisonNumber>,
        crn: Option<Crn>,
    ) -> Result<Self, IdentifierError> {
        if nhs_number.is_none() && prison_number.is_none() && crn.is_none() {
            return Err(IdentifierError::new(
                "person",
                "needs at least one of nhs_number, prison_number or crn",
            ));
        }
        Ok(Self {
            nhs_number,
            prison_number,
            crn,
        })
    }

    /// Validates the wire form, naming the offending field (relative to the
    /// identifiers message) in the violation.
    pub fn from_proto(ids: &pb::PersonIdentifiers) -> Result<Self, FieldViolation> {
        fn optional<T>(
            value: &str,
            field: &str,
            parse: impl Fn(&str) -> Result<T, IdentifierError>,
        ) -> Result<Option<T>, FieldViolation> {
            if value.is_empty() {
                return Ok(None);
            }
            parse(value)
                .map(Some)
                .map_err(|e| FieldViolation::new(field, e.to_string()))
        }
        let nhs_number = optional(&ids.nhs_number, "nhs_number", NhsNumber::parse)?;
        let prison_number = optional(&ids.prison_number, "prison_number", PrisonNumber::parse)?;
        let crn = optional(&ids.crn, "crn", Crn::parse)?;
        Self::new(nhs_number, prison_number, crn)
            .map_err(|e| FieldViolation::new("", e.to_string()))
    }

    pub fn to_proto(&self) -> pb::PersonIdentifiers {
        pb::PersonIdentifiers {
            nhs_number: self
                .nhs_number
                .as_ref()
                .map(|n| n.as_str().to_owned())
                .unwrap_or_default(),
            prison_number: self
                .prison_number
                .as_ref()
                .map(|n| n.as_str().to_owned())
                .unwrap_or_default(),
            crn: self
                .crn
                .as_ref()
                .map(|n| n.as_str().to_owned())
                .unwrap_or_default(),
        }
    }

    /// The identifiers as a store's three columns: NHS number, prison
    /// number, CRN, in the order [`choose`](Self::choose) ranks them.
    pub fn columns(&self) -> [Option<&str>; 3] {
        [
            self.nhs_number.as_ref().map(|n| n.as_str()),
            self.prison_number.as_ref().map(|n| n.as_str()),
            self.crn.as_ref().map(|n| n.as_str()),
        ]
    }

    /// The person rule, in one place: of the stored people that share any of
    /// these identifiers (each given with the [`columns`](Self::columns) it
    /// holds), these identifiers name the one with the same NHS number, else
    /// the same prison number, else the same CRN. Stores fetch the candidates;
    /// only this decides between them.
    pub fn choose<T>(&self, candidates: Vec<(T, [Option<String>; 3])>) -> Option<T> {
        let wanted = self.columns();
        let rank = |held: &[Option<String>; 3]| {
            (0..3).find(|&i| wanted[i].is_some() && held[i].as_deref() == wanted[i])
        };
        candidates
            .into_iter()
            .filter_map(|(candidate, held)| rank(&held).map(|r| (r, candidate)))
            .min_by_key(|(r, _)| *r)
            .map(|(_, candidate)| candidate)
    }

    pub fn nhs_number(&self) -> Option<&NhsNumber> {
        self.nhs_number.as_ref()
    }

    pub fn prison_number(&self) -> Option<&PrisonNumber> {
        self.prison_number.as_ref()
    }

    pub fn crn(&self) -> Option<&Crn> {
        self.crn.as_ref()
    }

    /// Each identifier held, strongest first, as a domain-separated string
    /// for keying: NHS number, prison number, CRN.
    fn tagged(&self) -> impl Iterator<Item = String> + '_ {
        let [nhs, noms, crn] = self.columns();
        [("nhs", nhs), ("noms", noms), ("crn", crn)]
            .into_iter()
            .filter_map(|(tag, value)| Some(format!("{tag}:{}", value?)))
    }

    /// The strongest identifier, tagged for keying.
    fn strongest(&self) -> String {
        self.tagged()
            .next()
            .expect("PersonIds always holds one identifier")
    }
}

/// The secret key for pseudonyms: HMAC-SHA256, at least 32 bytes, from config.
#[derive(Clone)]
pub struct PseudonymKey(hmac::Key);

#[derive(Debug, thiserror::Error)]
pub enum PseudonymKeyError {
    #[error("pseudonym_key (THROUGHCARE_PSEUDONYM_KEY) must be hex")]
    NotHex,
    #[error(
        "pseudonym_key (THROUGHCARE_PSEUDONYM_KEY) must be at least 32 bytes (64 hex characters)"
    )]
    TooShort,
}

impl PseudonymKey {
    pub fn from_hex(hex_key: &str) -> Result<Self, PseudonymKeyError> {
        let bytes = hex::decode(hex_key.trim()).map_err(|_| PseudonymKeyError::NotHex)?;
        if bytes.len() < 32 {
            return Err(PseudonymKeyError::TooShort);
        }
        Ok(Self(hmac::Key::new(hmac::HMAC_SHA256, &bytes)))
    }

    /// The pseudonymous key of a person: a keyed HMAC of their strongest
    /// identifier. Stable for as long as the key and that identifier are.
    pub fn person_key(&self, person: &PersonIds) -> PersonKey {
        PersonKey(self.derive("person", &person.strongest()))
    }

    /// The key a first sighting by each of these identifiers alone would get,
    /// strongest first: every key any service can have minted for a subset of
    /// them is one of these.
    pub fn sighting_keys(&self, person: &PersonIds) -> Vec<PersonKey> {
        person
            .tagged()
            .map(|tagged| PersonKey(self.derive("person", &tagged)))
            .collect()
    }

    /// The pseudonymous key of an episode — a release, an assessment, a
    /// referral — that every service derives alike, so observations about one
    /// episode from different services meet (and one retraction withdraws
    /// them all).
    pub fn episode_key(&self, kind: &str, id: &str) -> String {
        self.derive(&format!("episode:{kind}"), id)
    }

    /// A pseudonym for any other value (an episode, a release) in a named domain,
    /// so pseudonyms from different domains never collide.
    pub fn derive(&self, domain: &str, value: &str) -> String {
        let tag = hmac::sign(&self.0, format!("{domain}\u{1f}{value}").as_bytes());
        hex::encode(&tag.as_ref()[..16])
    }
}

impl fmt::Debug for PseudonymKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PseudonymKey(<secret>)")
    }
}

/// A pseudonymous person key: 32 hex characters (128 bits of HMAC-SHA256).
/// Used as the Kafka record key and in every aggregate-bound event.
#[derive(Clone, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub struct PersonKey(String);

impl PersonKey {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Accepts a key read back from storage or an event.
    pub fn parse(value: &str) -> Result<Self, IdentifierError> {
        if value.len() == 32
            && value
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        {
            Ok(Self(value.to_owned()))
        } else {
            Err(IdentifierError::new(
                "person key",
                "must be 32 lowercase hex characters",
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> PseudonymKey {
        PseudonymKey::from_hex(&hex::encode([byte; 32])).unwrap()
    }

    fn ids(nhs: Option<&str>, noms: Option<&str>, crn: Option<&str>) -> PersonIds {
        PersonIds::new(
            nhs.map(|n| NhsNumber::parse(n).unwrap()),
            noms.map(|n| PrisonNumber::parse(n).unwrap()),
            crn.map(|n| Crn::parse(n).unwrap()),
        )
        .unwrap()
    }

    #[test]
    fn the_nhs_number_names_a_person_before_the_prison_number_and_the_crn() {
        let held = |n: Option<&str>, p: Option<&str>, c: Option<&str>| {
            [n, p, c].map(|v| v.map(str::to_owned))
        };
        let ids = ids(Some("9434765919"), Some("A1234BC"), Some("X123456"));
        let by_crn = ("by-crn", held(None, None, Some("X123456")));
        let by_prison = ("by-prison", held(None, Some("A1234BC"), None));
        let by_nhs = ("by-nhs", held(Some("9434765919"), None, None));
        assert_eq!(
            ids.choose(vec![by_crn.clone(), by_prison.clone(), by_nhs]),
            Some("by-nhs")
        );
        assert_eq!(
            ids.choose(vec![by_crn.clone(), by_prison]),
            Some("by-prison")
        );
        assert_eq!(ids.choose(vec![by_crn]), Some("by-crn"));
        let unrelated = ("other", held(Some("4010232137"), None, None));
        assert_eq!(ids.choose(vec![unrelated]), None);
    }

    #[test]
    fn the_strongest_identifier_decides_the_key() {
        let k = key(7);
        let with_nhs = ids(Some("9434765919"), Some("A1234BC"), None);
        let nhs_only = ids(Some("943 476 5919"), None, Some("X123456"));
        assert_eq!(k.person_key(&with_nhs), k.person_key(&nhs_only));
        let noms_only = ids(None, Some("A1234BC"), None);
        assert_ne!(k.person_key(&with_nhs), k.person_key(&noms_only));
        // Any subset's key is among the whole person's sighting keys.
        let sightings = k.sighting_keys(&with_nhs);
        assert_eq!(sightings.len(), 2);
        assert_eq!(sightings[0], k.person_key(&nhs_only));
        assert_eq!(sightings[1], k.person_key(&noms_only));
    }

    #[test]
    fn keys_depend_on_the_secret_and_are_well_formed() {
        let person = ids(None, None, Some("X123456"));
        let a = key(1).person_key(&person);
        let b = key(2).person_key(&person);
        assert_ne!(a, b);
        assert_eq!(PersonKey::parse(a.as_str()).unwrap(), a);
        assert!(!a.as_str().contains("123456"));
    }

    #[test]
    fn a_person_needs_an_identifier_and_bad_fields_are_named() {
        assert!(PersonIds::new(None, None, None).is_err());
        let wire = pb::PersonIdentifiers {
            nhs_number: "9434765919".into(),
            prison_number: "A12BC".into(),
            crn: String::new(),
        };
        assert_eq!(
            PersonIds::from_proto(&wire).unwrap_err().field,
            "prison_number"
        );
        let round = ids(Some("9434765919"), None, Some("X123456"));
        assert_eq!(PersonIds::from_proto(&round.to_proto()).unwrap(), round);
    }

    #[test]
    fn short_or_malformed_keys_are_refused() {
        assert!(matches!(
            PseudonymKey::from_hex("abcd"),
            Err(PseudonymKeyError::TooShort)
        ));
        assert!(matches!(
            PseudonymKey::from_hex("zz"),
            Err(PseudonymKeyError::NotHex)
        ));
    }
}
