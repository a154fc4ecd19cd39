//! The `throughcare` role commands and demo against the embedded mode, as a
//! script would use them: JSON in and out, exit codes it can rely on.

use crate::embedded::start;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;
use throughcare_e2e::{binary, wait_serving};
use throughcare_platform::testing::eventually;

/// Runs `throughcare` with the development data directory and endpoints.
fn throughcare(data_dir: &Path, endpoints: &[String], args: &[&str]) -> Output {
    Command::new(binary("throughcare"))
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .args(["--referrals", &endpoints[0]])
        .args(["--sharing", &endpoints[1]])
        .args(["--indicators", &endpoints[2]])
        .env_remove("THROUGHCARE_TOKEN")
        .output()
        .expect("run throughcare")
}

fn code(output: &Output) -> i32 {
    output.status.code().expect("an exit code")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

const RELEASE: &str = r#"{
  "idempotency_key": "cli-release-1",
  "person": {"identifiers": {"nhs_number": "943 476 5919", "prison_number": "A1234BC"},
             "date_of_birth": {"year": 1985, "month": 4, "day": 2}, "sex": "SEX_MALE"},
  "release_date": {"year": YEAR, "month": MONTH, "day": DAY},
  "reason": "RELEASE_REASON_ON_LICENCE", "releasing_prison": "LEI",
  "destination": {"probation_delivery_unit": "EMR-LEI", "local_authority": "E06000016"},
  "health": {"substance_misuse": {"on_opioid_substitution_therapy": true},
             "gp_registration": {"status": "REGISTRATION_STATUS_NOT_REGISTERED"}}
}"#;

#[tokio::test]
async fn role_commands_take_json_print_json_and_exit_with_codes_scripts_rely_on() {
    let dir = tempfile::TempDir::new().unwrap();
    let data_dir = dir.path().join("data");
    let (process, endpoints) = start(&data_dir);
    wait_serving(&endpoints[0], "", Duration::from_secs(30)).await;
    wait_serving(&endpoints[1], "", Duration::from_secs(30)).await;
    wait_serving(&endpoints[2], "", Duration::from_secs(30)).await;
    let run = |args: &[&str]| throughcare(&data_dir, &endpoints, args);

    // A release notified from a JSON file, as the README shows.
    let tomorrow = chrono::Utc::now().date_naive() + chrono::Duration::days(1);
    let file = dir.path().join("release.json");
    use chrono::Datelike;
    std::fs::write(
        &file,
        RELEASE
            .replace("YEAR", &tomorrow.year().to_string())
            .replace("MONTH", &tomorrow.month().to_string())
            .replace("DAY", &tomorrow.day().to_string()),
    )
    .unwrap();
    let notified = run(&[
        "release",
        "notify",
        file.to_str().unwrap(),
        "--as",
        "LEI:system",
    ]);
    assert_eq!(code(&notified), 0, "{}", stderr(&notified));
    let response: serde_json::Value = serde_json::from_str(stdout(&notified).trim()).unwrap();
    let release_id = response["release"]["release_id"]
        .as_str()
        .expect("a release id");
    assert!(
        response["tasks_opened"]
            .as_array()
            .is_some_and(|t| t.len() == 2),
        "substance misuse and GP registration tasks: {response}"
    );
    // The same key again is a replay: the same release, exit 0.
    let replay = run(&[
        "release",
        "notify",
        file.to_str().unwrap(),
        "--as",
        "LEI:system",
    ]);
    assert_eq!(code(&replay), 0);
    let replayed: serde_json::Value = serde_json::from_str(stdout(&replay).trim()).unwrap();
    assert_eq!(replayed["release"]["release_id"], release_id);

    let tasks = run(&["task", "list", "--as", "EMR-LEI:practitioner"]);
    assert_eq!(code(&tasks), 0, "{}", stderr(&tasks));
    assert!(stdout(&tasks).contains(release_id));

    // What became of the release's push to the probation delivery unit,
    // for the prison that sent it: owed, not yet read, and so not yet
    // acknowledgeable by the unit.
    let delivery_id = eventually(
        Duration::from_secs(60),
        "the release's push to be owed",
        || async {
            let listed = run(&["release", "list", "--as", "LEI:system"]);
            assert_eq!(code(&listed), 0, "{}", stderr(&listed));
            let listed: serde_json::Value = serde_json::from_str(stdout(&listed).trim()).unwrap();
            let delivery = &listed["releases"][0]["deliveries"][0];
            (delivery["status"] == "DELIVERY_STATUS_PENDING" && delivery["recipient"] == "EMR-LEI")
                .then(|| delivery["delivery_id"].as_str().unwrap().to_owned())
        },
    )
    .await;
    let early = run(&[
        "disclosure",
        "acknowledge",
        &format!(r#"{{"delivery_id": "{delivery_id}"}}"#),
        "--as",
        "EMR-LEI:practitioner",
    ]);
    assert_eq!(code(&early), 3, "{}", stderr(&early));
    assert!(
        stderr(&early).contains("delivery_id: "),
        "{}",
        stderr(&early)
    );

    // 2: a malformed request or command line; nothing is sent.
    let malformed = run(&["release", "notify", "{\"nhs\": 1}", "--as", "LEI:system"]);
    assert_eq!(code(&malformed), 2);
    assert!(stderr(&malformed).contains("nhs"), "{}", stderr(&malformed));
    let unknown_verb = run(&["referral", "frobnicate", "--as", "LEI:system"]);
    assert_eq!(code(&unknown_verb), 2);
    assert!(stderr(&unknown_verb).contains("request, update, get, list, watch"));

    // 3: refused as invalid, naming the field.
    let invalid = run(&[
        "release",
        "notify",
        &RELEASE
            .replace("943 476 5919", "943 476 5918")
            .replace("YEAR", &tomorrow.year().to_string())
            .replace("MONTH", &tomorrow.month().to_string())
            .replace("DAY", &tomorrow.day().to_string()),
        "--as",
        "LEI:system",
    ]);
    assert_eq!(code(&invalid), 3, "{}", stderr(&invalid));
    assert!(
        stderr(&invalid).contains("person.identifiers.nhs_number"),
        "{}",
        stderr(&invalid)
    );

    // 4: not permitted (a commissioner may not verify the audit log).
    let denied = run(&["audit", "verify", "--as", "QK1:analyst"]);
    assert_eq!(code(&denied), 4);
    let unauthenticated = run(&["audit", "verify", "--token", "not-a-token"]);
    assert_eq!(code(&unauthenticated), 4);

    // 5: not found.
    let missing = run(&[
        "referral",
        "get",
        r#"{"referral_id": "0190c2a4-1f5e-7a3b-9c4d-2e6f8a0b1c3d"}"#,
        "--as",
        "EMR-LEI:practitioner",
    ]);
    assert_eq!(code(&missing), 5, "{}", stderr(&missing));

    // The auditor's verify and a commissioner's CSV export.
    let verified = run(&["audit", "verify", "--as", "NHSE-HJ:auditor"]);
    assert_eq!(code(&verified), 0);
    assert!(stdout(&verified).contains("\"intact\":true"));
    let export = run(&["indicators", "export", "--as", "QK1:analyst"]);
    assert_eq!(code(&export), 0, "{}", stderr(&export));
    assert_eq!(
        stdout(&export).lines().next().map(str::trim_end),
        Some(
            "indicator_id,indicator,area_type,area_code,period,stratum_type,stratum,numerator,denominator,value,suppressed,revision"
        ),
        "the JSNA extract's header row"
    );

    // 1: nothing listening.
    let unreachable = Command::new(binary("throughcare"))
        .args([
            "audit",
            "verify",
            "--token",
            "t",
            "--sharing",
            "http://127.0.0.1:9",
        ])
        .output()
        .unwrap();
    assert_eq!(code(&unreachable), 1);
    assert!(process.terminate(Duration::from_secs(20)).await.success());
}

/// Runs `throughcare demo` with `args` against a fresh `throughcare dev`,
/// stops dev cleanly, and returns the demo's output.
async fn demo_on_a_fresh_system(args: &[&str]) -> Output {
    let dir = tempfile::TempDir::new().unwrap();
    let data_dir = dir.path().join("data");
    let (process, endpoints) = start(&data_dir);
    for endpoint in &endpoints {
        wait_serving(endpoint, "", Duration::from_secs(30)).await;
    }
    let demo = throughcare(&data_dir, &endpoints, &[&["demo"], args].concat());
    assert!(process.terminate(Duration::from_secs(20)).await.success());
    demo
}

#[tokio::test]
async fn the_demo_drives_people_through_the_system_and_prints_suppressed_indicators() {
    let demo = demo_on_a_fresh_system(&["--people", "40", "--seed", "7", "--wait", "120"]).await;
    assert_eq!(code(&demo), 0, "{}", stderr(&demo));
    let out = stdout(&demo);
    assert!(out.contains("40 releases"), "{out}");
    assert!(
        !out.contains("Nothing new was published"),
        "the demo's months are published once they settle: {out}"
    );
    let rows = table_rows(&out);
    let registration = rows
        .iter()
        .find(|r| r.title == "GP registration status recorded")
        .unwrap_or_else(|| panic!("the table has the GP registration row: {out}"));
    // Every count printed is suppressed (*) or a multiple of 5.
    for row in &rows {
        for count in [&row.numerator, &row.denominator] {
            if let Ok(count) = count.parse::<i64>() {
                assert_eq!(count % 5, 0, "{row:?}");
            }
        }
    }
    assert!(
        registration.value.ends_with('*') || registration.value.ends_with('%'),
        "a value, or * when suppressed: {registration:?}"
    );
}

/// One row of the demo's table: the columns after the title.
#[derive(Debug)]
struct Row {
    title: String,
    numerator: String,
    denominator: String,
    value: String,
    tally: String,
}

/// The rows of the demo's indicator table (title, numerator, denominator,
/// value, tally): from its header to the first blank line.
fn table_rows(out: &str) -> Vec<Row> {
    const TITLE: usize = 64;
    out.lines()
        .skip_while(|l| !l.starts_with("Indicators for probation delivery unit EMR-LEI"))
        .skip(2)
        .take_while(|l| !l.trim().is_empty() && !l.starts_with('('))
        .map(|line| {
            let title: String = line.chars().take(TITLE).collect();
            let rest: String = line.chars().skip(TITLE).collect();
            let fields: Vec<&str> = rest.split_whitespace().collect();
            let (tally, figures) = fields.split_last().expect("a tally column");
            Row {
                title: title.trim_end().to_owned(),
                numerator: figures[0].to_owned(),
                denominator: figures[1].to_owned(),
                value: figures[2..].join(" "),
                tally: (*tally).to_owned(),
            }
        })
        .collect()
}

/// The counts in one of the demo's summary lines ("45 of 46 published
/// cells agree with the demo's own tally; 0 cannot be confirmed; 1 not
/// tallied; 0 disagree"): agree, published, unconfirmed, not tallied,
/// disagree.
fn summary(line: &str) -> [u32; 5] {
    let numbers: Vec<u32> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse().ok())
        .collect();
    numbers[..5].try_into().expect("five counts")
}

#[tokio::test]
async fn the_demo_tallies_what_it_did_and_every_published_cell_agrees_with_it() {
    let demo = demo_on_a_fresh_system(&["--people", "160", "--seed", "7", "--wait", "300"]).await;
    let out = stdout(&demo);
    assert_eq!(code(&demo), 0, "{out}\n{}", stderr(&demo));
    assert!(
        !out.contains("before this run"),
        "a fresh system: the month is this run's alone: {out}"
    );
    let rows = table_rows(&out);
    assert!(!rows.is_empty(), "a table: {out}");
    for row in &rows {
        assert!(
            ["✓", "~", "-"].contains(&row.tally.as_str()),
            "no published cell disagrees with the tally: {row:?}"
        );
    }
    let lines: Vec<&str> = out
        .lines()
        .filter(|l| l.contains("published cells agree with the demo's own tally"))
        .collect();
    assert_eq!(
        lines.len(),
        2,
        "a summary for all people and one across every stratum: {out}"
    );
    let [agree, published, unconfirmed, not_tallied, disagree] = summary(lines[0]);
    assert_eq!(disagree, 0, "{out}");
    assert_eq!(
        agree + unconfirmed + not_tallied + disagree,
        published,
        "{out}"
    );
    assert_eq!(
        published as usize,
        rows.len(),
        "the summary counts the table: {out}"
    );
    assert!(agree >= 30, "most published cells are confirmed: {out}");
    let [
        agree_all,
        published_all,
        unconfirmed_all,
        not_tallied_all,
        disagree_all,
    ] = summary(lines[1]);
    assert_eq!(disagree_all, 0, "{out}");
    assert_eq!(
        agree_all + unconfirmed_all + not_tallied_all,
        published_all,
        "{out}"
    );
    assert!(
        published_all > published && agree_all > agree,
        "the strata add published, confirmed cells: {out}"
    );
    assert!(!out.contains("not published, though"), "{out}");
}

/// A record no consumer can read, put on the referrals events topic of a
/// running `throughcare dev` through its bus log, as a faulty producer would.
async fn publish_poison(data_dir: &Path) {
    use throughcare_platform::bus::{Bus, Publisher, Record};
    use throughcare_platform::config::{BusBackend, BusConfig};
    let config = BusConfig {
        topic_prefix: String::new(),
        backend: BusBackend::InProcess {
            path: Some(data_dir.join("bus.db")),
        },
    };
    let bus = Bus::connect(
        &config,
        throughcare_platform::telemetry::Metrics::disabled(),
    )
    .await
    .expect("dev's bus log");
    let topic = throughcare_proto::topics::REFERRALS_EVENTS;
    // A release notification whose payload does not decode: sharing can
    // never process it.
    let mut payload = vec![0xff; 11];
    payload.extend_from_slice(b"SECRET-PAYLOAD");
    let event = throughcare_platform::bus::Event {
        payload,
        ..throughcare_platform::bus::Event::new(
            topic,
            "poison",
            "/throughcare/test",
            &throughcare_proto::events::v1::ReleaseNotified::default(),
        )
    };
    // And a record that is not even a CloudEvent.
    let foreign = Record {
        topic: topic.to_owned(),
        key: "foreign".into(),
        headers: vec![],
        payload: b"SECRET-TOO".to_vec(),
    };
    bus.publish(&[event.to_record(), foreign])
        .await
        .expect("publish");
}

#[tokio::test]
async fn an_operator_lists_shows_and_replays_dead_letters_without_seeing_their_contents() {
    let dir = tempfile::TempDir::new().unwrap();
    let data_dir = dir.path().join("data");
    let (process, endpoints) = start(&data_dir);
    for endpoint in &endpoints {
        wait_serving(endpoint, "", Duration::from_secs(30)).await;
    }
    let run = |args: &[&str]| throughcare(&data_dir, &endpoints, args);
    let none = run(&["dead-letters", "list"]);
    assert_eq!(code(&none), 0, "{}", stderr(&none));
    assert!(
        stdout(&none).contains("no dead letters"),
        "{}",
        stdout(&none)
    );

    publish_poison(&data_dir).await;
    // Sharing's consumer dead-letters both at once (neither can ever be processed).
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let listed = loop {
        let listed = run(&["dead-letters", "list", "--unreplayed"]);
        assert_eq!(code(&listed), 0, "{}", stderr(&listed));
        if stdout(&listed).contains("2 awaiting a replay") {
            break stdout(&listed);
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no dead letters: {}",
            stdout(&listed)
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert!(!listed.contains("SECRET"), "{listed}");
    let id_of = |needle: &str| {
        listed
            .lines()
            .find(|l| l.contains(needle))
            .and_then(|l| l.split_whitespace().next())
            .unwrap_or_else(|| panic!("a dead letter with {needle}: {listed}"))
            .to_owned()
    };
    let (id, foreign) = (id_of("ReleaseNotified"), id_of("(not a CloudEvent)"));
    assert!(id.starts_with("throughcare.referrals.events.dlq/"), "{id}");
    assert!(
        listed.contains("throughcare-sharing") && listed.contains("does not decode"),
        "{listed}"
    );

    let shown = run(&["dead-letters", "show", &id]);
    assert_eq!(code(&shown), 0, "{}", stderr(&shown));
    let shown = stdout(&shown);
    assert!(
        shown.contains("topic:          throughcare.referrals.events"),
        "{shown}"
    );
    assert!(
        shown.contains("event type:     throughcare.events.v1.ReleaseNotified"),
        "{shown}"
    );
    assert!(
        shown.contains("payload:        25 bytes (not shown)"),
        "{shown}"
    );
    assert!(
        !shown.contains("SECRET") && !shown.contains("poison"),
        "{shown}"
    );

    // Replayed, it fails again (nothing fixed it) and comes back as a new dead
    // letter; the first is settled and cannot be replayed twice. The record
    // that is no CloudEvent is refused: nothing could ever process it.
    let replayed = run(&["dead-letters", "replay", &id, &foreign]);
    assert_eq!(code(&replayed), 3, "{}", stderr(&replayed));
    assert!(
        stdout(&replayed).contains("for throughcare-sharing"),
        "{}",
        stdout(&replayed)
    );
    assert!(
        stderr(&replayed).contains("not a CloudEvent"),
        "{}",
        stderr(&replayed)
    );
    let again = run(&["dead-letters", "replay", &id]);
    assert_eq!(code(&again), 3, "{}", stderr(&again));
    assert!(
        stderr(&again).contains("was replayed"),
        "{}",
        stderr(&again)
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let listed = stdout(&run(&["dead-letters", "list"]));
        if listed.contains("3 dead letters, 2 awaiting a replay") {
            assert!(
                listed.contains(&format!("{id}  ")) && listed.contains("replayed 2"),
                "{listed}"
            );
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no new dead letter: {listed}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    for command in ["show", "replay"] {
        for unknown in [
            "throughcare.referrals.events.dlq/0/999",
            "no.such.topic.dlq/0/1",
        ] {
            let missing = run(&["dead-letters", command, unknown]);
            assert_eq!(
                code(&missing),
                5,
                "{command} {unknown}: {}",
                stderr(&missing)
            );
        }
    }
    let malformed = run(&["dead-letters", "show", "not-an-id"]);
    assert_eq!(code(&malformed), 2, "{}", stderr(&malformed));

    // The sharing service says so on its dead-letter health name (checked every 30 s).
    let deadline = std::time::Instant::now() + Duration::from_secs(75);
    loop {
        let health = run(&[
            "health",
            &endpoints[1],
            "--service",
            "throughcare.dead_letters",
        ]);
        if code(&health) == 1 && stderr(&health).contains("NotServing") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{}", stderr(&health));
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let whole = run(&["health", &endpoints[1]]);
    assert_eq!(
        code(&whole),
        0,
        "the service itself still serves: {}",
        stderr(&whole)
    );
    assert!(process.terminate(Duration::from_secs(20)).await.success());
}
