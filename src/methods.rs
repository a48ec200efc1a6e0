//! The one table of the RPCs the server serves, read once from the descriptors:
//! per gRPC path, who may call it, whether it reads or writes, how it streams, its
//! `google.api.http` bindings and its REST success status. The auth, rate-limit
//! and message-limit layers, the REST transcoder and the OpenAPI document all read
//! it; nothing else reads method options.

use std::collections::HashMap;
use std::sync::Arc;

use http::StatusCode;
use prost_reflect::{
    DescriptorPool, DynamicMessage, ExtensionDescriptor, Kind, MessageDescriptor, MethodDescriptor, ReflectMessage,
    Value,
};

#[cfg(test)]
pub(crate) mod testing;
#[cfg(test)]
mod tests;

/// The scope option of `audit.proto`.
const REQUIRED_SCOPE: &str = "avnology.audit.v1.required_scope";
/// The REST success status option of `audit.proto`.
const HTTP_SUCCESS_STATUS: &str = "avnology.audit.v1.http_success_status";
const HTTP_RULE: &str = "google.api.http";
/// The `idempotency_level` that makes a method a read.
const READ_LEVEL: &str = "NO_SIDE_EFFECTS";

/// Who may call a method.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Access {
    /// Anyone, without a token: the health and reflection services, so that
    /// probes and `grpcurl describe` work without credentials.
    Open,
    /// A caller whose token carries this scope, the method's `required_scope`.
    Scope(Arc<str>),
    /// Nobody: a method of the API without `required_scope` (the server fails
    /// closed rather than serve it to any token).
    Closed,
}

/// Which rate limit a call counts against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    /// `option idempotency_level = NO_SIDE_EFFECTS`.
    Read,
    /// Every other method.
    Write,
}

/// How many messages each side sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Streaming {
    Unary,
    ServerStreaming,
    ClientStreaming,
    Bidirectional,
}

/// One `google.api.http` binding of a method, the rule itself or one of its
/// `additional_bindings`, as written; the transcoder parses and checks it.
#[derive(Clone, Debug)]
pub struct HttpRule {
    /// The rule's verb, or a `custom` pattern's kind.
    pub method: http::Method,
    /// The path template, e.g. `/v1/{name=orgs/*}/events:summary`.
    pub template: String,
    /// `"*"` for the whole request, or a top-level request field.
    pub body: Option<String>,
    /// The reply field that is the whole HTTP body.
    pub response_body: Option<String>,
}

/// One RPC as the server treats it.
#[derive(Debug)]
pub struct Method {
    /// `/package.Service/Method`.
    path: String,
    descriptor: MethodDescriptor,
    input: MessageDescriptor,
    output: MessageDescriptor,
    access: Access,
    class: Class,
    streaming: Streaming,
    http_rules: Vec<HttpRule>,
    success_status: StatusCode,
}

impl Method {
    /// The gRPC request path, `/package.Service/Method`.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// `package.Service/Method`: the OpenTelemetry name of the RPC.
    pub fn rpc(&self) -> &str {
        &self.path[1..]
    }

    /// The proto full name, `package.Service.Method`.
    pub fn full_name(&self) -> &str {
        self.descriptor.full_name()
    }

    /// The service's full name, `package.Service`.
    pub fn service(&self) -> &str {
        self.rpc().rsplit_once('/').map_or("", |(service, _)| service)
    }

    /// The method's own name, `Method`.
    pub fn name(&self) -> &str {
        self.descriptor.name()
    }

    pub fn access(&self) -> &Access {
        &self.access
    }

    /// The scope a token needs, for a method that takes tokens and names one.
    pub fn required_scope(&self) -> Option<&str> {
        match &self.access {
            Access::Scope(scope) => Some(scope),
            Access::Open | Access::Closed => None,
        }
    }

    pub fn class(&self) -> Class {
        self.class
    }

    pub fn streaming(&self) -> Streaming {
        self.streaming
    }

    /// Whether the client sends exactly one message (unary or server-streaming).
    pub fn takes_one_message(&self) -> bool {
        matches!(self.streaming, Streaming::Unary | Streaming::ServerStreaming)
    }

    /// The `google.api.http` rule and its additional bindings; empty without one.
    pub fn http_rules(&self) -> &[HttpRule] {
        &self.http_rules
    }

    /// The status of a successful REST answer: 200 unless `http_success_status` says otherwise.
    pub fn success_status(&self) -> StatusCode {
        self.success_status
    }

    pub fn input(&self) -> &MessageDescriptor {
        &self.input
    }

    pub fn output(&self) -> &MessageDescriptor {
        &self.output
    }
}

/// Every RPC the server serves, by gRPC path; cheap to clone.
#[derive(Clone, Debug)]
pub struct MethodTable {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// In declaration order, the API's services first: the order of REST routes
    /// and of the OpenAPI document.
    methods: Vec<Arc<Method>>,
    by_path: HashMap<String, Arc<Method>>,
}

impl MethodTable {
    /// Every method of the services in `api`, which take tokens, and of the
    /// health and reflection services the server serves beside them, which are open.
    /// A malformed option stops start-up: a method silently served otherwise than
    /// its proto says would be worse.
    pub fn new(api: &DescriptorPool) -> anyhow::Result<Self> {
        let health = DescriptorPool::decode(tonic_health::pb::FILE_DESCRIPTOR_SET)?;
        let reflection = DescriptorPool::decode(tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET)?;
        let mut methods = Vec::new();
        let mut by_path = HashMap::new();
        for (pool, guarded) in [(api, true), (&health, false), (&reflection, false)] {
            let options = Options::of(pool);
            for service in pool.services() {
                for descriptor in service.methods() {
                    let name = descriptor.full_name().to_owned();
                    let method =
                        Arc::new(options.read(descriptor, guarded).map_err(|e| anyhow::anyhow!("{name}: {e}"))?);
                    if by_path.insert(method.path.clone(), method.clone()).is_some() {
                        anyhow::bail!("{} is defined twice", method.path);
                    }
                    methods.push(method);
                }
            }
        }
        Ok(Self { inner: Arc::new(Inner { methods, by_path }) })
    }

    /// The method a gRPC request path calls.
    pub fn get(&self, path: &str) -> Option<&Arc<Method>> {
        self.inner.by_path.get(path)
    }

    /// Every method, the API's first, each service's in declaration order.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<Method>> {
        self.inner.methods.iter()
    }
}

/// The method options of one pool the table reads; `None` for an option the pool
/// does not define, which reads as unset everywhere in it.
struct Options {
    required_scope: Option<ExtensionDescriptor>,
    success_status: Option<ExtensionDescriptor>,
    http: Option<ExtensionDescriptor>,
}

impl Options {
    fn of(pool: &DescriptorPool) -> Self {
        Self {
            required_scope: pool.get_extension_by_name(REQUIRED_SCOPE),
            success_status: pool.get_extension_by_name(HTTP_SUCCESS_STATUS),
            http: pool.get_extension_by_name(HTTP_RULE),
        }
    }

    fn read(&self, descriptor: MethodDescriptor, guarded: bool) -> Result<Method, String> {
        let options = descriptor.options();
        let set = |extension: &Option<ExtensionDescriptor>| {
            extension.as_ref().filter(|e| options.has_extension(e)).map(|e| options.get_extension(e).into_owned())
        };
        let access = match (guarded, set(&self.required_scope)) {
            (false, _) => Access::Open,
            (true, Some(Value::String(scope))) if !scope.is_empty() => Access::Scope(scope.into()),
            (true, _) => Access::Closed,
        };
        let success_status = match set(&self.success_status) {
            None => StatusCode::OK,
            Some(Value::I32(code)) => u16::try_from(code)
                .ok()
                .and_then(|code| StatusCode::from_u16(code).ok())
                .filter(StatusCode::is_success)
                .ok_or_else(|| format!("http_success_status {code} is not a 2xx status"))?,
            Some(other) => return Err(format!("http_success_status is {other:?}")),
        };
        let http_rules = match set(&self.http) {
            Some(Value::Message(rule)) => http_rules(&rule)?,
            _ => Vec::new(),
        };
        let streaming = match (descriptor.is_client_streaming(), descriptor.is_server_streaming()) {
            (false, false) => Streaming::Unary,
            (false, true) => Streaming::ServerStreaming,
            (true, false) => Streaming::ClientStreaming,
            (true, true) => Streaming::Bidirectional,
        };
        Ok(Method {
            path: format!("/{}/{}", descriptor.parent_service().full_name(), descriptor.name()),
            input: descriptor.input(),
            output: descriptor.output(),
            class: class_of(&options),
            descriptor,
            access,
            streaming,
            http_rules,
            success_status,
        })
    }
}

/// A read declares `idempotency_level = NO_SIDE_EFFECTS`; anything else may write.
fn class_of(options: &DynamicMessage) -> Class {
    let Some(field) = options.descriptor().get_field_by_name("idempotency_level") else { return Class::Write };
    let Value::EnumNumber(level) = *options.get_field(&field).as_ref() else { return Class::Write };
    match field.kind() {
        Kind::Enum(levels) if levels.get_value(level).is_some_and(|value| value.name() == READ_LEVEL) => Class::Read,
        _ => Class::Write,
    }
}

/// The rule and its `additional_bindings` (which may not nest further).
fn http_rules(rule: &DynamicMessage) -> Result<Vec<HttpRule>, String> {
    let mut rules = vec![http_rule(rule)?];
    if let Some(Value::List(more)) = rule.get_field_by_name("additional_bindings").map(|v| v.into_owned()) {
        for binding in more {
            if let Value::Message(binding) = binding {
                rules.push(http_rule(&binding)?);
            }
        }
    }
    Ok(rules)
}

fn http_rule(rule: &DynamicMessage) -> Result<HttpRule, String> {
    let (method, template) = ["get", "put", "post", "delete", "patch"]
        .iter()
        .find(|verb| rule.has_field_by_name(verb))
        .map(|verb| (verb.to_uppercase(), text(rule, verb)))
        .or_else(|| match rule.get_field_by_name("custom").map(|v| v.into_owned()) {
            Some(Value::Message(custom)) => Some((text(&custom, "kind"), text(&custom, "path"))),
            _ => None,
        })
        .ok_or("http rule without a pattern")?;
    let method = http::Method::from_bytes(method.as_bytes()).map_err(|e| e.to_string())?;
    let optional = |name: &str| Some(text(rule, name)).filter(|value| !value.is_empty());
    Ok(HttpRule { method, template, body: optional("body"), response_body: optional("response_body") })
}

fn text(message: &DynamicMessage, name: &str) -> String {
    match message.get_field_by_name(name).map(|v| v.into_owned()) {
        Some(Value::String(s)) => s,
        _ => String::new(),
    }
}
