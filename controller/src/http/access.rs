//! Users, API tokens, login, app collaborators, whoami and per-node tokens:
//! `/v1/users`, `/v1/tokens`, `/v1/login`, `/v1/apps/{app}/collaborators`, `/v1/whoami`,
//! `/v1/node-tokens`. Permission checks go through [`Caller`].

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use http::StatusCode;
use paas_api::{
    AddCollaborator, ApiToken, CreateNodeToken, CreateToken, CreateUser, CreatedToken, Login,
    NodeToken, SetPassword, User, WhoAmI,
};

use super::ApiError;
use crate::auth::password::MIN_PASSWORD_LEN;
use crate::auth::{AppAccess, Caller, Principal, Source};
use crate::state::Controller;
use crate::store::{role, TokenRow, UserRow};
use crate::util::{rfc3339_from_ms, unix_ms};

pub(super) fn routes() -> Router<Arc<Controller>> {
    Router::new()
        .route("/v1/users", get(list_users).post(create_user))
        .route("/v1/users/{name}", delete(delete_user))
        .route("/v1/users/{name}/password", post(set_password))
        .route("/v1/tokens", get(list_tokens).post(create_token))
        .route("/v1/tokens/{id}", delete(revoke_token))
        .route("/v1/login", post(login))
        .route("/v1/whoami", get(whoami))
        .route(
            "/v1/apps/{app}/collaborators",
            get(list_collaborators).post(add_collaborator),
        )
        .route(
            "/v1/apps/{app}/collaborators/{user}",
            delete(remove_collaborator),
        )
        .route("/v1/node-tokens", post(create_node_token))
        .route("/v1/node-tokens/{node}", delete(revoke_node_token))
}

fn parse<T: serde::de::DeserializeOwned>(body: &[u8], what: &str) -> Result<T, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::BadRequest(format!("the body is not a valid {what}: {e}")))
}

/// User names: 1–40 of `a-z 0-9 - _ .`, starting with a letter or digit.
pub fn validate_user_name(name: &str) -> Result<(), ApiError> {
    let ok = !name.is_empty()
        && name.len() <= 40
        && name.starts_with(|ch: char| ch.is_ascii_lowercase() || ch.is_ascii_digit())
        && name.chars().all(|ch| {
            ch.is_ascii_lowercase() || ch.is_ascii_digit() || matches!(ch, '-' | '_' | '.')
        });
    if ok {
        Ok(())
    } else {
        Err(ApiError::Validation(format!(
            "invalid user name {name:?}: use 1-40 of a-z, 0-9, '-', '_', '.', starting with a \
             letter or digit"
        )))
    }
}

fn validate_password(password: &str) -> Result<(), ApiError> {
    if password.chars().count() < MIN_PASSWORD_LEN {
        return Err(ApiError::Validation(format!(
            "the password is too short: use at least {MIN_PASSWORD_LEN} characters"
        )));
    }
    if password.len() > 1024 {
        return Err(ApiError::Validation(
            "the password is too long: use at most 1024 bytes".into(),
        ));
    }
    Ok(())
}

fn user_api(u: UserRow) -> User {
    User {
        created_at: rfc3339_from_ms(u.created_ms),
        name: u.name,
        role: u.role,
    }
}

fn token_api(t: TokenRow) -> ApiToken {
    ApiToken {
        created_at: rfc3339_from_ms(t.created_ms),
        expires_at: t.expires_ms.map(rfc3339_from_ms),
        last_used_at: t.last_used_ms.map(rfc3339_from_ms),
        id: t.id,
        user: t.user,
        name: t.name,
    }
}

async fn list_users(
    caller: Caller,
    State(c): State<Arc<Controller>>,
) -> Result<Json<Vec<User>>, ApiError> {
    caller.require_admin()?;
    let users = c.store.list_users().await?;
    Ok(Json(users.into_iter().map(user_api).collect()))
}

async fn create_user(
    caller: Caller,
    State(c): State<Arc<Controller>>,
    body: Bytes,
) -> Result<Response, ApiError> {
    caller.require_admin()?;
    let req: CreateUser = parse(
        &body,
        "user (expected {\"name\": \"ann\", \"role\": \"member\"})",
    )?;
    validate_user_name(&req.name)?;
    let role = req.role.as_deref().unwrap_or(role::MEMBER);
    if role != role::MEMBER && role != role::ADMIN {
        return Err(ApiError::Validation(format!(
            "unknown role {role:?}: use member or admin"
        )));
    }
    if let Some(p) = &req.password {
        validate_password(p)?;
    }
    let user = c
        .store
        .create_user(&req.name, role, req.password.as_deref())
        .await?;
    tracing::info!(user = %user.name, role = %user.role, by = %caller.name(), "user created");
    Ok((StatusCode::CREATED, Json(user_api(user))).into_response())
}

async fn delete_user(
    caller: Caller,
    State(c): State<Arc<Controller>>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require_admin()?;
    if name == caller.name() {
        return Err(ApiError::Conflict(
            "you cannot remove yourself: ask another admin".into(),
        ));
    }
    let users = c.store.list_users().await?;
    let Some(target) = users.iter().find(|u| u.name == name) else {
        return Err(ApiError::NotFound(format!("no user named {name}")));
    };
    if target.is_admin() && users.iter().filter(|u| u.is_admin()).count() <= 1 {
        return Err(ApiError::Conflict(format!(
            "{name} is the last admin: make another admin first"
        )));
    }
    c.store.delete_user(&name).await?;
    // Their logins for other registries go with them (a later user of the same name
    // starts with none).
    if let Err(e) = c.registry_logins.remove_user(&name) {
        tracing::warn!(user = %name, "removing the user's registry logins: {e}");
    }
    tracing::info!(user = %name, by = %caller.name(), "user removed");
    Ok(StatusCode::NO_CONTENT)
}

async fn set_password(
    caller: Caller,
    State(c): State<Arc<Controller>>,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    caller.require_person()?;
    if !caller.is_admin() && caller.name() != name {
        return Err(caller.forbid("members can only change their own password"));
    }
    let req: SetPassword = parse(&body, "password (expected {\"password\": \"…\"})")?;
    validate_password(&req.password)?;
    if !c.store.set_password(&name, &req.password).await? {
        return Err(ApiError::NotFound(format!("no user named {name}")));
    }
    tracing::info!(user = %name, by = %caller.name(), "password changed");
    Ok(StatusCode::NO_CONTENT)
}

#[derive(serde::Deserialize)]
struct TokensQuery {
    #[serde(default)]
    all: bool,
}

async fn list_tokens(
    caller: Caller,
    State(c): State<Arc<Controller>>,
    Query(q): Query<TokensQuery>,
) -> Result<Json<Vec<ApiToken>>, ApiError> {
    caller.require_person()?;
    let user = if q.all {
        caller.require_admin()?;
        None
    } else {
        Some(caller.name())
    };
    let tokens = c.store.list_tokens(user).await?;
    Ok(Json(tokens.into_iter().map(token_api).collect()))
}

/// Makes a token for `user` (who must exist) and answers 201 with its secret.
async fn issue_token(
    c: &Controller,
    user: &str,
    name: &str,
    expires_in_secs: Option<u64>,
) -> Result<Response, ApiError> {
    if name.is_empty() || name.len() > 100 || name.chars().any(char::is_control) {
        return Err(ApiError::Validation(
            "the token name must be 1-100 printable characters".into(),
        ));
    }
    if c.store.get_user(user).await?.is_none() {
        return Err(ApiError::NotFound(format!("no user named {user}")));
    }
    let expires_ms = match expires_in_secs {
        Some(0) => {
            return Err(ApiError::Validation(
                "expires_in_secs must be positive: leave it out for a token without expiry".into(),
            ))
        }
        Some(s) => Some(
            unix_ms().saturating_add(i64::try_from(s.saturating_mul(1000)).unwrap_or(i64::MAX)),
        ),
        None => None,
    };
    let (row, token) = c.store.create_token(user, name, expires_ms).await?;
    tracing::info!(user, token_id = %row.id, "API token created");
    Ok((
        StatusCode::CREATED,
        Json(CreatedToken {
            token,
            info: token_api(row),
        }),
    )
        .into_response())
}

async fn create_token(
    caller: Caller,
    State(c): State<Arc<Controller>>,
    body: Bytes,
) -> Result<Response, ApiError> {
    caller.require_person()?;
    let req: CreateToken = if body.is_empty() {
        CreateToken::default()
    } else {
        parse(&body, "token request (expected {\"name\": \"ci\"})")?
    };
    let user = match &req.user {
        Some(u) if u != caller.name() => {
            caller.require_admin()?;
            u.clone()
        }
        _ => caller.name().to_string(),
    };
    let name = req.name.as_deref().unwrap_or("api");
    issue_token(&c, &user, name, req.expires_in_secs).await
}

async fn revoke_token(
    caller: Caller,
    State(c): State<Arc<Controller>>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require_person()?;
    let owner = if caller.is_admin() {
        None
    } else {
        Some(caller.name())
    };
    if !c.store.revoke_token(&id, owner).await? {
        return Err(ApiError::NotFound(format!(
            "no token {id}: `paas tokens` lists yours"
        )));
    }
    tracing::info!(token_id = %id, by = %caller.name(), "API token revoked");
    Ok(StatusCode::NO_CONTENT)
}

async fn login(
    Source(source): Source,
    State(c): State<Arc<Controller>>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let path = "/v1/login";
    let req: Login = parse(&body, "login (expected {\"user\": …, \"password\": …})")?;
    let user =
        match crate::auth::login::verify(&c, source, path, &req.user, &req.password).await? {
            Ok(user) => user,
            Err(crate::auth::login::LoginRefused::Limited(secs)) => {
                return Err(ApiError::RateLimited(secs))
            }
            Err(crate::auth::login::LoginRefused::Wrong) => return Err(ApiError::Unauthorized(
                "wrong user name or password: check both, or ask an admin to reset the password",
            )),
        };
    tracing::info!(user = %user.name, "login");
    issue_token(&c, &user.name, req.name.as_deref().unwrap_or("login"), None).await
}

async fn whoami(caller: Caller) -> Json<WhoAmI> {
    let (role, via) = match &caller.principal {
        Principal::AdminToken => ("admin", "admin-token"),
        Principal::User { user, .. } => (user.role.as_str(), "api-token"),
        Principal::Node(_) => ("node", "node-token"),
    };
    Json(WhoAmI {
        name: caller.name().to_string(),
        role: role.to_string(),
        via: via.to_string(),
    })
}

async fn list_collaborators(
    _: AppAccess,
    State(c): State<Arc<Controller>>,
    Path(app): Path<String>,
) -> Result<Json<Vec<String>>, ApiError> {
    if c.store.get_app(&app).await?.is_none() {
        return Err(ApiError::NotFound(format!("no app named {app}")));
    }
    Ok(Json(c.store.list_collaborators(&app).await?))
}

async fn add_collaborator(
    AppAccess(caller): AppAccess,
    State(c): State<Arc<Controller>>,
    Path(app): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let req: AddCollaborator = parse(&body, "collaborator (expected {\"user\": \"ann\"})")?;
    if c.store.get_app(&app).await?.is_none() {
        return Err(ApiError::NotFound(format!("no app named {app}")));
    }
    if c.store.get_user(&req.user).await?.is_none() {
        return Err(ApiError::NotFound(format!(
            "no user named {}: `paas users:add` makes one",
            req.user
        )));
    }
    let added = c.store.add_collaborator(&app, &req.user).await?;
    tracing::info!(%app, user = %req.user, by = %caller.name(), "collaborator added");
    let status = if added {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(c.store.list_collaborators(&app).await?)).into_response())
}

async fn remove_collaborator(
    AppAccess(caller): AppAccess,
    State(c): State<Arc<Controller>>,
    Path((app, user)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    if !c.store.remove_collaborator(&app, &user).await? {
        return Err(ApiError::NotFound(format!(
            "{user} is not a collaborator of {app}"
        )));
    }
    tracing::info!(%app, %user, by = %caller.name(), "collaborator removed");
    Ok(StatusCode::NO_CONTENT)
}

async fn create_node_token(
    caller: Caller,
    State(c): State<Arc<Controller>>,
    body: Bytes,
) -> Result<Response, ApiError> {
    caller.require_admin()?;
    let req: CreateNodeToken = parse(&body, "node token request (expected {\"node\": \"n1\"})")?;
    validate_user_name(&req.node)
        .map_err(|_| ApiError::Validation(format!("invalid node name {:?}", req.node)))?;
    let token = c.store.issue_node_token(&req.node).await?;
    tracing::info!(node = %req.node, by = %caller.name(), "node token issued");
    Ok((
        StatusCode::CREATED,
        Json(NodeToken {
            node: req.node,
            token,
        }),
    )
        .into_response())
}

async fn revoke_node_token(
    caller: Caller,
    State(c): State<Arc<Controller>>,
    Path(node): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require_admin()?;
    if !c.store.revoke_node_token(&node).await? {
        return Err(ApiError::NotFound(format!("node {node} has no token")));
    }
    Ok(StatusCode::NO_CONTENT)
}
