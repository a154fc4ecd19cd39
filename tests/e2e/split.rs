//! The three services as separate processes, each with its own PostgreSQL
//! database, talking to the Kafka-protocol broker — the split deployment.

use crate::journey::{System, one_release_through_every_service};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;
use tempfile::TempDir;
use throughcare_e2e::{Process, binary, wait_for, who_am_i};
use throughcare_platform::bus::Bus;
use throughcare_platform::config::Secret;
use throughcare_platform::config::{BusBackend, BusConfig, KafkaConfig};
use throughcare_platform::telemetry::Metrics;
use throughcare_platform::testing::{self, KAFKA_ENV, fresh_postgres, unique};
use throughcare_proto::topics;

pub(crate) const TOKEN: &str = "an-operator-token-for-e2e";

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One split deployment's shared settings: the configuration file (registry,
/// tokens, keys), the broker and topic prefix, the pseudonym key.
pub(crate) struct Split {
    dir: TempDir,
    config: PathBuf,
    brokers: String,
    prefix: String,
    key: Secret,
    /// Settings every service of this deployment is started with.
    env: Vec<(String, String)>,
}

/// One service process of a split deployment.
pub(crate) struct Running {
    pub(crate) process: Process,
    pub(crate) endpoint: String,
    service: &'static str,
    pub(crate) database: String,
    port: u16,
}

impl Running {
    /// SIGKILL: the process gets no chance to leave its consumer groups.
    pub(crate) fn kill(&mut self) {
        let child = self.process.child();
        child.kill().expect("kill");
        child.wait().expect("reap");
    }
}

impl Split {
    /// The deployment's bus, to read what its services published.
    pub(crate) async fn bus(&self) -> Bus {
        let kafka = KafkaConfig {
            brokers: self.brokers.clone(),
            ..testing::kafka_config()
        };
        let config = BusConfig {
            topic_prefix: self.prefix.clone(),
            backend: BusBackend::Kafka(kafka),
        };
        Bus::connect(&config, Metrics::disabled()).await.unwrap()
    }

    pub(crate) async fn new() -> Self {
        let brokers = std::env::var(KAFKA_ENV).expect("the broker address from tests/run.sh");
        Self::with_brokers(brokers)
    }

    /// A deployment on the broker at `brokers` rather than the suite's own.
    pub(crate) fn with_brokers(brokers: String) -> Self {
        let dir = TempDir::new().unwrap();
        let config = dir.path().join("throughcare.toml");
        std::fs::write(&config, config_file()).unwrap();
        Self {
            dir,
            config,
            brokers,
            prefix: format!("{}.", unique("split")),
            key: Secret::generate(32),
            env: Vec::new(),
        }
    }

    /// Starts every service with `name` set to `value` as well.
    pub(crate) fn with_env(mut self, name: &str, value: &str) -> Self {
        self.env.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Starts `service` on a fresh database and waits until it serves.
    pub(crate) async fn start(&self, service: &'static str) -> Running {
        self.spawn(service, fresh_postgres().await).await
    }

    /// Starts a stopped service again on its own database and address, as
    /// its callers know it.
    pub(crate) async fn restart(&self, stopped: Running) -> Running {
        let Running {
            process,
            service,
            database,
            port,
            ..
        } = stopped;
        drop(process);
        self.spawn_at(service, database, port).await
    }

    /// Starts `service` again on `database` (after it was stopped).
    pub(crate) async fn spawn(&self, service: &'static str, database: String) -> Running {
        self.spawn_at(service, database, free_port()).await
    }

    /// Starts `service` on `database`, serving on `port`.
    pub(crate) async fn spawn_at(
        &self,
        service: &'static str,
        database: String,
        port: u16,
    ) -> Running {
        let mut command = Command::new(binary(&format!("throughcare-{service}")));
        if service == "indicators" {
            // Publish the journey's month soon after it settles.
            command
                .env("THROUGHCARE_PUBLICATION__CHECK_INTERVAL_MS", "250")
                .env("THROUGHCARE_PUBLICATION__SETTLE_MS", "1000");
        }
        if service != "indicators" {
            // Only the services that mint person keys hold the key.
            command.env("THROUGHCARE_PSEUDONYM_KEY", self.key.expose());
        }
        let log = self.dir.path().join(format!("{service}-{port}.log"));
        let mut process = Process::spawn(
            service,
            command
                .arg("--config")
                .arg(&self.config)
                .env("THROUGHCARE_GRPC__LISTEN", format!("127.0.0.1:{port}"))
                .env("THROUGHCARE_DATABASE__URL", &database)
                .env("THROUGHCARE_BUS__KIND", "kafka")
                .env("THROUGHCARE_BUS__BROKERS", &self.brokers)
                .env("THROUGHCARE_BUS__TOPIC_PREFIX", &self.prefix)
                // One replica of each: it rejoins its groups as itself.
                .env("THROUGHCARE_BUS__INSTANCE_ID", "1")
                .envs(self.env.iter().map(|(k, v)| (k, v)))
                .stdout(Stdio::null())
                // Appended: a restart on the same port keeps what came before.
                .stderr(
                    std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(&log)
                        .unwrap(),
                ),
        );
        let endpoint = format!("http://127.0.0.1:{port}");
        wait_for(
            &mut process,
            &endpoint,
            "throughcare.identity.v1.IdentityService",
            &log,
        )
        .await;
        Running {
            process,
            endpoint,
            service,
            database,
            port,
        }
    }
}

fn config_file() -> String {
    let sealing = Secret::generate(32);
    let sealing = sealing.expose();
    let at_rest = Secret::generate(32);
    let at_rest = at_rest.expose();
    let audit = Secret::generate(32);
    let audit = audit.expose();
    format!(
        r#"
            [audit]
            signing_key = "{audit}"

            [sealing]
            current = "k1"
            keys = {{ k1 = "{sealing}" }}

            [at_rest]
            current = "r1"
            keys = {{ r1 = "{at_rest}" }}

            [[auth.organisations]]
            code = "NHSE-HJ"
            name = "NHS England Health and Justice"
            kind = "national"
            areas = [{{ type = "national", code = "ENG" }}]

            [[auth.organisations]]
            code = "LEI"
            name = "HMP Leicester healthcare"
            kind = "prison_healthcare"
            areas = [{{ type = "prison", code = "LEI" }}]

            [[auth.organisations]]
            code = "EMR-LEI"
            name = "Leicester probation delivery unit"
            kind = "probation"
            areas = [{{ type = "probation_delivery_unit", code = "EMR-LEI" }}, {{ type = "probation_region", code = "EMR" }}]

            [[auth.tokens]]
            token = "{TOKEN}"
            organisation = "NHSE-HJ"
            role = "auditor"

            [[auth.tokens]]
            token = "e2e-token-NHSE-HJ-analyst"
            organisation = "NHSE-HJ"
            role = "analyst"

            [[auth.tokens]]
            token = "e2e-token-LEI-system"
            organisation = "LEI"
            role = "system"

            [[auth.tokens]]
            token = "e2e-token-EMR-LEI-practitioner"
            organisation = "EMR-LEI"
            role = "practitioner"
            "#
    )
}

#[tokio::test]
async fn each_service_runs_on_its_own_and_one_release_goes_through_all_three() {
    let split = Split::new().await;
    let mut running = Vec::new();
    for service in ["referrals", "sharing", "indicators"] {
        running.push(split.start(service).await);
    }
    for service in &running {
        let me = who_am_i(&service.endpoint, TOKEN)
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", service.process.name));
        assert_eq!(me, ("NHSE-HJ".to_owned(), "auditor".to_owned()));
    }
    // The same journey the embedded mode's test drives.
    let token = |organisation: &str, role: &str| format!("e2e-token-{organisation}-{role}");
    one_release_through_every_service(
        &System {
            referrals: &running[0].endpoint,
            sharing: &running[1].endpoint,
            indicators: &running[2].endpoint,
            token: &token,
        },
        1,
    )
    .await;
    every_record_is_a_traced_cloud_event(&split).await;
    for service in running {
        let name = service.process.name.clone();
        let exit = service.process.terminate(Duration::from_secs(30)).await;
        assert!(exit.success(), "{name} exits 0 on SIGTERM, got {exit:?}");
    }
}

/// Every record on every topic of the deployment, whichever service produced
/// it, is a CloudEvent (binary mode headers, one `ce_source` scheme) carrying
/// a W3C trace context, as any client reading the topics may rely on.
async fn every_record_is_a_traced_cloud_event(split: &Split) {
    let bus = split.bus().await;
    for name in [
        topics::REFERRALS_EVENTS,
        topics::HEALTH_RECORDS,
        topics::OBSERVATIONS,
        topics::SHARING_EVENTS,
        topics::INDICATOR_SNAPSHOTS,
    ] {
        let mut replay = bus.replay(&bus.topic(name)).await.unwrap();
        let mut records = 0;
        while let Some(received) = replay.next().await.unwrap() {
            let record = received.record;
            let kind = record.header_str("ce_type").unwrap_or("?").to_owned();
            for header in [
                "ce_id",
                "ce_type",
                "ce_source",
                "ce_specversion",
                "ce_time",
                "content-type",
                "traceparent",
            ] {
                assert!(
                    record.header(header).is_some(),
                    "a {kind} record from {:?} on {name} has no {header}",
                    record.header_str("ce_source")
                );
            }
            let source = record.header_str("ce_source").unwrap_or_default();
            assert!(
                source.starts_with("/throughcare/"),
                "a {kind} record on {name} has ce_source {source}"
            );
            records += 1;
        }
        assert!(records > 0, "the journey put records on {name}");
    }
}

#[tokio::test]
async fn a_service_without_a_pseudonym_key_refuses_to_start() {
    // Everything else is configured, so the one missing setting is what stops it.
    let output = Command::new(binary("throughcare-referrals"))
        .env("THROUGHCARE_GRPC__LISTEN", "127.0.0.1:0")
        .env("THROUGHCARE_SEALING__CURRENT", "k1")
        .env(
            "THROUGHCARE_SEALING__KEYS__K1",
            Secret::generate(32).expose(),
        )
        .env("THROUGHCARE_PSEUDONYM_KEY", "")
        .output()
        .expect("run");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("THROUGHCARE_PSEUDONYM_KEY"),
        "the error names the setting: {stderr}"
    );
}

#[tokio::test]
async fn the_indicators_service_refuses_the_pseudonym_key() {
    // Whoever holds it can re-identify every observation on the topic.
    let output = Command::new(binary("throughcare-indicators"))
        .env("THROUGHCARE_GRPC__LISTEN", "127.0.0.1:0")
        .env("THROUGHCARE_PSEUDONYM_KEY", Secret::generate(32).expose())
        .output()
        .expect("run");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("must not be given THROUGHCARE_PSEUDONYM_KEY"),
        "the error says why: {stderr}"
    );
}
