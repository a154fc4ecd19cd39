#![allow(unreachable_pub)]

//! The platform's integration tests, against real PostgreSQL and a real
//! Kafka-protocol broker (started by tests/run.sh).

mod bus_contract;
mod common;
mod floors;
mod identity;
mod outbox;
mod overload;
mod sqlite_files;
mod telemetry;
