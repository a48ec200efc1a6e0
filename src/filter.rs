//! The filter language of ListEvents, ExportEvents and StreamEvents (a subset of
//! AIP-160 with `~` for wildcards): one parser into a typed tree that cannot be
//! invalid, the one planner into parameterized SQL ([`plan`]), and the same
//! semantics in memory ([`Filter::matches`]) for what never reaches SQL.
//!
//! ```text
//! filter     = [expression]                      ; blank: no filter
//! expression = factor {"AND" factor}             ; AND binds loosest
//! factor     = term {"OR" term}                  ; OR binds tighter than AND (AIP-160)
//! term       = ["NOT" | "-"] simple              ; NOT tightest, at most one per term
//! simple     = "(" expression ")" | field operator value
//! field      = id | action | result | actor.type | actor.id | target.type | target.id
//!            | ip | user_agent | timestamp
//! operator   = "=" | "!=" | "<" | "<=" | ">" | ">=" | "~"
//! value      = word | string
//! word       = 1*(ASCII letter | digit | "_" | "." | "-" | ":" | "@" | "/")
//! string     = '"' *(any character but '"', "\" or a control | '\"' | "\\") '"'
//! ```
//!
//! Keywords are uppercase; `and` is a word, so `a = 1 and b = 2` is refused where
//! `and` stands. Which operators a field takes: `result` `=` `!=` with `success` or
//! `failure`; `timestamp` `=` `!=` `<` `<=` `>` `>=` with an RFC 3339 time, read by
//! the same strict parser as REST query parameters ([`crate::rfc3339`]); `ip` `=` `!=`
//! with an IPv4 or IPv6 address (compared as addresses, so `2001:DB8::1` is
//! `2001:db8::1`) and `~`; every other field `=` `!=` `~`. `~` takes a [`Pattern`]:
//! `*` is any run of characters, everything else literal, case-sensitive.
//!
//! Semantics:
//! - An event without an ip is not equal to any address: `ip = X` and `ip ~ P` leave
//!   it out, `ip != X` takes it in (a missing field is "not equal", as in AIP-160), and
//!   `NOT` is plain negation of those.
//! - `ip ~ P` reads the address's text as the store writes it: SQLite and in memory
//!   the standard form (RFC 5952), PostgreSQL `host(ip)`. They differ only on the
//!   deprecated IPv4-compatible IPv6 addresses (`::1.2.3.4`, RFC 4291 §2.5.5.1),
//!   which PostgreSQL writes with a dotted quad and the others as `::102:304`.
//! - A timestamp outside the years 1677-2262 (what integer nanoseconds reach) is
//!   below or above every event, so its comparison becomes constantly true or false;
//!   see `parser::time_comparison`.
//!
//! Errors ([`FilterError`]) name a position: the 0-based offset, in characters
//! (Unicode scalar values, not bytes), of where reading stopped; for ASCII text it is
//! also the byte offset. Characters, because the description is shown to people and
//! placed in a text box, and the length limit is in characters too. Limits: 2,000
//! characters, 20 comparisons, parentheses 20 deep (which bounds the recursion).

mod lexer;
mod parser;
mod pattern;
pub mod plan;

#[cfg(test)]
mod plan_tests;
#[cfg(test)]
mod properties;
#[cfg(test)]
mod tests;

use std::fmt;
use std::net::IpAddr;

use crate::domain::{NewEvent, Outcome, UnixNanos};
use crate::error::Error;
pub use pattern::Pattern;
pub use plan::Dialect;

pub const MAX_FILTER_CHARS: usize = 2000;
pub const MAX_COMPARISONS: usize = 20;
/// Parentheses inside parentheses, at most. Without a bound, 2,000 `(` would recurse
/// 2,000 levels deep on a request thread's stack.
pub const MAX_NESTING: usize = 20;

/// What the parser accepts at most. The contract's limits are the [`Default`];
/// only tests lift them (a canonical form may be longer than the text it came from).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_chars: usize,
    pub max_comparisons: usize,
    pub max_depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self { max_chars: MAX_FILTER_CHARS, max_comparisons: MAX_COMPARISONS, max_depth: MAX_NESTING }
    }
}

/// A parsed, valid filter. `Display` writes its canonical form, which parses back to
/// the same tree: one space around operators and keywords, `NOT` for `-`, values
/// quoted, parentheses only where the tree needs them, timestamps Z-normalized.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter(Expr);

/// The expression tree. The parser builds `And` and `Or` with two or more operands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expr {
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Not(Box<Expr>),
    Compare(Comparison),
}

/// One comparison, typed by what its field holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Comparison {
    Text { field: TextField, op: TextOp },
    Ip(IpOp),
    Result { op: Equality, outcome: Outcome },
    Time { op: TimeOp, at: UnixNanos },
}

/// The fields that hold text, never missing (an absent target reads as `""`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TextField {
    Id,
    Action,
    ActorType,
    ActorId,
    TargetType,
    TargetId,
    UserAgent,
}

impl TextField {
    pub const ALL: [Self; 7] =
        [Self::Id, Self::Action, Self::ActorType, Self::ActorId, Self::TargetType, Self::TargetId, Self::UserAgent];
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TextOp {
    Eq(String),
    Ne(String),
    Like(Pattern),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IpOp {
    Eq(IpAddr),
    Ne(IpAddr),
    Like(Pattern),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Equality {
    Eq,
    Ne,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

/// Why a filter was refused; Display reads `at position 14: unknown field "actr.id"; …`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("at position {position}: {message}")]
pub struct FilterError {
    /// 0-based offset in characters (not bytes) into the filter text.
    pub position: usize,
    pub message: String,
}

impl FilterError {
    /// An error at byte offset `byte` of `input`, which must be a character boundary.
    fn at_byte(input: &str, byte: usize, message: impl Into<String>) -> Self {
        Self { position: input[..byte].chars().count(), message: message.into() }
    }
}

/// `INVALID_ARGUMENT` with a `BadRequest` violation on `filter` naming the position.
impl From<FilterError> for Error {
    fn from(error: FilterError) -> Self {
        Error::invalid("filter", error.to_string())
    }
}

impl Filter {
    /// Parses under the contract's limits; `None` for a blank filter, which selects everything.
    pub fn parse(input: &str) -> Result<Option<Self>, FilterError> {
        Self::parse_with(input, &Limits::default())
    }

    pub fn parse_with(input: &str, limits: &Limits) -> Result<Option<Self>, FilterError> {
        if input.chars().nth(limits.max_chars).is_some() {
            let message = format!("the filter is longer than {} characters", limits.max_chars);
            return Err(FilterError { position: limits.max_chars, message });
        }
        if input.trim().is_empty() {
            return Ok(None);
        }
        parser::parse(input, limits).map(|expr| Some(Self(expr)))
    }

    pub fn expr(&self) -> &Expr {
        &self.0
    }

    /// Whether `event` passes the filter: exactly what the filter's SQL selects.
    pub fn matches(&self, event: &NewEvent) -> bool {
        self.0.matches(event)
    }
}

impl Expr {
    pub fn matches(&self, event: &NewEvent) -> bool {
        match self {
            Self::And(items) => items.iter().all(|item| item.matches(event)),
            Self::Or(items) => items.iter().any(|item| item.matches(event)),
            Self::Not(inner) => !inner.matches(event),
            Self::Compare(comparison) => comparison.matches(event),
        }
    }
}

impl Comparison {
    pub fn matches(&self, event: &NewEvent) -> bool {
        match self {
            Self::Text { field, op } => {
                let text = field.value(event);
                match op {
                    TextOp::Eq(value) => text == value,
                    TextOp::Ne(value) => text != value,
                    TextOp::Like(pattern) => pattern.matches(text),
                }
            }
            Self::Ip(IpOp::Eq(ip)) => event.ip == Some(*ip),
            Self::Ip(IpOp::Ne(ip)) => event.ip != Some(*ip),
            Self::Ip(IpOp::Like(pattern)) => event.ip.is_some_and(|ip| pattern.matches(&ip.to_string())),
            Self::Result { op, outcome } => (event.outcome == *outcome) == (*op == Equality::Eq),
            Self::Time { op, at } => {
                let (t, at) = (event.timestamp, *at);
                match op {
                    TimeOp::Eq => t == at,
                    TimeOp::Ne => t != at,
                    TimeOp::Lt => t < at,
                    TimeOp::Le => t <= at,
                    TimeOp::Gt => t > at,
                    TimeOp::Ge => t >= at,
                }
            }
        }
    }
}

impl TextField {
    /// The name the filter language gives the field.
    pub fn name(self) -> &'static str {
        match self {
            Self::Id => "id",
            Self::Action => "action",
            Self::ActorType => "actor.type",
            Self::ActorId => "actor.id",
            Self::TargetType => "target.type",
            Self::TargetId => "target.id",
            Self::UserAgent => "user_agent",
        }
    }

    /// The column of `audit_events` holding the field.
    pub fn column(self) -> &'static str {
        match self {
            Self::Id => "id",
            Self::Action => "action",
            Self::ActorType => "actor_type",
            Self::ActorId => "actor_id",
            Self::TargetType => "target_type",
            Self::TargetId => "target_id",
            Self::UserAgent => "user_agent",
        }
    }

    fn value(self, event: &NewEvent) -> &str {
        match self {
            Self::Id => &event.id,
            Self::Action => event.action.as_str(),
            Self::ActorType => &event.actor_type,
            Self::ActorId => &event.actor_id,
            Self::TargetType => &event.target_type,
            Self::TargetId => &event.target_id,
            Self::UserAgent => &event.user_agent,
        }
    }
}

impl TimeOp {
    /// The operator, the same in the filter language and in SQL.
    pub fn symbol(self) -> &'static str {
        match self {
            Self::Eq => "=",
            Self::Ne => "!=",
            Self::Lt => "<",
            Self::Le => "<=",
            Self::Gt => ">",
            Self::Ge => ">=",
        }
    }
}

impl fmt::Display for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // An operand is parenthesized exactly when reading it bare would build another tree.
        let (items, joiner) = match self {
            Self::And(items) => (items, " AND "),
            Self::Or(items) => (items, " OR "),
            Self::Not(inner) => {
                return match **inner {
                    Self::Compare(_) => write!(f, "NOT {inner}"),
                    _ => write!(f, "NOT ({inner})"),
                };
            }
            Self::Compare(comparison) => return comparison.fmt(f),
        };
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                f.write_str(joiner)?;
            }
            match (self, item) {
                (_, Self::And(_)) | (Self::Or(_), Self::Or(_)) => write!(f, "({item})")?,
                _ => write!(f, "{item}")?,
            }
        }
        Ok(())
    }
}

impl fmt::Display for Comparison {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (field, op, value) = match self {
            Self::Text { field, op: TextOp::Eq(value) } => (field.name(), "=", value.clone()),
            Self::Text { field, op: TextOp::Ne(value) } => (field.name(), "!=", value.clone()),
            Self::Text { field, op: TextOp::Like(pattern) } => (field.name(), "~", pattern.as_str().to_owned()),
            Self::Ip(IpOp::Eq(ip)) => ("ip", "=", ip.to_string()),
            Self::Ip(IpOp::Ne(ip)) => ("ip", "!=", ip.to_string()),
            Self::Ip(IpOp::Like(pattern)) => ("ip", "~", pattern.as_str().to_owned()),
            Self::Result { op: Equality::Eq, outcome } => ("result", "=", outcome.as_str().to_owned()),
            Self::Result { op: Equality::Ne, outcome } => ("result", "!=", outcome.as_str().to_owned()),
            Self::Time { op, at } => ("timestamp", op.symbol(), crate::rfc3339::format(&at.to_timestamp())),
        };
        f.write_str(field)?;
        write!(f, " {op} \"")?;
        for c in value.chars() {
            if matches!(c, '"' | '\\') {
                f.write_str("\\")?;
            }
            write!(f, "{c}")?;
        }
        f.write_str("\"")
    }
}

/// A value or word as an error message shows it: quoted, escaped, and cut short.
fn quoted(text: &str) -> String {
    const SHOWN: usize = 40;
    match text.char_indices().nth(SHOWN) {
        Some((cut, _)) => format!("{:?}…", &text[..cut]),
        None => format!("{text:?}"),
    }
}

fn quoted_char(c: char) -> String {
    quoted(c.encode_utf8(&mut [0; 4]))
}
