//! Password logins (`POST /v1/login` and the dashboard's `/login` share this): the
//! failure limits of `limit` around [`crate::store::Store::verify_password`], and the
//! refusal log. A password is verified unless its source is over budget, or its user is
//! being guessed and the source has been failing (see `limit`): the real user, from an
//! address that has not been failing, always gets an answer.

use std::net::IpAddr;

use super::caller::log_refusal;
use crate::state::Controller;
use crate::store::{StoreError, UserRow};

/// Why a login did not give a user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginRefused {
    /// Wrong user name or password (counted).
    Wrong,
    /// Not verified: too many failures; retry after this many seconds.
    Limited(u64),
}

/// Checks `password` for `user` from `source` (`path` names the endpoint in the log).
pub async fn verify(
    c: &Controller,
    source: Option<IpAddr>,
    path: &str,
    user: &str,
    password: &str,
) -> Result<Result<UserRow, LoginRefused>, StoreError> {
    if let Err(wait) = c.access.check_password(source, user) {
        log_refusal(
            429,
            source,
            path,
            "too many failed logins from this address (or for this user)",
        );
        return Ok(Err(LoginRefused::Limited(wait.as_secs().max(1))));
    }
    match c.store.verify_password(user, password).await? {
        Some(found) => Ok(Ok(found)),
        None => {
            c.access.password_failed(source, user);
            log_refusal(401, source, path, "wrong user name or password");
            Ok(Err(LoginRefused::Wrong))
        }
    }
}
