//! `paas certs -a APP`, `paas certs:add CERT KEY -a APP`, `paas certs:remove ID -a APP`: an
//! app's TLS certificates, which the router presents over HTTPS to clients asking (SNI) for
//! a host name they cover. `paas certs:auto on|off -a APP`: certificates ordered from the
//! controller's ACME CA for every custom domain (HTTP-01), renewed 30 days before expiry;
//! `paas certs` shows each domain's state (`auto: issued / pending / failed: <reason>`).

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

/// One custom domain's automatic certificate, as the controller returns it.
#[derive(Debug, Deserialize, serde::Serialize)]
struct AcmeDomain {
    hostname: String,
    state: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    not_after: String,
}

/// An app's automatic certificate setting and states.
#[derive(Debug, Deserialize, serde::Serialize)]
struct AcmeStatus {
    enabled: bool,
    #[serde(default)]
    available: bool,
    #[serde(default)]
    domains: Vec<AcmeDomain>,
}

/// `auto: issued (expires …)`, `auto: pending`, `auto: failed: <reason>`, one per domain.
fn acme_lines(app: &str, s: &AcmeStatus) -> String {
    if !s.enabled {
        return String::new();
    }
    let mut out = format!("Automatic certificates (paas certs:auto) are on for {app}:\n");
    if s.domains.is_empty() {
        out.push_str("  (no custom domains yet: paas domains:add HOST)\n");
    }
    for d in &s.domains {
        let state = match d.state.as_str() {
            "failed" => format!("failed: {}", d.reason),
            "issued" if !d.not_after.is_empty() => format!("issued (expires {})", d.not_after),
            other => other.to_string(),
        };
        out.push_str(&format!("  {}  auto: {state}\n", d.hostname));
    }
    out
}

/// ID, NAMES, EXPIRES, ISSUER, then the automatic certificates' states.
pub(super) fn list(ctx: &Context, app: &str) -> Result<(), CommandError> {
    let client = ctx.client()?;
    let certs: Vec<Cert> = {
        let _spinner = Spinner::start("Listing certificates…", ctx.json);
        client.get(&format!("/v1/apps/{app}/certs"))?
    };
    // A controller without automatic certificates (older version) has no such route.
    let acme: Option<AcmeStatus> = client.get(&format!("/v1/apps/{app}/acme")).ok();
    if ctx.json {
        output::print(&output::json(&certs));
        return Ok(());
    }
    let auto = acme
        .as_ref()
        .map(|s| acme_lines(app, s))
        .unwrap_or_default();
    if certs.is_empty() {
        output::print(&format!(
            "{app} has no certificates; HTTPS uses the router's self-signed default. Add one \
             with `paas certs:add CERT.pem KEY.pem -a {app}`.\n{auto}"
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
    if !auto.is_empty() {
        output::print(&format!("\n{auto}"));
    }
    Ok(())
}

/// `paas certs:auto [on|off]`: order certificates for every custom domain from the
/// controller's ACME CA (or stop); without a state, shows it.
pub(super) fn auto(ctx: &Context, app: &str, state: Option<&str>) -> Result<(), CommandError> {
    let client = ctx.client()?;
    let path = format!("/v1/apps/{app}/acme");
    let status: AcmeStatus = match state {
        None => client.get(&path)?,
        Some(s) => {
            let on = match s {
                "on" => true,
                "off" => false,
                other => {
                    return Err(CommandError::Usage(format!(
                        "{other:?} is not on or off: paas certs:auto on -a {app}"
                    )))
                }
            };
            client.patch(&path, &serde_json::json!({ "enabled": on }))?
        }
    };
    if ctx.json {
        output::print(&output::json(&status));
    } else if status.enabled {
        output::print(&format!(
            "{}Certificates are ordered in the background; `paas certs -a {app}` shows their \
             state.\n",
            acme_lines(app, &status)
        ));
    } else if !status.available {
        output::print(&format!(
            "Automatic certificates are off for {app} (this controller has no ACME CA: \
             --acme-directory).\n"
        ));
    } else {
        output::print(&format!(
            "Automatic certificates are off for {app}; the certificates they issued were \
             removed (uploaded ones stay).\n"
        ));
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_lines_show_each_state() {
        let s: AcmeStatus = serde_json::from_value(serde_json::json!({
            "enabled": true,
            "available": true,
            "domains": [
                {"hostname": "a.example.test", "state": "issued", "reason": "",
                 "not_after": "2027-01-01T00:00:00Z", "cert_id": "c1"},
                {"hostname": "b.example.test", "state": "pending"},
                {"hostname": "c.example.test", "state": "failed", "reason": "NXDOMAIN"}
            ]
        }))
        .unwrap();
        let text = acme_lines("hello", &s);
        assert!(text.contains("a.example.test  auto: issued (expires 2027-01-01T00:00:00Z)"));
        assert!(text.contains("b.example.test  auto: pending"));
        assert!(text.contains("c.example.test  auto: failed: NXDOMAIN"));
        let off: AcmeStatus =
            serde_json::from_value(serde_json::json!({"enabled": false})).unwrap();
        assert_eq!(acme_lines("hello", &off), "");
    }
}
