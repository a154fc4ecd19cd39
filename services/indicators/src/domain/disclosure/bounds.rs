//! What the published figures still tell an attacker: each count's bounds,
//! narrowed by every relation until nothing changes.

use super::INFINITE;

/// The relations and the published figures cannot all hold: some published
/// figure no longer fits the truth it is related to (a late record changed a
/// count already published).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Contradiction;

pub(super) struct Constraint {
    pub(super) parent: usize,
    pub(super) children: Vec<usize>,
    /// parent = Σ children; otherwise parent ≤ Σ children and each child ≤ parent.
    pub(super) exact: bool,
}

/// Tightens `lo`/`hi` with every constraint (and numerator ≤ denominator for
/// each pair) until nothing changes. A worklist: a constraint is looked at
/// again only when a count in it has changed, so a publication's many
/// unrelated parts settle independently (the fixed point is the same in any
/// order, the operators being monotone narrowings).
pub(super) fn propagate(
    lo: &mut [i64],
    hi: &mut [i64],
    constraints: &[Constraint],
    pairs: &[(usize, usize)],
) -> Result<(), Contradiction> {
    // Items 0..constraints.len() are constraints; the rest are pairs.
    let items = constraints.len() + pairs.len();
    let of_var = items_of_each_count(lo.len(), constraints, pairs);
    let mut queue: std::collections::VecDeque<u32> = (0..items as u32).collect();
    let mut queued = vec![true; items];
    // Bounds can creep around a cycle one step at a time; the budget ends
    // such a creep where full sweeps would have (a thousand of them).
    let mut budget = 1000 * items;
    let mut changed: Vec<usize> = Vec::new();
    while let Some(item) = queue.pop_front() {
        queued[item as usize] = false;
        let Some(remaining) = budget.checked_sub(1) else {
            return Ok(());
        };
        budget = remaining;
        let mut tighten = |v: usize, new_lo: i64, new_hi: i64, lo: &mut [i64], hi: &mut [i64]| {
            let mut moved = false;
            if new_lo > lo[v] {
                lo[v] = new_lo;
                moved = true;
            }
            if new_hi < hi[v] {
                hi[v] = new_hi;
                moved = true;
            }
            if moved {
                changed.push(v);
            }
        };
        match constraints.get(item as usize) {
            Some(c) => tighten_constraint(c, lo, hi, &mut tighten),
            None => {
                let (num, den) = pairs[item as usize - constraints.len()];
                let (n_hi, d_lo) = (hi[den], lo[num]);
                tighten(num, 0, n_hi, lo, hi);
                tighten(den, d_lo, INFINITE, lo, hi);
            }
        }
        for v in changed.drain(..) {
            if lo[v] > hi[v] {
                // The bounds cannot be trusted from here: stop, and say so.
                return Err(Contradiction);
            }
            for &other in &of_var[v] {
                if !queued[other as usize] {
                    queued[other as usize] = true;
                    queue.push_back(other);
                }
            }
        }
    }
    Ok(())
}

/// One constraint's narrowing of its parent and children.
fn tighten_constraint(
    c: &Constraint,
    lo: &mut [i64],
    hi: &mut [i64],
    tighten: &mut impl FnMut(usize, i64, i64, &mut [i64], &mut [i64]),
) {
    let sum_lo: i64 = c
        .children
        .iter()
        .fold(0, |sum, &v| sum.saturating_add(lo[v]));
    // Unbounded children make every sum that includes them unbounded.
    let unbounded = c.children.iter().filter(|&&v| hi[v] >= INFINITE).count();
    let finite_hi: i64 = c
        .children
        .iter()
        .map(|&v| hi[v])
        .filter(|&h| h < INFINITE)
        .fold(0, i64::saturating_add);
    let sum_hi = if unbounded > 0 { INFINITE } else { finite_hi };
    let max_lo = c.children.iter().map(|&v| lo[v]).max().unwrap_or(0);
    let parent_lo = if c.exact { sum_lo } else { max_lo };
    tighten(c.parent, parent_lo, sum_hi, lo, hi);
    let (p_lo, p_hi) = (lo[c.parent], hi[c.parent]);
    for &v in &c.children {
        let others_lo = sum_lo - lo[v];
        let (v_unbounded, v_hi) = (hi[v] >= INFINITE, hi[v]);
        let others_hi = if unbounded > usize::from(v_unbounded) {
            INFINITE
        } else if v_unbounded {
            finite_hi
        } else {
            finite_hi - v_hi
        };
        let child_hi = if !c.exact || p_hi >= INFINITE {
            p_hi
        } else {
            p_hi - others_lo
        };
        let child_lo = if others_hi >= INFINITE {
            0
        } else {
            p_lo - others_hi
        };
        tighten(v, child_lo, child_hi, lo, hi);
    }
}

/// For each of `counts` counts, the items (constraints, then pairs) it is in.
fn items_of_each_count(
    counts: usize,
    constraints: &[Constraint],
    pairs: &[(usize, usize)],
) -> Vec<Vec<u32>> {
    let mut of_var: Vec<Vec<u32>> = vec![Vec::new(); counts];
    for (i, c) in constraints.iter().enumerate() {
        for &v in std::iter::once(&c.parent).chain(&c.children) {
            of_var[v].push(i as u32);
        }
    }
    for (i, &(num, den)) in pairs.iter().enumerate() {
        let item = (constraints.len() + i) as u32;
        of_var[num].push(item);
        of_var[den].push(item);
    }
    of_var
}
