//! The language as the contract fixes it: its examples, precedence, negation, and
//! every class of refusal with the position it names.

use super::*;
use crate::rfc3339;

fn parse(input: &str) -> Filter {
    match Filter::parse(input) {
        Ok(Some(filter)) => filter,
        other => panic!("{input:?} should parse, got {other:?}"),
    }
}

/// The canonical form of what `input` parses to.
fn canonical(input: &str) -> String {
    parse(input).to_string()
}

/// Position and message of the refusal of `input`.
fn refusal(input: &str) -> (usize, String) {
    match Filter::parse(input) {
        Err(FilterError { position, message }) => (position, message),
        other => panic!("{input:?} should be refused, got {other:?}"),
    }
}

fn text(field: TextField, op: TextOp) -> Expr {
    Expr::Compare(Comparison::Text { field, op })
}

fn action_is(value: &str) -> Expr {
    text(TextField::Action, TextOp::Eq(value.to_owned()))
}

fn nanos(rfc3339_text: &str) -> UnixNanos {
    UnixNanos::from_timestamp(&rfc3339::parse(rfc3339_text).unwrap()).unwrap()
}

#[test]
fn the_contract_examples_parse_and_are_already_canonical() {
    let examples = [
        (r#"action = "user.created""#, action_is("user.created")),
        (r#"action ~ "session.*""#, text(TextField::Action, TextOp::Like(Pattern::new("session.*")))),
        (
            r#"actor.id = "usr_4f18acec" AND result = "failure""#,
            Expr::And(vec![
                text(TextField::ActorId, TextOp::Eq("usr_4f18acec".into())),
                Expr::Compare(Comparison::Result { op: Equality::Eq, outcome: Outcome::Failure }),
            ]),
        ),
        (
            r#"timestamp >= "2026-04-17T00:00:00Z""#,
            Expr::Compare(Comparison::Time { op: TimeOp::Ge, at: nanos("2026-04-17T00:00:00Z") }),
        ),
    ];
    for (input, tree) in examples {
        let filter = parse(input);
        assert_eq!(filter.expr(), &tree, "{input}");
        assert_eq!(filter.to_string(), input);
    }
}

#[test]
fn a_blank_filter_is_no_filter() {
    for blank in ["", " ", "\t\r\n ", "\u{3000}"] {
        assert_eq!(Filter::parse(blank), Ok(None), "{blank:?}");
    }
}

#[test]
fn every_field_takes_its_operators() {
    let accepted = [
        ("id = e1", r#"id = "e1""#),
        ("id != e1", r#"id != "e1""#),
        ("id ~ \"e*\"", r#"id ~ "e*""#),
        ("actor.type = identity", r#"actor.type = "identity""#),
        ("actor.id != usr_1", r#"actor.id != "usr_1""#),
        ("target.type ~ \"ses*\"", r#"target.type ~ "ses*""#),
        ("target.id = \"\"", r#"target.id = """#),
        ("user_agent ~ \"Mozilla/*\"", r#"user_agent ~ "Mozilla/*""#),
        ("result = success", r#"result = "success""#),
        ("result != \"failure\"", r#"result != "failure""#),
        ("ip = 198.51.100.42", r#"ip = "198.51.100.42""#),
        ("ip != \"2001:DB8::1\"", r#"ip != "2001:db8::1""#),
        ("ip ~ \"198.51.*\"", r#"ip ~ "198.51.*""#),
        ("timestamp = 2026-04-17T00:00:00Z", r#"timestamp = "2026-04-17T00:00:00Z""#),
        ("timestamp != \"2026-04-17T02:00:00.5+02:00\"", r#"timestamp != "2026-04-17T00:00:00.500Z""#),
        ("timestamp < \"2026-04-17 00:00:00z\"", r#"timestamp < "2026-04-17T00:00:00Z""#),
        ("timestamp <= 2026-04-17t00:00:00.000000001Z", r#"timestamp <= "2026-04-17T00:00:00.000000001Z""#),
        ("timestamp > \"2026-04-17T00:00:00-00:00\"", r#"timestamp > "2026-04-17T00:00:00Z""#),
        ("timestamp>=2026-04-17T00:00:00Z", r#"timestamp >= "2026-04-17T00:00:00Z""#),
    ];
    for (input, expected) in accepted {
        assert_eq!(canonical(input), expected, "{input}");
    }
}

#[test]
fn bare_words_and_strings_hold_what_the_contract_says() {
    assert_eq!(canonical("actor.id=a_b.c-d:e@f/g9"), r#"actor.id = "a_b.c-d:e@f/g9""#);
    assert_eq!(canonical("user_agent = -"), r#"user_agent = "-""#, "a value may start with -");
    assert_eq!(canonical("target.id = -5"), r#"target.id = "-5""#);
    assert_eq!(canonical(r#"actor.id = "a\"b\\c""#), r#"actor.id = "a\"b\\c""#);
    let Expr::Compare(Comparison::Text { op: TextOp::Eq(value), .. }) = parse(r#"actor.id = "a\"b\\c""#).0 else {
        panic!("a text comparison")
    };
    assert_eq!(value, r#"a"b\c"#);
    assert_eq!(
        canonical(r#"user_agent = "Mozilla/5.0 (X11) é AND OR""#),
        r#"user_agent = "Mozilla/5.0 (X11) é AND OR""#
    );
    assert_eq!(canonical(r#"action = "x"AND(id = "y")"#), r#"action = "x" AND id = "y""#);
}

#[test]
fn or_binds_tighter_than_and_and_not_tightest() {
    let (a, b, c) = (action_is("a"), action_is("b"), action_is("c"));
    let cases = [
        ("action = a AND action = b OR action = c", Expr::And(vec![a.clone(), Expr::Or(vec![b.clone(), c.clone()])])),
        ("action = a OR action = b AND action = c", Expr::And(vec![Expr::Or(vec![a.clone(), b.clone()]), c.clone()])),
        ("(action = a AND action = b) OR action = c", Expr::Or(vec![Expr::And(vec![a.clone(), b.clone()]), c.clone()])),
        ("NOT action = a OR action = b", Expr::Or(vec![Expr::Not(Box::new(a.clone())), b.clone()])),
        ("-action = a AND action = b", Expr::And(vec![Expr::Not(Box::new(a.clone())), b.clone()])),
        ("NOT (action = a OR action = b)", Expr::Not(Box::new(Expr::Or(vec![a.clone(), b.clone()])))),
        ("action = a AND action = b AND action = c", Expr::And(vec![a.clone(), b.clone(), c.clone()])),
        ("action = a AND (action = b AND action = c)", Expr::And(vec![a.clone(), Expr::And(vec![b, c])])),
        ("((action = a))", a),
    ];
    for (input, tree) in cases {
        let filter = parse(input);
        assert_eq!(filter.expr(), &tree, "{input}");
        assert_eq!(parse(&filter.to_string()), filter, "{input} → {filter}");
    }
}

#[test]
fn not_and_a_leading_minus_are_the_same_negation() {
    let expected = r#"NOT action = "a""#;
    for input in ["NOT action = a", "-action = a", "- action = a", "NOT (action = a)", "-(action = a)", "NOT(action=a)"]
    {
        assert_eq!(canonical(input), expected, "{input}");
    }
    assert_eq!(canonical("NOT (NOT action = a)"), r#"NOT (NOT action = "a")"#);
    assert_eq!(canonical("-(action = a OR id = b)"), r#"NOT (action = "a" OR id = "b")"#);
    for twice in ["NOT NOT action = a", "--action = a", "NOT -action = a", "- -action = a", "-NOT action = a"] {
        let (_, message) = refusal(twice);
        assert!(message.starts_with("one NOT or - per comparison"), "{twice}: {message}");
    }
}

#[test]
fn each_refusal_names_where_reading_stopped() {
    let fields =
        "fields are id, action, result, actor.type, actor.id, target.type, target.id, ip, user_agent, timestamp";
    let cases: &[(&str, usize, &str)] = &[
        // Unknown fields, with the list of known ones.
        (r#"actor.type = "user" AND actr.id = "x""#, 24, r#"unknown field "actr.id"; "#),
        ("Action = x", 0, r#"unknown field "Action""#),
        // An operator the field does not take.
        (r#"action < "x""#, 7, r#"action takes =, != or ~, not "<""#),
        ("actor.id >= x", 9, r#"actor.id takes =, != or ~, not ">=""#),
        (r#"result ~ "succ*""#, 7, r#"result takes = or !=, not "~""#),
        (r#"timestamp ~ "2026*""#, 10, r#"timestamp takes =, !=, <, <=, > or >=, not "~""#),
        ("ip > 1.2.3.4", 3, r#"ip takes =, != or ~, not ">""#),
        // A value the field cannot hold.
        ("result = succes", 9, r#"result is success or failure, not "succes""#),
        ("result = Success", 9, r#"result is success or failure, not "Success""#),
        (r#"ip = "localhost""#, 5, r#"ip must be an IPv4 or IPv6 address, not "localhost""#),
        // Bad timestamps, with the RFC 3339 parser's own reason.
        (r#"timestamp >= "2026-13-01T00:00:00Z""#, 13, "month must be 01-12"),
        ("timestamp < 2026-04-17", 12, "expected RFC 3339 like 2026-01-05T10:00:00Z"),
        (r#"timestamp < "2026-04-17T23:59:60Z""#, 12, "leap second 60 is not supported"),
        (r#"timestamp = "2026-04-17T00:00:00.1234567891Z""#, 12, "fraction has more than 9 digits"),
        // Strings.
        (r#"action = "user.created"#, 9, "unterminated string"),
        (r#"action = "a\nb""#, 11, r#"unknown escape "\n" in a string"#),
        (r#"action = "a\"#, 9, "unterminated string"),
        ("action = \"a\u{1}\"", 11, "control character U+0001 in a string"),
        ("action = 'x'", 9, "strings take double quotes"),
        ("action ~ session.*", 17, "a pattern must be quoted"),
        ("action = ä", 9, "bare words are ASCII"),
        ("action = x # y", 11, r##"unexpected "#""##),
        ("actor.id = a+b", 12, r#"unexpected "+": quote a value that holds it"#),
        ("timestamp < 2026-01-01T00:00:00+01:00", 12, "quote a time with a + offset"),
        ("action ! x", 7, r#"the operator is "!=""#),
        // Trailing input.
        ("action = x y", 11, r#"expected AND, OR or the end of the filter, found "y""#),
        ("action = x AND id = y z", 22, r#"found "z""#),
        (r#"action = "x" "y""#, 13, "found a quoted string"),
        ("action = x)", 10, r#"")" without a matching "(""#),
        // Missing operands.
        ("action =", 8, r#"expected a value after "=", found the end of the filter"#),
        ("action = AND id = x", 9, r#"expected a value after "=", found AND"#),
        ("action", 6, "expected an operator (=, !=, <, <=, >, >=, ~) after action, found the end of the filter"),
        ("action x", 7, r#"after action, found "x""#),
        ("action = x AND", 14, "expected a comparison, found the end of the filter"),
        ("action = x OR OR id = y", 14, "expected a comparison, found OR"),
        ("AND action = x", 0, "expected a comparison, found AND"),
        ("NOT", 3, "expected a comparison, found the end of the filter"),
        ("-", 1, "expected a comparison"),
        ("= x", 0, r#"expected a comparison, found "=""#),
        (r#""action" = x"#, 0, "expected a field name, found a quoted string"),
        // Unbalanced parentheses.
        ("(action = x", 11, r#"expected ")" to close the "(" at position 0, found the end of the filter"#),
        ("((action = x) OR id = y", 23, r#"to close the "(" at position 0"#),
        ("()", 1, r#"expected a comparison, found ")""#),
        (")", 0, r#"expected a comparison, found ")""#),
        // Lowercase keywords are words, refused where they stand.
        ("action = x and id = y", 11, r#"found "and" (keywords are uppercase: AND)"#),
        ("action = x or id = y", 11, "(keywords are uppercase: OR)"),
        ("not action = x", 0, r#"unknown field "not" (keywords are uppercase: NOT)"#),
        ("(action = x or id = y)", 12, r#"found "or" (keywords are uppercase: OR)"#),
        // Positions count characters, not bytes: "é" is two bytes.
        (r#"actor.id = "é" AND nope = 1"#, 19, r#"unknown field "nope""#),
    ];
    for &(input, position, message) in cases {
        let (at, said) = refusal(input);
        assert_eq!(at, position, "{input}: {said}");
        assert!(said.contains(message), "{input}: {said:?} should contain {message:?}");
    }
    let (_, said) = refusal("actr.id = x");
    assert!(said.ends_with(fields), "{said}");
}

#[test]
fn limits_are_2000_characters_20_comparisons_and_20_parentheses() {
    let exactly = format!(r#"user_agent = "{}""#, "é".repeat(MAX_FILTER_CHARS - 15));
    assert_eq!(exactly.chars().count(), MAX_FILTER_CHARS);
    assert!(exactly.len() > MAX_FILTER_CHARS, "bytes are not what is counted");
    parse(&exactly);
    let over = format!(r#"user_agent = "{}""#, "é".repeat(MAX_FILTER_CHARS - 14));
    assert_eq!(refusal(&over), (2000, "the filter is longer than 2000 characters".to_owned()));
    assert_eq!(refusal(&" ".repeat(2001)).0, 2000, "blank but too long");

    let comparisons = |n: usize| (0..n).map(|i| format!("id = e{i}")).collect::<Vec<_>>().join(" AND ");
    parse(&comparisons(20));
    let (at, message) = refusal(&comparisons(21));
    assert_eq!(at, comparisons(20).len() + " AND ".len());
    assert_eq!(message, "more than 20 comparisons");
    let nested = |n: usize| format!("{}id = e{}", "(".repeat(n), ")".repeat(n));
    parse(&nested(20));
    assert_eq!(refusal(&nested(21)), (20, "parentheses nest more than 20 deep".to_owned()));
    // Deep enough to overflow the stack if recursion were not bounded.
    assert_eq!(refusal(&"(".repeat(MAX_FILTER_CHARS)).0, 20);
    assert_eq!(refusal(&"NOT (".repeat(MAX_FILTER_CHARS / 5)).0, 20 * 5 + 4);
}

#[test]
fn a_refusal_is_invalid_argument_on_filter_naming_the_position() {
    let error = Error::from(Filter::parse("actr.id = x").unwrap_err());
    let Error::InvalidArgument { message, violations } = error else { panic!("INVALID_ARGUMENT") };
    assert_eq!(violations.len(), 1);
    assert_eq!(violations[0].field, "filter");
    assert!(violations[0].description.starts_with(r#"at position 0: unknown field "actr.id"; fields are id, action"#));
    assert_eq!(message, format!("filter {}", violations[0].description));
}

#[test]
fn timestamps_beyond_nanosecond_range_compare_as_constants() {
    let time = |op, at| Expr::Compare(Comparison::Time { op, at: UnixNanos::from_nanos(at) });
    let always = time(TimeOp::Ge, i64::MIN);
    let never = time(TimeOp::Lt, i64::MIN);
    let cases = [
        ("timestamp >= 0001-01-01T00:00:00Z", &always),
        ("timestamp > 0001-01-01T00:00:00Z", &always),
        ("timestamp != 0001-01-01T00:00:00Z", &always),
        ("timestamp <= 0001-01-01T00:00:00Z", &never),
        ("timestamp = 0001-01-01T00:00:00Z", &never),
        ("timestamp < 9999-12-31T23:59:59Z", &always),
        ("timestamp > 9999-12-31T23:59:59Z", &never),
        ("timestamp = 2262-04-12T00:00:00Z", &never),
    ];
    for (input, tree) in cases {
        assert_eq!(parse(input).expr(), tree, "{input}");
    }
    // The edges of the range are ordinary instants.
    let edge = parse(r#"timestamp = "2262-04-11T23:47:16.854775807Z""#);
    assert_eq!(edge.expr(), &time(TimeOp::Eq, i64::MAX));
}
