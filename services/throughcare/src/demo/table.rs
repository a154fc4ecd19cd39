//! The indicator table a commissioner sees, with the demo's own tally beside
//! the published figures: whether each cell agrees with what the demo did,
//! under the disclosure rules.

use super::Authed;
use super::check::{Mark, judge};
use super::oracle::{Stratum, Tally};
use super::rules::Rules;
use std::collections::HashSet;
use throughcare_proto::indicators::v1 as ind;
use throughcare_proto::indicators::v1::indicators_service_client::IndicatorsServiceClient;
use throughcare_proto::types::v1 as types;

/// Every split the indicators service publishes, the whole population first.
const SPLITS: [ind::StratumType; 6] = [
    ind::StratumType::All,
    ind::StratumType::Sex,
    ind::StratumType::AgeBand,
    ind::StratumType::EthnicGroup,
    ind::StratumType::SexByEthnicGroup,
    ind::StratumType::SexByAgeBand,
];

/// How the published cells of some strata compare with the tally.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Summary {
    pub(super) agree: u32,
    pub(super) unconfirmed: u32,
    pub(super) not_tallied: u32,
    pub(super) disagree: u32,
    /// Cells the tally counts people in that were not published at all.
    pub(super) missing: u32,
}

impl Summary {
    fn add(&mut self, mark: Mark) {
        *match mark {
            Mark::Agrees => &mut self.agree,
            Mark::Unconfirmed => &mut self.unconfirmed,
            Mark::NotTallied => &mut self.not_tallied,
            Mark::Disagrees => &mut self.disagree,
        } += 1;
    }

    fn published(&self) -> u32 {
        self.agree + self.unconfirmed + self.not_tallied + self.disagree
    }

    /// Whether anything published (or left unpublished) contradicts the tally.
    pub(super) fn contradicted(&self) -> bool {
        self.disagree > 0 || self.missing > 0
    }

    fn line(&self, scope: &str) -> String {
        let mut line = format!(
            "{} of {} published cells agree with the demo's own tally{scope}; {} cannot be \
             confirmed; {} not tallied; {} disagree",
            self.agree,
            self.published(),
            self.unconfirmed,
            self.not_tallied,
            self.disagree
        );
        if self.missing > 0 {
            line += &format!("; {} counted by the tally were not published", self.missing);
        }
        line
    }
}

/// The published cells of one unit, month and split, every page.
async fn cells(
    client: &mut IndicatorsServiceClient<Authed>,
    unit: &str,
    month: types::Period,
    split: ind::StratumType,
) -> anyhow::Result<Vec<ind::Cell>> {
    let mut out = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = client
            .query_indicators(ind::QueryIndicatorsRequest {
                areas: vec![types::Area {
                    r#type: types::AreaType::ProbationDeliveryUnit as i32,
                    code: unit.to_owned(),
                }],
                periods: vec![month],
                strata: vec![split as i32],
                page_size: 10_000,
                page_token,
                ..Default::default()
            })
            .await?
            .into_inner();
        out.extend(page.cells);
        if page.next_page_token.is_empty() {
            return Ok(out);
        }
        page_token = page.next_page_token;
    }
}

/// Whether anything is published for the unit and month.
pub(super) async fn any_published(
    client: &mut IndicatorsServiceClient<Authed>,
    unit: &str,
    month: types::Period,
) -> anyhow::Result<bool> {
    Ok(!cells(client, unit, month, ind::StratumType::All)
        .await?
        .is_empty())
}

/// The tally's verdict on one published cell of `split`.
fn mark(rules: &Rules, tally: &Tally, split: ind::StratumType, cell: &ind::Cell) -> Mark {
    let truth = rules
        .index(&cell.indicator_id)
        .filter(|&index| rules.tallied(index))
        .map(|index| {
            let stratum = Stratum::of(split, cell.stratum.as_ref());
            tally.get(&(index, stratum)).copied().unwrap_or_default()
        });
    judge(cell, truth)
}

/// Compares one split's published cells with the tally: its summary, and
/// the ids of indicators the tally counts people in that were not published.
fn compare(
    rules: &Rules,
    tally: &Tally,
    split: ind::StratumType,
    cells: &[ind::Cell],
) -> (Summary, Vec<String>) {
    let mut summary = Summary::default();
    let mut published = HashSet::new();
    for cell in cells {
        summary.add(mark(rules, tally, split, cell));
        if let Some(index) = rules.index(&cell.indicator_id) {
            published.insert((index, Stratum::of(split, cell.stratum.as_ref())));
        }
    }
    let mut missing: Vec<(usize, Stratum)> = tally
        .iter()
        .filter(|((index, stratum), counts)| {
            stratum.split == split
                && counts.den > 0
                && rules.tallied(*index)
                && !published.contains(&(*index, *stratum))
        })
        .map(|(key, _)| *key)
        .collect();
    missing.sort();
    summary.missing = missing.len() as u32;
    let ids = missing
        .into_iter()
        .map(|(index, _)| rules.indicators()[index].id.clone())
        .collect();
    (summary, ids)
}

/// Prints the published indicators for one unit and month (all people) with
/// the tally's mark beside each, then how every stratum's cells compare:
/// the whole population's summary and every stratum's.
pub(super) async fn print(
    client: &mut IndicatorsServiceClient<Authed>,
    unit: &str,
    month: types::Period,
    rules: &Rules,
    tally: &Tally,
) -> anyhow::Result<(Summary, Summary)> {
    let catalogue = client
        .list_indicators(ind::ListIndicatorsRequest {})
        .await?
        .into_inner()
        .indicators;
    let all = cells(client, unit, month, ind::StratumType::All).await?;
    println!();
    println!(
        "Indicators for probation delivery unit {unit}, {}-{:02}, all people (as published):",
        month.year, month.number
    );
    println!(
        "{:<64} {:>9} {:>11} {:>8}  tally",
        "indicator", "numerator", "denominator", "value"
    );
    for indicator in &catalogue {
        if let Some(cell) = all
            .iter()
            .find(|c| c.indicator_id == indicator.indicator_id)
        {
            let mark = mark(rules, tally, ind::StratumType::All, cell);
            println!("{}  {}", table_row(indicator, cell), mark.symbol());
        }
    }
    if all.is_empty() {
        println!("(nothing published for this unit and month yet)");
    }
    let (whole, missing) = compare(rules, tally, ind::StratumType::All, &all);
    for id in missing {
        println!("(not published, though the demo's tally counts people in it: {id})");
    }
    let mut every = whole;
    for split in &SPLITS[1..] {
        let cells = cells(client, unit, month, *split).await?;
        let (summary, _) = compare(rules, tally, *split, &cells);
        for (total, part) in [
            (&mut every.agree, summary.agree),
            (&mut every.unconfirmed, summary.unconfirmed),
            (&mut every.not_tallied, summary.not_tallied),
            (&mut every.disagree, summary.disagree),
            (&mut every.missing, summary.missing),
        ] {
            *total += part;
        }
    }
    print_legend();
    println!("{}", whole.line(""));
    println!("{}", every.line(" across every stratum"));
    Ok((whole, every))
}

fn print_legend() {
    println!();
    println!(
        "* suppressed: a count of 1 to 7, or one that would let a suppressed count be worked out. \
         Other counts are rounded to the nearest 5."
    );
    println!(
        "tally: what the demo counted of what it did, under those rules. ✓ agrees (the published \
         figures are what the rules make of the demo's count); ✗ disagrees; ~ cannot be confirmed \
         (suppressed only to protect other cells); - not tallied (counts facts the demo does not \
         follow)."
    );
    println!();
}

/// One indicator's published figures as a line of the table.
fn table_row(indicator: &ind::Indicator, cell: &ind::Cell) -> String {
    let count = |c: &Option<ind::PublishedCount>| match c {
        Some(c) if c.suppressed => "*".to_owned(),
        Some(c) => c.value.to_string(),
        None => "-".to_owned(),
    };
    let value = match (cell.value, indicator.unit()) {
        (None, _) => "*".to_owned(),
        (Some(v), ind::IndicatorUnit::MedianDays) => format!("{v:.0} d"),
        (Some(v), ind::IndicatorUnit::RatePerThousand) => format!("{v:.0}/1000"),
        (Some(v), _) => format!("{:.0}%", v * 100.0),
    };
    let mut title = indicator.title.clone();
    if title.chars().count() > 63 {
        title = title.chars().take(62).collect::<String>() + "…";
    }
    format!(
        "{title:<64} {:>9} {:>11} {value:>8}",
        count(&cell.numerator),
        count(&cell.denominator)
    )
}
