//! Crash consistency (issue 16): the standalone controller SIGKILLs itself at a named point
//! of a push (`PAAS_TEST_KILL_AT`, see `controller/src/builder/leftovers.rs`), is started
//! again, and what it leaves is checked, with real git, agent and containers:
//!
//! - before the release is made (receiving, building, pushing the layer, the release
//!   command): v1 keeps
//!   serving and stays current, the build is `failed` saying the controller restarted;
//! - once the release is made (releasing, switching): the release stands and the
//!   restarted scheduler finishes rolling it out;
//! - once the new release serves and the old job drains (draining): the release stands;
//! - always: no build or release-command job, no build directory, cgroup, mount, veth or
//!   registry upload that no job accounts for, one agent, and the next push deploys.
//!
//! The agent and both together as victims: `crash_points_agent.rs`.

mod crash_common;

use crash_common::{kill_at, Victim::Controller};

#[test]
fn kill_while_receiving_the_source() {
    kill_at(Controller, "receiving");
}

#[test]
fn kill_while_building() {
    kill_at(Controller, "building");
}

#[test]
fn kill_before_pushing_the_layer() {
    kill_at(Controller, "pushing-layer");
}

#[test]
fn kill_during_the_release_command() {
    kill_at(Controller, "release-phase");
}

#[test]
fn kill_right_after_the_release_is_made() {
    kill_at(Controller, "releasing");
}

#[test]
fn kill_while_switching_to_the_new_release() {
    kill_at(Controller, "switching");
}

#[test]
fn kill_while_draining_the_old_job() {
    kill_at(Controller, "draining");
}

/// A chunked registry upload (a build job pushing its layer, cut by a kill of the
/// controller) is removed when the controller starts again.
#[test]
fn a_chunked_upload_cut_by_a_kill_is_removed_at_the_next_start() {
    if !paas_e2e::require_root() {
        return;
    }
    let mut paas = paas_e2e::Paas::start();
    let client = paas.client();
    let resp = client
        .post(format!("{}/v2/im5/cut/blobs/uploads/", paas.api))
        .bearer_auth(&paas.token)
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 202, "{}", resp.text().unwrap());
    let location = resp.headers()["location"].to_str().unwrap().to_string();
    let resp = client
        .patch(format!("{}{location}", paas.api))
        .bearer_auth(&paas.token)
        .header("content-type", "application/octet-stream")
        .body(vec![7u8; 4096])
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 202, "{}", resp.text().unwrap());
    let uploads = paas.data.path().join("registry/uploads");
    let count = || std::fs::read_dir(&uploads).map_or(0, |d| d.count());
    assert_eq!(count(), 1, "the upload is under {}", uploads.display());

    paas.kill_controller();
    paas.restart();
    assert_eq!(count(), 0, "the cut upload is left:\n{}", paas.log());
}
