//! `GET /login`, `POST /login` and `POST /logout`. The controller checks the password
//! within the API's failure limits (per source address and per user name: too many answer
//! 429 with `Retry-After`) and logs every refusal.

use std::sync::Arc;

use askama::Template;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use serde::Deserialize;

use crate::auth::SourceAddr;
use crate::render::Page;
use crate::session::{self, Session};
use crate::{Dashboard, LoginOutcome};

/// The login form.
#[derive(Template)]
#[template(path = "login.html")]
pub(crate) struct LoginPage {
    csrf: String,
    user: String,
    error: Option<String>,
}

#[derive(Deserialize)]
pub(crate) struct LoginForm {
    #[serde(default)]
    user: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    csrf: String,
}

#[derive(Deserialize)]
pub(crate) struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

/// The form with a fresh double-submit token (also set as a cookie).
fn login_page(
    headers: &HeaderMap,
    user: String,
    error: Option<String>,
    status: StatusCode,
) -> Response {
    let csrf = session::random_token();
    let cookie = session::set_cookie(
        session::LOGIN_CSRF_COOKIE,
        &csrf,
        3600,
        session::is_https(headers),
    );
    (
        status,
        [(header::SET_COOKIE, cookie)],
        Page(LoginPage { csrf, user, error }),
    )
        .into_response()
}

/// `GET /login` — the form, or the apps list when already logged in.
pub(crate) async fn form<D: Dashboard>(State(d): State<Arc<D>>, headers: HeaderMap) -> Response {
    let logged_in = session::cookie(&headers, session::COOKIE)
        .and_then(|v| Session::decode(v, &d.session_key()))
        .is_some();
    if logged_in {
        return Redirect::to("/").into_response();
    }
    login_page(&headers, String::new(), None, StatusCode::OK)
}

/// `POST /login` — checks the form token and the password; a session cookie on success.
pub(crate) async fn submit<D: Dashboard>(
    State(d): State<Arc<D>>,
    SourceAddr(source): SourceAddr,
    headers: HeaderMap,
    Form(f): Form<LoginForm>,
) -> Response {
    let cookie_token = session::cookie(&headers, session::LOGIN_CSRF_COOKIE).unwrap_or("");
    if cookie_token.is_empty()
        || !session::constant_time_eq(cookie_token.as_bytes(), f.csrf.as_bytes())
    {
        return login_page(
            &headers,
            f.user,
            Some("The form expired. Please log in again.".into()),
            StatusCode::FORBIDDEN,
        );
    }
    match d.login(f.user.trim(), &f.password, source).await {
        Ok(LoginOutcome::User(user)) => {
            let s = Session::new(&user.name);
            let secure = session::is_https(&headers);
            let mut resp = Redirect::to("/").into_response();
            let h = resp.headers_mut();
            for c in [
                session::set_cookie(
                    session::COOKIE,
                    &s.encode(&d.session_key()),
                    session::TTL_SECS,
                    secure,
                ),
                session::set_cookie(session::LOGIN_CSRF_COOKIE, "", 0, secure),
            ] {
                if let Ok(v) = c.parse() {
                    h.append(header::SET_COOKIE, v);
                }
            }
            tracing::info!(user = %user.name, "dashboard login");
            resp
        }
        Ok(LoginOutcome::Limited(secs)) => {
            let mut resp = login_page(
                &headers,
                f.user,
                Some(format!(
                    "Too many failed logins from your address (or for this user): try again \
                     in {secs} s, or use an API token."
                )),
                StatusCode::TOO_MANY_REQUESTS,
            );
            resp.headers_mut()
                .insert(header::RETRY_AFTER, axum::http::HeaderValue::from(secs));
            resp
        }
        Ok(LoginOutcome::Wrong) => login_page(
            &headers,
            f.user,
            Some("Wrong user name or password.".into()),
            StatusCode::UNAUTHORIZED,
        ),
        Err(e) => {
            tracing::error!(error = %e, "dashboard login could not be checked");
            login_page(
                &headers,
                f.user,
                Some("The login could not be checked; try again in a moment.".into()),
                StatusCode::INTERNAL_SERVER_ERROR,
            )
        }
    }
}

/// `POST /logout` — clears the session cookie (CSRF-checked so other sites cannot log
/// the user out).
pub(crate) async fn logout<D: Dashboard>(
    State(_): State<Arc<D>>,
    session: Session,
    headers: HeaderMap,
    Form(f): Form<CsrfForm>,
) -> Response {
    if !session.csrf_ok(&f.csrf) {
        return crate::render::PageError::Csrf.into_response();
    }
    let cookie = session::set_cookie(session::COOKIE, "", 0, session::is_https(&headers));
    ([(header::SET_COOKIE, cookie)], Redirect::to("/login")).into_response()
}
