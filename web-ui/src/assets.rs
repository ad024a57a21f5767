//! Static assets, embedded in the binary so the controller is a single file to install.

use axum::http::header;
use axum::response::IntoResponse;

/// The one stylesheet: hand-written, system fonts only, no external requests.
const APP_CSS: &str = include_str!("../static/app.css");

/// `GET /static/app.css`
pub(crate) async fn stylesheet() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            // Not fingerprinted: keep the cache short so an upgrade shows up soon.
            (header::CACHE_CONTROL, "public, max-age=300"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        APP_CSS,
    )
}

/// The one script: live logs (EventSource), config reveal and the CPU/memory charts.
const APP_JS: &str = include_str!("../static/app.js");

/// `GET /static/app.js`
pub(crate) async fn script() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=300"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        APP_JS,
    )
}
