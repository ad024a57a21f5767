//! `paas certs -a APP`, `paas certs:add CERT KEY -a APP`, `paas certs:remove ID -a APP`: an
//! app's TLS certificates, which the router presents over HTTPS to clients asking (SNI) for
//! a host name they cover.

use std::path::Path;

use serde::Deserialize;

use super::{CommandError, Context};
use crate::output::{self, Spinner, Table};

/// A certificate as the controller returns it (never with its key).
#[derive(Debug, Deserialize, serde::Serialize)]
struct Cert {
    id: String,
    app: String,
    names: Vec<String>,
    not_after: String,
    subject: String,
    issuer: String,
    created_at: String,
}

/// ID, NAMES, EXPIRES, ISSUER.
pub(super) fn list(ctx: &Context, app: &str) -> Result<(), CommandError> {
    let client = ctx.client()?;
    let certs: Vec<Cert> = {
        let _spinner = Spinner::start("Listing certificates…", ctx.json);
        client.get(&format!("/v1/apps/{app}/certs"))?
    };
    if ctx.json {
        output::print(&output::json(&certs));
        return Ok(());
    }
    if certs.is_empty() {
        output::print(&format!(
            "{app} has no certificates; HTTPS uses the router's self-signed default. Add one \
             with `paas certs:add CERT.pem KEY.pem -a {app}`.\n"
        ));
        return Ok(());
    }
    let mut table = Table::new(&["id", "names", "expires", "issuer"]);
    for c in &certs {
        table.row(vec![
            c.id.clone(),
            c.names.join(", "),
            c.not_after.clone(),
            c.issuer.clone(),
        ]);
    }
    output::print(&table.render());
    Ok(())
}

fn read_pem(path: &Path, what: &str) -> Result<String, CommandError> {
    std::fs::read_to_string(path).map_err(|e| {
        CommandError::Usage(format!(
            "reading the {what} file {}: {e}; give the path of a PEM file",
            path.display()
        ))
    })
}

pub(super) fn add(ctx: &Context, app: &str, cert: &Path, key: &Path) -> Result<(), CommandError> {
    let certificate = read_pem(cert, "certificate")?;
    let key = read_pem(key, "key")?;
    let client = ctx.client()?;
    let added: Cert = {
        let _spinner = Spinner::start("Adding certificate…", ctx.json);
        client.post(
            &format!("/v1/apps/{app}/certs"),
            &serde_json::json!({ "certificate": certificate, "key": key }),
        )?
    };
    if ctx.json {
        output::print(&output::json(&added));
    } else {
        output::print(&format!(
            "Added certificate {} to {} for {} (expires {}). HTTPS requests for these names \
             get it from now on.\n",
            added.id,
            added.app,
            added.names.join(", "),
            added.not_after
        ));
    }
    Ok(())
}

/// `paas certs:redirect on|off`: plain HTTP requests get a 308 to HTTPS (or not).
pub(super) fn redirect(ctx: &Context, app: &str, state: &str) -> Result<(), CommandError> {
    let on = match state {
        "on" => true,
        "off" => false,
        other => {
            return Err(CommandError::Usage(format!(
                "{other:?} is not on or off: paas certs:redirect on -a {app}"
            )))
        }
    };
    let client = ctx.client()?;
    let answer: serde_json::Value = client.patch(
        &format!("/v1/apps/{app}/tls"),
        &serde_json::json!({ "https_redirect": on }),
    )?;
    if ctx.json {
        output::print(&output::json(&answer));
    } else if on {
        output::print(&format!(
            "HTTP requests for {app} are now redirected to HTTPS (308).\n"
        ));
    } else {
        output::print(&format!("{app} answers plain HTTP again.\n"));
    }
    Ok(())
}

pub(super) fn remove(ctx: &Context, app: &str, id: &str) -> Result<(), CommandError> {
    let client = ctx.client()?;
    client.delete(&format!("/v1/apps/{app}/certs/{id}"))?;
    if !ctx.json {
        output::print(&format!("Removed certificate {id} from {app}.\n"));
    }
    Ok(())
}
