//! Journey (root, real containers on the tiny stack): issue 14's honest releases and
//! config limits against a standalone paas, through the API, the CLI and the dashboard.
//!
//! * A push whose web command is not found is rejected and its release listed `failed`
//!   with the reason; a config var the app cannot start with makes a release that is
//!   `failed` (never `succeeded`) with "crashed 3 times in a row (last: exited 127)" in
//!   the API, `paas releases` and the dashboard, while the previous release keeps
//!   serving; unsetting it makes a release that `succeeded`.
//! * Config values that would break every later release are refused: `paas config:set`
//!   of 40 KB says so before sending, a NUL byte over the API is a 422, and the 64 KB
//!   total comes back from the controller through the CLI.

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use paas_e2e::{bins, require_root, AppDir, Paas};

fn paas(p: &Paas, args: &[&str]) -> Output {
    Command::new(&bins().cli)
        .args(args)
        .env("PAAS_URL", &p.api)
        .env("PAAS_TOKEN", &p.token)
        .env("HOME", p.data.path())
        .output()
        .expect("run paas")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Serves `hi` with busybox httpd, unless `BREAK` is set: then its command is not found.
const PROCFILE: &str = "web: if [ -n \"$BREAK\" ]; then exec no-such-command-paas; fi; \
     mkdir -p /tmp/www && echo hi > /tmp/www/index.html && exec httpd -f -p $PORT -h /tmp/www\n";

/// Release `version` once it is no longer `pending` (at most 90 s).
fn settled(p: &Paas, app: &str, version: u64) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let list = p.get_json(&format!("/v1/apps/{app}/releases")).unwrap();
        if let Some(r) = list
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["version"] == version)
        {
            if r["status"] != "pending" {
                return r.clone();
            }
        }
        assert!(
            Instant::now() < deadline,
            "v{version} of {app} not settled in 90 s: {list}\n{}",
            p.log()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// The dashboard's page of `app`, logged in as admin (first password: the admin token).
fn dashboard_page(p: &Paas, app: &str) -> String {
    let client = reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let form = client.get(format!("{}/login", p.api)).send().unwrap();
    let cookie = form
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("paas_login_csrf="))
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let csrf = cookie.trim_start_matches("paas_login_csrf=").to_string();
    let login = client
        .post(format!("{}/login", p.api))
        .header("cookie", &cookie)
        .form(&[("user", "admin"), ("password", &p.token), ("csrf", &csrf)])
        .send()
        .unwrap();
    assert_eq!(login.status().as_u16(), 303);
    let session = login
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("paas_session="))
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let page = client
        .get(format!("{}/apps/{app}", p.api))
        .header("cookie", session)
        .send()
        .unwrap();
    assert_eq!(page.status().as_u16(), 200);
    page.text().unwrap()
}

/// The dashboard's row of release `version`.
fn release_row(page: &str, version: u64) -> String {
    page.split(&format!("data-version=\"{version}\""))
        .nth(1)
        .and_then(|rest| rest.split("</tr>").next())
        .unwrap_or_else(|| panic!("no v{version} row in the dashboard"))
        .to_string()
}

#[test]
fn releases_that_cannot_start_are_failed_everywhere() {
    if !require_root() {
        return;
    }
    let p = Paas::start();
    let app = AppDir::new();
    let url = p.git_url("honest");

    // v1: a web command that does not exist. The push is refused and v1 is failed.
    app.write("Procfile", "web: no-such-command-paas\n");
    app.commit("broken");
    let push = app.push(&url, "main");
    assert!(!push.ok, "{}", push.output);
    let v1 = settled(&p, "honest", 1);
    assert_eq!(v1["status"], "failed", "{v1}");

    // v2: serves.
    app.write("Procfile", PROCFILE);
    app.commit("works");
    let push = app.push(&url, "main");
    assert!(push.ok, "{}", push.output);
    p.wait_for_body("honest", "hi", Duration::from_secs(60))
        .unwrap();
    assert_eq!(settled(&p, "honest", 2)["status"], "succeeded");

    // v3: a config var it cannot start with.
    let out = paas(&p, &["config:set", "BREAK=1", "-a", "honest"]);
    assert!(out.status.success(), "{}", text(&out));
    let v3 = settled(&p, "honest", 3);
    assert_eq!(v3["status"], "failed", "{v3}");
    let reason = v3["status_reason"].as_str().unwrap().to_string();
    assert!(
        reason.contains("crashed 3 times in a row (last: exited 127)"),
        "{reason}"
    );
    // v2's job kept serving throughout.
    let (code, body) = p.request_app("honest", "/").unwrap();
    assert_eq!((code, body.trim()), (200, "hi"));
    // The CLI...
    let out = paas(&p, &["releases", "-a", "honest"]);
    let shown = text(&out);
    assert!(out.status.success(), "{shown}");
    let row = shown
        .lines()
        .find(|l| l.starts_with("v3 "))
        .unwrap_or_default();
    assert!(row.contains("failed"), "{shown}");
    assert!(shown.contains(&format!("v3 failed: {reason}")), "{shown}");
    assert!(
        shown
            .lines()
            .find(|l| l.starts_with("v2 "))
            .is_some_and(|l| l.contains("succeeded")),
        "{shown}"
    );
    // ...and the dashboard.
    let page = dashboard_page(&p, "honest");
    let row = release_row(&page, 3);
    assert!(row.contains(">failed</span>"), "{row}");
    assert!(row.contains("crashed 3 times in a row"), "{row}");
    assert!(release_row(&page, 2).contains(">succeeded</span>"));

    // v4: undone, it serves again; v3 stays failed.
    let out = paas(&p, &["config:unset", "BREAK", "-a", "honest"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(settled(&p, "honest", 4)["status"], "succeeded");
    assert_eq!(settled(&p, "honest", 3)["status"], "failed");
}

#[test]
fn config_values_that_would_break_releases_are_refused() {
    if !require_root() {
        return;
    }
    let p = Paas::start();
    let out = paas(&p, &["apps:create", "vals"]);
    assert!(out.status.success(), "{}", text(&out));

    let big = format!("BIG={}", "x".repeat(40_000));
    let out = paas(&p, &["config:set", &big, "-a", "vals"]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("BIG is 40000 bytes, over the limit of 32 KB"),
        "{}",
        text(&out)
    );

    let resp = p
        .client()
        .patch(format!("{}/v1/apps/vals/config", p.api))
        .bearer_auth(&p.token)
        .json(&serde_json::json!({"NUL": "a\u{0}b"}))
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 422);
    let body: serde_json::Value = resp.json().unwrap();
    assert_eq!(body["error"]["code"], "invalid_config_value", "{body}");

    let kb30 = "y".repeat(30 * 1024);
    for key in ["A", "B"] {
        let out = paas(&p, &["config:set", &format!("{key}={kb30}"), "-a", "vals"]);
        assert!(out.status.success(), "{}", text(&out));
    }
    let out = paas(&p, &["config:set", &format!("C={kb30}"), "-a", "vals"]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("over the limit of 64 KB"),
        "{}",
        text(&out)
    );
    let config = p.get_json("/v1/apps/vals/config").unwrap();
    assert!(
        config.get("C").is_none() && config.get("NUL").is_none(),
        "{config}"
    );
}
