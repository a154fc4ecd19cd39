//! Starting the sharing service on a stack.

use crate::stack::{Running, Stack, keys};
use throughcare_platform::config::Secret;

pub const SHARING_HEALTH: &str = "throughcare.sharing.v1.DisclosureService";

impl Stack {
    /// The sharing service's configuration on this stack: it opens what the
    /// referrals service seals with the stack's transport keys, and seals at
    /// rest with keys of its own.
    pub fn sharing_config(&self, database_url: &str) -> throughcare_sharing::Config {
        throughcare_sharing::Config {
            platform: self.keyed_platform(database_url),
            sealing: self.transport.clone(),
            at_rest: keys("r1"),
            // Signed often, so tests see checkpoints soon after decisions.
            audit: throughcare_sharing::AuditConfig {
                signing_key: Secret::generate(32),
                checkpoint_interval_ms: 250,
            },
            // Looked for often, so tests that move the clock past a push's
            // due time see it found overdue soon after.
            deliveries: throughcare_sharing::DeliveriesConfig {
                overdue_check_ms: 100,
                ..Default::default()
            },
        }
    }

    /// Starts the sharing service with `config`.
    pub async fn start_sharing(&self, config: throughcare_sharing::Config) -> Running {
        self.serve(SHARING_HEALTH, move |listener, runtime| {
            throughcare_sharing::run(config, listener, runtime)
        })
        .await
    }
}
