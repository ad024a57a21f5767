//! Journeys on the `bookworm` stack with the python and nodejs buildpacks: a real `git
//! push` of a Python app with a pip dependency and of a Node.js app with an npm dependency
//! (pip and npm fetch them from the package registries), each answering through the
//! router; a second push with unchanged dependencies restores them from the build cache.

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
