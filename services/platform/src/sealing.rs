//! Sealing person-level records for the one service allowed to read them:
//! AES-256-GCM with a random 96-bit nonce per record and associated data that
//! binds the ciphertext to its record (so a sealed body cannot be moved to
//! another record). Keys carry ids so they can rotate: new records use the
//! current key, old ones open with the key they name.

use crate::config::Secret;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::fmt;

/// `current` names the key new records are sealed with; `keys` maps ids to
/// 32-byte keys in hex.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SealingConfig {
    #[serde(default)]
    pub current: String,
    #[serde(default)]
    pub keys: BTreeMap<String, Secret>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SealingError {
    #[error("sealing.current names key {0:?}, which is not in sealing.keys")]
    NoCurrentKey(String),
    #[error("sealing key {0:?} must be 32 bytes in hex (64 characters)")]
    BadKey(String),
    #[error("sealed with key {0:?}, which this service does not hold")]
    UnknownKey(String),
    #[error("sealed record fails authentication (wrong key, tampered, or moved)")]
    Unauthentic,
}

/// A sealed body with what is needed to open it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    pub key_id: String,
    pub nonce: Vec<u8>,
    pub ciphertext: Vec<u8>,
}

pub struct Keyring {
    current: String,
    keys: HashMap<String, LessSafeKey>,
    random: SystemRandom,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field("current", &self.current)
            .field("keys", &self.keys.len())
            .finish()
    }
}

impl Keyring {
    pub fn new(config: &SealingConfig) -> Result<Self, SealingError> {
        let mut keys = HashMap::new();
        for (id, secret) in &config.keys {
            let bytes =
                hex::decode(secret.expose()).map_err(|_| SealingError::BadKey(id.clone()))?;
            let key = UnboundKey::new(&AES_256_GCM, &bytes)
                .map_err(|_| SealingError::BadKey(id.clone()))?;
            keys.insert(id.clone(), LessSafeKey::new(key));
        }
        if !keys.contains_key(&config.current) {
            return Err(SealingError::NoCurrentKey(config.current.clone()));
        }
        Ok(Self {
            current: config.current.clone(),
            keys,
            random: SystemRandom::new(),
        })
    }

    /// Seals `plaintext` with the current key, bound to `associated`.
    pub fn seal(&self, plaintext: &[u8], associated: &[u8]) -> Sealed {
        let mut nonce = [0u8; NONCE_LEN];
        self.random
            .fill(&mut nonce)
            .expect("the system random source works");
        let mut buffer = plaintext.to_vec();
        self.keys[&self.current]
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(associated),
                &mut buffer,
            )
            .expect("sealing cannot fail for in-memory buffers");
        Sealed {
            key_id: self.current.clone(),
            nonce: nonce.to_vec(),
            ciphertext: buffer,
        }
    }

    /// Opens a sealed body, checking it was sealed for `associated`.
    pub fn open(&self, sealed: &Sealed, associated: &[u8]) -> Result<Vec<u8>, SealingError> {
        let key = self
            .keys
            .get(&sealed.key_id)
            .ok_or_else(|| SealingError::UnknownKey(sealed.key_id.clone()))?;
        let nonce = Nonce::try_assume_unique_for_key(&sealed.nonce)
            .map_err(|_| SealingError::Unauthentic)?;
        let mut buffer = sealed.ciphertext.clone();
        let plaintext = key
            .open_in_place(nonce, Aad::from(associated), &mut buffer)
            .map_err(|_| SealingError::Unauthentic)?;
        Ok(plaintext.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(current: &str, ids: &[&str]) -> SealingConfig {
        SealingConfig {
            current: current.into(),
            keys: ids
                .iter()
                .map(|id| (id.to_string(), Secret::generate(32)))
                .collect(),
        }
    }

    #[test]
    fn seals_and_opens_and_refuses_tampering_or_moving() {
        let ring = Keyring::new(&config("k1", &["k1"])).unwrap();
        let sealed = ring.seal(b"on opioid substitution therapy", b"record-1");
        assert_ne!(sealed.ciphertext, b"on opioid substitution therapy");
        assert_eq!(
            ring.open(&sealed, b"record-1").unwrap(),
            b"on opioid substitution therapy"
        );
        assert_eq!(
            ring.open(&sealed, b"record-2"),
            Err(SealingError::Unauthentic)
        );
        let mut tampered = sealed.clone();
        tampered.ciphertext[0] ^= 1;
        assert_eq!(
            ring.open(&tampered, b"record-1"),
            Err(SealingError::Unauthentic)
        );
        assert_ne!(ring.seal(b"x", b"a").nonce, ring.seal(b"x", b"a").nonce);
    }

    #[test]
    fn keys_rotate_and_unknown_keys_are_named() {
        let mut old = config("k1", &["k1"]);
        let sealed_before = Keyring::new(&old).unwrap().seal(b"x", b"a");
        old.keys.insert("k2".into(), Secret::generate(32));
        old.current = "k2".into();
        let rotated = Keyring::new(&old).unwrap();
        assert_eq!(rotated.open(&sealed_before, b"a").unwrap(), b"x");
        assert_eq!(rotated.seal(b"y", b"a").key_id, "k2");
        let stranger = Keyring::new(&config("k9", &["k9"])).unwrap();
        assert_eq!(
            stranger.open(&sealed_before, b"a"),
            Err(SealingError::UnknownKey("k1".into()))
        );
    }

    #[test]
    fn configuration_mistakes_are_reported() {
        assert!(matches!(
            Keyring::new(&config("k2", &["k1"])),
            Err(SealingError::NoCurrentKey(_))
        ));
        let mut short = config("k1", &[]);
        short.keys.insert("k1".into(), Secret::new("abcd"));
        assert!(matches!(Keyring::new(&short), Err(SealingError::BadKey(_))));
    }
}
