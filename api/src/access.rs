//! Wire types of users, API tokens, app collaborators and node tokens (`/v1/users`,
//! `/v1/tokens`, `/v1/login`, `/v1/apps/{app}/collaborators`, `/v1/whoami`,
//! `/v1/node-tokens`).

use serde::{Deserialize, Serialize};

/// A user as the API shows it (never with a password or hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub name: String,
    /// `admin` or `member`.
    pub role: String,
    pub created_at: String,
}

/// `POST /v1/users`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    pub name: String,
    /// `member` (the default) or `admin`.
    #[serde(default)]
    pub role: Option<String>,
    /// At least 8 characters; without one the user can only use tokens an admin makes.
    #[serde(default)]
    pub password: Option<String>,
}

/// `POST /v1/users/{name}/password`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetPassword {
    pub password: String,
}

/// An API token as listed (the secret is shown only once, in [`CreatedToken`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiToken {
    pub id: String,
    pub user: String,
    pub name: String,
    pub created_at: String,
    #[serde(default)]
    pub expires_at: Option<String>,
    #[serde(default)]
    pub last_used_at: Option<String>,
}

/// `POST /v1/tokens`
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    #[serde(default)]
    pub name: Option<String>,
    /// Lifetime in seconds; none means the token lives until it is revoked.
    #[serde(default)]
    pub expires_in_secs: Option<u64>,
    /// Admins only: make the token for this user instead of themselves.
    #[serde(default)]
    pub user: Option<String>,
}

/// The answer of `POST /v1/tokens` and `POST /v1/login`: the only time the secret is shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatedToken {
    pub token: String,
    #[serde(flatten)]
    pub info: ApiToken,
}

/// `POST /v1/login`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Login {
    pub user: String,
    pub password: String,
    /// The new token's name (default `login`).
    #[serde(default)]
    pub name: Option<String>,
}

/// `POST /v1/apps/{app}/collaborators`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddCollaborator {
    pub user: String,
}

/// `GET /v1/whoami`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WhoAmI {
    pub name: String,
    /// `admin`, `member` or `node`.
    pub role: String,
    /// `admin-token`, `api-token`, `node-token`.
    pub via: String,
}

/// `POST /v1/node-tokens`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateNodeToken {
    pub node: String,
}

/// The answer of `POST /v1/node-tokens`: the node's join token, shown once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeToken {
    pub node: String,
    pub token: String,
}

/// `GET` and `PATCH /v1/apps/{app}/api-access`: whether the app's containers may reach the
/// controller's and the agents' API ports (off by default; see docs/security.md).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiAccess {
    pub app: String,
    pub enabled: bool,
}

/// The body of `PATCH /v1/apps/{app}/api-access` (admins).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetApiAccess {
    pub enabled: bool,
}
