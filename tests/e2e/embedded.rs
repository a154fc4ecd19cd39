//! `throughcare dev`: all three services in one process, no servers needed.

use crate::journey::{System, one_release_through_every_service};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;
use throughcare_e2e::{Process, binary, wait_serving, who_am_i};

const SERVICES: [(&str, &str); 3] = [
    ("referrals", "throughcare.identity.v1.IdentityService"),
    ("sharing", "throughcare.identity.v1.IdentityService"),
    ("indicators", "throughcare.identity.v1.IdentityService"),
];

/// Starts `throughcare dev` and reads the endpoints from its banner.
pub(crate) fn start(data_dir: &std::path::Path) -> (Process, Vec<String>) {
    let mut process = Process::spawn(
        "throughcare dev",
        Command::new(binary("throughcare"))
            .args(["dev", "--port-base", "0", "--data-dir"])
            .arg(data_dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null()),
    );
    let stdout = process.child().stdout.take().expect("stdout");
    let mut endpoints = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("banner line");
        let words: Vec<&str> = line.split_whitespace().collect();
        if let [name, url] = words.as_slice()
            && SERVICES.iter().any(|(s, _)| s == name)
        {
            endpoints.push(url.to_string());
        }
        if line.starts_with("Stop with Ctrl-C") {
            break;
        }
    }
    assert_eq!(endpoints.len(), 3, "the banner names three endpoints");
    (process, endpoints)
}

fn token(data_dir: &std::path::Path, organisation: &str, role: &str) -> String {
    let secrets: toml::Table =
        toml::from_str(&std::fs::read_to_string(data_dir.join("dev-secrets.toml")).unwrap())
            .unwrap();
    secrets["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| {
            t["organisation"].as_str() == Some(organisation) && t["role"].as_str() == Some(role)
        })
        .and_then(|t| t["token"].as_str())
        .expect("a development token")
        .to_owned()
}

#[tokio::test]
async fn the_embedded_mode_serves_every_service_and_keeps_its_data_across_restarts() {
    let dir = tempfile::TempDir::new().unwrap();
    let data_dir = dir.path().join("data");

    let (process, endpoints) = start(&data_dir);
    for (endpoint, (_, service)) in endpoints.iter().zip(SERVICES) {
        wait_serving(endpoint, service, Duration::from_secs(30)).await;
    }
    let lei = token(&data_dir, "LEI", "system");
    for endpoint in &endpoints {
        let me = who_am_i(endpoint, &lei)
            .await
            .expect("a development token is accepted");
        assert_eq!(me, ("LEI".to_owned(), "system".to_owned()));
    }
    let status = who_am_i(&endpoints[0], "not-a-token").await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unauthenticated);
    let exit = process.terminate(Duration::from_secs(20)).await;
    assert!(exit.success(), "a graceful shutdown exits 0, got {exit:?}");

    // Restarting keeps the data directory: the same tokens and databases.
    let (process, endpoints) = start(&data_dir);
    wait_serving(&endpoints[1], SERVICES[1].1, Duration::from_secs(30)).await;
    let me = who_am_i(&endpoints[1], &lei)
        .await
        .expect("tokens survive a restart");
    assert_eq!(me.0, "LEI");
    assert!(process.terminate(Duration::from_secs(20)).await.success());
}

/// The journey the split deployment's test drives, in one process on SQLite
/// and the in-process bus: the two modes behave the same.
#[tokio::test]
async fn one_release_goes_through_all_three_services_in_one_process() {
    let dir = tempfile::TempDir::new().unwrap();
    let data_dir = dir.path().join("data");
    let (process, endpoints) = start(&data_dir);
    for (endpoint, (_, service)) in endpoints.iter().zip(SERVICES) {
        wait_serving(endpoint, service, Duration::from_secs(30)).await;
    }
    let token = |organisation: &str, role: &str| token(&data_dir, organisation, role);
    one_release_through_every_service(
        &System {
            referrals: &endpoints[0],
            sharing: &endpoints[1],
            indicators: &endpoints[2],
            token: &token,
        },
        2,
    )
    .await;
    assert!(process.terminate(Duration::from_secs(20)).await.success());
}
