//! `GET /dashboard`: the monitoring page. Its three files (`dashboard/` in the
//! repository) are embedded in the binary: no CDN, nothing to install; the
//! page fetches the admin JSON routes from the same origin, so the browser's
//! basic-auth login carries over.

use axum::{
    extract::Path,
    http::{HeaderName, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};

use super::error::AppError;

const INDEX: &str = include_str!("../../dashboard/index.html");
const APP_JS: &str = include_str!("../../dashboard/app.js");
const STYLE: &str = include_str!("../../dashboard/style.css");

/// Only our own files run; charts are inline SVG built by the script.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

fn file(content_type: &'static str, body: &'static str) -> Response {
    let headers: [(HeaderName, HeaderValue); 4] = [
        (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
        // Small files; always revalidate so a deploy shows at once.
        (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        (header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP)),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
    ];
    (StatusCode::OK, headers, body).into_response()
}

/// The page.
pub async fn index() -> Response {
    file("text/html; charset=utf-8", INDEX)
}

/// `app.js` and `style.css`.
pub async fn asset(Path(name): Path<String>) -> Result<Response, AppError> {
    match name.as_str() {
        "app.js" => Ok(file("application/javascript; charset=utf-8", APP_JS)),
        "style.css" => Ok(file("text/css; charset=utf-8", STYLE)),
        _ => Err(AppError::NotFound("file")),
    }
}
