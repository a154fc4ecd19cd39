use crate::identifiers::OrganisationCode;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Arc;
use throughcare_proto::types::v1 as pb;

/// What kind of organisation a caller is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrganisationKind {
    PrisonHealthcare,
    Probation,
    Provider,
    Commissioner,
    PublicHealth,
    National,
}

impl OrganisationKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PrisonHealthcare => "prison_healthcare",
            Self::Probation => "probation",
            Self::Provider => "provider",
            Self::Commissioner => "commissioner",
            Self::PublicHealth => "public_health",
            Self::National => "national",
        }
    }

    pub fn to_proto(self) -> pb::OrganisationKind {
        match self {
            Self::PrisonHealthcare => pb::OrganisationKind::PrisonHealthcare,
            Self::Probation => pb::OrganisationKind::Probation,
            Self::Provider => pb::OrganisationKind::Provider,
            Self::Commissioner => pb::OrganisationKind::Commissioner,
            Self::PublicHealth => pb::OrganisationKind::PublicHealth,
            Self::National => pb::OrganisationKind::National,
        }
    }

    pub fn from_proto(kind: pb::OrganisationKind) -> Option<Self> {
        Some(match kind {
            pb::OrganisationKind::Unspecified => return None,
            pb::OrganisationKind::PrisonHealthcare => Self::PrisonHealthcare,
            pb::OrganisationKind::Probation => Self::Probation,
            pb::OrganisationKind::Provider => Self::Provider,
            pb::OrganisationKind::Commissioner => Self::Commissioner,
            pb::OrganisationKind::PublicHealth => Self::PublicHealth,
            pb::OrganisationKind::National => Self::National,
        })
    }
}

/// The kinds of area an organisation can cover.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AreaType {
    ProbationRegion,
    ProbationDeliveryUnit,
    IntegratedCareBoard,
    LocalAuthority,
    Prison,
    National,
}

impl AreaType {
    pub fn to_proto(self) -> pb::AreaType {
        match self {
            Self::ProbationRegion => pb::AreaType::ProbationRegion,
            Self::ProbationDeliveryUnit => pb::AreaType::ProbationDeliveryUnit,
            Self::IntegratedCareBoard => pb::AreaType::IntegratedCareBoard,
            Self::LocalAuthority => pb::AreaType::LocalAuthority,
            Self::Prison => pb::AreaType::Prison,
            Self::National => pb::AreaType::National,
        }
    }
}

/// An area in configuration: `{ type = "local_authority", code = "E06000015" }`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AreaConfig {
    #[serde(rename = "type")]
    pub area_type: AreaType,
    pub code: String,
}

/// One organisation as configured in the registry.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OrganisationConfig {
    pub code: String,
    pub name: String,
    pub kind: OrganisationKind,
    /// The areas the organisation covers; what a commissioner may see.
    #[serde(default)]
    pub areas: Vec<AreaConfig>,
}

/// A known organisation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Organisation {
    pub code: OrganisationCode,
    pub name: String,
    pub kind: OrganisationKind,
    pub areas: Vec<AreaConfig>,
}

/// The organisation registry: every organisation Throughcare knows, by code.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    organisations: HashMap<String, Arc<Organisation>>,
}

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("organisation registry entry {index}: {source}")]
    BadCode {
        index: usize,
        source: crate::identifiers::IdentifierError,
    },
    #[error("organisation {0} appears twice in the registry")]
    Duplicate(String),
}

impl Registry {
    pub fn new(entries: &[OrganisationConfig]) -> Result<Self, RegistryError> {
        let mut organisations = HashMap::new();
        for (index, entry) in entries.iter().enumerate() {
            let code = OrganisationCode::parse(&entry.code)
                .map_err(|source| RegistryError::BadCode { index, source })?;
            let organisation = Organisation {
                code,
                name: entry.name.clone(),
                kind: entry.kind,
                areas: entry.areas.clone(),
            };
            if organisations
                .insert(entry.code.clone(), Arc::new(organisation))
                .is_some()
            {
                return Err(RegistryError::Duplicate(entry.code.clone()));
            }
        }
        Ok(Self { organisations })
    }

    pub fn get(&self, code: &str) -> Option<&Arc<Organisation>> {
        self.organisations.get(code)
    }

    /// Every organisation, in no particular order.
    pub fn organisations(&self) -> impl Iterator<Item = &Arc<Organisation>> {
        self.organisations.values()
    }

    pub fn len(&self) -> usize {
        self.organisations.len()
    }

    pub fn is_empty(&self) -> bool {
        self.organisations.is_empty()
    }
}
