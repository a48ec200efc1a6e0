//! `~` patterns: `*` matches any run of characters (none included), every other
//! character only itself, case-sensitively; in memory, and as each database's
//! wildcard syntax with that syntax's own metacharacters escaped.

/// The text of a `~` pattern as written between its quotes. `*` cannot be matched
/// literally: the contract gives it no escape.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Pattern(String);

impl Pattern {
    pub fn new(text: impl Into<String>) -> Self {
        Self(text.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The one text the pattern matches, when it has no `*`.
    pub fn literal(&self) -> Option<&str> {
        (!self.0.contains('*')).then_some(self.0.as_str())
    }

    pub fn matches(&self, text: &str) -> bool {
        let mut pieces = self.0.split('*');
        // `split` yields at least one piece, the text before the first `*`.
        let first = pieces.next().unwrap_or_default();
        let Some(mut rest) = text.strip_prefix(first) else { return false };
        let pieces: Vec<&str> = pieces.collect();
        let Some((last, middle)) = pieces.split_last() else { return rest.is_empty() };
        // Leftmost placement of each middle piece leaves the most room for the rest,
        // so it finds a match whenever there is one. Substring search on UTF-8 bytes
        // only ever matches at character boundaries.
        for piece in middle {
            let Some(found) = rest.find(piece) else { return false };
            rest = &rest[found + piece.len()..];
        }
        rest.ends_with(last)
    }

    /// For SQL `LIKE … ESCAPE '\'`: `*` becomes `%`; `%`, `_` and `\` are escaped.
    pub fn to_like(&self) -> String {
        let mut out = String::with_capacity(self.0.len() + 4);
        for c in self.0.chars() {
            match c {
                '*' => out.push('%'),
                '%' | '_' | '\\' => {
                    out.push('\\');
                    out.push(c);
                }
                c => out.push(c),
            }
        }
        out
    }

    /// For SQLite `GLOB`, which has no escape character: `*` stays, and its other
    /// metacharacters `?` and `[` become the one-character sets `[?]` and `[[]`
    /// (`]` outside a set is literal).
    pub fn to_glob(&self) -> String {
        let mut out = String::with_capacity(self.0.len() + 4);
        for c in self.0.chars() {
            match c {
                '?' => out.push_str("[?]"),
                '[' => out.push_str("[[]"),
                c => out.push(c),
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::Pattern;

    fn matches(pattern: &str, text: &str) -> bool {
        Pattern::new(pattern).matches(text)
    }

    #[test]
    fn a_star_matches_any_run_and_nothing_else_is_special() {
        assert!(matches("session.*", "session.login"));
        assert!(matches("session.*", "session."));
        assert!(!matches("session.*", "session"));
        assert!(!matches("session.*", "Session.login"), "case-sensitive");
        assert!(matches("*", ""));
        assert!(matches("**", "x"));
        assert!(matches("*.login.*", "session.login.failed"));
        assert!(!matches("*.login.*", "session.login"));
        assert!(matches("a*b*c", "abc"));
        assert!(matches("a*b*c", "a-b-b-c"));
        assert!(!matches("a*a", "a"), "prefix and suffix may not overlap");
        assert!(matches("a%_?[b]\\", "a%_?[b]\\"));
        assert!(!matches("a_c", "abc"), "_ is no wildcard");
        assert!(matches("ä*", "äb"));
        assert!(!matches("ä*", "Äb"));
        assert!(matches("exact", "exact"));
        assert!(!matches("exact", "exactly"));
    }

    #[test]
    fn translations_escape_each_syntax_own_metacharacters() {
        let pattern = Pattern::new(r"a*%_\?[]");
        assert_eq!(pattern.to_like(), r"a%\%\_\\?[]");
        assert_eq!(pattern.to_glob(), r"a*%_\[?][[]]");
        assert_eq!(pattern.literal(), None);
        assert_eq!(Pattern::new("x.y").literal(), Some("x.y"));
    }
}
