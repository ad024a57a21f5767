//! Turning templates into HTTP responses: the [`Page`] wrapper every handler returns, and
//! [`PageError`], which becomes a friendly error page.

use askama::Template;
use axum::http::{header, HeaderName, StatusCode};
use axum::response::{Html, IntoResponse, Response};

/// Headers on every HTML page. Scripts and styles come only from `/static/` (no inline
/// code, nothing from other origins); `connect-src 'self'` lets the page's script read the
/// live log stream and the chart data.
const SECURITY_HEADERS: [(HeaderName, &str); 3] = [
    (
        header::CONTENT_SECURITY_POLICY,
        "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; \
         img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    ),
    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    (header::REFERRER_POLICY, "same-origin"),
];

/// A rendered template as an HTML response (status 200; pair it with a status code in a
/// tuple for anything else). Askama escapes every `{{ value }}` for HTML.
pub(crate) struct Page<T>(pub T);

impl<T: Template> IntoResponse for Page<T> {
    fn into_response(self) -> Response {
        match self.0.render() {
            Ok(html) => (SECURITY_HEADERS, Html(html)).into_response(),
            Err(source) => {
                let err = PageError::Render { source };
                tracing::error!(error = %err, "dashboard page failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "The dashboard could not show this page. The controller log has the details.",
                )
                    .into_response()
            }
        }
    }
}

/// Why a page could not be shown.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PageError {
    /// The controller's [`crate::Dashboard`] returned an error.
    #[error("the dashboard could not {action}: {message}")]
    Backend {
        action: &'static str,
        message: String,
    },
    /// `/apps/{name}` for an app that does not exist.
    #[error("no app named {name:?}")]
    AppNotFound { name: String },
    /// A page or build that does not exist.
    #[error("not found: {what}")]
    NotFound { what: String },
    /// The viewer may not see this page (members on the nodes page).
    #[error("forbidden: {message}")]
    Forbidden { message: String },
    /// A form without the session's CSRF token.
    #[error("the form's CSRF token does not match the session")]
    Csrf,
    /// A template failed to render (a bug in a template or its data).
    #[error("could not render a dashboard template: {source}")]
    Render { source: askama::Error },
}

/// The error page: a title, one sentence on what happened and what to do.
#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    title: &'a str,
    message: String,
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let (status, page) = match &self {
            PageError::AppNotFound { name } => (
                StatusCode::NOT_FOUND,
                ErrorPage {
                    title: "App not found",
                    message: format!(
                        "There is no app named “{name}”. It may have been deleted, or the \
                         name may be misspelled."
                    ),
                },
            ),
            PageError::NotFound { what } => (
                StatusCode::NOT_FOUND,
                ErrorPage {
                    title: "Not found",
                    message: format!("There is no {what}."),
                },
            ),
            PageError::Forbidden { message } => (
                StatusCode::FORBIDDEN,
                ErrorPage {
                    title: "Not allowed",
                    message: message.clone(),
                },
            ),
            PageError::Csrf => (
                StatusCode::FORBIDDEN,
                ErrorPage {
                    title: "Form expired",
                    message: "The form was not sent from this dashboard session (its CSRF \
                              token does not match). Reload the page and try again."
                        .to_string(),
                },
            ),
            PageError::Backend { .. } | PageError::Render { .. } => {
                // Logged in full here; the page itself does not leak internal detail.
                tracing::error!(error = %self, "dashboard page failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    ErrorPage {
                        title: "Something went wrong",
                        message: "The dashboard could not load this page. Try again in a \
                                  moment; the controller log has the details."
                            .to_string(),
                    },
                )
            }
        };
        (status, Page(page)).into_response()
    }
}
