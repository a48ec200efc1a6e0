//! The one collector of a request's invalid fields, and the one rule that turns them
//! into INVALID_ARGUMENT: every violation listed, the first named in the message.

use super::{Error, FieldViolation};

/// The invalid fields of a request, in the order they were found, which is the order
/// the answer lists them in.
#[derive(Debug, Default)]
pub struct Violations(Vec<FieldViolation>);

impl Violations {
    pub fn push(&mut self, field: impl Into<String>, description: impl Into<String>) {
        self.0.push(FieldViolation::new(field, description));
    }

    /// The value `parsed` holds, or `None` with its error noted against `field`.
    pub fn check<T>(&mut self, field: &str, parsed: Result<T, String>) -> Option<T> {
        parsed.map_err(|description| self.push(field, description)).ok()
    }

    /// Notes the violations of a part of the request under its path: `events[3]`
    /// and `id` become `events[3].id`.
    pub fn nest(&mut self, prefix: &str, part: Violations) {
        let nested = part.0.into_iter().map(|v| FieldViolation::new(format!("{prefix}.{}", v.field), v.description));
        self.0.extend(nested);
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The answer to a request with these violations: the message names the first.
    pub fn into_error(self) -> Error {
        let message = self.0.first().map(ToString::to_string).unwrap_or_default();
        Error::InvalidArgument { message, violations: self.0 }
    }

    /// The answer to a request refused whole for these violations: the message opens
    /// with `refusal`, names the first and counts the others, and at most
    /// `max_listed` are listed, since past a few the client has a systematic bug.
    pub fn into_refusal(mut self, refusal: &str, max_listed: usize) -> Error {
        let more = match self.0.len() {
            0 | 1 => String::new(),
            total => format!(" (and {} more)", total - 1),
        };
        let first = self.0.first().map(ToString::to_string).unwrap_or_default();
        self.0.truncate(max_listed);
        Error::InvalidArgument { message: format!("{refusal}: {first}{more}"), violations: self.0 }
    }
}
