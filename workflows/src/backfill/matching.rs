//! Which legacy account is which Plaid account: a pure function, so the rule
//! is tested on its own.
//!
//! The legacy rows never stored Plaid's `account_id`, only what the user saw:
//! a name and (usually) a mask. The rule, in order:
//!
//! 1. **Mask.** A legacy account and a Plaid account with the same non-empty
//!    mask are paired when each is the *only* one left with that mask on its
//!    side. The mask is the end of the account number; names are nicknames
//!    that users and banks change, so the mask wins over a differing name.
//! 2. **Name.** Otherwise they are paired on the same name (trimmed,
//!    case-insensitive) when each is the only one left with that name on its
//!    side *among those whose masks do not contradict* (equal, or either one
//!    missing). A name never overrides two different masks.
//!
//! Each pairing removes both accounts, which can make another pairing unique,
//! so the two steps repeat until neither pairs anything. Anything still
//! ambiguous (two legacy accounts or two Plaid accounts that fit equally) is
//! left unmatched and reported: we never guess between equal candidates.

/// A legacy account to place.
#[derive(Debug, Clone, Copy)]
pub struct LegacySide<'a> {
    /// `accounts.id`.
    pub id: i64,
    /// Display name.
    pub name: &'a str,
    /// Last digits.
    pub mask: Option<&'a str>,
}

/// A Plaid account still free in the item.
#[derive(Debug, Clone, Copy)]
pub struct PlaidSide<'a> {
    /// Plaid's `account_id`.
    pub account_id: &'a str,
    /// Display name.
    pub name: &'a str,
    /// Last digits.
    pub mask: Option<&'a str>,
}

/// The outcome: pairs and the legacy accounts left over.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Matches {
    /// `(accounts.id, Plaid account_id)`, in legacy order.
    pub pairs: Vec<(i64, String)>,
    /// Legacy accounts with no unique partner, in legacy order.
    pub unmatched: Vec<i64>,
}

fn mask(m: Option<&str>) -> Option<&str> {
    m.map(str::trim).filter(|m| !m.is_empty())
}

fn same_mask(a: Option<&str>, b: Option<&str>) -> bool {
    matches!((mask(a), mask(b)), (Some(a), Some(b)) if a == b)
}

fn masks_compatible(a: Option<&str>, b: Option<&str>) -> bool {
    match (mask(a), mask(b)) {
        (Some(a), Some(b)) => a == b,
        _ => true,
    }
}

fn same_name(a: &str, b: &str) -> bool {
    let (a, b) = (a.trim(), b.trim());
    !a.is_empty() && a.to_lowercase() == b.to_lowercase()
}

/// Pairs `legacy` accounts with `plaid` accounts by the rule above.
pub fn match_accounts(legacy: &[LegacySide<'_>], plaid: &[PlaidSide<'_>]) -> Matches {
    let by_mask = |l: &LegacySide<'_>, p: &PlaidSide<'_>| same_mask(l.mask, p.mask);
    let by_name =
        |l: &LegacySide<'_>, p: &PlaidSide<'_>| same_name(l.name, p.name) && masks_compatible(l.mask, p.mask);
    let mut left: Vec<usize> = (0..legacy.len()).collect();
    let mut free: Vec<usize> = (0..plaid.len()).collect();
    let mut paired: Vec<(usize, usize)> = Vec::new();
    loop {
        let found = unique_pairs(legacy, plaid, &left, &free, by_mask);
        let found = if found.is_empty() {
            unique_pairs(legacy, plaid, &left, &free, by_name)
        } else {
            found
        };
        if found.is_empty() {
            break;
        }
        left.retain(|l| !found.iter().any(|(fl, _)| fl == l));
        free.retain(|p| !found.iter().any(|(_, fp)| fp == p));
        paired.extend(found);
    }
    paired.sort_unstable();
    Matches {
        pairs: paired
            .into_iter()
            .map(|(l, p)| (legacy[l].id, plaid[p].account_id.to_owned()))
            .collect(),
        unmatched: left.into_iter().map(|l| legacy[l].id).collect(),
    }
}

/// Pairs `(legacy index, plaid index)` where each side is the other's only
/// candidate under `fits`. Such pairs are disjoint by construction.
fn unique_pairs(
    legacy: &[LegacySide<'_>],
    plaid: &[PlaidSide<'_>],
    left: &[usize],
    free: &[usize],
    fits: impl Fn(&LegacySide<'_>, &PlaidSide<'_>) -> bool,
) -> Vec<(usize, usize)> {
    let mut pairs = Vec::new();
    for &l in left {
        let mut candidates = free.iter().filter(|&&p| fits(&legacy[l], &plaid[p]));
        let (Some(&p), None) = (candidates.next(), candidates.next()) else {
            continue;
        };
        let rivals = left
            .iter()
            .filter(|&&other| fits(&legacy[other], &plaid[p]))
            .count();
        if rivals == 1 {
            pairs.push((l, p));
        }
    }
    pairs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn legacy(id: i64, name: &'static str, mask: Option<&'static str>) -> LegacySide<'static> {
        LegacySide { id, name, mask }
    }

    fn plaid(account_id: &'static str, name: &'static str, mask: Option<&'static str>) -> PlaidSide<'static> {
        PlaidSide {
            account_id,
            name,
            mask,
        }
    }

    fn pairs(m: &Matches) -> Vec<(i64, &str)> {
        m.pairs.iter().map(|(l, p)| (*l, p.as_str())).collect()
    }

    #[test]
    fn masks_pair_accounts_even_when_the_names_changed() {
        let m = match_accounts(
            &[
                legacy(1, "My checking", Some("0000")),
                legacy(2, "Savings", Some("1111")),
            ],
            &[
                plaid("a", "Plaid Checking", Some("0000")),
                plaid("b", "Plaid Saving", Some("1111")),
            ],
        );
        assert_eq!(pairs(&m), [(1, "a"), (2, "b")]);
        assert!(m.unmatched.is_empty());
    }

    #[test]
    fn names_pair_accounts_without_masks_ignoring_case_and_spaces() {
        let m = match_accounts(
            &[legacy(1, " plaid checking ", None)],
            &[
                plaid("a", "Plaid Checking", Some("0000")),
                plaid("b", "Plaid Saving", Some("1111")),
            ],
        );
        assert_eq!(pairs(&m), [(1, "a")]);
    }

    #[test]
    fn a_shared_mask_is_broken_by_the_name() {
        let m = match_accounts(
            &[
                legacy(1, "Checking", Some("0000")),
                legacy(2, "Saving", Some("0000")),
            ],
            &[
                plaid("a", "Saving", Some("0000")),
                plaid("b", "Checking", Some("0000")),
            ],
        );
        assert_eq!(pairs(&m), [(1, "b"), (2, "a")]);
    }

    #[test]
    fn equal_candidates_are_never_guessed_between() {
        // Two Plaid accounts fit one legacy account equally.
        let m = match_accounts(
            &[legacy(1, "Checking", Some("0000"))],
            &[
                plaid("a", "Checking", Some("0000")),
                plaid("b", "Checking", Some("0000")),
            ],
        );
        assert_eq!(m.pairs, []);
        assert_eq!(m.unmatched, [1]);
        // Two legacy accounts fit one Plaid account equally.
        let m = match_accounts(
            &[legacy(1, "Checking", None), legacy(2, "checking", None)],
            &[plaid("a", "Checking", Some("0000"))],
        );
        assert_eq!(m.pairs, []);
        assert_eq!(m.unmatched, [1, 2]);
    }

    #[test]
    fn a_name_never_overrides_two_different_masks() {
        let m = match_accounts(
            &[legacy(1, "Plaid Checking", Some("9999"))],
            &[plaid("a", "Plaid Checking", Some("0000"))],
        );
        assert_eq!(m.pairs, []);
        assert_eq!(m.unmatched, [1]);
    }

    #[test]
    fn a_pairing_can_make_another_one_unique() {
        // Mask 0000 is ambiguous until the name pairs "Checking"; then the
        // other 0000 account is the only one left with that mask.
        let m = match_accounts(
            &[
                legacy(1, "Checking", Some("0000")),
                legacy(2, "Old name", Some("0000")),
            ],
            &[
                plaid("a", "Checking", Some("0000")),
                plaid("b", "New name", Some("0000")),
            ],
        );
        assert_eq!(pairs(&m), [(1, "a"), (2, "b")]);
    }

    #[test]
    fn empty_masks_and_names_match_nothing() {
        let m = match_accounts(&[legacy(1, "", Some(""))], &[plaid("a", "", Some(""))]);
        assert_eq!(m.unmatched, [1]);
    }
}
