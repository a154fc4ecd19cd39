//! `throughcare demo`: a synthetic population driven through the running
//! system over gRPC, as the organisations themselves would — releases from
//! four prisons into four probation delivery units, consents (some later
//! withdrawn), assessments, referrals worked by providers through their
//! lifecycle (rejections, did-not-attends, cancellations), reversals and
//! disclosure requests — then the indicator table a commissioner sees.
//!
//! Releases are dated in the last three closed months (their assessments a
//! few days later), so the indicators service publishes them as soon as the
//! backlog settles. Referrals happen now, so their indicators are published
//! when this month closes.
//!
//! The demo keeps its own ledger of the facts it caused ([`ledger`]) and,
//! once the printed month is published, says beside each published cell
//! whether it agrees with its own tally ([`oracle`]) under the disclosure
//! rules ([`check`]); it fails if any cell disagrees.

mod check;
mod journey;
mod ledger;
mod oracle;
mod people;
mod referral;
mod rules;
mod table;

use crate::client::{Connection, Service, dev_token};
use anyhow::Context;
use chrono::{Datelike, Duration, NaiveDate, Utc};
use futures::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use journey::Tally;
use std::collections::HashMap;
use std::sync::Arc;
use throughcare_platform::grpc::Bearer;
use throughcare_proto::indicators::v1 as ind;
use throughcare_proto::indicators::v1::indicators_service_client::IndicatorsServiceClient;
use throughcare_proto::referrals::v1::referrals_service_client::ReferralsServiceClient;
use throughcare_proto::referrals::v1::transitions_service_client::TransitionsServiceClient;
use throughcare_proto::types::v1 as types;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

/// The national caseload (people in contact with probation in England).
const NATIONAL_CASELOAD: u32 = 261_196;

#[derive(Debug, clap::Args)]
pub(crate) struct DemoArgs {
    /// How many people to release: a handful up to the national caseload.
    #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u32).range(1..=i64::from(NATIONAL_CASELOAD)))]
    people: u32,
    /// People driven at once.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Seed of the synthetic population (the same seed, the same people).
    #[arg(long)]
    seed: Option<u64>,
    /// The probation delivery unit whose indicators to print.
    #[arg(long, default_value = "EMR-LEI")]
    unit: String,
    /// How long to wait for the publication, in seconds.
    #[arg(long, default_value_t = 180)]
    wait: u64,
}

/// One prison and the community it releases into.
struct Site {
    prison: &'static str,
    unit: &'static str,
    region: &'static str,
    local_authority: &'static str,
    icb: &'static str,
    substance_service: &'static str,
    mental_health_trust: &'static str,
}

/// The development registry's prisons and where their people go.
const SITES: [Site; 4] = [
    Site {
        prison: "LEI",
        unit: "EMR-LEI",
        region: "EMR",
        local_authority: "E06000016",
        icb: "QK1",
        substance_service: "TP-LEI",
        mental_health_trust: "RT5",
    },
    Site {
        prison: "NMI",
        unit: "EMR-NOT",
        region: "EMR",
        local_authority: "E06000018",
        icb: "QT1",
        substance_service: "TP-NOT",
        mental_health_trust: "RHA",
    },
    Site {
        prison: "LCI",
        unit: "EMR-LIN",
        region: "EMR",
        local_authority: "E10000019",
        icb: "QJM",
        substance_service: "TP-NOT",
        mental_health_trust: "RHA",
    },
    Site {
        prison: "BMI",
        unit: "WMR-BIR",
        region: "WMR",
        local_authority: "E08000025",
        icb: "QHL",
        substance_service: "TP-LEI",
        mental_health_trust: "RT5",
    },
];

impl Site {
    /// Where a person released from this site's prison goes.
    fn destination(&self) -> types::Destination {
        types::Destination {
            local_authority: self.local_authority.into(),
            probation_region: self.region.into(),
            probation_delivery_unit: self.unit.into(),
            integrated_care_board: self.icb.into(),
            approved_premises: String::new(),
        }
    }
}

type Authed = InterceptedService<Channel, Bearer>;

/// Channels to the three services and every development identity.
struct System {
    referrals: Channel,
    sharing: Channel,
    indicators: Channel,
    tokens: HashMap<(String, String), Bearer>,
}

impl System {
    /// Channels to the services and the development token of every
    /// organisation and role, from `throughcare dev`'s data directory.
    async fn connect(connection: &Connection) -> anyhow::Result<Self> {
        let mut tokens = HashMap::new();
        for organisation in crate::dev_registry::organisations() {
            for role in crate::dev_registry::roles_for(organisation.kind) {
                let token = dev_token(connection.data_dir(), &organisation.code, role.as_str())?;
                let bearer = Bearer::new(&token).context("a token")?;
                tokens.insert(
                    (organisation.code.clone(), role.as_str().to_owned()),
                    bearer,
                );
            }
        }
        Ok(System {
            referrals: connection.channel(Service::Referrals).await?,
            sharing: connection.channel(Service::Sharing).await?,
            indicators: connection.channel(Service::Indicators).await?,
            tokens,
        })
    }

    fn channel(&self, service: Service) -> Channel {
        match service {
            Service::Referrals => self.referrals.clone(),
            Service::Sharing => self.sharing.clone(),
            Service::Indicators => self.indicators.clone(),
        }
    }

    fn authed(&self, service: Service, organisation: &str, role: &str) -> Authed {
        let bearer = self.tokens[&(organisation.to_owned(), role.to_owned())].clone();
        InterceptedService::new(self.channel(service), bearer)
    }

    fn transitions(&self, prison: &str) -> TransitionsServiceClient<Authed> {
        TransitionsServiceClient::new(self.authed(Service::Referrals, prison, "system"))
    }

    fn referrals(&self, organisation: &str, role: &str) -> ReferralsServiceClient<Authed> {
        ReferralsServiceClient::new(self.authed(Service::Referrals, organisation, role))
    }
}

/// The first day of the month `months` before `day`'s month.
fn month_start(day: NaiveDate, months_back: u32) -> NaiveDate {
    let index = day.year() * 12 + day.month0() as i32 - months_back as i32;
    NaiveDate::from_ymd_opt(index.div_euclid(12), index.rem_euclid(12) as u32 + 1, 1)
        .expect("a month start")
}

/// The last three months closed (ended at least the 14 grace days ago).
fn closed_months(today: NaiveDate) -> (NaiveDate, NaiveDate) {
    let last_closed_end = month_start(today - Duration::days(14), 0) - Duration::days(1);
    let first = month_start(last_closed_end, 2);
    (first, last_closed_end)
}

/// The query that tells what has been published (its latest sequence).
fn latest() -> ind::QueryIndicatorsRequest {
    ind::QueryIndicatorsRequest {
        page_size: 1,
        ..Default::default()
    }
}

pub(crate) async fn run(args: DemoArgs, connection: &Connection) -> anyhow::Result<()> {
    let system = Arc::new(System::connect(connection).await?);
    let run = args
        .seed
        .unwrap_or_else(|| Utc::now().timestamp_micros() as u64);
    let today = Utc::now().date_naive();
    let (first, last) = closed_months(today);
    let mut analyst =
        IndicatorsServiceClient::new(system.authed(Service::Indicators, "NHSE-HJ", "analyst"));
    let before = analyst
        .query_indicators(latest())
        .await
        .context("asking the indicators service what it has published")?
        .into_inner()
        .sequence;
    let month = types::Period {
        granularity: types::PeriodGranularity::Month as i32,
        year: last.year(),
        number: last.month() as i32,
    };
    let published_before = table::any_published(&mut analyst, &args.unit, month)
        .await
        .context("asking the indicators service what it has published")?;

    println!(
        "Releasing {} people from {} prisons, dated {first} to {last} (seed {run})",
        args.people,
        SITES.len()
    );
    let (tally, ledger) = release_everyone(&system, &args, run, (first, last)).await?;
    print_tally(&tally);

    let published =
        wait_for_publication(&mut analyst, before, (args.unit.as_str(), month), args.wait).await?;
    if !published {
        println!(
            "Nothing new was published within {}s: the service is still settling, or this run \
             changed nothing in the months already published. Showing what is published.",
            args.wait
        );
    }
    if published_before {
        println!(
            "Warning: {}-{:02} had figures published for {} before this run, so they count more \
             than this run did; the demo's tally is only valid for a month whose figures this run \
             alone produced, so disagreement is shown but not treated as an error.",
            month.year, month.number, args.unit
        );
    }
    let rules = rules::Rules::standard();
    let counted = oracle::tally(&ledger, &rules, &args.unit, month_days(last));
    let (whole, every) = table::print(&mut analyst, &args.unit, month, &rules, &counted).await?;
    // The tally is a check only on figures this run alone produced.
    if published && !published_before && (whole.contradicted() || every.contradicted()) {
        anyhow::bail!("the published indicators disagree with the demo's own tally");
    }
    Ok(())
}

/// The first and last days of `last`'s month.
fn month_days(last: NaiveDate) -> (NaiveDate, NaiveDate) {
    (month_start(last, 0), last)
}

/// Drives every person's journey, `args.concurrency` at a time, with a
/// progress bar; what they did, in counts and person by person.
async fn release_everyone(
    system: &Arc<System>,
    args: &DemoArgs,
    run: u64,
    (first, last): (NaiveDate, NaiveDate),
) -> anyhow::Result<(Tally, Vec<ledger::Person>)> {
    let bar = ProgressBar::new(u64::from(args.people)).with_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} people  {per_sec}  eta {eta}")
            .expect("a progress template"),
    );
    let mut tally = Tally::default();
    let mut ledger = Vec::with_capacity(args.people as usize);
    let mut journeys = futures::stream::iter(0..u64::from(args.people))
        .map(|n| {
            let system = Arc::clone(system);
            async move { journey::person(&system, run, n, first, last).await }
        })
        .buffer_unordered(args.concurrency.max(1));
    while let Some(result) = journeys.next().await {
        let (done, person) = result?;
        tally.add(&done);
        ledger.push(person);
        bar.inc(1);
    }
    bar.finish();
    Ok((tally, ledger))
}

fn print_tally(tally: &Tally) {
    println!(
        "{} releases ({} reversed), {} assessments, {} referrals ({} rejected, {} cancelled; \
         {} attended, {} did not attend), {} consents ({} withdrawn), {} disclosures permitted, \
         {} denied, {} surveys offered ({} returned)",
        tally.releases,
        tally.reversals,
        tally.assessments,
        tally.referrals,
        tally.rejected,
        tally.cancelled,
        tally.attended,
        tally.did_not_attend,
        tally.consents,
        tally.withdrawals,
        tally.disclosures_permitted,
        tally.disclosures_denied,
        tally.surveys_offered,
        tally.surveys_returned
    );
}

/// How long no new snapshot must appear, after the run and after the month
/// is first seen published, before the figures are taken as final: longer
/// than `throughcare dev`'s settle time (15 s) and publisher tick (5 s), so a
/// month published part-way through the run is read only after its revision.
const QUIET: std::time::Duration = std::time::Duration::from_secs(21);

/// Waits up to `wait` seconds for the months to settle and be published:
/// whether a snapshot after `before` appeared with figures for the unit and
/// month printed, and then nothing newer for [`QUIET`].
async fn wait_for_publication(
    analyst: &mut IndicatorsServiceClient<Authed>,
    before: i64,
    (unit, month): (&str, types::Period),
    wait: u64,
) -> anyhow::Result<bool> {
    let spinner =
        ProgressBar::new_spinner().with_message("waiting for the indicators to be published");
    spinner.enable_steady_tick(std::time::Duration::from_millis(120));
    let start = std::time::Instant::now();
    let deadline = start + std::time::Duration::from_secs(wait);
    let (mut seen, mut since) = (before, start);
    let mut published = false;
    let published = loop {
        let response = analyst.query_indicators(latest()).await?.into_inner();
        if response.sequence != seen {
            (seen, since) = (response.sequence, std::time::Instant::now());
            published = published
                || (response.sequence > before
                    && table::any_published(analyst, unit, month).await?);
        }
        if published && since.elapsed() >= QUIET {
            break true;
        }
        if std::time::Instant::now() > deadline {
            break published;
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    };
    spinner.finish_and_clear();
    Ok(published)
}
