//! Error pages inside the dashboard's layout, so a user who lands on one is never stuck:
//! with a session the nav bar shows the apps (and nodes) links, the user and the logout
//! button; without one, a "Log in" link.
//!
//! [`errors_in_layout`] wraps every dashboard route. A [`PageError`](crate::render::PageError)
//! response carries its [`ErrorInfo`]; the middleware renders that again with the
//! viewer's nav. Error answers that are not dashboard pages (axum's own rejections: a form
//! that does not parse, a path that does not fit, a GET on a form's address) become a page
//! that says what is wrong and what to do. HTML pages with their own message (a form's
//! error next to its field, the login form's 401 or 429) pass untouched. [`not_found`] is
//! the server-wide fallback for paths nothing answers.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::render::{ErrorInfo, Nav};
use crate::session::{self, Session};
use crate::Dashboard;

/// How much of a rejection's text is read to say what was wrong.
const DETAIL_BYTES: usize = 4096;

/// The nav bar of the request's session, when it has a valid one whose user still exists.
pub(crate) async fn nav_for<D: Dashboard>(d: &D, headers: &HeaderMap) -> Option<Nav> {
    let value = session::cookie(headers, session::COOKIE)?;
    let s = Session::decode(value, &d.session_key())?;
    match d.user(&s.user).await {
        Ok(Some(user)) => Some(Nav {
            user: user.name,
            csrf: s.csrf,
            admin: user.admin,
        }),
        Ok(None) => None,
        Err(e) => {
            tracing::warn!(error = %e, "the error page could not look up the session's user");
            None
        }
    }
}

fn is_html(response: &Response) -> bool {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"))
}

/// Middleware: error answers of the dashboard's routes as pages in the viewer's layout.
pub(crate) async fn errors_in_layout<D: Dashboard>(
    State(d): State<Arc<D>>,
    request: Request,
    next: Next,
) -> Response {
    let headers = request.headers().clone();
    let path = request.uri().path().to_string();
    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let info = match response.extensions().get::<ErrorInfo>() {
        Some(info) => info.clone(),
        None if is_html(&response) => return response,
        None => {
            let body = axum::body::to_bytes(response.into_body(), DETAIL_BYTES)
                .await
                .unwrap_or_default();
            rejection(status, &path, String::from_utf8_lossy(&body).trim())
        }
    };
    info.response(status, nav_for(&*d, &headers).await)
}

/// What a bare error answer (no dashboard page) means to the person who got it.
fn rejection(status: StatusCode, path: &str, detail: &str) -> ErrorInfo {
    let detail: String = detail.chars().take(300).collect();
    match status {
        StatusCode::NOT_FOUND => not_found_info(path),
        StatusCode::METHOD_NOT_ALLOWED => ErrorInfo::new(
            "Not a page",
            format!(
                "{path} only takes forms sent from the dashboard's pages, not a visit. Open \
                 the page the form is on and use it there."
            ),
        ),
        StatusCode::BAD_REQUEST
        | StatusCode::UNPROCESSABLE_ENTITY
        | StatusCode::UNSUPPORTED_MEDIA_TYPE
        | StatusCode::PAYLOAD_TOO_LARGE => ErrorInfo::new(
            "Bad request",
            format!(
                "The dashboard could not read what the browser sent to {path}{}. Go back, \
                 reload the page and send the form again.",
                if detail.is_empty() {
                    String::new()
                } else {
                    format!(" ({detail})")
                }
            ),
        ),
        s if s.is_server_error() => {
            tracing::error!(
                status = s.as_u16(),
                path,
                detail,
                "dashboard request failed"
            );
            ErrorInfo::new(
                "Something went wrong",
                "The dashboard could not answer this request. Try again in a moment; the \
                 controller log has the details.",
            )
        }
        s => ErrorInfo::new(
            "Request refused",
            format!(
                "The dashboard refused this request ({}). Go back to the list of apps and \
                 try again from there.",
                s.as_u16()
            ),
        ),
    }
}

fn not_found_info(path: &str) -> ErrorInfo {
    ErrorInfo::new(
        "Not found",
        format!(
            "There is no page at {path}. Check the address, or start again from the list \
             of apps."
        ),
    )
}

/// The fallback: a "not found" page in the layout for browsers, a bare 404 for clients
/// that do not ask for HTML (API, git, registry).
pub(crate) async fn not_found<D: Dashboard>(State(d): State<Arc<D>>, request: Request) -> Response {
    let wants_html = request
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"));
    if !wants_html {
        return StatusCode::NOT_FOUND.into_response();
    }
    not_found_info(request.uri().path())
        .response(StatusCode::NOT_FOUND, nav_for(&*d, request.headers()).await)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejections_say_what_is_wrong_and_what_to_do() {
        let bad = rejection(
            StatusCode::UNPROCESSABLE_ENTITY,
            "/apps/x/rollback",
            "Failed to deserialize form body: version: invalid digit found in string",
        );
        assert_eq!(bad.title, "Bad request");
        assert!(bad.message.contains("invalid digit"), "{}", bad.message);
        assert!(
            bad.message.contains("send the form again"),
            "{}",
            bad.message
        );
        let get = rejection(StatusCode::METHOD_NOT_ALLOWED, "/apps/x/scale", "");
        assert!(get.message.starts_with("/apps/x/scale only takes forms"));
        let broken = rejection(StatusCode::BAD_GATEWAY, "/", "secret detail");
        assert!(!broken.message.contains("secret"), "{}", broken.message);
    }
}
