//! Structure-aware REST bodies, shared by the `json_body` fuzz target and its stable
//! property test: JSON shaped after a request message (its field names, nested
//! messages and lists), with free-form JSON as deep and as wide as the schema lets
//! a client send it, and the faults a client can add: unknown and duplicate keys,
//! values of the wrong type, huge strings and numbers out of every range.

use arbitrary::{Arbitrary, Result, Unstructured};
use prost_reflect::{FieldDescriptor, Kind, MessageDescriptor};

/// Deepest free-form JSON generated: past every limit of the body budget and past
/// serde_json's own recursion limit (128).
const MAX_DEPTH: usize = 200;
/// Longest list generated, built by repeating one element.
const MAX_WIDTH: usize = 40_000;
/// A body stops growing near this size, so that one case stays cheap.
const MAX_BYTES: usize = 512 * 1024;
/// Nesting of the request's own messages, should a future message be recursive.
const MAX_MESSAGE_DEPTH: usize = 6;

/// One generated request body.
pub struct Body {
    /// Index of the method whose input message it was shaped after.
    pub method: usize,
    pub bytes: Vec<u8>,
    /// Every key is a field and every value fits its field's type: the conversion
    /// must accept it unless it is over a budget limit.
    pub clean: bool,
}

#[derive(Clone)]
enum Json {
    Null,
    Bool(bool),
    /// The number as written, in or out of any range.
    Number(String),
    Str(String),
    List(Vec<Json>),
    Object(Vec<(String, Json)>),
    /// A list of `count` copies of one element: wide for a few input bytes.
    Repeat(Box<Json>, usize),
    /// `levels` containers, each holding the next, around a leaf: deep for a few bytes.
    Nest {
        levels: usize,
        wrap: Wrap,
        leaf: Box<Json>,
    },
}

#[derive(Arbitrary, Clone, Copy)]
enum Wrap {
    Lists,
    Objects,
    Alternating,
}

/// What a fault does to an object of the schema.
#[derive(Arbitrary)]
enum Fault {
    UnknownKey,
    DuplicateKey,
    WrongType,
}

#[derive(Arbitrary)]
enum Text {
    Sample(u8),
    Any(String),
    Huge { unit: char, len: u32 },
    Escaped,
}

/// Strings the service's fields take: valid names, outcomes, times and addresses.
const SAMPLES: &[&str] = &[
    "",
    "user.login",
    "session.logout",
    "org-1",
    "success",
    "failure",
    "user",
    "u-42",
    "2026-01-05T00:00:00Z",
    "10.0.0.1",
    "::1",
    "Mozilla/5.0",
    "1",
];

/// Valid values of the service's string fields, by field name, so that some
/// bodies also pass the domain's validation.
const FIELD_SAMPLES: &[(&str, &[&str])] = &[
    ("organization_id", &["org-1", "acme"]),
    ("action", &["user.login", "session.logout", "org.member_added"]),
    ("result", &["success", "failure"]),
    ("ip", &["10.0.0.1", "::1", ""]),
    ("type", &["user", "service"]),
];

/// Numbers at and past the edges of what JSON, f64 and the integer types hold.
const EDGE_NUMBERS: &[&str] = &[
    "1e400",
    "-1e400",
    "-0",
    "-0.0",
    "0.5",
    "1e2",
    "1E-400",
    "2147483648",
    "-2147483649",
    "4294967296",
    "9223372036854775808",
    "-9223372036854775809",
    "18446744073709551616",
    "123456789012345678901234567890",
    "-1",
];

/// A body for one of `inputs`, chosen by the first input bytes.
pub fn generate(u: &mut Unstructured<'_>, inputs: &[MessageDescriptor]) -> Result<Body> {
    let method = u.choose_index(inputs.len())?;
    let mut generator = Generator { u, room: MAX_BYTES, clean: true };
    let json = if generator.fault()? {
        generator.clean = false;
        generator.wrong_type(0)?
    } else {
        generator.message(&inputs[method], 0)?
    };
    let mut bytes = Vec::new();
    write(&json, &mut bytes);
    Ok(Body { method, bytes, clean: generator.clean })
}

struct Generator<'a, 'b> {
    u: &'a mut Unstructured<'b>,
    /// Bytes the body may still grow by.
    room: usize,
    clean: bool,
}

impl Generator<'_, '_> {
    /// Faults are rare, so that most bodies reach the conversion intact.
    fn fault(&mut self) -> Result<bool> {
        self.one_in(10)
    }

    /// True about once in `n`, and never once the input bytes are used up (where
    /// `Unstructured::ratio` would answer true forever).
    fn one_in(&mut self, n: u32) -> Result<bool> {
        Ok(!self.u.ratio(n - 1, n)?)
    }

    fn message(&mut self, message: &MessageDescriptor, depth: usize) -> Result<Json> {
        let mut entries = Vec::new();
        let mut oneofs = Vec::new();
        if depth < MAX_MESSAGE_DEPTH {
            for field in message.fields() {
                if !self.one_in(4)? {
                    if let Some(oneof) = field.containing_oneof() {
                        // Two members of one oneof are refused.
                        if oneofs.contains(&oneof) {
                            self.clean = false;
                        }
                        oneofs.push(oneof);
                    }
                    let key = if self.u.arbitrary()? { field.json_name() } else { field.name() };
                    entries.push((key.to_owned(), self.field(&field, depth)?));
                }
            }
        }
        while self.fault()? {
            self.clean = false;
            match Fault::arbitrary(self.u)? {
                Fault::UnknownKey => {
                    let key = String::arbitrary(self.u)?;
                    entries.push((key, self.free(0)?));
                }
                Fault::DuplicateKey if !entries.is_empty() => {
                    let entry = entries[self.u.choose_index(entries.len())?].clone();
                    entries.push(entry);
                }
                Fault::WrongType if !entries.is_empty() => {
                    let at = self.u.choose_index(entries.len())?;
                    entries[at].1 = self.wrong_type(depth)?;
                }
                Fault::DuplicateKey | Fault::WrongType => {}
            }
        }
        Ok(Json::Object(entries))
    }

    fn field(&mut self, field: &FieldDescriptor, depth: usize) -> Result<Json> {
        if field.is_map() {
            let Kind::Message(entry) = field.kind() else { unreachable!("a map field is a message of entries") };
            let value = entry.map_entry_value_field();
            if entry.map_entry_key_field().kind() != Kind::String {
                // Its keys are written as text, which an integer or bool key refuses.
                self.clean = false;
            }
            let mut entries = Vec::new();
            for _ in 0..self.u.int_in_range(0..=3)? {
                let key = self.text()?;
                entries.push((key, self.single(&value, depth)?));
            }
            return Ok(Json::Object(entries));
        }
        if !field.is_list() {
            return self.single(field, depth);
        }
        if self.one_in(4)? {
            let element = self.single(field, depth)?;
            return self.repeat(element);
        }
        let mut elements = Vec::new();
        for _ in 0..self.u.int_in_range(0..=3)? {
            elements.push(self.single(field, depth)?);
        }
        Ok(Json::List(elements))
    }

    /// One value of `field`'s type (an element, for a list or map).
    fn single(&mut self, field: &FieldDescriptor, depth: usize) -> Result<Json> {
        let kind = if field.is_map() {
            match field.kind() {
                Kind::Message(entry) => entry.map_entry_value_field().kind(),
                kind => kind,
            }
        } else {
            field.kind()
        };
        Ok(match kind {
            Kind::Message(message) => match message.full_name() {
                "google.protobuf.Struct" => Json::Object(self.free_entries(1)?),
                "google.protobuf.ListValue" => Json::List(self.free_elements(1)?),
                "google.protobuf.Value" => self.free(0)?,
                "google.protobuf.Timestamp" => Json::Str(self.timestamp()?),
                name if name.starts_with("google.protobuf.") => {
                    // No other well-known type is used by the service yet; null is
                    // a valid value of every message field.
                    Json::Null
                }
                _ => self.message(&message, depth + 1)?,
            },
            Kind::String => {
                let samples = FIELD_SAMPLES.iter().find(|(name, _)| *name == field.name());
                match samples {
                    Some((_, samples)) if self.u.arbitrary()? => Json::Str(self.u.choose(samples)?.to_string()),
                    _ => Json::Str(self.text()?),
                }
            }
            Kind::Bool => Json::Bool(self.u.arbitrary()?),
            Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => {
                let text = i32::arbitrary(self.u)?.to_string();
                self.integer(text)?
            }
            Kind::Uint32 | Kind::Fixed32 => {
                let text = u32::arbitrary(self.u)?.to_string();
                self.integer(text)?
            }
            Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => {
                let text = i64::arbitrary(self.u)?.to_string();
                self.integer(text)?
            }
            Kind::Uint64 | Kind::Fixed64 => {
                let text = u64::arbitrary(self.u)?.to_string();
                self.integer(text)?
            }
            Kind::Double => Json::Number(finite(self.u)?),
            Kind::Float => {
                let text = finite(self.u)?;
                if text.parse::<f64>().is_ok_and(|value| value.abs() > f64::from(f32::MAX)) {
                    self.clean = false;
                }
                Json::Number(text)
            }
            Kind::Bytes => Json::Str(self.u.choose(&["", "AA==", "aGVsbG8="])?.to_string()),
            Kind::Enum(values) => {
                let value = values.values().nth(self.u.choose_index(values.values().len().max(1))?);
                match value {
                    Some(value) if self.u.arbitrary()? => Json::Str(value.name().to_owned()),
                    Some(value) => Json::Number(value.number().to_string()),
                    None => Json::Number("0".to_owned()),
                }
            }
        })
    }

    /// An integer in its type's range, as a number or (as proto3 JSON allows) a string.
    fn integer(&mut self, text: String) -> Result<Json> {
        Ok(if self.u.arbitrary()? { Json::Str(text) } else { Json::Number(text) })
    }

    /// A value the schema does not expect where it is put.
    fn wrong_type(&mut self, depth: usize) -> Result<Json> {
        Ok(match self.u.int_in_range(0..=5)? {
            0 => Json::Number(self.u.choose(EDGE_NUMBERS)?.to_string()),
            1 => Json::Str(self.u.choose(EDGE_NUMBERS)?.to_string()),
            2 => Json::Bool(self.u.arbitrary()?),
            3 => Json::Str(self.text()?),
            4 if depth < MAX_MESSAGE_DEPTH => Json::List(vec![self.wrong_type(depth + 1)?]),
            _ => self.free(0)?,
        })
    }

    /// Free-form JSON at `level` levels below where it started.
    fn free(&mut self, level: usize) -> Result<Json> {
        if level >= MAX_DEPTH || self.room == 0 {
            return self.scalar();
        }
        Ok(match self.u.int_in_range(0..=9)? {
            0..=3 => self.scalar()?,
            4 | 5 => Json::Object(self.free_entries(level + 1)?),
            6 | 7 => Json::List(self.free_elements(level + 1)?),
            8 => {
                let element = self.free(level + 1)?;
                self.repeat(element)?
            }
            _ => {
                let levels = self.depth(MAX_DEPTH - level)?;
                let wrap = Wrap::arbitrary(self.u)?;
                let leaf = Box::new(self.scalar()?);
                self.charge(levels * 8);
                Json::Nest { levels, wrap, leaf }
            }
        })
    }

    fn free_entries(&mut self, level: usize) -> Result<Vec<(String, Json)>> {
        let mut entries = Vec::new();
        for _ in 0..self.u.int_in_range(0..=4)? {
            let key = if self.one_in(8)? {
                // The same key twice in one object: free-form JSON keeps the last.
                entries.last().map(|(key, _): &(String, Json)| key.clone()).unwrap_or_default()
            } else {
                self.text()?
            };
            entries.push((key, self.free(level)?));
        }
        Ok(entries)
    }

    fn free_elements(&mut self, level: usize) -> Result<Vec<Json>> {
        let mut elements = Vec::new();
        for _ in 0..self.u.int_in_range(0..=4)? {
            elements.push(self.free(level)?);
        }
        Ok(elements)
    }

    fn scalar(&mut self) -> Result<Json> {
        Ok(match self.u.int_in_range(0..=5)? {
            0 => Json::Null,
            1 => Json::Bool(self.u.arbitrary()?),
            2 => Json::Number(finite(self.u)?),
            3 => {
                // Out of f64's range: refused as JSON; the others are numbers.
                let edge = self.u.choose(EDGE_NUMBERS)?;
                if edge.contains("e400") || edge.contains("E-400") {
                    self.clean = false;
                }
                Json::Number(edge.to_string())
            }
            _ => Json::Str(self.text()?),
        })
    }

    /// A nesting depth: often at a budget limit (free-form 32, body 64, the
    /// parser's 128) give or take a level or two, otherwise anywhere up to `most`.
    fn depth(&mut self, most: usize) -> Result<usize> {
        let depth = if self.u.arbitrary()? {
            let limit = *self.u.choose(&[32, 64, 128])?;
            limit - 3 + self.u.int_in_range(0..=6)?
        } else {
            self.u.int_in_range(1..=most)?
        };
        Ok(depth.clamp(1, most))
    }

    /// A list of copies of `element`: often near the free-form limit of 4096
    /// values, otherwise any width up to what the body has room for.
    fn repeat(&mut self, element: Json) -> Result<Json> {
        let count = if self.u.arbitrary()? {
            4090 + self.u.int_in_range(0..=10)?
        } else {
            self.u.int_in_range(0..=MAX_WIDTH)?
        };
        let each = size(&element) + 1;
        let count = count.min(self.room / each);
        self.charge(count * each);
        Ok(Json::Repeat(Box::new(element), count))
    }

    fn charge(&mut self, bytes: usize) {
        self.room = self.room.saturating_sub(bytes);
    }

    fn text(&mut self) -> Result<String> {
        let text = match Text::arbitrary(self.u)? {
            Text::Sample(at) => SAMPLES[usize::from(at) % SAMPLES.len()].to_owned(),
            Text::Any(text) => text,
            Text::Huge { unit, len } => {
                let len = (len as usize % (256 * 1024)).min(self.room / unit.len_utf8());
                unit.to_string().repeat(len)
            }
            Text::Escaped => "\"\\/\u{0}\u{1f}\u{2028}\u{fffd}\u{10ffff}".to_owned(),
        };
        self.charge(text.len());
        Ok(text)
    }

    /// RFC 3339 times the conversion takes, and now and then one it must refuse.
    fn timestamp(&mut self) -> Result<String> {
        if self.fault()? {
            self.clean = false;
            return Ok(self.u.choose(&["", "yesterday", "2026-02-30T00:00:00Z", "10000-01-01T00:00:00Z"])?.to_string());
        }
        // Mostly in the range the service stores (1970 to 2200), sometimes anywhere
        // protobuf's range allows.
        let year = if self.one_in(4)? { self.u.int_in_range(1..=9999)? } else { self.u.int_in_range(1970..=2199)? };
        let (month, day) = (self.u.int_in_range(1..=12)?, self.u.int_in_range(1..=28)?);
        let (hour, minute, second) =
            (self.u.int_in_range(0..=23)?, self.u.int_in_range(0..=59)?, self.u.int_in_range(0..=59)?);
        let fraction = match self.u.int_in_range(0..=3)? {
            0 => String::new(),
            digits => format!(".{:0width$}", self.u.int_in_range(0..=999u32)?, width = digits * 3),
        };
        Ok(format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}{fraction}Z"))
    }
}

/// A finite f64 written as JSON.
fn finite(u: &mut Unstructured<'_>) -> Result<String> {
    let value = f64::arbitrary(u)?;
    Ok(if value.is_finite() { serde_json::to_string(&value).unwrap_or_else(|_| "0".into()) } else { "0".into() })
}

/// Bytes `json` takes written, roughly.
fn size(json: &Json) -> usize {
    match json {
        Json::Null | Json::Bool(_) => 5,
        Json::Number(text) | Json::Str(text) => text.len() + 2,
        Json::List(elements) => 2 + elements.iter().map(|e| size(e) + 1).sum::<usize>(),
        Json::Object(entries) => 2 + entries.iter().map(|(k, v)| k.len() + 4 + size(v)).sum::<usize>(),
        Json::Repeat(element, count) => 2 + count * (size(element) + 1),
        Json::Nest { levels, leaf, .. } => levels * 8 + size(leaf),
    }
}

fn write(json: &Json, out: &mut Vec<u8>) {
    let string = |text: &str, out: &mut Vec<u8>| {
        serde_json::to_writer(&mut *out, text).expect("a string is always written");
    };
    match json {
        Json::Null => out.extend_from_slice(b"null"),
        Json::Bool(value) => out.extend_from_slice(if *value { b"true" } else { b"false" }),
        Json::Number(text) => out.extend_from_slice(text.as_bytes()),
        Json::Str(text) => string(text, out),
        Json::List(elements) => {
            out.push(b'[');
            for (at, element) in elements.iter().enumerate() {
                if at > 0 {
                    out.push(b',');
                }
                write(element, out);
            }
            out.push(b']');
        }
        Json::Object(entries) => {
            out.push(b'{');
            for (at, (key, value)) in entries.iter().enumerate() {
                if at > 0 {
                    out.push(b',');
                }
                string(key, out);
                out.push(b':');
                write(value, out);
            }
            out.push(b'}');
        }
        Json::Repeat(element, count) => {
            let mut one = Vec::new();
            write(element, &mut one);
            out.push(b'[');
            for at in 0..*count {
                if at > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(&one);
            }
            out.push(b']');
        }
        Json::Nest { levels, wrap, leaf } => {
            let object = |level: usize| match wrap {
                Wrap::Lists => false,
                Wrap::Objects => true,
                Wrap::Alternating => level.is_multiple_of(2),
            };
            for level in 0..*levels {
                out.extend_from_slice(if object(level) { b"{\"n\":" } else { b"[" });
            }
            write(leaf, out);
            for level in (0..*levels).rev() {
                out.push(if object(level) { b'}' } else { b']' });
            }
        }
    }
}
