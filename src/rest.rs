//! REST/JSON transcoding driven by the `google.api.http` annotations the method
//! table read: a route per binding of an RPC, built once at start-up; each request
//! becomes the RPC's protobuf message and goes, in process, through the same gRPC
//! stack (auth, tracing, service) as a native call.

// Public for the fuzz targets and property tests of the query parser only.
#[doc(hidden)]
pub mod binding;
mod grpc_call;
pub mod json_budget;
mod reply;
mod template;
#[cfg(test)]
pub(crate) mod transcoding_tests;

use std::collections::HashSet;
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, header};
use prost::Message;
use prost_reflect::{DynamicMessage, Kind, MessageDescriptor};

pub use grpc_call::GrpcService;
use template::PathTemplate;

use crate::error::{Error, status_to_http};
use crate::methods::{HttpRule, Method as Rpc, MethodTable, Streaming};

/// How the HTTP body maps onto the request message.
#[derive(Debug, Clone)]
enum BodyRule {
    None,
    /// `body: "*"`: the whole request; no query parameters.
    Whole,
    /// `body: "field"`: that top-level field.
    Field(String),
}

#[derive(Debug, Clone)]
struct Route {
    method: Method,
    template: PathTemplate,
    body: BodyRule,
    /// Field paths set by the path or the body; the query may not set them or
    /// anything inside them (but may set their siblings: `{filter.name}` in the
    /// path leaves `filter.tags` to the query).
    bound_fields: HashSet<String>,
    /// Response field that is the whole HTTP body, if the rule names one.
    response_body: Option<String>,
    /// The RPC it calls: gRPC path, messages, success status.
    rpc: Arc<Rpc>,
}

/// One route, as read from its `google.api.http` rule.
pub struct RouteDoc<'a> {
    pub method: &'a Method,
    /// The rule's path template, e.g. `/v1/{name=orgs/*}/events:summary`.
    pub template: &'a str,
    /// Request fields bound by the path variables, as dotted proto paths.
    pub path_fields: Vec<&'a str>,
    /// `"*"` for the whole request, a top-level field name, or none.
    pub body: Option<&'a str>,
    pub response_body: Option<&'a str>,
    /// The RPC it calls, with its scope and success status.
    pub rpc: &'a Rpc,
}

/// The REST routes of every annotated RPC, and the gRPC stack they call.
#[derive(Clone)]
pub struct RestGateway {
    routes: Arc<Vec<Route>>,
    grpc: GrpcService,
}

impl RestGateway {
    /// A route for every `google.api.http` binding of the methods in the table. A
    /// malformed rule stops start-up: a route that silently went missing would be worse.
    pub fn from_methods(methods: &MethodTable, grpc: GrpcService) -> anyhow::Result<Self> {
        let mut routes = Vec::new();
        for rpc in methods.iter().filter(|rpc| !rpc.http_rules().is_empty()) {
            if rpc.streaming() != Streaming::Unary {
                anyhow::bail!("{}: streaming RPCs cannot be mapped to REST", rpc.full_name());
            }
            for rule in rpc.http_rules() {
                routes.push(route_of(rule, rpc).map_err(|e| anyhow::anyhow!("{}: {e}", rpc.full_name()))?);
            }
        }
        if routes.is_empty() {
            anyhow::bail!("no google.api.http rule found in the descriptor set");
        }
        Ok(Self { routes: Arc::new(routes), grpc })
    }

    /// `(HTTP method, path template)` of every route, for logs and docs.
    pub fn routes(&self) -> impl Iterator<Item = (&Method, &str)> {
        self.routes.iter().map(|r| (&r.method, r.template.as_str()))
    }

    /// Every route as the OpenAPI document describes it.
    pub fn describe(&self) -> Vec<RouteDoc<'_>> {
        self.routes
            .iter()
            .map(|r| RouteDoc {
                method: &r.method,
                template: r.template.as_str(),
                path_fields: r.template.variable_fields().collect(),
                body: match &r.body {
                    BodyRule::None => None,
                    BodyRule::Whole => Some("*"),
                    BodyRule::Field(field) => Some(field.as_str()),
                },
                response_body: r.response_body.as_deref(),
                rpc: &r.rpc,
            })
            .collect()
    }

    /// The route template a request would take and the gRPC path it calls, for
    /// telemetry: spans and metrics name the RPC behind a REST call.
    pub fn route_target(&self, method: &Method, path: &str) -> Option<(&str, &str)> {
        self.in_match_order()
            .find(|r| r.method == method && r.template.matches(path).is_some())
            .map(|r| (r.template.as_str(), r.rpc.path()))
    }

    /// The gRPC path a request would call, to authorize it before its body is read.
    pub fn grpc_path_of(&self, method: &Method, path: &str) -> Option<&str> {
        self.route_target(method, path).map(|(_, grpc_path)| grpc_path)
    }

    /// The routes in the order a path is tried against them: those with a custom verb
    /// first, as grpc-gateway does, so that `/v1/audit/events/{id}:proof` is never read
    /// as the id `x:proof` of `/v1/audit/events/{id}`; an id holding a `:` still reaches
    /// the verbless route when no verb route takes the path.
    fn in_match_order(&self) -> impl Iterator<Item = &Route> {
        let verbs = self.routes.iter().filter(|r| r.template.has_verb());
        verbs.chain(self.routes.iter().filter(|r| !r.template.has_verb()))
    }

    /// Serves one REST request whose body was already read.
    pub async fn handle(&self, request: Request<Bytes>) -> Response<Bytes> {
        let (parts, body) = request.into_parts();
        let path = parts.uri.path();
        let mut allowed = Vec::new();
        for route in self.in_match_order() {
            let Some(bindings) = route.template.matches(path) else { continue };
            if route.method != parts.method {
                allowed.push(route.method.clone());
                continue;
            }
            let query = parts.uri.query().unwrap_or("");
            let principal = parts.extensions.get::<crate::auth::Principal>().cloned();
            return match self.call(route, bindings, query, &parts.headers, principal, body).await {
                Ok(response) => response,
                Err(error) => error.to_http(),
            };
        }
        if allowed.is_empty() {
            Error::RouteNotFound { path: path.to_owned() }.to_http()
        } else {
            allowed.dedup();
            Error::MethodNotAllowed { allow: allowed }.to_http()
        }
    }

    async fn call(
        &self,
        route: &Route,
        bindings: Vec<(String, String)>,
        query: &str,
        headers: &HeaderMap,
        principal: Option<crate::auth::Principal>,
        body: Bytes,
    ) -> Result<Response<Bytes>, Error> {
        // Path and query first: small, and refused before any body work.
        let input = route.rpc.input();
        let mut bound_message = DynamicMessage::new(input.clone());
        for (field_path, value) in &bindings {
            binding::set_path(&mut bound_message, field_path, value)?;
        }
        let bound = binding::Bound { whole_body: matches!(route.body, BodyRule::Whole), fields: &route.bound_fields };
        binding::bind_query(&mut bound_message, query, &bound)?;

        let mut encoded = if body.len() <= REACTOR_BODY_BYTES {
            convert_body(&route.body, input, &body)?
        } else {
            // Converting a large body takes milliseconds of CPU: off the reactor, so
            // that other requests on this worker are not held up behind it.
            let (rule, input) = (route.body.clone(), input.clone());
            tokio::task::spawn_blocking(move || convert_body(&rule, &input, &body))
                .await
                .map_err(|e| anyhow::anyhow!("body conversion task failed: {e}"))??
        };
        // Concatenated protobuf encodings merge: the path and query fields join the
        // body's as if set on one message, without a reflective copy of the body.
        bound_message.encode(&mut encoded).map_err(|e| anyhow::anyhow!("cannot encode bound fields: {e}"))?;
        let reply = match grpc_call::unary(&self.grpc, route.rpc.path(), headers, principal, encoded).await {
            Ok(reply) => reply,
            Err(status) => return Ok(status_to_http(&status)),
        };
        let reply = DynamicMessage::decode(route.rpc.output().clone(), reply)
            .map_err(|e| anyhow::anyhow!("undecodable reply of {}: {e}", route.rpc.path()))?;
        let json = reply::json(&reply, route.response_body.as_deref())?;
        let mut response = Response::new(Bytes::from(json));
        *response.status_mut() = route.rpc.success_status();
        response.headers_mut().insert(header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
        Ok(response)
    }
}

/// The route of one binding, its template parsed and every field it names checked
/// against the RPC's messages.
fn route_of(rule: &HttpRule, rpc: &Arc<Rpc>) -> Result<Route, String> {
    let (input, output) = (rpc.input(), rpc.output());
    let template = PathTemplate::parse(&rule.template)?;
    let mut bound_fields = HashSet::new();
    for field_path in template.variable_fields() {
        check_path(input, field_path)?;
        bound_fields.insert(field_path.to_owned());
    }
    let body = match rule.body.as_deref() {
        None => BodyRule::None,
        Some("*") => BodyRule::Whole,
        Some(field) => {
            input.get_field_by_name(field).ok_or_else(|| format!("body field {field:?} is not in {}", input.name()))?;
            bound_fields.insert(field.to_owned());
            BodyRule::Field(field.to_owned())
        }
    };
    let response_body = match rule.response_body.as_deref() {
        None => None,
        Some(field) => match output.get_field_by_name(field).map(|f| f.kind()) {
            Some(Kind::Message(_)) => Some(field.to_owned()),
            _ => return Err(format!("response_body {field:?} must name a message field of {}", output.name())),
        },
    };
    Ok(Route { method: rule.method.clone(), template, body, bound_fields, response_body, rpc: rpc.clone() })
}

fn check_path(input: &MessageDescriptor, path: &str) -> Result<(), String> {
    let mut current = input.clone();
    let mut names = path.split('.').peekable();
    while let Some(name) = names.next() {
        let field = current.get_field_by_name(name).ok_or_else(|| format!("path variable {path:?} is not a field"))?;
        match (field.kind(), names.peek()) {
            (_, None) => return Ok(()),
            (Kind::Message(inner), Some(_)) => current = inner,
            (_, Some(_)) => return Err(format!("path variable {path:?} goes through a non-message field")),
        }
    }
    Ok(())
}

/// A whole-request JSON body (`body: "*"`) of a message, checked against the
/// budget, converted and encoded as protobuf: what a REST call hands to gRPC.
/// Public for the fuzz targets and property tests only.
#[doc(hidden)]
pub fn json_body_to_protobuf(input: &MessageDescriptor, body: &[u8]) -> Result<Vec<u8>, Error> {
    convert_body(&BodyRule::Whole, input, body)
}

/// Bodies up to this size are converted on the reactor: well under a millisecond.
const REACTOR_BODY_BYTES: usize = 16 * 1024;

/// The protobuf encoding of the request message a JSON body describes, after the
/// body passed the budget that bounds what converting it can cost.
fn convert_body(rule: &BodyRule, input: &MessageDescriptor, body: &[u8]) -> Result<Vec<u8>, Error> {
    let (source, field) = match rule {
        BodyRule::None if body.is_empty() => return Ok(Vec::new()),
        BodyRule::None => return Err(Error::invalid("body", "must be empty on this route")),
        BodyRule::Whole if body.is_empty() => (&b"{}"[..], None),
        BodyRule::Whole => (body, None),
        BodyRule::Field(name) => {
            let field = input.get_field_by_name(name).ok_or_else(|| anyhow::anyhow!("body field {name} vanished"))?;
            (body, Some(field))
        }
    };
    let checked = json_budget::check(source, input, field.as_ref())?;
    let reflective = checked.wide_free_integers;
    if reflective {
        checked.reflective_budget(source.len())?;
    }
    match field {
        None => json_to_protobuf(input, source, reflective),
        Some(field) => {
            // The budget checked that the body is exactly one JSON value, so it
            // can be wrapped as the field of an object without being parsed twice.
            let name = serde_json::to_string(field.json_name()).map_err(|e| anyhow::anyhow!("field name: {e}"))?;
            let mut wrapped = Vec::with_capacity(body.len() + name.len() + 3);
            wrapped.push(b'{');
            wrapped.extend_from_slice(name.as_bytes());
            wrapped.push(b':');
            wrapped.extend_from_slice(source);
            wrapped.push(b'}');
            json_to_protobuf(input, &wrapped, reflective)
        }
    }
}

/// One JSON message to protobuf: with the generated serde code for the service's
/// own messages (prost's compact tree), reflectively for any other descriptor and
/// when `reflective` (free-form JSON with integers the generated code refuses).
fn json_to_protobuf(input: &MessageDescriptor, json: &[u8], reflective: bool) -> Result<Vec<u8>, Error> {
    let json_error = |e: serde_json::Error| Error::invalid("body", format!("is not valid JSON for this request: {e}"));
    let typed = if reflective { None } else { crate::proto::typed_json::json_to_protobuf(input.full_name(), json) };
    if let Some(typed) = typed {
        return typed.map_err(json_error);
    }
    let options = prost_reflect::DeserializeOptions::new().deny_unknown_fields(true);
    let mut deserializer = serde_json::Deserializer::from_slice(json);
    let message =
        DynamicMessage::deserialize_with_options(input.clone(), &mut deserializer, &options).map_err(json_error)?;
    deserializer.end().map_err(json_error)?;
    Ok(message.encode_to_vec())
}

#[cfg(test)]
mod tests {
    use prost::Message;

    use prost_reflect::DescriptorPool;

    use super::*;
    use crate::proto::{FILE_DESCRIPTOR_SET, audit as pb};

    /// Proto3 JSON reads any JSON number of free-form JSON as a double, integers
    /// past 2^53 included (rounded), as a gRPC client would have sent them.
    #[test]
    fn details_integers_past_two_to_the_53_are_read_as_doubles() {
        let pool = DescriptorPool::decode(FILE_DESCRIPTOR_SET).unwrap();
        let input = pool.get_message_by_name("avnology.audit.v1.BatchCreateEventsRequest").unwrap();
        for (number, expected) in [
            ("9007199254740991", 9_007_199_254_740_991.0),
            ("9007199254740992", 9_007_199_254_740_992.0),
            ("-9007199254740992", -9_007_199_254_740_992.0),
            ("9223372036854775807", 9_223_372_036_854_775_807.0),
            ("-9223372036854775808", -9_223_372_036_854_775_808.0),
            ("18446744073709551615", 18_446_744_073_709_551_615.0),
        ] {
            let body = format!(r#"{{"events":[{{"action":"a.b","details":{{"n":{number},"list":[{number}]}}}}]}}"#);
            let encoded = json_body_to_protobuf(&input, body.as_bytes()).unwrap_or_else(|e| panic!("{number}: {e:?}"));
            let request = pb::BatchCreateEventsRequest::decode(encoded.as_slice()).unwrap();
            let details = request.events[0].details.clone().unwrap();
            let number_of = |value: &pbjson_types::Value| match &value.kind {
                Some(pbjson_types::value::Kind::NumberValue(n)) => *n,
                other => panic!("{number}: not a number: {other:?}"),
            };
            assert_eq!(number_of(&details.fields["n"]), expected, "{number}");
            let Some(pbjson_types::value::Kind::ListValue(list)) = &details.fields["list"].kind else {
                panic!("{number}: not a list")
            };
            assert_eq!(number_of(&list.values[0]), expected, "{number}");
        }
    }
}
