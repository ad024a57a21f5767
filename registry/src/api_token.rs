//! The token side of the `/v2/` routes (see `registry::token`): the `/v2/token` endpoint
//! and the Bearer challenges added to 401 answers. A child of `api`, so it uses the
//! routes' state and access check.

use std::sync::Arc;

use axum::extract::{Query, Request, State};
use axum::response::{IntoResponse, Response};
use http::StatusCode;

use super::{finish, oci, source_of, ApiError, AppState};
use crate::names;
use crate::token;

/// With token auth on, a 401 names the token endpoint (Bearer) and Basic as challenges.
pub(super) fn challenge(st: &AppState, req: &Request, write: bool, mut resp: Response) -> Response {
    if st.tokens.is_some() && resp.status() == StatusCode::UNAUTHORIZED {
        token::set_challenges(resp.headers_mut(), req.headers(), req.uri(), write);
    }
    resp
}

/// `GET /v2/token?service=paas&scope=repository:NAME:pull,push`: a registry token for the
/// caller (Basic credentials or an API token), granting per scope what the access check
/// allows. See `token`.
pub(super) async fn token_endpoint(State(st): State<Arc<AppState>>, req: Request) -> Response {
    let Some(issuer) = st.tokens.clone() else {
        return finish(Err(oci(
            StatusCode::NOT_FOUND,
            "UNSUPPORTED",
            "this registry does not issue tokens: use basic auth",
        )));
    };
    let source = source_of(&req);
    let headers = req.headers();
    if token::bearer_token(headers).is_some() {
        // A registry token cannot be traded for another.
        return finish(Err(ApiError::Unauthorized));
    }
    if let Err(e) = st.allowed(headers, source, None, false).await {
        return finish(Err(e));
    }
    let params = Query::<Vec<(String, String)>>::try_from_uri(req.uri())
        .map(|q| q.0)
        .unwrap_or_default();
    let mut grants = Vec::new();
    for (name, actions) in token::requested(&params) {
        if names::check_repo(&name).is_err() {
            continue;
        }
        let mut granted = Vec::new();
        for action in actions {
            let write = action == token::PUSH;
            if st
                .allowed(headers, source, Some(&name), write)
                .await
                .is_ok()
            {
                granted.push(action);
            }
        }
        grants.push(token::Grant {
            name,
            actions: granted,
        });
    }
    finish(Ok(
        axum::Json(token::answer(&issuer, &params, grants)).into_response()
    ))
}
