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

/// The nav bar of a logged-in viewer, for pages rendered outside their handler (errors).
#[derive(Debug, Clone)]
pub(crate) struct Nav {
    pub(crate) user: String,
    pub(crate) csrf: String,
    pub(crate) admin: bool,
}

/// The error page, inside the layout: a title, what happened and what to do; the nav bar
/// (user, Nodes link for admins, logout) with a session, a "Log in" link without one.
#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    title: String,
    message: String,
    logged_in: bool,
    user: String,
    csrf: String,
    admin: bool,
}

/// What an error page says. It rides on the response as an extension, so the layout
/// middleware (`layout.rs`), which knows the viewer, can render it again with their nav.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ErrorInfo {
    pub(crate) title: String,
    pub(crate) message: String,
}

impl ErrorInfo {
    pub(crate) fn new(title: &str, message: impl Into<String>) -> ErrorInfo {
        ErrorInfo {
            title: title.to_string(),
            message: message.into(),
        }
    }

    /// The page with `status`, in the layout of `nav`'s viewer (or of nobody).
    pub(crate) fn response(self, status: StatusCode, nav: Option<Nav>) -> Response {
        let (logged_in, user, csrf, admin) = match nav {
            Some(n) => (true, n.user, n.csrf, n.admin),
            None => (false, String::new(), String::new(), false),
        };
        let page = ErrorPage {
            title: self.title.clone(),
            message: self.message.clone(),
            logged_in,
            user,
            csrf,
            admin,
        };
        let mut response = (status, Page(page)).into_response();
        response.extensions_mut().insert(self);
        response
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let (status, info) = match &self {
            PageError::AppNotFound { name } => (
                StatusCode::NOT_FOUND,
                ErrorInfo::new(
                    "App not found",
                    format!(
                        "There is no app named “{name}” that you can see. It may have been \
                         deleted or renamed, the name may be misspelled, or you may not be \
                         one of its collaborators (an admin can add you). Pick it from the \
                         list of apps."
                    ),
                ),
            ),
            PageError::NotFound { what } => (
                StatusCode::NOT_FOUND,
                ErrorInfo::new("Not found", format!("There is no {what}.")),
            ),
            PageError::Forbidden { message } => (
                StatusCode::FORBIDDEN,
                ErrorInfo::new("Not allowed", message.clone()),
            ),
            PageError::Csrf => (
                StatusCode::FORBIDDEN,
                ErrorInfo::new(
                    "Form expired",
                    "The form was not sent from this dashboard session (its CSRF token does \
                     not match). Reload the page and try again.",
                ),
            ),
            PageError::Backend { .. } | PageError::Render { .. } => {
                // Logged in full here; the page itself does not leak internal detail.
                tracing::error!(error = %self, "dashboard page failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    ErrorInfo::new(
                        "Something went wrong",
                        "The dashboard could not load this page. Try again in a moment; the \
                         controller log has the details.",
                    ),
                )
            }
        };
        info.response(status, None)
    }
}
