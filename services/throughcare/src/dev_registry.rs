//! The development organisation registry: a small, realistic East Midlands
//! and West Midlands setting (prisons, probation delivery units, providers,
//! commissioners) so every role can be tried out. Codes follow the real
//! shapes: prison codes, NHS ODS codes, ONS local authority codes.

use throughcare_platform::identity::{
    AreaConfig, AreaType, OrganisationConfig, OrganisationKind, Role,
};

fn area(area_type: AreaType, code: &str) -> AreaConfig {
    AreaConfig {
        area_type,
        code: code.to_owned(),
    }
}

fn org(
    code: &str,
    name: &str,
    kind: OrganisationKind,
    areas: Vec<AreaConfig>,
) -> OrganisationConfig {
    OrganisationConfig {
        code: code.to_owned(),
        name: name.to_owned(),
        kind,
        areas,
    }
}

/// Every organisation the development system knows.
pub(crate) fn organisations() -> Vec<OrganisationConfig> {
    use AreaType::{
        IntegratedCareBoard, LocalAuthority, Prison, ProbationDeliveryUnit, ProbationRegion,
    };
    use OrganisationKind::{Commissioner, PrisonHealthcare, Probation, Provider, PublicHealth};
    // An organisation whose one area has its own code.
    let own = |code: &str, name: &str, kind, area_type| {
        org(code, name, kind, vec![area(area_type, code)])
    };
    let prison = |code: &str, name: &str| own(code, name, PrisonHealthcare, Prison);
    let region = |code: &str, name: &str| own(code, name, Probation, ProbationRegion);
    let public_health = |code: &str, name: &str| own(code, name, PublicHealth, LocalAuthority);
    let provider = |code: &str, name: &str| org(code, name, Provider, vec![]);
    let pdu = |code: &str, name: &str, region: &str| {
        org(
            code,
            name,
            Probation,
            vec![
                area(ProbationDeliveryUnit, code),
                area(ProbationRegion, region),
            ],
        )
    };
    vec![
        prison("LEI", "HMP Leicester healthcare"),
        prison("NMI", "HMP Nottingham healthcare"),
        prison("LCI", "HMP Lincoln healthcare"),
        prison("BMI", "HMP Birmingham healthcare"),
        region("EMR", "East Midlands probation region"),
        region("WMR", "West Midlands probation region"),
        pdu("EMR-LEI", "Leicester probation delivery unit", "EMR"),
        pdu("EMR-NOT", "Nottingham probation delivery unit", "EMR"),
        pdu("EMR-LIN", "Lincolnshire probation delivery unit", "EMR"),
        pdu("WMR-BIR", "Birmingham probation delivery unit", "WMR"),
        provider("RT5", "Leicestershire Partnership NHS Trust"),
        provider("RHA", "Nottinghamshire Healthcare NHS Foundation Trust"),
        provider("TP-LEI", "Leicester drug and alcohol service"),
        provider("TP-NOT", "Nottingham drug and alcohol service"),
        provider("C82010", "Leicester city centre GP practice"),
        provider("V00123", "Leicester community dental service"),
        provider("SSS-LEI", "Leicester stop smoking service"),
        provider("SH-LEI", "Leicester sexual health service"),
        org(
            "QK1",
            "Leicester, Leicestershire and Rutland ICB",
            Commissioner,
            vec![
                area(IntegratedCareBoard, "QK1"),
                area(LocalAuthority, "E06000016"),
                area(LocalAuthority, "E06000017"),
                area(LocalAuthority, "E10000018"),
            ],
        ),
        org(
            "QT1",
            "Nottingham and Nottinghamshire ICB",
            Commissioner,
            vec![
                area(IntegratedCareBoard, "QT1"),
                area(LocalAuthority, "E06000018"),
                area(LocalAuthority, "E10000024"),
            ],
        ),
        public_health("E06000016", "Leicester City Council public health"),
        public_health("E06000018", "Nottingham City Council public health"),
        org(
            "NHSE-HJ",
            "NHS England Health and Justice",
            OrganisationKind::National,
            vec![area(AreaType::National, "ENG")],
        ),
    ]
}

/// The roles worth a development token for each kind of organisation.
pub(crate) fn roles_for(kind: OrganisationKind) -> &'static [Role] {
    match kind {
        OrganisationKind::PrisonHealthcare => &[Role::System, Role::Practitioner],
        OrganisationKind::Probation => &[
            Role::System,
            Role::Practitioner,
            Role::HealthLead,
            Role::Governance,
        ],
        OrganisationKind::Provider => &[Role::System, Role::Practitioner],
        OrganisationKind::Commissioner | OrganisationKind::PublicHealth => &[Role::Analyst],
        OrganisationKind::National => &[Role::Analyst, Role::Auditor, Role::Governance],
    }
}
