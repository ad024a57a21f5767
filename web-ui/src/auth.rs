//! Who is asking and what they may do: the extractors every page and form takes instead of
//! the bare [`Session`] cookie.
//!
//! * [`LoggedIn`]: a valid session whose user the controller still knows
//!   ([`Dashboard::user`], asked on every request so a removed user or a changed role
//!   applies at once). Without one the browser goes to `/login`.
//! * [`AppAuth`]: `LoggedIn` plus the route's `{name}` app, checked with
//!   [`Dashboard::authorize`]`(Need::App)` before the handler runs: the controller answers
//!   with the same check as the REST API (admins, or members collaborating on the app); a
//!   refusal is the 404 page, the same answer as for an app that does not exist.
//! * [`AdminAuth`]: `LoggedIn` plus [`Need::Admin`] (the nodes page); a refusal is 403.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts, RawPathParams};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Redirect, Response};

use crate::render::PageError;
use crate::session::Session;
use crate::{Dashboard, Need, Refusal};

/// The person behind a request, as the controller resolved them, with where the request
/// came from (for the controller's access log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Viewer {
    pub name: String,
    pub admin: bool,
    pub source: Option<IpAddr>,
    /// The request's path.
    pub path: String,
}

/// A logged-in user (see the module doc).
pub(crate) struct LoggedIn {
    pub(crate) session: Session,
    pub(crate) viewer: Viewer,
}

/// The source address, when the server runs with connect info.
pub(crate) fn source_of(parts: &Parts) -> Option<IpAddr> {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
}

/// Extractor: the request's source address (for the login limiter).
pub(crate) struct SourceAddr(pub(crate) Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for SourceAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(SourceAddr(source_of(parts)))
    }
}

impl<D: Dashboard> FromRequestParts<Arc<D>> for LoggedIn {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, d: &Arc<D>) -> Result<Self, Self::Rejection> {
        let session = Session::from_request_parts(parts, d).await?;
        let user = match d.user(&session.user).await {
            Ok(Some(u)) => u,
            Ok(None) => {
                // Clear the cookie too, or `/login` (which sends a valid session home)
                // and `/` would send the browser back and forth.
                let clear = crate::session::set_cookie(
                    crate::session::COOKIE,
                    "",
                    0,
                    crate::session::is_https(&parts.headers),
                );
                return Err((
                    [(axum::http::header::SET_COOKIE, clear)],
                    Redirect::to("/login"),
                )
                    .into_response());
            }
            Err(message) => {
                return Err(PageError::Backend {
                    action: "check the session's user",
                    message,
                }
                .into_response())
            }
        };
        Ok(LoggedIn {
            viewer: Viewer {
                name: user.name,
                admin: user.admin,
                source: source_of(parts),
                path: parts.uri.path().to_string(),
            },
            session,
        })
    }
}

fn refused(r: Refusal, app: Option<&str>) -> Response {
    match r {
        Refusal::NotFound(what) => match app {
            Some(name) => PageError::AppNotFound {
                name: name.to_string(),
            },
            None => PageError::NotFound { what },
        },
        Refusal::Forbidden(message) => PageError::Forbidden { message },
        Refusal::Internal(message) => PageError::Backend {
            action: "check access",
            message,
        },
    }
    .into_response()
}

/// A logged-in user who may use the route's `{name}` app.
pub(crate) struct AppAuth {
    pub(crate) session: Session,
    pub(crate) viewer: Viewer,
    /// The app, from the route.
    pub(crate) app: String,
}

impl<D: Dashboard> FromRequestParts<Arc<D>> for AppAuth {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, d: &Arc<D>) -> Result<Self, Self::Rejection> {
        let LoggedIn { session, viewer } = LoggedIn::from_request_parts(parts, d).await?;
        let params = RawPathParams::from_request_parts(parts, d)
            .await
            .map_err(IntoResponse::into_response)?;
        let app = params
            .iter()
            .find(|(k, _)| *k == "name")
            .map(|(_, v)| v.to_string())
            .ok_or_else(|| {
                PageError::Backend {
                    action: "read the route's app",
                    message: "AppAuth used on a route without {name}".into(),
                }
                .into_response()
            })?;
        crate::pages::check_name(&app).map_err(IntoResponse::into_response)?;
        d.authorize(&viewer, Need::App(&app))
            .await
            .map_err(|r| refused(r, Some(&app)))?;
        Ok(AppAuth {
            session,
            viewer,
            app,
        })
    }
}

/// A logged-in admin.
pub(crate) struct AdminAuth {
    pub(crate) session: Session,
    pub(crate) viewer: Viewer,
}

impl<D: Dashboard> FromRequestParts<Arc<D>> for AdminAuth {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, d: &Arc<D>) -> Result<Self, Self::Rejection> {
        let LoggedIn { session, viewer } = LoggedIn::from_request_parts(parts, d).await?;
        d.authorize(&viewer, Need::Admin)
            .await
            .map_err(|r| refused(r, None))?;
        Ok(AdminAuth { session, viewer })
    }
}
