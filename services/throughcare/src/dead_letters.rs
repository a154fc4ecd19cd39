//! `throughcare dead-letters list|show|replay`: the records a service could
//! not process, read from the bus's dead-letter topics — where each came
//! from, its event type, the group that failed it, why and when, and whether
//! it has been replayed; never its contents — and sent back, once fixed, to
//! the one group that failed them.
//!
//! The bus is the one the services are configured with: the `[bus]` table of
//! `--config` and `THROUGHCARE_BUS__*` variables (so it works as-is inside a
//! service's container), or else `throughcare dev`'s bus log in the data
//! directory.

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use throughcare_platform::bus::{Bus, DeadLetter, DeadLetterId, ReplayError};
use throughcare_platform::config::{BusBackend, BusConfig};
use throughcare_platform::telemetry::Metrics;
use tonic::Status;

#[derive(Debug, clap::Args)]
pub(crate) struct DeadLetterArgs {
    /// A service's TOML configuration file: its `[bus]` table says which bus
    /// to read. `THROUGHCARE_BUS__*` variables override it. With neither, the
    /// bus of `throughcare dev` in --data-dir.
    #[arg(long, env = "THROUGHCARE_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: DeadLetterCommand,
}

#[derive(Debug, clap::Subcommand)]
enum DeadLetterCommand {
    /// Every dead letter, oldest first in each topic, and whether it has been
    /// replayed.
    List {
        /// Only those that await a replay.
        #[arg(long)]
        unreplayed: bool,
    },
    /// One dead letter in full (still without its contents).
    Show {
        /// As `list` prints it: dead-letter topic/partition/offset.
        id: DeadLetterId,
    },
    /// Send dead letters back to their topic for the group that failed them.
    /// Each is replayed once; one that fails again becomes a new dead letter.
    Replay {
        /// As `list` prints them.
        #[arg(required_unless_present = "all")]
        ids: Vec<DeadLetterId>,
        /// Every dead letter that awaits a replay.
        #[arg(long, conflicts_with = "ids")]
        all: bool,
    },
}

/// What the command needs of a service's configuration.
#[derive(Debug, Serialize, Deserialize)]
struct OperatorConfig {
    bus: BusConfig,
}

pub(crate) async fn run(args: DeadLetterArgs, data_dir: &Path) -> anyhow::Result<()> {
    let bus = connect(args.config.as_deref(), data_dir).await?;
    match args.command {
        DeadLetterCommand::List { unreplayed } => {
            let letters: Vec<DeadLetter> = bus
                .dead_letters()
                .await?
                .into_iter()
                .filter(|l| !unreplayed || l.replayed_at.is_none())
                .collect();
            print_list(&letters);
        }
        DeadLetterCommand::Show { id } => print_one(&find(&bus, &id).await?),
        DeadLetterCommand::Replay { ids, all } => {
            let ids = if all {
                let letters = bus.dead_letters().await?;
                letters
                    .into_iter()
                    .filter(|l| l.replayed_at.is_none())
                    .map(|l| l.id)
                    .collect()
            } else {
                ids
            };
            // Each on its own: one refused does not stop the rest.
            let mut first_refusal = None;
            for id in &ids {
                match bus.replay_dead_letter(id).await {
                    Ok(letter) => {
                        println!("replayed {id} to {} for {}", letter.topic, letter.group)
                    }
                    Err(error) => {
                        if ids.len() > 1 {
                            eprintln!("not replayed: {error}");
                        }
                        first_refusal.get_or_insert(error);
                    }
                }
            }
            if ids.is_empty() {
                println!("no dead letters await a replay");
            }
            if let Some(error) = first_refusal {
                return Err(refusal(error));
            }
        }
    }
    Ok(())
}

async fn connect(config: Option<&Path>, data_dir: &Path) -> anyhow::Result<Bus> {
    let dev_bus = data_dir.join("bus.db");
    let defaults = OperatorConfig {
        bus: BusConfig {
            topic_prefix: String::new(),
            backend: BusBackend::InProcess {
                path: Some(dev_bus.clone()),
            },
        },
    };
    let loaded: OperatorConfig = throughcare_platform::config::load(&defaults, config)
        .context("reading the bus configuration")?;
    if let BusBackend::InProcess { path } = &loaded.bus.backend {
        match path {
            Some(path) if path.exists() => {}
            _ => bail!(
                "no bus at {}: is `throughcare dev` running from here? (or pass --data-dir, \
                 or --config / THROUGHCARE_BUS__* for a deployment's bus)",
                path.as_deref().unwrap_or(&dev_bus).display()
            ),
        }
    }
    Bus::connect(&loaded.bus, Metrics::disabled())
        .await
        .context("opening the bus")
}

async fn find(bus: &Bus, id: &DeadLetterId) -> anyhow::Result<DeadLetter> {
    bus.dead_letter(id)
        .await?
        .ok_or_else(|| Status::not_found(format!("no dead letter {id}")).into())
}

/// Refusals keep the command line's exit codes: 5 not found, 3 not now.
fn refusal(error: ReplayError) -> anyhow::Error {
    match error {
        ReplayError::NotFound(_) => Status::not_found(error.to_string()).into(),
        ReplayError::AlreadyReplayed { .. }
        | ReplayError::NoOrigin(_)
        | ReplayError::NotAnEvent(_) => Status::failed_precondition(error.to_string()).into(),
        ReplayError::Bus(error) => error.into(),
    }
}

fn print_list(letters: &[DeadLetter]) {
    if letters.is_empty() {
        println!("no dead letters");
        return;
    }
    let rows: Vec<[String; 6]> = letters
        .iter()
        .map(|l| {
            [
                l.id.to_string(),
                l.event_type
                    .clone()
                    .unwrap_or_else(|| "(not a CloudEvent)".into()),
                l.group.clone(),
                time(l.at),
                l.replayed_at.map_or_else(
                    || "awaits replay".into(),
                    |at| format!("replayed {}", time(Some(at))),
                ),
                l.reason.clone(),
            ]
        })
        .collect();
    let header = [
        "ID",
        "EVENT TYPE",
        "GROUP",
        "DEAD-LETTERED",
        "STATE",
        "REASON",
    ];
    let widths: Vec<usize> = (0..header.len())
        .map(|c| {
            rows.iter()
                .map(|r| r[c].chars().count())
                .chain([header[c].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: &[&str]| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        println!("{}", padded.join("  ").trim_end());
    };
    line(&header);
    for row in &rows {
        line(&row.each_ref().map(String::as_str));
    }
    let waiting = letters.iter().filter(|l| l.replayed_at.is_none()).count();
    println!(
        "{} dead letters, {waiting} awaiting a replay",
        letters.len()
    );
}

fn print_one(l: &DeadLetter) {
    let or_unknown = |v: Option<String>| v.unwrap_or_else(|| "unknown".into());
    println!("id:             {}", l.id);
    println!("topic:          {}", l.topic);
    println!(
        "partition:      {}",
        or_unknown(l.partition.map(|p| p.to_string()))
    );
    println!(
        "offset:         {}",
        or_unknown(l.offset.map(|o| o.to_string()))
    );
    println!("group:          {}", l.group);
    println!("event type:     {}", or_unknown(l.event_type.clone()));
    println!("event id:       {}", or_unknown(l.event_id.clone()));
    println!("reason:         {}", l.reason);
    println!("dead-lettered:  {}", time(l.at));
    println!(
        "state:          {}",
        l.replayed_at.map_or_else(
            || "awaits replay".into(),
            |at| format!("replayed {}", time(Some(at)))
        )
    );
    println!("payload:        {} bytes (not shown)", l.payload_bytes);
}

fn time(at: Option<chrono::DateTime<chrono::Utc>>) -> String {
    at.map_or_else(
        || "unknown".into(),
        |at| at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
    )
}
