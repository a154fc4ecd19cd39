//! Lawful bases other than consent, registered by information governance.

use super::{App, complete};
use crate::domain::convert;
use crate::domain::decision::{Agreement, Scope};
use crate::domain::governance::{self, Grantor, Refusal};
use crate::store::{self, AgreementRow, Reader};
use throughcare_platform::clock::to_timestamp;
use throughcare_platform::error::{Error, Result};
use throughcare_platform::idempotency::once;
use throughcare_platform::identifiers::new_id;
use throughcare_platform::identity::{Caller, Role};
use throughcare_platform::validation::{FieldViolation, Violations};
use throughcare_proto::sharing::v1 as pb;

const MAX_TEXT: usize = 500;

/// A stored agreement: as the decision sees it, and as the wire shows it.
pub(crate) fn stored_agreement(row: &AgreementRow) -> Result<(Agreement, pb::Agreement)> {
    let mut wire: pb::Agreement = prost::Message::decode(row.body.as_slice())
        .map_err(|e| Error::internal("decoding a stored agreement", e))?;
    // The column is what revocation is decided on; the wire shows the same.
    wire.disclosing_parties = store::split_codes(&row.disclosing_parties);
    wire.state = if row.revoked_at.is_some() {
        pb::AgreementState::Revoked
    } else {
        pb::AgreementState::Active
    } as i32;
    let provision = convert::stored_provision(&pb::Provision {
        r#type: pb::ProvisionType::Permit as i32,
        recipients: wire.recipients.clone(),
        purposes: wire.purposes.clone(),
        categories: wire.categories.clone(),
        period: wire.period,
        exceptions: Vec::new(),
    });
    let domain = Agreement {
        id: row.agreement_id.clone(),
        basis: wire.basis_type(),
        scope: provision.scope,
        revoked_at: row.revoked_at,
    };
    Ok((domain, wire))
}

/// The caller as the governance rules see it.
fn grantor(caller: &Caller) -> Grantor<'_> {
    Grantor {
        code: caller.code(),
        kind: caller.kind(),
        governance: caller.role == Role::Governance,
    }
}

fn refused(refusal: Refusal) -> Error {
    Error::Forbidden(refusal.message().to_owned())
}

/// An agreement to register, validated: its lawful basis, its disclosing
/// parties and what it covers.
struct Asked {
    basis: pb::LawfulBasisType,
    parties: Vec<String>,
    scope: Scope,
}

fn text(v: &mut Violations, value: &str, field: &str, required: bool) {
    if required && value.trim().is_empty() {
        v.push(FieldViolation::missing(field));
    } else if value.chars().count() > MAX_TEXT {
        v.push(FieldViolation::new(
            field,
            format!("must be at most {MAX_TEXT} characters"),
        ));
    }
}

impl App {
    /// An agreement to register, validated.
    fn agreement_asked(&self, r: &pb::RegisterAgreementRequest) -> Result<Asked> {
        let mut v = Violations::new();
        let basis = match pb::LawfulBasisType::try_from(r.basis_type) {
            Ok(pb::LawfulBasisType::Unspecified) => {
                v.check(Err(FieldViolation::missing("basis_type")))
            }
            Ok(pb::LawfulBasisType::Consent) => v.check(Err(FieldViolation::new(
                "basis_type",
                "consent is recorded with ConsentService",
            ))),
            Ok(b) => Some(b),
            Err(_) => v.check(Err(FieldViolation::new(
                "basis_type",
                "is not a known lawful basis",
            ))),
        };
        text(&mut v, &r.title, "title", true);
        text(&mut v, &r.legal_reference, "legal_reference", true);
        // Stored as sent, read back with the decision's scope; validated here
        // for its violations and for who it names as recipients.
        let scope = convert::scope(
            &mut v,
            "",
            &r.recipients,
            &r.purposes,
            &r.categories,
            r.period.as_ref(),
            &self.registry,
        );
        if r.recipients.is_empty() {
            v.push(FieldViolation::new(
                "recipients",
                "must name who the basis lets receive information",
            ));
        }
        let parties = convert::disclosing_parties(
            &mut v,
            "disclosing_parties",
            &r.disclosing_parties,
            &self.registry,
        );
        let basis = complete(v.finish(|| basis)?)?;
        Ok(Asked {
            basis,
            parties,
            scope,
        })
    }

    pub async fn register_agreement(
        &self,
        caller: &Caller,
        r: &pb::RegisterAgreementRequest,
    ) -> Result<pb::RegisterAgreementResponse> {
        let now = self.now();
        let Asked {
            basis,
            parties,
            scope,
        } = self.agreement_asked(r)?;
        governance::may_register(&grantor(caller), &parties, &scope.recipients).map_err(refused)?;
        let parties = &parties;
        once(
            &self.transactions,
            caller.code(),
            r,
            |mut work| async move {
                let wire = pb::Agreement {
                    agreement_id: new_id(),
                    basis_type: basis as i32,
                    title: r.title.trim().to_owned(),
                    legal_reference: r.legal_reference.trim().to_owned(),
                    recipients: r.recipients.clone(),
                    purposes: r.purposes.clone(),
                    categories: r.categories.clone(),
                    period: r.period,
                    state: pb::AgreementState::Active as i32,
                    registered_by: caller.code().to_owned(),
                    registered_at: Some(to_timestamp(now)),
                    disclosing_parties: parties.clone(),
                };
                let row = AgreementRow {
                    agreement_id: wire.agreement_id.clone(),
                    basis_type: basis.as_str_name().to_owned(),
                    body: prost::Message::encode_to_vec(&wire),
                    registered_by: caller.code().to_owned(),
                    registered_at: now,
                    revoked_at: None,
                    disclosing_parties: store::join_codes(parties),
                };
                store::insert_agreement(work.tx(), &row).await?;
                let agreement = Some(wire);
                Ok((work, pb::RegisterAgreementResponse { agreement }))
            },
        )
        .await
    }

    pub async fn revoke_agreement(
        &self,
        caller: &Caller,
        r: &pb::RevokeAgreementRequest,
    ) -> Result<pb::RevokeAgreementResponse> {
        if r.agreement_id.is_empty() {
            return Err(FieldViolation::missing("agreement_id").into());
        }
        let now = self.now();
        once(
            &self.transactions,
            caller.code(),
            r,
            |mut work| async move {
                let mut row = store::lock_agreement(work.tx(), &r.agreement_id)
                    .await?
                    .ok_or(Error::NotFound("agreement"))?;
                // PERMISSION_DENIED rather than NOT_FOUND: any governance user
                // may list every agreement, so its existence is no secret.
                let parties = store::split_codes(&row.disclosing_parties);
                governance::may_revoke(&grantor(caller), &parties).map_err(refused)?;
                if row.revoked_at.is_some() {
                    return Err(Error::precondition(
                        "agreement",
                        "agreement is already revoked",
                    ));
                }
                store::revoke_agreement(work.tx(), &row.agreement_id, now).await?;
                row.revoked_at = Some(now);
                let (_, wire) = stored_agreement(&row)?;
                let agreement = Some(wire);
                Ok((work, pb::RevokeAgreementResponse { agreement }))
            },
        )
        .await
    }

    pub async fn list_agreements(
        &self,
        r: &pb::ListAgreementsRequest,
    ) -> Result<pb::ListAgreementsResponse> {
        let agreements = store::agreements(Reader::Db(self.db()))
            .await?
            .iter()
            .filter(|row| r.include_revoked || row.revoked_at.is_none())
            .map(|row| stored_agreement(row).map(|(_, wire)| wire))
            .collect::<Result<_>>()?;
        Ok(pb::ListAgreementsResponse { agreements })
    }
}
