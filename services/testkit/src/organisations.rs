//! The organisations of the test population, each with the role it most
//! often acts in; a suite lists those it acts as, changing a role with
//! [`with_role`] where its tests need another.

use crate::auth::Organisation;
use throughcare_platform::identity::{AreaType, OrganisationKind, Role};

/// A prison's healthcare, its clinical system.
pub const LEI: Organisation = (
    "LEI",
    OrganisationKind::PrisonHealthcare,
    Role::System,
    &[(AreaType::Prison, "LEI")],
);

/// Another prison's healthcare, its clinical system.
pub const NMI: Organisation = (
    "NMI",
    OrganisationKind::PrisonHealthcare,
    Role::System,
    &[(AreaType::Prison, "NMI")],
);

/// A probation region.
pub const EMR: Organisation = (
    "EMR",
    OrganisationKind::Probation,
    Role::Practitioner,
    &[(AreaType::ProbationRegion, "EMR")],
);

/// A probation delivery unit in that region.
pub const EMR_LEI: Organisation = (
    "EMR-LEI",
    OrganisationKind::Probation,
    Role::Practitioner,
    &[
        (AreaType::ProbationDeliveryUnit, "EMR-LEI"),
        (AreaType::ProbationRegion, "EMR"),
    ],
);

/// Another delivery unit in that region.
pub const EMR_NOT: Organisation = (
    "EMR-NOT",
    OrganisationKind::Probation,
    Role::Practitioner,
    &[
        (AreaType::ProbationDeliveryUnit, "EMR-NOT"),
        (AreaType::ProbationRegion, "EMR"),
    ],
);

/// A treatment provider, its system.
pub const TP_LEI: Organisation = ("TP-LEI", OrganisationKind::Provider, Role::System, &[]);

/// An NHS trust, its system.
pub const RT5: Organisation = ("RT5", OrganisationKind::Provider, Role::System, &[]);

/// A GP practice, its system.
pub const C82010: Organisation = ("C82010", OrganisationKind::Provider, Role::System, &[]);

/// An integrated care board, as commissioner.
pub const QK1: Organisation = (
    "QK1",
    OrganisationKind::Commissioner,
    Role::Analyst,
    &[(AreaType::IntegratedCareBoard, "QK1")],
);

/// `organisation` acting in `role`.
pub const fn with_role(organisation: Organisation, role: Role) -> Organisation {
    (organisation.0, organisation.1, role, organisation.3)
}
