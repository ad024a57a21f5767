//! Users, API tokens and app collaborators: `paas users`, `users:add`, `users:remove`,
//! `tokens`, `tokens:create`, `tokens:revoke`, `access`, `access:add`, `access:remove`,
//! `whoami`, and `paas login --user NAME --password-stdin` (a token from `/v1/login`).

use std::io::BufRead as _;

use paas_api::{ApiToken, CreatedToken, User, WhoAmI};
use serde_json::{json, Value};

use super::{CommandError, Context};
use crate::client::ClientError;
use crate::config::{self, FileConfig};
use crate::output::{self, Table};

/// Reads one line (a password) from standard input, without its line end.
fn read_password_stdin() -> Result<String, CommandError> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| CommandError::Usage(format!("reading the password from stdin: {e}")))?;
    let password = line.trim_end_matches(['\n', '\r']).to_string();
    if password.is_empty() {
        return Err(CommandError::Usage(
            "no password on stdin: pipe it in, e.g. `echo \"$PW\" | paas … --password-stdin`"
                .into(),
        ));
    }
    Ok(password)
}

/// `30d`, `12h`, `45m`, `90s` or plain seconds → seconds.
pub fn parse_duration(text: &str) -> Result<u64, CommandError> {
    let bad = || {
        CommandError::Usage(format!(
            "invalid duration {text:?}: use a number with d, h, m or s, such as 30d"
        ))
    };
    let (num, unit) = match text.char_indices().last() {
        Some((i, ch)) if ch.is_ascii_alphabetic() => (&text[..i], ch),
        _ => (text, 's'),
    };
    let n: u64 = num.parse().map_err(|_| bad())?;
    let mult = match unit {
        'd' => 86_400,
        'h' => 3_600,
        'm' => 60,
        's' => 1,
        _ => return Err(bad()),
    };
    match n.checked_mul(mult) {
        Some(0) | None => Err(bad()),
        Some(s) => Ok(s),
    }
}

fn print_json_or(ctx: &Context, value: &Value, text: String) {
    if ctx.json {
        output::print(&output::json(value));
    } else {
        output::print(&text);
    }
}

/// `paas users`
pub(super) fn users(ctx: &Context) -> Result<(), CommandError> {
    let list: Vec<User> = ctx.client()?.get("/v1/users")?;
    if ctx.json {
        output::print(&output::json(&list));
        return Ok(());
    }
    let mut table = Table::new(&["name", "role", "created"]);
    for u in list {
        table.row(vec![u.name, u.role, u.created_at]);
    }
    output::print(&table.render());
    Ok(())
}

/// `paas users:add NAME [--role member|admin] [--password-stdin]`
pub(super) fn users_add(
    ctx: &Context,
    name: &str,
    role: &str,
    password_stdin: bool,
) -> Result<(), CommandError> {
    let password = if password_stdin {
        Some(read_password_stdin()?)
    } else {
        None
    };
    let body = json!({"name": name, "role": role, "password": password});
    let user: User = ctx.client()?.post("/v1/users", &body)?;
    let hint = if password_stdin {
        format!("{name} can log in with `paas login --user {name} --password-stdin`.")
    } else {
        format!(
            "{name} has no password: make a token for them with \
             `paas tokens:create --user {name}`, or set one with --password-stdin."
        )
    };
    print_json_or(
        ctx,
        &json!(user),
        format!("Created {} {}.\n{hint}\n", user.role, user.name),
    );
    Ok(())
}

/// `paas users:remove NAME`
pub(super) fn users_remove(ctx: &Context, name: &str) -> Result<(), CommandError> {
    ctx.client()?.delete(&format!("/v1/users/{name}"))?;
    print_json_or(
        ctx,
        &json!({"removed": name}),
        format!("Removed {name} with their tokens and app access.\n"),
    );
    Ok(())
}

/// `paas tokens [--all]`
pub(super) fn tokens(ctx: &Context, all: bool) -> Result<(), CommandError> {
    let path = if all {
        "/v1/tokens?all=true"
    } else {
        "/v1/tokens"
    };
    let list: Vec<ApiToken> = ctx.client()?.get(path)?;
    if ctx.json {
        output::print(&output::json(&list));
        return Ok(());
    }
    let mut table = Table::new(&["id", "user", "name", "created", "expires", "last used"]);
    for t in list {
        table.row(vec![
            t.id,
            t.user,
            t.name,
            t.created_at,
            t.expires_at.unwrap_or_else(|| "never".into()),
            t.last_used_at.unwrap_or_else(|| "never".into()),
        ]);
    }
    output::print(&table.render());
    Ok(())
}

/// `paas tokens:create [--name N] [--expires 30d] [--user U]`: prints the token once.
pub(super) fn tokens_create(
    ctx: &Context,
    name: Option<&str>,
    expires: Option<&str>,
    user: Option<&str>,
) -> Result<(), CommandError> {
    let expires_in_secs = expires.map(parse_duration).transpose()?;
    let body = json!({"name": name, "expires_in_secs": expires_in_secs, "user": user});
    let made: CreatedToken = ctx.client()?.post("/v1/tokens", &body)?;
    if ctx.json {
        output::print(&output::json(&made));
    } else {
        output::print(&format!(
            "{}\n\nThis is token {} of {}; it is shown only now. Revoke it with \
             `paas tokens:revoke {}`.\n",
            made.token, made.info.id, made.info.user, made.info.id
        ));
    }
    Ok(())
}

/// `paas tokens:revoke ID`
pub(super) fn tokens_revoke(ctx: &Context, id: &str) -> Result<(), CommandError> {
    ctx.client()?.delete(&format!("/v1/tokens/{id}"))?;
    print_json_or(
        ctx,
        &json!({"revoked": id}),
        format!("Revoked token {id}.\n"),
    );
    Ok(())
}

/// `paas access -a APP`
pub(super) fn access(ctx: &Context, app: &str) -> Result<(), CommandError> {
    let users: Vec<String> = ctx
        .client()?
        .get(&format!("/v1/apps/{app}/collaborators"))?;
    let mut text = format!("Collaborators of {app} (admins see every app):\n");
    for u in &users {
        text.push_str(&format!("  {u}\n"));
    }
    print_json_or(ctx, &json!(users), text);
    Ok(())
}

/// `paas access:add -a APP USER`
pub(super) fn access_add(ctx: &Context, app: &str, user: &str) -> Result<(), CommandError> {
    let users: Vec<String> = ctx.client()?.post(
        &format!("/v1/apps/{app}/collaborators"),
        &json!({"user": user}),
    )?;
    print_json_or(
        ctx,
        &json!(users),
        format!("{user} can now see, change and push {app}.\n"),
    );
    Ok(())
}

/// `paas apps:access-api -a APP [on|off]`
pub(super) fn access_api(
    ctx: &Context,
    app: &str,
    state: Option<&str>,
) -> Result<(), CommandError> {
    let path = format!("/v1/apps/{app}/api-access");
    let client = ctx.client()?;
    let answer: paas_api::ApiAccess = match state {
        None => client.get(&path)?,
        Some(s) => client.patch(&path, &json!({"enabled": s == "on"}))?,
    };
    let text = match (answer.enabled, state.is_some()) {
        (true, true) => format!(
            "{app}'s containers may now reach the controller's and the agents' API ports \
             (jobs started from now on: `paas restart -a {app}`).\n"
        ),
        (false, true) => format!(
            "{app}'s containers can no longer reach the API ports (jobs started from now on: \
             `paas restart -a {app}`).\n"
        ),
        (true, false) => format!("{app}: API access on\n"),
        (false, false) => format!("{app}: API access off\n"),
    };
    print_json_or(ctx, &json!(answer), text);
    Ok(())
}

/// `paas access:remove -a APP USER`
pub(super) fn access_remove(ctx: &Context, app: &str, user: &str) -> Result<(), CommandError> {
    ctx.client()?
        .delete(&format!("/v1/apps/{app}/collaborators/{user}"))?;
    print_json_or(
        ctx,
        &json!({"app": app, "removed": user}),
        format!("{user} no longer has access to {app}.\n"),
    );
    Ok(())
}

/// `paas whoami`
pub(super) fn whoami(ctx: &Context) -> Result<(), CommandError> {
    let me: WhoAmI = ctx.client()?.get("/v1/whoami")?;
    print_json_or(
        ctx,
        &json!(me),
        format!("{} ({}, via {})\n", me.name, me.role, me.via),
    );
    Ok(())
}

/// `paas login --user NAME --password-stdin`: trades the password for a new API token and
/// saves it with the URL.
pub(super) fn login_password(
    ctx: &Context,
    mut file: FileConfig,
    user: &str,
) -> Result<(), CommandError> {
    let password = read_password_stdin()?;
    let url = ctx.settings.url.as_str();
    let client = crate::client::Client::new(url, None)?;
    let made: CreatedToken = client
        .post(
            "/v1/login",
            &json!({"user": user, "password": password, "name": "cli login"}),
        )
        .map_err(|e| match e {
            // Without a token the client reads a 401 as "not logged in"; here it means
            // the password was wrong.
            ClientError::NotLoggedIn { .. } | ClientError::TokenRefused { .. } => {
                ClientError::Api {
                    status: 401,
                    code: "unauthorized".into(),
                    message: format!(
                        "wrong user name or password for {user} at {url}: check both, or ask \
                         an admin to reset the password"
                    ),
                }
            }
            e => e,
        })?;
    file.url = Some(url.to_string());
    file.token = Some(made.token);
    let path = config::save(&file)?;
    print_json_or(
        ctx,
        &json!({"url": url, "user": user, "token_id": made.info.id,
                "config_file": path.display().to_string()}),
        format!(
            "Logged in to {url} as {user}\nSaved the URL and a new token ({}) to {}\n",
            made.info.id,
            path.display()
        ),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::parse_duration;

    #[test]
    fn durations_read_with_units() {
        assert_eq!(parse_duration("30d").unwrap(), 30 * 86_400);
        assert_eq!(parse_duration("12h").unwrap(), 12 * 3_600);
        assert_eq!(parse_duration("5m").unwrap(), 300);
        assert_eq!(parse_duration("90").unwrap(), 90);
        for bad in ["", "d", "0d", "-1d", "3w", "1.5d"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
