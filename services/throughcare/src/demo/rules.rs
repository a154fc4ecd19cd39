//! The indicator definitions the tally counts by. They are the indicators
//! service's public catalogue (`indicators.toml`, parsed and checked by
//! `throughcare_indicators::catalogue`, which this binary links already for
//! the embedded mode): one reading of the file, not a second parser that
//! could drift from it. Only the definitions are shared; the counting is the
//! demo's own ([`super::oracle`]).

use super::ledger::UNTALLIED;
use throughcare_indicators::catalogue::{Catalogue, Indicator, Rule};
use throughcare_proto::events::v1::ObservedFact;
use throughcare_proto::types::v1::ServiceType;

/// The catalogue, and which of its indicators the ledger can tally.
pub(super) struct Rules {
    catalogue: &'static Catalogue,
    /// The predicate bits set by facts the ledger does not follow.
    untallied: u64,
}

impl Rules {
    pub(super) fn standard() -> Self {
        let catalogue = Catalogue::standard();
        let untallied = UNTALLIED
            .iter()
            .flat_map(|&fact| services().map(move |s| catalogue.mask(fact as u8, s)))
            .fold(0, |bits, mask| bits | mask);
        Self {
            catalogue,
            untallied,
        }
    }

    pub(super) fn indicators(&self) -> &[Indicator] {
        &self.catalogue.indicators
    }

    /// The predicate bits an observation of `fact` for `service` sets.
    pub(super) fn mask(&self, fact: ObservedFact, service: ServiceType) -> u64 {
        self.catalogue.mask(fact as u8, service as u8)
    }

    /// The caseload predicate's bit (`under_supervision`), 0 if unused.
    pub(super) fn caseload(&self) -> u64 {
        self.catalogue.caseload
    }

    /// The index of a process or outcome indicator.
    pub(super) fn index(&self, id: &str) -> Option<usize> {
        self.catalogue.index(id)
    }

    /// Whether the indicator at `index` counts only facts the ledger follows.
    pub(super) fn tallied(&self, index: usize) -> bool {
        let bits = match self.catalogue.indicators[index].rule {
            Rule::SamePeriod { den, num } | Rule::Cohort { den, num, .. } => den | num,
            Rule::Median { measure } => measure,
        };
        bits & self.untallied == 0
    }
}

/// Every service type, as the catalogue numbers them.
fn services() -> impl Iterator<Item = u8> {
    (0..=u8::MAX).filter(|&s| ServiceType::try_from(i32::from(s)).is_ok())
}
