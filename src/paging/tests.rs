//! Page tokens open only for the listing and caller they were sealed for, under a key
//! that is still configured, within their lifetime, and not after any change.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::*;

const NOW: i64 = 1_800_000_000;
const KEY_A: &str = "page-token-key-a-0123456789abcdef0123";
const KEY_B: &str = "page-token-key-b-0123456789abcdef0123";

fn org(name: &str) -> OrgId {
    OrgId::parse(name).unwrap()
}

fn position() -> Position {
    Position {
        cursor: Cursor {
            timestamp: UnixNanos::from_nanos(1_776_000_000_123_456_789),
            organization_id: org("org_a"),
            log_index: 41,
        },
        snapshot: Snapshot("17:42:".into()),
    }
}

fn refusal(result: Result<Position, Error>) -> String {
    match result {
        Err(Error::InvalidArgument { violations, .. }) => {
            assert_eq!(violations[0].field, "page_token");
            violations[0].description.clone()
        }
        other => panic!("not INVALID_ARGUMENT on page_token: {other:?}"),
    }
}

#[test]
fn a_token_opens_to_its_position_for_the_same_listing_and_caller() {
    let keys = PageTokenKeys::from_secrets([KEY_A]).unwrap();
    let scope = OrgScope::One(org("org_a"));
    let binding = Binding { filter: r#"action = "user.created""#, scope: &scope, tenancy: Some(&org("org_a")) };
    let token = keys.seal(&position(), &binding, NOW).unwrap();
    assert!(token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'), "{token}");
    assert_eq!(keys.open(&token, &binding, NOW + 47 * 3600).unwrap(), position());
}

#[test]
fn another_filter_scope_or_caller_is_refused_and_named() {
    let keys = PageTokenKeys::from_secrets([KEY_A]).unwrap();
    let (all, one) = (OrgScope::All, OrgScope::One(org("org_a")));
    let sealed = Binding { filter: "", scope: &all, tenancy: None };
    let token = keys.seal(&position(), &sealed, NOW).unwrap();
    let other_filter = Binding { filter: r#"result = "failure""#, ..sealed };
    assert!(refusal(keys.open(&token, &other_filter, NOW)).contains("another filter"));
    let other_scope = Binding { scope: &one, ..sealed };
    assert!(refusal(keys.open(&token, &other_scope, NOW)).contains("another organization_id"));
    let own = org("org_a");
    let other_caller = Binding { tenancy: Some(&own), ..sealed };
    assert!(refusal(keys.open(&token, &other_caller, NOW)).contains("another caller"));
}

#[test]
fn altered_truncated_forged_or_foreign_key_tokens_are_refused_alike() {
    let keys = PageTokenKeys::from_secrets([KEY_A]).unwrap();
    let scope = OrgScope::All;
    let binding = Binding { filter: "", scope: &scope, tenancy: None };
    let token = keys.seal(&position(), &binding, NOW).unwrap();
    let raw = URL_SAFE_NO_PAD.decode(&token).unwrap();
    let mut bad = vec![
        token[..token.len() - 1].to_owned(),
        token[..10].to_owned(),
        format!("{token}A"),
        "not base64 !".to_owned(),
        String::new(),
        PageTokenKeys::from_secrets([KEY_B]).unwrap().seal(&position(), &binding, NOW).unwrap(),
    ];
    for at in 0..raw.len() {
        let mut flipped = raw.clone();
        flipped[at] ^= 0x01;
        bad.push(URL_SAFE_NO_PAD.encode(flipped));
    }
    for token in bad {
        assert_eq!(refusal(keys.open(&token, &binding, NOW)), NOT_A_TOKEN, "{token}");
    }
}

#[test]
fn tokens_expire_after_their_lifetime_and_are_not_taken_from_the_future() {
    let keys = PageTokenKeys::from_secrets([KEY_A]).unwrap();
    let scope = OrgScope::All;
    let binding = Binding { filter: "", scope: &scope, tenancy: None };
    let token = keys.seal(&position(), &binding, NOW).unwrap();
    let lifetime = TOKEN_LIFETIME.as_secs() as i64;
    assert!(lifetime >= 24 * 3600);
    assert!(keys.open(&token, &binding, NOW + lifetime).is_ok());
    assert!(refusal(keys.open(&token, &binding, NOW + lifetime + 1)).starts_with("expired"));
    assert!(keys.open(&token, &binding, NOW - 60).is_ok(), "a replica's clock a minute behind");
    assert_eq!(refusal(keys.open(&token, &binding, NOW - 3600)), NOT_A_TOKEN);
}

#[test]
fn rotation_signs_with_the_first_key_and_verifies_with_all() {
    let scope = OrgScope::All;
    let binding = Binding { filter: "", scope: &scope, tenancy: None };
    let old = PageTokenKeys::from_secrets([KEY_A]).unwrap();
    let both = PageTokenKeys::from_secrets([KEY_A, KEY_B]).unwrap();
    let rotated = PageTokenKeys::from_secrets([KEY_B, KEY_A]).unwrap();
    let new = PageTokenKeys::from_secrets([KEY_B]).unwrap();
    let from_old = old.seal(&position(), &binding, NOW).unwrap();
    let from_rotated = rotated.seal(&position(), &binding, NOW).unwrap();
    for keys in [&old, &both, &rotated] {
        assert!(keys.open(&from_old, &binding, NOW).is_ok());
    }
    for keys in [&both, &rotated, &new] {
        assert!(keys.open(&from_rotated, &binding, NOW).is_ok());
    }
    assert!(new.open(&from_old, &binding, NOW).is_err(), "a dropped key verifies nothing");
}

#[test]
fn keys_are_long_enough_and_never_printed() {
    assert!(PageTokenKeys::from_secrets(["short"]).unwrap_err().contains("at least 32 bytes"));
    assert!(PageTokenKeys::from_secrets(["", " "]).is_err());
    let keys = PageTokenKeys::from_secrets([KEY_A, "", KEY_B]).unwrap();
    assert_eq!(keys.keys.len(), 2);
    assert!(!format!("{keys:?}").contains("page-token-key"));
}

#[test]
fn the_longest_token_fits_the_bound_requests_are_held_to() {
    let keys = PageTokenKeys::from_secrets([KEY_A]).unwrap();
    let longest = org(&"o".repeat(128));
    let scope = OrgScope::One(longest.clone());
    let binding = Binding { filter: &"f".repeat(2000), scope: &scope, tenancy: Some(&longest) };
    let mut position = position();
    position.cursor.organization_id = longest.clone();
    position.snapshot = Snapshot("s".repeat(MAX_SNAPSHOT_BYTES));
    let token = keys.seal(&position, &binding, NOW).unwrap();
    assert!(token.len() <= MAX_PAGE_TOKEN_CHARS, "{}", token.len());
    assert_eq!(keys.open(&token, &binding, NOW).unwrap(), position);
    position.snapshot = Snapshot("s".repeat(MAX_SNAPSHOT_BYTES + 1));
    assert!(matches!(keys.seal(&position, &binding, NOW), Err(Error::Internal(_))));
}

proptest::proptest! {
    /// Whatever a client sends as a token, it is refused with INVALID_ARGUMENT, never a panic.
    #[test]
    fn any_text_or_any_change_to_a_token_is_refused(text in "\\PC{0,300}", at in 0usize..4096, bit in 0u8..8) {
        let keys = PageTokenKeys::from_secrets([KEY_A]).unwrap();
        let scope = OrgScope::All;
        let binding = Binding { filter: "", scope: &scope, tenancy: None };
        proptest::prop_assert_eq!(refusal(keys.open(&text, &binding, NOW)), NOT_A_TOKEN);
        let mut raw = URL_SAFE_NO_PAD.decode(keys.seal(&position(), &binding, NOW).unwrap()).unwrap();
        let at = at % raw.len();
        raw[at] ^= 1 << bit;
        proptest::prop_assert_eq!(refusal(keys.open(&URL_SAFE_NO_PAD.encode(raw), &binding, NOW)), NOT_A_TOKEN);
    }
}
