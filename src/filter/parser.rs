//! Recursive descent over the grammar in the module docs of `filter`, building the typed
//! tree; every refusal names the position where reading stopped.

use std::net::IpAddr;

use super::lexer::{Lexed, Lexer, Op, Token};
use super::{Comparison, Equality, Expr, FilterError, IpOp, Limits, Pattern, TextField, TextOp, TimeOp};
use crate::domain::{Outcome, UnixNanos};
use crate::rfc3339;

/// What a field name stands for, before its operator and value are known.
#[derive(Debug, Clone, Copy)]
enum Field {
    Text(TextField),
    Result,
    Ip,
    Timestamp,
}

/// The fields in the contract's order, which error messages list.
const FIELDS: [(&str, Field); 10] = [
    ("id", Field::Text(TextField::Id)),
    ("action", Field::Text(TextField::Action)),
    ("result", Field::Result),
    ("actor.type", Field::Text(TextField::ActorType)),
    ("actor.id", Field::Text(TextField::ActorId)),
    ("target.type", Field::Text(TextField::TargetType)),
    ("target.id", Field::Text(TextField::TargetId)),
    ("ip", Field::Ip),
    ("user_agent", Field::Text(TextField::UserAgent)),
    ("timestamp", Field::Timestamp),
];

pub(super) fn parse(input: &str, limits: &Limits) -> Result<Expr, FilterError> {
    let mut lexer = Lexer::new(input);
    let current = lexer.next_token()?;
    let mut parser = Parser { input, lexer, current, comparisons: 0, depth: 0, limits: *limits };
    let expr = parser.expression()?;
    match &parser.current.token {
        Token::End => Ok(expr),
        Token::Close => Err(parser.fail(r#"")" without a matching "(""#)),
        token => {
            let message = format!("expected AND, OR or the end of the filter, found {}", token.describe());
            Err(parser.fail(message + &keyword_hint(token)))
        }
    }
}

struct Parser<'a> {
    input: &'a str,
    lexer: Lexer<'a>,
    /// The one token of lookahead.
    current: Lexed<'a>,
    comparisons: usize,
    /// Parentheses open around the current token.
    depth: usize,
    limits: Limits,
}

impl<'a> Parser<'a> {
    /// An error at the current token.
    fn fail(&self, message: impl Into<String>) -> FilterError {
        FilterError::at_byte(self.input, self.current.at, message)
    }

    /// Moves past the current token, returning it.
    fn advance(&mut self) -> Result<Lexed<'a>, FilterError> {
        let next = self.lexer.next_token()?;
        Ok(std::mem::replace(&mut self.current, next))
    }

    /// `expression := factor {AND factor}`: AND binds loosest.
    fn expression(&mut self) -> Result<Expr, FilterError> {
        let mut factors = vec![self.factor()?];
        while self.current.token == Token::And {
            self.advance()?;
            factors.push(self.factor()?);
        }
        Ok(if factors.len() == 1 { factors.remove(0) } else { Expr::And(factors) })
    }

    /// `factor := term {OR term}`: as AIP-160 has it, OR binds tighter than AND.
    fn factor(&mut self) -> Result<Expr, FilterError> {
        let mut terms = vec![self.term()?];
        while self.current.token == Token::Or {
            self.advance()?;
            terms.push(self.term()?);
        }
        Ok(if terms.len() == 1 { terms.remove(0) } else { Expr::Or(terms) })
    }

    /// `term := [NOT | "-"] simple`. A `-` is lexed as the start of a word, since
    /// words may hold `-`; here it is split off as the negation.
    fn term(&mut self) -> Result<Expr, FilterError> {
        let negated = match self.current.token {
            Token::Not => {
                self.advance()?;
                true
            }
            Token::Word("-") => {
                self.advance()?;
                true
            }
            Token::Word(word) if word.starts_with('-') => {
                let token = match &word[1..] {
                    "NOT" => Token::Not,
                    "AND" => Token::And,
                    "OR" => Token::Or,
                    rest => Token::Word(rest),
                };
                self.current = Lexed { token, at: self.current.at + 1 };
                true
            }
            _ => false,
        };
        let negated_twice = match self.current.token {
            Token::Not => true,
            Token::Word(word) => word.starts_with('-'),
            _ => false,
        };
        if negated && negated_twice {
            return Err(self.fail("one NOT or - per comparison; negate again with parentheses, as in NOT (NOT x = 1)"));
        }
        let simple = self.simple()?;
        Ok(if negated { Expr::Not(Box::new(simple)) } else { simple })
    }

    /// `simple := "(" expression ")" | comparison`.
    fn simple(&mut self) -> Result<Expr, FilterError> {
        match &self.current.token {
            Token::Open => {
                if self.depth == self.limits.max_depth {
                    let max = self.limits.max_depth;
                    return Err(self.fail(format!("parentheses nest more than {max} deep")));
                }
                let open = self.advance()?.at;
                self.depth += 1;
                let expr = self.expression()?;
                if self.current.token != Token::Close {
                    let open = FilterError::at_byte(self.input, open, "").position;
                    let found = self.current.token.describe();
                    let hint = keyword_hint(&self.current.token);
                    return Err(
                        self.fail(format!(r#"expected ")" to close the "(" at position {open}, found {found}{hint}"#))
                    );
                }
                self.advance()?;
                self.depth -= 1;
                Ok(expr)
            }
            &Token::Word(name) => self.comparison(name).map(Expr::Compare),
            Token::Quoted(_) => {
                Err(self.fail("expected a field name, found a quoted string; field names take no quotes"))
            }
            token => Err(self.fail(format!("expected a comparison, found {}", token.describe()))),
        }
    }

    /// `comparison := field operator value`, `name` being the current token.
    fn comparison(&mut self, name: &'a str) -> Result<Comparison, FilterError> {
        let Some(&(_, field)) = FIELDS.iter().find(|(known, _)| *known == name) else {
            let names = FIELDS.map(|(known, _)| known).join(", ");
            let hint = keyword_hint(&self.current.token);
            return Err(self.fail(format!("unknown field {}{hint}; fields are {names}", super::quoted(name))));
        };
        if self.comparisons == self.limits.max_comparisons {
            return Err(self.fail(format!("more than {} comparisons", self.limits.max_comparisons)));
        }
        self.comparisons += 1;
        self.advance()?;
        let Token::Op(op) = self.current.token else {
            let found = self.current.token.describe();
            return Err(self.fail(format!("expected an operator (=, !=, <, <=, >, >=, ~) after {name}, found {found}")));
        };
        let op_at = self.advance()?.at;
        let value = match &self.current.token {
            Token::Word(word) => (*word).to_owned(),
            Token::Quoted(text) => text.clone(),
            token => {
                let found = token.describe();
                return Err(self.fail(format!(r#"expected a value after "{}", found {found}"#, op.symbol())));
            }
        };
        let misused = |takes: &str| {
            let message = format!(r#"{name} takes {takes}, not "{}""#, op.symbol());
            FilterError::at_byte(self.input, op_at, message)
        };
        let comparison = match (field, op) {
            (Field::Text(field), Op::EQ) => Comparison::Text { field, op: TextOp::Eq(value) },
            (Field::Text(field), Op::NE) => Comparison::Text { field, op: TextOp::Ne(value) },
            (Field::Text(field), Op::Like) => Comparison::Text { field, op: TextOp::Like(Pattern::new(value)) },
            (Field::Ip, Op::Like) => Comparison::Ip(IpOp::Like(Pattern::new(value))),
            (Field::Ip, Op::EQ | Op::NE) => {
                let Ok(ip) = value.parse::<IpAddr>() else {
                    let message = format!("ip must be an IPv4 or IPv6 address, not {}", super::quoted(&value));
                    return Err(self.fail(message + r#" (~ takes a pattern, as in ip ~ "198.51.100.*")"#));
                };
                Comparison::Ip(if op == Op::EQ { IpOp::Eq(ip) } else { IpOp::Ne(ip) })
            }
            (Field::Text(_) | Field::Ip, _) => return Err(misused("=, != or ~")),
            (Field::Result, Op::EQ | Op::NE) => {
                let Ok(outcome) = Outcome::parse(&value) else {
                    return Err(self.fail(format!("result is success or failure, not {}", super::quoted(&value))));
                };
                Comparison::Result { op: if op == Op::EQ { Equality::Eq } else { Equality::Ne }, outcome }
            }
            (Field::Result, _) => return Err(misused("= or !=")),
            (Field::Timestamp, Op::Like) => return Err(misused("=, !=, <, <=, > or >=")),
            (Field::Timestamp, Op::Compare(op)) => {
                let instant = rfc3339::parse(&value).map_err(|e| {
                    // `+` ends a bare word, so an offset like +02:00 needs quotes.
                    let after = &self.input[self.current.at..];
                    let hint = match self.current.token {
                        Token::Word(word) if after[word.len()..].starts_with('+') => {
                            " (quote a time with a + offset, as in \"2026-04-17T00:00:00+02:00\")"
                        }
                        _ => "",
                    };
                    self.fail(format!("timestamp {} is not an RFC 3339 time: {e}{hint}", super::quoted(&value)))
                })?;
                let nanos = i128::from(instant.seconds) * 1_000_000_000 + i128::from(instant.nanos);
                time_comparison(op, nanos)
            }
        };
        self.advance()?;
        Ok(comparison)
    }
}

/// `timestamp op nanos` over the instants an event can have. RFC 3339 reaches years
/// 1-9999, past the nanosecond range of [`UnixNanos`] (1677-2262); such a bound is
/// either below or above every event, so the comparison is constantly true or false,
/// written as `>= i64::MIN` or `< i64::MIN`. Exact, unlike clamping the instant.
fn time_comparison(op: TimeOp, nanos: i128) -> Comparison {
    if let Ok(at) = i64::try_from(nanos) {
        return Comparison::Time { op, at: UnixNanos::from_nanos(at) };
    }
    let below_all = nanos < 0;
    let always = match op {
        TimeOp::Eq => false,
        TimeOp::Ne => true,
        TimeOp::Lt | TimeOp::Le => !below_all,
        TimeOp::Gt | TimeOp::Ge => below_all,
    };
    let op = if always { TimeOp::Ge } else { TimeOp::Lt };
    Comparison::Time { op, at: UnixNanos::from_nanos(i64::MIN) }
}

/// For a word that would be a keyword in uppercase.
fn keyword_hint(token: &Token) -> String {
    match token {
        Token::Word(word) if ["AND", "OR", "NOT"].iter().any(|k| word.eq_ignore_ascii_case(k)) => {
            format!(" (keywords are uppercase: {})", word.to_ascii_uppercase())
        }
        _ => String::new(),
    }
}
