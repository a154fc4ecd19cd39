//! Who may grant or withdraw a lawful basis other than consent.
//!
//! An agreement has two sides: the disclosing parties (prison healthcare and
//! providers, the data controllers whose information it lets go) and the
//! recipients. Only governance of a disclosing party, or national governance,
//! registers or revokes one, and a recipient never grants itself access: a
//! caller matched by any recipient, by code or by kind, is refused whatever
//! else holds.

use super::decision::Recipient;
use throughcare_platform::identity::OrganisationKind;

/// Who asks: its organisation's code and kind, and whether it acts in the
/// governance role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grantor<'a> {
    pub code: &'a str,
    pub kind: OrganisationKind,
    pub governance: bool,
}

/// Why a grantor may not register or revoke an agreement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Only the governance role grants or withdraws a lawful basis.
    NotGovernance,
    /// The caller would grant itself access.
    Recipient,
    /// The caller is neither national nor one of the disclosing parties.
    NotADisclosingParty,
}

impl Refusal {
    /// Says why, naming no organisation.
    pub fn message(self) -> &'static str {
        match self {
            Refusal::NotGovernance => {
                "only information governance may register or revoke a lawful basis"
            }
            Refusal::Recipient => "a recipient of an agreement may not grant itself access",
            Refusal::NotADisclosingParty => {
                "only governance of a disclosing party, or national governance, may register or revoke this agreement"
            }
        }
    }
}

/// The organisations whose information an agreement can let go: the data
/// controllers.
pub fn is_data_controller(kind: OrganisationKind) -> bool {
    matches!(
        kind,
        OrganisationKind::PrisonHealthcare | OrganisationKind::Provider
    )
}

/// Whether `recipients` name the grantor, by its code or by its kind.
pub fn is_recipient(grantor: &Grantor<'_>, recipients: &[Recipient]) -> bool {
    recipients.iter().any(|r| match r {
        Recipient::Organisation(code) => code == grantor.code,
        Recipient::Kind(kind) => *kind == grantor.kind,
    })
}

/// Governance of a disclosing party, or national governance.
fn speaks_for_the_discloser(grantor: &Grantor<'_>, parties: &[String]) -> Result<(), Refusal> {
    if !grantor.governance {
        return Err(Refusal::NotGovernance);
    }
    if grantor.kind == OrganisationKind::National || parties.iter().any(|p| p == grantor.code) {
        Ok(())
    } else {
        Err(Refusal::NotADisclosingParty)
    }
}

/// Whether the grantor may register an agreement disclosed by `parties` to
/// `recipients`.
pub fn may_register(
    grantor: &Grantor<'_>,
    parties: &[String],
    recipients: &[Recipient],
) -> Result<(), Refusal> {
    speaks_for_the_discloser(grantor, parties)?;
    if is_recipient(grantor, recipients) {
        return Err(Refusal::Recipient);
    }
    Ok(())
}

/// Whether the grantor may revoke an agreement disclosed by `parties`. A
/// recipient that is also a disclosing party may: revoking grants nothing.
/// An agreement with no recorded parties only national governance revokes.
pub fn may_revoke(grantor: &Grantor<'_>, parties: &[String]) -> Result<(), Refusal> {
    speaks_for_the_discloser(grantor, parties)
}

#[cfg(test)]
mod tests {
    use super::*;
    use OrganisationKind as K;

    fn grantor(code: &str, kind: K) -> Grantor<'_> {
        Grantor {
            code,
            kind,
            governance: true,
        }
    }

    fn parties(codes: &[&str]) -> Vec<String> {
        codes.iter().map(|c| (*c).to_owned()).collect()
    }

    #[test]
    fn a_disclosing_party_or_national_governance_registers() {
        let to_probation = [Recipient::Kind(K::Probation)];
        let lei = grantor("LEI", K::PrisonHealthcare);
        assert_eq!(
            may_register(&lei, &parties(&["LEI"]), &to_probation),
            Ok(())
        );
        let national = grantor("NHSE", K::National);
        assert_eq!(
            may_register(&national, &parties(&["LEI"]), &to_probation),
            Ok(())
        );
        let other = grantor("NMI", K::PrisonHealthcare);
        assert_eq!(
            may_register(&other, &parties(&["LEI"]), &to_probation),
            Err(Refusal::NotADisclosingParty)
        );
        let practitioner = Grantor {
            governance: false,
            ..lei
        };
        assert_eq!(
            may_register(&practitioner, &parties(&["LEI"]), &to_probation),
            Err(Refusal::NotGovernance)
        );
    }

    #[test]
    fn a_recipient_never_grants_itself_access() {
        let lei = grantor("LEI", K::PrisonHealthcare);
        let by_code = [Recipient::Organisation("LEI".into())];
        let by_kind = [Recipient::Kind(K::PrisonHealthcare)];
        for recipients in [&by_code[..], &by_kind[..]] {
            assert_eq!(
                may_register(&lei, &parties(&["LEI"]), recipients),
                Err(Refusal::Recipient)
            );
        }
        let national = grantor("NHSE", K::National);
        assert_eq!(
            may_register(&national, &[], &[Recipient::Kind(K::National)]),
            Err(Refusal::Recipient)
        );
    }

    #[test]
    fn only_parties_or_national_governance_revoke() {
        let lei = grantor("LEI", K::PrisonHealthcare);
        assert_eq!(may_revoke(&lei, &parties(&["NMI", "LEI"])), Ok(()));
        assert_eq!(
            may_revoke(&lei, &parties(&["NMI"])),
            Err(Refusal::NotADisclosingParty)
        );
        assert_eq!(
            may_revoke(&lei, &[]),
            Err(Refusal::NotADisclosingParty),
            "an agreement without parties only national governance revokes"
        );
        assert_eq!(may_revoke(&grantor("NHSE", K::National), &[]), Ok(()));
    }
}
