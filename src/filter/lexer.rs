//! Tokens of the filter language, read one at a time as the parser asks, so that the
//! first error in reading order is the one reported.

use super::{FilterError, TimeOp};

/// A comparison operator as written: one of the ordering comparisons (which only
/// `timestamp` takes all of), or `~`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Op {
    Compare(TimeOp),
    Like,
}

impl Op {
    pub(super) const EQ: Self = Self::Compare(TimeOp::Eq);
    pub(super) const NE: Self = Self::Compare(TimeOp::Ne);

    pub(super) fn symbol(self) -> &'static str {
        match self {
            Self::Compare(op) => op.symbol(),
            Self::Like => "~",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Token<'a> {
    /// A bare word that is not a keyword: a field name, a value, or `-` and what follows it.
    Word(&'a str),
    /// A double-quoted string, escapes resolved.
    Quoted(String),
    And,
    Or,
    Not,
    Open,
    Close,
    Op(Op),
    End,
}

impl Token<'_> {
    /// How an error message names the token.
    pub(super) fn describe(&self) -> String {
        match self {
            Self::Word(word) => super::quoted(word),
            Self::Quoted(_) => "a quoted string".to_owned(),
            Self::And => "AND".to_owned(),
            Self::Or => "OR".to_owned(),
            Self::Not => "NOT".to_owned(),
            Self::Open => r#""(""#.to_owned(),
            Self::Close => r#"")""#.to_owned(),
            Self::Op(op) => format!(r#""{}""#, op.symbol()),
            Self::End => "the end of the filter".to_owned(),
        }
    }
}

/// A token and the byte offset where it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Lexed<'a> {
    pub token: Token<'a>,
    pub at: usize,
}

/// Letters, digits and `_ . - : @ /`, ASCII only: anything else must be quoted.
pub(super) fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | ':' | '@' | '/')
}

pub(super) struct Lexer<'a> {
    input: &'a str,
    /// Byte offset of the next unread character.
    pos: usize,
}

impl<'a> Lexer<'a> {
    pub(super) fn new(input: &'a str) -> Self {
        Self { input, pos: 0 }
    }

    fn fail(&self, at: usize, message: impl Into<String>) -> FilterError {
        FilterError::at_byte(self.input, at, message)
    }

    pub(super) fn next_token(&mut self) -> Result<Lexed<'a>, FilterError> {
        let rest = &self.input[self.pos..];
        let skipped = rest.len() - rest.trim_start().len();
        self.pos += skipped;
        let at = self.pos;
        let mut chars = self.input[at..].chars();
        let Some(c) = chars.next() else {
            return Ok(Lexed { token: Token::End, at });
        };
        let next = chars.next();
        let (token, len) = match (c, next) {
            ('(', _) => (Token::Open, 1),
            (')', _) => (Token::Close, 1),
            ('=', _) => (Token::Op(Op::EQ), 1),
            ('~', _) => (Token::Op(Op::Like), 1),
            ('!', Some('=')) => (Token::Op(Op::NE), 2),
            ('<', Some('=')) => (Token::Op(Op::Compare(TimeOp::Le)), 2),
            ('<', _) => (Token::Op(Op::Compare(TimeOp::Lt)), 1),
            ('>', Some('=')) => (Token::Op(Op::Compare(TimeOp::Ge)), 2),
            ('>', _) => (Token::Op(Op::Compare(TimeOp::Gt)), 1),
            ('"', _) => return self.quoted(at),
            (c, _) if is_word_char(c) => {
                let len = self.input[at..].find(|c| !is_word_char(c)).unwrap_or(self.input.len() - at);
                let word = &self.input[at..at + len];
                let token = match word {
                    "AND" => Token::And,
                    "OR" => Token::Or,
                    "NOT" => Token::Not,
                    _ => Token::Word(word),
                };
                (token, len)
            }
            ('!', _) => return Err(self.fail(at, r#"unexpected "!": the operator is "!=", and NOT negates"#)),
            ('\'', _) => return Err(self.fail(at, r#"unexpected "'": strings take double quotes"#)),
            ('+', _) => return Err(self.fail(at, r#"unexpected "+": quote a value that holds it"#)),
            ('*', _) => {
                return Err(self.fail(at, r#"unexpected "*": a pattern must be quoted, as in action ~ "session.*""#));
            }
            (c, _) if c.is_alphanumeric() => {
                let message = format!("unexpected {}: bare words are ASCII; quote the value", super::quoted_char(c));
                return Err(self.fail(at, message));
            }
            (c, _) => return Err(self.fail(at, format!("unexpected {}", super::quoted_char(c)))),
        };
        self.pos = at + len;
        Ok(Lexed { token, at })
    }

    /// A string opening at byte `open`: `\"` and `\\` are its only escapes.
    fn quoted(&mut self, open: usize) -> Result<Lexed<'a>, FilterError> {
        let mut text = String::new();
        let mut chars = self.input[open + 1..].char_indices().map(|(i, c)| (open + 1 + i, c));
        while let Some((at, c)) = chars.next() {
            match c {
                '"' => {
                    self.pos = at + 1;
                    return Ok(Lexed { token: Token::Quoted(text), at: open });
                }
                '\\' => match chars.next() {
                    Some((_, escaped @ ('"' | '\\'))) => text.push(escaped),
                    Some((_, other)) => {
                        let message = format!(
                            r#"unknown escape "\{}" in a string: only \" and \\ are escapes"#,
                            other.escape_debug()
                        );
                        return Err(self.fail(at, message));
                    }
                    None => break,
                },
                // No event holds a control character, and PostgreSQL text cannot hold NUL.
                c if c.is_control() => {
                    let message = format!("control character U+{:04X} in a string", u32::from(c));
                    return Err(self.fail(at, message));
                }
                c => text.push(c),
            }
        }
        Err(self.fail(open, "unterminated string: no closing double quote"))
    }
}
