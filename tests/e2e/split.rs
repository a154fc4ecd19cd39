//! The three services as separate processes, each with its own PostgreSQL
//! database, talking to the Kafka-protocol broker — the split deployment.

use std::process::{Command, Stdio};
use std::time::Duration;
use throughcare_e2e::{Process, binary, wait_serving, who_am_i};
use throughcare_platform::config::Secret;
use throughcare_platform::testing::{KAFKA_ENV, fresh_postgres, unique};

const TOKEN: &str = "an-operator-token-for-e2e";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn each_service_runs_on_its_own_against_postgres_and_the_broker() {
    let brokers = std::env::var(KAFKA_ENV).expect("the broker address from tests/run.sh");
    let dir = tempfile::TempDir::new().unwrap();
    let config = dir.path().join("throughcare.toml");
    let sealing = Secret::generate(32);
    let sealing = sealing.expose();
    let at_rest = Secret::generate(32);
    let at_rest = at_rest.expose();
    std::fs::write(
        &config,
        format!(
            r#"
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

            [[auth.tokens]]
            token = "{TOKEN}"
            organisation = "NHSE-HJ"
            role = "auditor"
            "#
        ),
    )
    .unwrap();
    let prefix = format!("{}.", unique("split"));
    let key = Secret::generate(32);

    let mut running = Vec::new();
    for service in ["referrals", "sharing", "indicators"] {
        let port = free_port();
        let process = Process::spawn(
            service,
            Command::new(binary(&format!("throughcare-{service}")))
                .arg("--config")
                .arg(&config)
                .env("THROUGHCARE_GRPC__LISTEN", format!("127.0.0.1:{port}"))
                .env("THROUGHCARE_DATABASE__URL", fresh_postgres().await)
                .env("THROUGHCARE_BUS__KIND", "kafka")
                .env("THROUGHCARE_BUS__BROKERS", &brokers)
                .env("THROUGHCARE_BUS__TOPIC_PREFIX", &prefix)
                .env("THROUGHCARE_PSEUDONYM_KEY", key.expose())
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
        );
        running.push((process, format!("http://127.0.0.1:{port}")));
    }
    for (process, endpoint) in &running {
        wait_serving(
            endpoint,
            "throughcare.identity.v1.IdentityService",
            Duration::from_secs(60),
        )
        .await;
        let me = who_am_i(endpoint, TOKEN)
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", process.name));
        assert_eq!(me, ("NHSE-HJ".to_owned(), "auditor".to_owned()));
    }
    for (process, _) in running {
        let name = process.name.clone();
        let exit = process.terminate(Duration::from_secs(30)).await;
        assert!(exit.success(), "{name} exits 0 on SIGTERM, got {exit:?}");
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
