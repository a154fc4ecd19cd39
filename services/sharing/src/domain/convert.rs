//! Wire to domain, once, at the edge: consents and agreements validated with
//! every violation named.

use super::decision::{Effect, Period, Provision, Recipient, Scope};
use super::governance;
use throughcare_platform::clock::from_timestamp;
use throughcare_platform::identifiers::PersonIds;
use throughcare_platform::identity::{OrganisationKind, Registry};
use throughcare_platform::validation::{FieldViolation, Invalid, Violations};
use throughcare_proto::sharing::v1 as pb;
use throughcare_proto::types::v1::{DataCategory, PersonIdentifiers, TimeRange};

/// Deepest nesting of exceptions, and most provisions in one consent.
const MAX_DEPTH: usize = 5;
const MAX_PROVISIONS: usize = 100;
const MAX_ITEMS: usize = 50;

fn join(parent: &str, field: &str) -> String {
    format!("{parent}.{field}")
}

/// The one person a request names, validated; violations are placed under `person`.
pub fn person(ids: Option<&PersonIdentifiers>) -> Result<PersonIds, Invalid> {
    let ids = ids.ok_or_else(|| FieldViolation::missing("person"))?;
    PersonIds::from_proto(ids).map_err(|e| e.within("person").into())
}

pub fn period(range: Option<&TimeRange>, field: &str) -> Result<Option<Period>, FieldViolation> {
    let Some(range) = range else { return Ok(None) };
    let start = range
        .start
        .as_ref()
        .map(|t| from_timestamp(t, &join(field, "start")))
        .transpose()?;
    let end = range
        .end
        .as_ref()
        .map(|t| from_timestamp(t, &join(field, "end")))
        .transpose()?;
    if let (Some(start), Some(end)) = (start, end)
        && end <= start
    {
        return Err(FieldViolation::new(
            join(field, "end"),
            "is not after start",
        ));
    }
    Ok(Some(Period { start, end }))
}

pub fn purpose(value: i32, field: &str) -> Result<pb::Purpose, FieldViolation> {
    match pb::Purpose::try_from(value) {
        Ok(pb::Purpose::Unspecified) => Err(FieldViolation::missing(field)),
        Ok(pb::Purpose::Commissioning) => Err(FieldViolation::new(
            field,
            "commissioning is served only in aggregate, never person-level",
        )),
        Ok(p) => Ok(p),
        Err(_) => Err(FieldViolation::new(field, "is not a known purpose")),
    }
}

pub fn category(value: i32, field: &str) -> Result<DataCategory, FieldViolation> {
    match DataCategory::try_from(value) {
        Ok(DataCategory::Unspecified) => Err(FieldViolation::missing(field)),
        Ok(c) => Ok(c),
        Err(_) => Err(FieldViolation::new(field, "is not a known data category")),
    }
}

pub fn categories(values: &[i32], field: &str, v: &mut Violations) -> Vec<DataCategory> {
    if values.len() > MAX_ITEMS {
        v.push(FieldViolation::new(
            field,
            format!("must have at most {MAX_ITEMS} items"),
        ));
        return Vec::new();
    }
    values
        .iter()
        .enumerate()
        .filter_map(|(i, c)| v.check(category(*c, &format!("{field}[{i}]"))))
        .collect()
}

pub fn recipient(
    r: &pb::Recipient,
    field: &str,
    registry: &Registry,
) -> Result<Recipient, FieldViolation> {
    use pb::recipient::Recipient as R;
    match &r.recipient {
        None => Err(FieldViolation::missing(field)),
        Some(R::Organisation(code)) if registry.get(code).is_some() => {
            Ok(Recipient::Organisation(code.clone()))
        }
        Some(R::Organisation(_)) => Err(FieldViolation::new(
            join(field, "organisation"),
            "is not a known organisation",
        )),
        Some(R::OrganisationKind(kind)) => {
            throughcare_proto::types::v1::OrganisationKind::try_from(*kind)
                .ok()
                .and_then(OrganisationKind::from_proto)
                .map(Recipient::Kind)
                .ok_or_else(|| {
                    FieldViolation::new(
                        join(field, "organisation_kind"),
                        "is not a known organisation kind",
                    )
                })
        }
    }
}

/// Validates an agreement's disclosing parties, collecting violations: at
/// least one, each a registered data controller (prison healthcare or
/// provider), none twice.
pub fn disclosing_parties(
    v: &mut Violations,
    field: &str,
    codes: &[String],
    registry: &Registry,
) -> Vec<String> {
    if codes.is_empty() {
        v.push(FieldViolation::new(
            field,
            "must name at least one disclosing organisation",
        ));
        return Vec::new();
    }
    if codes.len() > MAX_ITEMS {
        v.push(FieldViolation::new(
            field,
            format!("must have at most {MAX_ITEMS} items"),
        ));
        return Vec::new();
    }
    let mut parties: Vec<String> = Vec::new();
    for (i, code) in codes.iter().enumerate() {
        let at = format!("{field}[{i}]");
        match registry.get(code) {
            None => v.push(FieldViolation::new(at, "is not a known organisation")),
            Some(o) if !governance::is_data_controller(o.kind) => v.push(FieldViolation::new(
                at,
                "is not a data controller (prison healthcare or provider)",
            )),
            Some(_) if parties.contains(code) => {
                v.push(FieldViolation::new(at, "is listed more than once"));
            }
            Some(_) => parties.push(code.clone()),
        }
    }
    parties
}

/// Validates a scope's lists and period, collecting violations.
pub fn scope(
    v: &mut Violations,
    field: &str,
    recipients: &[pb::Recipient],
    purposes: &[i32],
    category_list: &[i32],
    range: Option<&TimeRange>,
    registry: &Registry,
) -> Scope {
    let at = |name: &str| {
        if field.is_empty() {
            name.to_owned()
        } else {
            join(field, name)
        }
    };
    if recipients.len() > MAX_ITEMS {
        v.push(FieldViolation::new(
            at("recipients"),
            format!("must have at most {MAX_ITEMS} items"),
        ));
    }
    Scope {
        recipients: recipients
            .iter()
            .take(MAX_ITEMS)
            .enumerate()
            .filter_map(|(i, r)| {
                v.check(recipient(
                    r,
                    &format!("{}[{i}]", at("recipients")),
                    registry,
                ))
            })
            .collect(),
        purposes: purposes
            .iter()
            .take(MAX_ITEMS)
            .enumerate()
            .filter_map(|(i, p)| v.check(purpose(*p, &format!("{}[{i}]", at("purposes")))))
            .collect(),
        categories: categories(category_list, &at("categories"), v),
        period: v.check(period(range, &at("period"))).flatten(),
    }
}

/// Validates a provision tree.
pub fn provision(
    v: &mut Violations,
    p: Option<&pb::Provision>,
    field: &str,
    registry: &Registry,
) -> Option<Provision> {
    let mut count = 0;
    provision_at(v, p, field, registry, 0, &mut count)
}

fn provision_at(
    v: &mut Violations,
    p: Option<&pb::Provision>,
    field: &str,
    registry: &Registry,
    depth: usize,
    count: &mut usize,
) -> Option<Provision> {
    let Some(p) = p else {
        v.push(FieldViolation::missing(field));
        return None;
    };
    *count += 1;
    if depth > MAX_DEPTH || *count > MAX_PROVISIONS {
        v.push(FieldViolation::new(
            field,
            format!("nests deeper than {MAX_DEPTH} or holds more than {MAX_PROVISIONS} provisions"),
        ));
        return None;
    }
    let effect = v.check(effect(p.r#type, &join(field, "type")));
    let scope = scope(
        v,
        field,
        &p.recipients,
        &p.purposes,
        &p.categories,
        p.period.as_ref(),
        registry,
    );
    let exceptions: Vec<Option<Provision>> = p
        .exceptions
        .iter()
        .enumerate()
        .map(|(i, e)| {
            provision_at(
                v,
                Some(e),
                &format!("{field}.exceptions[{i}]"),
                registry,
                depth + 1,
                count,
            )
        })
        .collect();
    Some(Provision {
        effect: effect?,
        scope,
        exceptions: exceptions.into_iter().collect::<Option<_>>()?,
    })
}

fn effect(value: i32, field: &str) -> Result<Effect, FieldViolation> {
    match pb::ProvisionType::try_from(value) {
        Ok(pb::ProvisionType::Permit) => Ok(Effect::Permit),
        Ok(pb::ProvisionType::Deny) => Ok(Effect::Deny),
        _ => Err(FieldViolation::new(field, "must be PERMIT or DENY")),
    }
}

/// A provision as stored (validated when recorded): read back leniently, so
/// that a later change to the registry cannot break a decision.
pub fn stored_provision(p: &pb::Provision) -> Provision {
    use pb::recipient::Recipient as R;
    Provision {
        effect: if p.r#type == pb::ProvisionType::Deny as i32 {
            Effect::Deny
        } else {
            Effect::Permit
        },
        scope: Scope {
            recipients: p
                .recipients
                .iter()
                .filter_map(|r| match &r.recipient {
                    Some(R::Organisation(code)) => Some(Recipient::Organisation(code.clone())),
                    Some(R::OrganisationKind(kind)) => {
                        throughcare_proto::types::v1::OrganisationKind::try_from(*kind)
                            .ok()
                            .and_then(OrganisationKind::from_proto)
                            .map(Recipient::Kind)
                    }
                    None => None,
                })
                .collect(),
            purposes: p
                .purposes
                .iter()
                .filter_map(|x| pb::Purpose::try_from(*x).ok())
                .collect(),
            categories: p
                .categories
                .iter()
                .filter_map(|x| DataCategory::try_from(*x).ok())
                .collect(),
            period: p
                .period
                .as_ref()
                .and_then(|r| period(Some(r), "").ok().flatten()),
        },
        exceptions: p.exceptions.iter().map(stored_provision).collect(),
    }
}
