//! The indicators domain, free of I/O: periods, areas and strata; the
//! per-person state; the aggregation core; disclosure control.

pub mod area;
pub mod core;
pub mod disclosure;
pub mod period;
pub mod person;
pub mod stratum;
