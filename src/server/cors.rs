//! CORS for browsers: the configured origins checked once at start, and the layer
//! that answers preflights and marks every answer for them.
//!
//! `*` alone allows any origin without credentials, which suits a bearer-token API:
//! the token travels in `Authorization`, which a page can only send if it holds the
//! token, so no cookie or ambient credential is ever exposed to another site.

use std::time::Duration;

use anyhow::bail;
use http::{HeaderName, HeaderValue, Method, header};
use tower_http::cors::{AllowOrigin, CorsLayer};

/// Browsers may send these on gRPC-web and REST calls.
const ALLOWED_HEADERS: [HeaderName; 7] = [
    header::AUTHORIZATION,
    header::CONTENT_TYPE,
    HeaderName::from_static("x-grpc-web"),
    HeaderName::from_static("x-user-agent"),
    HeaderName::from_static("grpc-timeout"),
    HeaderName::from_static("traceparent"),
    HeaderName::from_static("tracestate"),
];
/// gRPC-web clients read the status from these; REST clients read the challenge.
const EXPOSED_HEADERS: [HeaderName; 5] = [
    HeaderName::from_static("grpc-status"),
    HeaderName::from_static("grpc-message"),
    HeaderName::from_static("grpc-status-details-bin"),
    header::WWW_AUTHENTICATE,
    header::RETRY_AFTER,
];

/// The CORS layer for `origins` (`AUDIT_CORS_ORIGINS`), or why they cannot be used:
/// `*` alone, or origins as browsers send them (`scheme://host[:port]`). An empty
/// list allows no origin.
pub fn layer(origins: &[String]) -> anyhow::Result<CorsLayer> {
    let allow = allow_origin(origins)?;
    // No `allow_credentials`: a wildcard must not come with it, and tokens are not
    // credentials in the CORS sense (they are sent explicitly).
    Ok(CorsLayer::new()
        .allow_origin(allow)
        .allow_methods([Method::GET, Method::POST])
        .allow_headers(ALLOWED_HEADERS)
        .expose_headers(EXPOSED_HEADERS)
        .max_age(Duration::from_secs(600)))
}

fn allow_origin(origins: &[String]) -> anyhow::Result<AllowOrigin> {
    if origins.iter().any(|origin| origin == "*") {
        if origins.len() > 1 {
            bail!("AUDIT_CORS_ORIGINS: `*` allows every origin and cannot be combined with other origins");
        }
        return Ok(AllowOrigin::any());
    }
    let list = origins.iter().map(|origin| parse_origin(origin)).collect::<anyhow::Result<Vec<_>>>()?;
    Ok(AllowOrigin::list(list))
}

/// One origin exactly as a browser's `Origin` header spells it; anything else could
/// never match, so it is refused rather than silently allowing nothing.
fn parse_origin(text: &str) -> anyhow::Result<HeaderValue> {
    let refuse = |why: &str| anyhow::anyhow!("AUDIT_CORS_ORIGINS: {text:?} is not an origin: {why}");
    let uri: http::Uri = text.parse().map_err(|_| refuse("expected scheme://host[:port]"))?;
    let (Some(scheme), Some(authority)) = (uri.scheme(), uri.authority()) else {
        return Err(refuse("expected scheme://host[:port]"));
    };
    if authority.as_str().contains('@') {
        return Err(refuse("no user information is allowed"));
    }
    if !valid_host(authority.host()) {
        return Err(refuse("the host is not a host name or IP address"));
    }
    // Read here: the URI parser quietly drops a port it cannot read.
    let port = authority.as_str().strip_prefix(authority.host()).unwrap_or_default();
    if !port.is_empty()
        && port
            .strip_prefix(':')
            .filter(|p| p.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|p| p.parse::<u16>().ok())
            .is_none_or(|p| p == 0)
    {
        return Err(refuse("the port must be 1 to 65535"));
    }
    if text.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(refuse("browsers send origins in lowercase"));
    }
    if text != format!("{scheme}://{authority}") {
        return Err(refuse("an origin has no path (not even a trailing `/`), query or fragment"));
    }
    Ok(HeaderValue::from_str(text)?)
}

fn valid_host(host: &str) -> bool {
    match host.strip_prefix('[').and_then(|rest| rest.strip_suffix(']')) {
        Some(ipv6) => ipv6.parse::<std::net::Ipv6Addr>().is_ok(),
        None => !host.is_empty() && host.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_')),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origins(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn origins_as_browsers_send_them_are_accepted() {
        for good in ["https://admin.example.com", "http://localhost:5173", "http://127.0.0.1:8080", "http://[::1]:3000"]
        {
            assert!(parse_origin(good).is_ok(), "{good}");
        }
        assert!(layer(&origins(&["*"])).is_ok());
        assert!(layer(&[]).is_ok());
    }

    #[test]
    fn anything_that_is_not_an_origin_is_refused_with_the_reason() {
        let cases = [
            ("https://admin.example.com/", "no path"),
            ("https://admin.example.com/app", "no path"),
            ("https://admin.example.com?x=1", "no path"),
            ("admin.example.com", "scheme://host"),
            ("localhost:5173", "scheme://host"),
            ("https://user@admin.example.com", "user information"),
            ("https://admin.example.com:99999", "port"),
            ("https://admin.example.com:0", "port"),
            ("https://Admin.example.com", "lowercase"),
            ("null", "scheme://host"),
            ("https://*.example.com", "host"),
        ];
        for (bad, why) in cases {
            let error = layer(&origins(&[bad])).expect_err(bad).to_string();
            assert!(error.contains("AUDIT_CORS_ORIGINS") && error.contains(why), "{bad}: {error}");
        }
    }

    #[test]
    fn a_wildcard_stands_alone() {
        let error = layer(&origins(&["*", "https://admin.example.com"])).unwrap_err().to_string();
        assert!(error.contains("cannot be combined"), "{error}");
        assert!(layer(&origins(&["https://admin.example.com", "*"])).is_err());
    }
}
