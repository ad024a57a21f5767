//! Issue 16's slow warm push, reproduced: a node app (bookworm stack) deploys, its next
//! deploy crash-loops and is rolled back, then a fixed push deploys. Checks the outcome of
//! each push and prints how long each took with the controller's timed step lines (the
//! numbers are for reading, not asserted: speed lives in bench/).

use std::time::{Duration, Instant};

use paas_e2e::{bookworm_stacks_dir, require_root, AppDir, Paas};

const PACKAGE_JSON: &str = r#"{"name":"warm","version":"1.0.0","private":true,
"scripts":{"start":"node server.js"},"dependencies":{"ms":"2.1.3"}}
"#;

fn server(version: &str) -> String {
    format!(
        "const http = require('http');\nconst ms = require('ms');\n\
         http.createServer((req, res) => res.end(`warm {version} ${{ms('1s')}}\\n`))\n\
         \x20 .listen(process.env.PORT);\n"
    )
}

fn timed_push(paas: &Paas, app: &AppDir, what: &str) -> (bool, String, u128) {
    let started = Instant::now();
    let push = app.push(&paas.git_url("warm"), "main");
    let ms = started.elapsed().as_millis();
    eprintln!(
        "push {what}: {} in {ms} ms",
        if push.ok { "ok" } else { "failed" }
    );
    (push.ok, push.output, ms)
}

#[test]
fn a_push_after_a_rolled_back_crash_loop_deploys() {
    if !require_root() {
        return;
    }
    let paas = Paas::start_with_stacks(bookworm_stacks_dir());
    let app = AppDir::new();
    app.write("package.json", PACKAGE_JSON);
    app.write("server.js", &server("v1"));
    app.commit("v1");
    let (ok, out, _) = timed_push(&paas, &app, "v1 (cold)");
    assert!(ok, "{out}");
    paas.wait_for_body("warm", "warm v1 1000", Duration::from_secs(60))
        .unwrap();

    // v2 exits at once: the deploy crash-loops and is rolled back; v1 keeps serving.
    app.write("server.js", "console.error('boom'); process.exit(3);\n");
    app.commit("v2");
    let (ok, out, _) = timed_push(&paas, &app, "v2 (crash loop)");
    assert!(!ok, "a crash-looping deploy succeeded:\n{out}");
    assert!(out.contains("Rolled back to v1"), "{out}");
    let (status, body) = paas.request_app("warm", "/").unwrap();
    assert_eq!((status, body.trim()), (200, "warm v1 1000"));

    let log_before = paas.log().len();
    app.write("server.js", &server("v3"));
    app.commit("v3");
    let (ok, out, ms) = timed_push(&paas, &app, "v3 (warm, after the rollback)");
    assert!(ok, "{out}");
    assert!(
        out.contains("Restoring node_modules from the build cache"),
        "{out}"
    );
    paas.wait_for_body("warm", "warm v3 1000", Duration::from_secs(60))
        .unwrap();
    let log = paas.log()[log_before..].to_string();
    let steps: Vec<&str> = log.lines().filter(|l| l.contains("step: ")).collect();
    eprintln!("v3 took {ms} ms; its steps:\n{}", steps.join("\n"));
    assert!(
        !steps.is_empty(),
        "no timed step lines in the controller log:\n{log}"
    );
}
