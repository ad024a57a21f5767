//! Buildpacks as Heroku runs them, with real pushes, real git and real containers: several
//! buildpacks per build (an admin's `file://` ones; each compile in turn, an earlier one's
//! `export` seen by the later compile, the last one's `bin/release` wins), a member refused
//! a path on the controller's disk, the `BUILDPACK_URL` config var (winning over the app's
//! list), a `.buildpacks` file (git URLs served by `git daemon` on loopback; a `file://`
//! one refused, the old release serving on), and on the bookworm stack a GOPATH-mode Go app
//! (no go.mod, `.godir` naming the import path).

use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use paas_e2e::{bookworm_stacks_dir, require_root, AppDir, Paas};

/// Writes an executable file.
fn script(path: &Path, body: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, body).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn git_in(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .current_dir(dir)
        .args(["-c", "user.name=e2e", "-c", "user.email=e2e@localhost"])
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {out:?}");
}

/// A classic buildpack in a git repository at `dir`: its compile writes `<name>.txt` (with
/// what `FIRST_SAYS` held when it ran) and an `export` file; its release names `web`.
fn buildpack(dir: &Path, name: &str, web: &str) {
    script(
        &dir.join("bin/detect"),
        &format!("#!/bin/sh\necho {name}\n"),
    );
    script(
        &dir.join("bin/compile"),
        &format!(
            "#!/bin/sh\nset -e\necho \"-----> {name} compiling\"\n\
             echo \"{name} ran; FIRST_SAYS=$FIRST_SAYS\" > \"$1/{name}.txt\"\n\
             echo 'export FIRST_SAYS=hello-from-{name}' > \"$(dirname \"$0\")/../export\"\n"
        ),
    );
    script(
        &dir.join("bin/release"),
        &format!("#!/bin/sh\nprintf -- '---\\ndefault_process_types:\\n  web: {web}\\n'\n"),
    );
    git_in(dir, &["init", "-q", "-b", "main"]);
    git_in(dir, &["add", "."]);
    git_in(dir, &["commit", "-q", "-m", name]);
}

const HTTPD: &str = "httpd -f -p $PORT -h /app";

/// `git daemon` serving `base` on a free loopback port; stopped (by its pid) when dropped.
struct GitDaemon {
    child: Child,
    url: String,
}

impl GitDaemon {
    fn start(base: &Path) -> GitDaemon {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("git")
            .args([
                "daemon",
                "--reuseaddr",
                "--export-all",
                "--listen=127.0.0.1",
                &format!("--port={port}"),
                &format!("--base-path={}", base.display()),
                &base.display().to_string(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("git daemon");
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "git daemon did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
        GitDaemon {
            child,
            url: format!("git://127.0.0.1:{port}"),
        }
    }
}

impl Drop for GitDaemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Pushes, checks each line of `expect` is in the output, and waits until `path` of the
/// app holds `needle`.
fn push_and_serve(
    paas: &Paas,
    app: &AppDir,
    name: &str,
    expect: &[&str],
    path: &str,
    needle: &str,
) {
    let push = app.push(&paas.git_url(name), "main");
    assert!(push.ok, "push of {name} failed:\n{}", push.output);
    for line in expect {
        assert!(
            push.output.contains(line),
            "push output lacks {line:?}:\n{}",
            push.output
        );
    }
    wait_for(paas, name, path, needle, &push.output);
}

fn wait_for(paas: &Paas, name: &str, path: &str, needle: &str, context: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let got = paas.request_app(name, path);
        if let Ok((200, body)) = &got {
            if body.contains(needle) {
                return;
            }
        }
        assert!(
            Instant::now() < deadline,
            "{name}{path} never held {needle:?} (last: {got:?})\n{context}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

fn put_list(paas: &Paas, token: &str, app: &str, list: &[&str]) -> (u16, String) {
    let body = serde_json::json!({ "buildpacks": list });
    let a = paas.call(
        Some(token),
        "PUT",
        &format!("/v1/apps/{app}/buildpacks"),
        Some(&body),
    );
    (a.status, a.body)
}

#[test]
fn several_buildpacks_from_the_apps_list_buildpack_url_and_dot_buildpacks() {
    if !require_root() {
        return;
    }
    let paas = Paas::start();
    let admin = paas.token.clone();
    let work = tempfile::tempdir().unwrap();
    let served = work.path().join("served");
    buildpack(&served.join("first"), "first", "echo not-the-last-one");
    buildpack(&served.join("second"), "second", HTTPD);
    buildpack(&served.join("third"), "third", HTTPD);
    let daemon = GitDaemon::start(&served);
    let file = |n: &str| format!("file://{}", served.join(n).display());

    let a = paas.call(
        Some(&admin),
        "POST",
        "/v1/apps",
        Some(&serde_json::json!({"name": "multi"})),
    );
    assert_eq!(a.status, 201, "{}", a.body);
    let member = paas.add_member("mem");
    let a = paas.call(
        Some(&admin),
        "POST",
        "/v1/apps/multi/collaborators",
        Some(&serde_json::json!({"user": member.name})),
    );
    assert!(a.status < 300, "{}", a.body);

    // A member may not add a path or file:// URL (it reads the controller's disk).
    let (code, body) = put_list(&paas, &member.token, "multi", &[&file("first")]);
    assert_eq!(code, 403, "{body}");
    assert!(body.contains("only admins"), "{body}");

    // The admin's list: first's export reaches second's compile; second's release wins.
    let (code, body) = put_list(&paas, &admin, "multi", &[&file("first"), &file("second")]);
    assert_eq!(code, 200, "{body}");
    let app = AppDir::new();
    app.write("README", "an app built by two buildpacks\n");
    app.commit("v1");
    push_and_serve(
        &paas,
        &app,
        "multi",
        &[
            "Using 2 buildpacks (set with paas buildpacks:add)",
            "Buildpack 1 of 2",
            "first compiling",
            "Buildpack 2 of 2",
            "second compiling",
            "Releasing v1",
        ],
        "/second.txt",
        "second ran; FIRST_SAYS=hello-from-first",
    );
    let (status, body) = paas.request_app("multi", "/first.txt").unwrap();
    assert_eq!((status, body.contains("first ran")), (200, true), "{body}");

    // The member edits the rest of the list: git URLs are fine, the admin's entry stays.
    let second_git = format!("{}/second", daemon.url);
    let (code, body) = put_list(
        &paas,
        &member.token,
        "multi",
        &[&file("first"), &second_git],
    );
    assert_eq!(code, 200, "{body}");

    // BUILDPACK_URL wins over the app's list.
    let third_git = format!("{}/third", daemon.url);
    let a = paas.call(
        Some(&member.token),
        "PATCH",
        "/v1/apps/multi/config",
        Some(&serde_json::json!({"BUILDPACK_URL": third_git})),
    );
    assert!(a.status < 300, "{}", a.body);
    app.write("README", "v2\n");
    app.commit("v2");
    push_and_serve(
        &paas,
        &app,
        "multi",
        &[
            "the BUILDPACK_URL config var",
            "Fetching buildpack git://",
            "third compiling",
        ],
        "/third.txt",
        "third ran",
    );

    // .buildpacks, once neither the config var nor the app's list chooses.
    let a = paas.call(
        Some(&member.token),
        "PATCH",
        "/v1/apps/multi/config",
        Some(&serde_json::json!({"BUILDPACK_URL": null})),
    );
    assert!(a.status < 300, "{}", a.body);
    let (code, body) = put_list(&paas, &member.token, "multi", &[]);
    assert_eq!(code, 200, "{body}");
    app.write(
        ".buildpacks",
        &format!("{}/first\n\n{}/second\n", daemon.url, daemon.url),
    );
    app.write("README", "v3\n");
    app.commit("v3");
    push_and_serve(
        &paas,
        &app,
        "multi",
        &[
            "Using 2 buildpacks (the .buildpacks file)",
            "second compiling",
        ],
        "/README",
        "v3",
    );
    let (_, body) = paas.request_app("multi", "/second.txt").unwrap();
    assert!(body.contains("FIRST_SAYS=hello-from-first"), "{body}");

    // A file:// line in .buildpacks (which any collaborator writes) fails the push; v3
    // serves on.
    app.write(".buildpacks", &format!("{}\n", file("first")));
    app.write("README", "v4\n");
    app.commit("v4");
    let push = app.push(&paas.git_url("multi"), "main");
    assert!(!push.ok, "{}", push.output);
    assert!(
        push.output.contains("only an admin may choose"),
        "{}",
        push.output
    );
    let (status, body) = paas.request_app("multi", "/README").unwrap();
    assert_eq!((status, body.as_str()), (200, "v3\n"));
}

#[test]
fn go_without_go_mod_builds_in_gopath_mode_with_godir() {
    if !require_root() {
        return;
    }
    let paas = Paas::start_with_stacks(bookworm_stacks_dir());
    let app = AppDir::new();
    app.write(".godir", "example.com/me/gopathapp\n");
    app.write(
        "greet/greet.go",
        "package greet\n\n// Hello is what the app says.\nfunc Hello() string { return \"hello from GOPATH\" }\n",
    );
    app.write(
        "main.go",
        "package main\n\nimport (\n\t\"fmt\"\n\t\"net/http\"\n\t\"os\"\n\n\t\"example.com/me/gopathapp/greet\"\n)\n\n\
         func main() {\n\
         \thttp.HandleFunc(\"/\", func(w http.ResponseWriter, r *http.Request) {\n\
         \t\tfmt.Fprintf(w, \"gopath %s\\n\", greet.Hello())\n\
         \t})\n\
         \tif err := http.ListenAndServe(\":\"+os.Getenv(\"PORT\"), nil); err != nil {\n\
         \t\tpanic(err)\n\
         \t}\n}\n",
    );
    app.commit("v1");
    push_and_serve(
        &paas,
        &app,
        "gopathapp",
        &[
            "Go app detected",
            "(GOPATH mode), package example.com/me/gopathapp (.godir)",
            "Default web process: /app/bin/gopathapp",
            "Releasing v1",
        ],
        "/",
        "gopath hello from GOPATH",
    );
}
