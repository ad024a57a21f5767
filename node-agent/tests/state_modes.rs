//! The agent's state dir is its own (issue 14, "Readable secrets": any local user read the
//! agent credential from `api-token` and a job's config vars from `spec.json`, then drove
//! the agent API). Under umask 0 (the widest, so no mode here is the umask's doing):
//!
//! * a state dir of mode 755 with 644 credential, address book, job spec and container
//!   state is fixed when the agent opens it (0700 / 0600);
//! * what the agent makes is private: the state dir, `api-token`, and a new job's
//!   `spec.json` (with the app's config vars) and `status.json`, through the real API;
//! * a credential owned by another user stops the agent with a message saying what to do.

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use axum::body::Body;
use axum::http::Request;
use common::{config, need_root, unique_names};
use paas_node_agent::{app, Agent};
use tower::ServiceExt;

const TOKEN: &str = "s3cret-node-token";

fn widest_umask() {
    // SAFETY: umask(2) only sets the process's file mode mask; it cannot fail.
    unsafe {
        libc::umask(0);
    }
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .mode()
        & 0o7777
}

fn chmod(p: &Path, m: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap();
}

/// Asks the agent (through its API) to run a job carrying a config var; its image cannot
/// be pulled (nothing listens on port 1), so it ends `crashed`, its records stay.
async fn create_job(agent: &std::sync::Arc<Agent>, id: &str) {
    let spec = serde_json::json!({
        "id": id,
        "image": {"registry": "http://127.0.0.1:1", "repository": "apps/x", "reference": "v1"},
        "command": ["/bin/true"],
        "env": {"DATABASE_URL": "postgres://user:secret@db/x"},
    });
    let req = Request::builder()
        .method("POST")
        .uri("/v1/jobs")
        .header("authorization", format!("Bearer {TOKEN}"))
        .header("content-type", "application/json")
        .body(Body::from(spec.to_string()))
        .unwrap();
    let resp = app(agent.clone()).oneshot(req).await.unwrap();
    assert!(
        !resp.status().is_success(),
        "the pull cannot succeed: {}",
        resp.status()
    );
}

#[tokio::test]
async fn what_the_agent_makes_is_private_and_open_modes_are_fixed() {
    widest_umask();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("state");
    let agent = Agent::open(config(&dir, TOKEN, &unique_names())).expect("open agent");
    create_job(&agent, "secret-job").await;
    let spec = dir.join("jobs/secret-job/spec.json");
    assert!(std::fs::read_to_string(&spec)
        .unwrap()
        .contains("secret@db"));
    assert_eq!(mode(&dir), 0o700);
    for f in [
        "api-token",
        "jobs/secret-job/spec.json",
        "jobs/secret-job/status.json",
    ] {
        assert_eq!(mode(&dir.join(f)), 0o600, "{f}");
    }
    drop(agent);

    // What an older agent left: everything readable by every local user.
    chmod(&dir, 0o755);
    std::fs::create_dir_all(dir.join("containers/c1")).unwrap();
    std::fs::write(dir.join("containers/c1/state.json"), "{}").unwrap();
    std::fs::write(dir.join("network.json"), "{}").unwrap();
    let open = [
        "api-token",
        "network.json",
        "jobs/secret-job/spec.json",
        "jobs/secret-job/status.json",
        "containers/c1/state.json",
    ];
    for f in open {
        chmod(&dir.join(f), 0o644);
    }
    let token = std::fs::read_to_string(dir.join("api-token")).unwrap();
    let agent = Agent::open(config(&dir, TOKEN, &unique_names())).expect("open agent again");
    assert_eq!(mode(&dir), 0o700);
    for f in open {
        assert_eq!(mode(&dir.join(f)), 0o600, "{f}");
    }
    assert_eq!(
        agent.credential.token(),
        token.trim(),
        "the same credential"
    );
}

#[test]
fn a_credential_owned_by_another_user_stops_the_agent() {
    if !need_root("a_credential_owned_by_another_user_stops_the_agent") {
        return;
    }
    widest_umask();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("state");
    drop(Agent::open(config(&dir, TOKEN, &unique_names())).expect("open agent"));
    std::os::unix::fs::chown(dir.join("api-token"), Some(65534), Some(65534)).unwrap();
    let err = Agent::open(config(&dir, TOKEN, &unique_names()))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("api-token is owned by uid 65534")
            && err.contains("chown -R 0")
            && err.contains("start again"),
        "{err}"
    );
}
