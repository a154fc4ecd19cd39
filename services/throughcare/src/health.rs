//! `throughcare health <endpoint>`: a gRPC health probe for container checks.

use anyhow::{Context, bail};
use std::time::Duration;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

#[derive(Debug, clap::Args)]
pub(crate) struct HealthArgs {
    /// The service's gRPC endpoint, e.g. http://127.0.0.1:50051.
    endpoint: String,
    /// A service name to check instead of the server as a whole.
    #[arg(long, default_value = "")]
    service: String,
}

pub(crate) async fn run(args: HealthArgs) -> anyhow::Result<()> {
    let channel = tonic::transport::Channel::from_shared(args.endpoint.clone())
        .context("endpoint is not a valid URI")?
        .connect_timeout(Duration::from_secs(3))
        .timeout(Duration::from_secs(3))
        .connect()
        .await
        .with_context(|| format!("cannot reach {}", args.endpoint))?;
    let status = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: args.service,
        })
        .await
        .context("health check failed")?
        .into_inner()
        .status();
    if status != ServingStatus::Serving {
        bail!("{} is {:?}", args.endpoint, status);
    }
    println!("serving");
    Ok(())
}
