//! The browser dashboard at `GET /`: the assets `web/` builds (committed in `web/dist`, embedded here so the
//! binary needs no web server or files beside it), and in demo mode the read-only token the page pre-fills.

use std::sync::LazyLock;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Response, StatusCode, header};

/// Only the page's own files and its own gRPC-web calls; no inline script or style, no framing, no plugins.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
     connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'; \
     require-trusted-types-for 'script'; trusted-types 'none'";
/// Assets keep fixed names, so browsers revalidate each load (cheap: the ETag answers 304).
const REVALIDATE: &str = "no-cache";

struct Asset {
    path: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

const ASSETS: [Asset; 4] = [
    Asset { path: "/", content_type: "text/html; charset=utf-8", body: include_bytes!("../web/dist/index.html") },
    Asset {
        path: "/assets/app.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../web/dist/assets/app.js"),
    },
    Asset {
        path: "/assets/app.css",
        content_type: "text/css; charset=utf-8",
        body: include_bytes!("../web/dist/assets/app.css"),
    },
    Asset { path: "/favicon.svg", content_type: "image/svg+xml", body: include_bytes!("../web/dist/favicon.svg") },
];

/// A strong ETag per asset, from its bytes: a new build of the binary changes exactly the changed files' tags.
static ETAGS: LazyLock<Vec<HeaderValue>> = LazyLock::new(|| {
    ASSETS
        .iter()
        .map(|asset| {
            HeaderValue::from_str(&format!("\"{:016x}\"", fnv1a(asset.body))).expect("hex digits are a valid header")
        })
        .collect()
});

/// Serves the dashboard's GET routes; every other path stays with the REST gateway.
#[derive(Debug, Clone, Default)]
pub struct Dashboard {
    demo_token: Option<String>,
}

impl Dashboard {
    /// `demo_token` is offered at `GET /demo-token` when set; without it that path does not exist (404).
    pub fn new(demo_token: Option<String>) -> Self {
        Self { demo_token }
    }

    /// Whether `GET path` is the dashboard's.
    pub fn serves(&self, path: &str) -> bool {
        (path == "/demo-token" && self.demo_token.is_some()) || ASSETS.iter().any(|asset| asset.path == path)
    }

    /// The answer to `GET path`, for a path that [`Dashboard::serves`].
    pub fn get(&self, path: &str, request_headers: &HeaderMap) -> Response<Bytes> {
        if path == "/demo-token"
            && let Some(token) = &self.demo_token
        {
            let body = serde_json::json!({ "token": token }).to_string();
            // A credential: never cached, by the browser or anything in between.
            return respond(StatusCode::OK, Bytes::from(body), "application/json", "no-store", None);
        }
        let Some(index) = ASSETS.iter().position(|asset| asset.path == path) else {
            return respond(StatusCode::NOT_FOUND, Bytes::new(), "text/plain; charset=utf-8", "no-store", None);
        };
        let asset = &ASSETS[index];
        let etag = &ETAGS[index];
        if matches_etag(request_headers, etag) {
            return respond(StatusCode::NOT_MODIFIED, Bytes::new(), asset.content_type, REVALIDATE, Some(etag));
        }
        respond(StatusCode::OK, Bytes::from_static(asset.body), asset.content_type, REVALIDATE, Some(etag))
    }
}

fn respond(
    status: StatusCode,
    body: Bytes,
    content_type: &'static str,
    cache_control: &'static str,
    etag: Option<&HeaderValue>,
) -> Response<Bytes> {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache_control));
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert("cross-origin-opener-policy", HeaderValue::from_static("same-origin"));
    headers.insert("cross-origin-resource-policy", HeaderValue::from_static("same-origin"));
    if let Some(etag) = etag {
        headers.insert(header::ETAG, etag.clone());
    }
    response
}

/// `If-None-Match` holds a list of tags (weak ones compare equal by the weak rule of RFC 9110 §13.1.2) or `*`.
fn matches_etag(headers: &HeaderMap, etag: &HeaderValue) -> bool {
    let ours = etag.as_bytes();
    let matches = |tag: &str| {
        let tag = tag.trim();
        tag == "*" || tag.strip_prefix("W/").unwrap_or(tag).as_bytes() == ours
    };
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(matches)
}

/// FNV-1a, 64 bits: enough to tell builds apart, and no dependency for it.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &byte| (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header<'a>(response: &'a Response<Bytes>, name: &str) -> &'a str {
        response.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or_default()
    }

    #[test]
    fn serves_the_page_with_a_strict_policy() {
        let dashboard = Dashboard::default();
        assert!(dashboard.serves("/") && dashboard.serves("/assets/app.js") && dashboard.serves("/assets/app.css"));
        let page = dashboard.get("/", &HeaderMap::new());
        assert_eq!(page.status(), StatusCode::OK);
        assert_eq!(header(&page, "content-type"), "text/html; charset=utf-8");
        assert!(header(&page, "content-security-policy").contains("script-src 'self';"));
        assert!(!header(&page, "content-security-policy").contains("unsafe"));
        assert_eq!(header(&page, "cache-control"), "no-cache");
        assert!(std::str::from_utf8(page.body()).unwrap().contains(r#"src="/assets/app.js""#));
        assert_eq!(
            header(&dashboard.get("/assets/app.js", &HeaderMap::new()), "content-type"),
            "text/javascript; charset=utf-8"
        );
        assert_eq!(
            header(&dashboard.get("/assets/app.css", &HeaderMap::new()), "content-type"),
            "text/css; charset=utf-8"
        );
    }

    #[test]
    fn a_matching_etag_answers_not_modified() {
        let dashboard = Dashboard::default();
        let first = dashboard.get("/assets/app.js", &HeaderMap::new());
        let etag = first.headers()[header::ETAG].clone();
        let mut headers = HeaderMap::new();
        headers.insert(
            header::IF_NONE_MATCH,
            HeaderValue::from_str(&format!("\"x\", W/{}", etag.to_str().unwrap())).unwrap(),
        );
        let again = dashboard.get("/assets/app.js", &headers);
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
        assert!(again.body().is_empty());
        headers.insert(header::IF_NONE_MATCH, HeaderValue::from_static("\"other\""));
        assert_eq!(dashboard.get("/assets/app.js", &headers).status(), StatusCode::OK);
    }

    #[test]
    fn the_demo_token_exists_only_in_demo_mode() {
        assert!(!Dashboard::default().serves("/demo-token"));
        let demo = Dashboard::new(Some("tok.en.x".into()));
        assert!(demo.serves("/demo-token"));
        let answer = demo.get("/demo-token", &HeaderMap::new());
        assert_eq!(answer.status(), StatusCode::OK);
        assert_eq!(header(&answer, "cache-control"), "no-store");
        assert_eq!(answer.body().as_ref(), br#"{"token":"tok.en.x"}"#);
        assert!(!demo.serves("/index.html") && !demo.serves("/v1/audit/events:summary"));
    }
}
