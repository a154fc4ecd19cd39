//! The role commands: every RPC of the three services, for people and
//! scripts, with protobuf JSON in (a file, standard input, or inline) and one
//! JSON line out per response (streams print as they arrive; the CSV export
//! prints the CSV itself).

use crate::client::{self, Connection, RequestError, Service};
use anyhow::Context;
use std::io::{Read, Write};

const REFERRALS: &str = "throughcare.referrals.v1.ReferralsService";
const TRANSITIONS: &str = "throughcare.referrals.v1.TransitionsService";
const ASSESSMENTS: &str = "throughcare.referrals.v1.AssessmentsService";
const CONTINUITY: &str = "throughcare.referrals.v1.ContinuityService";
const CONSENT: &str = "throughcare.sharing.v1.ConsentService";
const AGREEMENTS: &str = "throughcare.sharing.v1.AgreementsService";
const DISCLOSURE: &str = "throughcare.sharing.v1.DisclosureService";
const AUDIT: &str = "throughcare.sharing.v1.AuditService";
const INDICATORS: &str = "throughcare.indicators.v1.IndicatorsService";

use Service::{Indicators, Referrals, Sharing};

#[derive(Debug, clap::Subcommand)]
pub(crate) enum RoleCommand {
    /// Prison healthcare: notify | reverse | get a release.
    Release(Call),
    /// Prison and probation systems: reception | transfer | community-sentence |
    /// approved-premises | supervision-end | death.
    Transition(Call),
    /// Probation: record | list health assessments; self-report (a person's
    /// outcome and experience survey).
    Assessment(Call),
    /// Referrers and providers: request | update | get | list | watch referrals.
    Referral(Call),
    /// Probation: list | watch continuity tasks, acknowledge-alert.
    Task(Call),
    /// record | withdraw | list a person's consent.
    Consent(Call),
    /// Governance: register | revoke | list information sharing agreements and lawful bases.
    Agreement(Call),
    /// request a disclosure; list the disclosures about a person; watch pushed deliveries.
    Disclosure(Call),
    /// Auditors: verify the audit chain; list entries.
    Audit(Call),
    /// Commissioners: list | query | watch | export (CSV) indicators;
    /// record-structure | list-structure for structure indicators.
    Indicators(Call),
}

#[derive(Debug, clap::Args)]
pub(crate) struct Call {
    /// What to do (see the command's help).
    verb: String,
    /// The request as protobuf JSON: a file, `-` for standard input, or the
    /// JSON itself. An empty request (`{}`) when absent.
    request: Option<String>,
}

/// One verb of a role command: (command, verb, the service it calls, that
/// service's full name, the method).
type Verb = (
    &'static str,
    &'static str,
    Service,
    &'static str,
    &'static str,
);

/// Every verb of every role command, in the order their help lists them.
#[rustfmt::skip]
const VERBS: &[Verb] = &[
    ("release", "notify", Referrals, TRANSITIONS, "NotifyRelease"),
    ("release", "reverse", Referrals, TRANSITIONS, "ReverseRelease"),
    ("release", "get", Referrals, TRANSITIONS, "GetRelease"),
    ("release", "list", Referrals, TRANSITIONS, "ListReleases"),
    ("release", "watch", Referrals, TRANSITIONS, "WatchReleases"),
    ("transition", "reception", Referrals, TRANSITIONS, "NotifyReception"),
    ("transition", "transfer", Referrals, TRANSITIONS, "NotifyTransfer"),
    ("transition", "community-sentence", Referrals, TRANSITIONS, "NotifyCommunitySentence"),
    ("transition", "approved-premises", Referrals, TRANSITIONS, "NotifyApprovedPremisesMove"),
    ("transition", "supervision-end", Referrals, TRANSITIONS, "NotifySupervisionEnd"),
    ("transition", "death", Referrals, TRANSITIONS, "NotifyDeath"),
    ("assessment", "record", Referrals, ASSESSMENTS, "RecordAssessment"),
    ("assessment", "list", Referrals, ASSESSMENTS, "ListAssessments"),
    ("assessment", "self-report", Referrals, ASSESSMENTS, "RecordSelfReport"),
    ("referral", "request", Referrals, REFERRALS, "RequestReferral"),
    ("referral", "update", Referrals, REFERRALS, "UpdateReferral"),
    ("referral", "get", Referrals, REFERRALS, "GetReferral"),
    ("referral", "list", Referrals, REFERRALS, "ListReferrals"),
    ("referral", "watch", Referrals, REFERRALS, "WatchReferrals"),
    ("task", "list", Referrals, CONTINUITY, "ListContinuityTasks"),
    ("task", "watch", Referrals, CONTINUITY, "WatchContinuityTasks"),
    ("task", "acknowledge-alert", Referrals, CONTINUITY, "AcknowledgeAlert"),
    ("consent", "record", Sharing, CONSENT, "RecordConsent"),
    ("consent", "withdraw", Sharing, CONSENT, "WithdrawConsent"),
    ("consent", "list", Sharing, CONSENT, "ListConsents"),
    ("agreement", "register", Sharing, AGREEMENTS, "RegisterAgreement"),
    ("agreement", "revoke", Sharing, AGREEMENTS, "RevokeAgreement"),
    ("agreement", "list", Sharing, AGREEMENTS, "ListAgreements"),
    ("disclosure", "request", Sharing, DISCLOSURE, "RequestDisclosure"),
    ("disclosure", "list", Sharing, DISCLOSURE, "ListDisclosures"),
    ("disclosure", "watch", Sharing, DISCLOSURE, "WatchDeliveries"),
    ("disclosure", "acknowledge", Sharing, DISCLOSURE, "AcknowledgeDelivery"),
    ("audit", "verify", Sharing, AUDIT, "VerifyAuditChain"),
    ("audit", "entries", Sharing, AUDIT, "ListAuditEntries"),
    ("indicators", "list", Indicators, INDICATORS, "ListIndicators"),
    ("indicators", "query", Indicators, INDICATORS, "QueryIndicators"),
    ("indicators", "watch", Indicators, INDICATORS, "WatchSnapshots"),
    ("indicators", "export", Indicators, INDICATORS, "ExportIndicatorsCsv"),
    ("indicators", "record-structure", Indicators, INDICATORS, "RecordStructureIndicator"),
    ("indicators", "list-structure", Indicators, INDICATORS, "ListStructureIndicators"),
];

impl RoleCommand {
    /// The command's name and its call.
    fn parts(&self) -> (&'static str, &Call) {
        match self {
            Self::Release(c) => ("release", c),
            Self::Transition(c) => ("transition", c),
            Self::Assessment(c) => ("assessment", c),
            Self::Referral(c) => ("referral", c),
            Self::Task(c) => ("task", c),
            Self::Consent(c) => ("consent", c),
            Self::Agreement(c) => ("agreement", c),
            Self::Disclosure(c) => ("disclosure", c),
            Self::Audit(c) => ("audit", c),
            Self::Indicators(c) => ("indicators", c),
        }
    }
}

/// The request text: inline JSON, a file, or standard input.
fn request_text(request: Option<&str>) -> anyhow::Result<String> {
    match request {
        None => Ok("{}".to_owned()),
        Some(json) if json.trim_start().starts_with('{') => Ok(json.to_owned()),
        Some("-") => {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .context("reading the request from standard input")?;
            Ok(text)
        }
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| RequestError(format!("cannot read the request file {path}: {e}")).into()),
    }
}

pub(crate) async fn run(command: RoleCommand, connection: &Connection) -> anyhow::Result<()> {
    let (name, call) = command.parts();
    let verbs = VERBS.iter().filter(|(command, ..)| *command == name);
    let Some(&(_, _, service, service_name, method_name)) =
        verbs.clone().find(|(_, verb, ..)| *verb == call.verb)
    else {
        let known: Vec<&str> = verbs.map(|(_, verb, ..)| *verb).collect();
        return Err(RequestError(format!(
            "`{name} {}` is not a command; `{name}` takes: {}",
            call.verb,
            known.join(", ")
        ))
        .into());
    };
    let method = client::method(service_name, method_name);
    let text = request_text(call.request.as_deref())?;
    let request =
        client::from_json(method.input(), &text).map_err(|e| RequestError(format!("{e:#}")))?;
    let bearer = connection.bearer()?;
    let channel = connection.channel(service).await?;
    let csv = method_name == "ExportIndicatorsCsv";
    let mut out = std::io::stdout().lock();
    client::call(channel, bearer.as_deref(), &method, request, |response| {
        if csv {
            let chunk = response
                .get_field_by_name("chunk")
                .and_then(|v| v.as_bytes().cloned())
                .unwrap_or_default();
            out.write_all(&chunk)?;
        } else {
            writeln!(out, "{}", client::to_json(&response))?;
        }
        out.flush()?;
        Ok(())
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_verb_calls_a_method_of_its_service() {
        for &(command, verb, service, service_name, method) in VERBS {
            let package = match service {
                Referrals => "throughcare.referrals.v1.",
                Sharing => "throughcare.sharing.v1.",
                Indicators => "throughcare.indicators.v1.",
            };
            assert!(service_name.starts_with(package), "{command} {verb}");
            client::method(service_name, method);
        }
    }
}
