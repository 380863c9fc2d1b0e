//! `GET /`: the status page, one HTML file with its script and style inline
//! (`page.html`, embedded at build time; no CDN, no build step). It reads the token from
//! `?token=` once, keeps it in the tab's `sessionStorage`, removes it from the address bar,
//! and sends it as a bearer header to `/v1/status` and `/v1/circuits` and as `?token=` to
//! `/v1/events` (an `EventSource` cannot set headers). Served with a strict content security
//! policy, no caching and no referrer, so the token does not leave the page.

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

use super::ApiState;

/// The page.
const PAGE_HTML: &str = include_str!("page.html");

/// The page's route.
pub(super) fn routes() -> Router<ApiState> {
    Router::new().route("/", get(page))
}

async fn page() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
            (header::REFERRER_POLICY, "no-referrer"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; \
                 connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; \
                 frame-ancestors 'none'",
            ),
            (header::X_FRAME_OPTIONS, "DENY"),
        ],
        PAGE_HTML,
    )
}
