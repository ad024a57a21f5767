//! The ACME client's own state and settings: the account (made or loaded once, kept in the
//! store per directory URL), the lock that keeps one order at a time, and why an order
//! failed. Held in the controller's shared state; the orders themselves are `super`'s.

use std::path::PathBuf;
use std::time::Duration;

use instant_acme::{Account, AccountCredentials, NewAccount};

use crate::store::Store;

/// How long one order may take (challenge validation and issuance), at most.
pub const ORDER_TIMEOUT: Duration = Duration::from_secs(120);

/// `--acme-directory`, `--acme-email`, `--acme-ca-file`.
#[derive(Debug, Clone)]
pub struct AcmeSettings {
    /// The ACME directory URL of the CA.
    pub directory: String,
    /// The account's contact address (optional).
    pub email: Option<String>,
    /// A PEM file with the root certificate the CA's own HTTPS is checked against (for a
    /// test CA such as Pebble); default: the system's roots.
    pub ca_file: Option<PathBuf>,
}

/// Why an order failed (the message lands in `paas certs` as `failed: <reason>`).
#[derive(Debug, thiserror::Error)]
pub enum AcmeError {
    #[error(
        "automatic certificates are off on this controller: start it with --acme-directory URL"
    )]
    Off,
    #[error("the ACME CA at {directory}: {source}")]
    Client {
        directory: String,
        #[source]
        source: instant_acme::Error,
    },
    #[error("the ACME account stored for {0} does not parse: {1}")]
    Credentials(String, String),
    #[error("the CA offers no http-01 challenge for {0}")]
    NoHttp01(String),
    #[error("the authorization for {host} is {status}: the CA could not reach http://{host}/.well-known/acme-challenge/ on port 80 of this router")]
    Authorization { host: String, status: String },
    #[error("the order for {host} ended {status}{detail}")]
    Order {
        host: String,
        status: String,
        detail: String,
    },
    #[error("the order for {0} took longer than {ORDER_TIMEOUT:?}")]
    Timeout(String),
    #[error("making the key and CSR: {0}")]
    Csr(String),
    #[error("the issued certificate is not usable: {0}")]
    Issued(String),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

/// The controller's ACME client state: the account, made or loaded once, and the lock
/// that keeps one order at a time.
#[derive(Default)]
pub struct Acme {
    account: tokio::sync::Mutex<Option<Account>>,
    pub(super) orders: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Acme {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Acme").finish_non_exhaustive()
    }
}

pub(super) fn client(directory: &str) -> impl Fn(instant_acme::Error) -> AcmeError + '_ {
    move |source| AcmeError::Client {
        directory: directory.to_string(),
        source,
    }
}

impl Acme {
    /// The account for `s.directory`: cached, else loaded from the store, else created and
    /// stored.
    pub(super) async fn account(
        &self,
        store: &Store,
        s: &AcmeSettings,
    ) -> Result<Account, AcmeError> {
        let mut cached = self.account.lock().await;
        if let Some(a) = cached.as_ref() {
            return Ok(a.clone());
        }
        let err = client(&s.directory);
        let builder = || match &s.ca_file {
            Some(path) => Account::builder_with_root(path),
            None => Account::builder(),
        };
        let account = match store.acme_account(&s.directory).await? {
            Some(json) => {
                let creds: AccountCredentials = serde_json::from_str(&json)
                    .map_err(|e| AcmeError::Credentials(s.directory.clone(), e.to_string()))?;
                builder()
                    .map_err(&err)?
                    .from_credentials(creds)
                    .await
                    .map_err(&err)?
            }
            None => {
                let contact = s.email.as_ref().map(|e| format!("mailto:{e}"));
                let contacts: Vec<&str> = contact.iter().map(String::as_str).collect();
                let (account, creds) = builder()
                    .map_err(&err)?
                    .create(
                        &NewAccount {
                            contact: &contacts,
                            terms_of_service_agreed: true,
                            only_return_existing: false,
                        },
                        s.directory.clone(),
                        None,
                    )
                    .await
                    .map_err(&err)?;
                let json = serde_json::to_string(&creds)
                    .map_err(|e| AcmeError::Credentials(s.directory.clone(), e.to_string()))?;
                store
                    .put_acme_account(&s.directory, &json, &crate::util::now_rfc3339())
                    .await?;
                tracing::info!(directory = %s.directory, id = account.id(), "ACME account made");
                account
            }
        };
        *cached = Some(account.clone());
        Ok(account)
    }
}
