//! Fuzz target: the filter parser never panics, refuses with a position inside the
//! input, and whatever it accepts writes a canonical form that parses back to the
//! same tree and writes itself again unchanged.
#![no_main]

use audit_service::filter::{Filter, Limits};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match Filter::parse(text) {
        Ok(Some(filter)) => {
            let canonical = filter.to_string();
            // A canonical form may be longer than its source (`-` becomes `NOT `):
            // only the length limit is lifted.
            let limits = Limits { max_chars: usize::MAX, ..Limits::default() };
            let again = Filter::parse_with(&canonical, &limits);
            assert_eq!(again, Ok(Some(filter)), "{text:?} → {canonical:?}");
            assert_eq!(again.unwrap().unwrap().to_string(), canonical);
        }
        Ok(None) => assert!(text.trim().is_empty(), "{text:?}"),
        Err(error) => assert!(error.position <= text.chars().count(), "{text:?}: {error}"),
    }
});
