//! Properties over generated filters, as `fuzz/fuzz_targets/filter.rs` checks them on
//! arbitrary bytes: the canonical form parses back to the same tree, and no input,
//! however mangled, makes the parser panic.

use std::net::IpAddr;

use proptest::prelude::*;

use super::*;

/// The canonical form of a tree may be longer than the text it came from (a `-`
/// becomes `NOT `, `.1Z` becomes `.100Z`), so only the length limit is lifted.
const CANONICAL: Limits = Limits { max_chars: usize::MAX, max_comparisons: MAX_COMPARISONS, max_depth: MAX_NESTING };

fn text_value() -> impl Strategy<Value = String> {
    let tricky = proptest::sample::select(&['"', '\\', '*', ' ', '(', ')', '-', 'A', 'é', '%', '_'][..]);
    let c = prop_oneof![any::<char>().prop_filter("no control characters", |c| !c.is_control()), tricky];
    proptest::collection::vec(c, 0..10).prop_map(|chars| chars.into_iter().collect())
}

fn comparison() -> impl Strategy<Value = Comparison> {
    let text_field = proptest::sample::select(&TextField::ALL[..]);
    let text_op = prop_oneof![
        text_value().prop_map(TextOp::Eq),
        text_value().prop_map(TextOp::Ne),
        text_value().prop_map(|p| TextOp::Like(Pattern::new(p))),
    ];
    let ip_op = prop_oneof![
        any::<IpAddr>().prop_map(IpOp::Eq),
        any::<IpAddr>().prop_map(IpOp::Ne),
        text_value().prop_map(|p| IpOp::Like(Pattern::new(p))),
    ];
    let equality = proptest::sample::select(&[Equality::Eq, Equality::Ne][..]);
    let outcome = proptest::sample::select(&[Outcome::Success, Outcome::Failure][..]);
    let time_op =
        proptest::sample::select(&[TimeOp::Eq, TimeOp::Ne, TimeOp::Lt, TimeOp::Le, TimeOp::Gt, TimeOp::Ge][..]);
    prop_oneof![
        (text_field, text_op).prop_map(|(field, op)| Comparison::Text { field, op }),
        ip_op.prop_map(Comparison::Ip),
        (equality, outcome).prop_map(|(op, outcome)| Comparison::Result { op, outcome }),
        (time_op, any::<i64>()).prop_map(|(op, at)| Comparison::Time { op, at: UnixNanos::from_nanos(at) }),
    ]
}

/// Trees the parser can build: AND and OR of two or more, at most 20 comparisons.
pub(super) fn expr() -> impl Strategy<Value = Expr> {
    let leaf = comparison().prop_map(Expr::Compare);
    let tree = leaf.prop_recursive(4, 16, 3, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 2..4).prop_map(Expr::And),
            proptest::collection::vec(inner.clone(), 2..4).prop_map(Expr::Or),
            inner.prop_map(|e| Expr::Not(Box::new(e))),
        ]
    });
    tree.prop_filter("at most 20 comparisons", |e| comparisons(e) <= MAX_COMPARISONS)
}

fn comparisons(expr: &Expr) -> usize {
    match expr {
        Expr::And(items) | Expr::Or(items) => items.iter().map(comparisons).sum(),
        Expr::Not(inner) => comparisons(inner),
        Expr::Compare(_) => 1,
    }
}

/// Canonical texts, then a few characters inserted, replaced or removed.
fn mutated() -> impl Strategy<Value = String> {
    let c = prop_oneof![
        any::<char>(),
        proptest::sample::select(&['(', ')', '"', '\\', '-', ' ', '=', '!', '<', '~', 'N', 'O', 'T', 'A', 'R'][..])
    ];
    let edit = (any::<proptest::sample::Index>(), 0..3_u8, c);
    (expr(), proptest::collection::vec(edit, 1..4)).prop_map(|(e, edits)| {
        let mut chars: Vec<char> = e.to_string().chars().collect();
        for (index, kind, c) in edits {
            let i = index.index(chars.len() + 1);
            match kind {
                0 => chars.insert(i, c),
                1 if i < chars.len() => chars[i] = c,
                _ if i < chars.len() => drop(chars.remove(i)),
                _ => {}
            }
        }
        chars.into_iter().collect()
    })
}

/// What the fuzz target asserts of any input.
fn check_any(input: &str) -> Result<(), TestCaseError> {
    match Filter::parse(input) {
        Ok(Some(filter)) => {
            let canonical = filter.to_string();
            prop_assert_eq!(Filter::parse_with(&canonical, &CANONICAL), Ok(Some(filter.clone())), "{:?}", input);
            prop_assert_eq!(Filter::parse_with(&canonical, &CANONICAL).unwrap().unwrap().to_string(), canonical);
        }
        Ok(None) => prop_assert!(input.trim().is_empty()),
        Err(error) => prop_assert!(error.position <= input.chars().count(), "{:?}: {}", input, error),
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn the_canonical_form_parses_back_to_the_same_tree(e in expr()) {
        let filter = Filter(e);
        let canonical = filter.to_string();
        prop_assert_eq!(Filter::parse_with(&canonical, &CANONICAL), Ok(Some(filter)), "{}", canonical);
    }

    #[test]
    fn never_panics_on_arbitrary_strings(input in ".{0,64}") {
        check_any(&input)?;
    }

    #[test]
    fn never_panics_on_mutated_filters(input in mutated()) {
        check_any(&input)?;
    }
}
