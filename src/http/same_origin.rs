//! Cross-site request refusal for the operator listener.
//!
//! The operator listener authenticates with HTTP basic auth (or a bearer
//! token), which a browser attaches to every request to the host by itself,
//! whichever page makes it. So a page on any origin could have a logged-in
//! operator's browser POST `/api/admin/items/{id}/sync`. Two checks stop it:
//!
//! - [`refuse_cross_site`]: a state-changing request (any method but GET,
//!   HEAD, OPTIONS) whose `Sec-Fetch-Site` says another site or origin, or
//!   whose `Origin` is not this listener's own (`Host`), is a 403. Requests
//!   without either header (curl, scripts, the CLI) are not from a browser
//!   page and pass.
//! - [`require_json`]: our state-changing routes take `application/json`
//!   only (415 otherwise). A cross-site page can send a form or `text/plain`
//!   without asking, but not JSON: that needs a CORS preflight, which this
//!   listener never grants.

use axum::{
    extract::Request,
    http::{HeaderMap, Method, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};

use super::error::AppError;

/// Middleware: 403 for a state-changing request from another site or origin.
pub async fn refuse_cross_site(request: Request, next: Next) -> Response {
    if changes_state(request.method())
        && let Some(reason) = cross_site(request.headers())
    {
        return AppError::status(
            StatusCode::FORBIDDEN,
            "cross_site_request",
            format!("{reason}: operator actions are only accepted from the operator listener's own pages"),
        )
        .into_response();
    }
    next.run(request).await
}

/// Middleware: 415 for a state-changing request whose body is not declared
/// `application/json` (an empty body with that type is fine).
pub async fn require_json(request: Request, next: Next) -> Response {
    if changes_state(request.method()) && !declares_json(request.headers()) {
        return AppError::status(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "json_required",
            "send Content-Type: application/json (the body may be empty)",
        )
        .into_response();
    }
    next.run(request).await
}

fn changes_state(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

fn declares_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|media| media.trim().eq_ignore_ascii_case("application/json"))
}

/// Why the request comes from another site or origin, if it does.
fn cross_site(headers: &HeaderMap) -> Option<&'static str> {
    let text = |name: &str| headers.get(name).map(|v| v.to_str().unwrap_or("\u{fffd}"));
    // Sent by every current browser; "none" is the user's own navigation.
    if let Some(site) = text("sec-fetch-site")
        && !matches!(site, "same-origin" | "none")
    {
        return Some("Sec-Fetch-Site is not same-origin");
    }
    if let Some(origin) = text("origin") {
        let authority = origin
            .strip_prefix("http://")
            .or_else(|| origin.strip_prefix("https://"));
        let same = match (authority, text("host")) {
            (Some(authority), Some(host)) => authority.eq_ignore_ascii_case(host),
            _ => false,
        };
        if !same {
            return Some("Origin is not this listener");
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn same_origin_and_non_browser_requests_pass() {
        assert_eq!(cross_site(&headers(&[])), None, "curl sends neither header");
        assert_eq!(cross_site(&headers(&[("host", "127.0.0.1:8081")])), None);
        assert_eq!(
            cross_site(&headers(&[
                ("host", "127.0.0.1:8081"),
                ("origin", "http://127.0.0.1:8081"),
                ("sec-fetch-site", "same-origin"),
            ])),
            None
        );
        assert_eq!(
            cross_site(&headers(&[
                ("host", "OPS.example:443"),
                ("origin", "https://ops.example:443")
            ])),
            None
        );
    }

    #[test]
    fn other_sites_origins_and_ports_are_refused() {
        for case in [
            headers(&[("host", "127.0.0.1:8081"), ("origin", "http://evil.example")]),
            headers(&[("host", "127.0.0.1:8081"), ("origin", "http://127.0.0.1:8080")]),
            headers(&[("host", "127.0.0.1:8081"), ("origin", "null")]),
            headers(&[("origin", "http://127.0.0.1:8081")]),
            headers(&[("host", "127.0.0.1:8081"), ("sec-fetch-site", "cross-site")]),
            headers(&[("host", "127.0.0.1:8081"), ("sec-fetch-site", "same-site")]),
        ] {
            assert!(cross_site(&case).is_some(), "{case:?}");
        }
    }

    #[test]
    fn json_is_recognised_with_parameters_and_in_any_case() {
        assert!(declares_json(&headers(&[("content-type", "application/json")])));
        assert!(declares_json(&headers(&[(
            "content-type",
            "Application/JSON; charset=utf-8"
        )])));
        assert!(!declares_json(&headers(&[(
            "content-type",
            "application/x-www-form-urlencoded"
        )])));
        assert!(!declares_json(&headers(&[("content-type", "text/plain")])));
        assert!(!declares_json(&headers(&[])));
    }
}
