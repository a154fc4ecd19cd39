use super::{Organisation, OrganisationKind};
use crate::error::Error;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use tonic::Request;

/// What a caller does within its organisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// A system-to-system integration: a prison clinical system, a case
    /// management system, a provider's record system.
    System,
    /// A person working cases: probation practitioner, clinician.
    Practitioner,
    /// Works with aggregates only: commissioning and public health analysts.
    Analyst,
    /// The offender health lead of a probation area.
    HealthLead,
    /// Information governance: registers agreements and lawful bases.
    Governance,
    /// Reviews the audit log and answers subject access requests.
    Auditor,
}

impl Role {
    pub const ALL: [Role; 6] = [
        Role::System,
        Role::Practitioner,
        Role::Analyst,
        Role::HealthLead,
        Role::Governance,
        Role::Auditor,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::Practitioner => "practitioner",
            Role::Analyst => "analyst",
            Role::HealthLead => "health_lead",
            Role::Governance => "governance",
            Role::Auditor => "auditor",
        }
    }
}

impl FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| format!("unknown role {s:?}"))
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The authenticated caller of an RPC, put in the request's extensions by the
/// [`Authenticator`](super::Authenticator).
#[derive(Debug, Clone)]
pub struct Caller {
    pub organisation: Arc<Organisation>,
    pub role: Role,
}

/// Who may take an action: any of `kinds` (empty means any kind) with any of `roles`.
#[derive(Debug, Clone, Copy)]
pub struct Permission {
    pub kinds: &'static [OrganisationKind],
    pub roles: &'static [Role],
}

impl Caller {
    /// The caller of a request that passed through the authenticator.
    pub fn of<T>(request: &Request<T>) -> Result<&Caller, Error> {
        request
            .extensions()
            .get::<Caller>()
            .ok_or_else(|| Error::Unauthenticated("no authenticated caller".into()))
    }

    pub fn code(&self) -> &str {
        self.organisation.code.as_str()
    }

    pub fn kind(&self) -> OrganisationKind {
        self.organisation.kind
    }

    /// The caller of `request` if it may do `action`: UNAUTHENTICATED when
    /// nobody authenticated, PERMISSION_DENIED when its kind or role may not.
    pub fn authorised<'a, T>(
        request: &'a Request<T>,
        action: &str,
        permission: &Permission,
    ) -> Result<&'a Caller, Error> {
        let caller = Self::of(request)?;
        caller.authorize(action, permission)?;
        Ok(caller)
    }

    /// PERMISSION_DENIED unless the caller's kind and role are allowed to `action`.
    pub fn authorize(&self, action: &str, permission: &Permission) -> Result<(), Error> {
        let kind_ok = permission.kinds.is_empty() || permission.kinds.contains(&self.kind());
        let role_ok = permission.roles.contains(&self.role);
        if kind_ok && role_ok {
            Ok(())
        } else {
            Err(Error::Forbidden(format!(
                "a {} organisation with role {} may not {action}",
                self.kind().as_str(),
                self.role
            )))
        }
    }
}
