//! Hostile tenants, part 4: limits that must not be turned against others, secrets on
//! disk, config values that break later, and honest release status (issue 14, "Locking
//! everyone out", "Readable secrets", "Values that break later").
//!
//! * mallory sends 80 bad tokens from the address everyone shares here (127.0.0.1): the
//!   limiter must still answer her with 429, and every valid credential from that address
//!   (admin token, vic's and her own API token, git push, registry, the local agent's
//!   heartbeats) keeps working, so the node stays up and vic's app keeps serving.
//! * An unprivileged local user (uid 65534) must not read the data dir's secrets: the
//!   store, tokens, the agent credential, job specs (which hold config vars).
//! * Config values with a NUL byte or over 32 KB, or a config over 64 KB in all: 422 naming
//!   the key and the limit, nothing stored, no release.
//! * A release whose jobs cannot start is `failed` with the reason, never `succeeded`.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use paas_e2e::tenants::{eventually, World, VIC_PAGE};
use serde_json::json;

#[test]
fn bad_tokens_from_one_address_never_lock_out_valid_callers() {
    let Some(w) = World::start() else { return };
    // The attack: 80 bad bearer tokens in a burst (the took 40 s).
    let mut limited = 0;
    let mut retry_after = true;
    for i in 0..80 {
        let a = w.paas.call(
            Some(&format!("paas_{:064x}", i + 1)),
            "GET",
            "/v1/apps",
            None,
        );
        assert!(a.status == 401 || a.status == 429, "bad token {i}: {a}");
        if a.status == 429 {
            limited += 1;
            retry_after &= a.headers.contains_key("retry-after");
        }
    }
    assert!(
        limited > 0 && retry_after,
        "the limiter must still slow the bad tokens (429 with Retry-After): {limited} of 80"
    );

    // Every valid credential from the same address still works, for longer than the
    // node's heartbeat timeout.
    let mut wrong = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut rounds = 0;
    while Instant::now() < deadline && wrong.is_empty() {
        rounds += 1;
        for (who, token) in [
            ("admin", w.paas.token.as_str()),
            ("vic", w.vic.token.as_str()),
            ("mallory", w.mallory.token.as_str()),
        ] {
            let a = w.paas.call(Some(token), "GET", "/v1/apps", None);
            if a.status != 200 {
                wrong.push(format!("{who}'s valid token, round {rounds}: {a}"));
            }
        }
        let reg = w
            .paas
            .client()
            .get(format!("{}/v2/apps/vic/tags/list", w.paas.api))
            .basic_auth("vic", Some(&w.vic.token))
            .send()
            .unwrap();
        if reg.status().as_u16() != 200 {
            wrong.push(format!("vic's registry pull: {}", reg.status()));
        }
        match w.paas.request_app("vic", "/") {
            Ok((200, body)) if body.contains(VIC_PAGE) => {}
            other => wrong.push(format!("vic's app, round {rounds}: {other:?}")),
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let nodes = w.as_admin("GET", "/v1/nodes", None).json();
    if nodes[0]["state"] != "up" {
        wrong.push(format!("the node went down: {nodes}"));
    }
    w.vic_src.write("extra.txt", "v2\n");
    w.vic_src.commit("vic v2");
    let push = w.push_as(&w.vic, &w.vic_src, "vic");
    if !push.ok {
        wrong.push(format!("vic's git push: {}", push.output));
    }
    assert!(
        wrong.is_empty(),
        "valid callers were refused after mallory's bad tokens:\n{}",
        wrong.join("\n")
    );
    w.paas
        .wait_for_body("vic", VIC_PAGE, Duration::from_secs(30))
        .unwrap();
}

/// Regular files under `dir` (not the registry's blobs or git objects), at most 1 MiB.
fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let path = e.path();
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        let name = e.file_name().to_string_lossy().to_string();
        if name == "controller.log" || name == "cli-home" {
            // The harness's own files: its capture of the controller's output (which
            // prints the admin token, as `deploy/paas-up` does on a terminal) and the
            // CLI's HOME.
            continue;
        }
        if meta.is_dir() {
            if name != "registry" && name != "objects" && name != "layers" && name != "rootfs" {
                files_under(&path, out);
            }
        } else if meta.is_file() && meta.len() <= 1 << 20 {
            out.push(path);
        }
    }
}

/// Whether uid/gid 65534 can read `path` (a real attempt, with setpriv).
fn nobody_reads(path: &Path) -> bool {
    Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "cat"])
        .arg(path)
        .output()
        .expect("setpriv (util-linux) is installed")
        .status
        .success()
}

#[test]
fn secrets_on_disk_are_not_readable_by_other_local_users() {
    let Some(w) = World::start() else { return };
    let secret = "vic-config-secret-e41a";
    let r = w.vic_cli(&["config:set", &format!("API_KEY={secret}"), "-a", "vic"]);
    assert!(r.ok(), "{r:?}");
    assert!(
        eventually(60, || w.paas.agent_jobs().is_ok_and(|jobs| jobs
            .iter()
            .any(|j| j["state"] == "up"
                && j["id"]
                    .as_str()
                    .is_some_and(|id| id.starts_with("vic-v2"))))),
        "vic's v2 job runs"
    );
    let data = w.paas.data.path();
    let agent_token = std::fs::read_to_string(data.join("agent/api-token")).unwrap();
    let mut wrong = Vec::new();
    for dir in [data.to_path_buf(), data.join("agent")] {
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
        if mode != 0o700 {
            wrong.push(format!("{} is {mode:o}, not 700", dir.display()));
        }
    }
    // Every file that holds one of the secrets, and the store itself.
    let mut files = Vec::new();
    files_under(data, &mut files);
    let needles = [
        secret,
        w.paas.token.as_str(),
        agent_token.trim(),
        w.vic.token.as_str(),
    ];
    let mut holding = Vec::new();
    for f in &files {
        let bytes = std::fs::read(f).unwrap_or_default();
        let text = String::from_utf8_lossy(&bytes);
        let name = f.file_name().unwrap().to_string_lossy().to_string();
        if needles.iter().any(|n| text.contains(n))
            || name.starts_with("paas.db")
            || name == "spec.json"
            || name.ends_with("token")
        {
            holding.push(f.clone());
        }
    }
    assert!(
        holding.iter().any(|f| f.ends_with("paas.db"))
            && holding.iter().any(|f| f.ends_with("spec.json"))
            && holding.iter().any(|f| f.ends_with("agent/api-token")),
        "the store, a job spec and the agent credential were found: {holding:?}"
    );
    for f in &holding {
        let meta = std::fs::metadata(f).unwrap();
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 || meta.uid() != 0 {
            wrong.push(format!(
                "{} is {mode:o} (owner {})",
                f.display(),
                meta.uid()
            ));
        }
        if nobody_reads(f) {
            wrong.push(format!("uid 65534 read {}", f.display()));
        }
    }
    assert!(
        wrong.is_empty(),
        "secrets are open to other local users:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn config_values_with_nul_or_too_big_are_refused() {
    let Some(w) = World::start() else { return };
    let big = "x".repeat(33 * 1024);
    let mib = "y".repeat(1 << 20);
    let third = "z".repeat(24 * 1024);
    let mut wrong = Vec::new();
    for (what, body, key, limit) in [
        (
            "a NUL byte",
            json!({"NUL_VALUE": "a\u{0}b"}),
            "NUL_VALUE",
            "NUL",
        ),
        ("33 KB", json!({"BIG_VALUE": big}), "BIG_VALUE", "32"),
        ("1 MiB", json!({"HUGE_VALUE": mib}), "HUGE_VALUE", "32"),
        (
            "72 KB in all",
            json!({"PART_A": third, "PART_B": third, "PART_C": third}),
            "PART_",
            "64",
        ),
    ] {
        let a = w.as_vic("PATCH", "/v1/apps/vic/config", Some(&body));
        let m = a.message();
        if a.status != 422 || !m.contains(key) || !m.contains(limit) {
            wrong.push(format!(
                "{what}: wanted 422 naming {key} and {limit}, got {a}"
            ));
        }
    }
    // The CLI says so.
    let r = w.vic_cli(&["config:set", &format!("BIG_VALUE={big}"), "-a", "vic"]);
    if r.ok() || !r.stderr.contains("BIG_VALUE") {
        wrong.push(format!("paas config:set BIG_VALUE=<33 KB>: {:?}", r.code));
    }
    assert!(
        wrong.is_empty(),
        "config values that break later were accepted:\n{}",
        wrong.join("\n")
    );
    w.assert_vic_untouched();
    // A value well inside the limits still works, and its release serves.
    let ok = "v".repeat(16 * 1024);
    let a = w.as_vic(
        "PATCH",
        "/v1/apps/vic/config",
        Some(&json!({"OK_VALUE": ok})),
    );
    assert_eq!(a.status, 200, "a 16 KB value: {a}");
    let r = w.vic_cli(&["run", "-a", "vic", "--", "sh", "-c", "echo ${#OK_VALUE}"]);
    assert_eq!(r.stdout.trim(), "16384", "{r:?}");
    w.paas
        .wait_for_body("vic", VIC_PAGE, Duration::from_secs(30))
        .unwrap();
}

#[test]
fn a_release_whose_jobs_cannot_start_is_failed() {
    let Some(mut w) = World::start() else { return };
    // vic's web process refuses to start while BREAK=yes.
    w.vic_src.write(
        "Procfile",
        "web: test \"$BREAK\" != yes && exec httpd -f -p $PORT -h /app\n",
    );
    w.vic_src.commit("vic v2: a Procfile");
    let push = w.push_as(&w.vic, &w.vic_src, "vic");
    assert!(push.ok, "{}", push.output);
    w.paas
        .wait_for_body("vic", VIC_PAGE, Duration::from_secs(30))
        .unwrap();
    w.remember_vic();
    let r = w.vic_cli(&["config:set", "BREAK=yes", "-a", "vic"]);
    assert!(r.ok(), "{r:?}");
    // The new release (v3) never serves: it must end up failed, with why.
    let mut last = serde_json::Value::Null;
    let failed = eventually(120, || {
        let listed = w.as_vic("GET", "/v1/apps/vic/releases", None).json();
        let v3 = listed
            .as_array()
            .and_then(|l| l.iter().find(|r| r["version"] == 3).cloned())
            .unwrap_or_default();
        last = v3.clone();
        v3["status"] == "failed"
    });
    assert!(
        failed,
        "v3 (whose web process exits at once) is not marked failed: {last}"
    );
    let reason = last["status_reason"].as_str().unwrap_or_default();
    assert!(!reason.is_empty(), "a failed release says why: {last}");
    let r = w.vic_cli(&["releases", "-a", "vic"]);
    assert!(r.stdout.contains("failed"), "paas releases shows it: {r:?}");
    // The previous release keeps serving.
    w.paas
        .wait_for_body("vic", VIC_PAGE, Duration::from_secs(30))
        .unwrap();
}
