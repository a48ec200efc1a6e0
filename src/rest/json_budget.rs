//! A first pass over a REST body, before it is converted into a protobuf message:
//! it walks the JSON beside the request's schema, in constant memory, and refuses
//! what would make the conversion costly — free-form JSON (`google.protobuf.Struct`,
//! `Value`, `ListValue`, such as an event's `details`) nested too deep or holding
//! too many values, any nesting past a hard depth, or more values than the body's
//! size warrants. The conversion that follows builds a tree whose size is bounded
//! by what this pass counted.

use std::borrow::Cow;
use std::fmt;

use prost_reflect::{FieldDescriptor, Kind, MessageDescriptor};
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use crate::error::Error;

/// Deepest nesting inside one free-form JSON field: objects and lists count alike,
/// the field's own object being level 1. The bound of an event's `details`.
pub const MAX_FREE_JSON_DEPTH: usize = crate::domain::MAX_DETAILS_DEPTH;
/// Most JSON values (scalars, objects and lists) inside one free-form JSON field.
pub const MAX_FREE_JSON_VALUES: usize = crate::domain::MAX_DETAILS_VALUES;
/// Deepest nesting anywhere in a body: the request's own messages never come close.
pub const MAX_BODY_DEPTH: usize = 64;
/// Every body may hold this many JSON values whatever its size...
const BASE_VALUES: usize = 1024;
/// ...plus one per this many bytes. Converted, a value costs a few hundred bytes of
/// memory at most, so this keeps a body's conversion within a small multiple of
/// its size; real requests carry well under one value per 8 bytes.
pub const BYTES_PER_VALUE: usize = 8;

/// Integers of this magnitude and past are not all exactly a double.
const EXACT_DOUBLE_LIMIT: u64 = 1 << f64::MANTISSA_DIGITS;

/// What the walk saw that the conversion must know.
#[derive(Debug, Default)]
pub struct Checked {
    /// Free-form JSON holds an integer of magnitude 2^53 or more. Proto3 JSON reads
    /// it as a double, as the reflective conversion does; the generated serde code
    /// of `google.protobuf.Value` refuses it.
    pub wide_free_integers: bool,
    /// JSON values in the body.
    pub values: usize,
}

impl Checked {
    /// Refuses a body that must take the reflective conversion (see
    /// `wide_free_integers`) with more values than that conversion's memory, about
    /// over twelve times the typed one's per value, allows for its size.
    pub fn reflective_budget(&self, len: usize) -> Result<(), Error> {
        let max = BASE_VALUES + len / REFLECTIVE_BYTES_PER_VALUE;
        if self.values <= max {
            return Ok(());
        }
        Err(Error::invalid(
            "body",
            format!(
                "holds integers of 2^53 or more in free-form JSON, which are costlier to convert: at most {max} JSON \
                 values for its {len} bytes"
            ),
        ))
    }
}

/// Bytes of body per value for the reflective conversion, which costs ~730 bytes a
/// value (more with strings) against the typed conversion's ~60: this keeps it
/// within the same multiple of the body size (`benches/memory.rs`).
const REFLECTIVE_BYTES_PER_VALUE: usize = BYTES_PER_VALUE * 24;

/// The values a body of `len` bytes may hold.
pub fn max_values(len: usize) -> usize {
    BASE_VALUES + len / BYTES_PER_VALUE
}

/// Checks `body`, the JSON of `message` (or, with `field`, of that field of it).
pub fn check(body: &[u8], message: &MessageDescriptor, field: Option<&FieldDescriptor>) -> Result<Checked, Error> {
    let mut walk = Walk {
        path: Vec::new(),
        depth: 0,
        values: 0,
        max_values: max_values(body.len()),
        outside: None,
        refusal: None,
        wide_free_integers: false,
    };
    let shape = match field {
        Some(field) => {
            walk.path.push(Step::Key(Cow::Owned(field.name().to_owned())));
            Shape::of_field(field)
        }
        None => Shape::Message(message.clone()),
    };
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let outcome = Node { shape, walk: &mut walk }.deserialize(&mut deserializer).and_then(|()| deserializer.end());
    match (walk.refusal, outcome) {
        (Some(refusal), _) => Err(refusal),
        (None, Ok(())) => Ok(Checked { wide_free_integers: walk.wide_free_integers, values: walk.values }),
        (None, Err(error)) => Err(Error::invalid("body", format!("is not valid JSON: {error}"))),
    }
}

/// What the schema expects at a point of the JSON.
#[derive(Clone)]
enum Shape {
    Message(MessageDescriptor),
    /// A repeated field or map: its elements have the inner shape.
    Elements(Box<Shape>),
    /// Free-form JSON: the budgets of one such field apply.
    Free,
    /// A scalar, a well-known type written as a string, or an unknown key (which
    /// the conversion refuses anyway): only the body-wide limits apply.
    Other,
}

impl Shape {
    fn of_field(field: &FieldDescriptor) -> Self {
        let single = match field.kind() {
            Kind::Message(inner) if field.is_map() => match inner.map_entry_value_field().kind() {
                Kind::Message(value) => Self::of_message(value),
                _ => Self::Other,
            },
            Kind::Message(inner) => Self::of_message(inner),
            _ => Self::Other,
        };
        if field.is_list() || field.is_map() { Self::Elements(Box::new(single)) } else { single }
    }

    fn of_message(message: MessageDescriptor) -> Self {
        match message.full_name() {
            "google.protobuf.Struct" | "google.protobuf.Value" | "google.protobuf.ListValue" => Self::Free,
            _ => Self::Message(message),
        }
    }
}

enum Step<'de> {
    Key(Cow<'de, str>),
    Index(usize),
}

/// Where the walk left the request's schema (into free-form JSON or an unknown
/// key): the path of that field, and the counts on entering it.
struct Outside {
    path: String,
    depth: usize,
    values: usize,
    free: bool,
}

struct Walk<'de> {
    path: Vec<Step<'de>>,
    depth: usize,
    values: usize,
    max_values: usize,
    outside: Option<Outside>,
    refusal: Option<Error>,
    wide_free_integers: bool,
}

impl Walk<'_> {
    /// The field a refusal names: the schema field where the walk is, or the one
    /// whose free-form content it is in.
    fn field(&self) -> String {
        match &self.outside {
            Some(outside) => outside.path.clone(),
            None => self.path(),
        }
    }

    fn path(&self) -> String {
        let mut out = String::new();
        for step in &self.path {
            match step {
                Step::Key(key) if out.is_empty() => out.push_str(&shorten(key)),
                Step::Key(key) => {
                    out.push('.');
                    out.push_str(&shorten(key));
                }
                Step::Index(index) => out.push_str(&format!("[{index}]")),
            }
        }
        if out.is_empty() { "body".to_owned() } else { out }
    }

    /// Counts one value, entering a container when `nested`; the refusal, if a
    /// limit is passed, is kept to be answered instead of the parse error.
    fn count(&mut self, nested: bool) -> Result<(), String> {
        self.values += 1;
        if nested {
            self.depth += 1;
        }
        let refusal = if self.values > self.max_values {
            Some(Error::invalid(
                "body",
                format!("holds more than {} JSON values for its {} bytes", self.max_values, self.max_values_bytes()),
            ))
        } else if self.depth > MAX_BODY_DEPTH {
            Some(Error::invalid(self.field(), format!("is nested deeper than {MAX_BODY_DEPTH} levels")))
        } else if let Some(free) = self.outside.as_ref().filter(|outside| outside.free) {
            if self.depth - free.depth > MAX_FREE_JSON_DEPTH {
                Some(Error::invalid(free.path.clone(), format!("is nested deeper than {MAX_FREE_JSON_DEPTH} levels")))
            } else if self.values - free.values > MAX_FREE_JSON_VALUES {
                Some(Error::invalid(free.path.clone(), format!("holds more than {MAX_FREE_JSON_VALUES} JSON values")))
            } else {
                None
            }
        } else {
            None
        };
        match refusal {
            Some(error) => {
                let message = error.to_string();
                self.refusal = Some(error);
                Err(message)
            }
            None => Ok(()),
        }
    }

    fn max_values_bytes(&self) -> usize {
        (self.max_values - BASE_VALUES) * BYTES_PER_VALUE
    }
}

fn shorten(key: &str) -> Cow<'_, str> {
    const MAX_KEY_CHARS: usize = 64;
    match key.char_indices().nth(MAX_KEY_CHARS) {
        Some((end, _)) => Cow::Owned(format!("{}…", &key[..end])),
        None => Cow::Borrowed(key),
    }
}

struct Node<'w, 'de> {
    shape: Shape,
    walk: &'w mut Walk<'de>,
}

impl<'de> DeserializeSeed<'de> for Node<'_, 'de> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl Node<'_, '_> {
    fn scalar<E: de::Error>(self) -> Result<(), E> {
        self.walk.count(false).map_err(E::custom)
    }

    fn integer<E: de::Error>(self, magnitude: u64) -> Result<(), E> {
        if matches!(self.shape, Shape::Free) && magnitude >= EXACT_DOUBLE_LIMIT {
            self.walk.wide_free_integers = true;
        }
        self.scalar()
    }

    /// Notes where the walk leaves the schema, at the container that does.
    fn enter(&mut self) -> bool {
        let free = match self.shape {
            Shape::Free => true,
            Shape::Other => false,
            Shape::Message(_) | Shape::Elements(_) => return false,
        };
        if self.walk.outside.is_some() {
            return false;
        }
        let path = self.walk.path();
        self.walk.outside = Some(Outside { path, depth: self.walk.depth, values: self.walk.values, free });
        true
    }
}

impl<'de> Visitor<'de> for Node<'_, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        self.scalar()
    }
    fn visit_i64<E: de::Error>(self, value: i64) -> Result<(), E> {
        self.integer(value.unsigned_abs())
    }
    fn visit_u64<E: de::Error>(self, value: u64) -> Result<(), E> {
        self.integer(value)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        self.scalar()
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        self.scalar()
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.scalar()
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
        let entered = self.enter();
        self.walk.count(true).map_err(de::Error::custom)?;
        // Every element is visited, never skipped wholesale: a skipped subtree
        // would escape the counts.
        let element = match std::mem::replace(&mut self.shape, Shape::Other) {
            Shape::Elements(inner) => *inner,
            Shape::Free => Shape::Free,
            Shape::Message(_) | Shape::Other => Shape::Other,
        };
        let mut index = 0;
        loop {
            self.walk.path.push(Step::Index(index));
            let next = seq.next_element_seed(Node { shape: element.clone(), walk: self.walk })?;
            self.walk.path.pop();
            if next.is_none() {
                break;
            }
            index += 1;
        }
        self.leave(entered);
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<(), A::Error> {
        let entered = self.enter();
        self.walk.count(true).map_err(de::Error::custom)?;
        while let Some(key) = map.next_key_seed(KeySeed)? {
            let child = match &self.shape {
                Shape::Message(message) => {
                    match message.get_field_by_json_name(&key).or_else(|| message.get_field_by_name(&key)) {
                        Some(field) => Shape::of_field(&field),
                        None => Shape::Other,
                    }
                }
                Shape::Elements(inner) => (**inner).clone(),
                Shape::Free => Shape::Free,
                Shape::Other => Shape::Other,
            };
            self.walk.path.push(Step::Key(key));
            map.next_value_seed(Node { shape: child, walk: self.walk })?;
            self.walk.path.pop();
        }
        self.leave(entered);
        Ok(())
    }
}

impl Node<'_, '_> {
    fn leave(self, entered: bool) {
        self.walk.depth -= 1;
        if entered {
            self.walk.outside = None;
        }
    }
}

/// Reads an object key, borrowed from the body when it has no escapes.
struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Cow<'de, str>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Cow<'de, str>, D::Error> {
        deserializer.deserialize_str(KeySeed)
    }
}

impl<'de> Visitor<'de> for KeySeed {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_borrowed_str<E: de::Error>(self, key: &'de str) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Borrowed(key))
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Owned(key.to_owned()))
    }
}

#[cfg(test)]
mod tests;
