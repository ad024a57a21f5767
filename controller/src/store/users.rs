//! Users, API tokens, app collaborators and per-node tokens (migration 0006).
//!
//! Passwords are stored as argon2id PHC strings, tokens as their sha256; neither is ever
//! read back in clear. Times are unix milliseconds.

use sqlx::Row;

use super::{is_unique_violation, query, Result, Store, StoreError};
use crate::auth::password::{
    hash_password, new_secret, token_hash, verify_hash, NODE_TOKEN_PREFIX, TOKEN_PREFIX,
};
use crate::util::unix_ms;

/// The two roles.
pub mod role {
    /// Everything, on every app, and user management.
    pub const ADMIN: &str = "admin";
    /// Only the apps the user collaborates on.
    pub const MEMBER: &str = "member";
}

/// A user (never with the password hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRow {
    pub name: String,
    /// [`role::ADMIN`] or [`role::MEMBER`].
    pub role: String,
    pub has_password: bool,
    pub created_ms: i64,
}

impl UserRow {
    pub fn is_admin(&self) -> bool {
        self.role == role::ADMIN
    }
}

/// An API token's row (without its secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRow {
    pub id: String,
    pub user: String,
    pub name: String,
    pub created_ms: i64,
    pub expires_ms: Option<i64>,
    pub last_used_ms: Option<i64>,
}

fn user_row(r: &super::Row) -> std::result::Result<UserRow, sqlx::Error> {
    let hash: Option<String> = r.try_get("password_hash")?;
    Ok(UserRow {
        name: r.try_get("name")?,
        role: r.try_get("role")?,
        has_password: hash.is_some(),
        created_ms: r.try_get("created_ms")?,
    })
}

fn token_row(r: &super::Row) -> std::result::Result<TokenRow, sqlx::Error> {
    Ok(TokenRow {
        id: r.try_get("id")?,
        user: r.try_get("user_name")?,
        name: r.try_get("name")?,
        created_ms: r.try_get("created_ms")?,
        expires_ms: r.try_get("expires_ms")?,
        last_used_ms: r.try_get("last_used_ms")?,
    })
}

/// Hashes off the async threads (argon2 takes tens of milliseconds on purpose).
async fn hash_blocking(password: Option<String>) -> Option<String> {
    let password = password?;
    tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .ok()
}

const USER_COLS: &str = "name, role, password_hash, created_ms";
const TOKEN_COLS: &str = "id, user_name, name, created_ms, expires_ms, last_used_ms";

impl Store {
    /// Creates a user; `password` is hashed here. Fails with `UserExists` for a taken name.
    pub async fn create_user(
        &self,
        name: &str,
        role: &str,
        password: Option<&str>,
    ) -> Result<UserRow> {
        let hash = hash_blocking(password.map(str::to_string)).await;
        let created_ms = unix_ms();
        let res = sqlx::query(
            "INSERT INTO users (name, role, password_hash, created_ms) VALUES ($1, $2, $3, $4)",
        )
        .bind(name)
        .bind(role)
        .bind(&hash)
        .bind(created_ms)
        .execute(self.pool())
        .await;
        match res {
            Ok(_) => Ok(UserRow {
                name: name.into(),
                role: role.into(),
                has_password: hash.is_some(),
                created_ms,
            }),
            Err(e) if is_unique_violation(&e) => Err(StoreError::UserExists(name.into())),
            Err(e) => Err(query("creating a user")(e)),
        }
    }

    /// Creates the user unless one of that name exists; true when it was created.
    pub async fn ensure_user(&self, name: &str, role: &str, password: &str) -> Result<bool> {
        if self.get_user(name).await?.is_some() {
            return Ok(false);
        }
        match self.create_user(name, role, Some(password)).await {
            Ok(_) => Ok(true),
            Err(StoreError::UserExists(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    pub async fn get_user(&self, name: &str) -> Result<Option<UserRow>> {
        let row = sqlx::query(&format!("SELECT {USER_COLS} FROM users WHERE name = $1"))
            .bind(name)
            .fetch_optional(self.pool())
            .await
            .map_err(query("reading a user"))?;
        row.map(|r| user_row(&r))
            .transpose()
            .map_err(query("reading a user row"))
    }

    /// Every user, by name.
    pub async fn list_users(&self) -> Result<Vec<UserRow>> {
        let rows = sqlx::query(&format!("SELECT {USER_COLS} FROM users ORDER BY name"))
            .fetch_all(self.pool())
            .await
            .map_err(query("listing users"))?;
        rows.iter()
            .map(user_row)
            .collect::<std::result::Result<_, _>>()
            .map_err(query("reading a user row"))
    }

    /// Deletes a user with their tokens and collaborations; false when there was none.
    pub async fn delete_user(&self, name: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM users WHERE name = $1")
            .bind(name)
            .execute(self.pool())
            .await
            .map_err(query("deleting a user"))?;
        Ok(done.rows_affected() > 0)
    }

    /// Sets a user's password; false when there is no such user.
    pub async fn set_password(&self, name: &str, password: &str) -> Result<bool> {
        let hash = hash_blocking(Some(password.to_string())).await;
        let done = sqlx::query("UPDATE users SET password_hash = $1 WHERE name = $2")
            .bind(hash)
            .bind(name)
            .execute(self.pool())
            .await
            .map_err(query("setting a password"))?;
        Ok(done.rows_affected() > 0)
    }

    /// The user when `password` is theirs. Unknown users cost the same argon2 work as known
    /// ones, so the time taken does not say which names exist.
    pub async fn verify_password(&self, name: &str, password: &str) -> Result<Option<UserRow>> {
        let row = sqlx::query(&format!("SELECT {USER_COLS} FROM users WHERE name = $1"))
            .bind(name)
            .fetch_optional(self.pool())
            .await
            .map_err(query("reading a user"))?;
        let (user, hash) = match row {
            Some(r) => {
                let hash: Option<String> = r.try_get("password_hash").ok().flatten();
                (
                    Some(user_row(&r).map_err(query("reading a user row"))?),
                    hash,
                )
            }
            None => (None, None),
        };
        let known = hash.is_some();
        let hash = hash.unwrap_or_else(|| crate::auth::password::dummy_hash().to_string());
        let password = password.to_string();
        let ok = tokio::task::spawn_blocking(move || verify_hash(&hash, &password))
            .await
            .unwrap_or(false);
        Ok(if ok && known { user } else { None })
    }

    /// Makes an API token for `user`; returns its row and the secret (shown once).
    pub async fn create_token(
        &self,
        user: &str,
        name: &str,
        expires_ms: Option<i64>,
    ) -> Result<(TokenRow, String)> {
        let secret = new_secret(TOKEN_PREFIX);
        let row = TokenRow {
            id: crate::util::random_hex(6),
            user: user.into(),
            name: name.into(),
            created_ms: unix_ms(),
            expires_ms,
            last_used_ms: None,
        };
        sqlx::query(
            "INSERT INTO api_tokens (id, user_name, name, token_hash, created_ms, expires_ms) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&row.id)
        .bind(user)
        .bind(name)
        .bind(token_hash(&secret))
        .bind(row.created_ms)
        .bind(expires_ms)
        .execute(self.pool())
        .await
        .map_err(query("creating a token"))?;
        Ok((row, secret))
    }

    /// Tokens of one user (or of everyone for `None`), newest first.
    pub async fn list_tokens(&self, user: Option<&str>) -> Result<Vec<TokenRow>> {
        let rows = match user {
            Some(u) => {
                sqlx::query(&format!(
                    "SELECT {TOKEN_COLS} FROM api_tokens WHERE user_name = $1 \
                     ORDER BY created_ms DESC, id"
                ))
                .bind(u)
                .fetch_all(self.pool())
                .await
            }
            None => {
                sqlx::query(&format!(
                    "SELECT {TOKEN_COLS} FROM api_tokens ORDER BY created_ms DESC, id"
                ))
                .fetch_all(self.pool())
                .await
            }
        }
        .map_err(query("listing tokens"))?;
        rows.iter()
            .map(token_row)
            .collect::<std::result::Result<_, _>>()
            .map_err(query("reading a token row"))
    }

    /// Deletes token `id` (only if it belongs to `user`, when given); false when none did.
    pub async fn revoke_token(&self, id: &str, user: Option<&str>) -> Result<bool> {
        let done = match user {
            Some(u) => {
                sqlx::query("DELETE FROM api_tokens WHERE id = $1 AND user_name = $2")
                    .bind(id)
                    .bind(u)
                    .execute(self.pool())
                    .await
            }
            None => {
                sqlx::query("DELETE FROM api_tokens WHERE id = $1")
                    .bind(id)
                    .execute(self.pool())
                    .await
            }
        }
        .map_err(query("revoking a token"))?;
        Ok(done.rows_affected() > 0)
    }

    /// The token and its user when `secret` is a live (not revoked, not expired) API token;
    /// records its use.
    pub async fn token_user(&self, secret: &str) -> Result<Option<(TokenRow, UserRow)>> {
        if !secret.starts_with(TOKEN_PREFIX) {
            return Ok(None);
        }
        let row = sqlx::query(&format!(
            "SELECT {TOKEN_COLS} FROM api_tokens WHERE token_hash = $1"
        ))
        .bind(token_hash(secret))
        .fetch_optional(self.pool())
        .await
        .map_err(query("looking up a token"))?;
        let Some(row) = row else { return Ok(None) };
        let token = token_row(&row).map_err(query("reading a token row"))?;
        let now = unix_ms();
        if token.expires_ms.is_some_and(|e| e <= now) {
            return Ok(None);
        }
        let Some(user) = self.get_user(&token.user).await? else {
            return Ok(None);
        };
        sqlx::query("UPDATE api_tokens SET last_used_ms = $1 WHERE id = $2")
            .bind(now)
            .bind(&token.id)
            .execute(self.pool())
            .await
            .map_err(query("recording a token's use"))?;
        Ok(Some((token, user)))
    }

    /// Adds `user` to `app`'s collaborators; false when they already were one.
    pub async fn add_collaborator(&self, app: &str, user: &str) -> Result<bool> {
        let done = sqlx::query(
            "INSERT INTO app_collaborators (app, user_name, created_ms) VALUES ($1, $2, $3) \
             ON CONFLICT (app, user_name) DO NOTHING",
        )
        .bind(app)
        .bind(user)
        .bind(unix_ms())
        .execute(self.pool())
        .await
        .map_err(query("adding a collaborator"))?;
        Ok(done.rows_affected() > 0)
    }

    /// Removes a collaborator; false when they were not one.
    pub async fn remove_collaborator(&self, app: &str, user: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM app_collaborators WHERE app = $1 AND user_name = $2")
            .bind(app)
            .bind(user)
            .execute(self.pool())
            .await
            .map_err(query("removing a collaborator"))?;
        Ok(done.rows_affected() > 0)
    }

    /// The collaborators of an app, by name.
    pub async fn list_collaborators(&self, app: &str) -> Result<Vec<String>> {
        let rows = sqlx::query(
            "SELECT user_name FROM app_collaborators WHERE app = $1 ORDER BY user_name",
        )
        .bind(app)
        .fetch_all(self.pool())
        .await
        .map_err(query("listing collaborators"))?;
        rows.iter()
            .map(|r| r.try_get("user_name"))
            .collect::<std::result::Result<_, _>>()
            .map_err(query("reading a collaborator row"))
    }

    pub async fn is_collaborator(&self, app: &str, user: &str) -> Result<bool> {
        let row = sqlx::query("SELECT 1 FROM app_collaborators WHERE app = $1 AND user_name = $2")
            .bind(app)
            .bind(user)
            .fetch_optional(self.pool())
            .await
            .map_err(query("checking a collaborator"))?;
        Ok(row.is_some())
    }

    /// The apps `user` collaborates on, by name.
    pub async fn user_apps(&self, user: &str) -> Result<Vec<String>> {
        let rows =
            sqlx::query("SELECT app FROM app_collaborators WHERE user_name = $1 ORDER BY app")
                .bind(user)
                .fetch_all(self.pool())
                .await
                .map_err(query("listing a user's apps"))?;
        rows.iter()
            .map(|r| r.try_get("app"))
            .collect::<std::result::Result<_, _>>()
            .map_err(query("reading a collaborator row"))
    }

    /// Issues (or replaces) the token of node `node`; returns the secret (shown once).
    pub async fn issue_node_token(&self, node: &str) -> Result<String> {
        let secret = new_secret(NODE_TOKEN_PREFIX);
        sqlx::query(
            "INSERT INTO node_tokens (node, token_hash, created_ms) VALUES ($1, $2, $3) \
             ON CONFLICT (node) DO UPDATE SET token_hash = excluded.token_hash, \
             created_ms = excluded.created_ms",
        )
        .bind(node)
        .bind(token_hash(&secret))
        .bind(unix_ms())
        .execute(self.pool())
        .await
        .map_err(query("issuing a node token"))?;
        Ok(secret)
    }

    /// The node a per-node token was issued for.
    pub async fn node_for_token(&self, secret: &str) -> Result<Option<String>> {
        if !secret.starts_with(NODE_TOKEN_PREFIX) {
            return Ok(None);
        }
        let row = sqlx::query("SELECT node FROM node_tokens WHERE token_hash = $1")
            .bind(token_hash(secret))
            .fetch_optional(self.pool())
            .await
            .map_err(query("looking up a node token"))?;
        row.map(|r| r.try_get("node"))
            .transpose()
            .map_err(query("reading a node token row"))
    }

    /// Revokes the token of node `node`; false when it had none.
    pub async fn revoke_node_token(&self, node: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM node_tokens WHERE node = $1")
            .bind(node)
            .execute(self.pool())
            .await
            .map_err(query("revoking a node token"))?;
        Ok(done.rows_affected() > 0)
    }
}
