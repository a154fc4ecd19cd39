use super::{Caller, OrganisationConfig, Registry, RegistryError, Role};
use crate::secret::Secret;
use ring::digest;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Arc;
use tonic::{Request, Status};
use x509_parser::prelude::{FromDer, X509Certificate};

/// A bearer token granted to one organisation and role (embedded mode and tests).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TokenConfig {
    pub token: Secret,
    pub organisation: String,
    pub role: Role,
}

/// Who may call: the organisation registry and the bearer tokens.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AuthConfig {
    #[serde(default)]
    pub organisations: Vec<OrganisationConfig>,
    #[serde(default)]
    pub tokens: Vec<TokenConfig>,
}

/// Resolves every request to a [`Caller`] and rejects those it cannot:
/// a client certificate (verified against the configured CA by TLS) names the
/// organisation in its subject CN and the role in its OU; otherwise an
/// `authorization: Bearer <token>` header is looked up among configured tokens.
/// Either way the organisation must be in the registry.
///
/// Used as a tonic interceptor: the caller lands in the request's extensions.
#[derive(Clone, Debug)]
pub struct Authenticator {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    registry: Registry,
    /// SHA-256 of each token, so lookups do not compare secrets byte by byte.
    tokens: HashMap<[u8; 32], (String, Role)>,
}

#[derive(Debug, thiserror::Error)]
pub enum AuthConfigError {
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error("token {index} names organisation {organisation}, which is not in the registry")]
    UnknownOrganisation { index: usize, organisation: String },
    #[error("token {index} is shorter than 16 characters")]
    WeakToken { index: usize },
}

impl Authenticator {
    pub fn new(config: &AuthConfig) -> Result<Self, AuthConfigError> {
        let registry = Registry::new(&config.organisations)?;
        let mut tokens = HashMap::new();
        for (index, grant) in config.tokens.iter().enumerate() {
            if registry.get(&grant.organisation).is_none() {
                return Err(AuthConfigError::UnknownOrganisation {
                    index,
                    organisation: grant.organisation.clone(),
                });
            }
            if grant.token.expose().len() < 16 {
                return Err(AuthConfigError::WeakToken { index });
            }
            tokens.insert(
                token_digest(grant.token.expose()),
                (grant.organisation.clone(), grant.role),
            );
        }
        Ok(Self {
            inner: Arc::new(Inner { registry, tokens }),
        })
    }

    /// Whether any bearer token is configured (then client certificates are optional).
    pub fn accepts_tokens(&self) -> bool {
        !self.inner.tokens.is_empty()
    }

    pub fn registry(&self) -> &Registry {
        &self.inner.registry
    }

    /// The caller of `request`, or UNAUTHENTICATED saying why not.
    pub fn authenticate<T>(&self, request: &Request<T>) -> Result<Caller, Status> {
        if let Some(certs) = request.peer_certs() {
            let leaf = certs
                .first()
                .ok_or_else(|| Status::unauthenticated("client certificate chain is empty"))?;
            return self.caller_from_certificate(leaf.as_ref());
        }
        let header = request
            .metadata()
            .get("authorization")
            .ok_or_else(|| Status::unauthenticated("no client certificate or bearer token"))?;
        let token = header
            .to_str()
            .ok()
            .and_then(|h| h.strip_prefix("Bearer "))
            .ok_or_else(|| Status::unauthenticated("authorization header is not a bearer token"))?;
        let (organisation, role) = self
            .inner
            .tokens
            .get(&token_digest(token.trim()))
            .ok_or_else(|| Status::unauthenticated("unknown bearer token"))?;
        self.caller(organisation, *role)
    }

    fn caller_from_certificate(&self, der: &[u8]) -> Result<Caller, Status> {
        let (_, cert) = X509Certificate::from_der(der)
            .map_err(|_| Status::unauthenticated("client certificate cannot be parsed"))?;
        let subject = cert.subject();
        let first = |values: Vec<&str>| values.first().map(|v| v.to_string());
        let organisation = first(
            subject
                .iter_common_name()
                .filter_map(|a| a.as_str().ok())
                .collect(),
        )
        .ok_or_else(|| {
            Status::unauthenticated("client certificate has no subject CN (organisation code)")
        })?;
        let role = first(
            subject
                .iter_organizational_unit()
                .filter_map(|a| a.as_str().ok())
                .collect(),
        )
        .ok_or_else(|| Status::unauthenticated("client certificate has no subject OU (role)"))?;
        let role: Role = role
            .parse()
            .map_err(|e: String| Status::unauthenticated(format!("client certificate: {e}")))?;
        self.caller(&organisation, role)
    }

    fn caller(&self, organisation: &str, role: Role) -> Result<Caller, Status> {
        let organisation = self.inner.registry.get(organisation).ok_or_else(|| {
            Status::unauthenticated(format!(
                "organisation {organisation} is not in the registry"
            ))
        })?;
        Ok(Caller {
            organisation: organisation.clone(),
            role,
        })
    }
}

impl tonic::service::Interceptor for Authenticator {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        let caller = self.authenticate(&request)?;
        tracing::Span::current().record("caller.organisation", caller.code());
        request.extensions_mut().insert(caller);
        Ok(request)
    }
}

fn token_digest(token: &str) -> [u8; 32] {
    let d = digest::digest(&digest::SHA256, token.as_bytes());
    d.as_ref().try_into().expect("sha-256 is 32 bytes")
}
