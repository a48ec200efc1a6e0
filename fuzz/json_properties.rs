//! What a REST JSON body must keep through `rest::json_body_to_protobuf`, shared by
//! the `json_body` fuzz target and its stable property test: the conversion never
//! fails but with INVALID_ARGUMENT naming a field; what it accepts decodes and goes
//! through the domain's validation; and the body budget refuses exactly the bodies
//! that pass one of its limits, as measured here independently on the parsed JSON.

use std::fmt;

use audit_service::domain::{EventBatch, SummaryRequest};
use audit_service::error::{Error, FieldViolation};
use audit_service::proto::{FILE_DESCRIPTOR_SET, audit as pb};
use audit_service::rest::json_body_to_protobuf;
use prost::Message;
use prost_reflect::{DescriptorPool, DynamicMessage, Kind, MessageDescriptor};
use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

/// The limits the budget states (`rest::json_budget`), restated here so that a
/// change to them is a deliberate change to this test too.
const FREE_DEPTH: usize = 32;
const FREE_VALUES: usize = 4096;
const BODY_DEPTH: usize = 64;
fn body_values(len: usize) -> usize {
    1024 + len / 8
}
/// Free-form JSON with an integer of magnitude 2^53 or more takes the reflective
/// conversion, which is held to fewer values per byte.
fn reflective_values(len: usize) -> usize {
    1024 + len / 192
}
const EXACT_DOUBLE_LIMIT: u64 = 1 << 53;

/// The input message of every method of the service, in declaration order.
pub fn request_messages() -> Vec<MessageDescriptor> {
    let pool = DescriptorPool::decode(FILE_DESCRIPTOR_SET).expect("the service's descriptors decode");
    let service = pool.get_service_by_name("avnology.audit.v1.AuditService").expect("the service is described");
    service.methods().map(|method| method.input()).collect()
}

/// Converts `body` as the request `input` and checks every property; panics with
/// the body's measure on the first one broken.
pub fn check_body(input: &MessageDescriptor, body: &[u8], clean: bool) {
    let measure = Measure::of(input, body);
    let outcome = json_body_to_protobuf(input, body);
    let refusal = match &outcome {
        Ok(_) => None,
        Err(Error::InvalidArgument { violations, .. }) => {
            assert!(!violations.is_empty(), "a refusal names no violation");
            for violation in violations {
                assert!(!violation.field.is_empty(), "a violation names no field: {violation:?}");
            }
            violations.iter().find(|v| Limit::of(v).is_some())
        }
        Err(other) => panic!("{} refused a body with {other:?}; body measure {measure:?}", input.name()),
    };
    if let Some(measure) = &measure {
        match refusal {
            Some(violation) => measure.confirm(violation),
            None => {
                let over = measure.over_limits();
                assert!(over.is_empty(), "the budget let through a body over its limits: {over:?}");
            }
        }
        if let (true, true, Err(e)) = (clean, measure.over_limits().is_empty(), &outcome) {
            panic!("a schema-valid body within the limits was refused: {e:?}");
        }
    }
    if let Ok(bytes) = outcome {
        DynamicMessage::decode(input.clone(), bytes.as_slice()).expect("an accepted body encodes a valid message");
        validate(input, &bytes);
    }
}

/// The domain's validation of an accepted request, where the service has one.
fn validate(input: &MessageDescriptor, bytes: &[u8]) {
    match input.full_name() {
        "avnology.audit.v1.BatchCreateEventsRequest" => {
            let typed = pb::BatchCreateEventsRequest::decode(bytes).expect("an accepted batch decodes");
            if let Err(error) = EventBatch::try_from(typed) {
                let violations = invalid_argument(&error);
                // The budget already held each `details` to the domain's limits.
                let over = violations.iter().filter(|v| v.field.ends_with(".details") && Limit::of(v).is_some());
                assert_eq!(over.count(), 0, "the domain refused details the budget let through: {violations:?}");
            }
        }
        "avnology.audit.v1.GetEventsSummaryRequest" => {
            let typed = pb::GetEventsSummaryRequest::decode(bytes).expect("an accepted summary request decodes");
            if let Err(error) = SummaryRequest::try_from(typed) {
                invalid_argument(&error);
            }
        }
        _ => {}
    }
}

fn invalid_argument(error: &Error) -> &[FieldViolation] {
    match error {
        Error::InvalidArgument { violations, .. } if !violations.is_empty() => {
            assert!(violations.iter().all(|v| !v.field.is_empty()), "a violation names no field: {violations:?}");
            violations
        }
        other => panic!("the domain refused an accepted request with {other:?}"),
    }
}

/// Which limit a violation says was passed, if it is a budget refusal.
#[derive(Debug, PartialEq)]
enum Limit {
    BodyDepth,
    BodyValues,
    FreeDepth,
    FreeValues,
    ReflectiveValues,
}

impl Limit {
    fn of(violation: &FieldViolation) -> Option<Self> {
        let text = violation.description.as_str();
        if text == format!("is nested deeper than {BODY_DEPTH} levels") {
            Some(Self::BodyDepth)
        } else if text == format!("is nested deeper than {FREE_DEPTH} levels") {
            Some(Self::FreeDepth)
        } else if text == format!("holds more than {FREE_VALUES} JSON values") {
            Some(Self::FreeValues)
        } else if text.starts_with("holds more than") && text.contains("JSON values for its") {
            Some(Self::BodyValues)
        } else if text.starts_with("holds integers of 2^53 or more in free-form JSON") {
            Some(Self::ReflectiveValues)
        } else {
            assert!(
                !text.contains("nested deeper than") && !text.contains("JSON values"),
                "a budget refusal states no known limit: {violation:?}"
            );
            None
        }
    }
}

/// The body's size as parsed: nesting depth and values, of the whole body and of
/// each free-form JSON field (`google.protobuf.Struct`, `Value`, `ListValue`).
struct Measure {
    len: usize,
    depth: usize,
    values: usize,
    /// Each free-form field met where the schema was followed: path, depth, values.
    free: Vec<(String, usize, usize)>,
    /// Free-form JSON holds an integer of magnitude 2^53 or more.
    wide_free: bool,
}

impl Measure {
    /// `None` when serde_json cannot parse the body (its recursion limit is 128).
    fn of(input: &MessageDescriptor, body: &[u8]) -> Option<Self> {
        let tree: Tree = serde_json::from_slice(body).ok()?;
        let (depth, values) = tree.size();
        let mut measure = Self { len: body.len(), depth, values, free: Vec::new(), wide_free: false };
        measure.find_free(&tree, &Expect::Message(input.clone()), String::new());
        Some(measure)
    }

    fn find_free(&mut self, tree: &Tree, expect: &Expect, path: String) {
        match (expect, tree) {
            (Expect::Free, Tree::List(_) | Tree::Object(_)) => {
                let (depth, values) = tree.size();
                self.free.push((path, depth, values));
                self.wide_free |= tree.has_wide_integer();
            }
            (Expect::Free, Tree::Scalar { wide }) => self.wide_free |= *wide,
            (Expect::Message(message), Tree::Object(entries)) => {
                for (key, value) in entries {
                    let field = message.get_field_by_json_name(key).or_else(|| message.get_field_by_name(key));
                    let Some(field) = field else { continue };
                    let element = match field.kind() {
                        Kind::Message(entry) if field.is_map() => expect_of(&entry.map_entry_value_field().kind()),
                        kind => expect_of(&kind),
                    };
                    let expect =
                        if field.is_list() || field.is_map() { Expect::Each(Box::new(element)) } else { element };
                    self.find_free(value, &expect, join(&path, key));
                }
            }
            (Expect::Each(element), Tree::List(elements)) => {
                for (at, value) in elements.iter().enumerate() {
                    self.find_free(value, element, format!("{path}[{at}]"));
                }
            }
            (Expect::Each(element), Tree::Object(entries)) => {
                for (key, value) in entries {
                    self.find_free(value, element, join(&path, key));
                }
            }
            _ => {}
        }
    }

    fn over_limits(&self) -> Vec<Limit> {
        let mut over = Vec::new();
        if self.depth > BODY_DEPTH {
            over.push(Limit::BodyDepth);
        }
        if self.values > body_values(self.len) {
            over.push(Limit::BodyValues);
        }
        if self.free.iter().any(|(_, depth, _)| *depth > FREE_DEPTH) {
            over.push(Limit::FreeDepth);
        }
        if self.free.iter().any(|(_, _, values)| *values > FREE_VALUES) {
            over.push(Limit::FreeValues);
        }
        if self.wide_free && self.values > reflective_values(self.len) {
            over.push(Limit::ReflectiveValues);
        }
        over
    }

    /// Panics unless the limit `violation` states was passed, by the field it names.
    fn confirm(&self, violation: &FieldViolation) {
        let limit = Limit::of(violation).expect("a budget refusal");
        let over = self.over_limits();
        assert!(over.contains(&limit), "the budget refused a body within its limits: {violation:?}; {self:?}");
        let named = |over: &dyn Fn(usize, usize) -> bool| {
            self.free.iter().any(|(path, depth, values)| path == &violation.field && over(*depth, *values))
        };
        // Long keys are shortened in the name; only exact paths are compared.
        let comparable = !violation.field.contains('…');
        match limit {
            Limit::FreeDepth if comparable => {
                assert!(named(&|depth, _| depth > FREE_DEPTH), "a depth refusal names the wrong field: {violation:?}")
            }
            Limit::FreeValues if comparable => {
                assert!(
                    named(&|_, values| values > FREE_VALUES),
                    "a values refusal names the wrong field: {violation:?}"
                )
            }
            _ => {}
        }
    }
}

impl fmt::Debug for Measure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let deepest = self.free.iter().max_by_key(|(_, depth, _)| *depth);
        let widest = self.free.iter().max_by_key(|(_, _, values)| *values);
        write!(
            f,
            "{} bytes, depth {}, {} values (at most {}); deepest free-form {deepest:?}, widest {widest:?}",
            self.len,
            self.depth,
            self.values,
            body_values(self.len)
        )
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() { key.to_owned() } else { format!("{path}.{key}") }
}

/// What the schema expects at a point of the body.
enum Expect {
    Message(MessageDescriptor),
    /// Elements of a list or values of a map.
    Each(Box<Expect>),
    Free,
    Scalar,
}

fn expect_of(kind: &Kind) -> Expect {
    match kind {
        Kind::Message(message) => match message.full_name() {
            "google.protobuf.Struct" | "google.protobuf.Value" | "google.protobuf.ListValue" => Expect::Free,
            _ => Expect::Message(message.clone()),
        },
        _ => Expect::Scalar,
    }
}

/// Parsed JSON that keeps every entry of an object, duplicate keys included
/// (`serde_json::Value` keeps the last): the budget counts them all.
enum Tree {
    /// `wide`: an integer of magnitude 2^53 or more.
    Scalar {
        wide: bool,
    },
    List(Vec<Tree>),
    Object(Vec<(String, Tree)>),
}

impl Tree {
    /// Nesting depth (a scalar 0, a container one more than its deepest child)
    /// and number of values, containers included.
    fn size(&self) -> (usize, usize) {
        let children: Box<dyn Iterator<Item = &Tree>> = match self {
            Tree::Scalar { .. } => return (0, 1),
            Tree::List(elements) => Box::new(elements.iter()),
            Tree::Object(entries) => Box::new(entries.iter().map(|(_, value)| value)),
        };
        children.map(Tree::size).fold((1, 1), |(depth, values), (d, v)| (depth.max(d + 1), values + v))
    }

    fn has_wide_integer(&self) -> bool {
        match self {
            Tree::Scalar { wide } => *wide,
            Tree::List(elements) => elements.iter().any(Tree::has_wide_integer),
            Tree::Object(entries) => entries.iter().any(|(_, value)| value.has_wide_integer()),
        }
    }
}

impl<'de> Deserialize<'de> for Tree {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(TreeVisitor)
    }
}

struct TreeVisitor;

impl<'de> Visitor<'de> for TreeVisitor {
    type Value = Tree;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("JSON")
    }
    fn visit_bool<E>(self, _: bool) -> Result<Tree, E> {
        Ok(Tree::Scalar { wide: false })
    }
    fn visit_i64<E>(self, value: i64) -> Result<Tree, E> {
        Ok(Tree::Scalar { wide: value.unsigned_abs() >= EXACT_DOUBLE_LIMIT })
    }
    fn visit_u64<E>(self, value: u64) -> Result<Tree, E> {
        Ok(Tree::Scalar { wide: value >= EXACT_DOUBLE_LIMIT })
    }
    fn visit_f64<E>(self, _: f64) -> Result<Tree, E> {
        Ok(Tree::Scalar { wide: false })
    }
    fn visit_str<E>(self, _: &str) -> Result<Tree, E> {
        Ok(Tree::Scalar { wide: false })
    }
    fn visit_unit<E>(self) -> Result<Tree, E> {
        Ok(Tree::Scalar { wide: false })
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Tree, A::Error> {
        let mut elements = Vec::new();
        while let Some(element) = seq.next_element()? {
            elements.push(element);
        }
        Ok(Tree::List(elements))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Tree, A::Error> {
        let mut entries = Vec::new();
        while let Some(entry) = map.next_entry()? {
            entries.push(entry);
        }
        Ok(Tree::Object(entries))
    }
}
