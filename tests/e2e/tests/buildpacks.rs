//! Journeys on the `bookworm` stack with the python, nodejs and go buildpacks: a real `git
//! push` of a Python app with a pip dependency, of a Node.js app with an npm dependency
//! (pip and npm fetch them from the package registries) and of a std-lib-only Go web app,
//! each answering through the router; a second push with unchanged dependencies restores
//! them from the build cache. On the tiny stack: third-party classic buildpacks set with
//! `buildpacks:set` from a local git repository (`file://…#ref`) or a path.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use paas_e2e::{bookworm_stacks_dir, require_root, AppDir, Paas};

/// Pushes `app` to `name`, checks the output names every line in `expect`, waits for the
/// body to contain `needle` and returns the push-to-200 time.
fn push_and_wait(paas: &Paas, app: &AppDir, name: &str, expect: &[&str], needle: &str) -> u128 {
    let started = Instant::now();
    let push = app.push(&paas.git_url(name), "main");
    assert!(push.ok, "push of {name} failed:\n{}", push.output);
    for line in expect {
        assert!(
            push.output.contains(line),
            "push output of {name} lacks {line:?}:\n{}",
            push.output
        );
    }
    paas.wait_for_body(name, needle, Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("{e}\npush output:\n{}\n{}", push.output, paas.log()));
    started.elapsed().as_millis()
}

#[test]
fn python_app_with_a_pip_dependency_serves_via_gunicorn_and_reuses_the_cache() {
    if !require_root() {
        return;
    }
    let paas = Paas::start_with_stacks(bookworm_stacks_dir());
    let app = AppDir::new();
    app.write("requirements.txt", "gunicorn==22.0.0\n");
    app.write(
        "app.py",
        "import gunicorn\n\nVERSION = 'v1'\n\n\
         def app(environ, start_response):\n\
         \x20   start_response('200 OK', [('Content-Type', 'text/plain')])\n\
         \x20   return [f'python {VERSION} gunicorn {gunicorn.__version__}\\n'.encode()]\n",
    );
    app.commit("v1");
    let cold = push_and_wait(
        &paas,
        &app,
        "py",
        &[
            "on stack bookworm",
            "Python app detected",
            "Installing requirements.txt with pip",
            "Default web process: gunicorn --bind 0.0.0.0:$PORT app:app",
            "Releasing v1",
        ],
        "python v1 gunicorn 22.0.0",
    );

    let py = app.git(&["show", "HEAD:app.py"]).unwrap();
    let source = String::from_utf8_lossy(&py.stdout).replace("'v1'", "'v2'");
    app.write("app.py", &source);
    app.commit("v2");
    let warm = push_and_wait(
        &paas,
        &app,
        "py",
        &[
            "Restoring the virtualenv from the build cache",
            "Releasing v2",
        ],
        "python v2 gunicorn 22.0.0",
    );
    eprintln!("push-to-first-200 (python, bookworm): cold {cold} ms, warm {warm} ms");

    // A requirement pip cannot install fails the push with pip's output; v2 keeps serving.
    app.write(
        "requirements.txt",
        "gunicorn==22.0.0\npaas-no-such-package-e2e==0.0.1\n",
    );
    app.commit("v3: a dependency that does not exist");
    let push = app.push(&paas.git_url("py"), "main");
    assert!(
        !push.ok,
        "a push with a missing dependency succeeded:\n{}",
        push.output
    );
    for line in [
        "paas-no-such-package-e2e",
        "failed (exit 1; its output is above)",
        "The running release is unchanged",
    ] {
        assert!(
            push.output.contains(line),
            "lacks {line:?}:\n{}",
            push.output
        );
    }
    assert!(!push.output.contains("Releasing v3"), "{}", push.output);
    let (status, body) = paas.request_app("py", "/").unwrap();
    assert_eq!((status, body.contains("python v2")), (200, true), "{body}");
}

#[test]
fn node_app_with_an_npm_dependency_serves_via_npm_start_and_reuses_the_cache() {
    if !require_root() {
        return;
    }
    let paas = Paas::start_with_stacks(bookworm_stacks_dir());
    let app = AppDir::new();
    app.write(
        "package.json",
        r#"{"name":"hello-node","version":"1.0.0","private":true,
"scripts":{"start":"node server.js"},"dependencies":{"ms":"2.1.3"}}
"#,
    );
    let server = |version: &str| {
        format!(
            "const http = require('http');\nconst ms = require('ms');\n\
             http.createServer((req, res) => res.end(`node {version} ms ${{ms('2s')}} ${{process.env.NODE_ENV}}\\n`))\n\
             \x20 .listen(process.env.PORT);\n"
        )
    };
    app.write("server.js", &server("v1"));
    app.commit("v1");
    let cold = push_and_wait(
        &paas,
        &app,
        "node",
        &[
            "on stack bookworm",
            "Node.js app detected",
            "Installing dependencies with npm install",
            "Default web process: npm start",
            "Releasing v1",
        ],
        "node v1 ms 2000 production",
    );

    app.write("server.js", &server("v2"));
    app.commit("v2");
    let warm = push_and_wait(
        &paas,
        &app,
        "node",
        &[
            "Restoring node_modules from the build cache",
            "Releasing v2",
        ],
        "node v2 ms 2000 production",
    );
    eprintln!("push-to-first-200 (node, bookworm): cold {cold} ms, warm {warm} ms");
}

#[test]
fn go_app_with_the_standard_library_builds_with_go_build_and_serves() {
    if !require_root() {
        return;
    }
    let paas = Paas::start_with_stacks(bookworm_stacks_dir());
    let app = AppDir::new();
    app.write("go.mod", "module example.com/hello\n\ngo 1.19\n");
    let main = |version: &str| {
        format!(
            "package main\n\nimport (\n\t\"fmt\"\n\t\"net/http\"\n\t\"os\"\n\t\"runtime\"\n)\n\n\
             func main() {{\n\
             \thttp.HandleFunc(\"/\", func(w http.ResponseWriter, r *http.Request) {{\n\
             \t\tfmt.Fprintf(w, \"go {version} %s\\n\", runtime.Version())\n\
             \t}})\n\
             \tif err := http.ListenAndServe(\":\"+os.Getenv(\"PORT\"), nil); err != nil {{\n\
             \t\tpanic(err)\n\
             \t}}\n}}\n"
        )
    };
    app.write("main.go", &main("v1"));
    app.commit("v1");
    let cold = push_and_wait(
        &paas,
        &app,
        "gohello",
        &[
            "on stack bookworm",
            "Go app detected",
            "standard library only",
            "Default web process: /app/bin/hello",
            "Releasing v1",
        ],
        "go v1 go1.",
    );
    app.write("main.go", &main("v2"));
    app.commit("v2");
    let warm = push_and_wait(&paas, &app, "gohello", &["Releasing v2"], "go v2 go1.");
    eprintln!("push-to-first-200 (go, bookworm): cold {cold} ms, warm {warm} ms");

    // A module that requires others without vendoring them fails with what to do.
    app.write(
        "go.mod",
        "module example.com/hello\n\ngo 1.19\n\nrequire example.com/missing v1.0.0\n",
    );
    app.commit("v3: an unvendored requirement");
    let push = app.push(&paas.git_url("gohello"), "main");
    assert!(!push.ok, "{}", push.output);
    assert!(push.output.contains("go mod vendor"), "{}", push.output);
    let (status, body) = paas.request_app("gohello", "/").unwrap();
    assert_eq!((status, body.contains("go v2")), (200, true), "{body}");
}

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

/// A classic buildpack: detects `marker.txt`, writes `built.txt` from its compile (with the
/// GREETING config var from ENV_DIR and a counter kept in CACHE_DIR), and releases a default
/// web process serving /app with busybox httpd.
fn marker_buildpack(dir: &Path, tag: &str) {
    script(
        &dir.join("bin/detect"),
        "#!/bin/sh\n[ -f \"$1/marker.txt\" ] || exit 1\necho Marker\n",
    );
    script(
        &dir.join("bin/compile"),
        &format!(
            "#!/bin/sh\nset -e\necho \"-----> marker buildpack {tag} compiling\"\n\
             n=$(cat \"$2/count\" 2>/dev/null || echo 0); n=$((n + 1)); echo $n > \"$2/count\"\n\
             echo \"third-party {tag} $(cat \"$3/GREETING\") build $n stack $STACK\" > \"$1/built.txt\"\n"
        ),
    );
    script(
        &dir.join("bin/release"),
        "#!/bin/sh\ncat <<'YAML'\n---\naddons: []\ndefault_process_types:\n  web: httpd -f -p $PORT -h /app\nYAML\n",
    );
}

fn set_buildpack(paas: &Paas, app: &str, spec: &str) -> (u16, String) {
    let resp = paas
        .client()
        .put(format!("{}/v1/apps/{app}/buildpack", paas.api))
        .bearer_auth(&paas.token)
        .timeout(Duration::from_secs(150))
        .json(&serde_json::json!({ "buildpack": spec }))
        .send()
        .unwrap();
    (resp.status().as_u16(), resp.text().unwrap())
}

#[test]
fn third_party_buildpacks_from_a_git_url_or_a_path_run_the_classic_api() {
    if !require_root() {
        return;
    }
    let paas = Paas::start();
    let client = paas.client();
    for body in [
        serde_json::json!({"name": "im4bp"}),
        serde_json::json!({"name": "im4bad"}),
    ] {
        let resp = client
            .post(format!("{}/v1/apps", paas.api))
            .bearer_auth(&paas.token)
            .json(&body)
            .send()
            .unwrap();
        assert!(resp.status().is_success(), "{}", resp.text().unwrap());
    }
    let resp = client
        .patch(format!("{}/v1/apps/im4bp/config", paas.api))
        .bearer_auth(&paas.token)
        .json(&serde_json::json!({"GREETING": "hello-env"}))
        .send()
        .unwrap();
    assert!(resp.status().is_success(), "{}", resp.text().unwrap());

    // The buildpack in a local git repository: v1 tagged, then a v2 commit on main.
    let work = tempfile::tempdir().unwrap();
    let repo = work.path().join("marker-buildpack");
    marker_buildpack(&repo, "v1");
    git_in(&repo, &["init", "-q", "-b", "main"]);
    git_in(&repo, &["add", "."]);
    git_in(&repo, &["commit", "-q", "-m", "v1"]);
    git_in(&repo, &["tag", "v1"]);
    marker_buildpack(&repo, "v2");
    git_in(&repo, &["commit", "-q", "-am", "v2"]);

    // Bad specs fail when set, saying why.
    let (code, body) = set_buildpack(&paas, "im4bp", "ftp://nowhere/bp");
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("nor a buildpack URL"), "{body}");
    let missing = format!("file://{}/no-such-repo", work.path().display());
    let (code, body) = set_buildpack(&paas, "im4bp", &missing);
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("fetching the buildpack"), "{body}");
    let (code, body) = set_buildpack(&paas, "im4bp", &format!("file://{}#v9", repo.display()));
    assert_eq!(code, 400, "{body}");

    // Pinned to the tag: the v1 compile runs with ENV_DIR, CACHE_DIR and STACK.
    let pinned = format!("file://{}#v1", repo.display());
    let (code, body) = set_buildpack(&paas, "im4bp", &pinned);
    assert_eq!(code, 200, "{body}");
    let app = AppDir::new();
    app.write("marker.txt", "x\n");
    app.commit("v1");
    push_and_wait_path(
        &paas,
        &app,
        "im4bp",
        "/built.txt",
        &[
            &format!("Using the {pinned} buildpack"),
            "Marker app detected",
            "marker buildpack v1 compiling",
            "Default types for buildpack -> web",
        ],
        "third-party v1 hello-env build 1 stack tiny",
    );

    // The path of the repository: its working tree (v2); the cache dir persisted.
    let path = repo.display().to_string();
    let (code, body) = set_buildpack(&paas, "im4bp", &path);
    assert_eq!(code, 200, "{body}");
    app.write("marker.txt", "y\n");
    app.commit("v2");
    push_and_wait_path(
        &paas,
        &app,
        "im4bp",
        "/built.txt",
        &["marker buildpack v2 compiling"],
        "third-party v2 hello-env build 2 stack tiny",
    );

    // A buildpack whose compile exits non-zero fails the push with its output.
    let failing = work.path().join("failing-buildpack");
    script(&failing.join("bin/detect"), "#!/bin/sh\necho Failing\n");
    script(
        &failing.join("bin/compile"),
        "#!/bin/sh\necho 'im4-bp-error: the widget is missing'\nexit 3\n",
    );
    let (code, body) = set_buildpack(&paas, "im4bad", &failing.display().to_string());
    assert_eq!(code, 200, "{body}");
    let bad = AppDir::new();
    bad.write("Procfile", "web: httpd -f -p $PORT -h /app\n");
    bad.commit("v1");
    let push = bad.push(&paas.git_url("im4bad"), "main");
    assert!(!push.ok, "{}", push.output);
    for line in [
        "im4-bp-error: the widget is missing",
        "bin/compile exited non-zero",
        "Build failed",
    ] {
        assert!(
            push.output.contains(line),
            "lacks {line:?}:\n{}",
            push.output
        );
    }
    assert!(!push.output.contains("Releasing v1"), "{}", push.output);

    // A buildpack that disappeared after it was set fails the push with a clear error.
    std::fs::remove_dir_all(&failing).unwrap();
    let push = bad.push(&paas.git_url("im4bad"), "main");
    assert!(!push.ok, "{}", push.output);
    assert!(
        push.output.contains("fetching the buildpack"),
        "{}",
        push.output
    );
}

/// Pushes, checks the output lines and waits until `path` of the app contains `needle`.
fn push_and_wait_path(
    paas: &Paas,
    app: &AppDir,
    name: &str,
    path: &str,
    expect: &[&str],
    needle: &str,
) {
    let push = app.push(&paas.git_url(name), "main");
    assert!(push.ok, "push of {name} failed:\n{}", push.output);
    for line in expect {
        assert!(
            push.output.contains(line),
            "push output of {name} lacks {line:?}:\n{}",
            push.output
        );
    }
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
            "{name}{path} never contained {needle:?} (last: {got:?})\npush:\n{}",
            push.output
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}
