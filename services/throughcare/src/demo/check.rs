//! Whether a published cell agrees with the demo's own tally under the
//! disclosure rules the indicators service states
//! (`services/indicators/src/domain/disclosure.rs`):
//!
//! - a count of 1 to 7 is suppressed; so is a numerator whose complement
//!   (denominator − numerator) is 1 to 7, and every numerator over a small
//!   denominator (primary suppression);
//! - any other count may also be suppressed, to protect a suppressed count
//!   elsewhere (secondary suppression), which depends on other cells;
//! - every count not suppressed is rounded to a multiple of 5 within 4 of
//!   the truth (down to the multiple below, or up to the one above), and a
//!   count above 7 never shows as 5: 8 and 9 show as 10.

use super::oracle::Counts;
use throughcare_indicators::domain::disclosure::{THRESHOLD, round};
use throughcare_proto::indicators::v1 as ind;

/// What the tally says of a published cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Mark {
    /// Each published count is what the rules make of the tallied count.
    Agrees,
    /// Suppressed where the rules only allow it for the sake of other cells.
    Unconfirmed,
    /// The indicator counts facts the ledger does not follow.
    NotTallied,
    /// A published count the rules cannot make of the tallied count.
    Disagrees,
}

impl Mark {
    pub(super) fn symbol(self) -> char {
        match self {
            Mark::Agrees => '✓',
            Mark::Unconfirmed => '~',
            Mark::NotTallied => '-',
            Mark::Disagrees => '✗',
        }
    }
}

/// Judges a published cell against the tally (`None`: not tallied; a tally
/// that never saw the cell counts nobody).
pub(super) fn judge(cell: &ind::Cell, truth: Option<Counts>) -> Mark {
    let Some(truth) = truth else {
        return Mark::NotTallied;
    };
    // The service publishes no cell nobody counts in: a published cell the
    // tally has nobody in counts people this run did not create.
    if truth.den == 0 {
        return Mark::Disagrees;
    }
    let den_forced = small(truth.den);
    let num_forced =
        small(truth.num) || small(truth.den.saturating_sub(truth.num)) || small(truth.den);
    let den = count(cell.denominator.as_ref(), truth.den, den_forced);
    let num = count(cell.numerator.as_ref(), truth.num, num_forced);
    den.max(num)
}

fn small(count: u32) -> bool {
    (1..=THRESHOLD).contains(&count)
}

/// One published count against its true value; `forced` when the rules
/// suppress it whatever other cells hold.
fn count(published: Option<&ind::PublishedCount>, truth: u32, forced: bool) -> Mark {
    match published {
        None => Mark::Disagrees,
        Some(p) if p.suppressed && forced => Mark::Agrees,
        Some(p) if p.suppressed => Mark::Unconfirmed,
        Some(_) if forced => Mark::Disagrees,
        Some(p) if rounded(truth).contains(&p.value) => Mark::Agrees,
        Some(_) => Mark::Disagrees,
    }
}

/// The figures a count not suppressed may be published as: the service's
/// rounding under every cell key.
fn rounded(truth: u32) -> Vec<i64> {
    let mut out: Vec<i64> = (0..=u8::MAX).map(|key| round(truth, key)).collect();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cell(num: Option<i64>, den: Option<i64>) -> ind::Cell {
        let count = |c: Option<i64>| {
            Some(ind::PublishedCount {
                value: c.unwrap_or(0),
                suppressed: c.is_none(),
            })
        };
        ind::Cell {
            numerator: count(num),
            denominator: count(den),
            ..Default::default()
        }
    }

    fn truth(num: u32, den: u32) -> Option<Counts> {
        Some(Counts { den, num })
    }

    #[test]
    fn a_published_cell_the_tally_has_nobody_in_disagrees() {
        assert_eq!(judge(&cell(None, None), truth(0, 0)), Mark::Disagrees);
        assert_eq!(judge(&cell(Some(0), Some(0)), truth(0, 0)), Mark::Disagrees);
    }

    #[test]
    fn a_shown_numerator_whose_complement_is_small_disagrees() {
        assert_eq!(
            judge(&cell(Some(35), Some(40)), truth(36, 40)),
            Mark::Disagrees
        );
    }

    #[test]
    fn rounding_within_four_to_a_multiple_of_five_agrees() {
        assert_eq!(
            judge(&cell(Some(10), Some(40)), truth(12, 41)),
            Mark::Agrees
        );
        assert_eq!(
            judge(&cell(Some(15), Some(45)), truth(12, 41)),
            Mark::Agrees
        );
        assert_eq!(
            judge(&cell(Some(20), Some(40)), truth(12, 41)),
            Mark::Disagrees
        );
        assert_eq!(judge(&cell(Some(10), Some(40)), truth(9, 40)), Mark::Agrees);
        assert_eq!(
            judge(&cell(Some(5), Some(40)), truth(9, 40)),
            Mark::Disagrees
        );
        assert_eq!(judge(&cell(Some(0), Some(40)), truth(0, 40)), Mark::Agrees);
    }

    #[test]
    fn small_counts_must_be_suppressed_and_others_may_be() {
        assert_eq!(judge(&cell(None, Some(40)), truth(3, 40)), Mark::Agrees);
        assert_eq!(
            judge(&cell(Some(5), Some(40)), truth(3, 40)),
            Mark::Disagrees
        );
        assert_eq!(judge(&cell(None, Some(40)), truth(36, 40)), Mark::Agrees);
        assert_eq!(judge(&cell(None, None), truth(0, 5)), Mark::Agrees);
        assert_eq!(
            judge(&cell(None, Some(40)), truth(20, 40)),
            Mark::Unconfirmed
        );
        assert_eq!(judge(&cell(None, None), truth(20, 40)), Mark::Unconfirmed);
        assert_eq!(judge(&cell(None, None), None), Mark::NotTallied);
    }
}
