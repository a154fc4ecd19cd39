//! Configuration: defaults, then a TOML file, then `THROUGHCARE_` environment
//! variables (nested keys split on `__`, e.g. `THROUGHCARE_DATABASE__URL`).
//!
//! Each service's config embeds [`PlatformConfig`] (flattened) and adds its own
//! sections. Nothing here is global: `run` receives the loaded value.

use crate::identifiers::{PseudonymKey, PseudonymKeyError};
use crate::identity::AuthConfig;
pub use crate::secret::Secret;
use crate::telemetry::TelemetryConfig;
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// What every service needs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PlatformConfig {
    pub grpc: GrpcConfig,
    pub database: DatabaseConfig,
    pub bus: BusConfig,
    #[serde(default)]
    pub auth: AuthConfig,
    #[serde(default)]
    pub telemetry: TelemetryConfig,
    /// HMAC key for pseudonymous person keys, hex, at least 32 bytes. Only
    /// the services that mint person keys (referrals, sharing) hold it, and
    /// they must share it so person keys agree; whoever holds it can
    /// re-identify every pseudonymous record, so the indicators service
    /// refuses to start with one.
    #[serde(default)]
    pub pseudonym_key: Secret,
}

impl PlatformConfig {
    /// The pseudonym key, for a service that mints person keys.
    pub fn pseudonym_key(&self) -> Result<PseudonymKey, PseudonymKeyError> {
        PseudonymKey::from_hex(self.pseudonym_key.expose())
    }

    /// Whether a pseudonym key was given at all.
    pub fn holds_pseudonym_key(&self) -> bool {
        !self.pseudonym_key.expose().is_empty()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GrpcConfig {
    pub listen: SocketAddr,
    /// Mutual TLS. When absent the server speaks plaintext and only bearer
    /// tokens authenticate (embedded mode, tests).
    #[serde(default)]
    pub tls: Option<TlsConfig>,
    /// Calls in flight beyond these are refused at once, with a retry hint.
    #[serde(default)]
    pub in_flight: InFlightLimits,
}

/// How many calls may be in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct InFlightLimits {
    /// For one caller organisation.
    #[serde(default = "default_per_organisation")]
    pub per_organisation: usize,
    /// For the service as a whole.
    #[serde(default = "default_total")]
    pub total: usize,
}

fn default_per_organisation() -> usize {
    64
}

fn default_total() -> usize {
    256
}

impl Default for InFlightLimits {
    fn default() -> Self {
        Self {
            per_organisation: default_per_organisation(),
            total: default_total(),
        }
    }
}

/// PEM files for mutual TLS.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TlsConfig {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// The CA that signs client certificates.
    pub client_ca: PathBuf,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DatabaseConfig {
    /// `postgres://...` or `sqlite://path/to/file.db`.
    pub url: Secret,
    #[serde(default = "default_max_connections")]
    pub max_connections: u32,
}

impl PlatformConfig {
    /// Defaults for a service deployed on its own: PostgreSQL database
    /// `throughcare_{service}` on localhost, Kafka on localhost:9092, no TLS, no
    /// organisations or tokens, and no pseudonym key (start-up refuses to run
    /// without one; set `THROUGHCARE_PSEUDONYM_KEY`).
    pub fn defaults(service: &str, port: u16) -> Self {
        Self {
            grpc: GrpcConfig {
                listen: std::net::SocketAddr::from(([127, 0, 0, 1], port)),
                tls: None,
                in_flight: Default::default(),
            },
            database: DatabaseConfig {
                url: Secret::new(format!(
                    "postgres://postgres@127.0.0.1:5432/throughcare_{service}"
                )),
                max_connections: default_max_connections(),
            },
            bus: BusConfig {
                topic_prefix: String::new(),
                backend: BusBackend::Kafka(KafkaConfig {
                    brokers: "127.0.0.1:9092".to_owned(),
                    partitions: default_partitions(),
                    replication_factor: default_replication(),
                    properties: BTreeMap::new(),
                    instance_id: None,
                }),
            },
            auth: AuthConfig::default(),
            telemetry: TelemetryConfig::default(),
            pseudonym_key: Secret::new(""),
        }
    }
}

fn default_max_connections() -> u32 {
    16
}

/// Which bus to use, plus what both share.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BusConfig {
    /// Prepended to every topic name (isolates tests and tenants on one broker).
    #[serde(default)]
    pub topic_prefix: String,
    #[serde(flatten)]
    pub backend: BusBackend,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum BusBackend {
    Kafka(KafkaConfig),
    /// The embedded bus: a durable log in a SQLite file (or memory when no path).
    InProcess {
        #[serde(default)]
        path: Option<PathBuf>,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KafkaConfig {
    /// `host:port,host:port`.
    pub brokers: String,
    #[serde(default = "default_partitions")]
    pub partitions: i32,
    #[serde(default = "default_replication")]
    pub replication_factor: i32,
    /// Extra librdkafka properties (e.g. `security.protocol`), applied last.
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
    /// This replica's stable name within its deployment (e.g. a StatefulSet
    /// ordinal, or `1` for a single replica): its consumers join their groups
    /// as static members (`group.instance.id`), so after a crash the restarted
    /// process takes its partitions straight back. Two live replicas must
    /// never share one. Unset: dynamic membership.
    #[serde(default, deserialize_with = "text_or_number")]
    pub instance_id: Option<String>,
}

/// A name that may be written as a number (`THROUGHCARE_BUS__INSTANCE_ID=1`
/// arrives as one).
fn text_or_number<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Name {
        Text(String),
        Number(u64),
    }
    Ok(
        Option::<Name>::deserialize(deserializer)?.map(|name| match name {
            Name::Text(text) => text,
            Name::Number(number) => number.to_string(),
        }),
    )
}

fn default_partitions() -> i32 {
    6
}

fn default_replication() -> i32 {
    1
}

/// Loads `T` from `defaults`, then `file` (if given), then the environment.
pub fn load<T: Serialize + DeserializeOwned>(
    defaults: &T,
    file: Option<&Path>,
) -> Result<T, Box<figment::Error>> {
    let mut figment = Figment::from(Serialized::defaults(defaults));
    if let Some(file) = file {
        figment = figment.merge(Toml::file_exact(file));
    }
    figment
        .merge(Env::prefixed("THROUGHCARE_").split("__"))
        .extract()
        .map_err(Box::new)
}

/// The flags every service binary takes.
#[derive(Debug, Clone, clap::Args)]
pub struct CommonArgs {
    /// A TOML configuration file; `THROUGHCARE_*` environment variables override it.
    #[arg(long, env = "THROUGHCARE_CONFIG")]
    pub config: Option<PathBuf>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defaults() -> PlatformConfig {
        PlatformConfig {
            grpc: GrpcConfig {
                listen: "127.0.0.1:50051".parse().unwrap(),
                tls: None,
                in_flight: Default::default(),
            },
            database: DatabaseConfig {
                url: Secret::new("sqlite://x.db"),
                max_connections: 4,
            },
            bus: BusConfig {
                topic_prefix: String::new(),
                backend: BusBackend::InProcess { path: None },
            },
            auth: AuthConfig::default(),
            telemetry: TelemetryConfig::default(),
            pseudonym_key: Secret::new("00"),
        }
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment's Jail fixes the closure's error type
    fn file_then_environment_override_defaults() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "svc.toml",
                r#"
                [bus]
                kind = "kafka"
                brokers = "file:9092"
                [[auth.organisations]]
                code = "LEI"
                name = "HMP Leicester healthcare"
                kind = "prison_healthcare"
                "#,
            )?;
            jail.set_env("THROUGHCARE_BUS__BROKERS", "env:9092");
            jail.set_env("THROUGHCARE_DATABASE__MAX_CONNECTIONS", "9");
            jail.set_env("THROUGHCARE_BUS__INSTANCE_ID", "1");
            let loaded = load(&defaults(), Some(Path::new("svc.toml"))).map_err(|e| *e)?;
            match loaded.bus.backend {
                BusBackend::Kafka(k) => {
                    assert_eq!(k.brokers, "env:9092");
                    assert_eq!(k.partitions, 6);
                    assert_eq!(k.instance_id.as_deref(), Some("1"), "a number is a name");
                }
                other => panic!("expected kafka, got {other:?}"),
            }
            assert_eq!(loaded.database.max_connections, 9);
            assert_eq!(loaded.auth.organisations[0].code, "LEI");
            Ok(())
        });
    }

    #[test]
    fn secrets_do_not_print() {
        let config = defaults();
        assert!(!format!("{config:?}").contains("sqlite://x.db"));
    }
}
