//! The weighted-tree fair-share algorithm (`update-fshare`).
//!
//! This module is pure: it takes a description of the bank/association tree
//! ([`FsBank`], [`FsUser`]) and returns the fair-share value of every
//! association ([`FsValue`]). It does no I/O and touches no database.
//!
//! # What the caller must put in the tree
//!
//! The rules below come from `usage-and-fairshare.md` ("Fair-share (the
//! weighted tree; update-fshare)") and `flux-accounting-reference.md` §5.1.
//! The caller builds the tree from the projection tables and is responsible
//! for them:
//!
//! * Only **active** banks and **active** associations are in the tree.
//! * If a bank has **any** sub-bank rows (even inactive ones), its own
//!   associations are ignored: the caller must leave [`FsBank::users`] empty
//!   for such a bank. This module does not apply that rule itself: a bank
//!   given both sub-banks and users has all of them as children, users and
//!   banks being siblings (this is how flux-accounting's CSV-loaded test trees
//!   work, and it is what the "associations before banks on equal weight"
//!   rule is for).
//! * Children should be given in name order, but neither the fair-share
//!   values nor the walk order depend on the order of the input: entries of
//!   equal weight are ordered by name (the input position only breaks ties
//!   between identical names).
//!
//! A bank's usage is **not** taken from the caller: it is the sum of the usage
//! of every association below it in the tree (so inactive associations, being
//! absent, do not count). The shares of the root bank are irrelevant.
//!
//! # The algorithm
//!
//! * **Weight** of a node among its siblings (the children of one bank):
//!   0 if its shares are 0; otherwise +∞ if its usage is 0 (all such siblings
//!   tie); otherwise `(shares / Σ sibling shares) / (usage / Σ sibling usage)`.
//!   Sums are exact: shares are summed as integers, usages with a correctly
//!   rounded floating-point sum (so the result does not depend on the order of
//!   the terms). flux-accounting's C++ truncation of the usage sum to `uint64`
//!   is a quirk and is not copied.
//! * **Equality** of weights: `a == b` or `|a − b| < ε · max(|a|, |b|, 1)`
//!   with `ε = f64::EPSILON`.
//! * **Ordering**: siblings are sorted by weight, descending. Entries whose
//!   weights are equal (chained between neighbours of that order) form a *tie
//!   group*; inside a group associations come before banks. Remaining ties
//!   are broken by name, so the walk order is deterministic.
//! * **Tied banks**: the banks of one tie group are merged into one virtual
//!   bank whose children are the union of their children, each keeping the
//!   weight it has among its own siblings; that list is ordered, grouped and
//!   merged again in the same way.
//! * **Ranking walk**: `L` is the number of associations in the tree; the rank
//!   `r` starts at `L` and the tie counter `s` at 0. At each association, in
//!   walk order, `fairshare = r / L`; if it ties with the next association of
//!   the walk, `s += 1`, otherwise `r = r − 1 − s` and `s = 0`.
//!
//! "Ties with the next association" means: the next association is in the
//! **same child list** (the children of one bank, or of one virtual bank made
//! of tied banks) and in the same tie group. So associations that are children
//! of different banks can tie, but only when those banks were tied and merged
//! (`small_tie`: `leaf.1.3` and `leaf.2.3` share 0.75). An association never
//! ties with a bank, nor with an association reached through a different,
//! untied bank, whose weight was computed among other siblings and is not
//! comparable.
//!
//! Banks without any association below them are walked but produce nothing.

use std::cmp::Ordering;

/// A bank in the fair-share tree, with its active sub-banks and associations.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FsBank {
    /// The bank's name (reported as the `bank` of its associations).
    pub name: String,
    /// The bank's shares among its sibling banks. Negative values count as 0.
    pub shares: i64,
    /// Active sub-banks. The caller lists them in name order.
    pub banks: Vec<FsBank>,
    /// Active associations of this bank. Must be empty when the bank has any
    /// sub-bank row in the database (active or not); see the module docs.
    pub users: Vec<FsUser>,
}

/// An association (a user in a bank): a leaf of the fair-share tree.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FsUser {
    /// The association's username.
    pub username: String,
    /// The association's shares among its siblings. Negative values count as 0.
    pub shares: i64,
    /// The association's (decayed) job usage. NaN or negative values count as
    /// 0, and values above 1e300 count as 1e300 (so that sums stay finite).
    pub usage: f64,
}

/// The fair-share value of one association, as computed by [`compute`].
#[derive(Debug, Clone, PartialEq)]
pub struct FsValue {
    /// The name of the bank the association belongs to.
    pub bank: String,
    /// The association's username.
    pub username: String,
    /// The exact fair-share value `r / L`, in `(0, 1]`. Not rounded: use
    /// [`round6`] for display.
    pub fairshare: f64,
}

/// Rounds `x` to 6 decimal places, the way flux-accounting shows and stores
/// fair-share values (`std::to_string(double)`, i.e. `printf("%f")`): the
/// exact binary value is rounded to the nearest 6-decimal number, and the
/// result is the `f64` closest to that number. Non-finite values are returned
/// unchanged.
pub fn round6(x: f64) -> f64 {
    if !x.is_finite() {
        return x;
    }
    format!("{x:.6}").parse().unwrap_or(x)
}

/// Computes the fair-share value of every association in the tree rooted at
/// `root`, in walk order (highest fair-share first).
///
/// Returns one [`FsValue`] per association in the tree; an empty tree (no
/// association anywhere) gives an empty vector. Never panics, whatever the
/// shares and usages.
pub fn compute(root: &FsBank) -> Vec<FsValue> {
    let mut tree = Tree::default();
    let root_id = tree.add_bank(root);
    tree.calc_weights();

    let total = tree.nodes.iter().filter(|n| n.is_user()).count();
    let mut walk = Walk { tree: &tree, total, rank: total, stride: 0, out: Vec::with_capacity(total) };
    let children = tree.nodes[root_id].children.clone();
    walk.visit(children);
    walk.out
}

/// Correctly rounded sum of finite values (Shewchuk's algorithm, as in
/// Python's `math.fsum`). The result does not depend on the order of `values`.
/// The caller guarantees the exact sum is finite.
fn exact_sum(values: impl IntoIterator<Item = f64>) -> f64 {
    let mut partials: Vec<f64> = Vec::new();
    for value in values {
        let mut x = value;
        let mut kept = 0;
        for j in 0..partials.len() {
            let mut y = partials[j];
            if x.abs() < y.abs() {
                std::mem::swap(&mut x, &mut y);
            }
            let hi = x + y;
            let lo = y - (hi - x);
            if lo != 0.0 {
                partials[kept] = lo;
                kept += 1;
            }
            x = hi;
        }
        partials.truncate(kept);
        partials.push(x);
    }

    // Add the partials from the largest down, stopping at the first inexact
    // addition, then correct a half-way case.
    let mut n = partials.len();
    if n == 0 {
        return 0.0;
    }
    n -= 1;
    let mut hi = partials[n];
    let mut lo = 0.0;
    while n > 0 {
        let x = hi;
        n -= 1;
        let y = partials[n];
        hi = x + y;
        let yr = hi - x;
        lo = y - yr;
        if lo != 0.0 {
            break;
        }
    }
    if n > 0 && ((lo < 0.0 && partials[n - 1] < 0.0) || (lo > 0.0 && partials[n - 1] > 0.0)) {
        let y = lo * 2.0;
        let x = hi + y;
        if y == x - hi {
            hi = x;
        }
    }
    hi
}

/// The weight equality of the spec: `|a − b| < ε · max(|a|, |b|, 1)`, and
/// `+∞` equals `+∞`.
fn weights_equal(a: f64, b: f64) -> bool {
    a == b || (a - b).abs() < f64::EPSILON * a.abs().max(b.abs()).max(1.0)
}

/// Usage as the algorithm sees it: NaN and negative values are 0, and values
/// are capped at 1e300 so that any realistic number of them sums to a finite
/// value.
fn sanitize_usage(usage: f64) -> f64 {
    if usage.is_nan() || usage <= 0.0 {
        0.0
    } else {
        usage.min(1e300)
    }
}

/// The weight of a node among siblings whose shares add up to `shares_sum`
/// and usages to `usage_sum`.
fn weight(shares: i64, usage: f64, shares_sum: i128, usage_sum: f64) -> f64 {
    if shares <= 0 {
        return 0.0;
    }
    if usage == 0.0 {
        return f64::INFINITY;
    }
    // shares > 0 and usage > 0, so both sums are positive.
    let w = (shares as f64 / shares_sum as f64) / (usage / usage_sum);
    if w.is_nan() {
        0.0
    } else {
        w
    }
}

/// One node of the flattened tree.
#[derive(Debug)]
struct Node {
    /// Username (association) or bank name.
    name: String,
    /// For an association, the index of its bank; `None` for banks.
    parent_bank: Option<usize>,
    /// Shares, negative values clamped to 0.
    shares: i64,
    /// Usage: the association's own (sanitized), or the exact sum of the
    /// associations below a bank.
    usage: f64,
    /// Weight among the siblings (children of the same real bank).
    weight: f64,
    /// Children (indexes into `Tree::nodes`); always empty for associations.
    children: Vec<usize>,
}

impl Node {
    fn is_user(&self) -> bool {
        self.parent_bank.is_some()
    }
}

/// The input tree flattened into an arena.
#[derive(Debug, Default)]
struct Tree {
    nodes: Vec<Node>,
}

impl Tree {
    /// Adds `bank` and everything below it; returns the bank's index.
    fn add_bank(&mut self, bank: &FsBank) -> usize {
        let id = self.nodes.len();
        self.nodes.push(Node {
            name: bank.name.clone(),
            parent_bank: None,
            shares: bank.shares.max(0),
            usage: 0.0,
            weight: 0.0,
            children: Vec::new(),
        });
        let mut children = Vec::with_capacity(bank.users.len() + bank.banks.len());
        for user in &bank.users {
            children.push(self.nodes.len());
            self.nodes.push(Node {
                name: user.username.clone(),
                parent_bank: Some(id),
                shares: user.shares.max(0),
                usage: sanitize_usage(user.usage),
                weight: 0.0,
                children: Vec::new(),
            });
        }
        for sub in &bank.banks {
            children.push(self.add_bank(sub));
        }
        // The bank's subtree occupies the contiguous index range id..len, so
        // its usage is the exact sum of the associations in that range.
        let usage = exact_sum(self.nodes[id + 1..].iter().filter(|n| n.is_user()).map(|n| n.usage));
        let node = &mut self.nodes[id];
        node.usage = usage;
        node.children = children;
        id
    }

    /// Sets the weight of every node among its siblings.
    fn calc_weights(&mut self) {
        for id in 0..self.nodes.len() {
            if self.nodes[id].children.is_empty() {
                continue;
            }
            let children = std::mem::take(&mut self.nodes[id].children);
            let shares_sum: i128 = children.iter().map(|&c| i128::from(self.nodes[c].shares)).sum();
            let usage_sum = exact_sum(children.iter().map(|&c| self.nodes[c].usage));
            for &c in &children {
                let node = &self.nodes[c];
                let w = weight(node.shares, node.usage, shares_sum, usage_sum);
                self.nodes[c].weight = w;
            }
            self.nodes[id].children = children;
        }
    }

    /// The order of a child list: weight descending, then associations before
    /// banks, then by name (and bank name), then by input position.
    fn cmp_children(&self, a: usize, b: usize) -> Ordering {
        let (na, nb) = (&self.nodes[a], &self.nodes[b]);
        nb.weight
            .total_cmp(&na.weight)
            .then_with(|| nb.is_user().cmp(&na.is_user()))
            .then_with(|| na.name.cmp(&nb.name))
            .then_with(|| self.bank_name(a).cmp(self.bank_name(b)))
            .then_with(|| a.cmp(&b))
    }

    /// The bank name of an association ("" for banks).
    fn bank_name(&self, id: usize) -> &str {
        match self.nodes[id].parent_bank {
            Some(bank) => &self.nodes[bank].name,
            None => "",
        }
    }
}

/// State of the ranking walk.
struct Walk<'a> {
    tree: &'a Tree,
    /// L, the number of associations.
    total: usize,
    /// r, the current rank.
    rank: usize,
    /// s, the size of the current tie group so far.
    stride: usize,
    out: Vec<FsValue>,
}

impl Walk<'_> {
    /// Walks one child list: the children of a real bank, or the union of the
    /// children of tied banks.
    fn visit(&mut self, mut children: Vec<usize>) {
        let tree = self.tree;
        children.sort_by(|&a, &b| tree.cmp_children(a, b));

        let mut start = 0;
        while start < children.len() {
            let mut end = start + 1;
            while end < children.len()
                && weights_equal(tree.nodes[children[end - 1]].weight, tree.nodes[children[end]].weight)
            {
                end += 1;
            }
            let group = &children[start..end];

            // Associations of the group first: they all tie with each other.
            let users: Vec<usize> = group.iter().copied().filter(|&c| tree.nodes[c].is_user()).collect();
            for (i, &user) in users.iter().enumerate() {
                self.rank_user(user, i + 1 < users.len());
            }

            // Then the banks of the group, merged into one (virtual) bank.
            let merged: Vec<usize> = group
                .iter()
                .filter(|&&c| !tree.nodes[c].is_user())
                .flat_map(|&c| tree.nodes[c].children.iter().copied())
                .collect();
            if !merged.is_empty() {
                self.visit(merged);
            }
            start = end;
        }
    }

    /// Gives the association `id` the current rank.
    fn rank_user(&mut self, id: usize, tie_with_next: bool) {
        let node = &self.tree.nodes[id];
        let fairshare = self.rank as f64 / self.total as f64;
        self.out.push(FsValue { bank: self.tree.bank_name(id).to_string(), username: node.name.clone(), fairshare });
        if tie_with_next {
            self.stride += 1;
        } else {
            self.rank = self.rank.saturating_sub(1 + self.stride);
            self.stride = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn user(username: &str, shares: i64, usage: f64) -> FsUser {
        FsUser { username: username.to_string(), shares, usage }
    }

    fn bank(name: &str, shares: i64, users: Vec<FsUser>) -> FsBank {
        FsBank { name: name.to_string(), shares, banks: Vec::new(), users }
    }

    fn parent(name: &str, shares: i64, banks: Vec<FsBank>) -> FsBank {
        FsBank { name: name.to_string(), shares, banks, users: Vec::new() }
    }

    /// (bank, username, round6(fairshare)) in walk order.
    fn run(root: &FsBank) -> Vec<(String, String, f64)> {
        compute(root).into_iter().map(|v| (v.bank, v.username, round6(v.fairshare))).collect()
    }

    /// Checks the rounded value of every association, and that the output
    /// lists exactly those associations.
    fn check(root: &FsBank, expected: &[(&str, f64)]) {
        let got = run(root);
        assert_eq!(got.len(), expected.len(), "{got:?}");
        for (username, value) in expected {
            let found: Vec<_> = got.iter().filter(|g| g.1 == *username).collect();
            assert_eq!(found.len(), 1, "{username} in {got:?}");
            assert_eq!(found[0].2, *value, "{username} in {got:?}");
        }
    }

    /// (username, shares, usage)
    type Leaf<'a> = (&'a str, i64, f64);

    /// root → account1..3 (shares, associations), like flux-accounting's
    /// `small_*` databases.
    fn small(root_shares: i64, banks: [(i64, &[Leaf]); 3]) -> FsBank {
        let banks = banks
            .iter()
            .enumerate()
            .map(|(i, (shares, users))| {
                bank(&format!("account{}", i + 1), *shares, users.iter().map(|&(u, s, us)| user(u, s, us)).collect())
            })
            .collect();
        parent("root", root_shares, banks)
    }

    fn small_no_tie() -> FsBank {
        small(
            1000,
            [
                (1000, &[("leaf.1.1", 10000, 100.0), ("leaf.1.2", 1000, 11.0), ("leaf.1.3", 100000, 10.0)]),
                (100, &[("leaf.2.1", 100000, 8.0), ("leaf.2.2", 10000, 3.0)]),
                (10, &[("leaf.3.1", 100, 0.0), ("leaf.3.2", 10, 1.0)]),
            ],
        )
    }

    #[test]
    fn fairshare_small_no_tie() {
        let got = run(&small_no_tie());
        let expected = [
            ("account3", "leaf.3.1", 1.0),
            ("account3", "leaf.3.2", 0.857143),
            ("account2", "leaf.2.1", 0.714286),
            ("account2", "leaf.2.2", 0.571429),
            ("account1", "leaf.1.3", 0.428571),
            ("account1", "leaf.1.1", 0.285714),
            ("account1", "leaf.1.2", 0.142857),
        ];
        let expected: Vec<_> = expected.iter().map(|&(b, u, f)| (b.to_string(), u.to_string(), f)).collect();
        assert_eq!(got, expected);
    }

    #[test]
    fn fairshare_small_no_tie_exact_values() {
        let got = compute(&small_no_tie());
        let values: Vec<f64> = got.iter().map(|v| v.fairshare).collect();
        let expected: Vec<f64> = (1..=7).rev().map(|r| r as f64 / 7.0).collect();
        assert_eq!(values, expected);
    }

    /// small_tie.db: account1 and account2 tie at the root; leaf.1.3 and
    /// leaf.2.3 (different banks) tie in the merged bank, and so do the four
    /// others.
    #[test]
    fn fairshare_small_tie() {
        let root = small(
            1000,
            [
                (1000, &[("leaf.1.1", 10000, 100.0), ("leaf.1.2", 1000, 10.0), ("leaf.1.3", 100000, 10.0)]),
                (100, &[("leaf.2.1", 10000, 10.0), ("leaf.2.2", 1000, 1.0), ("leaf.2.3", 100000, 1.0)]),
                (10, &[("leaf.3.1", 100, 0.0), ("leaf.3.2", 10, 1.0)]),
            ],
        );
        check(
            &root,
            &[
                ("leaf.3.1", 1.0),
                ("leaf.3.2", 0.875),
                ("leaf.1.3", 0.75),
                ("leaf.2.3", 0.75),
                ("leaf.1.1", 0.5),
                ("leaf.1.2", 0.5),
                ("leaf.2.1", 0.5),
                ("leaf.2.2", 0.5),
            ],
        );
        let order: Vec<String> = run(&root).into_iter().map(|g| g.1).collect();
        assert_eq!(&order[..2], ["leaf.3.1", "leaf.3.2"]);
    }

    /// small_tie_all.db: all three banks tie.
    #[test]
    fn fairshare_small_tie_all() {
        let root = small(
            1000,
            [
                (1000, &[("leaf.1.1", 10000, 100.0), ("leaf.1.2", 1000, 10.0), ("leaf.1.3", 100000, 10.0)]),
                (100, &[("leaf.2.1", 10000, 10.0), ("leaf.2.2", 1000, 1.0), ("leaf.2.3", 100000, 1.0)]),
                (10000, &[("leaf.3.1", 10000, 1000.0), ("leaf.3.2", 1000, 100.0), ("leaf.3.3", 100000, 100.0)]),
            ],
        );
        let third = 0.666667;
        check(
            &root,
            &[
                ("leaf.1.3", 1.0),
                ("leaf.2.3", 1.0),
                ("leaf.3.3", 1.0),
                ("leaf.1.1", third),
                ("leaf.1.2", third),
                ("leaf.2.1", third),
                ("leaf.2.2", third),
                ("leaf.3.1", third),
                ("leaf.3.2", third),
            ],
        );
    }

    /// small_tie_zero_shares.db: zero-share associations rank last, tied.
    #[test]
    fn fairshare_small_tie_zero_shares() {
        let root = small(
            1000,
            [
                (1000, &[("leaf.1.1", 10000, 100.0), ("leaf.1.2", 1000, 10.0), ("leaf.1.3", 100000, 10.0)]),
                (100, &[("leaf.2.1", 0, 10.0), ("leaf.2.2", 0, 1.0), ("leaf.2.3", 100000, 1.0)]),
                (10, &[("leaf.3.1", 100, 0.0), ("leaf.3.2", 10, 1.0)]),
            ],
        );
        check(
            &root,
            &[
                ("leaf.3.1", 1.0),
                ("leaf.3.2", 0.875),
                ("leaf.2.3", 0.75),
                ("leaf.1.3", 0.625),
                ("leaf.1.1", 0.5),
                ("leaf.1.2", 0.5),
                ("leaf.2.1", 0.25),
                ("leaf.2.2", 0.25),
            ],
        );
        let order: Vec<String> = run(&root).into_iter().map(|g| g.1).collect();
        assert_eq!(&order[6..], ["leaf.2.1", "leaf.2.2"]);
    }

    /// flux-accounting's small_tie_diff_type.csv: an association (leaf.0.1)
    /// ties with a bank (account1) among the root's children. It comes first
    /// but does not share its rank with anything in account1.
    #[test]
    fn fairshare_tie_between_association_and_bank() {
        let mut root = parent(
            "root",
            1000,
            vec![
                bank(
                    "account1",
                    1000,
                    vec![user("leaf.1.1", 10000, 100.0), user("leaf.1.2", 1000, 10.0), user("leaf.1.3", 100000, 10.0)],
                ),
                bank("account3", 10, vec![user("leaf.3.1", 100, 0.0), user("leaf.3.2", 10, 1.0)]),
            ],
        );
        root.users = vec![user("leaf.0.1", 100, 12.0)];
        check(
            &root,
            &[
                ("leaf.3.1", 1.0),
                ("leaf.3.2", 0.833333),
                ("leaf.0.1", 0.666667),
                ("leaf.1.3", 0.5),
                ("leaf.1.1", 0.333333),
                ("leaf.1.2", 0.333333),
            ],
        );
        let got = run(&root);
        assert_eq!(got[2].0, "root");
    }

    /// t1053: nested banks; C's sub-banks D and E are ordered by their own
    /// weights.
    #[test]
    fn fairshare_t1053() {
        let root = parent(
            "root",
            1,
            vec![
                bank("A", 1, vec![user("u1", 1, 20.0), user("u2", 1, 20.0), user("u3", 1, 10.0)]),
                bank("B", 1, vec![user("u4", 1, 13.0), user("u5", 1, 12.0)]),
                parent("C", 1, vec![bank("D", 1, vec![user("u6", 1, 25.0)]), bank("E", 1, vec![user("u7", 1, 10.0)])]),
            ],
        );
        let got = run(&root);
        let expected = [
            ("B", "u5", 1.0),
            ("B", "u4", 0.857143),
            ("E", "u7", 0.714286),
            ("D", "u6", 0.571429),
            ("A", "u3", 0.428571),
            ("A", "u1", 0.285714),
            ("A", "u2", 0.285714),
        ];
        let expected: Vec<_> = expected.iter().map(|&(b, u, f)| (b.to_string(), u.to_string(), f)).collect();
        assert_eq!(got, expected);
    }

    /// Tied banks are merged again at the next level: X and Y tie at the
    /// root, and their sub-banks X1 and Y1 tie inside the merged bank, so
    /// x and y end up in one child list and tie.
    #[test]
    fn fairshare_nested_merge() {
        let root = parent(
            "root",
            1,
            vec![
                parent("X", 1, vec![bank("X1", 1, vec![user("x", 1, 5.0)]), bank("X2", 1, vec![user("x2", 1, 15.0)])]),
                parent("Y", 1, vec![bank("Y1", 1, vec![user("y", 1, 5.0)]), bank("Y2", 1, vec![user("y2", 1, 15.0)])]),
            ],
        );
        check(&root, &[("x", 1.0), ("y", 1.0), ("x2", 0.5), ("y2", 0.5)]);
    }

    /// Associations of different, untied banks never tie, even when their
    /// weights are equal.
    #[test]
    fn fairshare_no_tie_across_untied_banks() {
        let root =
            parent("root", 1, vec![bank("a", 1, vec![user("u1", 1, 10.0)]), bank("b", 1, vec![user("u2", 1, 20.0)])]);
        check(&root, &[("u1", 1.0), ("u2", 0.5)]);
    }

    #[test]
    fn fairshare_single_user() {
        let root = parent("root", 1, vec![bank("A", 1, vec![user("u", 1, 42.0)])]);
        check(&root, &[("u", 1.0)]);
        let root = bank("root", 1, vec![user("u", 1, 0.0)]);
        check(&root, &[("u", 1.0)]);
    }

    #[test]
    fn fairshare_identical_siblings() {
        let root =
            parent("root", 1, vec![bank("A", 1, vec![user("u1", 1, 5.0), user("u2", 1, 5.0), user("u3", 1, 5.0)])]);
        check(&root, &[("u1", 1.0), ("u2", 1.0), ("u3", 1.0)]);
        let root =
            parent("root", 1, vec![bank("A", 1, vec![user("u1", 1, 0.0)]), bank("B", 1, vec![user("u2", 1, 0.0)])]);
        check(&root, &[("u1", 1.0), ("u2", 1.0)]);
    }

    #[test]
    fn fairshare_empty_tree() {
        assert!(compute(&FsBank::default()).is_empty());
        let root = parent("root", 1, vec![bank("A", 1, vec![]), parent("B", 0, vec![])]);
        assert!(compute(&root).is_empty());
    }

    /// Empty banks (weight +∞) do not disturb the ranking.
    #[test]
    fn fairshare_empty_bank_among_others() {
        let root =
            parent("root", 1, vec![bank("A", 1, vec![]), bank("B", 1, vec![user("u1", 1, 3.0), user("u2", 1, 1.0)])]);
        check(&root, &[("u2", 1.0), ("u1", 0.5)]);
    }

    #[test]
    fn fairshare_huge_usage() {
        let root = parent("root", 1, vec![bank("A", 1, vec![user("user_A", 1, 1.9e10), user("user_B", 1, 1.0)])]);
        check(&root, &[("user_A", 0.5), ("user_B", 1.0)]);
        let root = parent(
            "root",
            1,
            vec![bank("A", 1, vec![user("user_A", 1, 1.9e10)]), bank("B", 1, vec![user("user_B", 1, 0.0)])],
        );
        check(&root, &[("user_A", 0.5), ("user_B", 1.0)]);
    }

    /// Fractional usages are summed exactly (the C++ uint64 truncation would
    /// give u1 weight 0 and rank it last).
    #[test]
    fn fairshare_fractional_usage() {
        let root = bank("root", 1, vec![user("u1", 1, 0.25), user("u2", 1, 0.5)]);
        check(&root, &[("u1", 1.0), ("u2", 0.5)]);
    }

    /// Garbage input does not panic and stays in (0, 1].
    #[test]
    fn fairshare_garbage_input() {
        let root = parent(
            "root",
            -5,
            vec![
                bank(
                    "A",
                    i64::MAX,
                    vec![
                        user("nan", 1, f64::NAN),
                        user("neg", -3, -1.0),
                        user("inf", i64::MAX, f64::INFINITY),
                        user("max", i64::MAX, f64::MAX),
                    ],
                ),
                bank("B", i64::MIN, vec![user("tiny", 1, 5e-324)]),
            ],
        );
        let got = compute(&root);
        assert_eq!(got.len(), 5);
        assert!(got.iter().all(|v| v.fairshare > 0.0 && v.fairshare <= 1.0));
        assert_eq!(got[0].fairshare, 1.0);
    }

    #[test]
    fn round6_matches_printf() {
        assert_eq!(round6(6.0 / 7.0), 0.857143);
        assert_eq!(round6(2.0 / 3.0), 0.666667);
        assert_eq!(round6(1.0), 1.0);
        assert_eq!(round6(0.0), 0.0);
        assert_eq!(round6(0.0000005), 0.0); // binary value is just below the half
        assert_eq!(round6(0.0000015), 0.000002); // binary value is just above
        assert_eq!(round6(0.1234565), 0.123456); // just below
        assert_eq!(round6(0.1234575), 0.123457); // just below, but nearer ...57
        assert!(round6(f64::NAN).is_nan());
    }

    #[test]
    fn exact_sum_is_order_independent() {
        let a = [0.1, 1e16, 0.2, -1e16, 0.3];
        let b = [0.3, -1e16, 0.2, 1e16, 0.1];
        assert_eq!(exact_sum(a), exact_sum(b));
        // A naive left-to-right sum gives 0.3 for `a` and 0.1 for `b`.
        assert_eq!(exact_sum(a), 0.6); // as Python's math.fsum
        assert_eq!(exact_sum([]), 0.0);
    }

    // ---- property tests -------------------------------------------------

    /// A random bank: either sub-banks or associations (or nothing).
    fn arb_bank(depth: u32) -> BoxedStrategy<FsBank> {
        let shares = prop_oneof![Just(0i64), 1i64..4, Just(10)];
        let usage = prop_oneof![Just(0.0f64), Just(0.5), Just(1.0), Just(2.0), Just(3.0), Just(0.1), 0.0f64..100.0];
        let users = prop::collection::vec((shares.clone(), usage), 0..4).prop_map(|us| {
            us.into_iter().map(|(shares, usage)| FsUser { username: String::new(), shares, usage }).collect::<Vec<_>>()
        });
        let leaf = (shares.clone(), users)
            .prop_map(|(shares, users)| FsBank { name: String::new(), shares, banks: Vec::new(), users })
            .boxed();
        if depth == 0 {
            return leaf;
        }
        let inner = (shares, prop::collection::vec(arb_bank(depth - 1), 1..4)).prop_map(|(shares, banks)| FsBank {
            name: String::new(),
            shares,
            banks,
            users: Vec::new(),
        });
        prop_oneof![leaf, inner].boxed()
    }

    /// Gives every bank and association a unique name, in input order.
    fn name_all(bank: &mut FsBank, counter: &mut u32) {
        *counter += 1;
        bank.name = format!("b{counter}");
        for user in &mut bank.users {
            *counter += 1;
            user.username = format!("u{counter}");
        }
        for sub in &mut bank.banks {
            name_all(sub, counter);
        }
    }

    /// Permutes the children at every level with a small deterministic PRNG.
    fn shuffle_all(bank: &mut FsBank, seed: &mut u64) {
        fn next(seed: &mut u64) -> u64 {
            *seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            *seed >> 33
        }
        for i in (1..bank.users.len()).rev() {
            let j = (next(seed) % (i as u64 + 1)) as usize;
            bank.users.swap(i, j);
        }
        for i in (1..bank.banks.len()).rev() {
            let j = (next(seed) % (i as u64 + 1)) as usize;
            bank.banks.swap(i, j);
        }
        for sub in &mut bank.banks {
            shuffle_all(sub, seed);
        }
    }

    fn count_users(bank: &FsBank) -> usize {
        bank.users.len() + bank.banks.iter().map(count_users).sum::<usize>()
    }

    proptest! {
        #[test]
        fn fairshare_independent_of_input_order(
            mut root in arb_bank(3),
            seed in any::<u64>(),
        ) {
            let mut counter = 0;
            name_all(&mut root, &mut counter);
            let n = count_users(&root);

            let base = compute(&root);
            prop_assert_eq!(base.len(), n);
            for v in &base {
                prop_assert!(v.fairshare > 0.0 && v.fairshare <= 1.0, "{:?}", v);
            }
            if n > 0 {
                let max = base.iter().map(|v| v.fairshare).fold(f64::MIN, f64::max);
                prop_assert_eq!(max, 1.0);
                prop_assert_eq!(base[0].fairshare, 1.0);
            }
            // Walk order is non-increasing.
            for pair in base.windows(2) {
                prop_assert!(pair[0].fairshare >= pair[1].fairshare);
            }

            let key = |vs: &[FsValue]| {
                let mut k: Vec<(String, String, u64)> = vs
                    .iter()
                    .map(|v| (v.bank.clone(), v.username.clone(), v.fairshare.to_bits()))
                    .collect();
                k.sort();
                k
            };
            let expected = key(&base);
            let mut seed = seed;
            let mut shuffled = root.clone();
            shuffle_all(&mut shuffled, &mut seed);
            let again = compute(&shuffled);
            prop_assert_eq!(key(&again), expected);
            // Names fix the walk order completely.
            prop_assert_eq!(again, base);
        }
    }
}
