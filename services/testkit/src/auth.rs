//! Who a test acts as: organisations with one role each, and their tokens.

use throughcare_platform::config::Secret;
use throughcare_platform::grpc::Bearer;
use throughcare_platform::identity::{
    AreaConfig, AreaType, AuthConfig, OrganisationConfig, OrganisationKind, Role, TokenConfig,
};
use tonic::codegen::InterceptedService;
use tonic::transport::Channel;

/// An organisation a test can act as: code, kind, its one role, its areas.
pub type Organisation = (
    &'static str,
    OrganisationKind,
    Role,
    &'static [(AreaType, &'static str)],
);

/// A channel that sends an organisation's bearer token with every call.
pub type Authed = InterceptedService<Channel, Bearer>;

/// The token the kit configures for `organisation`.
pub fn token(organisation: &str) -> String {
    format!("test-token-for-{organisation}")
}

/// Sends `organisation`'s token.
pub fn bearer(organisation: &str) -> Bearer {
    Bearer::new(&token(organisation)).expect("a valid token")
}

/// The registry: each organisation with its areas, and one token each.
pub(crate) fn auth(organisations: &[Organisation]) -> AuthConfig {
    AuthConfig {
        organisations: organisations
            .iter()
            .map(|(code, kind, _, areas)| OrganisationConfig {
                code: code.to_string(),
                name: format!("{code} (test)"),
                kind: *kind,
                areas: areas
                    .iter()
                    .map(|(area_type, code)| AreaConfig {
                        area_type: *area_type,
                        code: code.to_string(),
                    })
                    .collect(),
            })
            .collect(),
        tokens: organisations
            .iter()
            .map(|(code, _, role, _)| TokenConfig {
                token: Secret::new(token(code)),
                organisation: code.to_string(),
                role: *role,
            })
            .collect(),
    }
}
