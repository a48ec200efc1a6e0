//! Fuzz target: the RFC 3339 parser never panics, and whatever it accepts formats
//! to the canonical form, which parses back to the same instant.
#![no_main]

use audit_service::rfc3339::{format, parse};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(t) = parse(text) {
        assert!((0..1_000_000_000).contains(&t.nanos), "{text:?} gave nanos {}", t.nanos);
        let canonical = format(&t);
        assert!(canonical.ends_with('Z'), "{canonical}");
        assert_eq!(parse(&canonical), Ok(t), "{text:?} → {canonical:?}");
        assert_eq!(format(&parse(&canonical).unwrap()), canonical);
    }
});
