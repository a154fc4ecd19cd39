//! The referrals domain: pure rules and validated commands, no I/O.

pub mod action;
pub mod area;
pub mod fields;
pub mod health;
pub mod observations;
pub mod person;
pub mod referral;
pub mod release;
pub mod rules;
pub mod self_report;
pub mod task;
pub mod transitions;
