//! Support for the end-to-end tests: finding and running the real binaries
//! (built by `tests/run.sh` before the tests run), and talking to them.

use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};
use throughcare_proto::identity::v1::WhoAmIRequest;
use throughcare_proto::identity::v1::identity_service_client::IdentityServiceClient;
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

/// A workspace binary next to this test executable (`target/<profile>/`).
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target directory");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: build the binaries first (tests/run.sh does `cargo build --workspace --bins`)",
        path.display()
    );
    path
}

/// A child process killed when dropped, stopped gracefully by [`Process::terminate`].
#[derive(Debug)]
pub struct Process {
    child: Option<Child>,
    pub name: String,
}

impl Process {
    pub fn spawn(name: &str, command: &mut Command) -> Self {
        let child = command
            .stdin(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {name}: {e}"));
        Self {
            child: Some(child),
            name: name.to_owned(),
        }
    }

    pub fn child(&mut self) -> &mut Child {
        self.child.as_mut().expect("running")
    }

    /// Sends SIGTERM and waits for the exit status (failing after `timeout`).
    /// Waits asynchronously: the test's own client connections must stay
    /// serviced so they can close when the server says goodbye.
    pub async fn terminate(mut self, timeout: Duration) -> ExitStatus {
        let mut child = self.child.take().expect("running");
        let status = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("{} did not stop within {timeout:?} of SIGTERM", self.name);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Waits until `endpoint` answers the gRPC health check for `service` with SERVING.
pub async fn wait_serving(endpoint: &str, service: &str, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(channel) = Channel::from_shared(endpoint.to_owned())
            .unwrap()
            .connect()
            .await
        {
            let status = HealthClient::new(channel)
                .check(HealthCheckRequest {
                    service: service.to_owned(),
                })
                .await;
            if let Ok(response) = status
                && response.into_inner().status == ServingStatus::Serving as i32
            {
                return;
            }
        }
        assert!(
            Instant::now() < deadline,
            "{endpoint} did not report {service} SERVING within {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Calls WhoAmI with a bearer token: (organisation, role).
pub async fn who_am_i(endpoint: &str, token: &str) -> Result<(String, String), tonic::Status> {
    let channel = Channel::from_shared(endpoint.to_owned())
        .unwrap()
        .connect()
        .await
        .expect("connect");
    let header: tonic::metadata::MetadataValue<_> = format!("Bearer {token}").parse().unwrap();
    let mut client =
        IdentityServiceClient::with_interceptor(channel, move |mut request: tonic::Request<()>| {
            request
                .metadata_mut()
                .insert("authorization", header.clone());
            Ok(request)
        });
    let me = client.who_am_i(WhoAmIRequest {}).await?.into_inner();
    Ok((me.organisation, me.role))
}

/// Waits until `endpoint` reports `service` SERVING, failing at once with
/// what the process wrote to `log` (its standard error) if it exits first.
pub async fn wait_for(process: &mut Process, endpoint: &str, service: &str, log: &std::path::Path) {
    let waiting = wait_serving(endpoint, service, Duration::from_secs(60));
    tokio::pin!(waiting);
    loop {
        tokio::select! {
            () = &mut waiting => return,
            () = tokio::time::sleep(Duration::from_millis(200)) => {
                if let Some(status) = process.child().try_wait().expect("wait") {
                    let stderr = std::fs::read_to_string(log).unwrap_or_default();
                    panic!("{} exited ({status}) before serving: {stderr}", process.name);
                }
            }
        }
    }
}
