//! The role commands: every RPC of the three services, for people and
//! scripts, with protobuf JSON in (a file, standard input, or inline) and one
//! JSON line out per response (streams print as they arrive; the CSV export
//! prints the CSV itself).

use crate::client::{self, Connection, RequestError, Service};
use anyhow::Context;
use std::io::{Read, Write};

/// A command's verbs: (verb, the service it calls, that service's full name, the method).
type Verbs = &'static [(&'static str, Service, &'static str, &'static str)];

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
    /// Probation: record | list health assessments.
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

impl RoleCommand {
    fn parts(&self) -> (&'static str, Verbs, &Call) {
        match self {
            Self::Release(c) => (
                "release",
                &[
                    ("notify", Referrals, TRANSITIONS, "NotifyRelease"),
                    ("reverse", Referrals, TRANSITIONS, "ReverseRelease"),
                    ("get", Referrals, TRANSITIONS, "GetRelease"),
                ],
                c,
            ),
            Self::Transition(c) => (
                "transition",
                &[
                    ("reception", Referrals, TRANSITIONS, "NotifyReception"),
                    ("transfer", Referrals, TRANSITIONS, "NotifyTransfer"),
                    (
                        "community-sentence",
                        Referrals,
                        TRANSITIONS,
                        "NotifyCommunitySentence",
                    ),
                    (
                        "approved-premises",
                        Referrals,
                        TRANSITIONS,
                        "NotifyApprovedPremisesMove",
                    ),
                    (
                        "supervision-end",
                        Referrals,
                        TRANSITIONS,
                        "NotifySupervisionEnd",
                    ),
                    ("death", Referrals, TRANSITIONS, "NotifyDeath"),
                ],
                c,
            ),
            Self::Assessment(c) => (
                "assessment",
                &[
                    ("record", Referrals, ASSESSMENTS, "RecordAssessment"),
                    ("list", Referrals, ASSESSMENTS, "ListAssessments"),
                ],
                c,
            ),
            Self::Referral(c) => (
                "referral",
                &[
                    ("request", Referrals, REFERRALS, "RequestReferral"),
                    ("update", Referrals, REFERRALS, "UpdateReferral"),
                    ("get", Referrals, REFERRALS, "GetReferral"),
                    ("list", Referrals, REFERRALS, "ListReferrals"),
                    ("watch", Referrals, REFERRALS, "WatchReferrals"),
                ],
                c,
            ),
            Self::Task(c) => (
                "task",
                &[
                    ("list", Referrals, CONTINUITY, "ListContinuityTasks"),
                    ("watch", Referrals, CONTINUITY, "WatchContinuityTasks"),
                    (
                        "acknowledge-alert",
                        Referrals,
                        CONTINUITY,
                        "AcknowledgeAlert",
                    ),
                ],
                c,
            ),
            Self::Consent(c) => (
                "consent",
                &[
                    ("record", Sharing, CONSENT, "RecordConsent"),
                    ("withdraw", Sharing, CONSENT, "WithdrawConsent"),
                    ("list", Sharing, CONSENT, "ListConsents"),
                ],
                c,
            ),
            Self::Agreement(c) => (
                "agreement",
                &[
                    ("register", Sharing, AGREEMENTS, "RegisterAgreement"),
                    ("revoke", Sharing, AGREEMENTS, "RevokeAgreement"),
                    ("list", Sharing, AGREEMENTS, "ListAgreements"),
                ],
                c,
            ),
            Self::Disclosure(c) => (
                "disclosure",
                &[
                    ("request", Sharing, DISCLOSURE, "RequestDisclosure"),
                    ("list", Sharing, DISCLOSURE, "ListDisclosures"),
                    ("watch", Sharing, DISCLOSURE, "WatchDeliveries"),
                ],
                c,
            ),
            Self::Audit(c) => (
                "audit",
                &[
                    ("verify", Sharing, AUDIT, "VerifyAuditChain"),
                    ("entries", Sharing, AUDIT, "ListAuditEntries"),
                ],
                c,
            ),
            Self::Indicators(c) => (
                "indicators",
                &[
                    ("list", Indicators, INDICATORS, "ListIndicators"),
                    ("query", Indicators, INDICATORS, "QueryIndicators"),
                    ("watch", Indicators, INDICATORS, "WatchSnapshots"),
                    ("export", Indicators, INDICATORS, "ExportIndicatorsCsv"),
                    (
                        "record-structure",
                        Indicators,
                        INDICATORS,
                        "RecordStructureIndicator",
                    ),
                    (
                        "list-structure",
                        Indicators,
                        INDICATORS,
                        "ListStructureIndicators",
                    ),
                ],
                c,
            ),
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
    let (name, verbs, call) = command.parts();
    let Some(&(_, service, service_name, method_name)) =
        verbs.iter().find(|(verb, ..)| *verb == call.verb)
    else {
        let known: Vec<&str> = verbs.iter().map(|(verb, ..)| *verb).collect();
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
