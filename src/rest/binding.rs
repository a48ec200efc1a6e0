//! Binding of path variables and query parameters to request fields, by the
//! request message's descriptor: `a.b` paths, snake_case or lowerCamelCase
//! names, repeated keys for repeated fields, well-known types in their JSON forms.

use std::collections::HashSet;

use base64::Engine;
use prost_reflect::{DynamicMessage, FieldDescriptor, Kind, MessageDescriptor, ReflectMessage, Value};

use crate::error::Error;
use crate::rfc3339;

/// Fields that a query string cannot reach: bound by the body or the path.
pub struct Bound<'a> {
    pub whole_body: bool,
    pub fields: &'a HashSet<String>,
}

/// Applies a raw query string. Unknown names, values given twice for a singular
/// field, and malformed values are refused with the field named.
pub fn bind_query(message: &mut DynamicMessage, query: &str, bound: &Bound<'_>) -> Result<(), Error> {
    let mut seen = HashSet::new();
    for pair in query.split('&').filter(|pair| !pair.is_empty()) {
        let (raw_key, raw_value) = pair.split_once('=').unwrap_or((pair, ""));
        let key =
            form_decode(raw_key).ok_or_else(|| Error::invalid("query", "is not valid UTF-8 after percent-decoding"))?;
        let value =
            form_decode(raw_value).ok_or_else(|| Error::invalid(&key, "is not valid UTF-8 after percent-decoding"))?;
        let Some((path, field)) = resolve(message.descriptor(), &key) else {
            return Err(Error::invalid(&key, "is not a known query parameter"));
        };
        let taken = |b: &String| path == *b || path.strip_prefix(b.as_str()).is_some_and(|rest| rest.starts_with('.'));
        if bound.whole_body || bound.fields.iter().any(taken) {
            return Err(Error::invalid(&key, "cannot be given as a query parameter on this route"));
        }
        if !field.is_list() && !seen.insert(path.clone()) {
            return Err(Error::invalid(&path, "is given more than once"));
        }
        set_path(message, &path, &value)?;
    }
    Ok(())
}

/// Sets the field at a dotted proto path (as bound by a path variable) from text.
pub fn set_path(message: &mut DynamicMessage, path: &str, text: &str) -> Result<(), Error> {
    let mut target = message;
    let mut names = path.split('.').peekable();
    while let Some(name) = names.next() {
        let field = target
            .descriptor()
            .get_field_by_name(name)
            .ok_or_else(|| Error::invalid(path, "is not a field of the request"))?;
        if names.peek().is_none() {
            let value = parse_value(&field, text).map_err(|description| Error::invalid(path, description))?;
            if field.is_list() {
                if let Value::List(items) = target.get_field_mut(&field) {
                    items.push(value);
                }
            } else {
                target.set_field(&field, value);
            }
            return Ok(());
        }
        target = match target.get_field_mut(&field) {
            Value::Message(inner) => inner,
            _ => return Err(Error::invalid(path, "is not a field of the request")),
        };
    }
    Err(Error::invalid(path, "is empty"))
}

/// Resolves a query name (segments in proto or JSON spelling) to the canonical
/// proto path and the leaf field, if it names a field a query may set.
fn resolve(descriptor: MessageDescriptor, key: &str) -> Option<(String, FieldDescriptor)> {
    let mut current = descriptor;
    let mut path = Vec::new();
    let mut names = key.split('.').peekable();
    while let Some(name) = names.next() {
        let field = current.get_field_by_name(name).or_else(|| current.get_field_by_json_name(name))?;
        path.push(field.name().to_owned());
        if names.peek().is_none() {
            return (is_scalar_like(&field) && !field.is_map()).then(|| (path.join("."), field));
        }
        match field.kind() {
            Kind::Message(inner) if !field.is_list() && !field.is_map() && well_known(&inner).is_none() => {
                current = inner
            }
            _ => return None,
        }
    }
    None
}

fn is_scalar_like(field: &FieldDescriptor) -> bool {
    match field.kind() {
        Kind::Message(inner) => well_known(&inner).is_some(),
        _ => true,
    }
}

#[derive(Clone, Copy)]
enum WellKnown {
    Timestamp,
    Duration,
    Wrapper,
}

fn well_known(message: &MessageDescriptor) -> Option<WellKnown> {
    match message.full_name() {
        "google.protobuf.Timestamp" => Some(WellKnown::Timestamp),
        "google.protobuf.Duration" => Some(WellKnown::Duration),
        "google.protobuf.DoubleValue"
        | "google.protobuf.FloatValue"
        | "google.protobuf.Int64Value"
        | "google.protobuf.UInt64Value"
        | "google.protobuf.Int32Value"
        | "google.protobuf.UInt32Value"
        | "google.protobuf.BoolValue"
        | "google.protobuf.StringValue"
        | "google.protobuf.BytesValue" => Some(WellKnown::Wrapper),
        _ => None,
    }
}

fn parse_value(field: &FieldDescriptor, text: &str) -> Result<Value, String> {
    parse_kind(&field.kind(), text)
}

fn parse_kind(kind: &Kind, text: &str) -> Result<Value, String> {
    let number = |what: &str| format!("must be {what}");
    if text.is_empty() && !matches!(kind, Kind::String | Kind::Bytes) {
        return Err("must not be empty".into());
    }
    Ok(match kind {
        Kind::String => Value::String(text.to_owned()),
        Kind::Bytes => Value::Bytes(decode_base64(text).ok_or("must be base64")?.into()),
        Kind::Bool => match text {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => return Err(r#"must be "true" or "false""#.into()),
        },
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => {
            Value::I32(text.parse().map_err(|_| number("a 32-bit integer"))?)
        }
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => {
            Value::I64(text.parse().map_err(|_| number("a 64-bit integer"))?)
        }
        Kind::Uint32 | Kind::Fixed32 => Value::U32(text.parse().map_err(|_| number("an unsigned 32-bit integer"))?),
        Kind::Uint64 | Kind::Fixed64 => Value::U64(text.parse().map_err(|_| number("an unsigned 64-bit integer"))?),
        Kind::Float => Value::F32(text.parse().map_err(|_| number("a number"))?),
        Kind::Double => Value::F64(text.parse().map_err(|_| number("a number"))?),
        Kind::Enum(descriptor) => match descriptor.get_value_by_name(text) {
            Some(value) => Value::EnumNumber(value.number()),
            None => match text.parse::<i32>().ok().and_then(|n| descriptor.get_value(n)) {
                Some(value) => Value::EnumNumber(value.number()),
                None => return Err(format!("must be one of the values of {}", descriptor.name())),
            },
        },
        Kind::Message(message) => {
            let mut out = DynamicMessage::new(message.clone());
            match well_known(message) {
                Some(WellKnown::Timestamp) => {
                    let ts = rfc3339::parse(text).map_err(|e| e.to_string())?;
                    out.set_field_by_name("seconds", Value::I64(ts.seconds));
                    out.set_field_by_name("nanos", Value::I32(ts.nanos));
                }
                Some(WellKnown::Duration) => {
                    let (seconds, nanos) = parse_duration(text).ok_or(r#"must be a duration like "1.5s""#)?;
                    out.set_field_by_name("seconds", Value::I64(seconds));
                    out.set_field_by_name("nanos", Value::I32(nanos));
                }
                Some(WellKnown::Wrapper) => {
                    let inner = message.get_field_by_name("value").ok_or("is not bindable")?;
                    out.set_field(&inner, parse_kind(&inner.kind(), text)?);
                }
                None => return Err("cannot be set from text".into()),
            }
            Value::Message(out)
        }
    })
}

fn parse_duration(text: &str) -> Option<(i64, i32)> {
    let number = text.strip_suffix('s')?;
    let (negative, digits) = match number.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, number),
    };
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    if whole.is_empty() || fraction.len() > 9 || !whole.bytes().chain(fraction.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let seconds: i64 = whole.parse().ok()?;
    let nanos: i32 = format!("{fraction:0<9}").parse().ok()?;
    Some(if negative { (-seconds, -nanos) } else { (seconds, nanos) })
}

fn decode_base64(text: &str) -> Option<Vec<u8>> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    [STANDARD, URL_SAFE, STANDARD_NO_PAD, URL_SAFE_NO_PAD].iter().find_map(|engine| engine.decode(text).ok())
}

/// `application/x-www-form-urlencoded` decoding: `+` is a space, then percent-decoding.
fn form_decode(raw: &str) -> Option<String> {
    let spaced = raw.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced).decode_utf8().ok().map(|s| s.into_owned())
}
