//! `google.api.http` path templates: parsing at start-up, matching per request.
//!
//! Grammar (from the HttpRule documentation):
//! `"/" Segment {"/" Segment} [":" Verb]`, where a segment is a literal, `*`, `**`
//! or a variable `{field.path}` / `{field.path=segments}`.

use percent_encoding::percent_decode_str;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    /// `*`: exactly one path segment.
    One,
    /// `**`: the rest of the path, zero or more segments; only last.
    Rest,
}

/// A variable binds the request segments `start..end` of the pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Variable {
    field_path: String,
    start: usize,
    end: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathTemplate {
    segments: Vec<Segment>,
    variables: Vec<Variable>,
    verb: Option<String>,
    source: String,
}

impl PathTemplate {
    pub fn parse(template: &str) -> Result<Self, String> {
        let rest = template.strip_prefix('/').ok_or_else(|| format!("template {template:?} must start with '/'"))?;
        // The verb is after the last ':' outside braces.
        let (body, verb) = match rest.rfind(':') {
            Some(colon) if !rest[colon..].contains('}') => (&rest[..colon], Some(rest[colon + 1..].to_owned())),
            _ => (rest, None),
        };
        let mut segments = Vec::new();
        let mut variables = Vec::new();
        let mut chars = body;
        while !chars.is_empty() {
            if let Some(inner) = chars.strip_prefix('{') {
                let close = inner.find('}').ok_or_else(|| format!("unclosed '{{' in {template:?}"))?;
                let (field_path, pattern) = match inner[..close].split_once('=') {
                    Some((field, pattern)) => (field, pattern),
                    None => (&inner[..close], "*"),
                };
                let start = segments.len();
                for part in pattern.split('/') {
                    segments.push(parse_plain(part, template)?);
                }
                variables.push(Variable { field_path: field_path.to_owned(), start, end: segments.len() });
                chars = &inner[close + 1..];
            } else {
                let end = chars.find('/').unwrap_or(chars.len());
                segments.push(parse_plain(&chars[..end], template)?);
                chars = &chars[end..];
            }
            chars = match chars.strip_prefix('/') {
                Some("") => return Err(format!("trailing '/' in {template:?}")),
                Some(next) => next,
                None if chars.is_empty() => chars,
                None => return Err(format!("unexpected text after a variable in {template:?}")),
            };
        }
        if segments.iter().rev().skip(1).any(|s| *s == Segment::Rest) {
            return Err(format!("'**' must be the last segment in {template:?}"));
        }
        if verb.as_deref().is_some_and(str::is_empty) {
            return Err(format!("empty verb in {template:?}"));
        }
        Ok(Self { segments, variables, verb, source: template.to_owned() })
    }

    /// The field paths bound by this template's variables.
    pub fn variable_fields(&self) -> impl Iterator<Item = &str> {
        self.variables.iter().map(|v| v.field_path.as_str())
    }

    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Whether the template ends in a custom verb (`:summary`).
    pub fn has_verb(&self) -> bool {
        self.verb.is_some()
    }

    /// Matches a raw (still percent-encoded) request path; on success returns each
    /// variable's field path with its decoded value.
    pub fn matches(&self, path: &str) -> Option<Vec<(String, String)>> {
        let path = path.strip_prefix('/')?;
        let path = match &self.verb {
            Some(verb) => path.strip_suffix(verb.as_str())?.strip_suffix(':')?,
            None => path,
        };
        let parts: Vec<&str> = if path.is_empty() { Vec::new() } else { path.split('/').collect() };
        // Where each pattern segment's match ends in `parts`.
        let mut ends = Vec::with_capacity(self.segments.len());
        let mut at = 0;
        for segment in &self.segments {
            match segment {
                Segment::Literal(literal) => {
                    if parts.get(at) != Some(&literal.as_str()) {
                        return None;
                    }
                    at += 1;
                }
                Segment::One => {
                    if parts.get(at).is_none_or(|p| p.is_empty()) {
                        return None;
                    }
                    at += 1;
                }
                Segment::Rest => at = parts.len(),
            }
            ends.push(at);
        }
        if at != parts.len() {
            return None;
        }
        let mut bindings = Vec::with_capacity(self.variables.len());
        for variable in &self.variables {
            let from = if variable.start == 0 { 0 } else { ends[variable.start - 1] };
            let to = ends[variable.end - 1];
            let decoded: Option<Vec<String>> = parts[from..to]
                .iter()
                .map(|p| percent_decode_str(p).decode_utf8().ok().map(|s| s.into_owned()))
                .collect();
            bindings.push((variable.field_path.clone(), decoded?.join("/")));
        }
        Some(bindings)
    }
}

fn parse_plain(part: &str, template: &str) -> Result<Segment, String> {
    match part {
        "*" => Ok(Segment::One),
        "**" => Ok(Segment::Rest),
        "" => Err(format!("empty segment in {template:?}")),
        literal if literal.contains(['{', '}', '*', '=']) => Err(format!("bad segment {literal:?} in {template:?}")),
        literal => Ok(Segment::Literal(literal.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn custom_verb_matches_only_with_its_verb() {
        let t = PathTemplate::parse("/v1/audit/events:summary").unwrap();
        assert_eq!(t.matches("/v1/audit/events:summary"), Some(vec![]));
        assert_eq!(t.matches("/v1/audit/events"), None);
        assert_eq!(t.matches("/v1/audit/events:batchCreate"), None);
        assert_eq!(t.matches("/v1/audit/events:summary/"), None);
    }

    #[test]
    fn variables_bind_decoded_segments() {
        let t = PathTemplate::parse("/v1/orgs/{organization_id}/events/{event.id}:get").unwrap();
        assert_eq!(
            t.matches("/v1/orgs/org%201/events/e-7:get"),
            Some(vec![("organization_id".into(), "org 1".into()), ("event.id".into(), "e-7".into())])
        );
        assert_eq!(t.matches("/v1/orgs//events/e-7:get"), None);
    }

    #[test]
    fn multi_segment_variables_and_double_wildcard() {
        let t = PathTemplate::parse("/v1/{name=orgs/*/events/**}").unwrap();
        assert_eq!(t.matches("/v1/orgs/a/events/x/y"), Some(vec![("name".into(), "orgs/a/events/x/y".into())]));
        assert_eq!(t.matches("/v1/orgs/a/other/x"), None);
    }

    #[test]
    fn malformed_templates_are_refused() {
        for bad in ["v1/x", "/v1/{x", "/v1//x", "/v1/**/x", "/v1/x:", "/v1/x/"] {
            assert!(PathTemplate::parse(bad).is_err(), "{bad}");
        }
    }
}
