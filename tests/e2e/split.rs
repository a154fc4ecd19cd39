//! The three services as separate processes, each with its own PostgreSQL
//! database, talking to the Kafka-protocol broker — the split deployment.

use crate::journey::{System, one_release_through_every_service};
use std::process::{Command, Stdio};
use std::time::Duration;
use throughcare_e2e::{Process, binary, wait_for, who_am_i};
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
async fn each_service_runs_on_its_own_and_one_release_goes_through_all_three() {
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
        ),
    )
    .unwrap();
    let prefix = format!("{}.", unique("split"));
    let key = Secret::generate(32);

    let mut running = Vec::new();
    for service in ["referrals", "sharing", "indicators"] {
        let port = free_port();
        let mut command = Command::new(binary(&format!("throughcare-{service}")));
        if service == "indicators" {
            // Publish the journey's month soon after it settles.
            command
                .env("THROUGHCARE_PUBLICATION__CHECK_INTERVAL_MS", "250")
                .env("THROUGHCARE_PUBLICATION__SETTLE_MS", "1000");
        }
        let process = Process::spawn(
            service,
            command
                .arg("--config")
                .arg(&config)
                .env("THROUGHCARE_GRPC__LISTEN", format!("127.0.0.1:{port}"))
                .env("THROUGHCARE_DATABASE__URL", fresh_postgres().await)
                .env("THROUGHCARE_BUS__KIND", "kafka")
                .env("THROUGHCARE_BUS__BROKERS", &brokers)
                .env("THROUGHCARE_BUS__TOPIC_PREFIX", &prefix)
                .env("THROUGHCARE_PSEUDONYM_KEY", key.expose())
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(dir.path().join(format!("{service}.log"))).unwrap()),
        );
        running.push((process, format!("http://127.0.0.1:{port}")));
    }
    for (process, endpoint) in &mut running {
        let log = dir.path().join(format!("{}.log", process.name));
        wait_for(
            process,
            endpoint,
            "throughcare.identity.v1.IdentityService",
            &log,
        )
        .await;
        let me = who_am_i(endpoint, TOKEN)
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", process.name));
        assert_eq!(me, ("NHSE-HJ".to_owned(), "auditor".to_owned()));
    }
    // The same journey the embedded mode's test drives.
    let token = |organisation: &str, role: &str| format!("e2e-token-{organisation}-{role}");
    one_release_through_every_service(
        &System {
            referrals: &running[0].1,
            sharing: &running[1].1,
            indicators: &running[2].1,
            token: &token,
        },
        1,
    )
    .await;
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
