//! Automatic certificates (`paas certs:auto on`, Heroku ACM's equivalent): for every custom
//! domain of an app that asked for them, the controller orders a certificate from an ACME
//! CA (`--acme-directory URL`) with an HTTP-01 challenge, which the router answers from its
//! [`Challenges`](crate::router::acme::Challenges) map; the issued chain and key are stored
//! as an ordinary `certs` row (as `certs:add` stores uploads) and the router's set is
//! reloaded, so the next handshake presents it. A timer renews certificates with fewer than
//! [`RENEW_BEFORE_SECS`] left and retries failed or new domains; it runs on the leading
//! controller only (next to the scheduler loop). The account (its key) is kept in the store
//! per directory URL. Off (every call says so) when no directory is configured.
//!
//! Client: the `instant-acme` crate (RFC 8555, rustls). One order at a time per controller.

use std::sync::Arc;
use std::time::Duration;

use instant_acme::{
    AuthorizationStatus, ChallengeType, Identifier, NewOrder, OrderStatus, RetryPolicy,
};

pub mod account;

use account::client;
pub use account::{Acme, AcmeError, AcmeSettings, ORDER_TIMEOUT};

use crate::router::tls::{check_cert, Wildcards};
use crate::state::Controller;
use crate::store::{acme_state, AcmeDomainRow, CertRow};

/// Certificates with fewer seconds than this left are renewed (30 days).
pub const RENEW_BEFORE_SECS: i64 = 30 * 86_400;
/// How often the timer looks for certificates to order or renew.
pub const TIMER_INTERVAL: Duration = Duration::from_secs(3600);
/// Seconds an issued certificate's start may lie ahead of this controller's clock.
const CLOCK_SKEW_SECS: i64 = 60;

/// Marks the app's domains that have no state yet as pending and orders what is due, in
/// the background. Called when `certs:auto on` is set.
pub fn kick(c: &Arc<Controller>, app: &str) {
    let (c, app) = (Arc::clone(c), app.to_string());
    tokio::spawn(async move {
        if let Err(e) = run_app(&c, &app).await {
            tracing::warn!(%app, error = %e, "automatic certificates");
        }
    });
}

/// Orders certificates for the app's custom domains that have none, failed before, or
/// expire within [`RENEW_BEFORE_SECS`].
pub async fn run_app(c: &Controller, app: &str) -> Result<(), AcmeError> {
    let Some(settings) = c.settings.acme.clone() else {
        return Err(AcmeError::Off);
    };
    let now = crate::util::unix_ms() / 1000;
    let states = c.store.acme_domains(Some(app)).await?;
    let domains = c.store.domains(Some(app)).await?;
    // Forget states of domains that were removed.
    for s in &states {
        if !domains.iter().any(|d| d.hostname == s.hostname) {
            c.store.remove_acme_domain(&s.hostname).await?;
        }
    }
    let mut due = Vec::new();
    for d in &domains {
        let state = states.iter().find(|s| s.hostname == d.hostname);
        let needed = match state {
            None => true,
            Some(s) if s.state == acme_state::ISSUED => s.not_after - now < RENEW_BEFORE_SECS,
            Some(_) => true,
        };
        if !needed {
            continue;
        }
        let mut row = state.cloned().unwrap_or_else(|| AcmeDomainRow {
            hostname: d.hostname.clone(),
            app: app.to_string(),
            state: acme_state::PENDING.into(),
            reason: String::new(),
            cert_id: String::new(),
            not_after: 0,
            updated_at: String::new(),
        });
        if row.state != acme_state::ISSUED {
            row.state = acme_state::PENDING.into();
            row.reason.clear();
        }
        row.updated_at = crate::util::now_rfc3339();
        c.store.put_acme_domain(&row).await?;
        due.push(row);
    }
    for row in due {
        issue(c, &settings, row).await?;
    }
    Ok(())
}

/// Orders one certificate and records the outcome in the domain's state. Store errors are
/// returned; an order's failure is recorded as `failed: <reason>`.
async fn issue(
    c: &Controller,
    settings: &AcmeSettings,
    mut row: AcmeDomainRow,
) -> Result<(), AcmeError> {
    let _one_at_a_time = c.acme.orders.lock().await;
    let host = row.hostname.clone();
    // Another pass (the timer, or `certs:auto on` again) may have ordered it meanwhile:
    // go on from the stored state, and only if it is still due.
    if let Some(now_row) = c
        .store
        .acme_domains(Some(&row.app))
        .await?
        .into_iter()
        .find(|d| d.hostname == host)
    {
        let left = now_row.not_after - crate::util::unix_ms() / 1000;
        if now_row.state == acme_state::ISSUED && left >= RENEW_BEFORE_SECS {
            return Ok(());
        }
        row = now_row;
    }
    tracing::info!(app = %row.app, %host, "ordering a certificate");
    let result = match tokio::time::timeout(ORDER_TIMEOUT, order(c, settings, &host)).await {
        Ok(r) => r,
        Err(_) => Err(AcmeError::Timeout(host.clone())),
    }
    .and_then(|(chain, key)| {
        // Checked as of a minute from now: a CA whose clock is a little ahead of ours (or
        // that does not backdate, as Pebble) issues certificates valid from "now".
        let now = crate::util::unix_ms() / 1000 + CLOCK_SKEW_SECS;
        // Only the app's own host: a certificate naming anything else is not stored.
        check_cert(
            &chain,
            &key,
            std::slice::from_ref(&host),
            Wildcards::Refused,
            now,
        )
        .map(|checked| (chain, key, checked))
        .map_err(|e| AcmeError::Issued(e.to_string()))
    });
    row.updated_at = crate::util::now_rfc3339();
    // Turned off (or the domain removed) while the order ran: keep nothing.
    let wanted = c.store.acme_apps().await?.contains(&row.app)
        && c.store
            .domains(Some(&row.app))
            .await?
            .iter()
            .any(|d| d.hostname == host);
    if !wanted {
        return Ok(());
    }
    match result {
        Ok((chain, key, checked)) => {
            let cert = CertRow {
                id: crate::util::random_hex(8),
                app: row.app.clone(),
                names: checked.names,
                cert_pem: chain,
                key_pem: key,
                not_after: checked.not_after,
                subject: checked.subject,
                issuer: checked.issuer,
                created_at: crate::util::now_rfc3339(),
            };
            c.store.add_cert(&cert).await?;
            if !row.cert_id.is_empty() {
                c.store.remove_cert(&row.app, &row.cert_id).await?;
            }
            row.cert_id = cert.id.clone();
            row.not_after = checked.not_after_unix;
            row.state = acme_state::ISSUED.into();
            row.reason.clear();
            c.store.put_acme_domain(&row).await?;
            if let Err(e) = crate::routing::load_certs(&c.store, &c.routes).await {
                tracing::warn!(error = %e, "reloading the router's certificates failed");
            }
            tracing::info!(app = %row.app, %host, id = %cert.id, not_after = %cert.not_after,
                "certificate issued");
        }
        Err(e) => {
            tracing::warn!(app = %row.app, %host, error = %e, "certificate order failed");
            // A certificate that is still valid stays presented; the state says the renewal
            // failed.
            row.state = acme_state::FAILED.into();
            row.reason = e.to_string();
            c.store.put_acme_domain(&row).await?;
        }
    }
    Ok(())
}

/// One ACME order for `host`: returns the PEM chain and the PEM key.
async fn order(
    c: &Controller,
    settings: &AcmeSettings,
    host: &str,
) -> Result<(String, String), AcmeError> {
    let err = client(&settings.directory);
    let account = c.acme.account(&c.store, settings).await?;
    let ids = [Identifier::Dns(host.to_string())];
    let mut order = account
        .new_order(&NewOrder::new(&ids))
        .await
        .map_err(&err)?;
    let challenges = c.routes.challenges().clone();
    let mut tokens = Vec::new();
    let result = async {
        let mut auths = order.authorizations();
        while let Some(auth) = auths.next().await {
            let mut auth = auth.map_err(&err)?;
            match auth.status {
                AuthorizationStatus::Pending => {}
                AuthorizationStatus::Valid => continue,
                other => {
                    return Err(AcmeError::Authorization {
                        host: host.to_string(),
                        status: format!("{other:?}").to_lowercase(),
                    })
                }
            }
            let mut ch = auth
                .challenge(ChallengeType::Http01)
                .ok_or_else(|| AcmeError::NoHttp01(host.to_string()))?;
            let ka = ch.key_authorization();
            challenges.insert(&ch.token, host, ka.as_str());
            tokens.push(ch.token.clone());
            ch.set_ready().await.map_err(&err)?;
        }
        let retry = RetryPolicy::new()
            .initial_delay(Duration::from_millis(250))
            .backoff(1.5)
            .timeout(ORDER_TIMEOUT);
        let status = order.poll_ready(&retry).await.map_err(&err)?;
        if status != OrderStatus::Ready {
            let detail = order
                .state()
                .error
                .as_ref()
                .map(|p| format!(": {p}"))
                .unwrap_or_default();
            return Err(AcmeError::Order {
                host: host.to_string(),
                status: format!("{status:?}").to_lowercase(),
                detail,
            });
        }
        let key = rcgen::KeyPair::generate().map_err(|e| AcmeError::Csr(e.to_string()))?;
        let mut params = rcgen::CertificateParams::new(vec![host.to_string()])
            .map_err(|e| AcmeError::Csr(e.to_string()))?;
        params.distinguished_name = rcgen::DistinguishedName::new();
        let csr = params
            .serialize_request(&key)
            .map_err(|e| AcmeError::Csr(e.to_string()))?;
        order.finalize_csr(csr.der()).await.map_err(&err)?;
        let chain = order.poll_certificate(&retry).await.map_err(&err)?;
        Ok((chain, key.serialize_pem()))
    }
    .await;
    for t in &tokens {
        challenges.remove(t);
    }
    result
}

/// Every [`TIMER_INTERVAL`]: orders and renews what is due for every app with automatic
/// certificates on. Runs while this controller leads; returns at once when ACME is off.
pub async fn renew_loop(c: Arc<Controller>) {
    if c.settings.acme.is_none() {
        return;
    }
    loop {
        match c.store.acme_apps().await {
            Ok(apps) => {
                for app in apps {
                    if let Err(e) = run_app(&c, &app).await {
                        tracing::warn!(%app, error = %e, "automatic certificates");
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "listing apps with automatic certificates"),
        }
        tokio::time::sleep(TIMER_INTERVAL).await;
    }
}
