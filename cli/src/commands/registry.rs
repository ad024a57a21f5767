//! `paas registry:login HOST -u USER [--password-stdin]`, `paas registry:logout HOST`,
//! `paas registry:list`: the caller's credentials for other registries, used when they
//! deploy an image from there (`paas deploy --image HOST/REPO:TAG`) or build a Dockerfile
//! whose `FROM` names it. The controller checks them against the registry before storing
//! them and never returns a password.

use std::io::{BufRead as _, IsTerminal as _, Write as _};

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{CommandError, Context};
use crate::output::{self, Spinner, Table};

#[derive(Debug, Serialize, Deserialize)]
struct Login {
    host: String,
    username: String,
}

/// The password: one line of stdin with `--password-stdin` (as `docker login` takes it),
/// else a prompt on the terminal without echo.
fn read_password(password_stdin: bool, host: &str) -> Result<String, CommandError> {
    let stdin = std::io::stdin();
    if !password_stdin && !stdin.is_terminal() {
        return Err(CommandError::Usage(
            "no terminal to ask for the password on: pipe it in with --password-stdin, e.g. \
             `echo \"$PW\" | paas registry:login HOST -u USER --password-stdin`"
                .into(),
        ));
    }
    if !password_stdin {
        eprint!("Password for {host}: ");
        let _ = std::io::stderr().flush();
    }
    let echo_off = (!password_stdin).then(EchoOff::new).flatten();
    let mut line = String::new();
    let read = stdin.lock().read_line(&mut line);
    drop(echo_off);
    if !password_stdin {
        eprintln!();
    }
    read.map_err(|e| CommandError::Usage(format!("reading the password: {e}")))?;
    let password = line.trim_end_matches(['\n', '\r']).to_string();
    if password.is_empty() {
        return Err(CommandError::Usage(
            "no password given: type it at the prompt, or pipe it in with --password-stdin".into(),
        ));
    }
    Ok(password)
}

/// Turns the terminal's echo off on stdin until dropped.
struct EchoOff(libc::termios);

impl EchoOff {
    fn new() -> Option<EchoOff> {
        // SAFETY: termios is plain old data, for which all zero bytes are a valid value.
        let mut t: libc::termios = unsafe { std::mem::zeroed() };
        // SAFETY: tcgetattr writes into the termios we own, for fd 0 (or fails, and we then
        // leave the terminal alone).
        if unsafe { libc::tcgetattr(0, &mut t) } != 0 {
            return None;
        }
        let saved = t;
        t.c_lflag &= !libc::ECHO;
        t.c_lflag |= libc::ECHONL;
        // SAFETY: sets fd 0's attributes from a termios tcgetattr filled.
        if unsafe { libc::tcsetattr(0, libc::TCSANOW, &t) } != 0 {
            return None;
        }
        Some(EchoOff(saved))
    }
}

impl Drop for EchoOff {
    fn drop(&mut self) {
        // SAFETY: restores the attributes read in `new` on the same descriptor.
        unsafe {
            libc::tcsetattr(0, libc::TCSANOW, &self.0);
        }
    }
}

/// `/v1/registry-logins/HOST` with HOST percent-encoded where it must be.
fn path_of(host: &str) -> String {
    let encoded: String = host
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._:".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    format!("/v1/registry-logins/{encoded}")
}

pub(super) fn login(
    ctx: &Context,
    host: &str,
    username: &str,
    password_stdin: bool,
) -> Result<(), CommandError> {
    let password = read_password(password_stdin, host)?;
    let client = ctx.client()?;
    let login: Login = {
        let _spinner = Spinner::start("Checking the login with the registry…", ctx.json);
        client.put(
            &path_of(host),
            &json!({ "username": username, "password": password }),
        )?
    };
    if ctx.json {
        output::print(&output::json(&login));
    } else {
        output::print(&format!(
            "Logged in to {} as {}. `paas deploy --image {}/REPO:TAG -a APP` and Dockerfile \
             `FROM {}/…` in your pushes now use this login (only yours).\n",
            login.host, login.username, login.host, login.host
        ));
    }
    Ok(())
}

pub(super) fn logout(ctx: &Context, host: &str) -> Result<(), CommandError> {
    ctx.client()?.delete(&path_of(host))?;
    if ctx.json {
        output::print(&output::json(&json!({ "host": host })));
    } else {
        output::print(&format!("Removed your login for {host}.\n"));
    }
    Ok(())
}

pub(super) fn list(ctx: &Context) -> Result<(), CommandError> {
    let logins: Vec<Login> = ctx.client()?.get("/v1/registry-logins")?;
    if ctx.json {
        output::print(&output::json(&logins));
        return Ok(());
    }
    if logins.is_empty() {
        output::print(
            "You have no registry logins. Add one with `paas registry:login HOST -u USER`.\n",
        );
        return Ok(());
    }
    let mut table = Table::new(&["host", "username"]);
    for l in &logins {
        table.row(vec![l.host.clone(), l.username.clone()]);
    }
    output::print(&table.render());
    Ok(())
}
