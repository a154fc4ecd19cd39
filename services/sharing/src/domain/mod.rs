//! The sharing domain: pure rules, no I/O.

pub mod audit;
pub mod convert;
pub mod decision;
pub mod governance;
pub mod minimise;
