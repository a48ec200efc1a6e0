//! The OpenAPI 3 document of the REST surface, generated at start-up from the same
//! parsed `google.api.http` rules the transcoder serves and the same method table
//! entries, with their scopes and success statuses (so the two cannot disagree),
//! and from the messages' descriptors: query parameters from the request fields no
//! path variable or body binds, bodies for `body` rules, responses in the REST
//! layer's JSON (proto field names, 64-bit integers as numbers, fields without
//! presence always written but for empty strings, which are left out), the AIP-193
//! error envelope, and bearer security.

use std::collections::BTreeMap;

use prost_reflect::{FieldDescriptor, Kind, MessageDescriptor, Value};
use serde_json::{Map, Value as Json, json};

use crate::rest::{RestGateway, RouteDoc};

const OPENAPI_VERSION: &str = "3.0.3";
const ERROR_SCHEMA: &str = "google.rpc.Status";
/// Query flattening stops here: deeper nesting cannot be reached sensibly and a
/// recursive message must not recurse forever.
const MAX_QUERY_DEPTH: usize = 4;

/// `(name, description)` of a response header.
type Header = (&'static str, &'static str);

/// `(status, description, required response header)` of every error the REST
/// layer can answer with, as the contract's error table maps them.
const ERRORS: [(&str, &str, Option<Header>); 11] = [
    ("400", "INVALID_ARGUMENT: a missing, repeated, malformed or unknown parameter, or an invalid body", None),
    ("401", "UNAUTHENTICATED: no token, or one that does not verify", Some(("WWW-Authenticate", "Bearer challenge"))),
    (
        "403",
        "PERMISSION_DENIED: the token lacks the scope, or names another organization",
        Some(("WWW-Authenticate", "Bearer challenge naming the missing scope")),
    ),
    ("404", "NOT_FOUND: no route for the path, or no such resource the caller may see", None),
    ("405", "the path exists for another HTTP method", Some(("Allow", "the methods the path accepts"))),
    ("413", "RESOURCE_EXHAUSTED: the body exceeds the size limit", None),
    ("414", "RESOURCE_EXHAUSTED: the request target exceeds the length limit", None),
    ("429", "RESOURCE_EXHAUSTED: rate limited", Some(("Retry-After", "seconds to wait before retrying"))),
    ("500", "INTERNAL: unexpected failure (logged, details withheld)", None),
    ("503", "UNAVAILABLE: the database cannot answer or the server is overloaded; retry later", None),
    ("504", "DEADLINE_EXCEEDED: the request did not finish within its deadline", None),
];

/// Which way a message travels: request messages name only the fields the
/// caller must send as required; replies name every field the REST layer writes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Direction {
    Input,
    Output,
}

struct Generator {
    schemas: BTreeMap<String, Json>,
}

/// The document as JSON bytes, for `GET /openapi.json`.
pub fn document_json(gateway: &RestGateway) -> bytes::Bytes {
    bytes::Bytes::from(serde_json::to_vec_pretty(&document(gateway)).expect("a JSON value serializes"))
}

/// `GET /openapi.json`.
pub fn response(document: &bytes::Bytes) -> http::Response<bytes::Bytes> {
    let mut response = http::Response::new(document.clone());
    response.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
    response
}

pub fn document(gateway: &RestGateway) -> Json {
    let mut generator = Generator { schemas: BTreeMap::new() };
    generator.schemas.insert(ERROR_SCHEMA.to_owned(), error_schema());
    let mut paths: BTreeMap<String, Map<String, Json>> = BTreeMap::new();
    for route in gateway.describe() {
        let (path, path_params) = openapi_path(route.template);
        let operation = generator.operation(&route, &path_params);
        paths.entry(path).or_default().insert(route.method.as_str().to_ascii_lowercase(), operation);
    }
    json!({
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "Audit service REST API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "REST/JSON transcoding of the avnology.audit.v1 gRPC API, generated from the \
                google.api.http annotations of its protos. Query parameter names may also be given in \
                lowerCamelCase; unknown query parameters are refused with 400. Errors are the AIP-193 \
                envelope of google.rpc.Status.",
        },
        "paths": paths,
        "components": {
            "schemas": generator.schemas,
            "responses": error_responses(),
            "securitySchemes": { "bearerAuth": { "type": "http", "scheme": "bearer", "bearerFormat": "JWT" } },
        },
        "security": [ { "bearerAuth": [] } ],
    })
}

/// `/v1/{name=orgs/*}:get` → `/v1/{name}:get` and the variables' field paths.
fn openapi_path(template: &str) -> (String, Vec<String>) {
    let mut path = String::with_capacity(template.len());
    let mut params = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        path.push_str(&rest[..open]);
        let Some(close) = rest[open..].find('}').map(|c| open + c) else { break };
        let field = rest[open + 1..close].split('=').next().unwrap_or_default();
        path.push('{');
        path.push_str(field);
        path.push('}');
        params.push(field.to_owned());
        rest = &rest[close + 1..];
    }
    path.push_str(rest);
    (path, params)
}

impl Generator {
    fn operation(&mut self, route: &RouteDoc<'_>, path_params: &[String]) -> Json {
        let (service, method, grpc_path) = (route.rpc.service(), route.rpc.name(), route.rpc.path());
        let scope = route.rpc.required_scope();
        let input = route.rpc.input();
        let mut parameters = Vec::new();
        for field_path in path_params {
            if let Some(field) = field_at(input, field_path) {
                parameters.push(json!({
                    "name": field_path,
                    "in": "path",
                    "required": true,
                    "schema": self.field_schema(&field, Direction::Input),
                }));
            }
        }
        if route.body != Some("*") {
            let bound: Vec<&str> = route
                .path_fields
                .iter()
                .map(|path| path.split('.').next().unwrap_or_default())
                .chain(route.body)
                .collect();
            self.query_parameters(input, "", &bound, 0, &mut parameters);
        }
        let mut operation = json!({
            "operationId": format!("{}_{method}", service.rsplit('.').next().unwrap_or(service)),
            "tags": [service],
            "summary": format!("{service}.{method}"),
            "description": match scope {
                Some(scope) => format!("Transcoded to the gRPC method {grpc_path}. Needs a bearer token with the scope `{scope}`."),
                None => format!("Transcoded to the gRPC method {grpc_path}. Not callable: the method names no scope."),
            },
            "parameters": parameters,
            "responses": self.responses(route),
        });
        if let Some(scope) = scope {
            operation["x-required-scope"] = json!(scope);
        }
        if let Some(body) = route.body {
            let schema = match body {
                "*" => self.message_ref(input, Direction::Input),
                field => match input.get_field_by_name(field) {
                    Some(field) => self.field_schema(&field, Direction::Input),
                    None => json!({}),
                },
            };
            // An empty body reads as `{}`, so the body itself is optional.
            operation["requestBody"] =
                json!({ "required": false, "content": { "application/json": { "schema": schema } } });
        }
        operation
    }

    fn responses(&mut self, route: &RouteDoc<'_>) -> Json {
        let output = route.rpc.output();
        let reply = match route.response_body.and_then(|field| output.get_field_by_name(field)) {
            Some(field) => self.field_schema(&field, Direction::Output),
            None => self.message_ref(output, Direction::Output),
        };
        let mut responses = Map::new();
        let success = route.rpc.success_status();
        responses.insert(
            success.as_str().into(),
            json!({
                "description": success.canonical_reason().unwrap_or("OK"),
                "content": { "application/json": { "schema": reply } },
            }),
        );
        for (status, _, _) in ERRORS {
            responses.insert(status.into(), json!({ "$ref": format!("#/components/responses/Error{status}") }));
        }
        // Answered by the HTTP layer itself, before any route: no JSON body.
        responses.insert("431".into(), json!({ "description": "the request head exceeds the header size limit" }));
        Json::Object(responses)
    }
}

/// The shared error answers, referenced by every operation.
fn error_responses() -> Json {
    let mut responses = Map::new();
    for (status, description, header) in ERRORS {
        let mut response = json!({
            "description": description,
            "content": { "application/json": { "schema": { "$ref": format!("#/components/schemas/{ERROR_SCHEMA}") } } },
        });
        if let Some((name, about)) = header {
            let schema = if name == "Retry-After" {
                json!({"type": "integer", "minimum": 1})
            } else {
                json!({"type": "string"})
            };
            response["headers"] = json!({ name: { "description": about, "required": true, "schema": schema } });
        }
        responses.insert(format!("Error{status}"), response);
    }
    Json::Object(responses)
}

impl Generator {
    /// Query parameters for the fields of `message` a query may set, as the
    /// transcoder binds them: scalars and well-known types, `a.b` for nested
    /// messages, repeated keys for repeated fields.
    fn query_parameters(
        &mut self,
        message: &MessageDescriptor,
        prefix: &str,
        bound: &[&str],
        depth: usize,
        out: &mut Vec<Json>,
    ) {
        for field in message.fields() {
            if depth == 0 && bound.contains(&field.name()) {
                continue;
            }
            let name = format!("{prefix}{}", field.name());
            match field.kind() {
                Kind::Message(inner) if well_known_schema(&inner).is_none() => {
                    if !field.is_list() && !field.is_map() && depth + 1 < MAX_QUERY_DEPTH {
                        self.query_parameters(&inner, &format!("{name}."), bound, depth + 1, out);
                    }
                }
                _ if field.is_map() => {}
                _ => {
                    let mut parameter = json!({
                        "name": name,
                        "in": "query",
                        "required": self.is_required(&field),
                        "schema": self.field_schema(&field, Direction::Input),
                    });
                    if field.is_list() {
                        parameter["style"] = json!("form");
                        parameter["explode"] = json!(true);
                    }
                    out.push(parameter);
                }
            }
        }
    }

    fn is_required(&self, field: &FieldDescriptor) -> bool {
        let Some(extension) = field.parent_pool().get_extension_by_name("google.api.field_behavior") else {
            return false;
        };
        match field.options().get_extension(&extension).as_ref() {
            // REQUIRED is 2 in google/api/field_behavior.proto.
            Value::List(behaviors) => behaviors.iter().any(|b| matches!(b, Value::EnumNumber(2))),
            _ => false,
        }
    }

    fn field_schema(&mut self, field: &FieldDescriptor, direction: Direction) -> Json {
        if field.is_map() {
            let value = match field.kind() {
                Kind::Message(entry) => self.kind_schema(&entry.map_entry_value_field().kind(), direction),
                kind => self.kind_schema(&kind, direction),
            };
            return json!({ "type": "object", "additionalProperties": value });
        }
        let item = self.kind_schema(&field.kind(), direction);
        if field.is_list() { json!({ "type": "array", "items": item }) } else { item }
    }

    fn kind_schema(&mut self, kind: &Kind, direction: Direction) -> Json {
        match kind {
            Kind::String => json!({ "type": "string" }),
            Kind::Bytes => json!({ "type": "string", "format": "byte" }),
            Kind::Bool => json!({ "type": "boolean" }),
            Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => json!({ "type": "integer", "format": "int32" }),
            Kind::Uint32 | Kind::Fixed32 => json!({ "type": "integer", "minimum": 0, "maximum": u32::MAX }),
            // The REST layer writes 64-bit integers as JSON numbers, not strings.
            Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => json!({ "type": "integer", "format": "int64" }),
            Kind::Uint64 | Kind::Fixed64 => json!({ "type": "integer", "minimum": 0 }),
            Kind::Float => json!({ "type": "number", "format": "float" }),
            Kind::Double => json!({ "type": "number", "format": "double" }),
            Kind::Enum(descriptor) => {
                json!({ "type": "string", "enum": descriptor.values().map(|v| v.name().to_owned()).collect::<Vec<_>>() })
            }
            Kind::Message(message) => match well_known_schema(message) {
                Some(schema) => schema,
                None => self.message_ref(message, direction),
            },
        }
    }

    fn message_ref(&mut self, message: &MessageDescriptor, direction: Direction) -> Json {
        let name = match direction {
            Direction::Output => message.full_name().to_owned(),
            // Request and reply messages differ in which fields are required.
            Direction::Input => format!("{}.Input", message.full_name()),
        };
        let reference = json!({ "$ref": format!("#/components/schemas/{name}") });
        if self.schemas.contains_key(&name) {
            return reference;
        }
        // Placeholder first: a recursive message refers to itself.
        self.schemas.insert(name.clone(), json!({}));
        let mut properties = Map::new();
        let mut required = Vec::new();
        for field in message.fields() {
            properties.insert(field.name().to_owned(), self.field_schema(&field, direction));
            let is_required = match direction {
                // The REST layer writes every field without presence, defaults included,
                // except a string left empty (rest/reply.rs).
                Direction::Output => !field.supports_presence() && (field.is_list() || field.kind() != Kind::String),
                Direction::Input => self.is_required(&field),
            };
            if is_required {
                required.push(field.name().to_owned());
            }
        }
        let mut schema = json!({ "type": "object", "properties": properties });
        if !required.is_empty() {
            schema["required"] = json!(required);
        }
        if direction == Direction::Input {
            // The transcoder refuses unknown fields.
            schema["additionalProperties"] = json!(false);
        }
        self.schemas.insert(name, schema);
        reference
    }
}

/// The proto3 JSON form of the well-known types.
fn well_known_schema(message: &MessageDescriptor) -> Option<Json> {
    let wrapper = |inner: Json| {
        let mut inner = inner;
        inner["nullable"] = json!(true);
        inner
    };
    Some(match message.full_name() {
        "google.protobuf.Timestamp" => json!({ "type": "string", "format": "date-time" }),
        "google.protobuf.Duration" => json!({ "type": "string", "pattern": "^-?[0-9]+(\\.[0-9]{1,9})?s$" }),
        "google.protobuf.FieldMask" => json!({ "type": "string" }),
        "google.protobuf.Struct" => json!({ "type": "object", "additionalProperties": {} }),
        "google.protobuf.ListValue" => json!({ "type": "array", "items": {} }),
        "google.protobuf.Value" => json!({}),
        "google.protobuf.Empty" => json!({ "type": "object", "additionalProperties": false }),
        "google.protobuf.Any" => json!({ "type": "object", "properties": { "@type": { "type": "string" } } }),
        "google.protobuf.DoubleValue" | "google.protobuf.FloatValue" => wrapper(json!({ "type": "number" })),
        "google.protobuf.Int64Value" | "google.protobuf.Int32Value" => wrapper(json!({ "type": "integer" })),
        "google.protobuf.UInt64Value" | "google.protobuf.UInt32Value" => {
            wrapper(json!({ "type": "integer", "minimum": 0 }))
        }
        "google.protobuf.BoolValue" => wrapper(json!({ "type": "boolean" })),
        "google.protobuf.StringValue" => wrapper(json!({ "type": "string" })),
        "google.protobuf.BytesValue" => wrapper(json!({ "type": "string", "format": "byte" })),
        _ => return None,
    })
}

fn field_at(message: &MessageDescriptor, path: &str) -> Option<FieldDescriptor> {
    let mut current = message.clone();
    let mut names = path.split('.').peekable();
    while let Some(name) = names.next() {
        let field = current.get_field_by_name(name)?;
        if names.peek().is_none() {
            return Some(field);
        }
        current = match field.kind() {
            Kind::Message(inner) => inner,
            _ => return None,
        };
    }
    None
}

/// The AIP-193 envelope every REST error answers with.
fn error_schema() -> Json {
    json!({
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "status", "message", "details"],
                "properties": {
                    "code": { "type": "integer", "description": "the HTTP status" },
                    "status": { "type": "string", "description": "the google.rpc.Code name, e.g. INVALID_ARGUMENT" },
                    "message": { "type": "string" },
                    "details": {
                        "type": "array",
                        "description": "google.rpc.BadRequest, ErrorInfo and RetryInfo, in their JSON forms with @type",
                        "items": { "type": "object", "required": ["@type"], "properties": { "@type": { "type": "string" } } },
                    },
                },
            },
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_templates_become_openapi_paths() {
        assert_eq!(openapi_path("/v1/audit/events:summary"), ("/v1/audit/events:summary".into(), vec![]));
        assert_eq!(
            openapi_path("/v1/{name=orgs/*/events/*}:get/{event.id}"),
            ("/v1/{name}:get/{event.id}".into(), vec!["name".into(), "event.id".into()])
        );
    }

    #[test]
    fn the_document_says_what_the_transcoder_answers() {
        // A test service whose `Order` answers 202 (rest/transcoding_tests.rs).
        let document = document(&crate::rest::transcoding_tests::gateway());
        let responses = &document["paths"]["/v1/shelves/{shelf}/things:order"]["post"]["responses"];
        assert_eq!(responses["202"]["description"], "Accepted", "{responses}");
        assert!(responses.get("200").is_none(), "{responses}");
    }
}
