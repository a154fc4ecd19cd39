//! A secret string (token, key, database password) that is never printed:
//! the lowest floor, so that configuration and identity can both hold one.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A secret string: `Debug` shows `<secret>`, never the value.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// A fresh random secret of `bytes` bytes, hex-encoded.
    pub fn generate(bytes: usize) -> Self {
        use ring::rand::{SecureRandom, SystemRandom};
        let mut buffer = vec![0u8; bytes];
        SystemRandom::new()
            .fill(&mut buffer)
            .expect("the system random source works");
        Self(hex::encode(buffer))
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<secret>")
    }
}
