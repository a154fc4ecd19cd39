//! Who is calling: every RPC knows its caller as an organisation (code and kind,
//! from the organisation registry) and a role — never from the request body.
//!
//! Two ways in, one result: a client certificate over mutual TLS (subject CN is
//! the organisation code, OU the role), or a bearer token from config (embedded
//! mode and tests). See [`Authenticator`].

mod auth;
mod caller;
mod registry;

pub use auth::{AuthConfig, AuthConfigError, Authenticator, TokenConfig};
pub use caller::{Caller, Permission, Role};
pub use registry::{
    AreaConfig, AreaType, Organisation, OrganisationConfig, OrganisationKind, Registry,
    RegistryError,
};
