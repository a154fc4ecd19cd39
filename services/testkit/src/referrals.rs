//! Starting the referrals service on a stack (every suite releases people
//! through it).

use crate::stack::{Running, Stack};

pub const REFERRALS_HEALTH: &str = "throughcare.referrals.v1.TransitionsService";

impl Stack {
    /// The referrals service's configuration on this stack: the stack's
    /// transport keys, the default pathways, an overdue sweep once a minute.
    pub fn referrals_config(&self, database_url: &str) -> throughcare_referrals::Config {
        throughcare_referrals::Config {
            platform: self.keyed_platform(database_url),
            sealing: self.transport.clone(),
            pathways_file: None,
            overdue_sweep_interval_ms: 60_000,
        }
    }

    /// Starts the referrals service with `config`.
    pub async fn start_referrals(&self, config: throughcare_referrals::Config) -> Running {
        self.serve(REFERRALS_HEALTH, move |listener, runtime| {
            throughcare_referrals::run(config, listener, runtime)
        })
        .await
    }
}
