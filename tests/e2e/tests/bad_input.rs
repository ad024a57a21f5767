//! Journey: every bad push gets a clear message in the `git push` output, and nothing is lost
//! (no app made by an unauthenticated push; the old release keeps serving after a failed build).

use std::time::Duration;

use paas_e2e::{require_root, AppDir, Paas};

fn app_names(paas: &Paas) -> Vec<String> {
    paas.get_json("/v1/apps")
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn bad_pushes_are_refused_with_clear_messages() {
    if !require_root() {
        return;
    }
    let paas = Paas::start();
    let app = AppDir::new();
    app.write("index.html", "<p>good release</p>\n");
    app.commit("good");

    // No token: git is asked for credentials, cannot prompt, and fails; no app is created.
    let push = app.push(&paas.git_url_with("notoken", None), "main");
    assert!(!push.ok, "{}", push.output);
    assert!(
        push.output.contains("401")
            || push.output.contains("Authentication failed")
            || push.output.contains("could not read Username"),
        "{}",
        push.output
    );
    // A wrong token: 401 too.
    let push = app.push(
        &paas.git_url_with("badtoken", Some("not-the-token")),
        "main",
    );
    assert!(!push.ok, "{}", push.output);
    assert!(
        push.output.contains("Authentication failed") || push.output.contains("401"),
        "{}",
        push.output
    );
    let names = app_names(&paas);
    assert!(
        !names.contains(&"notoken".to_string()) && !names.contains(&"badtoken".to_string()),
        "an unauthenticated push created an app: {names:?}"
    );

    // A bad app name: the validation message is in the push output.
    let push = app.push(&paas.git_url("Bad_Name"), "main");
    assert!(!push.ok, "{}", push.output);
    assert!(
        push.output.contains("invalid app name"),
        "push output lacks the name rule:\n{}",
        push.output
    );

    // The API gives the same rule.
    let resp = paas
        .client()
        .post(format!("{}/v1/apps", paas.api))
        .bearer_auth(&paas.token)
        .json(&serde_json::json!({"name": "Bad_Name"}))
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    let body: serde_json::Value = resp.json().unwrap();
    assert_eq!(body["error"]["code"], "validation_error");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("invalid app name"));

    // A good first release.
    let push = app.push(&paas.git_url("keeper"), "main");
    assert!(push.ok, "{}", push.output);
    paas.wait_for_body("keeper", "good release", Duration::from_secs(30))
        .unwrap();

    // A branch other than main: the push says which branch deploys.
    app.git(&["checkout", "-q", "-b", "feature"]).unwrap();
    app.write("index.html", "<p>feature</p>\n");
    app.commit("feature");
    let push = app.push(&paas.git_url("keeper"), "feature");
    assert!(!push.ok, "{}", push.output);
    assert!(
        push.output.contains("main branch"),
        "push of a non-main branch does not explain:\n{}",
        push.output
    );

    // Nothing to build: no Procfile, no index.html. The build fails naming what it looked
    // for, and the old release keeps serving.
    app.git(&["checkout", "-q", "main"]).unwrap();
    app.git(&["rm", "-q", "index.html"]).unwrap();
    app.write("notes.txt", "no app here\n");
    app.commit("nothing deployable");
    let push = app.push(&paas.git_url("keeper"), "main");
    assert!(
        !push.ok,
        "a push with nothing to build succeeded:\n{}",
        push.output
    );
    for expected in ["Procfile", "index.html"] {
        assert!(
            push.output.contains(expected),
            "failed build does not name {expected:?}:\n{}",
            push.output
        );
    }
    let (status, body) = paas.request_app("keeper", "/").unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("good release"), "{body}");
    let app_info = paas.get_json("/v1/apps/keeper").unwrap();
    assert_eq!(app_info["current_release"], 1);
}
