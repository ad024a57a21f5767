//! `paas buildpacks`, `buildpacks:add/set/remove/clear` and `git:clone` against a real
//! in-process controller (see `support`): the list the controller keeps after each
//! command, Heroku's index rules, a member refused a path on the controller's disk that an
//! admin may add (and that stays when the member edits the rest), the BUILDPACK_URL
//! warning, and a clone by a collaborator refused to anyone else.

mod support;

use std::path::Path;

use support::{git, Real, Sandbox};

fn list(real: &Real, app: &str) -> Vec<String> {
    real.block_on(real.c.store.app_buildpacks(app)).unwrap()
}

/// A classic buildpack in a local git repository.
fn buildpack_repo(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir.join("bin")).unwrap();
    for f in ["detect", "compile"] {
        let p = dir.join("bin").join(f);
        std::fs::write(&p, "#!/bin/sh\nexit 0\n").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    git(dir, &["init", "-q", "-b", "main"]);
    git(dir, &["add", "."]);
    git(dir, &["commit", "-q", "-m", "bp"]);
}

#[test]
fn buildpacks_commands_edit_the_list_the_controller_keeps() {
    let real = Real::start();
    let ann = real.member("ann");
    let s = Sandbox::new();
    let run = s.as_user(&real, &ann, &["apps:create", "web"]);
    assert_eq!(run.code, 0, "{run:?}");

    let run = s.as_user(&real, &ann, &["buildpacks", "-a", "web"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("no buildpacks set"), "{run:?}");

    // buildpacks:set on an empty list (it answered 405 before).
    let run = s.as_user(&real, &ann, &["buildpacks:set", "-a", "web", "python"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("1. python"), "{run:?}");
    // add appends, -i inserts (1-based), Heroku's short names are kept as written.
    let run = s.as_user(
        &real,
        &ann,
        &["buildpacks:add", "-a", "web", "-i", "1", "heroku/nodejs"],
    );
    assert_eq!(run.code, 0, "{run:?}");
    let run = s.as_user(&real, &ann, &["buildpacks:add", "-a", "web", "static"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(list(&real, "web"), ["heroku/nodejs", "python", "static"]);
    let run = s.as_user(&real, &ann, &["buildpacks", "-a", "web"]);
    assert!(
        run.stdout
            .contains("=== web Buildpacks\n1. heroku/nodejs\n2. python\n3. static\n"),
        "{run:?}"
    );
    // set -i replaces in place.
    let run = s.as_user(
        &real,
        &ann,
        &["buildpacks:set", "-a", "web", "-i", "3", "go"],
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(list(&real, "web"), ["heroku/nodejs", "python", "go"]);

    // Errors say what is wrong and change nothing.
    for (args, needle) in [
        (vec!["buildpacks:add", "-a", "web", "python"], "already set"),
        (
            vec!["buildpacks:add", "-a", "web", "-i", "9", "static"],
            "invalid index 9",
        ),
        (
            vec!["buildpacks:remove", "-a", "web", "static"],
            "is not set",
        ),
        (vec!["buildpacks:remove", "-a", "web"], "-i N"),
        (
            vec!["buildpacks:add", "-a", "web", "ftp://h/x"],
            "nor a buildpack URL",
        ),
    ] {
        let run = s.as_user(&real, &ann, &args);
        assert_eq!(run.code, 1, "{args:?}: {run:?}");
        assert!(run.stderr.contains(needle), "{args:?}: {run:?}");
    }
    assert_eq!(list(&real, "web"), ["heroku/nodejs", "python", "go"]);

    // A path or file:// URL reads the controller's disk: admins only.
    let work = tempfile::tempdir().unwrap();
    let repo = work.path().join("bp");
    buildpack_repo(&repo);
    let file_url = format!("file://{}", repo.display());
    for spec in [file_url.as_str(), repo.to_str().unwrap()] {
        let run = s.as_user(&real, &ann, &["buildpacks:add", "-a", "web", spec]);
        assert_eq!(run.code, 1, "{run:?}");
        assert!(run.stderr.contains("only admins"), "{run:?}");
    }
    assert_eq!(list(&real, "web"), ["heroku/nodejs", "python", "go"]);
    let run = s.as_user(
        &real,
        &real.admin,
        &["buildpacks:add", "-a", "web", &file_url],
    );
    assert_eq!(run.code, 0, "{run:?}");
    // The member may still edit the rest of the list; the admin's entry stays.
    let run = s.as_user(&real, &ann, &["buildpacks:remove", "-a", "web", "-i", "2"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        list(&real, "web"),
        ["heroku/nodejs", "go", file_url.as_str()]
    );
    let run = s.as_user(&real, &ann, &["buildpacks:remove", "-a", "web", "go"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(list(&real, "web"), ["heroku/nodejs", file_url.as_str()]);

    // BUILDPACK_URL wins over the list: every listing says so.
    let run = s.as_user(
        &real,
        &ann,
        &[
            "config:set",
            "BUILDPACK_URL=https://h.invalid/bp.git",
            "-a",
            "web",
        ],
    );
    assert_eq!(run.code, 0, "{run:?}");
    let run = s.as_user(&real, &ann, &["buildpacks", "-a", "web"]);
    assert!(run.stdout.contains("BUILDPACK_URL"), "{run:?}");
    let run = s.as_user(&real, &ann, &["--json", "buildpacks", "-a", "web"]);
    let v: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(v["buildpack_url"], "https://h.invalid/bp.git");

    let run = s.as_user(&real, &ann, &["buildpacks:clear", "-a", "web"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("still set"), "{run:?}");
    assert!(list(&real, "web").is_empty());

    // Someone who is not a collaborator sees no such app.
    let bob = real.member("bob");
    let run = s.as_user(&real, &bob, &["buildpacks:add", "-a", "web", "python"]);
    assert_eq!(run.code, 4, "{run:?}");
    let run = s.as_user(&real, &bob, &["buildpacks", "-a", "web"]);
    assert_eq!(run.code, 4, "{run:?}");
}

#[test]
fn git_clone_clones_for_collaborators_and_no_one_else() {
    let real = Real::start();
    let ann = real.member("ann");
    let bob = real.member("bob");
    let s = Sandbox::new();
    let run = s.as_user(&real, &ann, &["apps:create", "site"]);
    assert_eq!(run.code, 0, "{run:?}");
    // A commit in the app's repository, as a push leaves it.
    let src = tempfile::tempdir().unwrap();
    git(src.path(), &["init", "-q", "-b", "main"]);
    std::fs::write(src.path().join("index.html"), "hello\n").unwrap();
    git(src.path(), &["add", "."]);
    git(src.path(), &["commit", "-q", "-m", "v1"]);
    let bare = real.c.settings.repo_path("site");
    real.block_on(paas_controller::git::ensure_repo(&bare))
        .unwrap();
    git(src.path(), &["push", "-q", bare.to_str().unwrap(), "main"]);

    let run = s.as_user(&real, &ann, &["git:clone", "-a", "site"]);
    assert_eq!(run.code, 0, "{run:?}");
    let dir = s.work.path().join("site");
    assert_eq!(
        std::fs::read_to_string(dir.join("index.html")).unwrap(),
        "hello\n"
    );
    // Its remote is `paas`, and no token was written into the clone's config.
    let config = std::fs::read_to_string(dir.join(".git/config")).unwrap();
    assert!(config.contains("[remote \"paas\"]"), "{config}");
    assert!(!config.contains(&ann), "{config}");
    // Into a folder of one's choosing; not over an existing one.
    let run = s.as_user(&real, &real.admin, &["git:clone", "-a", "site", "copy"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(s.work.path().join("copy/index.html").exists());
    let run = s.as_user(&real, &ann, &["git:clone", "-a", "site", "copy"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("already exists"), "{run:?}");

    let run = s.as_user(&real, &bob, &["git:clone", "-a", "site", "stolen"]);
    assert_eq!(run.code, 4, "{run:?}");
    assert!(!s.work.path().join("stolen").exists());
}
