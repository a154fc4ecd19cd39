//! The faults a chaos schedule injects: a small TCP proxy placed between the
//! services and what they depend on (cuts every connection, stalls traffic,
//! refuses new connections for a while), and a broker of the deployment's
//! own that can be SIGKILLed and started again on its storage.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};
use tempfile::TempDir;
use throughcare_e2e::Process;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// Bytes flow both ways.
    Pass,
    /// Connections stay open but no byte moves (a hung peer).
    Stall,
    /// New connections are reset as they arrive (a peer that is down).
    Refuse,
}

#[derive(Clone, Copy, Debug)]
struct State {
    mode: Mode,
    /// Bumped to reset every connection open at the time.
    cuts: u64,
    /// The proxy is gone: stop accepting.
    closed: bool,
}

/// A TCP proxy to one upstream address whose connections a schedule can cut,
/// stall or refuse. Every cut is a reset (RST), as a crashed peer or a
/// dropped network path looks to the client, never a polite close.
///
/// It forwards on a thread and runtime of its own, so that a test blocking
/// its own thread (a synchronous Kafka poll, say) never stalls the traffic.
pub(crate) struct Proxy {
    address: SocketAddr,
    state: watch::Sender<State>,
}

impl Proxy {
    /// Listens on a free port of 127.0.0.1 and forwards to `upstream`.
    pub(crate) async fn start(upstream: SocketAddr) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let address = listener.local_addr().unwrap();
        let (state, _) = watch::channel(State {
            mode: Mode::Pass,
            cuts: 0,
            closed: false,
        });
        let states = state.clone();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            // Dropping the runtime at the end resets whatever is still open.
            runtime.block_on(accept(listener, upstream, states));
        });
        Self { address, state }
    }

    pub(crate) fn port(&self) -> u16 {
        self.address.port()
    }

    /// Resets every open connection; new ones are accepted.
    pub(crate) fn cut(&self) {
        self.state.send_modify(|s| s.cuts += 1);
    }

    /// Holds every byte for `how_long`, then lets traffic flow again.
    pub(crate) async fn stall(&self, how_long: Duration) {
        self.state.send_modify(|s| s.mode = Mode::Stall);
        tokio::time::sleep(how_long).await;
        self.state.send_modify(|s| s.mode = Mode::Pass);
    }

    /// Resets every connection and refuses new ones for `how_long`: from the
    /// clients' side, the peer went down and came back.
    pub(crate) async fn outage(&self, how_long: Duration) {
        self.state.send_modify(|s| {
            s.cuts += 1;
            s.mode = Mode::Refuse;
        });
        tokio::time::sleep(how_long).await;
        self.state.send_modify(|s| s.mode = Mode::Pass);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.state.send_modify(|s| {
            s.closed = true;
            s.cuts += 1;
        });
    }
}

async fn accept(
    listener: std::net::TcpListener,
    upstream: SocketAddr,
    states: watch::Sender<State>,
) {
    let listener = TcpListener::from_std(listener).unwrap();
    let mut closed = states.subscribe();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = closed.wait_for(|s| s.closed) => return,
        };
        let Ok((client, _)) = accepted else {
            // Out of descriptors, say: do not spin.
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let now = *states.borrow();
        if now.mode == Mode::Refuse {
            reset(client);
            continue;
        }
        tokio::spawn(forward(client, upstream, states.subscribe(), now.cuts));
    }
}

/// Closes `stream` with a reset rather than a FIN.
fn reset(stream: TcpStream) {
    reset_on_close(&stream);
    drop(stream);
}

/// Makes closing `stream` send a reset. (A zero linger never blocks the
/// thread on close, which is what tokio's deprecation warns of.)
#[allow(deprecated)]
fn reset_on_close(stream: &TcpStream) {
    let _ = stream.set_linger(Some(Duration::ZERO));
}

async fn forward(
    mut client: TcpStream,
    upstream: SocketAddr,
    state: watch::Receiver<State>,
    born: u64,
) {
    let Ok(mut server) = TcpStream::connect(upstream).await else {
        reset(client);
        return;
    };
    for stream in [&client, &server] {
        let _ = stream.set_nodelay(true);
        // Whatever ends this connection early ends it with a reset.
        reset_on_close(stream);
    }
    // Borrowed halves: a pump that leaves on a cut sends nothing; only the
    // streams' drop below ends the connection, with a reset.
    let (mut client_read, mut client_write) = client.split();
    let (mut server_read, mut server_write) = server.split();
    tokio::join!(
        pump(&mut client_read, &mut server_write, state.clone(), born),
        pump(&mut server_read, &mut client_write, state, born),
    );
}

/// Copies one direction until end of stream, an error or a cut.
async fn pump(
    from: &mut (impl AsyncRead + Unpin),
    to: &mut (impl AsyncWrite + Unpin),
    mut state: watch::Receiver<State>,
    born: u64,
) {
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        // Wait out a stall; leave on a cut.
        loop {
            let now = *state.borrow_and_update();
            if now.cuts != born {
                return;
            }
            if now.mode != Mode::Stall {
                break;
            }
            if state.changed().await.is_err() {
                return;
            }
        }
        tokio::select! {
            read = from.read(&mut buffer) => match read {
                Ok(0) | Err(_) => {
                    let _ = to.shutdown().await;
                    return;
                }
                Ok(n) => {
                    // A peer that stopped reading must not keep a cut connection alive.
                    let cut = state.wait_for(|s| s.cuts != born);
                    tokio::select! {
                        written = to.write_all(&buffer[..n]) => if written.is_err() { return },
                        _ = cut => return,
                    }
                }
            },
            changed = state.changed() => {
                if changed.is_err() {
                    return;
                }
            }
        }
    }
}

/// A tansu broker of the deployment's own, behind a [`Proxy`] it advertises
/// as its address, so every client connection (bootstrap and after) passes
/// through the proxy. Killed and started again on the same storage.
pub(crate) struct Broker {
    dir: TempDir,
    pub(crate) port: u16,
    pub(crate) proxy: Proxy,
    process: Option<Process>,
    starts: u32,
}

/// The tansu binary `tests/run.sh` built and exported.
const TANSU_ENV: &str = "THROUGHCARE_TANSU_BIN";

impl Broker {
    pub(crate) async fn start() -> Self {
        let port = crate::split::free_port();
        let proxy = Proxy::start(SocketAddr::from(([127, 0, 0, 1], port))).await;
        let mut broker = Self {
            dir: TempDir::new().unwrap(),
            port,
            proxy,
            process: None,
            starts: 0,
        };
        broker.run().await;
        broker
    }

    /// What the services are given as `brokers`.
    pub(crate) fn address(&self) -> String {
        format!("127.0.0.1:{}", self.proxy.port())
    }

    /// What the broker wrote to standard error, every start of it.
    pub(crate) fn logs(&self) -> String {
        (1..=self.starts)
            .map(|n| {
                let log = self.dir.path().join(format!("broker-{n}.log"));
                let read = |path| std::fs::read_to_string(path).unwrap_or_default();
                format!(
                    "--- broker start {n}\n{}{}",
                    read(&log),
                    read(&log.with_extension("err"))
                )
            })
            .collect()
    }

    /// Why the broker is not running, if it has stopped.
    pub(crate) fn exited(&mut self) -> Option<String> {
        let process = self.process.as_mut()?;
        match process.child().try_wait() {
            Ok(None) => None,
            Ok(Some(status)) => Some(format!("exited: {status}\n{}", self.logs())),
            Err(e) => Some(format!("unknown: {e}")),
        }
    }

    /// SIGKILL: no flush, no goodbye.
    pub(crate) fn kill(&mut self) {
        if let Some(mut process) = self.process.take() {
            let child = process.child();
            child.kill().expect("kill the broker");
            child.wait().expect("reap the broker");
        }
    }

    /// Starts the broker again on the storage it had.
    pub(crate) async fn run(&mut self) {
        let tansu = PathBuf::from(
            std::env::var(TANSU_ENV).expect("the tansu binary, exported by tests/run.sh"),
        );
        self.starts += 1;
        let log = self.dir.path().join(format!("broker-{}.log", self.starts));
        // tansu resolves sqlite:// paths relative to its working directory.
        let process = Process::spawn(
            "tansu",
            Command::new(tansu)
                .current_dir(self.dir.path())
                .arg("broker")
                .arg("--listener-url")
                .arg(format!("tcp://127.0.0.1:{}", self.port))
                .arg("--advertised-listener-url")
                .arg(format!("tcp://127.0.0.1:{}", self.proxy.port()))
                .arg("--storage-engine")
                .arg("sqlite://tansu.db")
                .stdout(std::fs::File::create(&log).unwrap())
                .stderr(std::fs::File::create(log.with_extension("err")).unwrap()),
        );
        self.process = Some(process);
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", self.port)).await.is_err() {
            assert!(
                Instant::now() < deadline,
                "tansu did not listen: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
