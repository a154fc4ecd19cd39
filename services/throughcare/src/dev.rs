//! `throughcare dev`: the embedded mode. All three services in one process,
//! each on its own SQLite file, sharing one durable in-process bus, all in a
//! local data directory. Restarting keeps the data, the pseudonym key and the
//! development tokens.

use crate::dev_registry;
use anyhow::Context;
use serde::{Deserialize, Serialize};
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use throughcare_platform::bus::Bus;
use throughcare_platform::bus::in_process::InProcessBus;
use throughcare_platform::config::{
    BusBackend, BusConfig, DatabaseConfig, GrpcConfig, PlatformConfig, Secret,
};
use throughcare_platform::identity::{AuthConfig, TokenConfig};
use throughcare_platform::sealing::SealingConfig;
use throughcare_platform::service::{RunError, Runtime, ServiceConfig};
use throughcare_platform::telemetry::{TelemetryConfig, init_telemetry};
use tokio::net::TcpListener;

#[derive(Debug, clap::Args)]
pub(crate) struct DevArgs {
    /// First of three consecutive ports (referrals, sharing, indicators); 0 picks free ports.
    #[arg(long, default_value_t = 50051)]
    port_base: u16,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    host: IpAddr,
}

/// The development secrets, kept in the data directory so restarts keep them.
#[derive(Debug, Serialize, Deserialize)]
struct DevSecrets {
    pseudonym_key: Secret,
    /// Seals health records for the sharing service (both services hold it).
    #[serde(default)]
    sealing: SealingConfig,
    /// Seals health records at rest in the sharing service's database.
    #[serde(default)]
    at_rest: SealingConfig,
    /// Signs the sharing service's audit checkpoints.
    #[serde(default)]
    audit_signing_key: Secret,
    tokens: Vec<TokenConfig>,
}

impl DevSecrets {
    fn load_or_create(path: &Path) -> anyhow::Result<Self> {
        let mut secrets = match std::fs::read_to_string(path) {
            Ok(text) => {
                toml::from_str(&text).with_context(|| format!("reading {}", path.display()))?
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => DevSecrets {
                pseudonym_key: Secret::generate(32),
                sealing: SealingConfig::default(),
                at_rest: SealingConfig::default(),
                audit_signing_key: Secret::default(),
                tokens: Vec::new(),
            },
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        let mut changed = false;
        let fresh = || SealingConfig {
            current: "dev-1".to_owned(),
            keys: [("dev-1".to_owned(), Secret::generate(32))].into(),
        };
        if secrets.sealing.keys.is_empty() {
            secrets.sealing = fresh();
            changed = true;
        }
        if secrets.at_rest.keys.is_empty() {
            secrets.at_rest = fresh();
            changed = true;
        }
        if secrets.audit_signing_key.expose().is_empty() {
            secrets.audit_signing_key = Secret::generate(32);
            changed = true;
        }
        let before = secrets.tokens.len();
        for organisation in dev_registry::organisations() {
            for role in dev_registry::roles_for(organisation.kind) {
                let has = secrets
                    .tokens
                    .iter()
                    .any(|t| t.organisation == organisation.code && t.role == *role);
                if !has {
                    secrets.tokens.push(TokenConfig {
                        token: Secret::generate(24),
                        organisation: organisation.code.clone(),
                        role: *role,
                    });
                }
            }
        }
        if changed || secrets.tokens.len() != before || !path.exists() {
            write_private(path, &toml::to_string(&secrets)?)?;
        }
        Ok(secrets)
    }
}

fn write_private(path: &Path, contents: &str) -> anyhow::Result<()> {
    std::fs::write(path, contents).with_context(|| format!("writing {}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(())
}

/// Runs the embedded mode with its SQLite files, bus log and development
/// secrets in `data_dir` (the global `--data-dir`).
pub(crate) async fn run(args: DevArgs, data_dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("creating data directory {}", data_dir.display()))?;
    let data_dir = std::fs::canonicalize(data_dir)?;
    let secrets = DevSecrets::load_or_create(&data_dir.join("dev-secrets.toml"))?;
    let telemetry = init_telemetry("throughcare", &TelemetryConfig::default())?;
    let metrics = telemetry.metrics();
    let shutdown = throughcare_platform::shutdown::on_signals();

    let bus_path = data_dir.join("bus.db");
    let bus = InProcessBus::open(Some(&bus_path), metrics.clone()).await?;
    let runtime = Runtime {
        shared_bus: Some(Bus::in_process(bus, "")),
        ..Runtime::new(shutdown, metrics)
    };
    let listeners = bind(&args).await?;
    let addresses: Vec<SocketAddr> = listeners
        .iter()
        .map(|l| l.local_addr())
        .collect::<Result<_, _>>()?;
    print_banner(&data_dir, &addresses, &secrets);

    let embedded = Embedded {
        host: args.host,
        data_dir: &data_dir,
        bus_path: &bus_path,
        secrets: &secrets,
    };
    let outcome = embedded.run(listeners, &runtime).await;
    drop(telemetry);
    outcome
}

/// The three listeners (referrals, sharing, indicators), on consecutive
/// ports from `--port-base`, or on free ports.
async fn bind(args: &DevArgs) -> anyhow::Result<[TcpListener; 3]> {
    let mut listeners = Vec::new();
    for offset in 0..3u16 {
        let port = if args.port_base == 0 {
            0
        } else {
            args.port_base + offset
        };
        let addr = SocketAddr::new(args.host, port);
        listeners.push(
            TcpListener::bind(addr)
                .await
                .with_context(|| format!("binding {addr}"))?,
        );
    }
    listeners
        .try_into()
        .map_err(|_| anyhow::anyhow!("expected three listeners"))
}

/// The three services of one embedded system.
struct Embedded<'a> {
    host: IpAddr,
    data_dir: &'a Path,
    bus_path: &'a Path,
    secrets: &'a DevSecrets,
}

impl Embedded<'_> {
    /// A service's platform configuration: its own SQLite file, the shared
    /// bus log, the development registry and tokens.
    fn platform(&self, service: &str) -> PlatformConfig {
        PlatformConfig {
            grpc: GrpcConfig {
                listen: SocketAddr::new(self.host, 0),
                tls: None,
                in_flight: Default::default(),
            },
            database: DatabaseConfig {
                url: Secret::new(format!(
                    "sqlite://{}",
                    self.data_dir.join(format!("{service}.db")).display()
                )),
                max_connections: 4,
            },
            bus: BusConfig {
                topic_prefix: String::new(),
                backend: BusBackend::InProcess {
                    path: Some(self.bus_path.to_owned()),
                },
            },
            auth: AuthConfig {
                organisations: dev_registry::organisations(),
                tokens: self.secrets.tokens.clone(),
            },
            telemetry: TelemetryConfig::default(),
            // Only the services that mint person keys hold the key.
            pseudonym_key: match service {
                "referrals" | "sharing" => self.secrets.pseudonym_key.clone(),
                _ => Secret::default(),
            },
        }
    }

    /// Runs the three libraries side by side until shutdown; one stopping
    /// (or failing to start) stops the others.
    async fn run(&self, listeners: [TcpListener; 3], runtime: &Runtime) -> anyhow::Result<()> {
        let [referrals_listener, sharing_listener, indicators_listener] = listeners;
        let stop_all = |result: Result<(), RunError>| {
            runtime.shutdown.cancel();
            result
        };
        let sealing = &self.secrets.sealing;
        let referrals = throughcare_referrals::Config {
            platform: self.platform("referrals"),
            sealing: sealing.clone(),
            ..throughcare_referrals::Config::defaults()
        };
        let sharing = throughcare_sharing::Config {
            platform: self.platform("sharing"),
            sealing: sealing.clone(),
            at_rest: self.secrets.at_rest.clone(),
            audit: throughcare_sharing::AuditConfig {
                signing_key: self.secrets.audit_signing_key.clone(),
                ..Default::default()
            },
            deliveries: Default::default(),
        };
        let indicators = throughcare_indicators::Config {
            platform: self.platform("indicators"),
            // Looked for often, so a demo's closed months appear soon after
            // its last record, rather than up to two minutes later.
            publication: throughcare_indicators::app::PublicationConfig {
                check_interval_ms: 5_000,
                settle_ms: 15_000,
                ..Default::default()
            },
        };
        let (referrals, sharing, indicators) = tokio::join!(
            async {
                let runtime = runtime.clone();
                stop_all(throughcare_referrals::run(referrals, referrals_listener, runtime).await)
            },
            async {
                let runtime = runtime.clone();
                stop_all(throughcare_sharing::run(sharing, sharing_listener, runtime).await)
            },
            async {
                let runtime = runtime.clone();
                stop_all(
                    throughcare_indicators::run(indicators, indicators_listener, runtime).await,
                )
            },
        );
        referrals.context("referrals")?;
        sharing.context("sharing")?;
        indicators.context("indicators")?;
        Ok(())
    }
}

fn print_banner(data_dir: &Path, addresses: &[SocketAddr], secrets: &DevSecrets) {
    println!(
        "Throughcare is running in embedded mode (SQLite and the in-process bus in {})",
        data_dir.display()
    );
    println!();
    for (name, addr) in ["referrals", "sharing", "indicators"].iter().zip(addresses) {
        println!("  {name:<11} http://{addr}");
    }
    println!();
    println!("Development tokens (send as `authorization: Bearer <token>`):");
    let organisations = dev_registry::organisations();
    for token in &secrets.tokens {
        let kind = organisations
            .iter()
            .find(|o| o.code == token.organisation)
            .map_or("?", |o| o.kind.as_str());
        println!(
            "  {:<10} {:<18} {:<13} {}",
            token.organisation,
            kind,
            token.role.as_str(),
            token.token.expose()
        );
    }
    println!();
    println!(
        "Stop with Ctrl-C; the data stays in {} for the next start.",
        data_dir.display()
    );
}
