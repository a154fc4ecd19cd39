//! Talking to a running Throughcare as one organisation in one role: where
//! the services are, who the caller is (a bearer token, a development token
//! picked by organisation and role, or a client certificate), and calling any
//! RPC with protobuf JSON in and out (the contracts' descriptors drive it, so
//! no method is copied here).

use anyhow::{Context, anyhow, bail};
use prost::Message;
use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor, MethodDescriptor};
use std::path::PathBuf;
use std::sync::LazyLock;
use std::time::Duration;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codegen::http::uri::PathAndQuery;
use tonic::metadata::MetadataValue;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};
use tonic::{Code, Status};

/// Every Throughcare contract, for JSON and dynamic calls.
pub(crate) static CONTRACTS: LazyLock<DescriptorPool> = LazyLock::new(|| {
    DescriptorPool::decode(throughcare_proto::FILE_DESCRIPTOR_SET)
        .expect("the compiled contracts' descriptors")
});

/// Where the services are and who is calling.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct Connection {
    /// The referrals service.
    #[arg(
        long,
        global = true,
        env = "THROUGHCARE_REFERRALS_URL",
        default_value = "http://127.0.0.1:50051"
    )]
    referrals: String,
    /// The sharing service.
    #[arg(
        long,
        global = true,
        env = "THROUGHCARE_SHARING_URL",
        default_value = "http://127.0.0.1:50052"
    )]
    sharing: String,
    /// The indicators service.
    #[arg(
        long,
        global = true,
        env = "THROUGHCARE_INDICATORS_URL",
        default_value = "http://127.0.0.1:50053"
    )]
    indicators: String,
    /// A bearer token (the embedded mode prints them; deployments use certificates).
    #[arg(long, global = true, env = "THROUGHCARE_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Act as ORGANISATION:ROLE with its development token from `throughcare dev`'s data directory.
    #[arg(
        long = "as",
        global = true,
        value_name = "ORGANISATION:ROLE",
        conflicts_with = "token"
    )]
    acting_as: Option<String>,
    /// The data directory of `throughcare dev`: its SQLite files, bus log and
    /// development secrets (which --as reads tokens from).
    #[arg(long, global = true, default_value = ".throughcare")]
    data_dir: PathBuf,
    /// CA certificate (PEM) that signs the services' certificates: use TLS.
    #[arg(long, global = true, env = "THROUGHCARE_CA", requires_all = ["cert", "key"])]
    ca: Option<PathBuf>,
    /// Client certificate (PEM): subject CN = organisation code, OU = role.
    #[arg(long, global = true, env = "THROUGHCARE_CERT")]
    cert: Option<PathBuf>,
    /// The client certificate's private key (PEM).
    #[arg(long, global = true, env = "THROUGHCARE_KEY")]
    key: Option<PathBuf>,
}

/// One of the three services.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Service {
    Referrals,
    Sharing,
    Indicators,
}

/// The development token of `organisation` in `role`, from `throughcare dev`'s secrets.
pub(crate) fn dev_token(
    data_dir: &std::path::Path,
    organisation: &str,
    role: &str,
) -> anyhow::Result<String> {
    let path = data_dir.join("dev-secrets.toml");
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "reading {} (is `throughcare dev` running from here? or pass --data-dir)",
            path.display()
        )
    })?;
    let secrets: toml::Table =
        toml::from_str(&text).with_context(|| format!("reading {}", path.display()))?;
    secrets
        .get("tokens")
        .and_then(toml::Value::as_array)
        .into_iter()
        .flatten()
        .find(|t| {
            t.get("organisation").and_then(toml::Value::as_str) == Some(organisation)
                && t.get("role").and_then(toml::Value::as_str) == Some(role)
        })
        .and_then(|t| t.get("token").and_then(toml::Value::as_str))
        .map(str::to_owned)
        .ok_or_else(|| anyhow!("no development token for {organisation} as {role}"))
}

impl Connection {
    pub(crate) fn data_dir(&self) -> &std::path::Path {
        &self.data_dir
    }

    fn url(&self, service: Service) -> &str {
        match service {
            Service::Referrals => &self.referrals,
            Service::Sharing => &self.sharing,
            Service::Indicators => &self.indicators,
        }
    }

    /// The bearer token to send, if the caller is identified by one.
    pub(crate) fn bearer(&self) -> anyhow::Result<Option<String>> {
        if let Some(token) = &self.token {
            return Ok(Some(token.clone()));
        }
        let Some(acting_as) = &self.acting_as else {
            if self.cert.is_none() {
                bail!(
                    "say who is calling: --as ORGANISATION:ROLE, --token (or THROUGHCARE_TOKEN), or --ca/--cert/--key"
                );
            }
            return Ok(None);
        };
        let (organisation, role) = acting_as
            .split_once(':')
            .ok_or_else(|| anyhow!("--as takes ORGANISATION:ROLE, e.g. EMR-LEI:practitioner"))?;
        dev_token(&self.data_dir, organisation, role).map(Some)
    }

    /// A channel to `service`.
    pub(crate) async fn channel(&self, service: Service) -> anyhow::Result<Channel> {
        let url = self.url(service);
        let mut endpoint = Channel::from_shared(url.to_owned())
            .with_context(|| format!("{url} is not a valid address"))?
            .connect_timeout(Duration::from_secs(5));
        if let (Some(ca), Some(cert), Some(key)) = (&self.ca, &self.cert, &self.key) {
            let read =
                |p: &PathBuf| std::fs::read(p).with_context(|| format!("reading {}", p.display()));
            endpoint = endpoint.tls_config(
                ClientTlsConfig::new()
                    .ca_certificate(Certificate::from_pem(read(ca)?))
                    .identity(Identity::from_pem(read(cert)?, read(key)?)),
            )?;
        }
        endpoint
            .connect()
            .await
            .with_context(|| format!("cannot reach {url}"))
    }
}

/// Adds the caller's bearer token to a request.
pub(crate) fn authorise<T>(
    request: &mut tonic::Request<T>,
    bearer: Option<&str>,
) -> anyhow::Result<()> {
    if let Some(token) = bearer {
        let value: MetadataValue<_> = format!("Bearer {token}").parse().context("the token")?;
        request.metadata_mut().insert("authorization", value);
    }
    Ok(())
}

/// A method of a Throughcare service, by its full name.
pub(crate) fn method(service: &str, name: &str) -> MethodDescriptor {
    CONTRACTS
        .get_service_by_name(service)
        .and_then(|s| s.methods().find(|m| m.name() == name))
        .unwrap_or_else(|| panic!("{service}/{name} is in the contracts"))
}

/// A request message from protobuf JSON (field names as in the .proto file or
/// in lowerCamelCase; enums by name).
pub(crate) fn from_json(
    descriptor: MessageDescriptor,
    json: &str,
) -> anyhow::Result<DynamicMessage> {
    let mut deserializer = serde_json::Deserializer::from_str(json);
    let message = DynamicMessage::deserialize(descriptor.clone(), &mut deserializer)
        .with_context(|| format!("the request is not a valid {}", descriptor.full_name()))?;
    deserializer
        .end()
        .context("trailing characters after the request")?;
    Ok(message)
}

/// A message as one line of protobuf JSON (proto field names).
pub(crate) fn to_json(message: &DynamicMessage) -> String {
    let options = prost_reflect::SerializeOptions::new().use_proto_field_name(true);
    let mut out = Vec::new();
    let mut serializer = serde_json::Serializer::new(&mut out);
    message
        .serialize_with_options(&mut serializer, &options)
        .expect("a message serialises");
    String::from_utf8(out).expect("JSON is UTF-8")
}

/// Encodes and decodes dynamic messages of known types.
#[derive(Debug, Clone)]
struct DynamicCodec(MessageDescriptor);

impl Codec for DynamicCodec {
    type Encode = DynamicMessage;
    type Decode = DynamicMessage;
    type Encoder = DynamicCodec;
    type Decoder = DynamicCodec;

    fn encoder(&mut self) -> Self::Encoder {
        self.clone()
    }

    fn decoder(&mut self) -> Self::Decoder {
        self.clone()
    }
}

impl Encoder for DynamicCodec {
    type Item = DynamicMessage;
    type Error = Status;

    fn encode(&mut self, item: DynamicMessage, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        item.encode(dst)
            .map_err(|e| Status::internal(e.to_string()))
    }
}

impl Decoder for DynamicCodec {
    type Item = DynamicMessage;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<DynamicMessage>, Status> {
        DynamicMessage::decode(self.0.clone(), src)
            .map(Some)
            .map_err(|e| Status::internal(e.to_string()))
    }
}

/// Calls `method` with `request`: one response, or (server streaming) each
/// response as it arrives, handed to `each` until the stream ends.
pub(crate) async fn call(
    channel: Channel,
    bearer: Option<&str>,
    method: &MethodDescriptor,
    request: DynamicMessage,
    mut each: impl FnMut(DynamicMessage) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.context("the service is not ready")?;
    let path = PathAndQuery::try_from(format!(
        "/{}/{}",
        method.parent_service().full_name(),
        method.name()
    ))?;
    let codec = DynamicCodec(method.output());
    let mut request = tonic::Request::new(request);
    authorise(&mut request, bearer)?;
    if method.is_server_streaming() {
        let mut stream = grpc
            .server_streaming(request, path, codec)
            .await?
            .into_inner();
        while let Some(message) = stream.message().await? {
            each(message)?;
        }
    } else {
        each(grpc.unary(request, path, codec).await?.into_inner())?;
    }
    Ok(())
}

/// What a script sees when a command fails.
pub(crate) mod exit {
    /// The service could not be reached, or failed unexpectedly.
    pub(crate) const FAILURE: u8 = 1;
    /// The command line or the request file is malformed (nothing was sent).
    pub(crate) const USAGE: u8 = 2;
    /// The service refused the request as invalid or not allowed in the current state.
    pub(crate) const REFUSED: u8 = 3;
    /// The caller is not authenticated or not permitted.
    pub(crate) const DENIED: u8 = 4;
    /// What the request names does not exist (or is not visible to the caller).
    pub(crate) const NOT_FOUND: u8 = 5;
}

/// Prints an error for people and returns the exit code for scripts.
pub(crate) fn report(error: &anyhow::Error) -> u8 {
    let Some(status) = error.chain().find_map(|e| e.downcast_ref::<Status>()) else {
        eprintln!("error: {error:#}");
        return if error.chain().any(|e| e.is::<RequestError>()) {
            exit::USAGE
        } else {
            exit::FAILURE
        };
    };
    eprintln!("error: {:?}: {}", status.code(), status.message());
    use tonic_types::StatusExt;
    if let Some(bad) = status.get_details_bad_request() {
        for violation in bad.field_violations {
            eprintln!("  {}: {}", violation.field, violation.description);
        }
    }
    if let Some(failed) = status.get_details_precondition_failure() {
        for violation in failed.violations {
            eprintln!("  {}: {}", violation.subject, violation.description);
        }
    }
    match status.code() {
        Code::InvalidArgument
        | Code::FailedPrecondition
        | Code::AlreadyExists
        | Code::OutOfRange
        | Code::Aborted => exit::REFUSED,
        Code::Unauthenticated | Code::PermissionDenied => exit::DENIED,
        Code::NotFound => exit::NOT_FOUND,
        _ => exit::FAILURE,
    }
}

/// A malformed command line or request: nothing was sent.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct RequestError(pub(crate) String);
