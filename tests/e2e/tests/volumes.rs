//! Persistent volumes (issue 17) on a real standalone paas, with real git pushes and
//! containers: an app's file on its volume survives a restart, a redeploy and an agent
//! restart; the volume-backed type cannot be scaled past one; another member can neither
//! see nor touch the volume (404) and her own volume of the same name is a different
//! directory owned by her app's uid range; a full volume is ENOSPC for the app (which keeps
//! running) and `paas volumes` says FULL; an app destroyed and made again under the same
//! name starts with no volume, and its old files are deleted from the node.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use paas_e2e::tenants::{eventually, World};
use paas_e2e::{require_root, AppDir, Paas};
use serde_json::{json, Value};

/// Appends a line to /data/boots at every start and serves how many there are and whether
/// /data is a mount point.
const START: &str = r#"mkdir -p /tmp/w /data
echo boot >> /data/boots
mp=$(awk '$2=="/data"' /proc/mounts | wc -l)
echo "boots=$(grep -c boot /data/boots) mp=$mp rev=$REV" > /tmp/w/index.html
exec httpd -f -p $PORT -h /tmp/w
"#;

/// The agent's directories of sized volumes named `name` (one per app that made one).
fn volume_dirs(paas: &Paas, name: &str) -> Vec<PathBuf> {
    let dir = paas.data.path().join("agent/volumes");
    let mut found: Vec<PathBuf> = std::fs::read_dir(&dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            let f = p.file_name().unwrap().to_string_lossy();
            f.starts_with("app-") && f.ends_with(&format!("-{name}"))
        })
        .collect();
    found.sort();
    found
}

fn uid(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .uid()
}

fn wait_body(paas: &Paas, app: &str, needle: &str) {
    paas.wait_for_body(app, needle, Duration::from_secs(90))
        .unwrap_or_else(|e| panic!("{app} never served {needle:?}: {e}\n{}", paas.log()));
}

#[test]
fn a_volume_keeps_the_apps_files_and_belongs_to_that_app_only() {
    let Some(w) = World::start() else { return };
    let paas = &w.paas;
    let src = AppDir::new();
    src.write("Procfile", "web: sh /app/start.sh\n");
    src.write("start.sh", START);
    src.commit("notes");
    let push = w.push_as(&w.vic, &src, "notes");
    assert!(push.ok, "{}\n{}", push.output, paas.log());
    wait_body(paas, "notes", "boots=1 mp=0");

    // Create and mount: the web process restarts with /data on the volume.
    let made = w.vic_cli(&["volumes:create", "data", "-a", "notes", "--size", "64M"]);
    assert!(made.ok(), "{}", made.text());
    assert!(
        made.stdout.contains("Created volume data (64M)"),
        "{}",
        made.text()
    );
    let mounted = w.vic_cli(&[
        "volumes:mount",
        "data",
        "/data",
        "-a",
        "notes",
        "--type",
        "web",
    ]);
    assert!(mounted.ok(), "{}", mounted.text());
    wait_body(paas, "notes", "boots=1 mp=1");

    // A restart, a redeploy and an agent restart keep the file.
    let restart = w.as_vic("POST", "/v1/apps/notes/restart", None);
    assert!(restart.status < 300, "{restart}");
    wait_body(paas, "notes", "boots=2 mp=1");
    let redeploy = w.as_vic(
        "PATCH",
        "/v1/apps/notes/config",
        Some(&json!({"REV": "two"})),
    );
    assert_eq!(redeploy.status, 200, "{redeploy}");
    wait_body(paas, "notes", "boots=3 mp=1 rev=two");
    let agent = paas.agent_pid().expect("agent.pid");
    // SAFETY: kill(2) on this test's own agent, read from its state dir just now.
    unsafe {
        libc::kill(agent, libc::SIGKILL);
    }
    assert!(
        eventually(60, || {
            let now = paas.agent_processes();
            now.len() == 1 && now[0] != agent
        }),
        "no new agent:\n{}",
        paas.log()
    );
    assert!(
        eventually(60, || w
            .as_vic("POST", "/v1/apps/notes/restart", None)
            .status
            < 300),
        "restart after the agent restart refused"
    );
    wait_body(paas, "notes", "boots=4 mp=1");

    // The list says where it is, how big, what uses it.
    let listed = w.vic_cli(&["volumes", "-a", "notes"]);
    assert!(listed.ok(), "{}", listed.text());
    for want in ["data", "64M", "web:/data", "up"] {
        assert!(
            listed.stdout.contains(want),
            "{want:?} missing:\n{}",
            listed.stdout
        );
    }
    let api = w.as_vic("GET", "/v1/apps/notes/volumes/data", None).json();
    assert_eq!(api["node_state"], "up", "{api}");
    assert!(api["used_bytes"].as_u64().unwrap() > 0, "{api}");
    assert_eq!(api["full"], false, "{api}");

    // Single writer: no scaling past one, by API or CLI; no destroy while mounted.
    let scale = w.as_vic(
        "PATCH",
        "/v1/apps/notes/formation",
        Some(&json!({"web": {"quantity": 2}})),
    );
    assert_eq!(scale.status, 409, "{scale}");
    assert!(scale.message().contains("single writer"), "{scale}");
    let scale = w.vic_cli(&["ps:scale", "web=2", "-a", "notes"]);
    assert!(
        !scale.ok() && scale.text().contains("single writer"),
        "{}",
        scale.text()
    );
    let gone = w.as_vic("DELETE", "/v1/apps/notes/volumes/data?confirm=notes", None);
    assert_eq!(gone.status, 409, "{gone}");
    assert!(gone.message().contains("unmount it first"), "{gone}");

    // Mallory sees nothing of it and can do nothing to it.
    for (method, path, body) in [
        ("GET", "/v1/apps/notes/volumes", None),
        ("GET", "/v1/apps/notes/volumes/data", None),
        (
            "POST",
            "/v1/apps/notes/volumes",
            Some(json!({"name": "x", "size": "16M"})),
        ),
        (
            "PUT",
            "/v1/apps/notes/volumes/data/mount",
            Some(json!({"type": "web", "path": "/x"})),
        ),
        ("DELETE", "/v1/apps/notes/volumes/data/mount", None),
        ("DELETE", "/v1/apps/notes/volumes/data?confirm=notes", None),
    ] {
        let a = w.as_mallory(method, path, body.as_ref());
        assert_eq!(a.status, 404, "{method} {path}: {a}");
        assert_eq!(a.code(), "not_found", "{method} {path}: {a}");
    }
    // Her own app's volume of the same name is another directory, of another owner, and
    // naming vic's volume from her app finds only hers.
    w.mallory_app(&[]);
    let hers = w.mallory_cli(&["volumes:create", "data", "-a", "mal", "--size", "16M"]);
    assert!(hers.ok(), "{}", hers.text());
    let a = w.as_mallory("GET", "/v1/apps/mal/volumes", None).json();
    assert_eq!(a.as_array().map(Vec::len), Some(1), "{a}");
    assert!(a[0]["used_bytes"].as_u64().unwrap() < 1 << 20, "{a}");
    // Mounted into her web process, it becomes her app's range's.
    let m = w.mallory_cli(&["volumes:mount", "data", "/data", "-a", "mal"]);
    assert!(m.ok(), "{}", m.text());
    let dirs = volume_dirs(paas, "data");
    assert_eq!(dirs.len(), 2, "{dirs:?}");
    assert!(
        eventually(90, || dirs.iter().all(|d| uid(d) != 0)),
        "mallory's volume never became her app's: {dirs:?}\n{}",
        paas.log()
    );
    let (a, b) = (uid(&dirs[0]), uid(&dirs[1]));
    assert!(a != b && a != 0 && b != 0, "owners {a} and {b} of {dirs:?}");
    let vics = dirs
        .iter()
        .find(|d| d.join("boots").exists())
        .expect("vic's boots");
    assert_eq!(
        uid(&vics.join("boots")),
        uid(vics),
        "the app's file is its range's"
    );

    // Unmount, then destroy (with the confirmation).
    let un = w.vic_cli(&["volumes:unmount", "data", "-a", "notes"]);
    assert!(un.ok(), "{}", un.text());
    let no = w.vic_cli(&["volumes:destroy", "data", "-a", "notes"]);
    assert!(
        !no.ok() && no.text().contains("--confirm notes"),
        "{}",
        no.text()
    );
    assert!(
        eventually(60, || w
            .vic_cli(&[
                "volumes:destroy",
                "data",
                "-a",
                "notes",
                "--confirm",
                "notes"
            ])
            .ok()),
        "the unmounted volume was never destroyed:\n{}",
        paas.log()
    );
    assert_eq!(volume_dirs(paas, "data").len(), 1);
    wait_body(paas, "notes", "mp=0");
    w.assert_vic_untouched();
}

fn admin(paas: &Paas, method: &str, path: &str, body: Option<Value>) -> paas_e2e::Answer {
    paas.call(Some(&paas.token), method, path, body.as_ref())
}

#[test]
fn a_full_volume_is_enospc_and_a_new_app_of_the_same_name_starts_empty() {
    if !require_root() {
        return;
    }
    let paas = Paas::start();
    let src = AppDir::new();
    src.write(
        "Procfile",
        "web: sh -c 'mkdir -p /tmp/w; echo up > /tmp/w/index.html; exec httpd -f -p $PORT -h /tmp/w'\n\
         filler: sh -c 'echo filling; dd if=/dev/zero of=/fill/big bs=1M count=64; echo dd-done; exec sleep 100000'\n",
    );
    src.commit("fill");
    let push = src.push(&paas.git_url("fill"), "main");
    assert!(push.ok, "{}\n{}", push.output, paas.log());
    let made = admin(
        &paas,
        "POST",
        "/v1/apps/fill/volumes",
        Some(json!({"name": "fill", "size": "16M"})),
    );
    assert_eq!(made.status, 201, "{made}");
    let m = admin(
        &paas,
        "PUT",
        "/v1/apps/fill/volumes/fill/mount",
        Some(json!({"type": "filler", "path": "/fill"})),
    );
    assert_eq!(m.status, 200, "{m}");
    let scaled = admin(
        &paas,
        "PATCH",
        "/v1/apps/fill/formation",
        Some(json!({"filler": {"quantity": 1}})),
    );
    assert_eq!(scaled.status, 200, "{scaled}");

    assert!(
        eventually(90, || admin(
            &paas,
            "GET",
            "/v1/apps/fill/volumes/fill",
            None
        )
        .json()["full"]
            == true),
        "the volume never filled up:\n{}",
        paas.log()
    );
    let logs = paas.cli_as(&paas.token, &["logs", "-a", "fill", "-n", "200"]);
    let logs = String::from_utf8_lossy(&logs.stdout).into_owned();
    assert!(logs.contains("No space left on device"), "{logs}");
    assert!(logs.contains("dd-done"), "{logs}");
    let listed = paas.cli_as(&paas.token, &["volumes", "-a", "fill"]);
    let listed = String::from_utf8_lossy(&listed.stdout).into_owned();
    assert!(
        listed.contains("FULL") && listed.contains("fill is full"),
        "{listed}"
    );
    // The process keeps running: no crash loop.
    let jobs = admin(&paas, "GET", "/v1/apps/fill/jobs", None).json();
    let filler: Vec<&Value> = jobs
        .as_array()
        .unwrap()
        .iter()
        .filter(|j| j["type"] == "filler")
        .collect();
    assert_eq!(filler.len(), 1, "{jobs}");
    assert_eq!(filler[0]["state"], "up", "{jobs}");
    assert_eq!(filler[0]["restarts"], 0, "{jobs}");
    let old = volume_dirs(&paas, "fill");
    assert_eq!(old.len(), 1, "{old:?}");

    // Destroyed and made again: the new app has no volume, and the old one's files go.
    let d = admin(&paas, "DELETE", "/v1/apps/fill?confirm=fill", None);
    assert_eq!(d.status, 204, "{d}");
    let c = admin(&paas, "POST", "/v1/apps", Some(json!({"name": "fill"})));
    assert!(c.status < 300, "{c}");
    let none = admin(&paas, "GET", "/v1/apps/fill/volumes", None).json();
    assert_eq!(none, json!([]), "{none}");
    let again = admin(
        &paas,
        "POST",
        "/v1/apps/fill/volumes",
        Some(json!({"name": "fill", "size": "16M"})),
    );
    assert_eq!(again.status, 201, "{again}");
    assert!(
        again.json()["used_bytes"].as_u64().unwrap() < 1 << 20,
        "{again}"
    );
    assert!(
        eventually(60, || volume_dirs(&paas, "fill") != old
            && volume_dirs(&paas, "fill").len() == 1),
        "the destroyed app's volume stayed: {:?}\n{}",
        volume_dirs(&paas, "fill"),
        paas.log()
    );
    assert!(!old[0].exists(), "{old:?}");
}
